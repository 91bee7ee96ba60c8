//! The REST API under `/api/v1`: routes, and the handlers grouped by resource.

mod admin;
mod auth;
mod code;
mod dispatch;
mod error;
mod events;
mod flows;
mod function_instances;
mod function_logs;
mod functions;
mod gateway;
mod guard;
mod held_body;
mod images;
mod invocations;
mod json_body;
mod metrics;
mod namespaces;
mod nodes;
mod openapi;
mod paging;
mod pulls;
mod records;
mod registries;
mod routes;
mod secrets;
mod server_info;
mod services;
mod subscriptions;
mod summary;
mod tokens;
mod ui;

use std::sync::{Arc, OnceLock};

use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{delete, get, patch, post, put, MethodRouter};
use axum::{Json, Router};
use faasbox_images::ImageRecord;
use faasbox_secrets::SecretInfo;
use records::{InvocationRecord, NamespaceRecord, TokenRecord};
use serde_json::json;

use self::openapi::{Answer, Body, Doc};
use crate::error::ApiError;
use faasbox_core::model::FunctionSpec;
use faasbox_core::state::AppState;

/// One route: the method and path the router serves, its handler, and what the OpenAPI
/// document says of it. [`routes`] is the one list both are made from.
pub(crate) struct Route {
    pub(crate) method: Method,
    pub(crate) path: &'static str,
    pub(crate) doc: Doc,
    handler: MethodRouter<Arc<AppState>>,
}

fn route(
    method: Method,
    path: &'static str,
    handler: MethodRouter<Arc<AppState>>,
    doc: Doc,
) -> Route {
    Route {
        method,
        path,
        doc,
        handler,
    }
}

const NS: &str = "namespaces";
const IMAGES: &str = "images";
const FUNCTIONS: &str = "functions";
const GLOBAL: &str = "global services";
const CALLS: &str = "invocations";
const SECRETS: &str = "secrets";
const SERVICES: &str = "services";
const REGISTRIES: &str = "registries";
const TOKENS: &str = "tokens";
const FLOWS: &str = "flows";
const INSTANCES: &str = "instances";
const EVENTS: &str = "events";
const SUBSCRIPTIONS: &str = "subscriptions";
const ROUTES: &str = "routes";
const CODE: &str = "functions from code";
const SYSTEM: &str = "system";
const DISPATCH: &str = "dispatch";

const IMPORT_QUERY: &[(&str, bool, &str)] = &[
    ("name", true, "the image's name, e.g. demo/echo:latest"),
    (
        "entrypoint",
        false,
        "root filesystem only: a JSON list of strings",
    ),
    ("cmd", false, "root filesystem only: a JSON list of strings"),
    (
        "env",
        false,
        "root filesystem only: a JSON list of KEY=VALUE strings",
    ),
    ("workdir", false, "root filesystem only"),
    ("user", false, "root filesystem only"),
];
const PULL_QUERY: &[(&str, bool, &str)] = &[("ref", true, "the image reference to pull")];
const PUSH_QUERY: &[(&str, bool, &str)] = &[
    ("name", true, "the image to push"),
    ("target", true, "the reference to push it to"),
];
const REMOVE_QUERY: &[(&str, bool, &str)] = &[
    ("name", true, "the image name to remove"),
    (
        "force",
        false,
        "true: remove it though a function revision uses it",
    ),
];
const CHANGE_QUERY: &[(&str, bool, &str)] = &[(
    "pull",
    false,
    "always, missing or never: when to pull the image from its registry",
)];
const EVENTS_QUERY: &[(&str, bool, &str)] = &[
    ("limit", false, "how many, at most"),
    ("before", false, "the next page: events accepted before the event with this seq (the previous page's Faasbox-Next header, sent when a page is full)"),
];
const INSTANCES_QUERY: &[(&str, bool, &str)] = &[
    ("limit", false, "how many, at most"),
    ("flow", false, "only this flow's instances"),
    ("status", false, "only instances with this status (running, waiting, complete, failed, cancelled)"),
    ("before", false, "the next page: instances older than the instance with this id (the previous page's Faasbox-Next header, sent when a page is full)"),
];
const AFTER_QUERY: &[(&str, bool, &str)] = &[(
    "after",
    false,
    "only what came after this seq (an earlier answer's last)",
)];
const FN_LOGS_QUERY: &[(&str, bool, &str)] = &[
    (
        "limit",
        false,
        "at most this many lines (default 100, at most 1000)",
    ),
    (
        "after",
        false,
        "an earlier answer's next: only lines stored since",
    ),
    (
        "follow",
        false,
        "true: a text/event-stream of the lines as calls print them, from now on (events `line` {run, ts_ms, stream, line} and `lagged` {missed}); without limit and after",
    ),
];
const CALLS_QUERY: &[(&str, bool, &str)] = &[
    ("function", false, "only this function's runs"),
    ("status", false, "only runs with this status (queued, running, succeeded, failed, crashed, timeout, cancelled)"),
    ("since", false, "only runs accepted at or after this time (RFC 3339)"),
    ("limit", false, "how many, at most (default 100)"),
    ("before", false, "the next page: runs older than the run with this id (the previous page's Faasbox-Next header, sent when a page is full)"),
];
const INVOKE_QUERY: &[(&str, bool, &str)] = &[(
    "async",
    false,
    "true: store the run and answer 202 with its id at once (as the header Prefer: respond-async does); X-Callback-Url: where its result is POSTed",
)];
const RUN_LOGS_QUERY: &[(&str, bool, &str)] = &[(
    "after",
    false,
    "an earlier answer's next: only the lines after the first `after`",
)];
const REGISTRY_URL_QUERY: &[(&str, bool, &str)] = &[("url", true, "the registry to remove")];
const REGISTRY_SCOPE_QUERY: &[(&str, bool, &str)] = &[("scope", false, "global or global-private")];
const REGISTRY_REMOVE_QUERY: &[(&str, bool, &str)] = &[
    ("url", true, "the registry to remove"),
    ("scope", false, "global (default) or global-private"),
];
const DISPATCH_RUN_QUERY: &[(&str, bool, &str)] = &[("functionName", true, "the function to run")];
const DISPATCH_RUNS_QUERY: &[(&str, bool, &str)] = &[
    ("functionName", false, "only this function's runs"),
    ("since", false, "only runs accepted since (Unix seconds)"),
];
const STATS_QUERY: &[(&str, bool, &str)] = &[(
    "stats",
    false,
    "1h: add each function's runs of the last hour (calls, errors, cold starts)",
)];
const FLOW_GET_QUERY: &[(&str, bool, &str)] = &[(
    "graph",
    false,
    "true: add the flow's graph (states and edges with their kinds) for drawing",
)];
const RUN_QUERY: &[(&str, bool, &str)] = &[(
    "wait",
    false,
    "true: answer the instance's output (200) or error (422) when it ends",
)];

