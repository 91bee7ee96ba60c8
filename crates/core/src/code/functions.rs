//! Functions built from code: `PUT …/functions/{fn}/code` stores the request as a record
//! (INITIALIZED) and starts its build in the background: the source (base64 of a tar.gz) is
//! re-packed as a layer under `/function` and appended to the chosen image (a base image's or
//! an image build's), named `code/<fn>:<first 12 of the source's digest>` among the
//! namespace's images; one instance of it is started with the code contract (its ready check
//! imports the handler: its failure is the build's reason); then the function is deployed
//! through the normal deploy path (revisions, scale, logs) and the record is READY.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use faasbox_images::{ConfigChanges, Scope};
use faasbox_proto::{Contract, Language};
use faasbox_store::{CodeKind, CodeRecord};
use serde::{Deserialize, Deserializer, Serialize};
use sha2::Digest;

use super::{log_line, set_status, CREATING, ERROR, INITIALIZED, READY};
use crate::clock;
use crate::failure::{Failure, FailureKind, Fallible};
use crate::model::{check_name, CodeSchema, FunctionSpec, HumanDuration, Scale, Size};
use crate::owner::Owner;
use crate::state::AppState;

/// Error code of a call of a code function that is not READY.
pub const NOT_READY: &str = "faasbox.function.not_ready";

/// How long a build waits for the image build it is based on to finish.
const IMAGE_BUILD_WAIT: Duration = Duration::from_secs(30 * 60);

/// What `PUT …/functions/{fn}/code` takes.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeFunctionBody {
    /// An image build's name, or a base image's name, of the namespace.
    pub image: String,
    /// The handler, e.g. `hello.handle` (python3), `hello` (nodejs), `run.sh` (shell).
    pub handler: String,
    /// The source tree: base64 of a tar.gz (or tar).
    pub source: String,
    /// JSON Schemas of the input (`in`) and output (`out`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<CodeSchema>,
    /// Namespace secrets the handler gets in `context.secrets`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// The namespace's service instances the handler gets in `context.serviceBindings`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<String>,
    /// Per-call timeout: "30s", or a number of milliseconds.
    #[serde(
        default,
        deserialize_with = "millis_or_text",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub timeout: Option<HumanDuration>,
    /// `small` (default), `medium` or `large`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Size>,
    /// How many instances and how they are shared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<Scale>,
    /// Environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub envs: BTreeMap<String, String>,
    /// Outbound network (default on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<bool>,
}

/// A timeout as text ("30s") or a number of milliseconds (Dispatch's way).
fn millis_or_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<HumanDuration>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Millis(u64),
        Text(String),
    }
    match Option::<Raw>::deserialize(d)? {
        None => Ok(None),
        Some(Raw::Millis(ms)) => Ok(Some(HumanDuration(Duration::from_millis(ms)))),
        Some(Raw::Text(text)) => crate::model::parse_duration(&text)
            .map(|d| Some(HumanDuration(d)))
            .map_err(serde::de::Error::custom),
    }
}

/// A code function as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CodeFunctionView {
    /// Its name.
    pub name: String,
    /// The image build or base image it is built on.
    pub image: String,
    /// Its language (that of the image's base image); absent until the build found it.
    pub language: Option<Language>,
    /// The handler.
    pub handler: String,
    /// `INITIALIZED`, `CREATING`, `READY` or `ERROR`.
    pub status: String,
    /// Why it is in ERROR (empty otherwise).
    pub reason: String,
    /// The built image's manifest digest.
    pub digest: Option<String>,
    /// Its input and output schemas.
    pub schema: Option<CodeSchema>,
    /// The secrets it gets.
    pub secrets: Vec<String>,
    /// Its service bindings.
    pub services: Vec<String>,
    /// Its per-call timeout, when it sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub timeout: Option<HumanDuration>,
    /// When it was first put.
    pub created: String,
    /// When it last changed.
    pub modified: String,
}

/// What the record keeps: the request and what the build found.
#[derive(Serialize, Deserialize)]
struct Stored {
    body: CodeFunctionBody,
    #[serde(default)]
    language: Option<Language>,
}

