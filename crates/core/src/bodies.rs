//! The server's body budget (`body-budget`): request bodies in memory (read by
//! `faasbox_http::held_body`) are counted against it for as long as their call runs, together
//! with the output the call answers with. A call whose body does not fit waits for room up to
//! `queue-timeout`, then fails (unavailable, 503) with [`BUDGET_EXHAUSTED`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use crate::bounds::show_size;
use crate::failure::{Failure, FailureKind};

/// The budget is full and stayed full while the call waited.
pub const BUDGET_EXHAUSTED: &str = "faasbox.server.busy";

/// The bytes of request bodies (and their calls' outputs) the server holds at most at once.
pub struct BodyBudget {
    limit: u64,
    used: Mutex<u64>,
    freed: Notify,
}

impl BodyBudget {
    /// A budget of `limit` bytes, nothing held yet.
    pub fn new(limit: u64) -> Arc<BodyBudget> {
        Arc::new(BodyBudget {
            limit,
            used: Mutex::new(0),
            freed: Notify::new(),
        })
    }

    /// Bytes held now.
    pub fn used(&self) -> u64 {
        *self.used.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn try_add(&self, bytes: u64) -> bool {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        if *used + bytes <= self.limit || *used == 0 {
            *used += bytes;
            true
        } else {
            false
        }
    }

    fn force_add(&self, bytes: u64) {
        *self.used.lock().unwrap_or_else(|p| p.into_inner()) += bytes;
    }

    fn release(&self, bytes: u64) {
        {
            let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
            *used = used.saturating_sub(bytes);
        }
        self.freed.notify_waiters();
    }

    /// Reserves `bytes`, waiting up to `wait` for room.
    pub async fn reserve(
        self: &Arc<Self>,
        bytes: u64,
        wait: Duration,
    ) -> Result<BodyPermit, Failure> {
        let mut permit = BodyPermit {
            budget: self.clone(),
            bytes: 0,
        };
        permit.grow(bytes, wait).await?;
        Ok(permit)
    }

    /// Catchable, like a full queue: a flow may retry it.
    fn busy(&self, bytes: u64, wait: Duration) -> Failure {
        Failure::function(
            FailureKind::Unavailable,
            BUDGET_EXHAUSTED,
            format!(
                "the server holds as many request bodies as its body budget allows ({}, the \
                 body-budget setting) and no room for {} more came free within {}s; retry later",
                show_size(self.limit),
                show_size(bytes),
                wait.as_secs()
            ),
            true,
        )
    }
}

/// Bytes held against the budget; given back when dropped.
pub struct BodyPermit {
    budget: Arc<BodyBudget>,
    bytes: u64,
}

impl std::fmt::Debug for BodyPermit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BodyPermit({} bytes)", self.bytes)
    }
}

impl BodyPermit {
    /// Reserves `bytes` more, waiting up to `wait` for room. An empty budget always takes
    /// one reservation, however large, so a body the budget cannot hold is never stuck.
    pub async fn grow(&mut self, bytes: u64, wait: Duration) -> Result<(), Failure> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let freed = self.budget.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if self.budget.try_add(bytes) {
                self.bytes += bytes;
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return Err(self.budget.busy(bytes, wait));
            }
        }
    }

    /// Counts `bytes` the call holds already (its output) whether or not there is room: new
    /// calls wait until it is given back.
    pub fn hold(&mut self, bytes: u64) {
        self.budget.force_add(bytes);
        self.bytes += bytes;
    }

    /// The bytes this permit holds against the budget now.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for BodyPermit {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.budget.release(self.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn calls_wait_for_room_and_then_get_a_503() {
        let budget = BodyBudget::new(100);
        let wait = Duration::from_millis(50);
        let a = budget.reserve(60, wait).await.unwrap();
        let err = budget.reserve(60, wait).await.unwrap_err();
        assert_eq!(
            (err.kind, err.code.as_str()),
            (FailureKind::Unavailable, BUDGET_EXHAUSTED)
        );
        assert!(err.message.contains("body-budget"), "{}", err.message);
        // Room that comes free in time is taken.
        let waiting = {
            let budget = budget.clone();
            tokio::spawn(async move { budget.reserve(60, Duration::from_secs(10)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(a);
        let b = waiting.await.unwrap().unwrap();
        assert_eq!(budget.used(), 60);
        drop(b);
        assert_eq!(budget.used(), 0);
        // An empty budget takes one body larger than itself; an output is held regardless.
        let mut big = budget.reserve(500, wait).await.unwrap();
        big.hold(50);
        assert_eq!(budget.used(), 550);
        assert!(budget.reserve(1, wait).await.is_err());
        drop(big);
        assert_eq!(budget.used(), 0);
    }
}
