//! The JSON Schemas a function's input and output are checked against (any contract; draft
//! 2020-12 unless a schema's `$schema` names another, such as draft 7), compiled once per
//! revision (kept with the deployment, see `Deployed::schemas`) and run on a blocking thread.
//! A refusal names every violation (up to [`MAX_PROBLEMS`]) with its JSON pointer, in its
//! message and (an input's) as the failure's `details`. On their
//! own so the deployments need nothing of `crate::code`.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

use faasbox_proto::{CODE_FUNCTION_ERROR, CODE_INPUT_ERROR};

use crate::failure::{Failure, FailureDetail, FailureKind};
use crate::model::FunctionSpec;

/// At most this many schema problems are named in one error.
pub const MAX_PROBLEMS: usize = 100;

/// The compiled schemas of one revision of a function.
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
                return Ok((Vec::new(), 0));
            };
            let value: Value =
                serde_json::from_slice(&subject).map_err(|e| format!("it is not JSON: {e}"))?;
            let mut found = Vec::new();
            let mut more = 0usize;
            for error in validator.iter_errors(&value) {
                if found.len() < MAX_PROBLEMS {
                    found.push(FailureDetail {
                        pointer: error.instance_path.to_string(),
                        message: error.to_string(),
                    });
                } else {
                    more += 1;
                }
            }
            Ok::<_, String>((found, more))
        })
        .await
        .map_err(Failure::from)?;
        let (problems, details) = match problems {
            Ok((details, _)) if details.is_empty() => return Ok(()),
            Ok((details, more)) => {
                let count = details.len() + more;
                let listed: Vec<String> = details
                    .iter()
                    .map(|d| format!("at '{}': {}", d.pointer, d.message))
                    .collect();
                let mut text = format!(
                    "{count} problem{} ('' is the root): {}",
                    if count == 1 { "" } else { "s" },
                    listed.join("; ")
                );
                if more > 0 {
                    text.push_str(&format!("; and {more} more not shown"));
                }
                (text, details)
            }
            Err(not_json) => (not_json, Vec::new()),
        };
        Err(if input {
            // The details quote the caller's own request (checked before any secret is put
            // into it); an output's are left out, as it may hold secret values the message
            // has masked.
            let mut failure = Failure::function(
                FailureKind::Invalid,
                CODE_INPUT_ERROR,
                format!(
                    "the input does not match the function's schema.in, so the function was \
                     not called; send an input that matches it (see `schema` in the function's \
                     spec): {problems}"
                ),
                true,
            );
            failure.details = details;
            failure
        } else {
            Failure::function(
                FailureKind::FunctionFailed,
                CODE_FUNCTION_ERROR,
                format!(
                    "the function's output does not match its schema.out (fix the function or \
                     its schema): {problems}"
                ),
                true,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schemas(spec: serde_json::Value) -> Arc<CodeSchemas> {
        let spec: FunctionSpec = serde_json::from_value(spec).unwrap();
        CodeSchemas::compile(&spec).unwrap()
    }

    #[tokio::test]
    async fn every_violation_is_named_with_its_pointer_in_draft_7_and_2020_12() {
        for draft in [
            "http://json-schema.org/draft-07/schema#",
            "https://json-schema.org/draft/2020-12/schema",
        ] {
            let schemas = schemas(serde_json::json!({"image": "x", "schema": {"in": {
                "$schema": draft,
                "type": "object",
                "required": ["name"],
                "properties": {"age": {"type": "integer"}, "tags": {"type": "array",
                    "items": {"type": "string"}}}
            }}}));
            let error = schemas
                .check_input(&Bytes::from_static(br#"{"age":"x","tags":["a",2,3]}"#))
                .await
                .unwrap_err();
            assert_eq!(error.code, CODE_INPUT_ERROR);
            let pointers: Vec<&str> = error.details.iter().map(|d| d.pointer.as_str()).collect();
            assert_eq!(pointers.len(), 4, "{draft}: {:?}", error.details);
            for pointer in ["", "/age", "/tags/1", "/tags/2"] {
                assert!(pointers.contains(&pointer), "{draft}: {pointers:?}");
            }
            for part in [
                "4 problems",
                "at '/age'",
                "at '/tags/1'",
                "at '/tags/2'",
                "name",
            ] {
                assert!(error.message.contains(part), "{draft}: {}", error.message);
            }
            schemas
                .check_input(&Bytes::from_static(br#"{"name":"a","age":3}"#))
                .await
                .unwrap();
        }
        // Draft 7 reads `items` as a tuple when it is an array; 2020-12 uses `prefixItems`.
        let tuple = serde_json::json!({"image": "x", "schema": {"out": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "items": [{"type": "string"}]
        }}});
        let error = schemas(tuple)
            .check_output(&Bytes::from_static(b"[1]"))
            .await
            .unwrap_err();
        assert_eq!(error.code, CODE_FUNCTION_ERROR);
        assert!(error.message.contains("at '/0'"), "{}", error.message);
        assert!(error.details.is_empty(), "{:?}", error.details);
    }

    #[tokio::test]
    async fn at_most_a_hundred_problems_are_named() {
        let schemas = schemas(serde_json::json!({"image": "x", "schema": {"in": {
            "items": {"type": "string"}
        }}}));
        let input = serde_json::to_vec(&(0..150).collect::<Vec<u32>>()).unwrap();
        let error = schemas.check_input(&Bytes::from(input)).await.unwrap_err();
        assert!(error.message.contains("150 problems"), "{}", error.message);
        assert!(error.message.contains("at '/99'"), "{}", error.message);
        assert!(!error.message.contains("at '/100'"), "{}", error.message);
        assert!(
            error.message.contains("50 more not shown"),
            "{}",
            error.message
        );
    }
}
