//! Shared pieces of the unit tests: one reaper for the whole test process.
//!
//! Tests run as threads of one process, and a reaper collects *every* exited child of the
//! process; two reapers would steal each other's children. So all unit tests that spawn
//! processes run on one runtime that lives as long as the test process, with one reaper.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use crate::reaper::Reaper;

fn shared() -> &'static (tokio::runtime::Runtime, Arc<Reaper>) {
    static SHARED: OnceLock<(tokio::runtime::Runtime, Arc<Reaper>)> = OnceLock::new();
    SHARED.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("test runtime");
        let reaper = runtime
            .block_on(async { Reaper::start() })
            .expect("test reaper");
        (runtime, reaper)
    })
}

/// Runs `test` on the shared runtime with the shared reaper.
pub fn with_reaper<F, Fut>(test: F) -> Fut::Output
where
    F: FnOnce(Arc<Reaper>) -> Fut,
    Fut: Future,
{
    let (runtime, reaper) = shared();
    runtime.block_on(test(Arc::clone(reaper)))
}
