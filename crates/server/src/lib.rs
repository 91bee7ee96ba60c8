//! The faasbox server, composed: the configuration read, the chosen store (SQLite or PostgreSQL) and driver
//! (runc, runsc) opened and wired into the core's services, and the HTTP API served over them.
//!
//! Start it with [`app::run`]. The CLI (`faasbox server`) is a thin layer over this crate; the
//! settings and spec types it names are the core's, re-exported here.

pub mod app;
pub mod heap_trim;
pub mod migrate_store;

pub use faasbox_core::{cluster, config, model, quota, template, FlowLimits, FunctionSpec};
pub use faasbox_core::{ServerConfig, DEFAULT_DATA_DIR, DEFAULT_LISTEN};
