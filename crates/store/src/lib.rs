//! faasbox's metadata store, as an interface: the records it keeps (namespaces, function specs
//! and their revisions, invocations and their logs, flows, events, secrets, tokens, image pull
//! failures), its errors, and one async trait per part. A backend crate implements every part
//! (`faasbox-store-sqlite` is the embedded default); the server holds it as `Arc<dyn Store>`.
//!
//! Specs, flow sources and checkpoints are kept as JSON or YAML text: their shape belongs to the
//! server, a store only persists them. Secrets and registry credentials arrive as opaque
//! encrypted blobs (the crypto lives in `faasbox-secrets`). Every trait method that changes more
//! than one thing does it in one transaction of the backend: it either happens entirely or not
//! at all. With the feature `backend-suite`, `backend_suite!` gives a backend crate the test
//! cases every backend must pass.

pub mod events;
pub mod flows;
pub mod functions;
pub mod images;
pub mod invocations;
pub mod namespaces;
pub mod secrets;
#[cfg(feature = "backend-suite")]
pub mod suite;
pub mod tokens;

pub use events::{
    Decide, DelayedEvent, Delivery, EventInsert, EventStore, GatheredRecord, Listener,
    ListenerAction, ListenerKind, ListenerRecord, ScheduleRecord, StoredEvent,
};
pub use flows::{
    FlowInstanceRecord, FlowRecord, FlowStore, InstanceCallRecord, InstanceLogRecord, NewInstance,
    NewInstanceLog,
};
pub use functions::{
    FunctionRecord, FunctionStore, NewRevision, Revised, RevisionRecord, GLOBAL_OWNER,
};
pub use images::{PullFailure, PullFailureStore};
pub use invocations::{
    FunctionLogLine, FunctionLogs, InvocationEnd, InvocationRecord, InvocationStore,
};
pub use namespaces::{NamespaceRecord, NamespaceStore};
pub use secrets::{
    is_pseudo_namespace, DataKeyRecord, RegistryRecord, Rewrap, SecretEntry, SecretRecord,
    SecretStore,
};
pub use tokens::{TokenRecord, TokenStore};

/// Any error, boxed: what a backend's own failures are carried as.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed (its database, its connection); the source is the backend's error.
    #[error("database error: {0}")]
    Backend(#[source] BoxError),
    #[error("cannot open the database {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: BoxError,
    },
    #[error("cannot make the database {path} private (mode 0600): {source}")]
    Private {
        path: String,
        source: std::io::Error,
    },
    #[error("namespace '{0}' does not exist")]
    NoNamespace(String),
    #[error("namespace '{0}' already exists")]
    NamespaceExists(String),
    #[error("'{0}' has no data key (its namespace was deleted meanwhile?)")]
    NoDataKey(String),
    #[error("the database was written by a newer faasbox (schema {found}, this build knows {known}); upgrade faasbox")]
    TooNew { found: i64, known: i64 },
    /// A caller's function run inside a transaction (such as [`Rewrap`]) refused; nothing was
    /// changed. The source is the caller's own error.
    #[error("{0}")]
    Refused(#[source] BoxError),
}

impl StoreError {
    /// A backend's own failure.
    pub fn backend(error: impl Into<BoxError>) -> StoreError {
        StoreError::Backend(error.into())
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Everything the server keeps, as one trait object (`Arc<dyn Store>`). Every type that
/// implements all the parts is a `Store`.
pub trait Store:
    NamespaceStore
    + FunctionStore
    + InvocationStore
    + FlowStore
    + EventStore
    + SecretStore
    + TokenStore
    + PullFailureStore
{
}

impl<T> Store for T where
    T: NamespaceStore
        + FunctionStore
        + InvocationStore
        + FlowStore
        + EventStore
        + SecretStore
        + TokenStore
        + PullFailureStore
{
}
