//! The core's error: what went wrong in domain terms ([`FailureKind`]), a stable code (flows
//! catch function failures by it), a message with the fix, and whether a flow may catch it.
//! It knows nothing of HTTP: `faasbox_http::error` maps each kind to a status in one place.

/// Error codes the platform itself produces (a function's own codes pass through unchanged).
/// They are part of the domain: flows catch failures by them and metrics count by them.
pub mod codes {
    /// What the caller sent is wrong.
    pub const BAD_REQUEST: &str = "faasbox.request.invalid";
    /// What the caller named does not exist.
    pub const NOT_FOUND: &str = "faasbox.not_found";
    /// The request clashes with the current state.
    pub const CONFLICT: &str = "faasbox.conflict";
    /// What the caller sent is larger than allowed.
    pub const TOO_LARGE: &str = "faasbox.request.too_large";
    /// The server's own fault.
    pub const INTERNAL: &str = "faasbox.internal";
    /// A request handler panicked (a bug); the server goes on serving.
    pub const PANIC: &str = "faasbox.internal.panic";
    /// The function crashed, or its instance failed, during the call.
    pub const FUNCTION_CRASHED: &str = "faasbox.function.crashed";
    /// The function did not answer within its timeout.
    pub const FUNCTION_TIMEOUT: &str = "faasbox.function.timeout";
    /// The call was cancelled while it ran.
    pub const FUNCTION_CANCELLED: &str = "faasbox.function.cancelled";
    /// The function's instance ran out of memory.
    pub const FUNCTION_OOM: &str = "faasbox.function.oom";
    /// No instance of the function could be started.
    pub const FUNCTION_START: &str = "faasbox.function.start_failed";
    /// The function's queue of waiting calls is full, or no instance came free in time.
    pub const QUEUE_FULL: &str = "faasbox.function.queue_full";
}

/// What kind of thing went wrong. The HTTP layer gives each kind its status; everything else
/// (flows, events, metrics) decides by the kind and the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// What the caller sent is wrong (a bad name, spec, body, template).
    Invalid,
    /// What the caller named does not exist.
    NotFound,
    /// The request clashes with the current state (exists already, ended already, in use).
    Conflict,
    /// What the caller sent is larger than allowed.
    TooLarge,
    /// Not allowed for this caller (a quota, a rule).
    Forbidden,
    /// The call was cancelled while it ran.
    Cancelled,
    /// The server cannot do it now (a full queue, an exhausted budget, an image not local
    /// yet); trying again later may work.
    Unavailable,
    /// The function failed: it crashed, could not start, or ran out of memory.
    FunctionFailed,
    /// The function did not answer within its timeout.
    FunctionTimeout,
    /// The server's own fault (a bug, a broken store).
    Internal,
}

impl FailureKind {
    /// Every kind, for tables and tests.
    pub const ALL: [FailureKind; 10] = [
        FailureKind::Invalid,
        FailureKind::NotFound,
        FailureKind::Conflict,
        FailureKind::TooLarge,
        FailureKind::Forbidden,
        FailureKind::Cancelled,
        FailureKind::Unavailable,
        FailureKind::FunctionFailed,
        FailureKind::FunctionTimeout,
        FailureKind::Internal,
    ];

    /// Whether the caller is to blame (what it sent or asked for), as opposed to the server or
    /// the function. Events drop a caller's failure; flows treat a server's as fatal.
    pub fn is_callers(self) -> bool {
        match self {
            FailureKind::Invalid
            | FailureKind::NotFound
            | FailureKind::Conflict
            | FailureKind::TooLarge
            | FailureKind::Forbidden
            | FailureKind::Cancelled => true,
            FailureKind::Unavailable
            | FailureKind::FunctionFailed
            | FailureKind::FunctionTimeout
            | FailureKind::Internal => false,
        }
    }
}

