//! A call of a `code` function: the envelope the agent gets (`{"context": {"secrets",
//! "serviceBindings"}, "payload"}`, the bindings being the function's services), and (re-exported from `crate::code_schemas`, which the
//! deployments need without the rest of `code`) the JSON Schemas its input and output are
//! checked against, compiled once per revision ([`CodeSchemas`]).

use bytes::Bytes;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::failure::Failure;

pub use crate::code_schemas::CodeSchemas;

/// The envelope of a code function's call: `{"context": {"secrets": {…}, "serviceBindings":
/// {service: {param: value}}}, "payload": <payload>}`. A secret whose value is a JSON object
/// contributes its keys to `secrets`; any other value is `name: value` (its text). The caller
/// wipes the buffer once sent and masks the secret values in what the call leaves behind.
pub fn envelope(
    secrets: &[(String, Zeroizing<Vec<u8>>)],
    services: &Map<String, Value>,
    context: &Map<String, Value>,
    payload: &[u8],
) -> Result<Bytes, Failure> {
    let mut merged = Map::new();
    for (name, value) in secrets {
        match serde_json::from_slice::<Value>(value) {
            Ok(Value::Object(fields)) => merged.extend(fields),
            _ => {
                let text = std::str::from_utf8(value).map_err(|_| {
                    Failure::invalid(format!(
                        "secret '{name}' is neither a JSON object nor UTF-8 text, so a code \
                         function cannot get it; set it again as text or a JSON object"
                    ))
                })?;
                merged.insert(name.clone(), Value::String(text.to_string()));
            }
        }
    }
    let mut secrets = Value::Object(merged);
    let text = Zeroizing::new(serde_json::to_vec(&secrets).unwrap_or_else(|_| b"{}".to_vec()));
    wipe(&mut secrets);
    let mut out = Vec::with_capacity(payload.len() + text.len() + 256);
    out.extend_from_slice(b"{\"context\":{\"secrets\":");
    out.extend_from_slice(&text);
    let bindings = Zeroizing::new(serde_json::to_vec(services).unwrap_or_else(|_| b"{}".to_vec()));
    out.extend_from_slice(b",\"serviceBindings\":");
    out.extend_from_slice(&bindings);
    for (key, value) in context {
        if key == "secrets" || key == "serviceBindings" {
            continue;
        }
        let (key, value) = (serde_json::to_vec(key), serde_json::to_vec(value));
        if let (Ok(key), Ok(value)) = (key, value) {
            out.push(b',');
            out.extend_from_slice(&key);
            out.push(b':');
            out.extend_from_slice(&value);
        }
    }
    out.extend_from_slice(b"},\"payload\":");
    out.extend_from_slice(payload);
    out.push(b'}');
    Ok(Bytes::from(out))
}

/// The text of every field of the secrets that hold a JSON object (strings as they are, other
/// values as JSON), for masking: the handler gets them one by one.
pub fn object_secret_values(secrets: &[(String, Zeroizing<Vec<u8>>)]) -> Vec<Zeroizing<String>> {
    let mut found = Vec::new();
    for (_, value) in secrets {
        if let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(value) {
            for field in fields.values_mut() {
                let text = match &mut *field {
                    Value::String(text) => std::mem::take(text),
                    other => other.to_string(),
                };
                found.push(Zeroizing::new(text));
                wipe(field);
            }
        }
    }
    found
}

/// Overwrites the strings of a value that held secrets before it is dropped.
fn wipe(value: &mut Value) {
    match value {
        Value::String(text) => zeroize::Zeroize::zeroize(text),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        Value::Object(fields) => fields.values_mut().for_each(wipe),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::FailureKind;
    use crate::model::FunctionSpec;
    use faasbox_proto::{CODE_FUNCTION_ERROR, CODE_INPUT_ERROR};

    fn secret(name: &str, value: &str) -> (String, Zeroizing<Vec<u8>>) {
        (name.to_string(), Zeroizing::new(value.as_bytes().to_vec()))
    }

    #[test]
    fn the_envelope_merges_object_secrets_and_names_the_others() {
        let secrets = [
            secret("db", r#"{"user":"u","password":"p"}"#),
            secret("token", "abc"),
            secret("number", "12"),
        ];
        let services = serde_json::json!({"db": {"host": "h", "password": "p"}});
        let body = envelope(
            &secrets,
            services.as_object().unwrap(),
            &Map::new(),
            br#"{"name":"x"}"#,
        )
        .unwrap();
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "context": {
                    "secrets": {"user": "u", "password": "p", "token": "abc", "number": "12"},
                    "serviceBindings": {"db": {"host": "h", "password": "p"}}
                },
                "payload": {"name": "x"}
            })
        );
        // Further context fields go beside them, but do not replace them.
        let context = serde_json::json!({"event": {"type": "x"}, "secrets": {"forged": 1}});
        let body = envelope(&[], &Map::new(), context.as_object().unwrap(), b"[1,2]").unwrap();
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["payload"], serde_json::json!([1, 2]));
        assert_eq!(value["context"]["secrets"], serde_json::json!({}));
        assert_eq!(value["context"]["event"], serde_json::json!({"type": "x"}));
    }

    #[tokio::test]
    async fn schemas_check_input_and_output() {
        let spec: FunctionSpec = serde_json::from_value(serde_json::json!({
            "image": "x", "contract": "code", "language": "shell", "handler": "run.sh",
            "schema": {
                "in": {"type": "object", "required": ["name"]},
                "out": {"type": "string"}
            }
        }))
        .unwrap();
        let schemas = CodeSchemas::compile(&spec).unwrap();
        schemas
            .check_input(&Bytes::from_static(br#"{"name":"a"}"#))
            .await
            .unwrap();
        let error = schemas
            .check_input(&Bytes::from_static(br#"{"nome":"a"}"#))
            .await
            .unwrap_err();
        assert_eq!(error.code, CODE_INPUT_ERROR);
        assert_eq!(error.kind, FailureKind::Invalid);
        assert!(error.message.contains("name"), "{}", error.message);
        schemas
            .check_output(&Bytes::from_static(br#""hi""#))
            .await
            .unwrap();
        let error = schemas
            .check_output(&Bytes::from_static(b"12"))
            .await
            .unwrap_err();
        assert_eq!(error.code, CODE_FUNCTION_ERROR);
        assert_eq!(error.kind, FailureKind::FunctionFailed);
        let plain: FunctionSpec =
            serde_json::from_value(serde_json::json!({"image": "x"})).unwrap();
        assert!(CodeSchemas::compile(&plain).is_none());
    }
}