impl CodeFunctionView {
    fn of(record: &CodeRecord) -> Fallible<CodeFunctionView> {
        let stored = read(record)?;
        let body = stored.body;
        Ok(CodeFunctionView {
            name: record.name.clone(),
            image: body.image,
            language: stored.language,
            handler: body.handler,
            status: record.status.clone(),
            reason: record.reason.clone(),
            digest: record.digest.clone(),
            schema: body.schema,
            secrets: body.secrets,
            services: body.services,
            timeout: body.timeout,
            created: record.created.clone(),
            modified: record.modified.clone(),
        })
    }
}

fn read(record: &CodeRecord) -> Fallible<Stored> {
    serde_json::from_str(&record.spec).map_err(|e| {
        Failure::internal(format!(
            "the stored code function '{}' is unreadable: {e}",
            record.name
        ))
    })
}

/// The function spec a build deploys for `body` on image `image` in `language`.
pub fn function_spec(body: &CodeFunctionBody, image: &str, language: Language) -> FunctionSpec {
    let mut spec: FunctionSpec =
        serde_json::from_value(serde_json::json!({"image": image, "contract": "code"}))
            .unwrap_or_else(|_| unreachable!("a minimal spec always reads"));
    spec.language = Some(language);
    spec.handler = Some(body.handler.clone());
    spec.schema = body.schema.clone();
    spec.secrets = body.secrets.clone();
    spec.services = body.services.clone();
    spec.envs = body.envs.clone();
    if let Some(timeout) = body.timeout {
        spec.timeout = timeout;
    }
    if let Some(size) = body.size {
        spec.size = size;
    }
    if let Some(scale) = &body.scale {
        spec.scale = scale.clone();
    }
    if let Some(network) = body.network {
        spec.network = network;
    }
    spec
}

/// Accepts function `name` of `namespace` built from code: checks the request, stores it as
/// INITIALIZED (a rebuild of an existing one stops its running build first) and starts the
/// build in the background.
pub async fn put(
    state: &Arc<AppState>,
    namespace: &str,
    name: &str,
    body: CodeFunctionBody,
) -> Fallible<CodeFunctionView> {
    check_name("function", name).map_err(Failure::invalid)?;
    let mut problems = Vec::new();
    if body.handler.trim().is_empty() {
        problems.push("`handler` is empty".to_string());
    }
    let max = state.config.limits.max_upload_bytes;
    if (body.source.len() as u64 / 4).saturating_mul(3) > max {
        return Err(Failure::too_large(format!(
            "the source is larger than the server's max-upload-size ({max} bytes)"
        )));
    }
    match base64::engine::general_purpose::STANDARD.decode(body.source.trim()) {
        Ok(bytes) if bytes.is_empty() => problems.push("`source` is empty".to_string()),
        Ok(_) => {}
        Err(e) => problems.push(format!(
            "`source` is not base64 ({e}): send the base64 of a tar.gz of the code"
        )),
    }
    // The rest of the spec is checked as a deploy would check it (a schema that does not
    // compile, a bad secret name, bounds), with a stand-in for what the build finds out.
    problems.extend(function_spec(&body, "x", Language::Shell).problems());
    if !problems.is_empty() {
        return Err(Failure::invalid(format!(
            "function {namespace}/{name} was not accepted: {}",
            problems.join("; ")
        )));
    }
    base_of(state, namespace, &body.image, false).await?;
    state
        .code_builds
        .stop(namespace, CodeKind::Function, name)
        .await;
    let spec = serde_json::to_string(&Stored {
        body,
        language: None,
    })
    .map_err(|e| Failure::internal(e.to_string()))?;
    let record = state
        .store
        .put_code(
            namespace,
            CodeKind::Function,
            name,
            &spec,
            INITIALIZED,
            &clock::now_rfc3339(),
        )
        .await?;
    let view = CodeFunctionView::of(&record)?;
    start_build(state, record);
    Ok(view)
}

/// Starts (or restarts) the build of a stored record in the background.
pub(crate) fn start_build(state: &Arc<AppState>, record: CodeRecord) {
    let task_state = state.clone();
    let (namespace, name) = (record.namespace.clone(), record.name.clone());
    state
        .code_builds
        .start(&namespace, CodeKind::Function, &name, async move {
            build(&task_state, record).await;
        });
}