const INVOKE_BODY: Body = Body::Raw("application/json", "the function's input: JSON (any value)");

/// Every route the server serves (but the test hook of [`guard`]), in the order they are
/// matched. `max_input` bounds the flow routes' bodies.
pub(crate) fn routes(max_input: usize) -> Vec<Route> {
    use openapi::{any_json, any_list, many, one};
    use Method as M;
    let function = || Answer::Json(200, one::<functions::FunctionView>);
    let changed = || Answer::Json(201, one::<functions::FunctionView>);
    vec![
        route(M::GET, auth::HEALTH_PATH, get(health), Doc::new(SYSTEM, "Liveness check (no token needed)", Answer::Json(200, any_json)).open()),
        route(M::GET, "/api/v1/server", get(server_info::info), Doc::new(SYSTEM, "The server at a glance (admin token only): version, start time and uptime, driver, and how many namespaces, functions, flows and web UI sessions there are", Answer::Json(200, one::<server_info::ServerInfo>))),
        route(M::GET, "/api/v1/nodes", get(nodes::list), Doc::new(SYSTEM, "The servers sharing this store (admin token only): address, version, state (up, left, dead), last heartbeat, capacity, instances and runs", Answer::Json(200, one::<nodes::NodesView>))),
        route(M::GET, "/api/v1/openapi.json", get(openapi), Doc::new(SYSTEM, "This document", Answer::Json(200, any_json))),
        route(M::GET, faasbox_core::metrics::PATH, get(metrics::serve), Doc::new(SYSTEM, "Prometheus metrics in the OpenMetrics text format (admin token only)", Answer::Text("application/openmetrics-text"))),
        route(M::POST, "/api/v1/namespaces", post(namespaces::create), Doc::new(NS, "Create a namespace", Answer::Json(201, one::<NamespaceRecord>)).body(Body::Json(one::<namespaces::CreateNamespace>))),
        route(M::GET, "/api/v1/namespaces", get(namespaces::list), Doc::new(NS, "List namespaces (a namespace token sees its own)", Answer::Json(200, many::<NamespaceRecord>))),
        route(M::GET, "/api/v1/namespaces/{ns}", get(namespaces::get), Doc::new(NS, "Show a namespace", Answer::Json(200, one::<NamespaceRecord>))),
        route(M::GET, "/api/v1/namespaces/{ns}/summary", get(summary::summary), Doc::new(NS, "A namespace at a glance: functions, flows, function runs of the last hour (ok, errors, running), flow instances running or waiting, function instances", Answer::Json(200, one::<summary::Summary>))),
        route(M::DELETE, "/api/v1/namespaces/{ns}", delete(namespaces::delete), Doc::new(NS, "Delete a namespace with everything of it", Answer::Empty(204))),
        route(M::POST, "/api/v1/images/import", post(images::import).layer(DefaultBodyLimit::disable()), Doc::new(IMAGES, "Import an image archive into the server-wide images (admin token): a docker save tar, an OCI image layout tar, or a root filesystem tarball (plain or gzip); device nodes under /dev are skipped (notes)", Answer::Json(201, one::<ImageRecord>)).query(IMPORT_QUERY).body(Body::Raw("application/octet-stream", "the archive"))),
        route(M::POST, "/api/v1/images/pull", post(pulls::pull), Doc::new(IMAGES, "Pull an image from a registry into the server-wide images (admin token), with the global credentials", Answer::Stream).query(PULL_QUERY)),
        route(M::POST, "/api/v1/images/push", post(pulls::push), Doc::new(IMAGES, "Push a server-wide image to a registry (admin token)", Answer::Stream).query(PUSH_QUERY)),
        route(M::POST, "/api/v1/images/prune", post(images::prune), Doc::new(IMAGES, "Remove the server-wide images nothing uses (admin token)", Answer::Json(200, one::<images::PruneView>))),
        route(M::GET, "/api/v1/images", get(images::list), Doc::new(IMAGES, "List the server-wide images", Answer::Json(200, many::<ImageRecord>))),
        route(M::DELETE, "/api/v1/images", delete(images::remove), Doc::new(IMAGES, "Remove a server-wide image name (admin token); 409 while a function revision uses it, unless force", Answer::Json(200, one::<images::Removed>)).query(REMOVE_QUERY)),
        route(M::POST, "/api/v1/namespaces/{ns}/images/import", post(images::import_ns).layer(DefaultBodyLimit::disable()), Doc::new(IMAGES, "Import an image archive into the namespace's images; device nodes under /dev are skipped (notes)", Answer::Json(201, one::<ImageRecord>)).query(IMPORT_QUERY).body(Body::Raw("application/octet-stream", "the archive"))),
        route(M::POST, "/api/v1/namespaces/{ns}/images/pull", post(pulls::pull_ns), Doc::new(IMAGES, "Pull an image into the namespace's images, with its registry credentials, then the global ones", Answer::Stream).query(PULL_QUERY)),
        route(M::POST, "/api/v1/namespaces/{ns}/images/push", post(pulls::push_ns), Doc::new(IMAGES, "Push one of the namespace's images to a registry", Answer::Stream).query(PUSH_QUERY)),
        route(M::POST, "/api/v1/namespaces/{ns}/images/prune", post(images::prune_ns), Doc::new(IMAGES, "Remove the namespace's images nothing uses", Answer::Json(200, one::<images::PruneView>))),
        route(M::GET, "/api/v1/namespaces/{ns}/images", get(images::list_ns), Doc::new(IMAGES, "List the namespace's own images", Answer::Json(200, many::<ImageRecord>))),
        route(M::DELETE, "/api/v1/namespaces/{ns}/images", delete(images::remove_ns), Doc::new(IMAGES, "Remove one of the namespace's image names; 409 while a revision uses it, unless force", Answer::Json(200, one::<images::Removed>)).query(REMOVE_QUERY)),
        route(M::GET, "/api/v1/namespaces/{ns}/functions", get(functions::list), Doc::new(FUNCTIONS, "List functions (stats=1h: each with its runs of the last hour: calls, errors, cold starts)", Answer::Json(200, many::<functions::FunctionView>)).query(STATS_QUERY)),
        route(M::PUT, "/api/v1/namespaces/{ns}/functions/{fn}", put(functions::put), Doc::new(FUNCTIONS, "Deploy (create, 201, or replace, 200) a function: the whole spec, as a new revision with the image pinned to its digest", changed()).query(CHANGE_QUERY).body(Body::Json(one::<FunctionSpec>))),
        route(M::PATCH, "/api/v1/namespaces/{ns}/functions/{fn}", patch(functions::patch), Doc::new(FUNCTIONS, "Update only the given fields of a function (a new revision)", function()).query(CHANGE_QUERY).body(Body::MergePatch)),
        route(M::GET, "/api/v1/namespaces/{ns}/functions/{fn}", get(functions::get), Doc::new(FUNCTIONS, "Show a function", function())),
        route(M::DELETE, "/api/v1/namespaces/{ns}/functions/{fn}", delete(functions::delete), Doc::new(FUNCTIONS, "Delete a function; its instances stop", Answer::Empty(204))),
        route(M::POST, "/api/v1/namespaces/{ns}/base-images", post(code::create_base_image), Doc::new(CODE, "Create (or replace) a base image: an image of the namespace, else pulled from a registry, with the language of functions built on it", Answer::Json(201, one::<faasbox_core::code::base_images::BaseImageView>)).body(Body::Json(one::<faasbox_core::code::base_images::BaseImageBody>))),
        route(M::GET, "/api/v1/namespaces/{ns}/base-images", get(code::list_base_images), Doc::new(CODE, "List the namespace's base images", Answer::Json(200, many::<faasbox_core::code::base_images::BaseImageView>))),
        route(M::GET, "/api/v1/namespaces/{ns}/base-images/{name}", get(code::get_base_image), Doc::new(CODE, "Show a base image", Answer::Json(200, one::<faasbox_core::code::base_images::BaseImageView>))),
        route(M::DELETE, "/api/v1/namespaces/{ns}/base-images/{name}", delete(code::delete_base_image), Doc::new(CODE, "Delete a base image (its image stays among the namespace's images)", Answer::Empty(204))),
        route(M::POST, "/api/v1/namespaces/{ns}/image-builds", post(code::create_image_build).layer(DefaultBodyLimit::max(max_input)), Doc::new(CODE, "Build (202) an image with dependencies: a base image plus system packages and the language's runtime dependencies; status INITIALIZED, CREATING, then READY (the image is among the namespace's images under the build's name) or ERROR (reason); posting an existing name rebuilds it", Answer::Json(202, one::<faasbox_core::code::image_builds::ImageBuildView>)).body(Body::Json(one::<faasbox_core::code::image_builds::ImageBuildBody>))),
        route(M::GET, "/api/v1/namespaces/{ns}/image-builds", get(code::list_image_builds), Doc::new(CODE, "List the namespace's image builds", Answer::Json(200, many::<faasbox_core::code::image_builds::ImageBuildView>))),
        route(M::GET, "/api/v1/namespaces/{ns}/image-builds/{name}", get(code::get_image_build), Doc::new(CODE, "Show an image build", Answer::Json(200, one::<faasbox_core::code::image_builds::ImageBuildView>))),
        route(M::DELETE, "/api/v1/namespaces/{ns}/image-builds/{name}", delete(code::delete_image_build), Doc::new(CODE, "Delete an image build (its image stays among the namespace's images)", Answer::Empty(204))),
        route(M::GET, "/api/v1/namespaces/{ns}/image-builds/{name}/logs", get(code::image_build_logs), Doc::new(CODE, "The build log of an image build after line `after`; `done` once the build ended", Answer::Json(200, one::<faasbox_core::code::BuildLogsView>)).query(AFTER_QUERY)),
        route(M::PUT, "/api/v1/namespaces/{ns}/functions/{fn}/code", put(code::put_function).layer(DefaultBodyLimit::max(max_input)), Doc::new(CODE, "Build a function from code (202): the source (base64 of a tar.gz) on a base image or image build; status INITIALIZED, CREATING, then READY (deployed) or ERROR (reason)", Answer::Json(202, one::<faasbox_core::code::functions::CodeFunctionView>)).body(Body::Json(one::<faasbox_core::code::functions::CodeFunctionBody>))),
        route(M::GET, "/api/v1/namespaces/{ns}/functions/{fn}/code", get(code::get_function), Doc::new(CODE, "Show a function built from code: its status and reason", Answer::Json(200, one::<faasbox_core::code::functions::CodeFunctionView>))),
        route(M::GET, "/api/v1/namespaces/{ns}/functions/{fn}/code/logs", get(code::function_logs), Doc::new(CODE, "The build log of a function from code after line `after`; `done` once the build ended", Answer::Json(200, one::<faasbox_core::code::BuildLogsView>)).query(AFTER_QUERY)),
        route(M::GET, "/api/v1/namespaces/{ns}/functions/{fn}/revisions", get(functions::revisions), Doc::new(FUNCTIONS, "The kept revisions of a function, oldest first", Answer::Json(200, many::<functions::RevisionView>))),
        route(M::POST, "/api/v1/namespaces/{ns}/functions/{fn}/rollback", post(functions::rollback), Doc::new(FUNCTIONS, "Make a kept revision current again (an empty body: the one before the current)", function()).body(Body::OptionalJson(one::<functions::RollbackBody>))),
        route(M::GET, "/api/v1/namespaces/{ns}/functions/{fn}/logs", get(function_logs::logs), Doc::new(FUNCTIONS, "A function's recent log lines across its calls, oldest first; with follow=true, Server-Sent Events of its lines as its calls print them (503 when the server has as many followers as it keeps)", Answer::Json(200, one::<function_logs::FunctionLogsView>)).query(FN_LOGS_QUERY)),
        route(M::GET, "/api/v1/namespaces/{ns}/functions/{fn}/instances", get(function_instances::list), Doc::new(FUNCTIONS, "A function's running instances: id, revision, started, calls served, busy or idle", Answer::Json(200, many::<function_instances::InstanceView>))),
        // Invoke bodies are read by `faasbox_core::bodies` (bounded by max_input_bytes and the
        // body budget), not by an extractor.
        route(M::POST, "/api/v1/namespaces/{ns}/functions/{fn}/invoke", post(invocations::invoke), Doc::new(CALLS, "Call a function with a JSON input; answers its JSON output (Faasbox-Invocation-Id header); past the server's blocking timeout, or asked for asynchronously, 202 with the run's id", Answer::Json(200, any_json)).query(INVOKE_QUERY).body(INVOKE_BODY)),
        route(M::POST, "/api/v1/namespaces/{ns}/global-functions/{fn}/invoke", post(invocations::invoke_global), Doc::new(GLOBAL, "Call a global service on behalf of the namespace (asynchronously as a function's invoke)", Answer::Json(200, any_json)).query(INVOKE_QUERY).body(INVOKE_BODY)),
        route(M::GET, "/api/v1/functions", get(functions::list_global), Doc::new(GLOBAL, "List the global services", Answer::Json(200, many::<functions::FunctionView>))),
        route(M::PUT, "/api/v1/functions/{fn}", put(functions::put_global), Doc::new(GLOBAL, "Deploy a global service (admin token)", changed()).query(CHANGE_QUERY).body(Body::Json(one::<FunctionSpec>))),
        route(M::PATCH, "/api/v1/functions/{fn}", patch(functions::patch_global), Doc::new(GLOBAL, "Update only the given fields of a global service (admin token)", function()).query(CHANGE_QUERY).body(Body::MergePatch)),
        route(M::GET, "/api/v1/functions/{fn}", get(functions::get_global), Doc::new(GLOBAL, "Show a global service", function())),
        route(M::DELETE, "/api/v1/functions/{fn}", delete(functions::delete_global), Doc::new(GLOBAL, "Delete a global service (admin token)", Answer::Empty(204))),
        route(M::GET, "/api/v1/functions/{fn}/revisions", get(functions::revisions_global), Doc::new(GLOBAL, "The kept revisions of a global service (admin token)", Answer::Json(200, many::<functions::RevisionView>))),
        route(M::POST, "/api/v1/functions/{fn}/rollback", post(functions::rollback_global), Doc::new(GLOBAL, "Make a kept revision of a global service current again (admin token)", function()).body(Body::OptionalJson(one::<functions::RollbackBody>))),
        route(M::GET, "/api/v1/namespaces/{ns}/runs", get(invocations::list), Doc::new(CALLS, "A namespace's runs (every call of a function), newest first; a full page answers Faasbox-Next (pass it as before)", Answer::Json(200, many::<InvocationRecord>)).query(CALLS_QUERY)),
        route(M::GET, "/api/v1/namespaces/{ns}/runs/{id}", get(invocations::get_in_namespace), Doc::new(CALLS, "One run: input, output, error, times, phases", Answer::Json(200, one::<InvocationRecord>))),
        route(M::GET, "/api/v1/namespaces/{ns}/runs/{id}/logs", get(invocations::logs_in_namespace), Doc::new(CALLS, "A run's log lines after the first `after`; `done` once it ended", Answer::Json(200, one::<invocations::LogsView>)).query(RUN_LOGS_QUERY)),
        route(M::POST, "/api/v1/namespaces/{ns}/runs/{id}/cancel", post(invocations::cancel_in_namespace), Doc::new(CALLS, "Cancel a queued (at once) or running run (the function gets its cancel); 409 faasbox.run.ended for an ended one", Answer::Json(200, one::<InvocationRecord>))),
        route(M::GET, "/api/v1/namespaces/{ns}/invocations", get(invocations::list), Doc::new(CALLS, "Recent invocations, newest first (the runs, by their older name)", Answer::Json(200, many::<InvocationRecord>)).query(CALLS_QUERY)),
        route(M::GET, "/api/v1/namespaces/{ns}/invocations/{id}", get(invocations::get_in_namespace), Doc::new(CALLS, "One invocation (a run)", Answer::Json(200, one::<InvocationRecord>))),
        route(M::GET, "/api/v1/namespaces/{ns}/invocations/{id}/logs", get(invocations::logs_in_namespace), Doc::new(CALLS, "An invocation's logs", Answer::Json(200, one::<invocations::LogsView>)).query(RUN_LOGS_QUERY)),
        route(M::POST, "/api/v1/namespaces/{ns}/events", post(events::post), Doc::new(EVENTS, "Send a CloudEvent (structured: application/cloudevents+json; binary: ce-* headers and the data as the body)", Answer::Json(202, any_json)).body(Body::Raw("application/cloudevents+json", "a CloudEvent 1.0"))),
        route(M::GET, "/api/v1/namespaces/{ns}/events", get(events::list), Doc::new(EVENTS, "The latest events a namespace received, newest first; a full page answers Faasbox-Next (pass it as before)", Answer::Json(200, any_list)).query(EVENTS_QUERY)),
        route(M::GET, "/api/v1/namespaces/{ns}/subscriptions", get(subscriptions::list), Doc::new(SUBSCRIPTIONS, "List a namespace's event subscriptions", Answer::Json(200, many::<faasbox_core::subscriptions::SubscriptionView>))),
        route(M::PUT, "/api/v1/namespaces/{ns}/subscriptions/{name}", put(subscriptions::put), Doc::new(SUBSCRIPTIONS, "Create (201) or replace (200) an event subscription: its function runs asynchronously for each event the namespace accepts from now on with the type, whose source and attributes match the patterns (`*` is any run of characters); the run's input is the event's data, its `event` the event; 404 when the function does not exist", Answer::Json(201, one::<faasbox_core::subscriptions::SubscriptionView>)).body(Body::Json(one::<faasbox_core::subscriptions::SubscriptionBody>))),
        route(M::GET, "/api/v1/namespaces/{ns}/subscriptions/{name}", get(subscriptions::get), Doc::new(SUBSCRIPTIONS, "Show an event subscription", Answer::Json(200, one::<faasbox_core::subscriptions::SubscriptionView>))),
        route(M::DELETE, "/api/v1/namespaces/{ns}/subscriptions/{name}", delete(subscriptions::delete), Doc::new(SUBSCRIPTIONS, "Delete an event subscription: no event runs its function from now on", Answer::Empty(204))),
        route(M::GET, "/api/v1/namespaces/{ns}/secrets", get(secrets::list), Doc::new(SECRETS, "List a namespace's secrets (names and times, never values)", Answer::Json(200, many::<SecretInfo>))),
        route(M::PUT, "/api/v1/namespaces/{ns}/secrets/{name}", put(secrets::put).layer(DefaultBodyLimit::max(secrets::MAX_BODY_BYTES)), Doc::new(SECRETS, "Create (201) or replace (200) a secret", Answer::Json(201, one::<SecretInfo>)).body(Body::Secret)),
        route(M::DELETE, "/api/v1/namespaces/{ns}/secrets/{name}", delete(secrets::delete).layer(DefaultBodyLimit::max(secrets::MAX_BODY_BYTES)), Doc::new(SECRETS, "Delete a secret", Answer::Empty(204))),
        route(M::GET, "/api/v1/namespaces/{ns}/services", get(services::list), Doc::new(SERVICES, "List a namespace's service instances (secret parameters by key only)", Answer::Json(200, many::<faasbox_core::services::ServiceView>))),
        route(M::PUT, "/api/v1/namespaces/{ns}/services/{name}", put(services::put).layer(DefaultBodyLimit::max(services::MAX_BODY_BYTES)), Doc::new(SERVICES, "Create (201) or replace (200) a service instance: {params, secret_params}", Answer::Json(201, one::<faasbox_core::services::ServiceView>)).body(Body::Json(one::<faasbox_core::services::ServiceBody>))),
        route(M::GET, "/api/v1/namespaces/{ns}/services/{name}", get(services::get), Doc::new(SERVICES, "Show a service instance (secret parameters by key only)", Answer::Json(200, one::<faasbox_core::services::ServiceView>))),
        route(M::DELETE, "/api/v1/namespaces/{ns}/services/{name}", delete(services::delete), Doc::new(SERVICES, "Delete a service instance", Answer::Empty(204))),
        route(M::GET, "/api/v1/namespaces/{ns}/routes", get(routes::list), Doc::new(ROUTES, "List a namespace's HTTP routes, by name (users and keys by name only, never a credential)", Answer::Json(200, many::<faasbox_core::routes::manage::RouteView>))),
        route(M::PUT, "/api/v1/namespaces/{ns}/routes/{name}", put(routes::put).layer(DefaultBodyLimit::max(routes::MAX_BODY_BYTES)), Doc::new(ROUTES, "Create (201) or replace (200) an HTTP route: a public URL /ns/{ns}{path} (and {path} on its hosts) for a function or a flow, with its authentication (credentials in clear here, stored hashed), CORS and limits (docs/ROUTES.md); 409 when an enabled route of the namespace has the same path and a method in common, or a host is another namespace's", Answer::Json(201, one::<faasbox_core::routes::manage::RouteView>)).body(Body::Json(one::<faasbox_core::routes::manage::RouteBody>))),
        route(M::PATCH, "/api/v1/namespaces/{ns}/routes/{name}", patch(routes::patch).layer(DefaultBodyLimit::max(routes::MAX_BODY_BYTES)), Doc::new(ROUTES, "Change the given top-level fields of a route ({\"enabled\": false} disables it); an auth given replaces the whole auth", Answer::Json(200, one::<faasbox_core::routes::manage::RouteView>)).body(Body::Json(one::<faasbox_core::routes::manage::RoutePatch>))),
        route(M::GET, "/api/v1/namespaces/{ns}/routes/{name}", get(routes::get), Doc::new(ROUTES, "Show an HTTP route and its URLs", Answer::Json(200, one::<faasbox_core::routes::manage::RouteView>))),
        route(M::DELETE, "/api/v1/namespaces/{ns}/routes/{name}", delete(routes::delete), Doc::new(ROUTES, "Delete an HTTP route: it is not served from now on", Answer::Empty(204))),
        route(M::POST, "/api/v1/namespaces/{ns}/registries", post(registries::create), Doc::new(REGISTRIES, "Store a namespace's credentials for a registry", Answer::Json(201, one::<registries::RegistryView>)).body(Body::Json(one::<registries::RegistryBody>))),
        route(M::GET, "/api/v1/namespaces/{ns}/registries", get(registries::list), Doc::new(REGISTRIES, "List a namespace's registries (never passwords)", Answer::Json(200, many::<registries::RegistryView>))),
        route(M::DELETE, "/api/v1/namespaces/{ns}/registries", delete(registries::delete), Doc::new(REGISTRIES, "Remove a namespace's registry", Answer::Empty(204)).query(REGISTRY_URL_QUERY)),
        route(M::POST, "/api/v1/registries", post(registries::create_global), Doc::new(REGISTRIES, "Store global or global-private registry credentials (admin token)", Answer::Json(201, one::<registries::RegistryView>)).body(Body::Json(one::<registries::RegistryBody>))),
        route(M::GET, "/api/v1/registries", get(registries::list_global), Doc::new(REGISTRIES, "List the global registries of both scopes, or of one", Answer::Json(200, many::<registries::RegistryView>)).query(REGISTRY_SCOPE_QUERY)),
        route(M::DELETE, "/api/v1/registries", delete(registries::delete_global), Doc::new(REGISTRIES, "Remove a global registry (admin token)", Answer::Empty(204)).query(REGISTRY_REMOVE_QUERY)),
        route(M::POST, "/api/functions/registries/namespaces/{ns}", post(registries::create), Doc::new(REGISTRIES, "Direktiv's endpoint: store a namespace registry from {\"data\": \"user:password\", \"reg\": URL}", Answer::Json(201, one::<registries::RegistryView>)).body(Body::Json(one::<registries::RegistryBody>))),
        route(M::POST, "/api/v1/admin/rotate-master-key", post(admin::rotate_master_key), Doc::new(SYSTEM, "New master key, every data key re-wrapped (admin token)", Answer::Json(200, one::<admin::Rotated>))),
        route(M::POST, "/api/v1/tokens", post(tokens::create), Doc::new(TOKENS, "Create an API token (admin token); the token is in this answer only", Answer::Json(201, one::<tokens::CreatedToken>)).body(Body::Json(one::<tokens::CreateToken>))),
        route(M::GET, "/api/v1/tokens", get(tokens::list), Doc::new(TOKENS, "List API tokens (never the tokens themselves)", Answer::Json(200, many::<TokenRecord>))),
        route(M::DELETE, "/api/v1/tokens/{id}", delete(tokens::delete), Doc::new(TOKENS, "Delete an API token", Answer::Empty(204))),
        route(M::GET, "/api/v1/namespaces/{ns}/flows", get(flows::list), Doc::new(FLOWS, "List a namespace's flows", Answer::Json(200, many::<flows::FlowView>))),
        route(M::PUT, "/api/v1/namespaces/{ns}/flows/{*path}", put(flows::put).layer(DefaultBodyLimit::max(max_input)), Doc::new(FLOWS, "Deploy (create, 201, or replace, 200) a flow: the body is its workflow/v1 YAML", Answer::Json(201, one::<flows::FlowView>)).body(Body::Raw("application/yaml", "the workflow"))),
        route(M::GET, "/api/v1/namespaces/{ns}/flows/{*path}", get(flows::get).layer(DefaultBodyLimit::max(max_input)), Doc::new(FLOWS, "Show a flow with its YAML (graph=true: also its graph, {start, states: [{id, type, line}], edges: [{from, to, kind, label?}]})", Answer::Json(200, one::<flows::FlowView>)).query(FLOW_GET_QUERY)),
        route(M::DELETE, "/api/v1/namespaces/{ns}/flows/{*path}", delete(flows::delete).layer(DefaultBodyLimit::max(max_input)), Doc::new(FLOWS, "Delete a flow", Answer::Empty(204))),
        route(M::POST, "/api/v1/namespaces/{ns}/flows/{*path}", post(flows::post).layer(DefaultBodyLimit::max(max_input)), Doc::new(FLOWS, "Run a flow: POST to …/flows/{path}/run with the input as the body (JSON; other bodies not sent as JSON reach .input as base64); 202 with the instance id, or with wait=true its output. Validate a flow without deploying it: POST its YAML to …/flows/{path}/validate; 200 with {valid, problems: [{line, column, message}], warnings, graph or null} (it checks exactly what a deploy checks and stores nothing)", Answer::Json(202, any_json)).query(RUN_QUERY).body(Body::Raw("application/json", "the instance's input"))),
        route(M::GET, "/api/v1/namespaces/{ns}/instances", get(flows::instances), Doc::new(INSTANCES, "List a namespace's instances, newest first; a full page answers Faasbox-Next (pass it as before)", Answer::Json(200, many::<flows::InstanceView>)).query(INSTANCES_QUERY)),
        route(M::GET, "/api/v1/namespaces/{ns}/instances/{id}", get(flows::instance), Doc::new(INSTANCES, "Show an instance", Answer::Json(200, one::<flows::InstanceView>))),
        route(M::GET, "/api/v1/namespaces/{ns}/instances/{id}/logs", get(flows::logs), Doc::new(INSTANCES, "An instance's log lines", Answer::Json(200, one::<flows::LogsView>)).query(AFTER_QUERY)),
        route(M::POST, "/api/v1/namespaces/{ns}/instances/{id}/cancel", post(flows::cancel), Doc::new(INSTANCES, "Cancel a running or waiting instance", Answer::Json(202, any_json))),
        route(M::GET, "/api/v1/instances/{id}", get(flows::instance_by_id), Doc::new(INSTANCES, "Show an instance, whatever its namespace", Answer::Json(200, one::<flows::InstanceView>))),
        route(M::GET, "/api/v1/instances/{id}/logs", get(flows::logs_by_id), Doc::new(INSTANCES, "An instance's log lines, whatever its namespace", Answer::Json(200, one::<flows::LogsView>)).query(AFTER_QUERY)),
        route(M::POST, "/api/v1/instances/{id}/cancel", post(flows::cancel_by_id), Doc::new(INSTANCES, "Cancel an instance, whatever its namespace", Answer::Json(202, any_json))),
        route(M::GET, "/api/v1/invocations/{id}", get(invocations::get), Doc::new(CALLS, "One invocation, whatever its namespace", Answer::Json(200, one::<InvocationRecord>))),
        route(M::GET, "/api/v1/runs/{id}", get(invocations::get), Doc::new(CALLS, "One run, whatever its namespace", Answer::Json(200, one::<InvocationRecord>))),
        route(M::GET, "/api/v1/runs/{id}/logs", get(invocations::logs), Doc::new(CALLS, "A run's log lines, whatever its namespace", Answer::Json(200, one::<invocations::LogsView>)).query(RUN_LOGS_QUERY)),
        route(M::POST, "/api/v1/runs/{id}/cancel", post(invocations::cancel), Doc::new(CALLS, "Cancel a run, whatever its namespace", Answer::Json(200, one::<InvocationRecord>))),
        route(M::POST, "/v1/baseimage", post(dispatch::base_images::create).layer(DefaultBodyLimit::max(max_input)), Doc::new(DISPATCH, "Dispatch: create a base image {name, dockerUrl, language} (X-Dispatch-Org names the namespace)", Answer::Json(201, any_json)).body(Body::Raw("application/json", "a Dispatch BaseImage"))),
        route(M::GET, "/v1/baseimage", get(dispatch::base_images::list), Doc::new(DISPATCH, "Dispatch: list base images", Answer::Json(200, any_list))),
        route(M::GET, "/v1/baseimage/{name}", get(dispatch::base_images::get), Doc::new(DISPATCH, "Dispatch: show a base image", Answer::Json(200, any_json))),
        route(M::PUT, "/v1/baseimage/{name}", put(dispatch::base_images::update).layer(DefaultBodyLimit::max(max_input)), Doc::new(DISPATCH, "Dispatch: update a base image", Answer::Json(200, any_json)).body(Body::Raw("application/json", "a Dispatch BaseImage"))),
        route(M::DELETE, "/v1/baseimage/{name}", delete(dispatch::base_images::delete), Doc::new(DISPATCH, "Dispatch: delete a base image (answers it)", Answer::Json(200, any_json))),
        route(M::POST, "/v1/image", post(dispatch::images::create).layer(DefaultBodyLimit::max(max_input)), Doc::new(DISPATCH, "Dispatch: create an image {name, baseImageName, systemDependencies, runtimeDependencies}; 201, built in the background", Answer::Json(201, any_json)).body(Body::Raw("application/json", "a Dispatch Image"))),
        route(M::GET, "/v1/image", get(dispatch::images::list), Doc::new(DISPATCH, "Dispatch: list images", Answer::Json(200, any_list))),
        route(M::GET, "/v1/image/{name}", get(dispatch::images::get), Doc::new(DISPATCH, "Dispatch: show an image (status, reason)", Answer::Json(200, any_json))),
        route(M::PUT, "/v1/image/{name}", put(dispatch::images::update).layer(DefaultBodyLimit::max(max_input)), Doc::new(DISPATCH, "Dispatch: update an image (rebuilt in the background)", Answer::Json(200, any_json)).body(Body::Raw("application/json", "a Dispatch Image"))),
        route(M::DELETE, "/v1/image/{name}", delete(dispatch::images::delete), Doc::new(DISPATCH, "Dispatch: delete an image (answers it)", Answer::Json(200, any_json))),
        route(M::POST, "/v1/function", post(dispatch::functions::create).layer(DefaultBodyLimit::max(max_input)), Doc::new(DISPATCH, "Dispatch: create a function from code {name, image, handler, source (base64 tar.gz), schema, secrets, timeout (ms)}; 201, built in the background", Answer::Json(201, any_json)).body(Body::Raw("application/json", "a Dispatch Function"))),
        route(M::GET, "/v1/function", get(dispatch::functions::list), Doc::new(DISPATCH, "Dispatch: list functions built from code", Answer::Json(200, any_list))),
        route(M::GET, "/v1/function/{name}", get(dispatch::functions::get), Doc::new(DISPATCH, "Dispatch: show a function (status, reason)", Answer::Json(200, any_json))),
        route(M::PUT, "/v1/function/{name}", put(dispatch::functions::update).layer(DefaultBodyLimit::max(max_input)), Doc::new(DISPATCH, "Dispatch: update a function (rebuilt in the background)", Answer::Json(200, any_json)).body(Body::Raw("application/json", "a Dispatch Function"))),
        route(M::DELETE, "/v1/function/{name}", delete(dispatch::functions::delete), Doc::new(DISPATCH, "Dispatch: delete a function (answers it)", Answer::Json(200, any_json))),
        route(M::POST, "/v1/runs", post(dispatch::runs::run), Doc::new(DISPATCH, "Dispatch: run a function with header X-Dispatch-Org naming the namespace; blocking: 200 with the Run, 422 InputError, 502 FunctionError (the error names the run); non-blocking: 202 with the Run (INITIALIZED), stored before the answer; the run's own secrets and services are passed on", Answer::Json(200, any_json)).query(DISPATCH_RUN_QUERY).body(Body::Raw("application/json", "a Dispatch Run: {\"blocking\": true|false, \"input\": …, \"secrets\": […], \"services\": […]}"))),
        route(M::GET, "/v1/runs", get(dispatch::runs::list), Doc::new(DISPATCH, "Dispatch: the org's runs, newest first (without logs): status INITIALIZED (queued), CREATING (running), READY or ERROR", Answer::Json(200, any_list)).query(DISPATCH_RUNS_QUERY)),
        route(M::GET, "/v1/runs/{name}", get(dispatch::runs::get), Doc::new(DISPATCH, "Dispatch: one run from its record, with its input, output, logs, error, event and httpContext", Answer::Json(200, any_json))),
        route(M::POST, "/v1/event/subscriptions", post(dispatch::subscriptions::create), Doc::new(DISPATCH, "Dispatch: create an event subscription {name, eventType, function, source?}: the function runs for each matching event (a faasbox subscription)", Answer::Json(201, any_json)).body(Body::Raw("application/json", "a Dispatch Subscription"))),
        route(M::GET, "/v1/event/subscriptions", get(dispatch::subscriptions::list), Doc::new(DISPATCH, "Dispatch: list event subscriptions", Answer::Json(200, any_list))),
        route(M::GET, "/v1/event/subscriptions/{name}", get(dispatch::subscriptions::get), Doc::new(DISPATCH, "Dispatch: show an event subscription", Answer::Json(200, any_json))),
        route(M::DELETE, "/v1/event/subscriptions/{name}", delete(dispatch::subscriptions::delete), Doc::new(DISPATCH, "Dispatch: delete an event subscription (answers it)", Answer::Json(200, any_json))),
        route(M::POST, "/v1/event", post(dispatch::subscriptions::emit), Doc::new(DISPATCH, "Dispatch: emit an event (an Emission {\"event\": CloudEvent} or a CloudEvent 1.0) into the org's namespace, as POST /api/v1/namespaces/{ns}/events", Answer::Json(200, any_json)).body(Body::Raw("application/json", "a Dispatch Emission"))),
        route(M::POST, "/v1/api", post(dispatch::apis::create), Doc::new(DISPATCH, "Dispatch: create an API {name, function, uris: [one URI], methods, hosts, protocols, authentication: public | token, cors, enabled}: a faasbox HTTP route served at /ns/{org}{uri} (and at {uri} on its hosts); 409 when it exists", Answer::Json(201, any_json)).body(Body::Raw("application/json", "a Dispatch API"))),
        route(M::GET, "/v1/api", get(dispatch::apis::list), Doc::new(DISPATCH, "Dispatch: list the org's APIs (its HTTP routes)", Answer::Json(200, any_list))),
        route(M::GET, "/v1/api/{name}", get(dispatch::apis::get), Doc::new(DISPATCH, "Dispatch: show an API", Answer::Json(200, any_json))),
        route(M::PUT, "/v1/api/{name}", put(dispatch::apis::update), Doc::new(DISPATCH, "Dispatch: update an API (what Dispatch's shape cannot say, such as credentials and limits, is kept)", Answer::Json(200, any_json)).body(Body::Raw("application/json", "a Dispatch API"))),
        route(M::DELETE, "/v1/api/{name}", delete(dispatch::apis::delete), Doc::new(DISPATCH, "Dispatch: delete an API (answers it)", Answer::Json(200, any_json))),
        route(M::GET, "/api/v1/invocations/{id}/logs", get(invocations::logs), Doc::new(CALLS, "An invocation's logs, whatever its namespace", Answer::Json(200, one::<invocations::LogsView>)).query(RUN_LOGS_QUERY)),
    ]
}

