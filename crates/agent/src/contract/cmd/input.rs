//! The direktiv-cmd input, read from a call's JSON body.
//!
//! Two shapes are accepted, and may be mixed: Direktiv's
//! `{"files": […], "data": {"commands": […]}}` and the newer top-level
//! `{"commands": […], "files": […]}`. Commands of `data` run before top-level ones; files of both
//! are written. An empty body (or `null`) is no commands at all. Missing and `null` fields take
//! their defaults.
//!
//! A command is `{"command", "envs" | "env": [{"name", "value"}], "stop", "suppress_command",
//! "suppress_output"}`; both `envs` (Direktiv's code) and `env` (its documentation) are read, in
//! that order. An env `value` may be any JSON scalar (YAML authors write `value: 5`): strings as
//! they are, numbers and booleans as their JSON text, `null` as empty.
//!
//! A file is `{"name", "content", "permission"}`; see [`parse_permission`] for the permission.

use serde::Deserialize;
use serde_json::Value;

/// The file mode when none (or 0) is given.
pub const DEFAULT_FILE_MODE: u32 = 0o644;

/// What one call asks for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CmdRequest {
    pub files: Vec<FileSpec>,
    pub commands: Vec<CommandSpec>,
}

/// A file to write into the call's directory before the commands run.
#[derive(Debug, PartialEq, Eq)]
pub struct FileSpec {
    /// Relative to the call's directory (checked when written).
    pub name: String,
    pub content: String,
    pub mode: u32,
}

/// One command line to run.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CommandSpec {
    pub command: String,
    pub envs: Vec<(String, String)>,
    pub stop: bool,
    pub suppress_command: bool,
    pub suppress_output: bool,
}

#[derive(Deserialize, Default)]
struct RawPayload {
    files: Option<Vec<RawFile>>,
    commands: Option<Vec<RawCommand>>,
    data: Option<RawData>,
}

#[derive(Deserialize, Default)]
struct RawData {
    files: Option<Vec<RawFile>>,
    commands: Option<Vec<RawCommand>>,
}

#[derive(Deserialize)]
struct RawFile {
    name: Option<String>,
    content: Option<String>,
    permission: Option<Value>,
}

#[derive(Deserialize)]
struct RawCommand {
    command: Option<String>,
    envs: Option<Vec<RawEnv>>,
    env: Option<Vec<RawEnv>>,
    stop: Option<bool>,
    suppress_command: Option<bool>,
    suppress_output: Option<bool>,
}

#[derive(Deserialize)]
struct RawEnv {
    name: Option<String>,
    value: Option<Value>,
}

/// Reads a call's input; `Err` says what is wrong with it.
pub fn parse(input: &[u8]) -> Result<CmdRequest, String> {
    if input.iter().all(u8::is_ascii_whitespace) {
        return Ok(CmdRequest::default());
    }
    let raw: Option<RawPayload> = serde_json::from_slice(input).map_err(|e| e.to_string())?;
    let raw = raw.unwrap_or_default();
    let data = raw.data.unwrap_or_default();
    let files = data
        .files
        .into_iter()
        .flatten()
        .chain(raw.files.into_iter().flatten())
        .map(file_spec)
        .collect::<Result<_, _>>()?;
    let commands = data
        .commands
        .into_iter()
        .flatten()
        .chain(raw.commands.into_iter().flatten())
        .map(command_spec)
        .collect();
    Ok(CmdRequest { files, commands })
}

fn file_spec(raw: RawFile) -> Result<FileSpec, String> {
    let name = raw.name.unwrap_or_default();
    let mode = match &raw.permission {
        None | Some(Value::Null) => DEFAULT_FILE_MODE,
        Some(value) => parse_permission(value)
            .map_err(|e| format!("file '{name}': invalid permission {value}: {e}"))?,
    };
    Ok(FileSpec {
        name,
        content: raw.content.unwrap_or_default(),
        mode,
    })
}

fn command_spec(raw: RawCommand) -> CommandSpec {
    let envs = raw
        .envs
        .into_iter()
        .flatten()
        .chain(raw.env.into_iter().flatten())
        .filter_map(|env| Some((env.name?, scalar_text(env.value.as_ref()))))
        .collect();
    CommandSpec {
        command: raw.command.unwrap_or_default(),
        envs,
        stop: raw.stop.unwrap_or(false),
        suppress_command: raw.suppress_command.unwrap_or(false),
        suppress_output: raw.suppress_output.unwrap_or(false),
    }
}

/// An env value as text: strings as they are, `null` as empty, anything else as its JSON.
fn scalar_text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

