//! Reading OpenWhisk's `/init` and `/run` bodies the way its Python action proxy does.
//!
//! The proxy reads a body with Flask's `get_json(force=True, silent=True)`: a body that is not
//! JSON counts as no body. A body that is "falsy" in Python (`null`, `false`, `0`, `""`, `[]`,
//! `{}`) counts as `{}`; any other body that is not an object is refused (404). The `value` of a
//! missing one is `{}`.
//!
//! Values are kept as their raw JSON text (not re-serialised), so the action gets its argument
//! with the keys in the order they were sent; [`compact`] only takes out the whitespace between
//! tokens, so the argument is one line.

use std::collections::BTreeMap;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// A body as the proxy sees it.
#[derive(Debug)]
pub enum Body {
    /// Not JSON, or falsy: the proxy uses `{}`.
    Empty,
    Object(BTreeMap<String, Box<RawValue>>),
    /// JSON that is neither falsy nor an object: refused.
    NotObject,
}

/// The message of a body.
pub fn body(bytes: &[u8]) -> Body {
    let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
        return Body::Empty;
    };
    if value.is_object() {
        return match serde_json::from_slice(bytes) {
            Ok(members) => Body::Object(members),
            Err(_) => Body::Empty,
        };
    }
    if truthy(&value) {
        Body::NotObject
    } else {
        Body::Empty
    }
}

/// Python's truth value of a JSON value.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(members) => !members.is_empty(),
    }
}

/// The first character of a raw JSON value (`{`, `[`, `"`, a digit, …).
pub fn kind(raw: &RawValue) -> Option<char> {
    raw.get().trim_start().chars().next()
}

/// Whether a raw JSON value is an object or an array.
pub fn is_object_or_array(raw: &RawValue) -> bool {
    matches!(kind(raw), Some('{' | '['))
}

/// The `value` of an `/init` body, which must be an object; `None`: refuse the request (404).
pub fn init_value(bytes: &[u8]) -> Option<Map<String, Value>> {
    match body(bytes) {
        Body::Empty => Some(Map::new()),
        Body::NotObject => None,
        Body::Object(members) => match members.get("value") {
            None => Some(Map::new()),
            Some(raw) => match serde_json::from_str::<Value>(raw.get()) {
                Ok(Value::Object(value)) => Some(value),
                _ => None,
            },
        },
    }
}

/// A `/run` as the action will see it.
#[derive(Debug, PartialEq, Eq)]
pub struct RunRequest {
    /// The argument: an object or array, as one line of JSON.
    pub args: String,
    /// `(name, value)` of every other key, named `__OW_<KEY>`.
    pub env: Vec<(String, String)>,
}

/// The activation a `/run` body asks for; `None`: refuse it (404).
///
/// The environment comes from the body's keys other than `value`, or from its `activation`
/// object when it has one (the proxy's Knative form).
pub fn run_request(bytes: &[u8]) -> Option<RunRequest> {
    let members = match body(bytes) {
        Body::Empty => BTreeMap::new(),
        Body::NotObject => return None,
        Body::Object(members) => members,
    };
    let args = match members.get("value") {
        None => "{}".to_owned(),
        Some(raw) if is_object_or_array(raw) => compact(raw.get()),
        Some(_) => return None,
    };
    let env = match members.get("activation") {
        Some(activation) => match serde_json::from_str(activation.get()) {
            Ok(Some(members)) => ow_env(&members),
            _ => Vec::new(),
        },
        None => ow_env(&members),
    };
    Some(RunRequest { args, env })
}

/// `__OW_<KEY>` variables for every key but `value`.
pub fn ow_env(members: &BTreeMap<String, Box<RawValue>>) -> Vec<(String, String)> {
    members
        .iter()
        .filter(|(key, _)| key.as_str() != "value")
        .map(|(key, raw)| (format!("__OW_{}", key.to_uppercase()), raw_text(raw)))
        .collect()
}

/// A raw JSON value as an environment value (see [`env_text`]).
fn raw_text(raw: &RawValue) -> String {
    match serde_json::from_str::<Value>(raw.get()) {
        Ok(value) => env_text(&value),
        Err(_) => String::new(),
    }
}

/// A JSON value as an environment value, as OpenWhisk's runtimes export init parameters: a
/// string as it is, `null` as empty, anything else as its JSON (`3`, `true`, `["a","b"]`).
pub fn env_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Valid JSON without the whitespace between its tokens (strings are left as they are).
pub fn compact(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_as_flask_reads_them() {
        assert!(matches!(body(b"not json"), Body::Empty));
        assert!(matches!(body(b""), Body::Empty));
        for falsy in ["null", "false", "0", "0.0", "\"\"", "[]", "{}"] {
            assert!(
                matches!(body(falsy.as_bytes()), Body::Empty | Body::Object(_)),
                "{falsy}"
            );
        }
        for refused in ["1", "true", "\"x\"", "[1]"] {
            assert!(
                matches!(body(refused.as_bytes()), Body::NotObject),
                "{refused}"
            );
        }
    }

    #[test]
    fn init_values() {
        assert_eq!(init_value(b"").unwrap().len(), 0);
        assert_eq!(init_value(b"{}").unwrap().len(), 0);
        let value = init_value(br#"{"value":{"code":"x","binary":false}}"#).unwrap();
        assert_eq!(value["code"], "x");
        assert!(init_value(br#"{"value":null}"#).is_none());
        assert!(init_value(br#"{"value":[1]}"#).is_none());
        assert!(init_value(b"[1]").is_none());
    }

    #[test]
    fn run_requests() {
        let request = run_request(
            br#"{"value": {"z": 1, "a": ["x", "y z"]}, "namespace": "ns", "deadline": 123, "api_key": null}"#,
        )
        .unwrap();
        assert_eq!(request.args, r#"{"z":1,"a":["x","y z"]}"#);
        assert_eq!(
            request.env,
            [
                ("__OW_API_KEY".to_string(), String::new()),
                ("__OW_DEADLINE".to_string(), "123".to_string()),
                ("__OW_NAMESPACE".to_string(), "ns".to_string()),
            ]
        );
        let bare = run_request(b"").unwrap();
        assert_eq!(bare.args, "{}");
        assert!(bare.env.is_empty());
        assert_eq!(run_request(br#"{"value":[1, 2]}"#).unwrap().args, "[1,2]");
        assert!(run_request(br#"{"value":"A"}"#).is_none());
        assert!(run_request(br#"{"value":null}"#).is_none());
        assert!(run_request(b"\"A\"").is_none());
        let knative = run_request(br#"{"value":{},"activation":{"action_name":"/a/b"}}"#).unwrap();
        assert_eq!(
            knative.env,
            [("__OW_ACTION_NAME".to_string(), "/a/b".to_string())]
        );
    }

    #[test]
    fn compacting_keeps_strings() {
        assert_eq!(
            compact("{ \"a b\" : [ 1 ,\n 2 ], \"q\\\"x \" : \"\\\\\" }"),
            "{\"a b\":[1,2],\"q\\\"x \":\"\\\\\"}"
        );
        assert_eq!(compact("{\"s\": \"❄ ☃ ❄\"}"), "{\"s\":\"❄ ☃ ❄\"}");
    }

    #[test]
    fn env_texts() {
        assert_eq!(env_text(&serde_json::json!("xyz")), "xyz");
        assert_eq!(env_text(&serde_json::json!(3)), "3");
        assert_eq!(env_text(&serde_json::json!(true)), "true");
        assert_eq!(env_text(&serde_json::json!(null)), "");
        assert_eq!(env_text(&serde_json::json!(["a", "b"])), r#"["a","b"]"#);
    }
}
