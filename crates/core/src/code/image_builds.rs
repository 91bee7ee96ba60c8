//! Image builds: a base image with system packages and runtime dependencies installed. `POST
//! …/image-builds` stores the request (INITIALIZED) and builds in the background: a builder
//! instance of the base image (cmd contract, network on, a disk of the server's
//! `build_disk_bytes`) runs the package manager it has (`apt-get` or `apk`) and the language's
//! (`pip install -r requirements.txt`; `npm install --omit=dev` in `/opt/faasbox/node` with
//! `NODE_PATH` set), then what it changed is exported as a layer, appended to the base image
//! and named `<name>` among the namespace's images; the builder stops. The build cache maps a
//! key (the base digest, language, packages, manifest and [`BUILDER_VERSION`]) to the image
//! made, with the layer kept under the data directory: a hit appends that layer again (the same
//! digest) without starting a container.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use faasbox_images::{ConfigChanges, Scope};
use faasbox_proto::{CallFile, CallFileKind, Language};
use faasbox_store::{CodeKind, CodeRecord, NewBuildLogLine};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use super::{log_line, set_status, CREATING, ERROR, INITIALIZED, READY};
use crate::clock;
use crate::failure::{Failure, Fallible};
use crate::model::{check_name, FunctionSpec};
use crate::state::AppState;

/// Changes when what a build runs changes, so older cache entries are not reused.
pub const BUILDER_VERSION: &str = "faasbox-image-build-1";

/// How long a builder may take for all its commands.
const BUILD_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The largest manifest (requirements.txt, package.json) taken.
const MAX_MANIFEST_BYTES: usize = 1024 * 1024;

/// Where Node.js dependencies are installed.
const NODE_DIR: &str = "/opt/faasbox/node";

/// What the export leaves out: caches and temporary files.
const EXCLUDED: &[&str] = &[
    "/tmp",
    "/var/tmp",
    "/root/.cache",
    "/root/.npm",
    "/var/cache/apt",
    "/var/lib/apt/lists",
    "/var/cache/apk",
];

/// A system package to install, with an optional version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SystemPackage {
    /// The package's name in the base image's package manager.
    pub name: String,
    /// A version (empty: the newest).
    #[serde(default)]
    pub version: String,
}

/// The language's dependency manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuntimeDependencies {
    /// `requirements.txt` (python3) or `package.json` (nodejs) text.
    #[serde(default)]
    pub manifest: String,
}

/// What `POST …/image-builds` takes.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImageBuildBody {
    /// The image build's name (also the built image's name among the namespace's images).
    pub name: String,
    /// The base image it starts from.
    pub base_image: String,
    /// System packages to install.
    #[serde(default)]
    pub system_packages: Vec<SystemPackage>,
    /// The language's dependencies.
    #[serde(default)]
    pub runtime_dependencies: RuntimeDependencies,
}

/// An image build as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageBuildView {
    /// Its name.
    pub name: String,
    /// The base image it starts from.
    pub base_image: String,
    /// The base image's language.
    pub language: Language,
    /// System packages installed.
    pub system_packages: Vec<SystemPackage>,
    /// The language's dependencies.
    pub runtime_dependencies: RuntimeDependencies,
    /// `INITIALIZED`, `CREATING`, `READY` or `ERROR`.
    pub status: String,
    /// Why it is in ERROR (empty otherwise).
    pub reason: String,
    /// The built image's manifest digest.
    pub digest: Option<String>,
    /// Whether the build reused a cached layer.
    pub cached: bool,
    /// When it was first put.
    pub created: String,
    /// When it last changed.
    pub modified: String,
}

/// What the record keeps (`language` at the top: code functions read it there).
#[derive(Serialize, Deserialize)]
struct Stored {
    body: ImageBuildBody,
    language: Language,
    #[serde(default)]
    cached: bool,
}

fn read(record: &CodeRecord) -> Fallible<Stored> {
    serde_json::from_str(&record.spec).map_err(|e| {
        Failure::internal(format!(
            "the stored image build '{}' is unreadable: {e}",
            record.name
        ))
    })
}

impl ImageBuildView {
    fn of(record: &CodeRecord) -> Fallible<ImageBuildView> {
        let Stored {
            body,
            language,
            cached,
        } = read(record)?;
        Ok(ImageBuildView {
            name: record.name.clone(),
            base_image: body.base_image,
            language,
            system_packages: body.system_packages,
            runtime_dependencies: body.runtime_dependencies,
            status: record.status.clone(),
            reason: record.reason.clone(),
            digest: record.digest.clone(),
            cached,
            created: record.created.clone(),
            modified: record.modified.clone(),
        })
    }
}

