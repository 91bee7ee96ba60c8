//! faasbox's metadata store, as an interface: the records it keeps (namespaces, function specs
//! and their revisions, invocations and their logs, flows, events, secrets, service instances, tokens, image pull
//! failures, functions from code), its errors, and one async trait per part. A backend crate implements every part
//! (`faasbox-store-sqlite` is the embedded default); the server holds it as `Arc<dyn Store>`.
//!
//! Specs, flow sources and checkpoints are kept as JSON or YAML text: their shape belongs to the
//! server, a store only persists them. Secrets and registry credentials arrive as opaque
//! encrypted blobs (the crypto lives in `faasbox-secrets`). Every trait method that changes more
//! than one thing does it in one transaction of the backend: it either happens entirely or not
//! at all.
//!
//! What every backend must do alike:
//! - Times (`created`, `updated`, `now`, `started`, …) are text the caller gives (the server
//!   writes RFC 3339 in UTC, with milliseconds); a store keeps them verbatim, and where a list is
//!   ordered by a time it is ordered by that text. Times named `…_ms` are integers (ms since
//!   the epoch).
//! - Looking up a row that does not exist gives `Ok(None)` (or an empty list), never an error;
//!   deleting one gives `Ok(false)` (or `0`).
//! - A write that needs its namespace to exist fails with [`StoreError::NoNamespace`] when it
//!   does not; the methods that check say so. Other methods do not check.
//! - A failure of the backend itself (connection, SQL, a constraint the method does not name,
//!   such as a second row with the same id) is [`StoreError::Backend`].
//!
//! With the feature `backend-suite`, `backend_suite!` gives a backend crate the test
//! cases every backend must pass.

pub mod changes;
pub mod code;
pub mod events;
pub mod flows;
pub mod functions;
pub mod image_names;
pub mod images;
pub mod invocations;
pub mod namespaces;
pub mod nodes;
pub mod routes;
pub mod secrets;
pub mod services;
pub mod sessions;
#[cfg(feature = "backend-suite")]
pub mod suite;
pub mod tokens;

pub use changes::{ChangeRecord, ChangeStore};
pub use code::{
    BuildLogLine, CodeKind, CodeRecord, CodeStatus, CodeStore, NewBuildLogLine, BUILD_LOG_CUT,
    MAX_BUILD_LOG_BYTES, MAX_BUILD_LOG_LINES,
};
pub use events::{
    Decide, DelayedEvent, Delivery, EventInsert, EventStore, GatheredRecord, Listener,
    ListenerAction, ListenerKind, ListenerRecord, ScheduleRecord, StoredEvent, SubscriptionRecord,
};
pub use flows::{
    Claim, ExpiredInstance, Fence, FlowInstanceRecord, FlowRecord, FlowStore, InstanceCallRecord,
    InstanceFilter, InstanceLogRecord, NewInstance, NewInstanceLog, ProgressView, ProgressWrite,
    StepEnd, StepRecord, StepStart,
};
pub use functions::{
    FunctionRecord, FunctionStore, NewRevision, Revised, RevisionRecord, GLOBAL_OWNER,
};
pub use image_names::{ImageCatalogStore, ImageNameRecord};
pub use images::{PullFailure, PullFailureStore};
pub use invocations::{
    CallWrite, FunctionLogLine, FunctionLogs, Interruption, InvocationEnd, InvocationRecord,
    InvocationStore, NewRun, OwnedInvocationEnd, Requeued, RunCount, RunFilter, RunPhases,
};
pub use namespaces::{NamespaceRecord, NamespaceStore};
pub use nodes::{NewNode, NodeList, NodeLoad, NodeRecord, NodeStore};
pub use routes::{RouteRecord, RouteStore};
pub use secrets::{
    is_pseudo_namespace, DataKeyRecord, RegistryRecord, Rewrap, SecretEntry, SecretRecord,
    SecretStore,
};
pub use services::{ServiceRecord, ServiceStore};
pub use sessions::{SessionCaps, SessionRecord, SessionStore};
pub use tokens::{TokenRecord, TokenStore};

/// Any error, boxed: what a backend's own failures are carried as.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a store method fails with. Callers match on the variants other than `Backend`, so a
/// backend must use them where the methods' docs name them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed (its database, its connection); the source is the backend's error.
    #[error("database error: {0}")]
    Backend(#[source] BoxError),
    /// The database could not be opened (or connected to) when the store was made.
    #[error("cannot open the database {path}: {source}")]
    Open {
        /// Where the database is: a file's path, or whatever names it for the backend.
        path: String,
        /// The backend's error.
        #[source]
        source: BoxError,
    },
    /// A file-based backend could not make its database file readable by its owner only.
    #[error("cannot make the database {path} private (mode 0600): {source}")]
    Private {
        /// The database file.
        path: String,
        /// Why `chmod` (or the creation of the file) failed.
        source: std::io::Error,
    },
    /// The namespace a write needs does not exist (the name is the namespace's).
    #[error("namespace '{0}' does not exist")]
    NoNamespace(String),
    /// [`NamespaceStore::create_namespace`] found a namespace of that name.
    #[error("namespace '{0}' already exists")]
    NamespaceExists(String),
    /// A secret or registry credential was written for a namespace (or pseudo-namespace)
    /// without a data key, typically because the namespace was deleted while the value was
    /// being encrypted. The name is the namespace's.
    #[error("'{0}' has no data key (its namespace was deleted meanwhile?)")]
    NoDataKey(String),
    /// The database's schema is newer than this build knows; opening it is refused so an older
    /// faasbox never writes a newer schema.
    #[error("the database was written by a newer faasbox (schema {found}, this build knows {known}); upgrade faasbox")]
    TooNew {
        /// The schema version the database has.
        found: i64,
        /// The newest schema version this build knows.
        known: i64,
    },
    /// A caller's function run inside a transaction (such as [`Rewrap`]) refused; nothing was
    /// changed. The source is the caller's own error.
    #[error("{0}")]
    Refused(#[source] BoxError),
    /// A fenced write to a flow instance ([`FlowStore::save_checkpoint`] and the others that
    /// take a fence) found the instance held by another server, or by a later claim of this
    /// one: its lease expired and it was taken over. The writer must stop driving it.
    #[error("flow instance '{id}' is now driven by server '{owner}' (this server's lease on it expired and it was taken over); this server stops driving it")]
    LeaseLost {
        /// The instance.
        id: String,
        /// The server that holds it now ("" when none does).
        owner: String,
    },
}

impl StoreError {
    /// A backend's own failure.
    pub fn backend(error: impl Into<BoxError>) -> StoreError {
        StoreError::Backend(error.into())
    }
}

/// The result of every store method.
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
    + ServiceStore
    + RouteStore
    + TokenStore
    + PullFailureStore
    + CodeStore
    + ChangeStore
    + NodeStore
    + SessionStore
    + ImageCatalogStore
{
}

impl<T> Store for T where
    T: NamespaceStore
        + FunctionStore
        + InvocationStore
        + FlowStore
        + EventStore
        + SecretStore
        + ServiceStore
        + RouteStore
        + TokenStore
        + PullFailureStore
        + CodeStore
        + ChangeStore
        + NodeStore
        + SessionStore
        + ImageCatalogStore
{
}
