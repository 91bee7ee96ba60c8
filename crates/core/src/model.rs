//! The function spec users deploy, its defaults and validation, and resource names.

use std::collections::BTreeMap;
use std::time::Duration;

use faasbox_driver::{Limits, RuntimeClass};
use faasbox_proto::{Contract, Language};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::bounds;

/// What a user deploys as a function (`PUT /api/v1/namespaces/{ns}/functions/{fn}`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FunctionSpec {
    /// A local image reference (see `faasbox image ls`).
    pub image: String,
    /// How the function is called: `http` (default), `cmd`, `file`, `openwhisk` or `code`.
    #[serde(default)]
    pub contract: Contract,
    /// Replaces the image's entrypoint and cmd; a string is split like a shell splits words.
    #[serde(default, deserialize_with = "string_or_list")]
    #[schema(schema_with = command_schema)]
    pub cmd: Vec<String>,
    /// Environment variables set for the function.
    #[serde(default)]
    pub envs: BTreeMap<String, String>,
    /// The memory, CPU and process limits of each instance: `small` (default), `medium` or `large`.
    #[serde(default)]
    pub size: Size,
    /// Per-call timeout: "30s", "2m", or a number of seconds.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// Which OCI runtime runs the instances: `runc` (default) or `runsc` (gVisor).
    #[serde(default = "default_runtime")]
    pub runtime: RuntimeClass,
    /// How many instances the function may have and how they are shared.
    #[serde(default)]
    pub scale: Scale,
    /// Outbound network through pasta.
    #[serde(default = "default_true")]
    pub network: bool,
    /// openwhisk contract: the action's code — text, or base64 of a zip with `binary: true`
    /// (as OpenWhisk's `/init` takes it). Absent for an image that has `/action/exec` already.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// openwhisk contract: `code` is a base64 zip archive with an `exec` at its root.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub binary: bool,
    /// openwhisk contract: the action's entry point name, passed to `/init` as `main`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main: Option<String>,
    /// The size of an instance's writable space ("64MiB", or bytes), for every contract: the
    /// root filesystem's changes, temp dirs, and the file contract's `/direktiv-data`. It is
    /// memory (a tmpfs), counted on top of the size's memory. Default
    /// [`DEFAULT_DISK_BYTES`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<ByteSize>,
    /// The namespace secrets this function's `input` template may use as `.secrets.NAME`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// The namespace's service instances this function gets (`context.serviceBindings.NAME`
    /// for the code contract; `.services.NAME` in the `input` template for the others).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<String>,
    /// A JSON template the call's input is built from (see `crate::template`), against
    /// `{"input": <request>, "secrets": {…}}`. Without it the request passes unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<serde_json::Value>,
    /// code contract: the language the function's code is written in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<Language>,
    /// code contract: the handler, e.g. `hello.handle` (see the agent's code contract).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
    /// JSON Schemas the input (`in`, the request before any template) and the output (`out`)
    /// are checked against, for every contract.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<CodeSchema>,
}

/// The JSON Schemas of a function's input and output (each optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeSchema {
    /// The schema the call's input (the payload) must match, else the call fails with
    /// `InputError` (422).
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    pub input: Option<serde_json::Value>,
    /// The schema the handler's output must match, else the call fails with `FunctionError`.
    #[serde(default, rename = "out", skip_serializing_if = "Option::is_none")]
    pub output: Option<serde_json::Value>,
}

/// The default size of an instance's writable space.
pub const DEFAULT_DISK_BYTES: u64 = 64 * 1024 * 1024;

/// A size written as "64MiB", "512k", "1G" or a plain number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

/// `cmd`: a list of arguments, or one string split as a shell would.
fn command_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Type};
    OneOfBuilder::new()
        .item(ArrayBuilder::new().items(ObjectBuilder::new().schema_type(Type::String)))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("one string, split into arguments as a shell would")),
        )
        .into()
}

/// A schema that is a string or a non-negative integer, described by `text`.
fn string_or_count(
    text: &str,
    number: &str,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(text)),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0))
                .description(Some(number)),
        )
        .into()
}

impl utoipa::PartialSchema for ByteSize {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        string_or_count("a size like \"64MiB\" (KiB, MiB, GiB)", "bytes")
    }
}

impl utoipa::ToSchema for ByteSize {}