/// A package name or version a package manager takes, and no shell syntax.
fn check_package_word(what: &str, word: &str) -> Result<(), String> {
    let fine = word
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._+-:~*".contains(&b));
    if fine && word.len() <= 200 && !word.starts_with('-') {
        Ok(())
    } else {
        Err(format!(
            "system package {what} '{}' is not valid: use letters, digits and . _ + - : ~ *",
            word.escape_debug()
        ))
    }
}

/// Accepts image build `body.name` of `namespace` (a rebuild of an existing one stops its
/// running build first) and starts it in the background.
pub async fn create(
    state: &Arc<AppState>,
    namespace: &str,
    body: ImageBuildBody,
) -> Fallible<ImageBuildView> {
    check_name("image build", &body.name).map_err(Failure::invalid)?;
    let mut problems = Vec::new();
    for package in &body.system_packages {
        problems.extend(check_package_word("name", &package.name).err());
        if package.name.is_empty() {
            problems.push("a system package has no name".to_string());
        }
        if !package.version.is_empty() {
            problems.extend(check_package_word("version", &package.version).err());
        }
    }
    let manifest = &body.runtime_dependencies.manifest;
    if manifest.len() > MAX_MANIFEST_BYTES {
        problems.push(format!(
            "the runtime dependencies' manifest is larger than {MAX_MANIFEST_BYTES} bytes"
        ));
    }
    let base = super::base_images::get(state, namespace, &body.base_image).await?;
    if base.language == Language::Shell && !manifest.trim().is_empty() {
        problems.push(
            "a shell base image takes no runtime dependencies; install system packages instead"
                .to_string(),
        );
    }
    if !problems.is_empty() {
        return Err(Failure::invalid(format!(
            "image build '{}' was not accepted: {}",
            body.name,
            problems.join("; ")
        )));
    }
    let name = body.name.clone();
    state
        .code_builds
        .stop(namespace, CodeKind::ImageBuild, &name)
        .await;
    let spec = serde_json::to_string(&Stored {
        body,
        language: base.language,
        cached: false,
    })
    .map_err(|e| Failure::internal(e.to_string()))?;
    let record = state
        .store
        .put_code(
            namespace,
            CodeKind::ImageBuild,
            &name,
            &spec,
            INITIALIZED,
            &clock::now_rfc3339(),
        )
        .await?;
    let view = ImageBuildView::of(&record)?;
    start_build(state, record);
    Ok(view)
}

/// Starts (or restarts) the build of a stored record in the background.
pub(crate) fn start_build(state: &Arc<AppState>, record: CodeRecord) {
    let task_state = state.clone();
    let (namespace, name) = (record.namespace.clone(), record.name.clone());
    state
        .code_builds
        .start(&namespace, CodeKind::ImageBuild, &name, async move {
            build(&task_state, record).await;
        });
}

/// The image build `name` of `namespace`.
pub async fn get(state: &Arc<AppState>, namespace: &str, name: &str) -> Fallible<ImageBuildView> {
    let record = state
        .store
        .code(namespace, CodeKind::ImageBuild, name)
        .await?
        .ok_or_else(|| missing(namespace, name))?;
    ImageBuildView::of(&record)
}

/// Every image build of `namespace`, by name.
pub async fn list(state: &Arc<AppState>, namespace: &str) -> Fallible<Vec<ImageBuildView>> {
    let records = state.store.codes(namespace, CodeKind::ImageBuild).await?;
    records.iter().map(ImageBuildView::of).collect()
}

/// Deletes image build `name` (stopping its build; the built image stays among the
/// namespace's images).
pub async fn delete(state: &Arc<AppState>, namespace: &str, name: &str) -> Fallible<()> {
    state
        .code_builds
        .stop(namespace, CodeKind::ImageBuild, name)
        .await;
    if state
        .store
        .delete_code(namespace, CodeKind::ImageBuild, name)
        .await?
    {
        Ok(())
    } else {
        Err(missing(namespace, name))
    }
}

fn missing(namespace: &str, name: &str) -> Failure {
    Failure::not_found(format!(
        "namespace {namespace} has no image build '{name}'; create it with \
         `POST /api/v1/namespaces/{namespace}/image-builds`"
    ))
}

