//! How many calls this process has begun: read by tasks that act once the server has been
//! quiet for a while (the server's heap trim, `faasbox_server::heap_trim`), without a handle
//! threaded to them (one server per process, like the metrics registry).

use std::sync::atomic::{AtomicU64, Ordering};

static CALLS_BEGUN: AtomicU64 = AtomicU64::new(0);

/// A call (blocking, asynchronous or a flow's action) begins now.
pub fn call_began() {
    CALLS_BEGUN.fetch_add(1, Ordering::Relaxed);
}

/// How many calls this process has begun so far.
pub fn calls_begun() -> u64 {
    CALLS_BEGUN.load(Ordering::Relaxed)
}
