//! Functions from code (issue 14): what a call of a `code` function sends and checks
//! ([`call`]), the base images ([`base_images`]) and the functions built from a source tree
//! ([`functions`]). Each record's status goes INITIALIZED → CREATING → READY | ERROR and is
//! stored at each step; builds run as background tasks ([`Builds`]) and a restarted server
//! builds again what was not finished ([`resume`]).

pub mod base_images;
pub mod call;
pub mod functions;
pub mod image_builds;

use std::sync::Arc;

use faasbox_store::{CodeKind, CodeRecord, NewBuildLogLine};

use crate::clock;
use crate::state::AppState;

/// Accepted, not built yet.
pub const INITIALIZED: &str = "INITIALIZED";
/// Being built.
pub const CREATING: &str = "CREATING";
/// Built and in service.
pub const READY: &str = "READY";
/// The build failed; the reason says why.
pub const ERROR: &str = "ERROR";

pub use crate::code_builds::Builds;

/// Where the build cache's layers of `namespace` are kept (a checked name: no `/`).
pub(crate) fn cache_dir(state: &AppState, namespace: &str) -> std::path::PathBuf {
    state.config.data_dir.join("code-cache").join(namespace)
}

/// Before a namespace is deleted: its builds stop and its cached build layers are removed
/// (its records, logs and cache entries go with the namespace in the store).
pub async fn forget_namespace(state: &AppState, namespace: &str) {
    state.code_builds.stop_namespace(namespace).await;
    let dir = cache_dir(state, namespace);
    if let Err(e) = std::fs::remove_dir_all(&dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!("removing the build cache {}: {e}", dir.display());
        }
    }
}

/// Writes the server's own line to a record's build log (a store error is logged only).
pub(crate) async fn log_line(
    state: &AppState,
    namespace: &str,
    kind: CodeKind,
    name: &str,
    text: &str,
) {
    let line = NewBuildLogLine {
        time: clock::now_rfc3339(),
        stream: "build".to_string(),
        text: text.to_string(),
    };
    if let Err(e) = state
        .store
        .append_build_log(namespace, kind, name, &[line])
        .await
    {
        tracing::warn!("writing the build log of {namespace}/{name}: {e}");
    }
}

/// Stores a record's status (a store error is logged: the build goes on).
pub(crate) async fn set_status(
    state: &AppState,
    record: &CodeRecord,
    status: &str,
    reason: &str,
    digest: Option<&str>,
) {
    let stored = state
        .store
        .set_code_status(
            &record.namespace,
            record.kind,
            &record.name,
            &faasbox_store::CodeStatus {
                status,
                reason,
                digest,
            },
            &clock::now_rfc3339(),
        )
        .await;
    if let Err(e) = stored {
        tracing::error!(
            "storing the status {status} of {} {}/{}: {e}",
            record.kind.as_str(),
            record.namespace,
            record.name
        );
    }
}

/// At start: builds again every record a stopped server left INITIALIZED or CREATING (its
/// source and settings are in the record). Returns how many.
pub async fn resume(state: &Arc<AppState>) -> usize {
    let unfinished = match state
        .store
        .codes_with_status(&[INITIALIZED, CREATING])
        .await
    {
        Ok(found) => found,
        Err(e) => {
            tracing::error!("finding the unfinished builds of functions from code: {e}");
            return 0;
        }
    };
    let mut resumed = 0;
    for record in unfinished {
        let restart = match record.kind {
            CodeKind::Function => functions::start_build,
            CodeKind::ImageBuild => image_builds::start_build,
            CodeKind::BaseImage => continue,
        };
        {
            log_line(
                state,
                &record.namespace,
                record.kind,
                &record.name,
                "the server restarted during the build; building again",
            )
            .await;
            restart(state, record);
            resumed += 1;
        }
    }
    resumed
}

/// At most this many log lines in one answer of [`logs`].
pub const MAX_LOG_LINES: u32 = 1000;

/// One line of a build's log, as the API shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct BuildLogLineView {
    /// Its place in the log, from 1.
    pub seq: u64,
    /// When it was written.
    pub time: String,
    /// `stdout`, `stderr` or `build` (the server's own lines).
    pub stream: String,
    /// The line.
    pub text: String,
}

/// A build's log lines after a seq, and where the build is.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct BuildLogsView {
    /// The lines after `after`, at most [`MAX_LOG_LINES`].
    pub lines: Vec<BuildLogLineView>,
    /// The `after` of the next poll: the last line's seq (or `after` when there was none).
    pub next: u64,
    /// True once the build ended (READY or ERROR) and every line was given.
    pub done: bool,
    /// The record's status.
    pub status: String,
    /// Why it is in ERROR (empty otherwise).
    pub reason: String,
}

/// The log of record `namespace/kind/name` after line `after`; `None` when there is no such
/// record.
pub async fn logs(
    state: &AppState,
    namespace: &str,
    kind: CodeKind,
    name: &str,
    after: u64,
) -> crate::failure::Fallible<Option<BuildLogsView>> {
    // The status first: a build that ended before the lines were read has all its lines.
    let Some(record) = state.store.code(namespace, kind, name).await? else {
        return Ok(None);
    };
    let lines = state
        .store
        .build_log(namespace, kind, name, after, MAX_LOG_LINES)
        .await?;
    let ended = record.status == READY || record.status == ERROR;
    let done = ended && (lines.len() as u32) < MAX_LOG_LINES;
    let next = lines.last().map(|l| l.seq).unwrap_or(after);
    Ok(Some(BuildLogsView {
        lines: lines
            .into_iter()
            .map(|l| BuildLogLineView {
                seq: l.seq,
                time: l.time,
                stream: l.stream,
                text: l.text,
            })
            .collect(),
        next,
        done,
        status: record.status,
        reason: record.reason,
    }))
}