/// The cache key of a build: sha256 of the base digest, the language, the packages, the
/// manifest and [`BUILDER_VERSION`], each length-prefixed.
pub fn cache_key(base_digest: &str, language: Language, body: &ImageBuildBody) -> String {
    let mut hash = sha2::Sha256::new();
    let mut part = |text: &str| {
        hash.update((text.len() as u64).to_be_bytes());
        hash.update(text.as_bytes());
    };
    part(BUILDER_VERSION);
    part(base_digest);
    part(language.as_str());
    for package in &body.system_packages {
        part(&package.name);
        part(&package.version);
    }
    part("");
    part(&body.runtime_dependencies.manifest);
    format!("sha256:{}", hex::encode(hash.finalize()))
}

/// Where the layer of cache entry `key` of `namespace` is kept.
fn cached_layer(state: &AppState, namespace: &str, key: &str) -> PathBuf {
    let file = key.trim_start_matches("sha256:");
    super::cache_dir(state, namespace).join(format!("{file}.tar"))
}

async fn build(state: &Arc<AppState>, record: CodeRecord) {
    let (namespace, name) = (record.namespace.clone(), record.name.clone());
    set_status(state, &record, CREATING, "", None).await;
    log_line(state, &namespace, CodeKind::ImageBuild, &name, "building").await;
    match build_steps(state, &record).await {
        Ok(digest) => {
            log_line(state, &namespace, CodeKind::ImageBuild, &name, "READY").await;
            set_status(state, &record, READY, "", Some(&digest)).await;
        }
        Err(reason) => {
            let line = format!("ERROR: {reason}");
            log_line(state, &namespace, CodeKind::ImageBuild, &name, &line).await;
            set_status(state, &record, ERROR, &reason, None).await;
        }
    }
}

async fn build_steps(state: &Arc<AppState>, record: &CodeRecord) -> Result<String, String> {
    let (namespace, name) = (record.namespace.as_str(), record.name.as_str());
    let mut stored = read(record).map_err(|e| e.message)?;
    let base = super::base_images::get(state, namespace, &stored.body.base_image)
        .await
        .map_err(|e| e.message)?;
    let base_digest = base
        .digest
        .clone()
        .ok_or_else(|| format!("base image '{}' has no digest", base.name))?;
    let key = cache_key(&base_digest, stored.language, &stored.body);
    let layer = cached_layer(state, namespace, &key);
    let changes = config_changes(stored.language, &stored.body);
    let cached = state
        .store
        .build_cache(namespace, &key)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(digest) = cached {
        if state.images.content(&digest).is_some() && layer.is_file() {
            log_line(
                state,
                namespace,
                CodeKind::ImageBuild,
                name,
                &format!("reused cached layer {key} (image {digest}); no builder started"),
            )
            .await;
            let record = append(state, namespace, &base_digest, &layer, name, &changes).await?;
            stored.cached = true;
            save(state, namespace, name, &stored).await;
            return Ok(record.digest);
        }
    }
    let builder = Builder::start(state, namespace, name, &base).await?;
    let built = async {
        builder.run(state, &stored).await?;
        if let Some(dir) = layer.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        }
        let exclude: Vec<String> = EXCLUDED.iter().map(|p| p.to_string()).collect();
        let exported = state
            .driver
            .export_changes(&builder.id, &layer, &exclude)
            .await
            .map_err(|e| format!("exporting what the builder installed failed: {e}"))?;
        log_line(
            state,
            namespace,
            CodeKind::ImageBuild,
            name,
            &format!("exported the changes: {} entries", exported.entries),
        )
        .await;
        append(state, namespace, &base_digest, &layer, name, &changes).await
    }
    .await;
    builder.stop().await;
    let record = built?;
    if let Err(e) = state
        .store
        .put_build_cache(namespace, &key, &record.digest, &clock::now_rfc3339())
        .await
    {
        tracing::warn!("caching the build of {namespace}/{name}: {e}");
    }
    stored.cached = false;
    save(state, namespace, name, &stored).await;
    Ok(record.digest)
}

async fn save(state: &AppState, namespace: &str, name: &str, stored: &Stored) {
    if let Ok(spec) = serde_json::to_string(stored) {
        let _ = state
            .store
            .set_code_spec(namespace, CodeKind::ImageBuild, name, &spec)
            .await;
    }
}

