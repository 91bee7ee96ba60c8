//! Function instances as OCI containers.
//!
//! - [`Driver`] is what the server's pool talks to: start an instance of a function, stop it,
//!   tell whether it died of an out-of-memory kill, and clean up after a crash.
//! - [`RuncDriver`] implements it with an OCI runtime CLI (`runc`, or gVisor's `runsc`),
//!   overlayfs root filesystems composed from image layers, cgroup limits, and outbound network
//!   through `pasta` in a per-instance network namespace.
//! - [`AgentClient`] speaks the platform↔agent protocol of [`faasbox_proto`] over the
//!   instance's Unix socket.
//! - [`fake::FakeDriver`] (feature `fake`) runs no containers: in-process agent stand-ins for
//!   fast tests of what sits on top of a driver.

mod agent_client;
mod driver;
mod error;
#[cfg(any(test, feature = "fake"))]
pub mod fake;
mod runc;

#[cfg(test)]
mod tests;

pub use agent_client::AgentClient;
pub use driver::{
    CleanupReport, Driver, DriverConfig, IdMap, Instance, InstanceSpec, Limits, OciRuntime,
    ParseOciRuntimeError, ScratchMount,
};
pub use error::{AgentError, DriverError};
pub use runc::RuncDriver;
