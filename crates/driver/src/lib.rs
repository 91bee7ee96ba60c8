//! The interface between faasbox and whatever runs function instances.
//!
//! - [`Driver`] is what the server's pool talks to: start an instance of a function from an
//!   [`InstanceSpec`] (an image reference, environment, agent configuration, limits, a
//!   [`RuntimeClass`]), stop it, tell whether it died of an out-of-memory kill, and clean up
//!   after a crash ([`CleanupReport`]). `faasbox-driver-runc` implements it with runc/runsc.
//! - [`AgentClient`] speaks the platform↔agent protocol of [`faasbox_proto`] to an instance's
//!   agent at the [`faasbox_proto::AgentEndpoint`] its driver returned (a Unix socket, or TCP
//!   with the instance's secret).
//! - [`fake::FakeDriver`] (feature `fake`) runs no containers: in-process agent stand-ins for
//!   fast tests of what sits on top of a driver.

mod agent_client;
mod driver;
mod error;
#[cfg(any(test, feature = "fake"))]
pub mod fake;
mod network_helper;
mod oci_runtime;

#[cfg(test)]
mod tests;

pub use agent_client::AgentClient;
pub use driver::{
    CleanupReport, Driver, ExportedChanges, ImageRef, Instance, InstanceSpec, Limits,
    ParseRuntimeClassError, RuntimeClass, ScratchMount,
};
pub use error::{AgentError, DriverError};
pub use network_helper::{NetworkHelper, UnknownNetworkHelper};
pub use oci_runtime::{OciRuntime, UnknownOciRuntime};
