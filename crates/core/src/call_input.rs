//! What a call sends and what it masks: the function's secrets are read from the vault, the
//! input is built from the spec's `input` template (if any) against
//! `{"input": <request>, "secrets": {name: value}}`, and that secret-enriched data is dropped
//! right after. Without a template the request passes unchanged and secrets go nowhere.
//! The secret values also make the call's [`Masker`]. Templates whose expressions are plain
//! paths are rendered in place; others run in the server's bounded expression workers.

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

/// Reads the spec's secrets and builds the input (for a code function, the envelope, whose
/// `context` gets `code_context` too). Errors are masked already.
pub async fn prepare(
    state: &Arc<AppState>,
    namespace: &str,
    name: &str,
    spec: &FunctionSpec,
    input: Bytes,
    code_context: Map<String, Value>,
    extra: Extra<'_>,
) -> Result<CallInput, Failure> {
    // The services and a call's own secrets and services are injected by the services work
    // (issue 15); until then they are refused where a caller could name them.
    let _ = extra;
    if spec.effective_contract() == faasbox_proto::Contract::Code {
        return prepare_code(state, namespace, name, spec, input, code_context).await;
    }
    if spec.secrets.is_empty() && spec.input.is_none() {
        return Ok(CallInput {
            input,
            masker: Masker::default(),
        });
    }
    let secrets = read_secrets(state, namespace, name, &spec.secrets).await?;
    let masker = Masker::new(secrets.iter().map(|(_, v)| v.as_slice()));
    let Some(template) = &spec.input else {
        return Ok(CallInput { input, masker });
    };
    let rendered = render(state, template, &input, &secrets)
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

/// A code function's call: the input (through the template, if any) as the payload of the
/// envelope whose `context.secrets` holds the spec's secrets (see `crate::code::call`).
async fn prepare_code(
    state: &Arc<AppState>,
    namespace: &str,
    name: &str,
    spec: &FunctionSpec,
    input: Bytes,
    code_context: Map<String, Value>,
) -> Result<CallInput, Failure> {
    let plain = FunctionSpec {
        secrets: if spec.input.is_some() {
            spec.secrets.clone()
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
    let secrets = read_secrets(state, namespace, name, &spec.secrets).await?;
    // A secret holding a JSON object reaches the handler as its fields: their values are
    // masked one by one too.
    let fields = crate::code::call::object_secret_values(&secrets);
    let masker = Masker::new(
        secrets
            .iter()
            .map(|(_, v)| v.as_slice())
            .chain(fields.iter().map(|v| v.as_bytes())),
    );
    let input =
        crate::code::call::envelope(&secrets, &code_context, &payload.input).map_err(|mut e| {
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
/// text: the request as it came, spliced into `{"input": …, "secrets": …}`.
async fn render(
    state: &Arc<AppState>,
    template: &Value,
    input: &[u8],
    secrets: &Secrets,
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
    ]));
    let rendered = match template::fast::render(template, &data) {
        Some(value) => Ok(value),
        None => {
            let text = spliced(input, &data["secrets"]);
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

/// `{"input": <the request's own text>, "secrets": {…}}`, in a buffer wiped when dropped.
fn spliced(input: &[u8], secrets: &Value) -> Zeroizing<Vec<u8>> {
    let secrets = Zeroizing::new(serde_json::to_vec(secrets).unwrap_or_else(|_| b"{}".to_vec()));
    let mut text = Zeroizing::new(Vec::with_capacity(input.len() + secrets.len() + 24));
    text.extend_from_slice(b"{\"input\":");
    text.extend_from_slice(input);
    text.extend_from_slice(b",\"secrets\":");
    text.extend_from_slice(&secrets);
    text.push(b'}');
    text
}

/// Overwrites the secret strings of the template data before it is dropped.
fn wipe(data: &mut Value) {
    if let Some(Value::Object(secrets)) = data.get_mut("secrets") {
        for value in secrets.values_mut() {
            if let Value::String(text) = value {
                zeroize::Zeroize::zeroize(text);
            }
        }
    }
}