/// Every route of [`routes`], without the token check: [`serve`] puts
/// `auth::require_token` around the whole router (so routes merged in anywhere are covered).
pub(crate) fn router(state: Arc<AppState>) -> Router {
    let mut by_path: Vec<(&'static str, MethodRouter<Arc<AppState>>)> = Vec::new();
    for r in routes(state.config.max_input_bytes) {
        match by_path.iter_mut().find(|(path, _)| *path == r.path) {
            Some((_, methods)) => *methods = std::mem::take(methods).merge(r.handler),
            None => by_path.push((r.path, r.handler)),
        }
    }
    let router = by_path
        .into_iter()
        .fold(Router::new(), |router, (path, methods)| {
            router.route(path, methods)
        })
        .fallback(not_found);
    guard::with_test_hook(router).with_state(state)
}

async fn health() -> impl IntoResponse {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

async fn openapi() -> impl IntoResponse {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        openapi_json(),
    )
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such API route; see /api/v1/openapi.json for the routes")
}

/// A list's `?limit=`: `default` when absent, else checked against `range` (400 naming it).
fn list_limit<T: TryFrom<u64>>(
    given: Option<u64>,
    default: u64,
    range: &faasbox_core::bounds::CountRange,
) -> Result<T, ApiError> {
    let limit = given.unwrap_or(default);
    range.check(limit).map_err(ApiError::bad_request)?;
    T::try_from(limit).map_err(|_| ApiError::bad_request(format!("`{}` is too large", range.field)))
}

/// Checks a name taken from a path or body.
fn valid_name(kind: &str, name: &str) -> Result<(), ApiError> {
    faasbox_core::model::check_name(kind, name).map_err(ApiError::bad_request)
}

/// Checks that a namespace exists (404 with the fix otherwise).
async fn require_namespace(state: &Arc<AppState>, ns: &str) -> Result<(), ApiError> {
    valid_name("namespace", ns)?;
    let exists = state.store.namespace(ns).await?.is_some();
    if exists {
        Ok(())
    } else {
        Err(faasbox_core::failure::Failure::no_such_namespace(ns).into())
    }
}

/// The served OpenAPI document of [`routes`], as JSON text (made once).
fn openapi_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        let routes = routes(0);
        let doc = openapi::document(routes.iter().map(|r| (&r.method, r.path, &r.doc)));
        doc.to_pretty_json()
            .unwrap_or_else(|e| format!("{{\"error\": \"the OpenAPI document failed: {e}\"}}"))
    })
}

