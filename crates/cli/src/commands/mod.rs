//! One module per command group; each turns parsed arguments into API calls and prints.

pub mod admin;
pub mod events;
pub mod flows;
pub mod functions;
pub mod images;
pub mod invocations;
pub mod namespaces;
pub mod registries;
pub mod secrets;
pub mod server;
pub mod tokens;
