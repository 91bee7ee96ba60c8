//! The gateway: requests to `/ns/{namespace}…` and to a route's host (outside the API's
//! reserved prefixes) are served by the namespace's HTTP routes, without the API's token
//! check (a route has its own authentication). Each request goes through match, CORS, rate
//! limit, body limit, authentication, then the call of the route's function or flow, as
//! `docs/ROUTES.md` says; the route logic itself is `faasbox_core::routes`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use faasbox_flow::engine::Outcome;
use serde_json::{json, Value};

use super::held_body;
use super::invocations::{self, Bounded, INVOCATION_ID_HEADER};
use crate::error::ApiError;
use faasbox_core::failure::{Failure, FailureKind};
use faasbox_core::invoker::{CallOptions, CallRequest};
use faasbox_core::routes::auth::{self as route_auth, Presented};
use faasbox_core::routes::context::{self, HttpContext};
use faasbox_core::routes::table::{self, Lookup, Matched};
use faasbox_core::routes::{limits, Cors, RouteTarget, StoredAuth};
use faasbox_core::state::AppState;

/// The error code of a request no route answers.
pub const NOT_FOUND: &str = "faasbox.route.not_found";
/// The error code of a request over a route's rate limit.
pub const RATE_LIMITED: &str = "faasbox.route.rate_limited";
/// The error code of a refused CORS preflight.
pub const CORS_REFUSED: &str = "faasbox.route.cors_refused";
/// The error code of a raw-response route whose function answered something else.
pub const BAD_RAW_RESPONSE: &str = "faasbox.route.bad_response";

/// Where a request goes in the gateway.
enum Place {
    /// `/ns/{namespace}{rest}`.
    Namespace { namespace: String, rest: String },
    /// A route host's `{path}`.
    Host { host: String, path: String },
}

/// The middleware in front of the API's token check: gateway requests are answered here,
/// everything else goes on to the API.
pub async fn divert(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    match place_of(&state, &request) {
        Some(place) => sandboxed(serve(state, place, request).await),
        None => next.run(request).await,
    }
}

/// The policy every gateway answer gets: route pages share the web UI's origin, so they run
/// in an opaque one (no `allow-same-origin`), where a script cannot use the UI's session.
pub const SANDBOX_POLICY: &str =
    "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads";

/// Adds [`SANDBOX_POLICY`] to an answer, as a policy of its own: a web action's own
/// `Content-Security-Policy` stays, and the browser enforces both.
fn sandboxed(mut response: Response) -> Response {
    response.headers_mut().append(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(SANDBOX_POLICY),
    );
    response
}

fn place_of(state: &AppState, request: &Request) -> Option<Place> {
    let path = request.uri().path();
    if let Some(below) = path.strip_prefix("/ns/") {
        let (namespace, rest) = match below.find('/') {
            Some(i) => (&below[..i], &below[i..]),
            None => (below, ""),
        };
        return Some(Place::Namespace {
            namespace: namespace.to_string(),
            rest: rest.to_string(),
        });
    }
    if table::is_reserved(path) {
        return None;
    }
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().host())?;
    state.routes.serves_host(host).then(|| Place::Host {
        host: table::bare_host(host),
        path: path.to_string(),
    })
}

