//! The runs of this server in memory (`AppState::runs`): the asynchronous executor's wake-up,
//! the cancel token of every run running now (so `runs::cancel` reaches it), and how many
//! asynchronous runs each function has in flight. What is durable is in the store.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The runs of this server in memory: the executor's wake-up, the cancel of every run
/// running now, and how many asynchronous runs each function has in flight.
#[derive(Default)]
pub struct Runs {
    /// Wakes the executor (a run was queued, or one ended and made room).
    pub wake: Notify,
    /// The cancel token of each run running now (synchronous or not), by id.
    running: Mutex<HashMap<String, CancellationToken>>,
    /// Asynchronous runs in flight, by function key, and their total.
    pub in_flight: Mutex<InFlight>,
    /// Writes the blocking calls' records (behind their answers, many at once).
    pub records: crate::run_writer::RecordWriter,
    /// The server is stopping: an asynchronous run that ends now was cut short by the stop,
    /// and its end is not recorded (it stays `running`, and runs again after the restart).
    stopping: AtomicBool,
}

/// See [`Runs::in_flight`].
#[derive(Default)]
pub struct InFlight {
    /// In flight per function (`namespace/function` as the record names it).
    pub by_function: HashMap<String, usize>,
    /// In flight in all.
    pub total: usize,
}

/// Keeps a run's cancel reachable (by [`Runs::cancel`]) while it runs; dropping it forgets it.
pub struct RunningGuard<'a> {
    runs: &'a Runs,
    id: String,
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut running) = self.runs.running.lock() {
            running.remove(&self.id);
        }
    }
}

impl Runs {
    /// Registers run `id`'s cancel until the guard is dropped.
    pub fn running(&self, id: &str, cancel: CancellationToken) -> RunningGuard<'_> {
        if let Ok(mut running) = self.running.lock() {
            running.insert(id.to_string(), cancel);
        }
        RunningGuard {
            runs: self,
            id: id.to_string(),
        }
    }

    /// Cancels run `id` if it runs in this server now; `false` if it does not.
    pub fn cancel_running(&self, id: &str) -> bool {
        let token = self
            .running
            .lock()
            .ok()
            .and_then(|running| running.get(id).cloned());
        match token {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    /// Marks the server as stopping (see [`Runs::stopping`]).
    pub fn shut_down(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Whether the server is stopping.
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Wakes the executor.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}
