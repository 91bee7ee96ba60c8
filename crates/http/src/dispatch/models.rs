//! Dispatch's JSON shapes (`swagger/models.json` of Dispatch v0.1.24), as faasbox answers and
//! reads them. Times are Unix seconds, `reason` a list of sentences, as in Dispatch.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use faasbox_proto::{LogLine, LogStream};

/// A run's error: Dispatch's `InvocationError`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct InvocationError {
    /// `InputError`, `FunctionError` or `SystemError`.
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
    #[serde(default)]
    pub stacktrace: Vec<String>,
}

/// The input error class, and the function error class.
pub(crate) const INPUT_ERROR: &str = faasbox_proto::CODE_INPUT_ERROR;
pub(crate) const FUNCTION_ERROR: &str = faasbox_proto::CODE_FUNCTION_ERROR;
/// Anything the platform failed at.
pub(crate) const SYSTEM_ERROR: &str = "SystemError";

impl InvocationError {
    /// The error of a failed call: its class from the failure's code (the code contract's
    /// `InputError`/`FunctionError`; a request the caller got wrong is an InputError, a function
    /// that crashed or timed out a FunctionError, the rest a SystemError); the message's first
    /// line is the message, the lines after it (a handler's stack trace) the stacktrace.
    pub(crate) fn of(failure: &faasbox_core::failure::Failure) -> Self {
        use faasbox_core::failure::FailureKind as K;
        let kind = match (failure.code.as_str(), failure.kind) {
            (INPUT_ERROR, _) => INPUT_ERROR,
            (FUNCTION_ERROR, _) => FUNCTION_ERROR,
            (_, K::Invalid | K::TooLarge) => INPUT_ERROR,
            (_, K::FunctionFailed | K::FunctionTimeout) => FUNCTION_ERROR,
            _ => SYSTEM_ERROR,
        };
        let (message, stack) = split_stack(&failure.message);
        InvocationError {
            kind: kind.to_owned(),
            message: message.to_owned(),
            stacktrace: stack.lines().map(str::to_owned).collect(),
        }
    }
}

/// A handler error's message and its stack trace: Python's trace starts at its `Traceback`
/// line, Node.js's at the first `    at …` line; a message may span lines itself.
fn split_stack(text: &str) -> (&str, &str) {
    const PYTHON: &str = "\nTraceback (most recent call last):";
    if let Some(at) = text.find(PYTHON) {
        return (&text[..at], &text[at + 1..]);
    }
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if offset > 0 && line.starts_with("    at ") {
            return (text[..offset].trim_end_matches('\n'), &text[offset..]);
        }
        offset += line.len();
    }
    (text, "")
}

/// A run's logs, split by stream (lines the function sent to the log endpoint and the agent's
/// own count as stdout).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct Logs {
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
}

impl Logs {
    pub(crate) fn of(lines: &[LogLine]) -> Self {
        let mut logs = Logs::default();
        for line in lines {
            match line.stream {
                LogStream::Stderr => logs.stderr.push(line.line.clone()),
                LogStream::Stdout | LogStream::Function | LogStream::Agent => {
                    logs.stdout.push(line.line.clone())
                }
            }
        }
        logs
    }
}

/// Dispatch's `Run`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Run {
    /// The run's id: the faasbox invocation id (`faasbox invocation get`).
    pub name: String,
    pub function_name: String,
    pub function_id: String,
    pub blocking: bool,
    pub input: Box<RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Box<RawValue>>,
    pub logs: Logs,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<InvocationError>,
    pub status: &'static str,
    pub reason: Vec<String>,
    pub secrets: Vec<String>,
    pub services: Vec<String>,
    pub tags: Vec<Tag>,
    pub executed_time: i64,
    pub finished_time: i64,
    /// The CloudEvent (without its data) that caused the run (a subscription's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<serde_json::Value>,
    /// The HTTP request that caused the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_context: Option<serde_json::Value>,
}

/// A run as a client sends it: only what faasbox reads of it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RunRequest {
    #[serde(default)]
    pub blocking: bool,
    #[serde(default)]
    pub input: Option<Box<RawValue>>,
    #[serde(default)]
    pub function_name: Option<String>,
    #[serde(default)]
    pub secrets: Vec<String>,
    #[serde(default)]
    pub services: Vec<String>,
}