async fn serve(state: Arc<AppState>, place: Place, request: Request) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_string();
    let lookup = match &place {
        Place::Namespace { namespace, rest } => {
            state.routes.lookup_namespace(namespace, rest, &method)
        }
        Place::Host { host, path } => state.routes.lookup_host(host, path, &method),
    };
    let matched = match lookup {
        Lookup::Found(matched) => matched,
        Lookup::NotFound => return not_found(),
        Lookup::MethodNotAllowed(allowed) => return method_not_allowed(&allowed),
    };
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut response = answer(&state, &place, &matched, request).await;
    if let (Some(cors), Some(origin)) = (&matched.route.spec.cors, origin.as_deref()) {
        if let Some(allowed) = allowed_origin(cors, origin) {
            let headers = response.headers_mut();
            if let Ok(value) = HeaderValue::from_str(&allowed) {
                headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
                let varies = headers.get_all(header::VARY).iter().any(|v| {
                    v.to_str().is_ok_and(|v| {
                        v.split(',')
                            .any(|n| n.trim().eq_ignore_ascii_case("origin"))
                    })
                });
                if !varies {
                    headers.append(header::VARY, HeaderValue::from_static("Origin"));
                }
            }
        }
    }
    faasbox_core::metrics::route_answered(
        &matched.route.namespace,
        &matched.route.name,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// A refusal in the route's form: `{"error": {"code", "message"}}`.
fn refusal(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    ApiError::new(status, code, message).into_response()
}

fn not_found() -> Response {
    refusal(
        StatusCode::NOT_FOUND,
        NOT_FOUND,
        "no route answers this path; `faasbox route ls NS` lists a namespace's routes",
    )
}

fn method_not_allowed(allowed: &[String]) -> Response {
    let list = allowed.join(", ");
    let mut response = refusal(
        StatusCode::METHOD_NOT_ALLOWED,
        faasbox_core::failure::codes::BAD_REQUEST,
        format!("this route does not take that method; it takes {list}"),
    );
    if let Ok(value) = HeaderValue::from_str(&list) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

fn allowed_origin(cors: &Cors, origin: &str) -> Option<String> {
    if cors.origins.iter().any(|o| o == origin) {
        Some(origin.to_string())
    } else if cors.origins.iter().any(|o| o == "*") {
        Some("*".to_string())
    } else {
        None
    }
}

fn takes_method(methods: &[String], method: &str) -> bool {
    methods.is_empty()
        || methods.iter().any(|m| m == method)
        || (method == "HEAD" && methods.iter().any(|m| m == "GET"))
}

/// The answer of a matched request, CORS headers aside.
async fn answer(
    state: &Arc<AppState>,
    place: &Place,
    matched: &Matched,
    request: Request,
) -> Response {
    let route = &matched.route;
    let spec = &route.spec;
    let method = request.method().clone();
    let headers = request.headers().clone();
    // 2. CORS preflight.
    if method == Method::OPTIONS && headers.contains_key(header::ORIGIN) {
        if let (Some(cors), Some(asked)) = (
            &spec.cors,
            headers.get(header::ACCESS_CONTROL_REQUEST_METHOD),
        ) {
            return preflight(cors, &spec.methods, &headers, asked);
        }
    }
    if !takes_method(&spec.methods, method.as_str()) {
        return method_not_allowed(&spec.methods);
    }
    // 3. Rate limit per client address.
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    if let Some(rate) = spec.limits.rate_per_second {
        let burst = spec
            .limits
            .burst
            .unwrap_or_else(|| (rate.ceil() as u32).max(1));
        if let Err(wait) =
            state
                .routes
                .rates
                .take(&route.namespace, &route.name, client.ip(), rate, burst)
        {
            let seconds = limits::retry_after_seconds(wait);
            let mut response = refusal(
                StatusCode::TOO_MANY_REQUESTS,
                RATE_LIMITED,
                format!("this route takes at most {rate} requests per second from one address; try again in {seconds} s"),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            return response;
        }
    }
    let uri = request.uri().clone();
    // 4. Body, within the route's limit.
    let max = limits::max_body(spec, &state.config);
    let held = match held_body::read(
        request.into_body(),
        &headers,
        max,
        &state.bodies,
        state.config.queue_timeout,
    )
    .await
    {
        Ok(held) => held,
        Err(e) => return e.into_response(),
    };
    // 5. Authentication.
    let raw_query = uri.query().unwrap_or_default().to_string();
    let header_list = header_list(&headers);
    let query_list: Vec<(String, String)> = form_urlencoded::parse(raw_query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let presented = Presented {
        headers: &header_list,
        query: &query_list,
        body: &held.bytes,
    };
    let checks = route_auth::Checks {
        tokens: &state.tokens,
        vault: &state.vault,
        replays: &state.routes.replays,
        verified: &state.routes.verified,
    };
    let checked = route_auth::Route {
        namespace: &route.namespace,
        name: &route.name,
        auth: &spec.auth,
    };
    if let Err(denied) = route_auth::check(&checks, &checked, &presented).await {
        let mut response = refusal(
            StatusCode::UNAUTHORIZED,
            route_auth::UNAUTHORIZED,
            denied.message,
        );
        if let Some(challenge) = denied.challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        return response;
    }
    // 6. The call.
    let (cred_header, cred_query) = route_auth::credential_names(&spec.auth);
    let cred_header: Vec<&str> = cred_header.as_deref().into_iter().collect();
    let context = HttpContext {
        route: route.name.clone(),
        method: method.as_str().to_string(),
        path: matched.path.clone(),
        params: matched.params.clone(),
        raw_query: strip_query(&raw_query, cred_query.as_deref()),
        query: {
            let mut query = BTreeMap::new();
            for (k, v) in &query_list {
                if Some(k.as_str()) != cred_query.as_deref() {
                    query.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            query
        },
        headers: context::context_headers(
            headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())),
            cred_header.as_slice(),
        ),
        remote_addr: client.to_string(),
        host: match place {
            Place::Host { host, .. } => Some(host.clone()),
            Place::Namespace { .. } => headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(table::bare_host),
        },
    };
    let public = !matches!(spec.auth, StoredAuth::Token);
    match &spec.target {
        RouteTarget::Function(function) => {
            call_function(state, matched, function, held, context, &headers, public).await
        }
        RouteTarget::Flow(path) => {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            let body = match context::parse_body(content_type, &held.bytes) {
                Ok(body) => body,
                Err(e) => return ApiError::from(e).into_response(),
            };
            drop(held);
            call_flow(
                state,
                &route.namespace,
                path,
                body,
                context,
                &headers,
                public,
            )
            .await
        }
    }
}

fn preflight(
    cors: &Cors,
    route_methods: &[String],
    headers: &HeaderMap,
    asked: &HeaderValue,
) -> Response {
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let asked = asked
        .to_str()
        .unwrap_or_default()
        .trim()
        .to_ascii_uppercase();
    let methods: Vec<String> = if !cors.methods.is_empty() {
        cors.methods.clone()
    } else if !route_methods.is_empty() {
        route_methods.to_vec()
    } else {
        table::ALL_METHODS.iter().map(|m| m.to_string()).collect()
    };
    let (Some(allowed), true) = (
        allowed_origin(cors, origin),
        methods.iter().any(|m| m.eq_ignore_ascii_case(&asked)),
    ) else {
        return refusal(
            StatusCode::FORBIDDEN,
            CORS_REFUSED,
            "this origin or method is not allowed by the route's CORS settings",
        );
    };
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    let mut put = |name: HeaderName, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            h.insert(name, value);
        }
    };
    put(header::ACCESS_CONTROL_ALLOW_ORIGIN, &allowed);
    put(header::ACCESS_CONTROL_ALLOW_METHODS, &methods.join(", "));
    if !cors.headers.is_empty() {
        put(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            &cors.headers.join(", "),
        );
    }
    if let Some(age) = cors.max_age_seconds {
        put(header::ACCESS_CONTROL_MAX_AGE, &age.to_string());
    }
    put(header::VARY, "Origin");
    response
}

/// The request's headers, names lower case, repeated ones joined with `, `.
fn header_list(headers: &HeaderMap) -> Vec<(String, String)> {
    let mut list: Vec<(String, String)> = Vec::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match list.iter_mut().find(|(n, _)| n == name.as_str()) {
            Some((_, joined)) => {
                joined.push_str(", ");
                joined.push_str(&value);
            }
            None => list.push((name.as_str().to_string(), value)),
        }
    }
    list
}

/// The raw query without the parameter `credential`.
fn strip_query(raw: &str, credential: Option<&str>) -> String {
    let Some(credential) = credential else {
        return raw.to_string();
    };
    raw.split('&')
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or_default();
            form_urlencoded::parse(name.as_bytes())
                .next()
                .is_none_or(|(n, _)| n != credential)
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Whether the caller asks for an asynchronous call.
fn wants_async(headers: &HeaderMap) -> bool {
    let is_false = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("false"))
    };
    let prefer = headers.get_all("prefer").iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|p| p.trim().eq_ignore_ascii_case("respond-async"))
        })
    });
    is_false("x-faasbox-blocking") || is_false("x-dispatch-blocking") || prefer
}

