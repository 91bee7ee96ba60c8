//! `/v1/api[/{name}]`: Dispatch's API gateway on faasbox's HTTP routes
//! (`faasbox_core::routes::manage`). A Dispatch API `{name, function, uris, methods, hosts,
//! protocols, authentication, cors, enabled}` is a route of the org's namespace: its one URI is
//! the route's path (served at `/ns/{org}{uri}` and at `{uri}` on its hosts), `authentication:
//! "public"` is faasbox's `none` and `token` a faasbox token; `cors: true` allows any origin.
//! Kinds that need credentials or a secret (basic, api-key, hmac-sha256, slack) are set with
//! faasbox's own API or CLI; an update that names the route's current kind keeps it.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use faasbox_core::routes::manage::{self, AuthBody, RouteBody, RoutePatch, RouteView};
use faasbox_core::routes::{Cors, RouteLimits, RouteTarget};
use serde::{Deserialize, Serialize};

use super::models::{id_of, unix_seconds, Tag};
use super::{read_json, require_org, DispatchError, DispatchResult, Org};
use faasbox_core::state::AppState;

/// Dispatch's `API` as a client sends it: what faasbox reads of it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApiRequest {
    #[serde(default)]
    name: Option<String>,
    function: String,
    #[serde(default)]
    uris: Vec<String>,
    #[serde(default)]
    methods: Vec<String>,
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(default)]
    protocols: Vec<String>,
    #[serde(default)]
    authentication: Option<String>,
    #[serde(default)]
    cors: bool,
    #[serde(default = "yes")]
    enabled: bool,
    /// Taken and not kept (faasbox has no tags on routes).
    #[serde(default)]
    #[allow(dead_code)]
    tags: Vec<Tag>,
}

fn yes() -> bool {
    true
}

/// Dispatch's `API` as faasbox answers it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Api {
    id: String,
    name: String,
    kind: &'static str,
    function: String,
    uris: Vec<String>,
    methods: Vec<String>,
    hosts: Vec<String>,
    protocols: Vec<&'static str>,
    authentication: String,
    cors: bool,
    enabled: bool,
    status: &'static str,
    reason: Vec<String>,
    tags: Vec<Tag>,
    created_time: i64,
    modified_time: i64,
}

impl Api {
    fn of(view: RouteView) -> Api {
        let function = match view.target {
            RouteTarget::Function(name) => name,
            // A flow route made with faasbox's API: Dispatch has no flows; named by its path.
            RouteTarget::Flow(path) => format!("flow:{path}"),
        };
        let authentication = match view.auth.kind.as_str() {
            "none" => "public".to_string(),
            other => other.to_string(),
        };
        Api {
            id: id_of(&view.namespace, "api", &view.name),
            kind: "API",
            function,
            uris: vec![view.path],
            methods: view.methods,
            hosts: view.hosts,
            protocols: vec!["http"],
            authentication,
            cors: view.cors.is_some(),
            enabled: view.enabled,
            status: super::models::status::READY,
            reason: Vec::new(),
            tags: Vec::new(),
            created_time: unix_seconds(&view.created),
            modified_time: unix_seconds(&view.modified),
            name: view.name,
        }
    }
}

fn bad(message: impl Into<String>) -> DispatchError {
    DispatchError::new(StatusCode::BAD_REQUEST, message)
}

/// The one URI of an API, and its protocols checked.
fn uri_of(request: &ApiRequest) -> DispatchResult<String> {
    if let Some(protocol) = request
        .protocols
        .iter()
        .find(|p| !matches!(p.as_str(), "http" | "https"))
    {
        return Err(bad(format!(
            "protocol '{}' is not served: faasbox serves http (put a TLS proxy in front for \
             https); give [\"http\"] or [\"https\"]",
            protocol.escape_debug()
        )));
    }
    match request.uris.as_slice() {
        [uri] => Ok(uri.clone()),
        [] => Err(bad(
            "give the API's URI in `uris` (one, e.g. [\"/hello\"]): faasbox serves it at \
             /ns/{org}{uri}",
        )),
        more => Err(bad(format!(
            "{} URIs given; a faasbox route has one: create one API per URI",
            more.len()
        ))),
    }
}