/// Serves the API over `state` on `listener` until `shutdown` resolves. The token check wraps
/// everything served, whatever routes the API adds; the guard (panics, JSON rejections) wraps
/// the token check. In front of the token check (inside the panic guard), the gateway takes
/// the requests of HTTP routes (`/ns/…` and route hosts), which have their own
/// authentication; in front of the gateway, the UI's pages and sign-in. Outside all of it,
/// `/ui/api/…` is rewritten to `/api/…` (see `ui::rewrite`).
pub async fn serve(
    state: Arc<AppState>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Followed log streams never end by themselves: they end when the stop begins, so the
    // graceful shutdown does not wait for them.
    let live_logs = state.clone();
    let shutdown = async move {
        shutdown.await;
        live_logs.live_logs.close();
    };
    let api = guard::json_rejections(router(state.clone()).layer(
        axum::middleware::from_fn_with_state(state.clone(), auth::require_token),
    ));
    let app = guard::catch_panics(
        api.layer(axum::middleware::from_fn_with_state(
            state.clone(),
            gateway::divert,
        ))
        .layer(axum::middleware::from_fn_with_state(state, ui::divert)),
    );
    // The UI's `/ui/api/…` is rewritten to `/api/…` before the router above matches it: a
    // layer of that router would run after its routing.
    let router = axum::Router::new()
        .fallback_service(app)
        .layer(axum::middleware::from_fn(ui::rewrite));
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

#[cfg(test)]
mod tests {
    use super::openapi::{documented_path, path_params};
    use super::*;

    #[test]
    fn every_route_is_documented_once_with_its_path_parameters() {
        let routes = routes(0);
        let doc: serde_json::Value =
            serde_json::from_str(openapi_json()).expect("the document is JSON");
        let mut documented = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("a path item") {
                documented.push(format!("{} {path}", method.to_uppercase()));
                for name in path_params(path) {
                    let found = operation["parameters"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|p| p["name"] == name.as_str() && p["in"] == "path");
                    assert!(found, "{method} {path} lacks path parameter {name}");
                }
            }
        }
        let mut served: Vec<String> = routes
            .iter()
            .map(|r| format!("{} {}", r.method, documented_path(r.path)))
            .collect();
        served.sort();
        documented.sort();
        assert_eq!(served, documented);
        let health = &doc["paths"]["/api/v1/health"]["get"];
        assert_eq!(health["security"], serde_json::json!([]), "{health}");
        // Every reference resolves.
        let text = openapi_json();
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        for part in text.split("\"#/components/schemas/").skip(1) {
            let name = &part[..part.find('"').expect("a closing quote")];
            assert!(
                schemas.contains_key(name),
                "{name} is referred to but missing"
            );
        }
    }

    #[test]
    fn the_function_spec_has_every_field_the_server_takes() {
        let doc: serde_json::Value = serde_json::from_str(openapi_json()).expect("JSON");
        let spec = &doc["components"]["schemas"]["FunctionSpec"];
        for field in [
            "image", "contract", "cmd", "envs", "size", "timeout", "runtime", "scale", "network",
            "code", "binary", "main", "disk", "secrets", "input", "language", "handler", "schema",
        ] {
            assert!(
                spec["properties"].get(field).is_some(),
                "FunctionSpec lacks {field}: {spec}"
            );
        }
        let contracts = &doc["components"]["schemas"]["Contract"]["enum"];
        assert_eq!(
            contracts,
            &serde_json::json!(["http", "cmd", "file", "openwhisk", "code"])
        );
    }
}