fn config_changes(language: Language, body: &ImageBuildBody) -> ConfigChanges {
    let node =
        language == Language::Nodejs && !body.runtime_dependencies.manifest.trim().is_empty();
    ConfigChanges {
        env: if node {
            vec![format!("NODE_PATH={NODE_DIR}/node_modules")]
        } else {
            Vec::new()
        },
        workdir: None,
    }
}

async fn append(
    state: &Arc<AppState>,
    namespace: &str,
    base: &str,
    layer: &std::path::Path,
    name: &str,
    changes: &ConfigChanges,
) -> Result<faasbox_images::ImageRecord, String> {
    let namespace_key = namespace;
    let (namespace, base, layer, name, changes) = (
        namespace.to_string(),
        base.to_string(),
        layer.to_path_buf(),
        name.to_string(),
        changes.clone(),
    );
    let record = state
        .blocking(move |state| {
            Ok(state.images.append_layer(
                &Scope::of(Some(&namespace)),
                &base,
                &layer,
                &name,
                &changes,
            )?)
        })
        .await
        .map_err(|e| {
            format!(
                "adding the built layer to the base image failed: {}",
                e.message
            )
        })?;
    // With a cluster registry, every server can use the built image.
    crate::shared_images::share(state, &Scope::of(Some(namespace_key)), &record.name)
        .await
        .map_err(|e| e.message)?;
    Ok(record)
}

/// A running builder instance. Dropped without [`Builder::stop`] (its build was aborted: a
/// rebuild, a deletion), it is stopped in the background.
struct Builder {
    id: String,
    driver: Arc<dyn faasbox_driver::Driver>,
    stopped: bool,
    client: faasbox_driver::AgentClient,
    namespace: String,
    name: String,
    /// `apk` or `apt-get`, whichever the base has.
    packager: Option<&'static str>,
}

impl Builder {
    async fn start(
        state: &Arc<AppState>,
        namespace: &str,
        name: &str,
        base: &super::base_images::BaseImageView,
    ) -> Result<Builder, String> {
        let digest = base.digest.clone().unwrap_or_default();
        let content = state.images.content(&digest).ok_or_else(|| {
            format!("the base image's content {digest} is gone; create the base image again")
        })?;
        let files = |path: &str| {
            state.images.read_small_file(
                &content.layers,
                path,
                crate::instance_spec::MAX_ACCOUNT_FILE_BYTES,
            )
        };
        // By the tool itself, not the distribution's release file: Debian's smallest root
        // filesystems have /etc/debian_version and no apt. (A tool an upper layer deleted is
        // taken as there; its command then fails with the shell's "not found".)
        let has = |path: &str| {
            state
                .images
                .layer_dirs(&content.layers)
                .iter()
                .any(|layer| std::fs::symlink_metadata(layer.join(path)).is_ok_and(|m| m.is_file()))
        };
        let packager = if has("sbin/apk") {
            Some("apk")
        } else if has("usr/bin/apt-get") {
            Some("apt-get")
        } else {
            None
        };
        let mut spec: FunctionSpec = serde_json::from_value(serde_json::json!({
            "image": base.image, "contract": "cmd", "network": true, "size": "large"
        }))
        .map_err(|e| e.to_string())?;
        spec.timeout = crate::model::HumanDuration(BUILD_TIMEOUT);
        spec.disk = Some(crate::model::ByteSize(state.config.build_disk_bytes));
        let key = format!("{namespace}/build.{name}");
        let instance = crate::instance_spec::build(
            &key,
            &spec,
            1,
            &content,
            &files,
            state.config.ready_timeout,
        )
        .map_err(|e| e.message)?;
        log_line(
            state,
            namespace,
            CodeKind::ImageBuild,
            name,
            "starting the builder",
        )
        .await;
        let instance = state
            .driver
            .start(instance)
            .await
            .map_err(|e| format!("the builder could not start: {e}"))?;
        Ok(Builder {
            client: faasbox_driver::AgentClient::at(instance.endpoint.clone()),
            id: instance.id,
            driver: state.driver.clone(),
            stopped: false,
            namespace: namespace.to_string(),
            name: name.to_string(),
            packager,
        })
    }

    /// The commands of the build, in the direktiv-cmd form, and the files they read.
    fn commands(
        &self,
        stored: &Stored,
        ca: Option<&[u8]>,
    ) -> Result<(serde_json::Value, Vec<CallFile>), String> {
        build_commands(self.packager, stored, ca)
    }
}

/// The name of the certificate bundle among a build command's files (see
/// [`crate::config::ServerConfig::build_ca_file`]).
const CA_FILE: &str = "faasbox-ca.crt";

