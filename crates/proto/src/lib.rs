//! The protocol between the faasbox platform and the agent that runs as PID 1 inside every
//! function container.
//!
//! The platform writes an [`AgentConfig`] to `<control dir>/agent.json` before the container
//! starts, bind-mounts the control directory read-only at [`CONTAINER_CONTROL_DIR`], and then
//! speaks HTTP/1.1 to the agent over the Unix socket [`AGENT_SOCKET_NAME`] the agent creates in
//! [`CONTAINER_SOCKET_DIR`] (a directory of the instance's size-bounded writable space, the
//! only writable mount below the control directory). With [`AgentConfig::tcp_listen`] the agent
//! serves the same routes on TCP as well, where every request must carry
//! `Authorization: Bearer <`[`AgentConfig::tcp_secret`]`>` (401 otherwise); [`AgentEndpoint`]
//! says which way the platform reaches an agent:
//!
//! | request | answer |
//! |---|---|
//! | `GET /v1/ready` | `200` [`ReadyReport`] once the function can take calls; `503` [`ReadyReport`] when it never became ready (its process exited, or [`AgentConfig::ready_timeout_ms`] passed) |
//! | `POST /v1/invoke` with headers [`HEADER_ACTION_ID`], [`HEADER_DEADLINE`]; body: the input | `200` [`InvokeOutcome`] (a function failure is an outcome too, and so is a call stopped at its deadline, [`InvokeStatus::Timeout`]; a non-200 answer means the agent itself failed) |
//! | the same with [`HEADER_CALL_FILES`]` = 1`; body: a [`CallEnvelope`] (the files, the input, and the HTTP request behind a route's call) | the same; a file that cannot be placed is the catchable [`CODE_CALL_FILES`] |
//! | `POST /v1/cancel?aid=ID` | `200` [`CancelReport`]: the call is cancelled (the function gets its `DELETE`), with the logs it wrote so far |
//! | `GET /v1/logs?aid=ID&after=N` | `200` [`LogsReport`]: the lines call `ID` has produced so far after its first `N` (at most [`MAX_LOGS_LINES`] per answer), while it runs; for a call not in flight (unknown or ended) no lines and `running: false`. A call's lines are numbered as its [`InvokeOutcome::logs`] numbers them, so a caller that read `N` lines while the call ran takes the outcome's lines after the first `N` |
//!
//! Every contract (http, cmd, file, openwhisk, code) is served behind this one protocol; what
//! differs lives in the agent:
//!
//! | contract | the function is | a call |
//! |---|---|---|
//! | http | a server on `127.0.0.1:`[`AgentConfig::function_port`] | `POST /` with `Direktiv-*` headers (and a route's caller's headers with `Faasbox-Http-*`: [`HttpForward`]) |
//! | cmd | the command lines each call brings (direktiv-cmd) | the commands run one by one |
//! | file | the image's entrypoint ([`AgentConfig::command`]) | run to completion, input and output in [`FileContractConfig::data_dir`] |
//! | openwhisk | `/action/exec` ([`AgentConfig::openwhisk`]) | run per call by the action proxy |
//! | code | a handler built from code ([`AgentConfig::code`]) | python3, nodejs: `handle(context, payload)` in a warm worker running the agent's own shim, one call at a time; shell: the script per call (payload on stdin, result on the last stdout line) |
//!
//! ## Files of a call
//!
//! A call may bring files (a flow action's `files`). They travel inside the invoke request, not
//! through the control directory: the platform never writes into a directory the container can
//! also write (no symlink games), and nothing is left to clean up when a call dies half-way.
//! The agent writes them as root, owned by the function's user ([`AgentConfig::user`]), before
//! the function runs, refusing names that are not [`safe_file_name`]s. Where they land:
//!
//! | contract | directory | how the function finds it |
//! |---|---|---|
//! | http | the call's temp dir `<temp_root>/<aid>` | header `Direktiv-TempDir` |
//! | cmd | the same directory | it is the commands' working directory (and `HOME`) |
//! | file | `<data_dir>/files` (`/direktiv-data/files`), emptied with the data dir | environment `DIREKTIV_TEMPDIR` |
//! | openwhisk | the call's temp dir `<temp_root>/<aid>` (made only when there are files) | environment `DIREKTIV_TEMPDIR` of the activation |
//! | code | not placed (a line in the call's log says so): a function built from code takes JSON only | — |

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Where the platform's per-instance control directory is mounted (read-only) inside the
/// container.
pub const CONTAINER_CONTROL_DIR: &str = "/.faasbox";
/// Where the directory of the agent's socket is mounted inside the container (writable, part of
/// the instance's bounded disk).
pub const CONTAINER_SOCKET_DIR: &str = "/.faasbox/sock";
/// Where the agent makes the per-call temp directories unless its configuration says otherwise
/// (`AgentConfig::temp_root`). Under runc and crun a directory of the instance's disk is
/// mounted there, so they are made on that tmpfs directly, not through the overlay.
pub const DEFAULT_TEMP_ROOT: &str = "/tmp/faasbox-calls";
/// The agent's Unix socket, relative to [`CONTAINER_SOCKET_DIR`].
pub const AGENT_SOCKET_NAME: &str = "agent.sock";
/// The agent's configuration file, relative to the control directory.
pub const AGENT_CONFIG_NAME: &str = "agent.json";
/// Where the agent binary is bind-mounted (read-only) for running it as PID 1.
pub const CONTAINER_AGENT_PATH: &str = "/.faasbox-agent";
/// The agent is mounted here as well, so Direktiv's `cmd: /usr/share/direktiv/direktiv-cmd` works.
pub const DIREKTIV_CMD_PATH: &str = "/usr/share/direktiv/direktiv-cmd";