fn accepted(id: &str, status: &str, id_header: &'static str) -> Response {
    let mut response = (
        StatusCode::ACCEPTED,
        Json(json!({"id": id, "status": status})),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(id) {
        response.headers_mut().insert(id_header, value);
    }
    response
}

/// A failure as a route answers it: in full on `token` routes; elsewhere only its code, what
/// kind of failure it is and the run.
fn failed(failure: Failure, run: Option<&str>, public: bool) -> Response {
    let mut error = ApiError::from(failure);
    if !public {
        let mut response = error.clone().into_response();
        if let Some(Ok(value)) = run.map(HeaderValue::from_str) {
            response.headers_mut().insert(INVOCATION_ID_HEADER, value);
        }
        return response;
    }
    error.message = generic_message(error.status).to_string();
    if error.status.is_server_error() && error.status != StatusCode::BAD_GATEWAY {
        tracing::error!(code = %error.code, run = ?run, "a route's call failed");
    }
    let mut body = json!({"error": {"code": error.code, "message": error.message}});
    if let Some(run) = run {
        body["error"]["run"] = json!(run);
    }
    let mut response = (error.status, Json(body)).into_response();
    if let Some(Ok(value)) = run.map(HeaderValue::from_str) {
        response.headers_mut().insert(INVOCATION_ID_HEADER, value);
    }
    response
}

fn generic_message(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 422 => "the request was refused as input",
        404 => "what this route calls does not exist",
        409 => "the call was cancelled",
        413 => "the request or the answer is too large",
        403 => "the call is not allowed now",
        503 => "the service is busy; try again later",
        502 => "the function failed",
        504 => "the function did not answer in time",
        _ => "the server failed to answer",
    }
}

