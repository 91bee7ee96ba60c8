//! A call of a `code` function: the envelope the agent gets (`{"context": {"secrets",
//! "serviceBindings"}, "payload"}`) and the JSON Schemas its input and output are checked
//! against, compiled once per revision ([`CodeSchemas`]) and run on a blocking thread.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use faasbox_proto::{CODE_FUNCTION_ERROR, CODE_INPUT_ERROR};

use crate::failure::{Failure, FailureKind};
use crate::model::FunctionSpec;

/// At most this many schema problems are named in one error.
const MAX_PROBLEMS: usize = 5;

/// The compiled schemas of one revision of a code function.
#[derive(Default)]
pub struct CodeSchemas {
    input: Option<jsonschema::Validator>,
    output: Option<jsonschema::Validator>,
    /// Why a schema of the stored spec did not compile (a deploy refuses that, so only a spec
    /// stored by another version could have it): every call fails with it.
    broken: Option<String>,
}

impl CodeSchemas {
    /// Compiles the spec's `schema`; `None` for a function without one.
    pub fn compile(spec: &FunctionSpec) -> Option<Arc<CodeSchemas>> {
        let schema = spec.schema.as_ref()?;
        if schema.input.is_none() && schema.output.is_none() {
            return None;
        }
        let mut compiled = CodeSchemas::default();
        let compile = |field: &str, value: &Option<Value>| match value {
            None => Ok(None),
            Some(value) => jsonschema::validator_for(value)
                .map(Some)
                .map_err(|e| format!("`schema.{field}` is not a valid JSON Schema: {e}")),
        };
        match (compile("in", &schema.input), compile("out", &schema.output)) {
            (Ok(input), Ok(output)) => {
                compiled.input = input;
                compiled.output = output;
            }
            (Err(e), _) | (_, Err(e)) => compiled.broken = Some(e),
        }
        Some(Arc::new(compiled))
    }

    /// Checks a call's input (the payload): `InputError` (422) when it does not match.
    pub async fn check_input(self: &Arc<Self>, input: &Bytes) -> Result<(), Failure> {
        self.check(input, true).await
    }

    /// Checks a handler's output: `FunctionError` (502) when it does not match.
    pub async fn check_output(self: &Arc<Self>, output: &Bytes) -> Result<(), Failure> {
        self.check(output, false).await
    }

    async fn check(self: &Arc<Self>, subject: &Bytes, input: bool) -> Result<(), Failure> {
        if let Some(broken) = &self.broken {
            return Err(Failure::invalid(format!(
                "{broken}; deploy the function again with a valid schema"
            )));
        }
        let has = if input {
            self.input.is_some()
        } else {
            self.output.is_some()
        };
        if !has {
            return Ok(());
        }
        let (schemas, subject) = (self.clone(), subject.clone());
        let problems = tokio::task::spawn_blocking(move || {
            let validator = if input {
                schemas.input.as_ref()
            } else {
                schemas.output.as_ref()
            };
            let Some(validator) = validator else {
                return Ok(Vec::new());
            };
            let value: Value =
                serde_json::from_slice(&subject).map_err(|e| format!("it is not JSON: {e}"))?;
            Ok::<_, String>(
                validator
                    .iter_errors(&value)
                    .take(MAX_PROBLEMS)
                    .map(|e| format!("{e} (at '{}')", e.instance_path))
                    .collect::<Vec<_>>(),
            )
        })
        .await
        .map_err(Failure::from)?;
        let problems = match problems {
            Ok(problems) if problems.is_empty() => return Ok(()),
            Ok(problems) => problems.join("; "),
            Err(not_json) => not_json,
        };
        Err(if input {
            Failure::function(
                FailureKind::Invalid,
                CODE_INPUT_ERROR,
                format!("the input does not match the function's schema.in: {problems}"),
                true,
            )
        } else {
            Failure::function(
                FailureKind::FunctionFailed,
                CODE_FUNCTION_ERROR,
                format!("the function's output does not match its schema.out: {problems}"),
                true,
            )
        })
    }
}

/// The envelope of a code function's call: `{"context": {"secrets": {…}, "serviceBindings":
/// {}}, "payload": <payload>}`. A secret whose value is a JSON object contributes its keys to
/// `secrets`; any other value is `name: value` (its text). The buffer is wiped when dropped;
/// the caller masks the secret values in what the call leaves behind.
pub fn envelope(
    secrets: &[(String, Zeroizing<Vec<u8>>)],
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
    let mut out = Vec::with_capacity(payload.len() + text.len() + 64);
    out.extend_from_slice(b"{\"context\":{\"secrets\":");
    out.extend_from_slice(&text);
    out.extend_from_slice(b",\"serviceBindings\":{}},\"payload\":");
    out.extend_from_slice(payload);
    out.push(b'}');
    Ok(Bytes::from(out))
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
        let body = envelope(&secrets, br#"{"name":"x"}"#).unwrap();
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "context": {
                    "secrets": {"user": "u", "password": "p", "token": "abc", "number": "12"},
                    "serviceBindings": {}
                },
                "payload": {"name": "x"}
            })
        );
        let body = envelope(&[], b"[1,2]").unwrap();
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["payload"], serde_json::json!([1, 2]));
        assert_eq!(value["context"]["secrets"], serde_json::json!({}));
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
