//! The code contract's messages: a call's input split into context and payload, the request line
//! for the shim, and the shim's answer turned into a call result.

use std::collections::HashMap;

use faasbox_proto::{CODE_FUNCTION_ERROR, CODE_INPUT_ERROR};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::super::CallResult;

/// A call's input as the handler gets it.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// `context` of the envelope, with `deadline` set to the call's deadline.
    pub context: Map<String, Value>,
    /// The payload as JSON text on one line, its numbers and strings verbatim.
    pub payload: String,
}

impl Split {
    /// The context as JSON text.
    pub fn context_json(&self) -> String {
        // A map of JSON values always serialises.
        serde_json::to_string(&self.context).unwrap_or_else(|_| "{}".to_owned())
    }

    /// The request line (with its `\n`) for the shim.
    pub fn request_line(&self, id: u64) -> Vec<u8> {
        let context = self.context_json();
        let mut line = Vec::with_capacity(context.len() + self.payload.len() + 48);
        line.extend_from_slice(format!("{{\"id\":{id},\"context\":").as_bytes());
        line.extend_from_slice(context.as_bytes());
        line.extend_from_slice(b",\"payload\":");
        line.extend_from_slice(self.payload.as_bytes());
        line.extend_from_slice(b"}\n");
        line
    }
}

/// Splits a call's input: the platform sends `{"context": {…}, "payload": …}`. Any other input
/// (an object with other keys, a `context` that is not an object, another JSON value) is the
/// payload itself, with an empty context; an empty input is the payload `null`, and one that is
/// not JSON a string of its text.
pub fn split(input: &[u8], deadline: &str) -> Split {
    let mut split = Split {
        context: Map::new(),
        payload: "null".to_owned(),
    };
    if let Ok(raw) = serde_json::from_slice::<&RawValue>(input) {
        split.payload = one_line(raw.get());
        if let Ok(fields) = serde_json::from_str::<HashMap<&str, &RawValue>>(raw.get()) {
            let only_envelope_keys = !fields.is_empty()
                && fields
                    .keys()
                    .all(|key| matches!(*key, "context" | "payload"));
            let context = match fields.get("context") {
                Some(context) => serde_json::from_str::<Map<String, Value>>(context.get()).ok(),
                None => Some(Map::new()),
            };
            if let (true, Some(context)) = (only_envelope_keys, context) {
                split.context = context;
                split.payload = fields
                    .get("payload")
                    .map_or_else(|| "null".to_owned(), |payload| one_line(payload.get()));
            }
        }
    } else if !input.iter().all(u8::is_ascii_whitespace) {
        let text = String::from_utf8_lossy(input);
        split.payload = serde_json::to_string(&text).unwrap_or_else(|_| "null".to_owned());
    }
    split
        .context
        .insert("deadline".to_owned(), Value::String(deadline.to_owned()));
    split
}

/// Valid JSON on one line. Line ends can only be whitespace between tokens (inside strings
/// they must be escaped), so dropping them keeps the value exactly.
fn one_line(json: &str) -> String {
    json.trim().replace(['\n', '\r'], "")
}

/// The shim's first line: whether the handler loaded.
#[derive(Debug, Deserialize)]
pub struct Hello {
    pub ready: bool,
    #[serde(default)]
    pub error: Option<String>,
}

/// The shim's answer to one request.
#[derive(Debug, Deserialize)]
pub struct Answer {
    pub id: u64,
    pub ok: bool,
    #[serde(default)]
    pub output: Option<Box<RawValue>>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

impl Answer {
    pub fn into_result(self) -> CallResult {
        if self.ok {
            return CallResult::ok(self.output.unwrap_or_else(|| RawValue::NULL.to_owned()));
        }
        let code = match self.code.as_deref() {
            Some(CODE_INPUT_ERROR) => CODE_INPUT_ERROR,
            _ => CODE_FUNCTION_ERROR,
        };
        CallResult::error(code, self.message.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faasbox_proto::InvokeStatus;

    const D: &str = "2030-01-01T00:00:00Z";

    #[test]
    fn envelope_is_split_and_gets_the_deadline() {
        let split = split(
            br#"{"context": {"secrets": {"k": "v"}}, "payload": {"n": 2.50,
            "big": 123456789012345678901234567890}}"#,
            D,
        );
        assert_eq!(
            Value::Object(split.context.clone()),
            serde_json::json!({"secrets": {"k": "v"}, "deadline": D})
        );
        // Numbers verbatim, on one line.
        assert_eq!(
            split.payload,
            r#"{"n": 2.50,            "big": 123456789012345678901234567890}"#
        );
        let line = split.request_line(7);
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        let request: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(request["id"], 7);
        assert_eq!(request["context"]["deadline"], D);
        assert_eq!(request["payload"]["n"], 2.5);
    }

    #[test]
    fn anything_else_is_the_payload() {
        for (input, payload) in [
            (&br#"{"name": "x"}"#[..], r#"{"name": "x"}"#),
            (
                br#"{"payload": 1, "other": 2}"#,
                r#"{"payload": 1, "other": 2}"#,
            ),
            (
                br#"{"context": 5, "payload": 1}"#,
                r#"{"context": 5, "payload": 1}"#,
            ),
            (b"{}", "{}"),
            (b"[1,\n2]", "[1,2]"),
            (b"\"a\\nb\"", "\"a\\nb\""),
            (b"", "null"),
            (b"  ", "null"),
            (b"not json", "\"not json\""),
        ] {
            let split = split(input, D);
            assert_eq!(split.payload, payload, "{}", String::from_utf8_lossy(input));
            assert_eq!(
                Value::Object(split.context),
                serde_json::json!({"deadline": D})
            );
        }
        let split = split(br#"{"context": {"a": 1}}"#, D);
        assert_eq!(split.payload, "null");
        assert_eq!(split.context["a"], 1);
    }

    #[test]
    fn answers_become_results() {
        let answer: Answer =
            serde_json::from_str(r#"{"id":1,"ok":true,"output":{"a": 1.50}}"#).unwrap();
        let result = answer.into_result();
        assert_eq!(result.status, InvokeStatus::Ok);
        assert_eq!(result.output.unwrap().get(), r#"{"a": 1.50}"#);
        let answer: Answer = serde_json::from_str(r#"{"id":1,"ok":true,"output":null}"#).unwrap();
        assert_eq!(answer.into_result().output.unwrap().get(), "null");
        let answer: Answer = serde_json::from_str(
            r#"{"id":2,"ok":false,"code":"InputError","message":"ValueError: x"}"#,
        )
        .unwrap();
        let result = answer.into_result();
        assert_eq!(result.status, InvokeStatus::Error);
        assert_eq!(result.code.as_deref(), Some(CODE_INPUT_ERROR));
        assert_eq!(result.message.as_deref(), Some("ValueError: x"));
        // An unknown code from the shim is a FunctionError.
        let answer: Answer =
            serde_json::from_str(r#"{"id":2,"ok":false,"code":"Weird","message":"m"}"#).unwrap();
        assert_eq!(
            answer.into_result().code.as_deref(),
            Some(CODE_FUNCTION_ERROR)
        );
    }
}
