//! The faasbox core: function specs and their deployments, the pools of warm instances, the
//! invoker, the flow runner and the event dispatcher, over a store and a driver given to it.
//!
//! It knows no HTTP (its errors are [`failure::Failure`]; `faasbox-http` maps them to
//! statuses) and no SQL (the store is `faasbox_store::Store`). `faasbox-server` composes it.

pub mod activity;
pub mod auth;
pub mod bodies;
pub mod bounds;
pub mod call_input;
pub mod changes;
pub mod clock;
pub mod cluster;
pub mod code;
pub mod code_builds;
pub mod code_schemas;
pub mod config;
pub mod deploy;
pub mod deployments;
pub mod event_bus;
pub mod events;
pub mod failure;
pub mod flow_runs;
pub mod flows;
pub mod follow;
pub mod image_book;
pub mod image_pin;
pub mod image_pull;
pub mod instance_spec;
pub mod invoker;
pub mod live_logs;
pub mod mask;
pub mod membership;
pub mod metrics;
pub mod model;
pub mod owner;
pub mod pool;
pub mod quota;
pub mod record_id;
pub mod registry_credentials;
pub mod routes;
pub mod run_book;
pub mod run_record;
pub mod run_writer;
pub mod runs;
pub mod secret_use;
pub mod services;
pub mod shared_images;
pub mod spec_changes;
pub mod state;
pub mod subscriptions;
#[cfg(test)]
mod test_support;
pub use faasbox_expr as template;
mod vault_error;

pub use config::{ServerConfig, DEFAULT_DATA_DIR, DEFAULT_LISTEN};
pub use faasbox_flow::engine::Limits as FlowLimits;
pub use model::FunctionSpec;