/// Header carrying the unique id of one call (becomes `Direktiv-ActionID`).
pub const HEADER_ACTION_ID: &str = "faasbox-action-id";
/// Header carrying the call's deadline as RFC 3339 (becomes `Direktiv-Deadline`).
pub const HEADER_DEADLINE: &str = "faasbox-deadline";

/// Header of a `POST /v1/invoke` whose body is a [`CallEnvelope`] (value `1`).
pub const HEADER_CALL_FILES: &str = "faasbox-call-files";

/// The catchable error code of a call whose files could not be placed (bad name, bad archive).
pub const CODE_CALL_FILES: &str = "faasbox.flow.files";

/// The catchable error code of a function that answered non-2xx without an error code.
pub const CODE_CONTAINER_FAILED: &str = "container failed";
/// direktiv-cmd: a command with `stop: true` failed.
pub const CODE_CMD_EXECUTION: &str = "io.direktiv.error.execution";
/// The call filled the instance's bounded disk (its writable root, temp dirs, or the file
/// contract's data directory).
pub const CODE_DISK_FULL: &str = "faasbox.function.disk_full";

/// Which function contract the agent speaks to the function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Contract {
    /// Direktiv HTTP functions: `POST` to 127.0.0.1:8080 with `Direktiv-*` headers.
    #[default]
    Http,
    /// Direktiv generic containers (`direktiv-cmd`): the agent runs the commands itself.
    Cmd,
    /// Direktiv isolates: `/direktiv-data/data.in` → entrypoint → `data.out`.
    File,
    /// OpenWhisk docker actions: `/init` + `/run` action proxy.
    Openwhisk,
    /// Functions built from code (Dispatch's function manager): the agent keeps a warm worker
    /// of the language's interpreter running faasbox's own shim, which calls the handler as
    /// `handle(context, payload)`. Configured by [`AgentConfig::code`].
    Code,
}

impl Contract {
    /// The contract's name, as functions and the API write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Contract::Http => "http",
            Contract::Cmd => "cmd",
            Contract::File => "file",
            Contract::Openwhisk => "openwhisk",
            Contract::Code => "code",
        }
    }
}

