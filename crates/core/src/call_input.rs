//! What a call sends and what it masks, in Dispatch's order after the input's validation:
//! secret injection, then service injection. The function's secrets (the spec's and the
//! call's own, [`Extra`]) are read from the vault and its services (likewise) from the store
//! (see `crate::services`). A code function gets them in its envelope's `context.secrets` and
//! `context.serviceBindings`; for the other contracts the input is built from the spec's
//! `input` template (if any) against `{"input": <request>, "secrets": {name: value},
//! "services": {name: {param: value}}}`, and that enriched data is wiped right after. Without
//! a template the request passes unchanged and secrets and services go nowhere. The secret
//! values (secret service parameters too) make the call's [`Masker`]. Templates whose
//! expressions are plain paths are rendered in place; others run in the server's bounded
//! expression workers.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use faasbox_expr::sandbox::EvalError;
use tokio_util::sync::CancellationToken;

use crate::failure::{Failure, FailureKind};
use crate::mask::Masker;
use crate::model::FunctionSpec;
use crate::state::AppState;
use crate::template;

/// Error code of a call whose function names a secret its namespace lacks.
pub const SECRET_MISSING: &str = "faasbox.secret.missing";

/// Error code of a call whose input template could not be evaluated for want of a worker.
pub const EXPR_UNAVAILABLE: &str = "faasbox.expr.unavailable";

/// The input to send, and the masker for what the call leaves behind.
pub struct CallInput {
    /// The bytes the function gets: the request, or what the spec's `input` template made of it.
    pub input: Bytes,
    /// Hides the values of the secrets this call used in what it leaves behind (logs, errors).
    pub masker: Masker,
}

/// What one call adds to its function's spec: further secrets and service instances, by name.
#[derive(Clone, Copy, Default)]
pub struct Extra<'a> {
    /// Secrets on top of the spec's `secrets`.
    pub secrets: &'a [String],
    /// Service instances on top of the spec's `services`.
    pub services: &'a [String],
}

/// Reads the spec's (and the call's own) secrets and services and builds the input (for a
/// code function, the envelope, whose `context` gets `code_context` too). Errors are masked
/// already.
pub async fn prepare(
    state: &Arc<AppState>,
    namespace: &str,
    name: &str,
    spec: &FunctionSpec,
    input: Bytes,
    code_context: Map<String, Value>,
    extra: Extra<'_>,
) -> Result<CallInput, Failure> {
    let secrets = merged(&spec.secrets, extra.secrets);
    let services = merged(&spec.services, extra.services);
    if spec.effective_contract() == faasbox_proto::Contract::Code {
        return prepare_code(
            state,
            namespace,
            name,
            spec,
            (&secrets, &services),
            input,
            code_context,
        )
        .await;
    }
    if secrets.is_empty() && services.is_empty() && spec.input.is_none() {
        return Ok(CallInput {
            input,
            masker: Masker::default(),
        });
    }
    let secrets = read_secrets(state, namespace, name, &secrets).await?;
    let mut masker = Masker::new(secrets.iter().map(|(_, v)| v.as_slice()));
    let bound = crate::services::resolve(state, namespace, name, &services)
        .await
        .map_err(|mut e| {
            e.message = masker.mask(&e.message);
            e
        })?;
    masker = masker.merged(Masker::new(
        bound.secret_values.iter().map(|v| v.as_slice()),
    ));
    let Some(template) = &spec.input else {
        return Ok(CallInput { input, masker });
    };
    let rendered = render(state, template, &input, &secrets, &bound.bindings)
        .await
        .map_err(|e| match e {
            EvalError::Unavailable(message) => Failure::new(
                FailureKind::Unavailable,
                EXPR_UNAVAILABLE,
                format!(
                    "the input template of function {namespace}/{name} could not be \
                     evaluated now: {message}"
                ),
            ),
            e => Failure::new(
                FailureKind::Invalid,
                template::BAD_COMMAND,
                masker.mask(&format!(
                    "the input template of function {namespace}/{name} cannot be evaluated: {e}"
                )),
            ),
        })?;
    Ok(CallInput {
        input: rendered,
        masker,
    })
}

