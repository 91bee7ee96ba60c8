//! Returning an idle agent's freed memory to the kernel: an idle warm instance is multiplied by
//! every warm instance on the host, and glibc keeps the pages a call freed (its buffers, the
//! kept connection's, see `contract::http`) in the heap for later allocations. [`QUIET`] after
//! the last call in flight ended (and no call ended since), [`run`] asks malloc to give back
//! every free page (`malloc_trim(0)`); the next call allocates them again, a page fault each.
//! A call that began in between and still runs is not waited for: the trim only costs it a
//! moment of malloc's lock.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

/// How long the agent must have had no call in flight before it trims: longer than a kept
/// connection to the function stays open idle (`contract::http`'s `MAX_KEPT_IDLE`, 1 s), so
/// that its buffers are freed first.
pub const QUIET: Duration = Duration::from_millis(1500);

/// Told each time the last call in flight ends ([`crate::calls::Calls`]).
#[derive(Debug, Default)]
pub struct LastCallEnded(Notify);

impl LastCallEnded {
    /// The last call in flight has just ended.
    pub fn notify(&self) {
        self.0.notify_one();
    }
}

/// Trims the heap once the agent has been quiet for [`QUIET`] after a call, once per quiet
/// period. Runs as long as the agent.
pub async fn run(ended: Arc<LastCallEnded>) {
    loop {
        ended.0.notified().await;
        // Another call ending within QUIET starts the wait again.
        while tokio::time::timeout(QUIET, ended.0.notified())
            .await
            .is_ok()
        {}
        trim();
    }
}

/// Gives the heap's free pages back to the kernel.
fn trim() {
    // SAFETY: malloc_trim takes no pointer and only rearranges malloc's own free memory; it
    // takes malloc's locks like any allocation does.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}