/// The numeric user the function process runs as (the agent itself stays root in the
/// container, with the container's reduced capabilities).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessUser {
    /// The user id.
    pub uid: u32,
    /// The primary group id.
    pub gid: u32,
    /// Supplementary group ids.
    #[serde(default)]
    pub additional_gids: Vec<u32>,
}

/// Everything the agent needs to know, written by the platform to `agent.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentConfig {
    /// How the function is called.
    pub contract: Contract,
    /// The function process: the image's entrypoint + cmd (or the function's `cmd`).
    /// Empty for contracts that need no long-running process (cmd).
    pub command: Vec<String>,
    /// Working directory of the function process.
    #[serde(default = "default_workdir")]
    pub workdir: String,
    /// Who the function process runs as; `None` is root.
    #[serde(default)]
    pub user: Option<ProcessUser>,
    /// How long the function may take to start accepting calls.
    #[serde(default = "default_ready_timeout_ms")]
    pub ready_timeout_ms: u64,
    /// The port the function listens on (http contract).
    #[serde(default = "default_function_port")]
    pub function_port: u16,
    /// The port of the log endpoint the agent serves to the function.
    #[serde(default = "default_log_port")]
    pub log_port: u16,
    /// Parent of the per-call temp directories (`Direktiv-TempDir`).
    #[serde(default = "default_temp_root")]
    pub temp_root: String,
    /// "namespace/function", for messages and OpenWhisk's `__OW_NAMESPACE`/`__OW_ACTION_NAME`.
    #[serde(default)]
    pub function: String,
    /// The function's revision in service (1 when created, one more per deploy or update);
    /// OpenWhisk actions see `__OW_ACTION_VERSION=0.0.<this>`, as OpenWhisk numbers updates.
    #[serde(default = "default_function_version")]
    pub function_version: u64,
    /// openwhisk contract: the code the agent initialises the action proxy with at start
    /// (`None`: a blackbox image that already has `/action/exec`, or an explicit `/init` later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openwhisk: Option<OpenWhiskInit>,
    /// Move loopback TCP bytes (to the function, from its log calls) through blocking threads
    /// instead of the async reactor. Set for runsc: the gVisor release Debian ships loses
    /// readiness wakeups on its loopback TCP sockets, which stalls an async exchange forever.
    #[serde(default)]
    pub blocking_tcp: bool,
    /// file contract: where the call's data lives and how much it may write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileContractConfig>,
    /// The size of the instance's writable space (root filesystem changes, temp dirs, the file
    /// contract's data directory), for the `disk_full` error's message. 0: not known.
    #[serde(default)]
    pub disk_limit_bytes: u64,
    /// Also serve the platform on this TCP address (besides the Unix socket), for drivers whose
    /// agent the platform cannot reach through a socket file. Needs [`Self::tcp_secret`]. The
    /// agent's `--tcp ADDR` option overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_listen: Option<std::net::SocketAddr>,
    /// The per-instance secret every request over TCP must present as
    /// `Authorization: Bearer <secret>`. It lives only here, in the read-only control
    /// directory, never in the agent's arguments or environment (which the function can read in
    /// `/proc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_secret: Option<AgentSecret>,
    /// code contract: the language and handler of a function built from code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<CodeConfig>,
}

/// The language of a function built from code: which interpreter the agent runs its shim with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// `python3` runs `handle(context, payload)` of a module (`module.func`).
    Python3,
    /// `node` (or `nodejs`) runs the function a module exports (`module` or `module.func`);
    /// it may be async or return a Promise.
    Nodejs,
    /// `/bin/sh` runs the script per call: the payload on stdin, the JSON result on stdout.
    Shell,
}

impl Language {
    /// The language's name, as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Python3 => "python3",
            Language::Nodejs => "nodejs",
            Language::Shell => "shell",
        }
    }
}

