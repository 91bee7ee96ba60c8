//! Service instances (Dispatch's service bindings, without a broker): a namespace's named
//! bundle of plain `params` and secret `secret_params`. The secret ones are sealed by the
//! vault under the namespace's data key (bound to namespace, `service:NAME` and key) and are
//! never listed: a listing names their keys only. A call of a function bound to services gets
//! each as a map of all its parameters ([`resolve`]), whose secret values go into the call's
//! masker.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use faasbox_store::ServiceRecord;

use crate::clock;
use crate::failure::{Failure, FailureKind};
use crate::model::{check_name, check_secret_name};
use crate::state::AppState;

/// At most this many parameters (plain and secret together) in one service.
pub const MAX_PARAMS: usize = 64;
/// The largest plain parameter value, in bytes.
pub const MAX_PARAM_BYTES: usize = 16 * 1024;

/// What a PUT sends: the whole service (it replaces any earlier one).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceBody {
    /// Non-secret parameters, listed as they are.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Secret parameters: stored encrypted, never listed (only their keys), masked in what a
    /// call leaves behind.
    #[serde(default)]
    pub secret_params: BTreeMap<String, String>,
}

impl Drop for ServiceBody {
    fn drop(&mut self) {
        for value in self.secret_params.values_mut() {
            zeroize::Zeroize::zeroize(value);
        }
    }
}

/// A service as listed: its secret parameters by key only.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServiceView {
    /// Its name.
    pub name: String,
    /// Its non-secret parameters.
    pub params: BTreeMap<String, String>,
    /// The keys of its secret parameters (never their values).
    pub secret_params: Vec<String>,
    /// When it was first created (RFC 3339).
    pub created: String,
    /// When it last changed.
    pub modified: String,
}

impl From<ServiceRecord> for ServiceView {
    fn from(record: ServiceRecord) -> Self {
        ServiceView {
            name: record.name,
            params: record.params,
            secret_params: record.secret_params.into_keys().collect(),
            created: record.created,
            modified: record.modified,
        }
    }
}

/// Creates or replaces service `name` of `namespace`; whether it existed before.
pub async fn put(
    state: &Arc<AppState>,
    namespace: &str,
    name: &str,
    mut body: ServiceBody,
) -> Result<(ServiceView, bool), Failure> {
    check_name("service", name).map_err(Failure::invalid)?;
    let mut problems = Vec::new();
    if body.params.len() + body.secret_params.len() > MAX_PARAMS {
        problems.push(format!(
            "a service holds at most {MAX_PARAMS} parameters (plain and secret together)"
        ));
    }
    for key in body.params.keys().chain(body.secret_params.keys()) {
        if let Err(e) = check_secret_name(key) {
            problems.push(format!("parameter {}", e.replacen("secret name", "key", 1)));
        }
    }
    for key in body.params.keys() {
        if body.secret_params.contains_key(key) {
            problems.push(format!(
                "parameter '{key}' is both plain and secret; give it once"
            ));
        }
    }
    for (key, value) in &body.params {
        if value.len() > MAX_PARAM_BYTES {
            problems.push(format!(
                "parameter '{key}' is {} bytes; a plain parameter holds at most \
                 {MAX_PARAM_BYTES} bytes",
                value.len()
            ));
        }
    }
    if !problems.is_empty() {
        return Err(Failure::invalid(format!(
            "service {namespace}/{name} is invalid: {}",
            problems.join("; ")
        )));
    }
    let secret: BTreeMap<String, Zeroizing<String>> = std::mem::take(&mut body.secret_params)
        .into_iter()
        .map(|(k, v)| (k, Zeroizing::new(v)))
        .collect();
    let sealed = state
        .vault
        .seal_service_params(namespace, name, &secret)
        .await?;
    let existed = state.store.service(namespace, name).await?.is_some();
    let now = clock::now_rfc3339();
    let record = ServiceRecord {
        namespace: namespace.to_string(),
        name: name.to_string(),
        params: std::mem::take(&mut body.params),
        secret_params: sealed,
        created: now.clone(),
        modified: now,
    };
    let stored = state.store.put_service(&record).await?;
    Ok((stored.into(), existed))
}

