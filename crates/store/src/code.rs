//! Functions from code: the records of base images, image builds and code functions (each a
//! spec kept as JSON text, a status and its reason, the built image's digest), their build
//! logs (bounded per build), and the build cache (a key to an image digest), per namespace.

use async_trait::async_trait;

use crate::Result;

/// At most this many lines are kept of one build's log; later lines are dropped and one last
/// line says so.
pub const MAX_BUILD_LOG_LINES: u64 = 5000;
/// At most this many bytes of text are kept of one build's log (see [`MAX_BUILD_LOG_LINES`]).
pub const MAX_BUILD_LOG_BYTES: u64 = 1024 * 1024;
/// The text of the line that ends a log cut at its bound.
pub const BUILD_LOG_CUT: &str =
    "[faasbox] the build log reached its limit (5000 lines or 1 MiB); later lines are not kept";

/// What a code record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodeKind {
    /// A base image: an image with a language, resolved or pulled.
    BaseImage,
    /// An image build: a base image with system packages and runtime dependencies.
    ImageBuild,
    /// A function built from source code on an image.
    Function,
}

impl CodeKind {
    /// The kind as stored: `base-image`, `image-build`, `function`.
    pub fn as_str(self) -> &'static str {
        match self {
            CodeKind::BaseImage => "base-image",
            CodeKind::ImageBuild => "image-build",
            CodeKind::Function => "function",
        }
    }

    /// The kind stored as `text`.
    pub fn parse(text: &str) -> Option<CodeKind> {
        match text {
            "base-image" => Some(CodeKind::BaseImage),
            "image-build" => Some(CodeKind::ImageBuild),
            "function" => Some(CodeKind::Function),
            _ => None,
        }
    }
}

/// One base image, image build or code function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRecord {
    /// Its namespace.
    pub namespace: String,
    /// What it is.
    pub kind: CodeKind,
    /// Its name (unique per namespace and kind).
    pub name: String,
    /// What was asked for, as JSON text (its shape is the server's).
    pub spec: String,
    /// `INITIALIZED`, `CREATING`, `READY` or `ERROR` (the store keeps what it is given).
    pub status: String,
    /// Why it is in ERROR (empty otherwise).
    pub reason: String,
    /// The built (or resolved) image's manifest digest, once there is one.
    pub digest: Option<String>,
    /// When it was first put.
    pub created: String,
    /// When it last changed.
    pub modified: String,
}

/// A record's status, why, and the image it made.
#[derive(Debug, Clone, Copy)]
pub struct CodeStatus<'a> {
    /// `INITIALIZED`, `CREATING`, `READY` or `ERROR`.
    pub status: &'a str,
    /// Why it is in ERROR (empty otherwise).
    pub reason: &'a str,
    /// The built (or resolved) image's manifest digest.
    pub digest: Option<&'a str>,
}

/// One line of a build's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildLogLine {
    /// Its place in the log, from 1.
    pub seq: u64,
    /// When it was written (text, as given).
    pub time: String,
    /// `stdout`, `stderr` or `build` (the server's own lines).
    pub stream: String,
    /// The line.
    pub text: String,
}

/// A line to append to a build's log.
#[derive(Debug, Clone)]
pub struct NewBuildLogLine {
    /// When it was written.
    pub time: String,
    /// `stdout`, `stderr` or `build`.
    pub stream: String,
    /// The line.
    pub text: String,
}

/// The records of functions from code. A namespace's records, logs and cache entries go
/// with the namespace ([`crate::NamespaceStore::delete_namespace`]).
#[async_trait]
pub trait CodeStore: Send + Sync {
    /// Creates or replaces (a rebuild) the record `namespace/kind/name` with `spec` and
    /// `status`; the reason and digest are cleared and the build log emptied; `created` is
    /// kept for a replaced one. Fails with [`crate::StoreError::NoNamespace`].
    async fn put_code(
        &self,
        namespace: &str,
        kind: CodeKind,
        name: &str,
        spec: &str,
        status: &str,
        now: &str,
    ) -> Result<CodeRecord>;

    /// Sets the status, reason and digest of a record; false when it does not exist.
    async fn set_code_status(
        &self,
        namespace: &str,
        kind: CodeKind,
        name: &str,
        status: &CodeStatus<'_>,
        now: &str,
    ) -> Result<bool>;

    /// Replaces the spec of a record, keeping its status and log (what a build found out);
    /// false when it does not exist.
    async fn set_code_spec(
        &self,
        namespace: &str,
        kind: CodeKind,
        name: &str,
        spec: &str,
    ) -> Result<bool>;

    /// The record, if it exists.
    async fn code(&self, namespace: &str, kind: CodeKind, name: &str)
        -> Result<Option<CodeRecord>>;

    /// A namespace's records of `kind`, ordered by name.
    async fn codes(&self, namespace: &str, kind: CodeKind) -> Result<Vec<CodeRecord>>;

    /// Every record (all namespaces and kinds) whose status is one of `statuses`, ordered by
    /// namespace, kind, name: what a restarted server has to build again.
    async fn codes_with_status(&self, statuses: &[&str]) -> Result<Vec<CodeRecord>>;

    /// Deletes the record and its log; false when it did not exist.
    async fn delete_code(&self, namespace: &str, kind: CodeKind, name: &str) -> Result<bool>;

    /// Appends lines to the record's build log, numbered on from its last line. A log at its
    /// bound ([`MAX_BUILD_LOG_LINES`], [`MAX_BUILD_LOG_BYTES`]) keeps no more lines; the line
    /// that crosses it is replaced by [`BUILD_LOG_CUT`]. Nothing for a record that does not exist.
    async fn append_build_log(
        &self,
        namespace: &str,
        kind: CodeKind,
        name: &str,
        lines: &[NewBuildLogLine],
    ) -> Result<()>;

    /// The record's log lines after `after` (a seq), at most `limit`, in order.
    async fn build_log(
        &self,
        namespace: &str,
        kind: CodeKind,
        name: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<BuildLogLine>>;

    /// The image digest cached under `key` in `namespace`.
    async fn build_cache(&self, namespace: &str, key: &str) -> Result<Option<String>>;

    /// Caches `digest` under `key` in `namespace` (replacing what was there).
    async fn put_build_cache(
        &self,
        namespace: &str,
        key: &str,
        digest: &str,
        now: &str,
    ) -> Result<()>;
}