impl utoipa::PartialSchema for HumanDuration {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        string_or_count("a duration like \"30s\", \"5m\" or \"500ms\"", "seconds")
    }
}

impl utoipa::ToSchema for HumanDuration {}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::bounds::size(d).map(ByteSize)
    }
}

pub use crate::bounds::parse_size;

/// How many instances a function may have and how they are shared.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Scale {
    /// Instances kept warm even when idle.
    #[serde(default, deserialize_with = "crate::bounds::count_u32")]
    pub min: u32,
    /// Instances at most; calls beyond wait in a bounded queue.
    #[serde(default = "default_max", deserialize_with = "crate::bounds::count_u32")]
    pub max: u32,
    /// Calls one instance takes at once.
    #[serde(
        default = "default_concurrency",
        deserialize_with = "crate::bounds::count_u32"
    )]
    pub concurrency: u32,
    /// An idle instance above `min` is stopped after this long.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: HumanDuration,
}

impl Default for Scale {
    fn default() -> Self {
        Scale {
            min: 0,
            max: default_max(),
            concurrency: default_concurrency(),
            idle_timeout: default_idle_timeout(),
        }
    }
}

/// Direktiv's function sizes, mapped to cgroup limits.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Size {
    /// 256 MiB of memory, half a CPU, 256 processes.
    #[default]
    Small,
    /// 512 MiB of memory, one CPU, 512 processes.
    Medium,
    /// 1 GiB of memory, two CPUs, 1024 processes.
    Large,
}

impl Size {
    /// The cgroup limits of an instance of this size.
    pub fn limits(self) -> Limits {
        const MIB: u64 = 1024 * 1024;
        match self {
            Size::Small => Limits {
                memory_bytes: 256 * MIB,
                cpu_millis: 500,
                pids: 256,
            },
            Size::Medium => Limits {
                memory_bytes: 512 * MIB,
                cpu_millis: 1000,
                pids: 512,
            },
            Size::Large => Limits {
                memory_bytes: 1024 * MIB,
                cpu_millis: 2000,
                pids: 1024,
            },
        }
    }

    /// The size as specs write it: `small`, `medium` or `large`.
    pub fn as_str(self) -> &'static str {
        match self {
            Size::Small => "small",
            Size::Medium => "medium",
            Size::Large => "large",
        }
    }
}

/// A duration written as "30s", "5m", "1h 30m" or a plain number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    /// Never panics: a value too large to represent saturates, and the range check of the
    /// field refuses it (see `crate::bounds`).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::bounds::duration(d).map(HumanDuration)
    }
}

/// Parses "30s", "1m30s", "500ms" or "12" (seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    humantime::parse_duration(text).map_err(|e| {
        format!("'{text}' is not a duration ({e}); write it like \"30s\", \"5m\" or \"500ms\"")
    })
}

fn default_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}
fn default_idle_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(300))
}
fn default_runtime() -> RuntimeClass {
    RuntimeClass::Standard
}
fn default_max() -> u32 {
    5
}
fn default_concurrency() -> u32 {
    1
}
fn default_true() -> bool {
    true
}

fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }
    match Raw::deserialize(d)? {
        Raw::Many(list) => Ok(list),
        Raw::One(text) => split_command(&text).map_err(serde::de::Error::custom),
    }
}

/// Splits a command line like a shell splits words (quotes respected, no expansion).
pub fn split_command(text: &str) -> Result<Vec<String>, String> {
    shlex::split(text).ok_or_else(|| format!("cannot split command '{text}': unbalanced quotes"))
}

impl FunctionSpec {
    /// Reads a spec from a request body; an error names the field (`scale.max: …`).
    pub fn from_json(body: &[u8]) -> Result<FunctionSpec, String> {
        let mut reader = serde_json::Deserializer::from_slice(body);
        let spec = serde_path_to_error::deserialize(&mut reader).map_err(|e| {
            let path = e.path().to_string();
            if path == "." {
                e.into_inner().to_string()
            } else {
                format!("`{path}`: {}", e.into_inner())
            }
        })?;
        reader.end().map_err(|e| e.to_string())?;
        Ok(spec)
    }