/// The function `name` of `namespace` built from code.
pub async fn get(state: &Arc<AppState>, namespace: &str, name: &str) -> Fallible<CodeFunctionView> {
    let record = state
        .store
        .code(namespace, CodeKind::Function, name)
        .await?
        .ok_or_else(|| {
            Failure::not_found(format!(
                "namespace {namespace} has no function '{name}' built from code; create it with \
                 `PUT /api/v1/namespaces/{namespace}/functions/{name}/code`"
            ))
        })?;
    CodeFunctionView::of(&record)
}

/// Every function of `namespace` built from code, by name.
pub async fn list(state: &Arc<AppState>, namespace: &str) -> Fallible<Vec<CodeFunctionView>> {
    let records = state.store.codes(namespace, CodeKind::Function).await?;
    records.iter().map(CodeFunctionView::of).collect()
}

/// Forgets function `name` built from code (stopping its build): true when there was one.
/// The deployed function itself is removed by the normal delete.
pub async fn forget(state: &Arc<AppState>, namespace: &str, name: &str) -> Fallible<bool> {
    state
        .code_builds
        .stop(namespace, CodeKind::Function, name)
        .await;
    let forgotten = state
        .store
        .delete_code(namespace, CodeKind::Function, name)
        .await?;
    if forgotten {
        remove_build_images(state, namespace, name, None).await;
    }
    Ok(forgotten)
}

/// Removes the names of function `name`'s built images (`code/<name>:…`) among the namespace's
/// images, but `keep`: each build names its image anew, so without this every rebuild would
/// leave one more name (and image) behind. What a kept revision runs stays in the store (its
/// digest is pinned), only the name goes. A failure is logged: the build itself succeeded.
async fn remove_build_images(
    state: &Arc<AppState>,
    namespace: &str,
    name: &str,
    keep: Option<&str>,
) {
    let prefix = format!("code/{name}:");
    let keep = keep.map(str::to_owned);
    let namespace = namespace.to_string();
    let shared = Scope::of(Some(&namespace));
    let removed = state
        .blocking(move |state| {
            let scope = Scope::of(Some(&namespace));
            let doomed: Vec<String> = state
                .images
                .list(&scope)?
                .into_iter()
                .map(|image| image.name)
                .filter(|image| image.starts_with(&prefix) && Some(image) != keep.as_ref())
                .collect();
            for image in &doomed {
                state.images.remove(&scope, image, false)?;
            }
            Ok(doomed)
        })
        .await;
    let removed = match removed {
        Ok(doomed) => {
            for image in &doomed {
                if let Err(e) = crate::shared_images::unshare(state, &shared, image).await {
                    tracing::warn!("{}", e.message);
                }
            }
            Ok(doomed.len())
        }
        Err(e) => Err(e),
    };
    if let Err(e) = removed {
        tracing::warn!(
            "removing the earlier images of function {name}: {}",
            e.message
        );
    }
}

/// Why a call of `namespace/name` cannot run yet: a code function that is not READY (503).
/// `None` when there is no such code function or it is READY.
pub async fn not_ready(state: &AppState, namespace: &str, name: &str) -> Option<Failure> {
    let record = state
        .store
        .code(namespace, CodeKind::Function, name)
        .await
        .ok()??;
    let message = match record.status.as_str() {
        READY => return None,
        ERROR => format!(
            "function '{namespace}/{name}' is ERROR: {}; fix it and put its code again",
            record.reason
        ),
        status => format!(
            "function '{namespace}/{name}' is {status}: its code is being built; call it once \
             it is READY (see GET /api/v1/namespaces/{namespace}/functions/{name}/code)"
        ),
    };
    Some(Failure::new(FailureKind::Unavailable, NOT_READY, message))
}

