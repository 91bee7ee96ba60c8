//! Functions from code over HTTP: base images (`…/base-images`), functions built from code
//! (`PUT|GET …/functions/{fn}/code`) and their build logs (`…/code/logs?after=N`). The work
//! is in [`faasbox_core::code`]; bodies are bounded by the route (the server's max input).

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::json_body::{JsonBody, JsonShape};
use super::{require_namespace, valid_name};
use crate::error::{ApiError, ApiResult};
use faasbox_core::code::base_images::{self, BaseImageBody, BaseImageView};
use faasbox_core::code::functions::{self, CodeFunctionBody, CodeFunctionView};
use faasbox_core::code::image_builds::{self, ImageBuildBody, ImageBuildView};
use faasbox_core::code::BuildLogsView;
use faasbox_core::state::AppState;
use faasbox_store::CodeKind;

impl JsonShape for BaseImageBody {
    fn problem(detail: &str) -> String {
        format!(
            "a base image is {{\"name\": NAME, \"image\": IMAGE, \"language\": \
             \"python3|nodejs|shell\"}}: {detail}"
        )
    }
}

impl JsonShape for CodeFunctionBody {
    fn problem(detail: &str) -> String {
        format!(
            "a function from code is {{\"image\": BASE-IMAGE-OR-IMAGE-BUILD, \"handler\": \
             HANDLER, \"source\": BASE64-TAR-GZ, …}}: {detail}"
        )
    }
}

/// `POST …/base-images`.
pub async fn create_base_image(
    State(state): State<Arc<AppState>>,
    Path(ns): Path<String>,
    body: Result<JsonBody<BaseImageBody>, ApiError>,
) -> ApiResult<(StatusCode, Json<BaseImageView>)> {
    require_namespace(&state, &ns).await?;
    let JsonBody(body) = body?;
    let view = base_images::create(&state, &ns, body).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// `GET …/base-images`.
pub async fn list_base_images(
    State(state): State<Arc<AppState>>,
    Path(ns): Path<String>,
) -> ApiResult<Json<Vec<BaseImageView>>> {
    require_namespace(&state, &ns).await?;
    Ok(Json(base_images::list(&state, &ns).await?))
}

/// `GET …/base-images/{name}`.
pub async fn get_base_image(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<Json<BaseImageView>> {
    require_namespace(&state, &ns).await?;
    Ok(Json(base_images::get(&state, &ns, &name).await?))
}

/// `DELETE …/base-images/{name}`.
pub async fn delete_base_image(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    require_namespace(&state, &ns).await?;
    base_images::delete(&state, &ns, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT …/functions/{fn}/code`: 202, the build goes on in the background.
pub async fn put_function(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
    body: Result<JsonBody<CodeFunctionBody>, ApiError>,
) -> ApiResult<(StatusCode, Json<CodeFunctionView>)> {
    valid_name("function", &name)?;
    require_namespace(&state, &ns).await?;
    let JsonBody(body) = body?;
    let view = functions::put(&state, &ns, &name, body).await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

/// `GET …/functions/{fn}/code`.
pub async fn get_function(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<Json<CodeFunctionView>> {
    require_namespace(&state, &ns).await?;
    Ok(Json(functions::get(&state, &ns, &name).await?))
}

/// The query of a build log.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsQuery {
    after: Option<u64>,
}

/// `GET …/functions/{fn}/code/logs?after=N`.
pub async fn function_logs(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
    query: Result<Query<LogsQuery>, QueryRejection>,
) -> ApiResult<Json<BuildLogsView>> {
    build_logs(state, ns, name, CodeKind::Function, query).await
}

async fn build_logs(
    state: Arc<AppState>,
    ns: String,
    name: String,
    kind: CodeKind,
    query: Result<Query<LogsQuery>, QueryRejection>,
) -> ApiResult<Json<BuildLogsView>> {
    let Query(query) = query.map_err(|e| {
        ApiError::bad_request(format!(
            "{}; the query takes after=N (the `next` of an earlier answer)",
            e.body_text()
        ))
    })?;
    require_namespace(&state, &ns).await?;
    let after = query.after.unwrap_or(0);
    let what = match kind {
        CodeKind::ImageBuild => "image build",
        _ => "function built from code",
    };
    faasbox_core::code::logs(&state, &ns, kind, &name, after)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("namespace {ns} has no {what} '{name}'")))
}

impl JsonShape for ImageBuildBody {
    fn problem(detail: &str) -> String {
        format!(
            "an image build is {{\"name\": NAME, \"baseImage\": BASE-IMAGE, \"systemPackages\": \
             [{{\"name\", \"version\"}}], \"runtimeDependencies\": {{\"manifest\": TEXT}}}}: {detail}"
        )
    }
}

/// `POST …/image-builds`: 202, the build goes on in the background.
pub async fn create_image_build(
    State(state): State<Arc<AppState>>,
    Path(ns): Path<String>,
    body: Result<JsonBody<ImageBuildBody>, ApiError>,
) -> ApiResult<(StatusCode, Json<ImageBuildView>)> {
    require_namespace(&state, &ns).await?;
    let JsonBody(body) = body?;
    let view = image_builds::create(&state, &ns, body).await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

/// `GET …/image-builds`.
pub async fn list_image_builds(
    State(state): State<Arc<AppState>>,
    Path(ns): Path<String>,
) -> ApiResult<Json<Vec<ImageBuildView>>> {
    require_namespace(&state, &ns).await?;
    Ok(Json(image_builds::list(&state, &ns).await?))
}

/// `GET …/image-builds/{name}`.
pub async fn get_image_build(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<Json<ImageBuildView>> {
    require_namespace(&state, &ns).await?;
    Ok(Json(image_builds::get(&state, &ns, &name).await?))
}

/// `DELETE …/image-builds/{name}`.
pub async fn delete_image_build(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    require_namespace(&state, &ns).await?;
    image_builds::delete(&state, &ns, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET …/image-builds/{name}/logs?after=N`.
pub async fn image_build_logs(
    State(state): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
    query: Result<Query<LogsQuery>, QueryRejection>,
) -> ApiResult<Json<BuildLogsView>> {
    build_logs(state, ns, name, CodeKind::ImageBuild, query).await
}