    /// The contract the function speaks: `cmd: /usr/share/direktiv/direktiv-cmd` on any image
    /// makes it a generic container, as in Direktiv.
    pub fn effective_contract(&self) -> Contract {
        let direktiv_cmd = self.cmd.len() == 1 && self.cmd[0] == faasbox_proto::DIREKTIV_CMD_PATH;
        if self.contract == Contract::Http && direktiv_cmd {
            Contract::Cmd
        } else {
            self.contract
        }
    }

    /// The size of an instance's writable space.
    pub fn disk_bytes(&self) -> u64 {
        self.disk.map(|d| d.0).unwrap_or(DEFAULT_DISK_BYTES)
    }

    /// Every problem with the spec, one sentence each (empty when valid).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.image.trim().is_empty() {
            problems.push("`image` is empty; name an image from `faasbox image ls`".to_string());
        }
        let contract = self.effective_contract();
        if contract != Contract::Openwhisk
            && (self.code.is_some() || self.binary || self.main.is_some())
        {
            problems.push("`code`, `binary` and `main` belong to the openwhisk contract; deploy with contract `openwhisk`".to_string());
        }
        if self.binary {
            use base64::Engine;
            let decoded = self
                .code
                .as_deref()
                .map(|c| base64::engine::general_purpose::STANDARD.decode(c.trim()));
            match decoded {
                None => problems
                    .push("`binary: true` needs `code`: the base64 of a zip archive".to_string()),
                Some(Err(e)) => problems.push(format!(
                    "`code` is not base64 ({e}); with `binary: true` it holds a base64 zip archive"
                )),
                Some(Ok(bytes)) if !bytes.starts_with(b"PK") => {
                    problems.push("`code` does not decode to a zip archive".to_string())
                }
                Some(Ok(_)) => {}
            }
        }
        problems.extend(self.code_problems(contract));
        if let Some(disk) = self.disk {
            problems.extend(bounds::DISK.check(disk.0).err());
        }
        for name in &self.secrets {
            if let Err(problem) = check_secret_name(name) {
                problems.push(problem);
            }
        }
        for name in self.envs.keys() {
            if name.is_empty() || name.contains('=') || name.contains('\0') {
                problems.push(format!(
                    "environment variable name '{}' is invalid (empty, or holds '=' or NUL)",
                    name.escape_debug()
                ));
            }
        }
        if self.envs.values().any(|v| v.contains('\0')) {
            problems.push("an environment variable value holds a NUL byte".to_string());
        }
        problems.extend(bounds::TIMEOUT.check(self.timeout.0).err());
        let scale = &self.scale;
        problems.extend(bounds::SCALE_MIN.check(scale.min.into()).err());
        problems.extend(bounds::SCALE_MAX.check(scale.max.into()).err());
        if scale.min > scale.max {
            problems.push(format!(
                "`scale.min` ({}) is larger than `scale.max` ({})",
                scale.min, scale.max
            ));
        }
        problems.extend(bounds::CONCURRENCY.check(scale.concurrency.into()).err());
        problems.extend(bounds::IDLE_TIMEOUT.check(scale.idle_timeout.0).err());
        problems
    }
}

impl FunctionSpec {
    /// The code contract's fields: `language` and `handler` with it and only with it; a
    /// `schema` (any contract) that compiles.
    fn code_problems(&self, contract: Contract) -> Vec<String> {
        let mut problems = Vec::new();
        if contract == Contract::Code {
            if self.language.is_none() {
                problems.push(
                    "the code contract needs `language`: python3, nodejs or shell".to_string(),
                );
            }
            match self.handler.as_deref().map(str::trim) {
                None | Some("") => problems.push(
                    "the code contract needs `handler`, e.g. \"hello.handle\" (module.function) \
                     or a script's path for shell"
                        .to_string(),
                ),
                Some(handler) if handler.contains('\0') || handler.len() > 256 => {
                    problems.push("`handler` is longer than 256 bytes or holds NUL".to_string())
                }
                Some(_) => {}
            }
        } else if self.language.is_some() || self.handler.is_some() {
            problems.push(
                "`language` and `handler` belong to the code contract; deploy with contract \
                 `code` (or leave them out)"
                    .to_string(),
            );
        }
        if let Some(schema) = &self.schema {
            for (field, value) in [("in", &schema.input), ("out", &schema.output)] {
                if let Some(value) = value {
                    if let Err(e) = jsonschema::validator_for(value) {
                        problems.push(format!(
                            "`schema.{field}` is not a valid JSON Schema (draft 2020-12 unless \
                             its `$schema` names draft 7 or another): {e}"
                        ));
                    }
                }
            }
        }
        for name in &self.services {
            if let Err(problem) = check_name("service", name) {
                problems.push(format!("`services`: {problem}"));
            }
        }
        if contract != Contract::Code && !self.services.is_empty() && self.input.is_none() {
            problems.push(
                "`services` reach a function of this contract only through its `input` \
                 template (as `.services.NAME`); add a template that uses them, or leave \
                 `services` out"
                    .to_string(),
            );
        }
        problems
    }