/// The auth of `authentication` when faasbox can set it from Dispatch's form alone.
fn auth_of(authentication: Option<&str>) -> DispatchResult<AuthBody> {
    match authentication.unwrap_or("public") {
        "public" | "none" | "" => Ok(AuthBody::None {}),
        "token" => Ok(AuthBody::Token {}),
        kind @ ("basic" | "api-key" | "hmac-sha256" | "slack") => Err(bad(format!(
            "authentication '{kind}' needs credentials or a secret Dispatch's API cannot carry: \
             create the route with `faasbox route create ORG/NAME --auth {kind} …` (or PUT \
             /api/v1/namespaces/ORG/routes/NAME); an update here that keeps '{kind}' keeps them"
        ))),
        other => Err(bad(format!(
            "authentication '{}' is not one faasbox has: use public, token (a faasbox token of \
             the org), or basic, api-key, hmac-sha256, slack through faasbox's own API",
            other.escape_debug()
        ))),
    }
}

fn cors_of(cors: bool) -> Option<Cors> {
    cors.then(|| Cors {
        origins: vec!["*".into()],
        ..Cors::default()
    })
}

pub(crate) async fn create(
    State(state): State<Arc<AppState>>,
    Org(ns): Org,
    body: axum::body::Bytes,
) -> DispatchResult<(StatusCode, Json<Api>)> {
    require_org(&state, &ns).await?;
    let request: ApiRequest = read_json(&body, "API")?;
    let Some(name) = request.name.clone() else {
        return Err(bad("give the API's `name`"));
    };
    if manage::get(&*state.store, &ns, &name).await.is_ok() {
        return Err(DispatchError::new(
            StatusCode::CONFLICT,
            format!(
                "API '{name}' already exists in {ns}: update it (`PUT /v1/api/{name}`) or delete \
                 it first"
            ),
        ));
    }
    let body = RouteBody {
        path: uri_of(&request)?,
        methods: request.methods,
        hosts: request.hosts,
        target: RouteTarget::Function(request.function),
        auth: auth_of(request.authentication.as_deref())?,
        cors: cors_of(request.cors),
        raw_response: false,
        limits: RouteLimits::default(),
        enabled: request.enabled,
    };
    let (view, _) = crate::routes::put_route(&state, &ns, &name, body).await?;
    Ok((StatusCode::CREATED, Json(Api::of(view))))
}

pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    Org(ns): Org,
) -> DispatchResult<Json<Vec<Api>>> {
    require_org(&state, &ns).await?;
    let views = manage::list(&*state.store, &ns).await?;
    Ok(Json(views.into_iter().map(Api::of).collect()))
}

pub(crate) async fn get(
    State(state): State<Arc<AppState>>,
    Org(ns): Org,
    Path(name): Path<String>,
) -> DispatchResult<Json<Api>> {
    require_org(&state, &ns).await?;
    Ok(Json(Api::of(manage::get(&*state.store, &ns, &name).await?)))
}

/// Replaces what Dispatch's API says of the route; what it cannot say (credentials, limits,
/// CORS origins while `cors` stays true, raw responses) is kept.
pub(crate) async fn update(
    State(state): State<Arc<AppState>>,
    Org(ns): Org,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> DispatchResult<Json<Api>> {
    require_org(&state, &ns).await?;
    let request: ApiRequest = read_json(&body, "API")?;
    if request.name.as_deref().is_some_and(|n| n != name) {
        return Err(bad(format!(
            "the body's name is not '{name}': an API is renamed by creating the new one and \
             deleting the old"
        )));
    }
    let current = manage::get(&*state.store, &ns, &name).await?;
    let given = match request.authentication.as_deref() {
        Some("public") => "none",
        Some(kind) => kind,
        None => "none",
    };
    let auth = if given == current.auth.kind {
        None
    } else {
        Some(auth_of(request.authentication.as_deref())?)
    };
    let cors = match (request.cors, current.cors.is_some()) {
        (true, true) => None,
        (cors, _) => Some(cors_of(cors)),
    };
    let change = RoutePatch {
        path: Some(uri_of(&request)?),
        methods: Some(request.methods),
        hosts: Some(request.hosts),
        target: Some(RouteTarget::Function(request.function)),
        auth,
        cors,
        enabled: Some(request.enabled),
        ..RoutePatch::default()
    };
    Ok(Json(Api::of(
        crate::routes::patch_route(&state, &ns, &name, change).await?,
    )))
}

/// Deletes an API and answers it, as Dispatch does.
pub(crate) async fn delete(
    State(state): State<Arc<AppState>>,
    Org(ns): Org,
    Path(name): Path<String>,
) -> DispatchResult<Json<Api>> {
    require_org(&state, &ns).await?;
    let view = manage::get(&*state.store, &ns, &name).await?;
    crate::routes::delete_route(&state, &ns, &name).await?;
    Ok(Json(Api::of(view)))
}
