//! The JSON Schemas a `code` function's input and output are checked against, compiled once
//! per revision (kept with the deployment, see `Deployed::schemas`) and run on a blocking
//! thread. On their own so the deployments need nothing else of `crate::code`.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

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