/// The largest certificate bundle given to builders; a larger file is not one.
const MAX_CA_BYTES: u64 = 8 * 1024 * 1024;

/// The commands of a build on a base with `packager` (`apk`, `apt-get` or none), in the
/// direktiv-cmd form, and the files they read. With `ca` (a PEM bundle), pip and npm trust it
/// instead of the base image's own store.
fn build_commands(
    packager: Option<&'static str>,
    stored: &Stored,
    ca: Option<&[u8]>,
) -> Result<(serde_json::Value, Vec<CallFile>), String> {
    let body = &stored.body;
    let mut commands = Vec::new();
    let mut files = Vec::new();
    // The commands run in the call's directory, where the bundle is placed; `$PWD` makes
    // its path absolute before a command changes directory.
    let trust = if let Some(ca) = ca {
        files.push(CallFile {
            name: CA_FILE.into(),
            kind: CallFileKind::File,
            data: base64::engine::general_purpose::STANDARD.encode(ca),
        });
        format!("ca=\"$PWD/{CA_FILE}\"; export PIP_CERT=\"$ca\" NODE_EXTRA_CA_CERTS=\"$ca\" npm_config_cafile=\"$ca\"; ")
    } else {
        String::new()
    };
    if !body.system_packages.is_empty() {
        let words: Vec<String> = body
            .system_packages
            .iter()
            .map(|p| match (packager, p.version.is_empty()) {
                (_, true) => p.name.clone(),
                (Some("apk"), false) => format!("{}={}", p.name, p.version),
                (_, false) => format!("{}={}", p.name, p.version),
            })
            .collect();
        let line = match packager {
            Some("apk") => format!("apk add --no-cache {}", words.join(" ")),
            Some(_) => format!(
                "sh -c 'apt-get -o APT::Sandbox::User=root update && DEBIAN_FRONTEND=noninteractive apt-get -o APT::Sandbox::User=root install -y --no-install-recommends {}'",
                words.join(" ")
            ),
            None => {
                return Err(
                    "the base image has neither apk nor apt-get to install system packages"
                        .to_string(),
                )
            }
        };
        commands.push(serde_json::json!({"command": line, "stop": true}));
    }
    let manifest = &body.runtime_dependencies.manifest;
    if !manifest.trim().is_empty() {
        let encoded = base64::engine::general_purpose::STANDARD.encode(manifest.as_bytes());
        match stored.language {
            Language::Python3 => {
                files.push(CallFile {
                    name: "requirements.txt".into(),
                    kind: CallFileKind::File,
                    data: encoded,
                });
                commands.push(serde_json::json!({
                    "command": format!(
                        "sh -c '{trust}python3 -m pip install --no-cache-dir -r requirements.txt'"
                    ),
                    "envs": [
                        {"name": "PIP_BREAK_SYSTEM_PACKAGES", "value": "1"},
                        {"name": "PIP_ROOT_USER_ACTION", "value": "ignore"}
                    ],
                    "stop": true
                }));
            }
            Language::Nodejs => {
                files.push(CallFile {
                    name: "package.json".into(),
                    kind: CallFileKind::File,
                    data: encoded,
                });
                commands.push(serde_json::json!({
                    "command": format!(
                        "sh -c '{trust}mkdir -p {NODE_DIR} && cp package.json {NODE_DIR}/ && cd {NODE_DIR} && npm install --omit=dev'"
                    ),
                    "stop": true
                }));
            }
            Language::Shell => {}
        }
    }
    Ok((serde_json::json!({"commands": commands}), files))
}

impl Builder {
    /// Runs the build's commands one call each; each command's output reaches the build log
    /// while it runs ([`Builder::call_streaming`]); the first that fails ends the build.
    async fn run(&self, state: &Arc<AppState>, stored: &Stored) -> Result<(), String> {
        let ca = self.trusted_certificates(state).await;
        let (input, files) = self.commands(stored, ca.as_deref())?;
        let commands = input["commands"].as_array().cloned().unwrap_or_default();
        for (index, command) in commands.iter().enumerate() {
            let text = command["command"].as_str().unwrap_or_default();
            log_line(
                state,
                &self.namespace,
                CodeKind::ImageBuild,
                &self.name,
                &format!(
                    "running command {} of {}: {text}",
                    index + 1,
                    commands.len()
                ),
            )
            .await;
            let one = serde_json::json!({ "commands": [command] });
            let (outcome, lines) = self
                .call_streaming(state, Bytes::from(one.to_string()), files.clone())
                .await?;
            if outcome.status != faasbox_proto::InvokeStatus::Ok {
                return Err(format!(
                    "`{text}` failed ({}); its last output:\n{}",
                    outcome.message.unwrap_or_default(),
                    output_tail(&lines)
                ));
            }
        }
        Ok(())
    }

