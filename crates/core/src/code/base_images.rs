//! Base images: an image of the namespace (or pulled from a registry, as `faasbox image pull`
//! does) named as the base of image builds and code functions, with its language. Resolved
//! (or pulled) when created, so a base image is READY or not stored at all.

use std::sync::Arc;

use faasbox_images::Scope;
use faasbox_proto::Language;
use faasbox_store::{CodeKind, CodeRecord};
use serde::{Deserialize, Serialize};

use crate::clock;
use crate::failure::{Failure, FailureKind, Fallible};
use crate::image_pull::{names_a_registry, CredentialScope, VaultCredentials, IMAGE_MISSING};
use crate::model::check_name;
use crate::state::AppState;

/// What `POST …/base-images` takes.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BaseImageBody {
    /// The base image's name.
    pub name: String,
    /// An image of the namespace (`faasbox image ls`) or a registry reference to pull.
    pub image: String,
    /// The language of functions built on it.
    pub language: Language,
}

/// A base image as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BaseImageView {
    /// Its name.
    pub name: String,
    /// The image it was made from, as given.
    pub image: String,
    /// The image's manifest digest.
    pub digest: Option<String>,
    /// The language of functions built on it.
    pub language: Language,
    /// `READY` (a base image that cannot be resolved is not stored).
    pub status: String,
    /// Empty when READY.
    pub reason: String,
    /// When it was created.
    pub created: String,
    /// When it last changed.
    pub modified: String,
}

impl BaseImageView {
    /// The view of a stored record.
    pub fn of(record: &CodeRecord) -> Fallible<BaseImageView> {
        let body: BaseImageBody = serde_json::from_str(&record.spec).map_err(|e| {
            Failure::internal(format!(
                "the stored base image '{}' is unreadable: {e}",
                record.name
            ))
        })?;
        Ok(BaseImageView {
            name: record.name.clone(),
            image: body.image,
            digest: record.digest.clone(),
            language: body.language,
            status: record.status.clone(),
            reason: record.reason.clone(),
            created: record.created.clone(),
            modified: record.modified.clone(),
        })
    }
}

/// Creates (or replaces) base image `body.name` of `namespace`: the image is resolved in the
/// namespace's images, else pulled with the namespace's registry credentials.
pub async fn create(
    state: &Arc<AppState>,
    namespace: &str,
    body: BaseImageBody,
) -> Fallible<BaseImageView> {
    check_name("base image", &body.name).map_err(Failure::invalid)?;
    if state.store.namespace(namespace).await?.is_none() {
        return Err(Failure::no_such_namespace(namespace));
    }
    let digest = match state.images.resolve(Some(namespace), &body.image) {
        Ok(Some(found)) => found.digest,
        _ => pull(state, namespace, &body.image).await?,
    };
    let spec = serde_json::to_string(&body).map_err(|e| Failure::internal(e.to_string()))?;
    let now = clock::now_rfc3339();
    let record = state
        .store
        .put_code(
            namespace,
            CodeKind::BaseImage,
            &body.name,
            &spec,
            super::READY,
            &now,
        )
        .await?;
    super::set_status(state, &record, super::READY, "", Some(&digest)).await;
    get(state, namespace, &body.name).await
}

async fn pull(state: &Arc<AppState>, namespace: &str, image: &str) -> Fallible<String> {
    if !names_a_registry(image) {
        return Err(Failure::new(
            FailureKind::NotFound,
            IMAGE_MISSING,
            format!(
                "image '{image}' is not among namespace {namespace}'s images and names no \
                 registry to pull it from; import it with `faasbox image import -n {namespace} …` \
                 or give a registry reference such as docker.io/library/python:3.12-alpine"
            ),
        ));
    }
    let creds =
        VaultCredentials::load(&state.vault, &CredentialScope::Namespace(namespace.into())).await;
    let scope = Scope::of(Some(namespace));
    let options = faasbox_images::PullOptions::default();
    match state
        .images
        .pull(&scope, image, &creds, &options, &|_| {})
        .await
    {
        Ok(record) => {
            // With a cluster registry, every server can build on it.
            crate::shared_images::share(state, &scope, &record.name).await?;
            Ok(record.digest)
        }
        // The registry's failure is an upstream's: 502, as the API promises (the kind that
        // answers 502 is the one of a failed function, the other upstream the server calls).
        Err(e) if e.is_registry_error() => Err(Failure::new(
            FailureKind::FunctionFailed,
            IMAGE_MISSING,
            format!("pulling image '{image}' for a base image failed: {e}"),
        )),
        Err(e) => Err(Failure::from(e)),
    }
}

/// The base image `name` of `namespace`.
pub async fn get(state: &Arc<AppState>, namespace: &str, name: &str) -> Fallible<BaseImageView> {
    let record = state
        .store
        .code(namespace, CodeKind::BaseImage, name)
        .await?
        .ok_or_else(|| missing(namespace, name))?;
    BaseImageView::of(&record)
}

/// Every base image of `namespace`, by name.
pub async fn list(state: &Arc<AppState>, namespace: &str) -> Fallible<Vec<BaseImageView>> {
    if state.store.namespace(namespace).await?.is_none() {
        return Err(Failure::no_such_namespace(namespace));
    }
    let records = state.store.codes(namespace, CodeKind::BaseImage).await?;
    records.iter().map(BaseImageView::of).collect()
}

/// Deletes base image `name` (its image stays among the namespace's images).
pub async fn delete(state: &Arc<AppState>, namespace: &str, name: &str) -> Fallible<()> {
    if state
        .store
        .delete_code(namespace, CodeKind::BaseImage, name)
        .await?
    {
        Ok(())
    } else {
        Err(missing(namespace, name))
    }
}

fn missing(namespace: &str, name: &str) -> Failure {
    Failure::not_found(format!(
        "namespace {namespace} has no base image '{name}'; create it with \
         `POST /api/v1/namespaces/{namespace}/base-images`"
    ))
}