/// Dispatch's `Tag`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Tag {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

/// Status words of Dispatch's `Status`.
pub(crate) mod status {
    pub const INITIALIZED: &str = "INITIALIZED";
    pub const CREATING: &str = "CREATING";
    pub const READY: &str = "READY";
    pub const ERROR: &str = "ERROR";
}

#[cfg(test)]
mod tests {
    use super::*;
    use faasbox_core::failure::{Failure, FailureKind};

    #[test]
    fn a_handlers_error_keeps_its_class_and_its_stack_apart() {
        let failure = Failure::new(
            FailureKind::FunctionFailed,
            INPUT_ERROR,
            "ValueError: no name\nTraceback (most recent call last):\n  File \"h.py\", line 3",
        );
        let error = InvocationError::of(&failure);
        assert_eq!(error.kind, INPUT_ERROR);
        assert_eq!(error.message, "ValueError: no name");
        assert_eq!(error.stacktrace.len(), 2);
        let crashed = Failure::new(
            FailureKind::FunctionFailed,
            faasbox_core::failure::codes::FUNCTION_CRASHED,
            "the instance died",
        );
        assert_eq!(InvocationError::of(&crashed).kind, FUNCTION_ERROR);
        let node = Failure::new(
            FailureKind::FunctionFailed,
            FUNCTION_ERROR,
            "Error: two\nlines\n    at handle (/function/h.js:2:9)\n    at run (shim.js:1:1)",
        );
        let error = InvocationError::of(&node);
        assert_eq!(error.message, "Error: two\nlines");
        assert_eq!(error.stacktrace.len(), 2, "{error:?}");
        let python = Failure::new(
            FailureKind::FunctionFailed,
            FUNCTION_ERROR,
            "KeyError: 'a\nb'\nTraceback (most recent call last):\n  File \"h.py\", line 1",
        );
        let error = InvocationError::of(&python);
        assert_eq!(error.message, "KeyError: 'a\nb'");
        assert_eq!(error.stacktrace[0], "Traceback (most recent call last):");
        assert_eq!(
            InvocationError::of(&Failure::internal("disk")).kind,
            SYSTEM_ERROR
        );
        assert_eq!(
            InvocationError::of(&Failure::invalid("not JSON")).kind,
            INPUT_ERROR
        );
    }

    #[test]
    fn logs_split_by_stream() {
        let line = |stream, text: &str| LogLine {
            ts_ms: 0,
            stream,
            line: text.to_owned(),
        };
        let logs = Logs::of(&[
            line(LogStream::Stdout, "out"),
            line(LogStream::Stderr, "err"),
            line(LogStream::Function, "log"),
        ]);
        assert_eq!(logs.stdout, ["out", "log"]);
        assert_eq!(logs.stderr, ["err"]);
    }
}

/// Unix seconds of an RFC 3339 time as faasbox stores them (0 when it cannot be read).
pub(crate) fn unix_seconds(rfc3339: &str) -> i64 {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .unwrap_or_default()
}

/// A stable id for `namespace`'s `kind` named `name` (Dispatch's `id` is a UUID; faasbox names
/// things, so the id is derived from the name and stays the same across updates).
pub(crate) fn id_of(namespace: &str, kind: &str, name: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{namespace}\0{kind}\0{name}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_sha1_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// A reason as Dispatch lists it: none, or the one sentence.
pub(crate) fn reasons(reason: &str) -> Vec<String> {
    if reason.is_empty() {
        Vec::new()
    } else {
        vec![reason.to_owned()]
    }
}

/// Dispatch's `BaseImage`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BaseImage {
    pub name: String,
    pub docker_url: String,
    pub language: String,
    pub status: String,
    pub reason: Vec<String>,
    pub tags: Vec<Tag>,
    pub id: String,
    pub kind: &'static str,
    pub created_time: i64,
    pub modified_time: i64,
}

impl BaseImage {
    pub(crate) fn of(
        namespace: &str,
        view: faasbox_core::code::base_images::BaseImageView,
    ) -> Self {
        BaseImage {
            id: id_of(namespace, "BaseImage", &view.name),
            name: view.name,
            docker_url: view.image,
            language: view.language.as_str().to_owned(),
            status: view.status,
            reason: reasons(&view.reason),
            tags: Vec::new(),
            kind: "BaseImage",
            created_time: unix_seconds(&view.created),
            modified_time: unix_seconds(&view.modified),
        }
    }
}