    /// Runs one builder call, appending its lines to the build log as they come: while the
    /// call runs, its lines so far are read from the agent every [`LOG_POLL_INTERVAL`]; when it
    /// ends, the outcome's lines after those already appended are. Returns the outcome and all
    /// the call's lines. An agent that cannot say (an older one, a failing or slow read) stops
    /// the reading: the rest of its lines then come with the outcome.
    async fn call_streaming(
        &self,
        state: &Arc<AppState>,
        input: Bytes,
        files: Vec<CallFile>,
    ) -> Result<(faasbox_proto::InvokeOutcome<Bytes>, Vec<NewBuildLogLine>), String> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let deadline = clock::deadline_rfc3339(BUILD_TIMEOUT);
        let call = self.client.call(&id, &deadline, input, files);
        tokio::pin!(call);
        let mut poll = tokio::time::interval(LOG_POLL_INTERVAL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut streaming = true;
        // The call's lines appended so far (the agent numbers them as the outcome does).
        let mut appended: Vec<NewBuildLogLine> = Vec::new();
        let outcome = loop {
            tokio::select! {
                outcome = &mut call => break outcome,
                _ = poll.tick(), if streaming => {
                    // The call is not polled meanwhile: its answer waits in its connection.
                    let read = self.client.logs(&id, appended.len() as u64);
                    match tokio::time::timeout(LOG_POLL_TIMEOUT, read)
                        .await
                        .unwrap_or_else(|_| {
                            Err(faasbox_driver::AgentError::Request(format!(
                                "no answer within {LOG_POLL_TIMEOUT:?}"
                            )))
                        })
                    {
                        Ok(report) => {
                            let lines: Vec<NewBuildLogLine> =
                                report.lines.iter().map(build_log_line).collect();
                            self.append_log(state, &lines).await;
                            appended.extend(lines);
                        }
                        Err(e) => {
                            tracing::debug!(
                                "reading the running build {}/{}'s lines: {e}; they come when \
                                 its command ends",
                                self.namespace,
                                self.name
                            );
                            streaming = false;
                        }
                    }
                }
            }
        };
        let outcome = outcome.map_err(|e| format!("the builder failed: {e}"))?;
        let rest: Vec<NewBuildLogLine> = outcome
            .logs
            .iter()
            .skip(appended.len())
            .map(build_log_line)
            .collect();
        self.append_log(state, &rest).await;
        appended.extend(rest);
        Ok((outcome, appended))
    }

    /// Appends `lines` to this build's log (a failure to is only reported).
    async fn append_log(&self, state: &AppState, lines: &[NewBuildLogLine]) {
        if lines.is_empty() {
            return;
        }
        if let Err(e) = state
            .store
            .append_build_log(&self.namespace, CodeKind::ImageBuild, &self.name, lines)
            .await
        {
            tracing::warn!(
                "writing the build log of {}/{}: {e}",
                self.namespace,
                self.name
            );
        }
    }

    /// The server's certificate bundle for builds, if it has one that can be read.
    async fn trusted_certificates(&self, state: &Arc<AppState>) -> Option<Vec<u8>> {
        let path = state.config.build_ca_file.as_ref()?;
        let read = async {
            let size = tokio::fs::metadata(path).await?.len();
            if size > MAX_CA_BYTES {
                return Err(std::io::Error::other(format!(
                    "it is larger than {MAX_CA_BYTES} bytes"
                )));
            }
            tokio::fs::read(path).await
        };
        match read.await {
            Ok(bundle) => Some(bundle),
            Err(e) => {
                let text = format!(
                    "not giving the builder the certificate bundle {}: {e}; pip and npm trust \
                     the base image's own certificates",
                    path.display()
                );
                log_line(
                    state,
                    &self.namespace,
                    CodeKind::ImageBuild,
                    &self.name,
                    &text,
                )
                .await;
                None
            }
        }
    }

    async fn stop(mut self) {
        self.stopped = true;
        if let Err(e) = self.driver.stop(&self.id).await {
            tracing::warn!("stopping the builder {}: {e}", self.id);
        }
    }
}

