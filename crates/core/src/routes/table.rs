//! The gateway's view of every enabled route, compiled for matching: which route answers a
//! request under `/ns/{namespace}` or on a route's host, and its path parameters. Reloaded from
//! the store whenever a route changes (see `manage`).

/// Every route the gateway serves.
#[derive(Default)]
pub struct RouteTable {}
