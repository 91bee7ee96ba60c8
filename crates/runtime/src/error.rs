//! Errors of the driver and of the agent client. Their messages say what failed and, where the
//! fix is on the operator's side, how to fix it.

use std::io;
use std::path::PathBuf;

/// Why a driver operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// A host tool the driver needs is not installed.
    #[error("{tool} not found ({path}): {hint}")]
    ToolMissing {
        tool: &'static str,
        path: PathBuf,
        hint: &'static str,
    },
    /// The agent binary configured for the driver does not exist.
    #[error(
        "agent binary not found at {0}: build it with `cargo build -p faasbox-agent` \
         (it must be a static binary) or set the agent path in the server configuration"
    )]
    AgentMissing(PathBuf),
    /// Container root of a user namespace cannot run the agent binary (it is host root's).
    #[error(
        "the agent binary {0} is not readable and executable by others: container root (an \
         unprivileged host uid in its user namespace) must run it; `chmod 0755` it"
    )]
    AgentNotExecutable(PathBuf),
    /// The OCI runtime (runc/runsc) refused or failed a command.
    #[error("`{command}` failed: {message}")]
    Runtime { command: String, message: String },
    /// A file-system operation of the driver failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// Composing the root filesystem with overlayfs failed.
    #[error("overlay mount at {target} failed: {message}")]
    Mount { target: PathBuf, message: String },
    /// Network namespace or pasta setup failed.
    #[error("network setup failed: {0}")]
    Network(String),
    /// The instance started but its agent never reported ready (or the agent exited).
    #[error("function {function} did not become ready{reason}{details}")]
    NotReady {
        function: String,
        /// Starts with a space or colon, e.g. " within 120s" or ": the agent exited".
        reason: String,
        /// The agent's report and the last lines of its log, each on its own line.
        details: String,
    },
    /// The instance spec cannot be run as given.
    #[error("invalid instance spec for {function}: {message}")]
    InvalidSpec { function: String, message: String },
    /// The id given to stop/oom_killed is not one this driver could have made.
    #[error("invalid instance id {0:?}: not an id of this driver")]
    InvalidId(String),
    /// Some leftovers could not be removed.
    #[error("cleanup incomplete: {0}")]
    Cleanup(String),
}

impl DriverError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        DriverError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Why a request to the agent failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The socket does not exist or nobody listens on it (the instance is gone or not up yet).
    #[error("cannot connect to the agent at {endpoint}: {source}")]
    Connect {
        /// The socket path, or `tcp:ADDR` (never the secret).
        endpoint: String,
        #[source]
        source: io::Error,
    },
    /// The HTTP exchange broke off (e.g. the agent died mid-call).
    #[error("HTTP exchange with the agent failed: {0}")]
    Http(#[from] hyper::Error),
    /// The agent answered with an unexpected status.
    #[error("the agent answered {status} to {path}: {body}")]
    Status {
        path: &'static str,
        status: u16,
        body: String,
    },
    /// The agent's answer is not the JSON the protocol defines.
    #[error("the agent's answer to {path} is not valid: {source}")]
    Decode {
        path: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// The agent's answer is larger than the platform takes.
    #[error("the agent's answer to {path} is larger than {limit} bytes; the call's output and logs must stay under it")]
    TooLarge { path: &'static str, limit: usize },
    /// The request could not be built (e.g. a header value with control characters).
    #[error("invalid request to the agent: {0}")]
    Request(String),
}

impl AgentError {
    /// True when the agent could not be reached at all: nothing listens on the socket.
    pub fn is_connect(&self) -> bool {
        matches!(self, AgentError::Connect { .. })
    }
}
