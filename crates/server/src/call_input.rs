//! What a call sends and what it masks: the function's secrets are read from the vault, the
//! input is built from the spec's `input` template (if any) against
//! `{"input": <request>, "secrets": {name: value}}`, and that secret-enriched data is dropped
//! right after. Without a template the request passes unchanged and secrets go nowhere.
//! The secret values also make the call's [`Masker`].

use std::sync::Arc;

use axum::http::StatusCode;
use bytes::Bytes;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::error::ApiError;
use crate::mask::Masker;
use crate::model::FunctionSpec;
use crate::state::AppState;
use crate::template;

/// Error code of a call whose function names a secret its namespace lacks.
pub const SECRET_MISSING: &str = "faasbox.secret.missing";

/// The input to send, and the masker for what the call leaves behind.
pub struct CallInput {
    pub input: Bytes,
    pub masker: Masker,
}

/// Reads the spec's secrets and builds the input. Errors are masked already.
pub async fn prepare(
    state: &Arc<AppState>,
    namespace: &str,
    name: &str,
    spec: &FunctionSpec,
    input: Bytes,
) -> Result<CallInput, ApiError> {
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
    let rendered = render(template, &input, &secrets).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            template::BAD_COMMAND,
            masker.mask(&format!(
                "the input template of function {namespace}/{name} cannot be evaluated: {e}"
            )),
        )
    })?;
    Ok(CallInput {
        input: rendered,
        masker,
    })
}

pub(crate) type Secrets = Vec<(String, Zeroizing<Vec<u8>>)>;

pub(crate) async fn read_secrets(
    state: &Arc<AppState>,
    namespace: &str,
    function: &str,
    names: &[String],
) -> Result<Secrets, ApiError> {
    let (ns, names_owned) = (namespace.to_string(), names.to_vec());
    let found = state
        .blocking(move |s| {
            names_owned
                .into_iter()
                .map(|n| Ok((s.vault.get_secret(&ns, &n)?, n)))
                .collect::<Result<Vec<_>, ApiError>>()
        })
        .await?;
    found
        .into_iter()
        .map(|(value, secret)| match value {
            Some(value) => Ok((secret, value)),
            None => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                SECRET_MISSING,
                format!(
                    "function {namespace}/{function} needs secret '{secret}', which namespace \
                     {namespace} does not have; set it with `faasbox secret set {namespace}/{secret}`"
                ),
            )),
        })
        .collect()
}

/// Renders the template; the data holding the secrets is dropped before returning.
fn render(
    template: &Value,
    input: &[u8],
    secrets: &Secrets,
) -> Result<Bytes, template::TemplateError> {
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
    let rendered = template::render(template, &data);
    wipe(&mut data);
    let rendered = rendered?;
    serde_json::to_vec(&rendered)
        .map(Bytes::from)
        .map_err(|e| template::TemplateError(format!("the rendered input is not JSON: {e}")))
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