/// The services of `namespace`, by name.
pub async fn list(state: &Arc<AppState>, namespace: &str) -> Result<Vec<ServiceView>, Failure> {
    Ok(state
        .store
        .list_services(namespace)
        .await?
        .into_iter()
        .map(ServiceView::from)
        .collect())
}

/// Service `name` of `namespace`.
pub async fn get(
    state: &Arc<AppState>,
    namespace: &str,
    name: &str,
) -> Result<ServiceView, Failure> {
    match state.store.service(namespace, name).await? {
        Some(record) => Ok(record.into()),
        None => Err(Failure::not_found(format!(
            "service {namespace}/{} does not exist; create it with `faasbox service create \
             {namespace}/NAME --param k=v --secret-param k=v`",
            name.escape_debug()
        ))),
    }
}

/// Deletes service `name` of `namespace`.
pub async fn delete(state: &Arc<AppState>, namespace: &str, name: &str) -> Result<(), Failure> {
    if state.store.delete_service(namespace, name).await? {
        Ok(())
    } else {
        get(state, namespace, name).await.map(|_| ())
    }
}

/// The services a call gets, each as `{param: value}` (plain and secret parameters together),
/// and the secret values among them (to mask).
#[derive(Default)]
pub struct Bound {
    /// `{service: {param: value}}`; wipe it with [`Bound::wipe`] once used.
    pub bindings: Map<String, Value>,
    /// The secret parameters' values.
    pub secret_values: Vec<Zeroizing<Vec<u8>>>,
}

impl Bound {
    /// Overwrites the secret strings of the bindings.
    pub fn wipe(&mut self) {
        for value in self.bindings.values_mut() {
            wipe(value);
        }
    }
}

impl Drop for Bound {
    fn drop(&mut self) {
        self.wipe();
    }
}

fn wipe(value: &mut Value) {
    match value {
        Value::String(text) => zeroize::Zeroize::zeroize(text),
        Value::Object(fields) => fields.values_mut().for_each(wipe),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        _ => {}
    }
}

/// Error code of a call bound to a service its namespace lacks: the caller's input error.
pub const SERVICE_MISSING: &str = faasbox_proto::CODE_INPUT_ERROR;

/// Reads services `names` of `namespace` for a call of function `function`. A missing one is
/// an `InputError` (422) naming it and the fix.
pub async fn resolve(
    state: &Arc<AppState>,
    namespace: &str,
    function: &str,
    names: &[String],
) -> Result<Bound, Failure> {
    let mut bound = Bound::default();
    for name in names {
        if bound.bindings.contains_key(name) {
            continue;
        }
        let record = if check_name("service", name).is_ok() {
            state.store.service(namespace, name).await?
        } else {
            None
        };
        let Some(record) = record else {
            return Err(Failure::function(
                FailureKind::Invalid,
                SERVICE_MISSING,
                format!(
                    "function {namespace}/{function} is bound to service '{}', which namespace \
                     {namespace} does not have; create it with `faasbox service create \
                     {namespace}/{} --param k=v --secret-param k=v`, or call without it",
                    name.escape_debug(),
                    name.escape_debug()
                ),
                true,
            ));
        };
        let secret = state
            .vault
            .open_service_params(namespace, name, &record.secret_params)
            .await?;
        let mut fields: Map<String, Value> = record
            .params
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        for (key, value) in secret {
            let text = String::from_utf8_lossy(&value).into_owned();
            fields.insert(key, Value::String(text));
            bound.secret_values.push(value);
        }
        bound.bindings.insert(name.clone(), Value::Object(fields));
    }
    Ok(bound)
}
