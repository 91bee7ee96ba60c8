//! `/v1/image[/{name}]`: Dispatch's images (a base image with system packages and runtime
//! dependencies installed), on faasbox's image builds (`faasbox_core::code::image_builds`). A
//! create answers at once (INITIALIZED); the build runs in the background and its log is at
//! `GET /api/v1/namespaces/{ns}/image-builds/{name}/logs`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use super::models::{Image, ImageRequest};
use super::{read_json, require_org, DispatchError, DispatchResult, Org};
use faasbox_core::code::image_builds::{self as core, ImageBuildBody};
use faasbox_core::state::AppState;

pub(crate) async fn create(
    State(state): State<Arc<AppState>>,
    Org(ns): Org,
    body: axum::body::Bytes,
) -> DispatchResult<(StatusCode, Json<Image>)> {
    require_org(&state, &ns).await?;
    let request: ImageRequest = read_json(&body, "Image")?;
    if core::get(&state, &ns, &request.name).await.is_ok() {
        return Err(DispatchError::new(
            StatusCode::CONFLICT,
            format!(
                "image '{}' already exists in {ns}: update it with `PUT /v1/image/{}`",
                request.name, request.name
            ),
        ));
    }
    let body = body_of(request)?;
    let view = core::create(&state, &ns, body).await?;
    Ok((StatusCode::CREATED, Json(Image::of(&ns, view))))
}

pub(crate) async fn update(
    State(state): State<Arc<AppState>>,
    Org(ns): Org,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> DispatchResult<Json<Image>> {
    require_org(&state, &ns).await?;
    let request: ImageRequest = read_json(&body, "Image")?;
    if request.name != name {
        return Err(DispatchError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "the body names image '{}' but the path '{name}': it cannot be renamed",
                request.name
            ),
        ));
    }
    core::get(&state, &ns, &name).await?;
    let view = core::create(&state, &ns, body_of(request)?).await?;
    Ok(Json(Image::of(&ns, view)))
}

pub(crate) async fn get(
    State(state): State<Arc<AppState>>,
    Org(ns): Org,
    Path(name): Path<String>,
) -> DispatchResult<Json<Image>> {
    require_org(&state, &ns).await?;
    Ok(Json(Image::of(&ns, core::get(&state, &ns, &name).await?)))
}

pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    Org(ns): Org,
) -> DispatchResult<Json<Vec<Image>>> {
    require_org(&state, &ns).await?;
    let views = core::list(&state, &ns).await?;
    Ok(Json(views.into_iter().map(|v| Image::of(&ns, v)).collect()))
}

/// Deletes the image build and answers it as it was.
pub(crate) async fn delete(
    State(state): State<Arc<AppState>>,
    Org(ns): Org,
    Path(name): Path<String>,
) -> DispatchResult<Json<Image>> {
    require_org(&state, &ns).await?;
    let view = core::get(&state, &ns, &name).await?;
    core::delete(&state, &ns, &name).await?;
    let mut image = Image::of(&ns, view);
    image.status = "DELETED".to_owned();
    Ok(Json(image))
}

fn body_of(request: ImageRequest) -> DispatchResult<ImageBuildBody> {
    if !request.tags.is_empty() {
        return Err(DispatchError::new(
            StatusCode::BAD_REQUEST,
            "faasbox does not keep tags on images: send it without `tags`",
        ));
    }
    Ok(ImageBuildBody {
        name: request.name,
        base_image: request.base_image_name,
        system_packages: request
            .system_dependencies
            .map(|d| d.packages)
            .unwrap_or_default(),
        runtime_dependencies: request.runtime_dependencies.unwrap_or_default(),
    })
}
