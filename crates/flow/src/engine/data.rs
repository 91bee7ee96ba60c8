//! Instance data rules: expressions evaluated through the engine's
//! [`Evaluator`](faasbox_expr::sandbox::Evaluator) (bounded, cancellable), transforms, data
//! that must stay a JSON object, and the bound on its size.

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{codes, Engine, FlowError};

impl Engine {
    /// Renders a template against `data`; `cancel` stops it.
    pub(super) async fn render(
        &self,
        template: &Value,
        data: &Value,
        cancel: &CancellationToken,
    ) -> Result<Value, FlowError> {
        self.evaluator
            .render(template, data, cancel)
            .await
            .map_err(FlowError::from_eval)
    }

    /// Evaluates a bare expression or a template against `data`.
    pub(super) async fn evaluate(
        &self,
        value: &Value,
        data: &Value,
        cancel: &CancellationToken,
    ) -> Result<Value, FlowError> {
        self.evaluator
            .evaluate(value, data, cancel)
            .await
            .map_err(FlowError::from_eval)
    }

    /// Applies a `transform` (a template, or a bare jq expression) to `data`.
    pub(super) async fn transform(
        &self,
        transform: Option<&Value>,
        data: Value,
        cancel: &CancellationToken,
    ) -> Result<Value, FlowError> {
        let Some(t) = transform else { return Ok(data) };
        let out = self.evaluate(t, &data, cancel).await?;
        require_object(out)
    }
}

/// Refuses data that is not an object with `direktiv.jq.notObject`.
pub fn require_object(value: Value) -> Result<Value, FlowError> {
    match value {
        Value::Object(_) => Ok(value),
        other => Err(FlowError::catchable(
            codes::NOT_OBJECT,
            format!(
                "the state data must stay a JSON object, but a transform gave {}",
                kind(&other)
            ),
        )),
    }
}

/// Refuses instance data larger than `max` bytes as JSON text (counted without writing it
/// out) with `faasbox.flow.data_too_large`, which ends the instance.
pub fn require_size(data: &Value, max: usize, state: &str) -> Result<(), FlowError> {
    struct Count {
        bytes: usize,
        max: usize,
    }
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.bytes += buf.len();
            if self.bytes > self.max {
                return Err(std::io::Error::other("too large"));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count { bytes: 0, max };
    if serde_json::to_writer(&mut count, data).is_ok() {
        return Ok(());
    }
    Err(FlowError::fatal(
        codes::DATA_TOO_LARGE,
        format!(
            "the instance data grew past {max} bytes (as JSON) in state '{state}'; an instance \
             may hold at most that much (the server's flow-max-data setting): keep less in it, \
             for example only the parts of a function's output the flow needs"
        ),
    ))
}

/// Sets `data[key] = value` (data is an object by the rule above).
pub fn with(mut data: Value, key: &str, value: Value) -> Value {
    if let Value::Object(map) = &mut data {
        map.insert(key.to_string(), value);
    }
    data
}

pub fn truthy(value: &Value) -> bool {
    !matches!(value, Value::Null | Value::Bool(false))
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