/// A base image as a client sends it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BaseImageRequest {
    pub name: String,
    pub docker_url: String,
    pub language: String,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// Dispatch's `Schema`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Schema {
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    pub input: Option<serde_json::Value>,
    #[serde(default, rename = "out", skip_serializing_if = "Option::is_none")]
    pub output: Option<serde_json::Value>,
}

/// Dispatch's `Function`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Function {
    pub name: String,
    pub image: String,
    pub handler: String,
    pub schema: Schema,
    pub secrets: Vec<String>,
    pub services: Vec<String>,
    /// Milliseconds; 0 when the function keeps the server's default.
    pub timeout: u64,
    pub tags: Vec<Tag>,
    pub status: String,
    pub reason: Vec<String>,
    pub id: String,
    pub faas_id: String,
    pub kind: &'static str,
    /// The built image's digest (Dispatch: the image's URL in its registry).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_image_url: Option<String>,
    pub created_time: i64,
    pub modified_time: i64,
}

impl Function {
    pub(crate) fn of(
        namespace: &str,
        view: faasbox_core::code::functions::CodeFunctionView,
    ) -> Self {
        let schema = view.schema.unwrap_or_default();
        let timeout = view
            .timeout
            .map(|t| u64::try_from(t.0.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or_default();
        Function {
            id: id_of(namespace, "Function", &view.name),
            faas_id: id_of(namespace, "faas", &view.name),
            name: view.name,
            image: view.image,
            handler: view.handler,
            schema: Schema {
                input: schema.input,
                output: schema.output,
            },
            secrets: view.secrets,
            services: view.services,
            timeout,
            tags: Vec::new(),
            status: view.status,
            reason: reasons(&view.reason),
            kind: "Function",
            function_image_url: view.digest,
            created_time: unix_seconds(&view.created),
            modified_time: unix_seconds(&view.modified),
        }
    }
}

/// A function as a client sends it (`POST /v1/function`, `PUT /v1/function/{name}`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FunctionRequest {
    pub name: String,
    pub image: String,
    pub handler: String,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub schema: Option<Schema>,
    #[serde(default)]
    pub secrets: Vec<String>,
    #[serde(default)]
    pub services: Vec<String>,
    /// Milliseconds.
    #[serde(default)]
    pub timeout: Option<u64>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// Dispatch's `SystemDependencies`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct SystemDependencies {
    #[serde(default)]
    pub packages: Vec<faasbox_core::code::image_builds::SystemPackage>,
}

/// Dispatch's `Image`: an image with dependencies, built from a base image.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Image {
    pub name: String,
    pub base_image_name: String,
    /// The built image among the namespace's images (its name there is the image's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker_url: Option<String>,
    pub language: String,
    pub runtime_dependencies: faasbox_core::code::image_builds::RuntimeDependencies,
    pub system_dependencies: SystemDependencies,
    pub status: String,
    pub reason: Vec<String>,
    pub tags: Vec<Tag>,
    pub id: String,
    pub kind: &'static str,
    pub created_time: i64,
    pub modified_time: i64,
}

impl Image {
    pub(crate) fn of(
        namespace: &str,
        view: faasbox_core::code::image_builds::ImageBuildView,
    ) -> Self {
        Image {
            id: id_of(namespace, "Image", &view.name),
            docker_url: view.digest.as_ref().map(|_| view.name.clone()),
            name: view.name,
            base_image_name: view.base_image,
            language: view.language.as_str().to_owned(),
            runtime_dependencies: view.runtime_dependencies,
            system_dependencies: SystemDependencies {
                packages: view.system_packages,
            },
            status: view.status,
            reason: reasons(&view.reason),
            tags: Vec::new(),
            kind: "Image",
            created_time: unix_seconds(&view.created),
            modified_time: unix_seconds(&view.modified),
        }
    }
}

/// An image as a client sends it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ImageRequest {
    pub name: String,
    pub base_image_name: String,
    #[serde(default)]
    pub runtime_dependencies: Option<faasbox_core::code::image_builds::RuntimeDependencies>,
    #[serde(default)]
    pub system_dependencies: Option<SystemDependencies>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}