impl Drop for Builder {
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        let (driver, id) = (self.driver.clone(), self.id.clone());
        // No runtime (it is shutting down): the driver's stop-all at shutdown removes it.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = driver.stop(&id).await {
                    tracing::warn!("stopping the builder {id} of an aborted build: {e}");
                }
            });
        }
    }
}

/// How often a running build command's new lines are read from its builder.
const LOG_POLL_INTERVAL: Duration = Duration::from_millis(300);

/// How long one read of a running command's lines may take; an agent that does not answer
/// in time is not asked again during that command (the outcome still brings every line).
const LOG_POLL_TIMEOUT: Duration = Duration::from_secs(2);

/// A builder's log line as a build log line: the agent's own lines are the build's.
fn build_log_line(line: &faasbox_proto::LogLine) -> NewBuildLogLine {
    NewBuildLogLine {
        time: clock::now_rfc3339(),
        stream: match line.stream {
            faasbox_proto::LogStream::Stderr => "stderr",
            faasbox_proto::LogStream::Agent => "build",
            _ => "stdout",
        }
        .to_string(),
        text: line.line.clone(),
    }
}

/// How much of the end of a failed build's output its reason holds.
const REASON_TAIL_LINES: usize = 10;
const REASON_TAIL_BYTES: usize = 2000;

