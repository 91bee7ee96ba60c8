//! The gateway's view of every enabled route, compiled for matching: which route answers a
//! request under `/ns/{namespace}` or on a route's host, and its path parameters. Reloaded from
//! the store whenever a route changes (see `manage`).

use faasbox_store::Store;

use crate::failure::Failure;

/// Every route the gateway serves.
#[derive(Default)]
pub struct RouteTable {}

impl RouteTable {
    /// Reads every route from the store and serves the enabled ones (a stub until the
    /// gateway's table is in; `routes-gw` replaces it).
    pub async fn reload(&self, _store: &dyn Store) -> Result<(), Failure> {
        Ok(())
    }
}
