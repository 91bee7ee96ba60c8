//! Network namespaces with their network helper made ahead of demand ([`crate::DriverConfig`]'s
//! `spare_networks`): starting the helper takes milliseconds (slirp4netns, the default) to tens
//! of milliseconds (pasta, which opens its socket pools) of a cold start, so the driver keeps a
//! few instance ids whose namespace and helper are ready, and an instance with network takes
//! one instead of waiting.
//!
//! A spare is an instance in all but its container: its id comes from [`Layout::new_id`], its
//! directory holds `pasta.pid`, `pasta.log` and `resolv.conf`, its namespace is
//! `/run/netns/<id>`. So the instance that takes it keeps the id, and stop, teardown and the
//! cleanup after a crash (which go by id and prefix) remove spares like any instance. The pool
//! fills after the first start with network (a server whose functions have no network keeps
//! none) and again after each taking, in the background; a spare whose pasta has gone is torn
//! down instead of used. [`crate::Driver::stop_all`] closes the pool. The price: each idle
//! spare's helper holds about 0.5 MiB with slirp4netns, about 29 MiB with pasta (its static
//! buffers, shared between pastas only where the host runs same-page merging: see
//! `network::start_pasta`).

use std::sync::{Arc, Mutex, MutexGuard};

use super::layout::{self, Layout};
use super::network::{self, NetworkTools};
use super::Inner;

/// The spares and their bookkeeping.
#[derive(Debug, Default)]
pub(crate) struct SpareNetworks {
    /// How many to keep; 0: none.
    target: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Ids of ready spares, oldest first.
    ready: Vec<String>,
    /// Spares being made.
    filling: usize,
    /// No more spares (the driver stopped everything).
    closed: bool,
}

impl SpareNetworks {
    pub(crate) fn new(target: usize) -> Self {
        SpareNetworks {
            target,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a ready spare's id (the newest: its helper is the least likely to have gone).
    fn take(&self) -> Option<String> {
        self.state().ready.pop()
    }

    /// How many spares to start making now (counted as being made).
    fn reserve_fills(&self) -> usize {
        let mut state = self.state();
        if state.closed {
            return 0;
        }
        let missing = self
            .target
            .saturating_sub(state.ready.len() + state.filling);
        state.filling += missing;
        missing
    }

    /// A spare being made is ready (`Some`) or failed (`None`). Returns the id back when the
    /// pool was closed meanwhile (the caller tears it down).
    fn finish_fill(&self, id: Option<String>) -> Option<String> {
        let mut state = self.state();
        state.filling = state.filling.saturating_sub(1);
        match id {
            Some(id) if !state.closed => {
                state.ready.push(id);
                None
            }
            other => other,
        }
    }

    /// Closes the pool; returns the ready spares' ids (for the caller to tear down, unless a
    /// cleanup that finds them anyway follows).
    pub(crate) fn close(&self) -> Vec<String> {
        let mut state = self.state();
        state.closed = true;
        std::mem::take(&mut state.ready)
    }
}

impl Inner {
    /// The id of a spare whose namespace and helper are ready, if there is one; refills the
    /// pool in the background either way.
    pub(super) fn take_spare_network(self: &Arc<Self>, tools: &NetworkTools) -> Option<String> {
        if self.spares.target == 0 {
            return None;
        }
        let mut taken = None;
        while let Some(id) = self.spares.take() {
            let dir = self.layout.instance(&id);
            if network::helper_alive(&dir, Layout::netns_name(&id)) {
                taken = Some(id);
                break;
            }
            tracing::warn!(instance = %id, "the network helper of a spare network namespace is gone; removing the spare");
            self.discard_spare(id);
        }
        self.refill_spares(tools);
        taken
    }

    /// Starts making the spares that are missing, each in a task of its own.
    fn refill_spares(self: &Arc<Self>, tools: &NetworkTools) {
        for _ in 0..self.spares.reserve_fills() {
            let inner = Arc::clone(self);
            let tools = tools.clone();
            tokio::spawn(async move {
                let id = inner.layout.new_id();
                let made = inner.make_spare(&id, &tools).await;
                let back = match made {
                    Ok(()) => inner.spares.finish_fill(Some(id)),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot prepare a spare network namespace");
                        inner.spares.finish_fill(None);
                        Some(id)
                    }
                };
                if let Some(id) = back {
                    if let Err(e) = inner.teardown(&id).await {
                        tracing::warn!(instance = %id, error = %e, "teardown of a spare network failed");
                    }
                }
            });
        }
    }

    async fn make_spare(
        &self,
        id: &str,
        tools: &NetworkTools,
    ) -> Result<(), faasbox_driver::DriverError> {
        let dir = self.layout.instance(id);
        std::fs::create_dir_all(dir.root()).map_err(|e| {
            faasbox_driver::DriverError::io(format!("cannot create {}", dir.root().display()), e)
        })?;
        layout::make_traversable(dir.root())?;
        network::setup(tools, Layout::netns_name(id), &dir)
            .await
            .map(|_| ())
    }

    /// Tears a spare down in the background.
    fn discard_spare(self: &Arc<Self>, id: String) {
        let inner = Arc::clone(self);
        tokio::spawn(async move {
            if let Err(e) = inner.teardown(&id).await {
                tracing::warn!(instance = %id, error = %e, "teardown of a spare network failed");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_up_to_the_target_and_not_after_closing() {
        let spares = SpareNetworks::new(3);
        assert_eq!(spares.reserve_fills(), 3);
        assert_eq!(spares.reserve_fills(), 0);
        assert_eq!(spares.finish_fill(Some("a".into())), None);
        assert_eq!(spares.finish_fill(None), None);
        assert_eq!(spares.reserve_fills(), 1);
        assert_eq!(spares.take().as_deref(), Some("a"));
        assert_eq!(spares.reserve_fills(), 1);
        assert_eq!(spares.close(), Vec::<String>::new());
        assert_eq!(spares.finish_fill(Some("b".into())).as_deref(), Some("b"));
        assert_eq!(spares.reserve_fills(), 0);
        assert_eq!(spares.take(), None);
        assert_eq!(SpareNetworks::new(0).reserve_fills(), 0);
    }
}