impl std::str::FromStr for Language {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "python3" | "python" => Ok(Language::Python3),
            "nodejs" | "node" | "js" => Ok(Language::Nodejs),
            "shell" | "sh" => Ok(Language::Shell),
            other => Err(format!(
                "unknown language '{other}': use python3, nodejs or shell"
            )),
        }
    }
}

/// The code contract's configuration.
///
/// The call's input is always the envelope `{"context": {…}, "payload": <the input>}`, which
/// the platform builds (`context.secrets`, `serviceBindings`, `event`, `httpContext`); the agent
/// adds `context.deadline` (RFC 3339) from the call's deadline and passes both to the handler.
/// A handler's exception of the input class (Python `ValueError`/`TypeError`, Node.js
/// `TypeError`) ends the call as the error [`CODE_INPUT_ERROR`], any other as
/// [`CODE_FUNCTION_ERROR`]; the message is the exception's, followed by its stack trace.
///
/// python3 and nodejs: the agent runs one warm worker per instance (the module stays loaded
/// between calls; calls take turns) and answers `GET /v1/ready` with 503 and the interpreter's
/// own message when the module does not load (a syntax error with its file and line), the
/// handler is missing, or it cannot take `(context, payload)` (Python: the signature must bind
/// two positional arguments; Node.js: at most two declared parameters). The output is the
/// handler's return value as JSON (`None`/`undefined` is `null`, a Promise or coroutine is
/// awaited; a value that is not JSON is a [`CODE_FUNCTION_ERROR`]). shell: the script runs per
/// call with the payload on stdin and the context (JSON) in `FAASBOX_CONTEXT`; the last
/// non-blank stdout line is the output and must be JSON (none: `null`); a non-zero exit is a
/// [`CODE_FUNCTION_ERROR`] with stderr's end; ready checks the script with `sh -n`. In all,
/// stdout and stderr are the call's log lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeConfig {
    /// Which interpreter runs the handler.
    pub language: Language,
    /// python3: `module` or `module.func` (default function `handle`), the module a file of
    /// [`Self::dir`] (`hello` is `hello.py`; `pkg.mod.func` is `pkg/mod.py`'s `func`; a dotted
    /// name that is a module itself, `pkg.mod`, is its `handle`); nodejs: `module` (the
    /// function it exports, or its `handle`) or `module.func`, `module` as `require` finds it in
    /// [`Self::dir`] (an ES module's default export, or the named export); shell: the script's
    /// path relative to [`Self::dir`].
    pub handler: String,
    /// The directory the code was placed in (the working directory of the worker).
    #[serde(default = "default_code_dir")]
    pub dir: String,
}

/// Where functions built from code have their code ([`CodeConfig::dir`]).
pub const CODE_DIR: &str = "/function";

fn default_code_dir() -> String {
    CODE_DIR.to_owned()
}

/// code contract: the handler raised an error of the input class (Dispatch's `InputError`).
pub const CODE_INPUT_ERROR: &str = "InputError";
/// code contract: the handler raised any other error (Dispatch's `FunctionError`).
pub const CODE_FUNCTION_ERROR: &str = "FunctionError";

/// The shortest [`AgentSecret`] the agent accepts, in bytes.
pub const MIN_AGENT_SECRET_LEN: usize = 16;

/// A per-instance secret the platform presents to an agent it reaches over TCP. Its `Debug`
/// never shows it, and its bytes are wiped when it is dropped.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AgentSecret(String);

/// Equality is [`AgentSecret::matches`], in constant time too.
impl PartialEq for AgentSecret {
    fn eq(&self, other: &Self) -> bool {
        self.matches(other.0.as_bytes())
    }
}

impl Eq for AgentSecret {}

impl AgentSecret {
    /// Wraps `secret`.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for the `Authorization` header. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is the secret, in time that depends only on the lengths (every byte
    /// is compared, with no early exit).
    pub fn matches(&self, presented: &[u8]) -> bool {
        let own = self.0.as_bytes();
        let mut difference = u8::from(own.len() != presented.len());
        for (index, byte) in own.iter().enumerate() {
            let other = presented.get(index).copied().unwrap_or(!byte);
            difference |= byte ^ other;
        }
        difference == 0
    }