    /// The code contract's configuration for the agent, for a code function.
    pub fn code_config(&self) -> Option<faasbox_proto::CodeConfig> {
        if self.effective_contract() != Contract::Code {
            return None;
        }
        Some(faasbox_proto::CodeConfig {
            language: self.language?,
            handler: self.handler.clone()?.trim().to_string(),
            dir: faasbox_proto::CODE_DIR.to_string(),
        })
    }
}

/// Checks a namespace or function name: 1–63 characters of `a-z 0-9 - _ .`, starting with a
/// letter or digit.
pub fn check_name(kind: &str, name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{kind} name '{}' is invalid: use 1-63 characters of a-z, 0-9, '-', '_' and '.', starting with a letter or digit",
            name.escape_debug()
        ))
    }
}

/// A secret name as the vault accepts it (case kept), without `..`.
pub fn check_secret_name(name: &str) -> Result<(), String> {
    faasbox_secrets::check_secret_name(name).map_err(|e| e.to_string())?;
    if name.contains("..") {
        return Err(format!(
            "secret name '{name}' is invalid: it must not contain '..'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_defaults_and_durations() {
        let spec: FunctionSpec =
            serde_json::from_str(r#"{"image":"echo","timeout":"2m","scale":{"idle_timeout":10}}"#)
                .unwrap();
        assert_eq!(spec.timeout.0, Duration::from_secs(120));
        assert_eq!(spec.scale.idle_timeout.0, Duration::from_secs(10));
        assert_eq!(spec.scale.max, 5);
        assert_eq!(spec.scale.concurrency, 1);
        assert_eq!(spec.contract, Contract::Http);
        assert!(spec.network);
        assert!(spec.problems().is_empty());
        let back = serde_json::to_value(&spec).unwrap();
        assert_eq!(back["timeout"], "2m");
    }

    #[test]
    fn cmd_accepts_string_or_list() {
        let spec: FunctionSpec =
            serde_json::from_str(r#"{"image":"x","cmd":"sh -c 'echo hi there'"}"#).unwrap();
        assert_eq!(spec.cmd, ["sh", "-c", "echo hi there"]);
        let spec: FunctionSpec =
            serde_json::from_str(r#"{"image":"x","cmd":["a","b c"]}"#).unwrap();
        assert_eq!(spec.cmd, ["a", "b c"]);
        assert!(split_command("echo 'open").is_err());
    }

    #[test]
    fn problems_are_all_listed() {
        let spec: FunctionSpec = serde_json::from_str(
            r#"{"image":"","envs":{"A=B":"x"},"scale":{"min":9,"max":2,"concurrency":0}}"#,
        )
        .unwrap();
        let problems = spec.problems();
        assert_eq!(problems.len(), 4, "{problems:?}");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_str::<FunctionSpec>(r#"{"image":"x","imgae":"y"}"#).unwrap_err();
        assert!(err.to_string().contains("imgae"));
    }

    #[test]
    fn contracts_sizes_and_code() {
        let spec: FunctionSpec =
            serde_json::from_str(r#"{"image":"x","cmd":"/usr/share/direktiv/direktiv-cmd"}"#)
                .unwrap();
        assert_eq!(spec.effective_contract(), Contract::Cmd);
        let spec: FunctionSpec =
            serde_json::from_str(r#"{"image":"x","contract":"file","disk":"2MiB"}"#).unwrap();
        assert_eq!(spec.disk_bytes(), 2 << 20);
        assert!(spec.problems().is_empty());
        // Every contract has a bounded disk.
        let spec: FunctionSpec = serde_json::from_str(r#"{"image":"x","disk":"1GiB"}"#).unwrap();
        assert_eq!(spec.disk_bytes(), 1 << 30);
        assert!(spec.problems().is_empty());
        let spec: FunctionSpec = serde_json::from_str(r#"{"image":"x"}"#).unwrap();
        assert_eq!(spec.disk_bytes(), DEFAULT_DISK_BYTES);
        assert_eq!(parse_size("512k").unwrap(), 512 << 10);
        assert!(parse_size("12 parsecs").is_err());
        let spec: FunctionSpec = serde_json::from_str(
            r#"{"image":"x","contract":"openwhisk","binary":true,"code":"bm90IGEgemlw"}"#,
        )
        .unwrap();
        assert_eq!(spec.problems().len(), 1, "{:?}", spec.problems());
        let spec: FunctionSpec = serde_json::from_str(r#"{"image":"x","code":"echo"}"#).unwrap();
        assert_eq!(spec.problems().len(), 1);
    }

    #[test]
    fn code_contract_fields() {
        let spec: FunctionSpec = serde_json::from_str(
            r#"{"image":"x","contract":"code","language":"python3","handler":"hello.handle",
                "schema":{"in":{"type":"object"},"out":{"type":"string"}}}"#,
        )
        .unwrap();
        assert!(spec.problems().is_empty(), "{:?}", spec.problems());
        let config = spec.code_config().unwrap();
        assert_eq!(config.handler, "hello.handle");
        assert_eq!(config.dir, "/function");
        let back = serde_json::to_value(&spec).unwrap();
        assert_eq!(back["schema"]["in"]["type"], "object");
        assert_eq!(back["language"], "python3");
        // Both are required with the code contract.
        let spec: FunctionSpec =
            serde_json::from_str(r#"{"image":"x","contract":"code"}"#).unwrap();
        let problems = spec.problems();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("language"), "{problems:?}");
        assert!(problems[1].contains("handler"), "{problems:?}");
        assert!(spec.code_config().is_none());
        // A schema that does not compile is refused at deploy.
        let spec: FunctionSpec = serde_json::from_str(
            r#"{"image":"x","contract":"code","language":"shell","handler":"run.sh",
                "schema":{"in":{"type":"no-such-type"}}}"#,
        )
        .unwrap();
        let problems = spec.problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("schema.in"), "{problems:?}");
        // And the fields are refused with other contracts.
        let spec: FunctionSpec =
            serde_json::from_str(r#"{"image":"x","handler":"hello.handle"}"#).unwrap();
        assert!(spec.problems()[0].contains("code contract"));
        // A schema is every contract's (draft 7 too), and is checked with every contract.
        let spec: FunctionSpec = serde_json::from_str(
            r#"{"image":"x","contract":"http","schema":{"in":{
                "$schema":"http://json-schema.org/draft-07/schema#","type":"object"}}}"#,
        )
        .unwrap();
        assert!(spec.problems().is_empty(), "{:?}", spec.problems());
        let spec: FunctionSpec =
            serde_json::from_str(r#"{"image":"x","schema":{"out":{"minimum":"one"}}}"#).unwrap();
        assert!(
            spec.problems()[0].contains("schema.out"),
            "{:?}",
            spec.problems()
        );
    }

    #[test]
    fn services_are_names() {
        let spec: FunctionSpec = serde_json::from_str(
            r#"{"image":"x","services":["db","Bad Name"],"input":{"d":"jq(.services.db)"}}"#,
        )
        .unwrap();
        let problems = spec.problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("services"), "{problems:?}");
        // Without a template they would reach nothing (a code function gets them in its
        // context instead).
        let spec: FunctionSpec =
            serde_json::from_str(r#"{"image":"x","services":["db"]}"#).unwrap();
        let problems = spec.problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("template"), "{problems:?}");
        let spec: FunctionSpec = serde_json::from_str(
            r#"{"image":"x","contract":"code","language":"shell","handler":"run.sh",
                "services":["db"]}"#,
        )
        .unwrap();
        assert!(spec.problems().is_empty(), "{:?}", spec.problems());
    }

    #[test]
    fn names() {
        assert!(check_name("namespace", "demo-1").is_ok());
        for bad in ["", "Demo", "a/b", "..", ".x", "a\nb", &"x".repeat(64)] {
            assert!(check_name("namespace", bad).is_err(), "{bad:?}");
        }
    }
}