/// The spec's names, then the call's own that the spec lacks.
fn merged(spec: &[String], extra: &[String]) -> Vec<String> {
    let mut names = spec.to_vec();
    for name in extra {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

/// A code function's call: the input (through the template, if any) as the payload of the
/// envelope whose `context.secrets` holds the secrets and `context.serviceBindings` the
/// services (see `crate::code::call`).
async fn prepare_code(
    state: &Arc<AppState>,
    namespace: &str,
    name: &str,
    spec: &FunctionSpec,
    (secrets, services): (&[String], &[String]),
    input: Bytes,
    code_context: Map<String, Value>,
) -> Result<CallInput, Failure> {
    let templated = spec.input.is_some();
    let plain = FunctionSpec {
        secrets: if templated {
            secrets.to_vec()
        } else {
            Vec::new()
        },
        services: if templated {
            services.to_vec()
        } else {
            Vec::new()
        },
        contract: faasbox_proto::Contract::Http,
        language: None,
        handler: None,
        schema: None,
        ..spec.clone()
    };
    let payload = Box::pin(prepare(
        state,
        namespace,
        name,
        &plain,
        input,
        Map::new(),
        Extra::default(),
    ))
    .await?;
    let secrets = read_secrets(state, namespace, name, secrets).await?;
    // A secret holding a JSON object reaches the handler as its fields: their values are
    // masked one by one too.
    let fields = crate::code::call::object_secret_values(&secrets);
    let masker = Masker::new(
        secrets
            .iter()
            .map(|(_, v)| v.as_slice())
            .chain(fields.iter().map(|v| v.as_bytes())),
    );
    let bound = crate::services::resolve(state, namespace, name, services)
        .await
        .map_err(|mut e| {
            e.message = masker.mask(&e.message);
            e
        })?;
    let masker = masker.merged(Masker::new(
        bound.secret_values.iter().map(|v| v.as_slice()),
    ));
    let input =
        crate::code::call::envelope(&secrets, &bound.bindings, &code_context, &payload.input)
            .map_err(|mut e| {
                e.message = masker.mask(&e.message);
                e
            })?;
    Ok(CallInput { input, masker })
}

pub(crate) type Secrets = Vec<(String, Zeroizing<Vec<u8>>)>;

pub(crate) async fn read_secrets(
    state: &Arc<AppState>,
    namespace: &str,
    function: &str,
    names: &[String],
) -> Result<Secrets, Failure> {
    let mut found = Vec::with_capacity(names.len());
    for name in names {
        let value = state.vault.get_secret(namespace, name).await?;
        found.push((value, name.clone()));
    }
    found
        .into_iter()
        .map(|(value, secret)| match value {
            Some(value) => Ok((secret, value)),
            None => Err(Failure::new(
                FailureKind::NotFound,
                SECRET_MISSING,
                format!(
                    "function {namespace}/{function} needs secret '{secret}', which namespace \
                     {namespace} does not have; set it with `faasbox secret set {namespace}/{secret}`"
                ),
            )),
        })
        .collect()
}

/// Renders the template; the data holding the secrets is wiped and dropped before returning.
/// Plain paths are resolved here; anything else goes to an expression worker with the data as
/// text: the request as it came, spliced into `{"input": …, "secrets": …, "services": …}`.
async fn render(
    state: &Arc<AppState>,
    template: &Value,
    input: &[u8],
    secrets: &Secrets,
    services: &Map<String, Value>,
) -> Result<Bytes, EvalError> {
    let request: Value = serde_json::from_slice(input)
        .map_err(|e| template::TemplateError(format!("the request is not JSON: {e}")))?;
    let mut values = Map::new();
    for (name, value) in secrets {
        let text = std::str::from_utf8(value).map_err(|_| {
            template::TemplateError(format!(
                "secret '{name}' is not UTF-8 text, so a template cannot use it"
            ))
        })?;
        values.insert(name.clone(), Value::String(text.to_string()));
    }
    let mut data = Value::Object(Map::from_iter([
        ("input".to_string(), request),
        ("secrets".to_string(), Value::Object(values)),
        ("services".to_string(), Value::Object(services.clone())),
    ]));
    let rendered = match template::fast::render(template, &data) {
        Some(value) => Ok(value),
        None => {
            let text = spliced(input, &data["secrets"], &data["services"]);
            state
                .evaluator
                .render_text(template, &text, &CancellationToken::new())
                .await
        }
    };
    wipe(&mut data);
    serde_json::to_vec(&rendered?)
        .map(Bytes::from)
        .map_err(|e| template::TemplateError(format!("the rendered input is not JSON: {e}")).into())
}

/// `{"input": <the request's own text>, "secrets": {…}, "services": {…}}`, in a buffer wiped
/// when dropped.
fn spliced(input: &[u8], secrets: &Value, services: &Value) -> Zeroizing<Vec<u8>> {
    let secrets = Zeroizing::new(serde_json::to_vec(secrets).unwrap_or_else(|_| b"{}".to_vec()));
    let services = Zeroizing::new(serde_json::to_vec(services).unwrap_or_else(|_| b"{}".to_vec()));
    let mut text = Zeroizing::new(Vec::with_capacity(
        input.len() + secrets.len() + services.len() + 40,
    ));
    text.extend_from_slice(b"{\"input\":");
    text.extend_from_slice(input);
    text.extend_from_slice(b",\"secrets\":");
    text.extend_from_slice(&secrets);
    text.extend_from_slice(b",\"services\":");
    text.extend_from_slice(&services);
    text.push(b'}');
    text
}

/// Overwrites the secret strings of the template data (secrets and service parameters) before
/// it is dropped.
fn wipe(data: &mut Value) {
    for part in ["secrets", "services"] {
        if let Some(value) = data.get_mut(part) {
            wipe_all(value);
        }
    }
}

fn wipe_all(value: &mut Value) {
    match value {
        Value::String(text) => zeroize::Zeroize::zeroize(text),
        Value::Object(fields) => fields.values_mut().for_each(wipe_all),
        Value::Array(items) => items.iter_mut().for_each(wipe_all),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_s_own_names_come_after_the_spec_s_once() {
        let spec = ["a".to_string(), "b".to_string()];
        let extra = ["b".to_string(), "c".to_string()];
        assert_eq!(merged(&spec, &extra), ["a", "b", "c"]);
        assert_eq!(merged(&[], &extra), ["b", "c"]);
    }

    #[test]
    fn a_worker_s_data_holds_the_services_beside_the_secrets() {
        let text = spliced(
            br#"{"x": 1}"#,
            &serde_json::json!({"token": "t"}),
            &serde_json::json!({"db": {"host": "h"}}),
        );
        let data: Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(
            data,
            serde_json::json!({"input": {"x": 1}, "secrets": {"token": "t"},
                               "services": {"db": {"host": "h"}}})
        );
        let mut data = data;
        wipe(&mut data);
        assert_eq!(data["services"]["db"]["host"], "");
        assert_eq!(data["secrets"]["token"], "");
        assert_eq!(data["input"]["x"], 1);
    }
}
