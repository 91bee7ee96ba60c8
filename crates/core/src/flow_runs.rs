//! The workflow instances running in this server ([`Runs`]), each with the token that cancels
//! it, and the namespaces being deleted. It lives in the server state; `crate::flows` drives
//! the instances it lists.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use tokio_util::sync::CancellationToken;

/// The instances running in this server, each with the token that cancels it.
#[derive(Default)]
pub struct Runs {
    running: Mutex<HashMap<String, CancellationToken>>,
    shutting_down: AtomicBool,
    /// Namespaces being deleted: no instance of theirs starts running meanwhile.
    deleting: Mutex<HashSet<String>>,
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

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Registers a running instance (cancelling `token` cancels it) until the guard drops;
    /// `None` if it is running already. A guard rather than a call at the end: a run whose
    /// future is dropped (a parent's state that stopped waiting for its subflow) must not
    /// leave its instance looking driven, or cancelling it later would change nothing.
    pub fn register<'a>(&'a self, id: &str, token: CancellationToken) -> Option<RunGuard<'a>> {
        let mut running = self.lock();
        if running.contains_key(id) {
            return None;
        }
        running.insert(id.to_string(), token);
        Some(RunGuard {
            runs: self,
            id: id.to_string(),
        })
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

    /// Marks `namespace` as being deleted until the guard drops: from now on no instance of
    /// it starts to run (see `Runs::is_deleting`), so cancelling its instances leaves none
    /// behind, even one an event or a schedule was starting just then.
    pub fn deleting<'a>(&'a self, namespace: &str) -> DeletingGuard<'a> {
        self.deleting_set().insert(namespace.to_string());
        DeletingGuard {
            runs: self,
            namespace: namespace.to_string(),
        }
    }

    pub(crate) fn is_deleting(&self, namespace: &str) -> bool {
        self.deleting_set().contains(namespace)
    }

    fn deleting_set(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.deleting.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn is_running(&self, id: &str) -> bool {
        self.lock().contains_key(id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, CancellationToken>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A namespace marked as being deleted in [`Runs`]; unmarked on drop.
pub struct DeletingGuard<'a> {
    runs: &'a Runs,
    namespace: String,
}

impl Drop for DeletingGuard<'_> {
    fn drop(&mut self) {
        self.runs.deleting_set().remove(&self.namespace);
    }
}

/// An instance registered as running in [`Runs`]; unregistered on drop.
pub struct RunGuard<'a> {
    runs: &'a Runs,
    id: String,
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        self.runs.lock().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_registered_once_and_until_its_guard_drops() {
        let runs = Runs::default();
        let token = CancellationToken::new();
        let guard = runs.register("i1", token.clone()).expect("registered");
        assert!(runs.register("i1", CancellationToken::new()).is_none());
        assert!(runs.cancel("i1"));
        assert!(token.is_cancelled());
        // A run whose future is dropped mid-way is no longer counted as running.
        drop(guard);
        assert!(!runs.is_running("i1"));
        assert!(!runs.cancel("i1"));
    }

    #[test]
    fn a_namespace_is_marked_deleting_while_its_guard_lives() {
        let runs = Runs::default();
        let guard = runs.deleting("demo");
        assert!(runs.is_deleting("demo"));
        assert!(!runs.is_deleting("other"));
        drop(guard);
        assert!(!runs.is_deleting("demo"));
    }
}