#[allow(clippy::too_many_arguments)]
async fn call_function(
    state: &Arc<AppState>,
    matched: &Matched,
    function: &str,
    held: held_body::HeldBody,
    context: HttpContext,
    headers: &HeaderMap,
    public: bool,
) -> Response {
    let route = &matched.route;
    let namespace = route.namespace.clone();
    // What the function gets depends on its contract; a function not in service is the
    // invoker's to refuse (as any call of it).
    let contract = state
        .deployments
        .deployed(&namespace, function)
        .map(|d| d.spec.contract)
        .unwrap_or_default();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let call = match context::call_input_for(contract, &context, content_type, &held.bytes) {
        Ok(call) => call,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let context = match serde_json::to_value(&context) {
        Ok(c) => c,
        Err(e) => return failed(Failure::internal(e.to_string()), None, public),
    };
    let input = call.input;
    if wants_async(headers) {
        drop(held);
        let submission = faasbox_core::runs::Submission {
            namespace,
            function: function.to_string(),
            input,
            http_context: Some(context),
            ..Default::default()
        };
        return match faasbox_core::runs::submit(state, submission).await {
            Ok(submitted) => accepted(&submitted.id, &submitted.status, INVOCATION_ID_HEADER),
            Err(e) => failed(e, None, public),
        };
    }
    let options = CallOptions {
        permit: Some(held.permit),
        code_context: call.code_context,
        http_context: Some(context),
        http_forward: call.forward,
        ..CallOptions::default()
    };
    let request = CallRequest::function(&namespace, function, input).with(options);
    let bound = limits::blocking_timeout(&route.spec, &state.config);
    let invocation = match invocations::call_within(state.clone(), request, bound).await {
        Ok(Bounded::Ended(invocation)) => invocation,
        Ok(Bounded::Running(id)) => return accepted(&id, "running", INVOCATION_ID_HEADER),
        Err(e) => return failed(e, None, public),
    };
    let run = invocation.id.clone();
    let mut response = match invocation.result {
        Ok(output) if route.spec.raw_response => raw_answer(&output, run.as_deref(), public),
        Ok(output) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            held_body::response_body(output, invocation.held),
        )
            .into_response(),
        Err(e) => return failed(e, run.as_deref(), public),
    };
    if let Some(Ok(value)) = run.as_deref().map(HeaderValue::from_str) {
        response.headers_mut().insert(INVOCATION_ID_HEADER, value);
    }
    response
}