/// A file permission as given in the input, to mode bits.
///
/// JSON has no octal numbers, and YAML parsers disagree about `0755` (YAML 1.1 reads octal 493,
/// YAML 1.2 reads decimal 755). So:
///
/// - a string is octal, with or without a leading `0` or `0o`: `"0755"`, `"755"`, `"0o755"`;
/// - an integer whose decimal digits are all octal digits is read as those octal digits:
///   `755` (or `0755` read as 755) is `0o755`, `644` is `0o644`;
/// - any other integer (it has an 8 or a 9) is already the mode: `493` is `0o755`, as a YAML 1.1
///   parser or Direktiv's Go `uint` would have it;
/// - `0` is "not given" (mode 0644).
///
/// The result must fit in `0o7777`. Beware: an integer like `420` (0644 read as YAML 1.1) has only
/// octal digits and so means `0o420`; write the permission as a string to be unambiguous.
pub fn parse_permission(value: &Value) -> Result<u32, String> {
    let mode = match value {
        Value::String(text) => {
            let text = text.trim();
            let digits = text
                .strip_prefix("0o")
                .or_else(|| text.strip_prefix("0O"))
                .unwrap_or(text);
            if digits.is_empty() {
                return Err("expected octal digits".into());
            }
            u32::from_str_radix(digits, 8).map_err(|_| "expected octal digits".to_string())?
        }
        Value::Number(number) => {
            let n = number
                .as_u64()
                .ok_or("expected a non-negative whole number")?;
            let decimal = n.to_string();
            if decimal.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                u32::from_str_radix(&decimal, 8).map_err(|_| "too large".to_string())?
            } else {
                u32::try_from(n).map_err(|_| "too large".to_string())?
            }
        }
        _ => return Err("expected a number or an octal string".into()),
    };
    if mode > 0o7777 {
        return Err("larger than 07777".into());
    }
    Ok(if mode == 0 { DEFAULT_FILE_MODE } else { mode })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn direktiv_shape() {
        let input = json!({
            "files": [{"name": "script.sh", "content": "echo hi", "permission": 755}],
            "data": {"commands": [
                {"command": "echo -n \"hello\"", "env": [{"name": "MYENV", "value": "MYVALUE"}], "stop": true},
                {"command": "./script.sh", "envs": [{"name": "N", "value": 5}, {"name": "B", "value": true}, {"name": "Z", "value": null}], "suppress_command": true, "suppress_output": true}
            ]}
        });
        let request = parse(input.to_string().as_bytes()).unwrap();
        assert_eq!(
            request.files,
            [FileSpec {
                name: "script.sh".into(),
                content: "echo hi".into(),
                mode: 0o755
            }]
        );
        assert_eq!(request.commands.len(), 2);
        assert_eq!(request.commands[0].command, "echo -n \"hello\"");
        assert_eq!(
            request.commands[0].envs,
            [("MYENV".to_string(), "MYVALUE".to_string())]
        );
        assert!(request.commands[0].stop);
        assert!(!request.commands[0].suppress_output);
        assert_eq!(
            request.commands[1].envs,
            [
                ("N".to_string(), "5".to_string()),
                ("B".to_string(), "true".to_string()),
                ("Z".to_string(), String::new())
            ]
        );
        assert!(request.commands[1].suppress_command && request.commands[1].suppress_output);
    }

    #[test]
    fn top_level_shape_nulls_and_empty() {
        let request =
            parse(br#"{"commands":[{"command":"true"}],"files":null,"data":null}"#).unwrap();
        assert_eq!(request.commands.len(), 1);
        assert!(request.files.is_empty());
        assert_eq!(parse(b"").unwrap(), CmdRequest::default());
        assert_eq!(parse(b" null ").unwrap(), CmdRequest::default());
        assert_eq!(parse(b"{}").unwrap(), CmdRequest::default());
        let both =
            parse(br#"{"commands":[{"command":"b"}],"data":{"commands":[{"command":"a"}]}}"#)
                .unwrap();
        let order: Vec<_> = both.commands.iter().map(|c| c.command.as_str()).collect();
        assert_eq!(order, ["a", "b"]);
    }

    #[test]
    fn bad_input_says_why() {
        assert!(parse(b"{not json").is_err());
        assert!(parse(br#"{"commands":"ls"}"#).is_err());
        assert!(parse(br#"[1]"#).is_err());
        let err = parse(br#"{"files":[{"name":"f","permission":"rwx"}]}"#).unwrap_err();
        assert!(err.contains("file 'f': invalid permission"), "{err}");
    }

    #[test]
    fn permissions() {
        for (value, mode) in [
            (json!(755), 0o755),
            (json!(644), 0o644),
            (json!(4755), 0o4755),
            (json!(493), 0o755),
            (json!(384), 0o600),
            (json!("0755"), 0o755),
            (json!("755"), 0o755),
            (json!("0o700"), 0o700),
            (json!(0), DEFAULT_FILE_MODE),
            (json!("0"), DEFAULT_FILE_MODE),
        ] {
            assert_eq!(parse_permission(&value), Ok(mode), "{value}");
        }
        for bad in [
            json!(-1),
            json!(1.5),
            json!(77777),
            json!("0899"),
            json!(""),
            json!(true),
            json!(99999),
        ] {
            assert!(parse_permission(&bad).is_err(), "{bad}");
        }
    }
}
