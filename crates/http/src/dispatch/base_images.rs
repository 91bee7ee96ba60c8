//! `/v1/baseimage[/{name}]`: Dispatch's base images, on faasbox's
//! (`faasbox_core::code::base_images`): `dockerUrl` is an image of the namespace or a registry
//! reference (pulled as `faasbox image pull` does), so a created base image is READY at once.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use super::models::{BaseImage, BaseImageRequest};
use super::{read_json, require_org, DispatchError, DispatchResult, Org};
use faasbox_core::code::base_images::{self as core, BaseImageBody};
use faasbox_core::state::AppState;

pub(crate) async fn create(
    State(state): State<Arc<AppState>>,
    Org(ns): Org,
    body: axum::body::Bytes,
) -> DispatchResult<(StatusCode, Json<BaseImage>)> {
    require_org(&state, &ns).await?;
    let request: BaseImageRequest = read_json(&body, "BaseImage")?;
    if core::get(&state, &ns, &request.name).await.is_ok() {
        return Err(DispatchError::new(
            StatusCode::CONFLICT,
            format!(
                "base image '{}' already exists in {ns}: delete it first to make it anew",
                request.name
            ),
        ));
    }
    let body = body_of(request)?;
    let view = core::create(&state, &ns, body).await?;
    Ok((StatusCode::CREATED, Json(BaseImage::of(&ns, view))))
}

pub(crate) async fn update(
    State(state): State<Arc<AppState>>,
    Org(ns): Org,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> DispatchResult<Json<BaseImage>> {
    require_org(&state, &ns).await?;
    let request: BaseImageRequest = read_json(&body, "BaseImage")?;
    if request.name != name {
        return Err(DispatchError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "the body names base image '{}' but the path '{name}': it cannot be renamed",
                request.name
            ),
        ));
    }
    core::get(&state, &ns, &name).await?;
    let view = core::create(&state, &ns, body_of(request)?).await?;
    Ok(Json(BaseImage::of(&ns, view)))
}

pub(crate) async fn get(
    State(state): State<Arc<AppState>>,
    Org(ns): Org,
    Path(name): Path<String>,
) -> DispatchResult<Json<BaseImage>> {
    require_org(&state, &ns).await?;
    Ok(Json(BaseImage::of(
        &ns,
        core::get(&state, &ns, &name).await?,
    )))
}

pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    Org(ns): Org,
) -> DispatchResult<Json<Vec<BaseImage>>> {
    require_org(&state, &ns).await?;
    let views = core::list(&state, &ns).await?;
    Ok(Json(
        views.into_iter().map(|v| BaseImage::of(&ns, v)).collect(),
    ))
}

/// Deletes the base image and answers it as it was (its image stays among the namespace's).
pub(crate) async fn delete(
    State(state): State<Arc<AppState>>,
    Org(ns): Org,
    Path(name): Path<String>,
) -> DispatchResult<Json<BaseImage>> {
    require_org(&state, &ns).await?;
    let view = core::get(&state, &ns, &name).await?;
    core::delete(&state, &ns, &name).await?;
    let mut image = BaseImage::of(&ns, view);
    image.status = "DELETED".to_owned();
    Ok(Json(image))
}

fn body_of(request: BaseImageRequest) -> DispatchResult<BaseImageBody> {
    if !request.tags.is_empty() {
        return Err(DispatchError::new(
            StatusCode::BAD_REQUEST,
            "faasbox does not keep tags on base images: send it without `tags`",
        ));
    }
    let language = request
        .language
        .parse()
        .map_err(|e: String| DispatchError::new(StatusCode::BAD_REQUEST, e))?;
    Ok(BaseImageBody {
        name: request.name,
        image: request.docker_url,
        language,
    })
}