/// The answer a raw-response route makes of the output `{statusCode?, headers?, body?,
/// isBase64Encoded?}` (`routes::context::raw_response`); 502 for an output of another form.
fn raw_answer(output: &[u8], run: Option<&str>, public: bool) -> Response {
    let raw = match context::raw_response(output) {
        Ok(raw) => raw,
        Err(why) => {
            return failed(
                Failure::new(FailureKind::FunctionFailed, BAD_RAW_RESPONSE, why),
                run,
                public,
            )
        }
    };
    let mut response = Response::new(Body::from(raw.body));
    *response.status_mut() = StatusCode::from_u16(raw.status).unwrap_or(StatusCode::OK);
    let h = response.headers_mut();
    for (name, value) in raw.headers {
        // raw_response checked both; a pair that still fails is left out.
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::from_str(&value),
        ) {
            h.append(name, value);
        }
    }
    response
}

async fn call_flow(
    state: &Arc<AppState>,
    namespace: &str,
    path: &str,
    body: Value,
    context: HttpContext,
    headers: &HeaderMap,
    public: bool,
) -> Response {
    use faasbox_core::flows::runner;
    // Flows are stored by their path without the leading `/`.
    let path = path.trim_start_matches('/').to_string();
    let input = json!({"body": body, "http": context});
    let id = match runner::create(state, namespace, &path, input, runner::StartedBy::Api).await {
        Ok(id) => id,
        Err(e) => return failed(e, None, public),
    };
    let handle = runner::spawn(state, id.clone());
    let instance_header = super::flows::INSTANCE_ID_HEADER;
    if wants_async(headers) {
        return accepted(&id, "running", instance_header);
    }
    let ended = match handle.await {
        Ok(Outcome::Completed(output)) => Some(Ok(output)),
        Ok(Outcome::Failed(e)) => Some(Err(e)),
        Ok(Outcome::Waiting(_)) => {
            runner::wait_until_ended(state, &id, std::time::Duration::from_secs(15 * 60)).await
        }
        Err(e) => return failed(Failure::from(e), None, public),
    };
    let mut response = match ended {
        Some(Ok(output)) => (StatusCode::OK, Json(output)).into_response(),
        Some(Err(e)) => {
            let message = if public {
                "the flow failed".to_string()
            } else {
                e.message.clone()
            };
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({"error": {"code": e.code, "message": message, "instance": id}})),
            )
                .into_response()
        }
        None => accepted(&id, "waiting", instance_header),
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(instance_header, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_credential_leaves_the_query() {
        assert_eq!(strip_query("a=1&key=s&b=2", Some("key")), "a=1&b=2");
        assert_eq!(strip_query("a=1", None), "a=1");
        assert_eq!(strip_query("k%65y=s&b=2", Some("key")), "b=2");
    }

    #[test]
    fn raw_responses_are_checked() {
        let r = raw_answer(
            br#"{"statusCode": 201, "headers": {"Location": "/x"}, "body": "<p>hi</p>"}"#,
            None,
            true,
        );
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["location"], "/x");
        assert_eq!(raw_answer(b"[1]", None, true).status(), 502);
        assert_eq!(
            raw_answer(br#"{"statusCode": 99}"#, None, true).status(),
            502
        );
        let r = raw_answer(br#"{"body": "aGk=", "isBase64Encoded": true}"#, None, true);
        assert_eq!(r.status(), 200);
    }
}