/// The image a code function is built on: the manifest digest and language of image build or
/// base image `image`. An image build still building is waited for with `wait`; without, it
/// is taken as it is (a request is checked before its build waits).
async fn base_of(
    state: &AppState,
    namespace: &str,
    image: &str,
    wait: bool,
) -> Fallible<(String, Language)> {
    let started = tokio::time::Instant::now();
    loop {
        if let Some(build) = state
            .store
            .code(namespace, CodeKind::ImageBuild, image)
            .await?
        {
            let language = serde_json::from_str::<serde_json::Value>(&build.spec)
                .ok()
                .and_then(|v| serde_json::from_value::<Language>(v["language"].clone()).ok());
            match (build.status.as_str(), build.digest, language) {
                (READY, Some(digest), Some(language)) => return Ok((digest, language)),
                (INITIALIZED | CREATING, _, Some(language)) if !wait => {
                    return Ok((String::new(), language))
                }
                (ERROR, _, _) => {
                    return Err(Failure::invalid(format!(
                        "image build '{image}' is ERROR: {}",
                        build.reason
                    )))
                }
                (INITIALIZED | CREATING, _, _) if started.elapsed() < IMAGE_BUILD_WAIT => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                (status, _, _) => {
                    return Err(Failure::invalid(format!(
                        "image build '{image}' is {status}, not READY"
                    )))
                }
            }
        }
        if let Some(base) = state
            .store
            .code(namespace, CodeKind::BaseImage, image)
            .await?
        {
            let view = super::base_images::BaseImageView::of(&base)?;
            return match view.digest {
                Some(digest) => Ok((digest, view.language)),
                None => Err(Failure::invalid(format!(
                    "base image '{image}' has no digest"
                ))),
            };
        }
        return Err(Failure::not_found(format!(
            "namespace {namespace} has no image build or base image '{image}'; create one \
             with `POST /api/v1/namespaces/{namespace}/base-images` (or …/image-builds)"
        )));
    }
}

/// Builds a record to READY or ERROR, storing each step.
async fn build(state: &Arc<AppState>, record: CodeRecord) {
    let (namespace, name) = (record.namespace.clone(), record.name.clone());
    set_status(state, &record, CREATING, "", None).await;
    log_line(state, &namespace, CodeKind::Function, &name, "building").await;
    match build_steps(state, &record).await {
        Ok(digest) => {
            log_line(state, &namespace, CodeKind::Function, &name, "READY").await;
            set_status(state, &record, READY, "", Some(&digest)).await;
        }
        Err((reason, digest)) => {
            log_line(
                state,
                &namespace,
                CodeKind::Function,
                &name,
                &format!("ERROR: {reason}"),
            )
            .await;
            set_status(state, &record, ERROR, &reason, digest.as_deref()).await;
        }
    }
}

/// The build's steps; an error is the reason, with the built image's digest if there was one.
async fn build_steps(
    state: &Arc<AppState>,
    record: &CodeRecord,
) -> Result<String, (String, Option<String>)> {
    let (namespace, name) = (record.namespace.as_str(), record.name.as_str());
    let plain = |e: Failure| (e.message, None);
    let mut stored = read(record).map_err(plain)?;
    let (base, language) = base_of(state, namespace, &stored.body.image, true)
        .await
        .map_err(plain)?;
    stored.language = Some(language);
    if let Ok(spec) = serde_json::to_string(&stored) {
        // The language shows in the view from now on.
        let _ = state
            .store
            .set_code_spec(namespace, CodeKind::Function, name, &spec)
            .await;
    }
    let body = &stored.body;
    let source = base64::engine::general_purpose::STANDARD
        .decode(body.source.trim())
        .map_err(|e| (format!("`source` is not base64: {e}"), None))?;
    let source_digest = hex::encode(sha2::Sha256::digest(&source));
    let image_name = format!("code/{name}:{}", &source_digest[..12]);
    log_line(
        state,
        namespace,
        CodeKind::Function,
        name,
        &format!("adding the code under /function to the image as {image_name}"),
    )
    .await;
    let built = add_code_layer(state, namespace, &base, &image_name, source)
        .await
        .map_err(plain)?;
    let digest = built.digest.clone();
    let spec = function_spec(body, &image_name, language);
    log_line(
        state,
        namespace,
        CodeKind::Function,
        name,
        "starting one instance to check the handler",
    )
    .await;
    check_instance(state, namespace, name, &spec, &digest)
        .await
        .map_err(|reason| (reason, Some(digest.clone())))?;
    log_line(state, namespace, CodeKind::Function, name, "deploying").await;
    crate::deploy::deploy(
        state,
        &Owner::Namespace(namespace.to_string()),
        name,
        spec,
        None,
        "code build",
    )
    .await
    .map_err(|e| (e.message, Some(digest.clone())))?;
    remove_build_images(state, namespace, name, Some(&built.name)).await;
    Ok(digest)
}