    /// Whether the `Authorization` header value `header` presents the secret as a bearer token.
    pub fn authorizes(&self, header: Option<&[u8]>) -> bool {
        match header.and_then(|value| value.strip_prefix(b"Bearer ")) {
            Some(token) => self.matches(token),
            None => false,
        }
    }
}

impl std::fmt::Debug for AgentSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AgentSecret(<redacted>)")
    }
}

impl Drop for AgentSecret {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// Where the platform reaches an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentEndpoint {
    /// A Unix socket on the host (the runc driver's); file permissions protect it.
    Unix(std::path::PathBuf),
    /// A TCP address; every request carries the instance's secret.
    Tcp {
        /// Where the agent listens.
        addr: std::net::SocketAddr,
        /// What every request must carry as its bearer token.
        secret: AgentSecret,
    },
}

impl std::fmt::Display for AgentEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AgentEndpoint::Unix(path) => write!(f, "unix:{}", path.display()),
            AgentEndpoint::Tcp { addr, .. } => write!(f, "tcp:{addr}"),
        }
    }
}

/// The `value` of an OpenWhisk `/init`, as the platform sends it at instance start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenWhiskInit {
    /// Text code, or base64 of a zip when `binary`.
    pub code: String,
    /// Whether `code` is the base64 of a zip archive rather than text.
    #[serde(default)]
    pub binary: bool,
    /// The action's entry function (OpenWhisk's `main`; the runtime's default when empty).
    #[serde(default)]
    pub main: String,
    /// Environment variables for the action.
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
    /// The action's name.
    #[serde(default)]
    pub name: String,
}

/// Settings of the file contract (Direktiv isolates).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileContractConfig {
    /// The data directory (`/direktiv-data`); the platform mounts a directory of the instance's
    /// size-bounded writable space there.
    #[serde(default = "default_file_data_dir")]
    pub data_dir: String,
    /// The bound of that space, for error messages.
    #[serde(default)]
    pub disk_limit_bytes: u64,
}

fn default_file_data_dir() -> String {
    "/direktiv-data".into()
}

fn default_function_version() -> u64 {
    1
}
fn default_workdir() -> String {
    "/".into()
}
fn default_ready_timeout_ms() -> u64 {
    120_000
}
fn default_function_port() -> u16 {
    8080
}
fn default_log_port() -> u16 {
    8889
}
fn default_temp_root() -> String {
    DEFAULT_TEMP_ROOT.into()
}

/// The body of a `POST /v1/invoke` sent with [`HEADER_CALL_FILES`].
#[derive(Debug, Serialize, Deserialize)]
pub struct CallEnvelope {
    /// The files the agent places in the call's directory before the function runs.
    #[serde(default)]
    pub files: Vec<CallFile>,
    /// The call's input JSON, unparsed.
    pub input: Box<RawValue>,
    /// The HTTP request behind the call (a call through an HTTP route), which the http
    /// contract forwards to the function; other contracts ignore it. An agent that predates
    /// it ignores it too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpForward>,
}

/// The request method of a call through an HTTP route, on the http contract's `POST /`.
pub const HEADER_HTTP_METHOD: &str = "Faasbox-Http-Method";
/// The path the route matched, on the http contract's `POST /`.
pub const HEADER_HTTP_PATH: &str = "Faasbox-Http-Path";
/// The raw query string (without `?`, possibly empty), on the http contract's `POST /`.
pub const HEADER_HTTP_QUERY: &str = "Faasbox-Http-Query";

/// The HTTP request behind a call of a Direktiv HTTP function through a route: the agent adds
/// its [`forwardable_header`]s and [`HEADER_HTTP_METHOD`], [`HEADER_HTTP_PATH`],
/// [`HEADER_HTTP_QUERY`] to its `POST /` to the function.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpForward {
    /// The request's method, upper case.
    pub method: String,
    /// The path the route matched.
    pub path: String,
    /// The query string as sent, without `?`.
    #[serde(default)]
    pub query: String,
    /// The caller's headers (names lower case); those that are not [`forwardable_header`]s
    /// are dropped by the agent.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
}

