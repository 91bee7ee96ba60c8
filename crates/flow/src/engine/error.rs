//! The errors an instance can meet, Direktiv's error codes, and matching codes against
//! `catch` and `retries` patterns.

use serde::{Deserialize, Serialize};

/// Direktiv's error codes raised by the engine itself.
pub mod codes {
    pub const BAD_COMMAND: &str = faasbox_expr::BAD_COMMAND;
    pub const NOT_OBJECT: &str = faasbox_expr::NOT_OBJECT;
    pub const RETRIES_EXCEEDED: &str = "direktiv.retries.exceeded";
    pub const TIMEOUT_SOFT: &str = "direktiv.cancels.timeout.soft";
    pub const TIMEOUT_HARD: &str = "direktiv.cancels.timeout.hard";
    pub const CANCELLED: &str = "direktiv.cancels.api";
    pub const SCHEMA_FAILED: &str = "direktiv.schema.failed";
    pub const FOREACH_INPUT: &str = "direktiv.foreach.input";
    pub const CRASHED: &str = "direktiv.crashed";
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
    pub code: String,
    pub message: String,
    pub catchable: bool,
}

impl FlowError {
    pub fn catchable(code: &str, message: impl Into<String>) -> FlowError {
        FlowError {
            code: code.to_string(),
            message: message.into(),
            catchable: true,
        }
    }

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

    pub fn internal(message: impl Into<String>) -> FlowError {
        FlowError::fatal(codes::INTERNAL, message)
    }

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

/// Whether `code` matches `pattern`, in which `*` stands for any run of characters.
pub fn matches(pattern: &str, code: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == code;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !code.starts_with(first) || code.len() < first.len() + last.len() || !code.ends_with(last) {
        return false;
    }
    let mut rest = &code[first.len()..code.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn patterns() {
        assert!(matches("*", "a.b"));
        assert!(matches("app.*", "app.input"));
        assert!(!matches("app.*", "other.input"));
        assert!(matches("*.timeout.*", "direktiv.cancels.timeout.soft"));
        assert!(matches("a.b", "a.b"));
        assert!(!matches("a.b", "a.bc"));
        assert!(!matches("a*a", "a"));
    }
}
