//! The errors an instance can meet and Direktiv's error codes (patterns that match codes are
//! [`crate::pattern`]).

use serde::{Deserialize, Serialize};

/// Direktiv's error codes raised by the engine itself.
pub mod codes {
    /// A jq expression that cannot be run (or gives not exactly one result).
    pub const BAD_COMMAND: &str = faasbox_expr::BAD_COMMAND;
    /// Instance data that stopped being a JSON object.
    pub const NOT_OBJECT: &str = faasbox_expr::NOT_OBJECT;
    /// An action that failed again after its last retry.
    pub const RETRIES_EXCEEDED: &str = "direktiv.retries.exceeded";
    /// A state's `timeout` or the flow's `interrupt` passed (catchable).
    pub const TIMEOUT_SOFT: &str = "direktiv.cancels.timeout.soft";
    /// The flow's `kill` timeout passed: the instance ends.
    pub const TIMEOUT_HARD: &str = "direktiv.cancels.timeout.hard";
    /// The instance was cancelled through the API.
    pub const CANCELLED: &str = "direktiv.cancels.api";
    /// A `validate` state's subject does not fit its schema.
    pub const SCHEMA_FAILED: &str = "direktiv.schema.failed";
    /// A `foreach` state's `array` expression gave something else than an array.
    pub const FOREACH_BAD_ARRAY: &str = "direktiv.foreach.badArray";
    /// A `parallel` state in mode `or` whose actions all failed.
    pub const PARALLEL_ALL_FAILED: &str = "direktiv.parallel.allFailed";
    /// A second `error` state raised while one's error is pending.
    pub const MULTIPLE_ERRORS: &str = "direktiv.workflow.multipleErrors";
    /// A failure without an error code of its own (a function crashed).
    pub const CRASHED: &str = "direktiv.crashed";
    /// The platform failed (the store, the expression workers), not the flow.
    pub const INTERNAL: &str = "faasbox.flow.internal";
    /// The instance ran more states than the server allows one instance.
    pub const TOO_MANY_TRANSITIONS: &str = "faasbox.flow.too_many_transitions";
    /// The instance data grew past the server's bound.
    pub const DATA_TOO_LARGE: &str = "faasbox.flow.data_too_large";
}

/// An error in an instance. Catchable errors can be caught by `catch` and retried by
/// `retries`; the others (crashes, hard timeouts, cancels, internal failures) end the instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct FlowError {
    /// The error code (`direktiv.…`, `faasbox.…` or a function's own).
    pub code: String,
    /// What happened, for people.
    pub message: String,
    /// Whether `catch` and `retries` may handle it.
    pub catchable: bool,
}

impl FlowError {
    /// An error `catch` and `retries` may handle.
    pub fn catchable(code: &str, message: impl Into<String>) -> FlowError {
        FlowError {
            code: code.to_string(),
            message: message.into(),
            catchable: true,
        }
    }

    /// An error that ends the instance, whatever it catches.
    pub fn fatal(code: &str, message: impl Into<String>) -> FlowError {
        FlowError {
            code: code.to_string(),
            message: message.into(),
            catchable: false,
        }
    }

    /// A crash: a failure without an error code (not catchable).
    pub fn crash(message: impl Into<String>) -> FlowError {
        FlowError::fatal(codes::CRASHED, message)
    }

    /// The error of an instance cancelled through the API (Direktiv's code and message).
    pub fn cancelled() -> FlowError {
        FlowError::fatal(codes::CANCELLED, "cancelled by api request")
    }

    /// A failure of the platform rather than the flow (fatal).
    pub fn internal(message: impl Into<String>) -> FlowError {
        FlowError::fatal(codes::INTERNAL, message)
    }

    /// An expression's failure: catchable `direktiv.jq.badCommand` with its message.
    pub fn from_expr(e: faasbox_expr::TemplateError) -> FlowError {
        FlowError::catchable(codes::BAD_COMMAND, e.0)
    }

    /// An evaluation's failure: the expression's (catchable `direktiv.jq.badCommand`, also
    /// past a bound), a cancel, or the platform's.
    pub fn from_eval(e: faasbox_expr::sandbox::EvalError) -> FlowError {
        use faasbox_expr::sandbox::EvalError;
        match e {
            EvalError::Expr(e) => FlowError::from_expr(e),
            EvalError::Cancelled => super::cancelled(),
            EvalError::Unavailable(message) => FlowError::internal(message),
        }
    }

    /// Replaces every secret value in the message by `***`.
    pub fn masked(mut self, secrets: &[String]) -> FlowError {
        for secret in secrets.iter().filter(|s| !s.is_empty()) {
            self.message = self.message.replace(secret.as_str(), "***");
        }
        self
    }

    /// The error as Direktiv puts it at `.error` when it is caught.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"code": self.code, "msg": self.message})
    }
}