/// Hop-by-hop headers (RFC 9110 7.6.1, and the old `keep-alive`, `proxy-connection`): they
/// describe one connection, never a request or an answer passed on.
pub const HOP_BY_HOP_HEADERS: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Whether a caller's header `name` (any case) may be forwarded to a Direktiv HTTP function:
/// not a hop-by-hop one, not `host`, `content-type` or `content-length` (the agent's request
/// has its own), and not one of the names the platform speaks with (`Direktiv-*`,
/// `Faasbox-*`), so a caller can never forge them.
pub fn forwardable_header(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !(lower.starts_with("direktiv-")
        || lower.starts_with("faasbox-")
        || matches!(lower.as_str(), "host" | "content-type" | "content-length")
        || HOP_BY_HOP_HEADERS.contains(&lower.as_str()))
}

/// One file of a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallFile {
    /// A [`safe_file_name`], relative to the call's directory.
    pub name: String,
    /// Whether the bytes are a file or an archive to unpack.
    pub kind: CallFileKind,
    /// The bytes, base64 (standard alphabet, padded). May hold secrets: never log them.
    pub data: String,
}

/// What the agent does with a [`CallFile`]'s bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallFileKind {
    /// Written as the file `name` (mode 0644).
    #[serde(rename = "file")]
    File,
    /// A tar archive unpacked into the directory `name`.
    #[serde(rename = "tar")]
    Tar,
    /// A gzip-compressed tar archive unpacked into the directory `name`.
    #[serde(rename = "tar.gz")]
    TarGz,
}

/// Why `name` cannot name a file inside a call's directory, or `None` when it can: it must be
/// a non-empty relative path (`sub/dir/name` is fine) without NUL bytes and without `.` or `..`
/// components.
pub fn file_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("a file name must not be empty");
    }
    if name.contains('\0') {
        return Some("a file name must not contain NUL bytes");
    }
    if name.starts_with('/') {
        return Some("a file name must be relative (no leading `/`)");
    }
    if name.split('/').any(|part| part == ".." || part == ".") {
        return Some("a file name must not contain `.` or `..` components");
    }
    if name.split('/').all(str::is_empty) {
        return Some("a file name must name a file");
    }
    None
}

/// Whether `name` can name a file inside a call's directory (see [`file_name_problem`]).
pub fn safe_file_name(name: &str) -> bool {
    file_name_problem(name).is_none()
}

/// Where a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    /// The function process's standard output.
    Stdout,
    /// The function process's standard error.
    Stderr,
    /// Sent by the function to the log endpoint (`/log?aid=…`).
    Function,
    /// Written by the agent itself (e.g. "function process exited with status 1").
    Agent,
}

/// One log line attached to a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LogLine {
    /// Milliseconds since the Unix epoch.
    pub ts_ms: u64,
    /// Where it came from.
    pub stream: LogStream,
    /// The text, without its line end.
    pub line: String,
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InvokeStatus {
    /// `output` holds the function's JSON output.
    Ok,
    /// A catchable error: `code` and `message`.
    Error,
    /// An uncatchable failure: `message` only.
    Crash,
    /// The call's deadline passed first: the agent stopped it (a per-call process's group is
    /// killed; an http function gets its `DELETE`). `message` says what was still running. The
    /// agent owns the deadline, so a call past its timeout is always this, never a crash.
    Timeout,
}