/// A failure of the call path or of a management operation.
#[derive(Debug, Clone)]
pub struct Failure {
    /// What kind of thing went wrong (decides the HTTP status).
    pub kind: FailureKind,
    /// A stable code, e.g. `faasbox.request.invalid` or a function's own.
    pub code: String,
    /// What is wrong, with the fix.
    pub message: String,
    /// For function failures: whether a flow can catch it by its code.
    pub catchable: Option<bool>,
    /// The single problems the message sums up, each at its JSON pointer (a schema's
    /// violations); empty for most failures.
    pub details: Vec<FailureDetail>,
}

/// One problem of a [`Failure`], at its place in the JSON it is about.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct FailureDetail {
    /// The JSON pointer of the place (`""` is the whole document).
    pub pointer: String,
    /// What is wrong there.
    pub message: String,
}

/// The result of core operations.
pub type Fallible<T> = Result<T, Failure>;

impl Failure {
    /// A failure of `kind` with `code` and `message`; not a function's (`catchable` is `None`).
    pub fn new(kind: FailureKind, code: &str, message: impl Into<String>) -> Self {
        Failure {
            kind,
            code: code.to_string(),
            message: message.into(),
            catchable: None,
            details: Vec::new(),
        }
    }

    /// What the caller sent is wrong (`faasbox.request.invalid`).
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(FailureKind::Invalid, codes::BAD_REQUEST, message)
    }

    /// What the caller named does not exist (`faasbox.not_found`).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(FailureKind::NotFound, codes::NOT_FOUND, message)
    }

    /// The request clashes with the current state (`faasbox.conflict`).
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(FailureKind::Conflict, codes::CONFLICT, message)
    }

    /// What the caller sent is larger than allowed (`faasbox.request.too_large`).
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(FailureKind::TooLarge, codes::TOO_LARGE, message)
    }

    /// The server's own fault (`faasbox.internal`).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(FailureKind::Internal, codes::INTERNAL, message)
    }

    /// A failure of a function call, which a flow may catch by its code when `catchable`.
    pub fn function(
        kind: FailureKind,
        code: &str,
        message: impl Into<String>,
        catchable: bool,
    ) -> Self {
        Failure {
            catchable: Some(catchable),
            ..Self::new(kind, code, message)
        }
    }

    /// See [`FailureKind::is_callers`].
    pub fn is_callers(&self) -> bool {
        self.kind.is_callers()
    }

    /// The failure that says namespace `ns` does not exist, with how to create it.
    pub fn no_such_namespace(ns: &str) -> Self {
        Failure::not_found(format!(
            "namespace '{ns}' does not exist; create it with `faasbox ns create {ns}`"
        ))
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Failure {}

impl From<faasbox_store::StoreError> for Failure {
    fn from(e: faasbox_store::StoreError) -> Self {
        use faasbox_store::StoreError;
        match e {
            StoreError::NoNamespace(ns) => Failure::no_such_namespace(&ns),
            StoreError::NamespaceExists(ns) => {
                Failure::conflict(format!("namespace '{ns}' already exists"))
            }
            other => Failure::internal(other.to_string()),
        }
    }
}

/// Problems with what the user sent (a bad name, a bad archive, a missing image) are the
/// caller's; the image store's own failures are internal.
impl From<faasbox_images::ImageError> for Failure {
    fn from(e: faasbox_images::ImageError) -> Self {
        match &e {
            faasbox_images::ImageError::NotFound(_) => Failure::not_found(e.to_string()),
            faasbox_images::ImageError::TooLarge { .. }
            | faasbox_images::ImageError::DownloadTooLarge { .. } => {
                Failure::too_large(e.to_string())
            }
            _ if e.is_user_error() => Failure::invalid(e.to_string()),
            _ => Failure::internal(e.to_string()),
        }
    }
}

impl From<tokio::task::JoinError> for Failure {
    /// A task that panicked is a bug like a panicking handler: internal with [`codes::PANIC`].
    fn from(e: tokio::task::JoinError) -> Self {
        let code = if e.is_panic() {
            codes::PANIC
        } else {
            codes::INTERNAL
        };
        Failure::new(
            FailureKind::Internal,
            code,
            format!("a background task failed: {e}"),
        )
    }
}
