//! Instance data rules: transforms, and data that must stay a JSON object.

use serde_json::Value;

use super::{codes, FlowError};

/// Applies a `transform` (a template, or a bare jq expression) to `data`.
pub fn transform(transform: Option<&Value>, data: Value) -> Result<Value, FlowError> {
    let Some(t) = transform else { return Ok(data) };
    let out = faasbox_expr::evaluate(t, &data).map_err(FlowError::from_expr)?;
    require_object(out)
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
