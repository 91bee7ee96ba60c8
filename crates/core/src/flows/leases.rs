//! Flow instances under leases, for several servers on one store (being written: see
//! `crate::membership`, which calls [`tick`] after each heartbeat of this server).

use std::sync::Arc;

use crate::state::AppState;

/// Called once per heartbeat of this server (every third of the lease), after the heartbeat
/// was stored.
pub async fn tick(_state: &Arc<AppState>) {}