/// The agent's answer to `POST /v1/invoke`. `Output` is how the output JSON is held: boxed
/// (the default), borrowed from the answer's bytes while it is read, or those bytes sliced
/// (what the platform keeps, so that a large output is never copied).
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound(
    serialize = "Output: Serialize",
    deserialize = "Output: Deserialize<'de>"
))]
pub struct InvokeOutcome<Output = Box<RawValue>> {
    /// How the call ended; it says which of the other fields are set.
    pub status: InvokeStatus,
    /// The output JSON, unparsed (a non-JSON body is already a base64 JSON string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Output>,
    /// The error code of an `error` outcome (the function's own, or `faasbox.function.…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// What went wrong, for every outcome but `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Every line attached to this call: its log endpoint lines, and the process's stdout and
    /// stderr while the call ran (plus anything printed while no call was running before it).
    #[serde(default)]
    pub logs: Vec<LogLine>,
}

impl<Output> InvokeOutcome<Output> {
    /// The same outcome with its output held another way.
    pub fn map_output<Other>(mut self, f: impl FnOnce(Output) -> Other) -> InvokeOutcome<Other> {
        let output = self.output.take().map(f);
        self.with_output(output)
    }

    /// The same outcome with `output` instead of its own.
    pub fn with_output<Other>(self, output: Option<Other>) -> InvokeOutcome<Other> {
        InvokeOutcome {
            status: self.status,
            output,
            code: self.code,
            message: self.message,
            logs: self.logs,
        }
    }
}

/// The agent's answer to `GET /v1/ready`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReadyReport {
    /// Whether the function accepts calls.
    pub ready: bool,
    /// Why not, when not ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What the function printed so far (helps explain a start that failed).
    #[serde(default)]
    pub logs: Vec<LogLine>,
}

/// The most lines one answer to `GET /v1/logs` holds; a caller asks again from its `next`.
pub const MAX_LOGS_LINES: usize = 1000;

/// The agent's answer to `GET /v1/logs?aid=ID&after=N`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsReport {
    /// The call's lines after its first `N`, in order (at most [`MAX_LOGS_LINES`]).
    #[serde(default)]
    pub lines: Vec<LogLine>,
    /// How many of the call's lines the caller has once it has these: the `after` of the next
    /// request (`N` when there are no new ones).
    pub next: u64,
    /// Whether the call is in flight. Once it is not, its remaining lines are in its outcome.
    pub running: bool,
}