/// The last lines of a build's output (the tool's own words), for a failed build's reason.
fn output_tail(lines: &[NewBuildLogLine]) -> String {
    let kept: Vec<&str> = lines
        .iter()
        .map(|l| l.text.trim_end())
        .filter(|t| !t.is_empty())
        .collect();
    let tail = kept[kept.len().saturating_sub(REASON_TAIL_LINES)..].join("\n");
    match tail.char_indices().rev().nth(REASON_TAIL_BYTES) {
        Some((cut, _)) => format!("…{}", &tail[cut..]),
        None => tail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(packages: &[(&str, &str)], manifest: &str) -> ImageBuildBody {
        ImageBuildBody {
            name: "deps".into(),
            base_image: "py".into(),
            system_packages: packages
                .iter()
                .map(|(n, v)| SystemPackage {
                    name: n.to_string(),
                    version: v.to_string(),
                })
                .collect(),
            runtime_dependencies: RuntimeDependencies {
                manifest: manifest.into(),
            },
        }
    }

    #[test]
    fn the_cache_key_changes_with_every_input() {
        let key = cache_key(
            "sha256:a",
            Language::Python3,
            &body(&[("curl", "")], "x==1"),
        );
        assert_eq!(
            key,
            cache_key(
                "sha256:a",
                Language::Python3,
                &body(&[("curl", "")], "x==1")
            )
        );
        for other in [
            cache_key(
                "sha256:b",
                Language::Python3,
                &body(&[("curl", "")], "x==1"),
            ),
            cache_key("sha256:a", Language::Nodejs, &body(&[("curl", "")], "x==1")),
            cache_key(
                "sha256:a",
                Language::Python3,
                &body(&[("curl", "7")], "x==1"),
            ),
            cache_key("sha256:a", Language::Python3, &body(&[], "x==1")),
            cache_key(
                "sha256:a",
                Language::Python3,
                &body(&[("curl", "")], "x==2"),
            ),
            // The boundary between the parts counts.
            cache_key(
                "sha256:a",
                Language::Python3,
                &body(&[("cur", "l")], "x==1"),
            ),
        ] {
            assert_ne!(key, other);
        }
    }

    /// The builder runs the language's install through the agent; a build deleted while its
    /// builder works stops the builder; one whose export fails (the fake driver cannot) is
    /// ERROR saying why, with the builder stopped too.
    #[tokio::test]
    async fn a_builder_stops_when_its_build_is_deleted_or_fails() {
        use faasbox_driver::fake::FakeReply;
        let h = crate::test_support::harness(
            FakeReply::Hold,
            serde_json::json!({"image": "hello", "network": false}),
        )
        .await;
        let state = &h.state;
        crate::code::base_images::create(
            state,
            "ns",
            crate::code::base_images::BaseImageBody {
                name: "py".into(),
                image: "hello".into(),
                language: Language::Python3,
            },
        )
        .await
        .unwrap();
        create(state, "ns", body(&[], "requests==2.0\n"))
            .await
            .unwrap();
        let record = crate::test_support::wait_for("the builder to get its commands", || async {
            let record = h.driver.record();
            if record.invokes.is_empty() {
                Err(format!("{:?}", record.running()))
            } else {
                Ok(record)
            }
        })
        .await;
        assert_eq!(record.running().len(), 1);
        delete(state, "ns", "deps").await.unwrap();
        crate::test_support::wait_for("the builder to stop", || async {
            let running = h.driver.record().running();
            if running.is_empty() {
                Ok(())
            } else {
                Err(format!("{running:?}"))
            }
        })
        .await;

        h.driver.behaviour().set_reply(FakeReply::Echo);
        create(state, "ns", body(&[], "requests==2.0\n"))
            .await
            .unwrap();
        let failed = crate::test_support::wait_for("the build to end", || async {
            let view = get(state, "ns", "deps").await.map_err(|e| e.message)?;
            if view.status == ERROR {
                Ok(view)
            } else {
                Err(view.status)
            }
        })
        .await;
        assert!(failed.reason.contains("exporting"), "{}", failed.reason);
        assert!(h.driver.record().running().is_empty());
    }

    #[test]
    fn the_commands_fit_the_base_and_the_language() {
        let stored = |language, packages: &[(&str, &str)], manifest: &str| Stored {
            body: body(packages, manifest),
            language,
            cached: false,
        };
        let (input, files) = build_commands(
            Some("apk"),
            &stored(Language::Python3, &[("curl", "8.5")], "x==1"),
            None,
        )
        .unwrap();
        assert_eq!(
            input["commands"][0]["command"],
            "apk add --no-cache curl=8.5"
        );
        assert!(input["commands"][1]["command"]
            .as_str()
            .unwrap()
            .contains("pip install --no-cache-dir -r requirements.txt"));
        assert_eq!(files[0].name, "requirements.txt");
        let (input, files) = build_commands(
            Some("apt-get"),
            &stored(Language::Nodejs, &[("git", "")], "{}"),
            Some(b"PEM"),
        )
        .unwrap();
        let apt = input["commands"][0]["command"].as_str().unwrap();
        assert!(
            apt.contains(" update && ") && apt.ends_with("install -y --no-install-recommends git'"),
            "{apt}"
        );
        assert!(input["commands"][1]["command"]
            .as_str()
            .unwrap()
            .contains("npm install --omit=dev"));
        assert_eq!(files[0].name, CA_FILE);
        assert_eq!(files[1].name, "package.json");
        let npm = input["commands"][1]["command"].as_str().unwrap();
        assert!(
            npm.contains("npm_config_cafile=\"$ca\"") && npm.contains("NODE_EXTRA_CA_CERTS"),
            "{npm}"
        );
        assert_eq!(
            input["commands"][0]["command"]
                .as_str()
                .map(|c| c.contains("faasbox-ca")),
            Some(false)
        );
        let error =
            build_commands(None, &stored(Language::Shell, &[("curl", "")], ""), None).unwrap_err();
        assert!(error.contains("neither apk nor apt-get"), "{error}");
        let (input, files) = build_commands(None, &stored(Language::Shell, &[], ""), None).unwrap();
        assert_eq!(input["commands"], serde_json::json!([]));
        assert!(files.is_empty());
    }

    #[test]
    fn a_failed_build_s_reason_ends_with_the_tool_s_output() {
        let line = |text: &str| NewBuildLogLine {
            time: "t".into(),
            stream: "stdout".into(),
            text: text.into(),
        };
        let lines: Vec<NewBuildLogLine> = (0..20)
            .map(|i| line(&format!("line {i}")))
            .chain([
                line(""),
                line("ERROR: No matching distribution found for no-such-package"),
            ])
            .collect();
        let tail = output_tail(&lines);
        assert!(tail.starts_with("line 11\n"), "{tail}");
        assert!(tail.ends_with("no-such-package"), "{tail}");
        let long = output_tail(&[line(&"x".repeat(5000))]);
        assert!(long.starts_with('…') && long.chars().count() <= REASON_TAIL_BYTES + 2);
    }

    #[test]
    fn package_words_refuse_shell_syntax() {
        assert!(check_package_word("name", "libpq-dev").is_ok());
        assert!(check_package_word("version", "1:2.3~rc1+dfsg").is_ok());
        for bad in ["a;rm", "$(x)", "a b", "-o", "a'b", ""] {
            if !bad.is_empty() {
                assert!(check_package_word("name", bad).is_err(), "{bad}");
            }
        }
    }
}
