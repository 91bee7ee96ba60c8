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
        /// The tool's name, e.g. `runc`.
        tool: &'static str,
        /// Where the driver looked for it (a bare name: in `PATH`).
        path: PathBuf,
        /// How to install it.
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
    /// The container runtime (e.g. runc/runsc) refused or failed a command.
    #[error("`{command}` failed: {message}")]
    Runtime {
        /// The command line, shortened.
        command: String,
        /// What it printed or why it failed.
        message: String,
    },
    /// The driver cannot do what was asked (e.g. [`crate::Driver::export_changes`]).
    #[error("the {driver} driver cannot {what}")]
    Unsupported {
        /// The driver's name.
        driver: &'static str,
        /// What it cannot do.
        what: &'static str,
    },
    /// A file-system operation of the driver failed.
    #[error("{context}: {source}")]
    Io {
        /// What the driver was doing, e.g. "cannot create /x".
        context: String,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Composing the root filesystem (e.g. with overlayfs) failed.
    #[error("overlay mount at {target} failed: {message}")]
    Mount {
        /// The mount point.
        target: PathBuf,
        /// Why it failed.
        message: String,
    },
    /// The image of the instance spec cannot be turned into a root filesystem (e.g. it is no
    /// longer in the image store).
    #[error("image {image} of {function} is not available: {message}")]
    Image {
        /// `"ns/fn"`.
        function: String,
        /// The image reference, e.g. `'app:1' (sha256:…)`.
        image: String,
        /// Why, and what to do about it.
        message: String,
    },
    /// The spec asks for a runtime class this driver does not provide.
    #[error("the {driver} driver does not provide the runtime class {class:?}: {hint}")]
    UnsupportedClass {
        /// The class's wire name, e.g. `runsc`.
        class: String,
        /// The driver's name, e.g. `runc`.
        driver: &'static str,
        /// What to do instead (configure the driver, or deploy with another runtime).
        hint: String,
    },
    /// Network namespace or pasta setup failed.
    #[error("network setup failed: {0}")]
    Network(String),
    /// The instance started but its agent never reported ready (or the agent exited).
    #[error("function {function} did not become ready{reason}{details}")]
    NotReady {
        /// `"ns/fn"`.
        function: String,
        /// Starts with a space or colon, e.g. " within 120s" or ": the agent exited".
        reason: String,
        /// The agent's report and the last lines of its log, each on its own line.
        details: String,
    },
    /// The instance spec cannot be run as given.
    #[error("invalid instance spec for {function}: {message}")]
    InvalidSpec {
        /// `"ns/fn"`.
        function: String,
        /// What is wrong with it.
        message: String,
    },
    /// The id given to stop/oom_killed is not one this driver could have made.
    #[error("invalid instance id {0:?}: not an id of this driver")]
    InvalidId(String),
    /// Some leftovers could not be removed.
    #[error("cleanup incomplete: {0}")]
    Cleanup(String),
}

impl DriverError {
    /// An [`DriverError::Io`] with what the driver was doing.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
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
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The HTTP exchange broke off (e.g. the agent died mid-call).
    #[error("HTTP exchange with the agent failed: {0}")]
    Http(#[from] hyper::Error),
    /// The agent answered with an unexpected status.
    #[error("the agent answered {status} to {path}: {body}")]
    Status {
        /// The request path, e.g. `/v1/invoke`.
        path: &'static str,
        /// The HTTP status.
        status: u16,
        /// The start of the answer's body.
        body: String,
    },
    /// The agent's answer is not the JSON the protocol defines.
    #[error("the agent's answer to {path} is not valid: {source}")]
    Decode {
        /// The request path.
        path: &'static str,
        /// What is wrong with the JSON.
        #[source]
        source: serde_json::Error,
    },
    /// The agent's answer is larger than the platform takes.
    #[error("the agent's answer to {path} is larger than {limit} bytes; the call's output and logs must stay under it")]
    TooLarge {
        /// The request path.
        path: &'static str,
        /// The largest answer taken, in bytes.
        limit: usize,
    },
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