/// Re-packs the source as a layer under `/function` and appends it to `base`, named `image`
/// among the namespace's images.
async fn add_code_layer(
    state: &Arc<AppState>,
    namespace: &str,
    base: &str,
    image: &str,
    source: Vec<u8>,
) -> Fallible<faasbox_images::ImageRecord> {
    let uploads = state.config.uploads_dir();
    let limits = faasbox_images::ImportLimits {
        max_layer_bytes: state.config.limits.max_layer_bytes,
        max_download_bytes: state.config.limits.max_upload_bytes,
    };
    let (namespace, base, image) = (namespace.to_string(), base.to_string(), image.to_string());
    let scope = Scope::of(Some(&namespace));
    let record = state
        .blocking(move |state| {
            std::fs::create_dir_all(&uploads)
                .map_err(|e| Failure::internal(format!("creating {}: {e}", uploads.display())))?;
            let dir = tempfile::tempdir_in(&uploads)
                .map_err(|e| Failure::internal(format!("a temporary directory: {e}")))?;
            let (src, layer) = (dir.path().join("source"), dir.path().join("layer.tar"));
            std::fs::write(&src, &source)
                .map_err(|e| Failure::internal(format!("writing the source: {e}")))?;
            faasbox_images::code_layer(&src, faasbox_proto::CODE_DIR, &layer, &limits)?;
            let changes = ConfigChanges {
                env: Vec::new(),
                workdir: Some(faasbox_proto::CODE_DIR.to_string()),
            };
            Ok(state.images.append_layer(
                &Scope::of(Some(&namespace)),
                &base,
                &layer,
                &image,
                &changes,
            )?)
        })
        .await?;
    // With a cluster registry, every server can run the built image.
    crate::shared_images::share(state, &scope, &record.name).await?;
    Ok(record)
}

/// Starts one instance of the built image as a pool would and stops it: its ready check
/// imports the handler, so a failure to become ready is the build's reason.
async fn check_instance(
    state: &Arc<AppState>,
    namespace: &str,
    name: &str,
    spec: &FunctionSpec,
    digest: &str,
) -> Result<(), String> {
    let key = crate::owner::function_key(namespace, name);
    let Some(hold) = state.images.hold(digest) else {
        return Err(format!(
            "the built image {digest} is gone from the image store"
        ));
    };
    let Some(content) = state.images.content(hold.digest()) else {
        return Err(format!(
            "the built image {digest} is gone from the image store"
        ));
    };
    let image_files = |path: &str| {
        state.images.read_small_file(
            &content.layers,
            path,
            crate::instance_spec::MAX_ACCOUNT_FILE_BYTES,
        )
    };
    let instance = crate::instance_spec::build(
        &key,
        spec,
        1,
        &content,
        &image_files,
        state.config.ready_timeout,
    )
    .map_err(|e| e.message)?;
    debug_assert_eq!(instance.agent.contract, Contract::Code);
    match state.driver.start(instance).await {
        Ok(instance) => {
            if let Err(e) = state.driver.stop(&instance.id).await {
                tracing::warn!("stopping the check instance of {key}: {e}");
            }
            drop(hold);
            Ok(())
        }
        Err(faasbox_driver::DriverError::NotReady {
            reason, details, ..
        }) => Err(format!(
            "the handler '{}' does not load{reason}{}",
            spec.handler.as_deref().unwrap_or_default(),
            details.trim_end()
        )),
        Err(e) => Err(format!(
            "an instance of the built image could not start: {e}"
        )),
    }
}

#[cfg(test)]
#[path = "functions_tests.rs"]
mod tests;