/// The agent's answer to `POST /v1/cancel`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CancelReport {
    /// The lines the cancelled call printed up to its cancel.
    #[serde(default)]
    pub logs: Vec<LogLine>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_keeps_output_bytes_verbatim() {
        let text = r#"{"status":"ok","output":{"a": [1, 2]},"logs":[]}"#;
        let outcome: InvokeOutcome = serde_json::from_str(text).unwrap();
        assert_eq!(outcome.status, InvokeStatus::Ok);
        assert_eq!(outcome.output.unwrap().get(), r#"{"a": [1, 2]}"#);
    }

    #[test]
    fn file_names_stay_inside_the_directory() {
        for good in ["a", "a.txt", "sub/dir/f", "..a", "a..", ".hidden"] {
            assert!(safe_file_name(good), "{good}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "..",
            "a/../b",
            "./a",
            "a/.",
            "a\0b",
            "/",
            "//",
        ] {
            assert!(file_name_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn call_file_kinds_have_their_wire_names() {
        let file: CallFile =
            serde_json::from_str(r#"{"name":"x","kind":"tar.gz","data":""}"#).unwrap();
        assert_eq!(file.kind, CallFileKind::TarGz);
        let json = serde_json::to_string(&CallFileKind::File).unwrap();
        assert_eq!(json, r#""file""#);
    }

    #[test]
    fn envelopes_without_files_or_http_read_and_http_forward_round_trips() {
        let old: CallEnvelope = serde_json::from_str(r#"{"files":[],"input":{"a":1}}"#).unwrap();
        assert!(old.http.is_none());
        let text = serde_json::to_string(&old).unwrap();
        assert!(!text.contains("http"), "{text}");
        let forward = HttpForward {
            method: "POST".into(),
            path: "/hooks/x".into(),
            query: "a=1".into(),
            headers: vec![("x-github-event".into(), "push".into())],
        };
        let text = serde_json::to_string(&CallEnvelope {
            files: Vec::new(),
            input: RawValue::from_string("[1]".into()).unwrap(),
            http: Some(forward.clone()),
        })
        .unwrap();
        let read: CallEnvelope = serde_json::from_str(&text).unwrap();
        assert_eq!(read.http, Some(forward));
        let no_files: CallEnvelope =
            serde_json::from_str(r#"{"input":1,"http":{"method":"GET","path":"/"}}"#).unwrap();
        assert!(no_files.files.is_empty());
        assert_eq!(no_files.http.unwrap().query, "");
    }

    #[test]
    fn only_the_callers_own_headers_are_forwarded() {
        for kept in [
            "x-github-event",
            "X-Hub-Signature-256",
            "accept",
            "cookie",
            "user-agent",
        ] {
            assert!(forwardable_header(kept), "{kept}");
        }
        for dropped in [
            "Direktiv-ActionID",
            "direktiv-tempdir",
            "Faasbox-Http-Method",
            "faasbox-anything",
            "Content-Type",
            "content-length",
            "Host",
            "Connection",
            "transfer-encoding",
            "Upgrade",
            "te",
        ] {
            assert!(!forwardable_header(dropped), "{dropped}");
        }
    }

    #[test]
    fn config_defaults_fill_in() {
        let cfg: AgentConfig =
            serde_json::from_str(r#"{"contract":"http","command":["/bin/f"]}"#).unwrap();
        assert_eq!(cfg.function_port, 8080);
        assert_eq!(cfg.log_port, 8889);
        assert_eq!(cfg.workdir, "/");
        assert_eq!(cfg.ready_timeout_ms, 120_000);
    }

    #[test]
    fn agent_secret_matches_only_itself_and_never_shows() {
        let secret = AgentSecret::new("s3cret-s3cret-s3cret");
        assert!(secret.matches(b"s3cret-s3cret-s3cret"));
        for wrong in [
            &b""[..],
            b"s3cret-s3cret-s3cre",
            b"s3cret-s3cret-s3cret!",
            b"S3cret-s3cret-s3cret",
            b"s3cret-s3cret-s3creT",
        ] {
            assert!(!secret.matches(wrong), "{wrong:?}");
        }
        assert!(secret.authorizes(Some(b"Bearer s3cret-s3cret-s3cret")));
        assert!(!secret.authorizes(Some(b"bearer s3cret-s3cret-s3cret")));
        assert!(!secret.authorizes(Some(b"s3cret-s3cret-s3cret")));
        assert!(!secret.authorizes(None));
        assert_eq!(secret, AgentSecret::new("s3cret-s3cret-s3cret"));
        assert_ne!(secret, AgentSecret::new("s3cret-s3cret-s3creT"));

        let endpoint = AgentEndpoint::Tcp {
            addr: "127.0.0.1:9000".parse().unwrap(),
            secret: secret.clone(),
        };
        for shown in [
            format!("{secret:?}"),
            format!("{endpoint:?}"),
            format!("{endpoint:#?}"),
            endpoint.to_string(),
        ] {
            assert!(!shown.contains("s3cret"), "{shown}");
        }
        assert_eq!(endpoint.to_string(), "tcp:127.0.0.1:9000");
    }

    #[test]
    fn agent_config_reads_the_tcp_listener() {
        let cfg: AgentConfig = serde_json::from_str(
            r#"{"contract":"http","command":[],"tcp_listen":"0.0.0.0:7000","tcp_secret":"abc"}"#,
        )
        .unwrap();
        assert_eq!(cfg.tcp_listen, Some("0.0.0.0:7000".parse().unwrap()));
        assert!(cfg.tcp_secret.unwrap().matches(b"abc"));
        let cfg: AgentConfig = serde_json::from_str(r#"{"contract":"http","command":[]}"#).unwrap();
        assert!(cfg.tcp_listen.is_none() && cfg.tcp_secret.is_none());
    }
}
