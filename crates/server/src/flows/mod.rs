//! Workflows in the server: the engine of faasbox-flow over the store, the vault and the
//! invoker. [`runner`] starts, drives, resumes and cancels instances; [`effects`] is the
//! engine's view of the server; [`functions`] calls an action's function by its kind.

pub mod call_files;
pub mod effects;
pub mod functions;
pub mod runner;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use tokio_util::sync::CancellationToken;

/// The instances running in this server, each with the token that cancels it.
#[derive(Default)]
pub struct Runs {
    running: Mutex<HashMap<String, CancellationToken>>,
    shutting_down: AtomicBool,
}

impl Runs {
    /// The server is stopping: stops every running instance without recording an end, so
    /// they stay `running` and resume from their last checkpoint at the next start.
    pub fn shut_down(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        for token in self.lock().values() {
            token.cancel();
        }
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Registers a running instance; cancelling `token` cancels it.
    pub fn register(&self, id: &str, token: CancellationToken) {
        self.lock().insert(id.to_string(), token);
    }

    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Cancels a running instance; false if it is not running here.
    pub fn cancel(&self, id: &str) -> bool {
        match self.lock().get(id) {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    pub fn is_running(&self, id: &str) -> bool {
        self.lock().contains_key(id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, CancellationToken>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}
