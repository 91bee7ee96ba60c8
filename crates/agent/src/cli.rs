//! Command-line parsing: `faasbox-agent serve --config PATH [--socket PATH] [--action-dir PATH]`.
//!
//! `--action-dir` moves the openwhisk contract's action directory away from `/action` (for
//! running the agent outside a container, as the tests do). Started as `direktiv-cmd` (the agent
//! is mounted at `/usr/share/direktiv/direktiv-cmd` too) without `serve`, it only explains
//! itself.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use faasbox_proto::AGENT_SOCKET_NAME;

pub const USAGE: &str =
    "usage: faasbox-agent serve --config PATH [--socket PATH] [--tcp ADDR] [--action-dir PATH]";

/// The socket's directory below the config file's (see `faasbox_proto::CONTAINER_SOCKET_DIR`).
const SOCKET_SUBDIR: &str = "sock";

/// The openwhisk contract's action directory inside a container.
pub const DEFAULT_ACTION_DIR: &str = "/action";

/// What the agent was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cli {
    /// Run as the container's PID 1.
    Serve {
        config: PathBuf,
        socket: PathBuf,
        /// Also serve the platform on this TCP address (the secret comes from the config file).
        tcp: Option<std::net::SocketAddr>,
        action_dir: PathBuf,
    },
    /// Run as `direktiv-cmd` (not a program of its own: the agent serves the cmd contract).
    DirektivCmd,
    /// Print the usage.
    Help,
}

/// Parses the full argument vector (argv\[0\] included).
pub fn parse(args: &[OsString]) -> Result<Cli, String> {
    let invoked_as = args
        .first()
        .map(|arg0| {
            Path::new(arg0)
                .file_name()
                .unwrap_or(arg0.as_os_str())
                .to_owned()
        })
        .unwrap_or_default();
    let rest = args.get(1..).unwrap_or_default();
    let has_serve = rest.first().is_some_and(|a| a == "serve");
    if invoked_as == "direktiv-cmd" && !has_serve {
        return Ok(Cli::DirektivCmd);
    }
    match rest.first().and_then(|a| a.to_str()) {
        Some("serve") => parse_serve(&rest[1..]),
        Some("-h" | "--help" | "help") => Ok(Cli::Help),
        Some(other) => Err(format!("unknown command `{other}`")),
        None => Err("missing command".into()),
    }
}

fn parse_serve(args: &[OsString]) -> Result<Cli, String> {
    let mut config = None;
    let mut socket = None;
    let mut action_dir = None;
    let mut tcp = None;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let text = arg.to_string_lossy();
        let (flag, inline) = match text.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value)),
            _ => (text.to_string(), None),
        };
        let slot = match flag.as_str() {
            "--config" => &mut config,
            "--socket" => &mut socket,
            "--action-dir" => &mut action_dir,
            "--tcp" => &mut tcp,
            "-h" | "--help" => return Ok(Cli::Help),
            other => return Err(format!("unknown option `{other}`")),
        };
        let value = match inline {
            Some(value) => PathBuf::from(value),
            None => PathBuf::from(iter.next().ok_or_else(|| format!("{flag} needs a value"))?),
        };
        *slot = Some(value);
    }
    let config: PathBuf = config.ok_or("--config is required")?;
    // `<config dir>/sock/agent.sock`: in a container, the control directory is read-only and
    // `sock/` (faasbox_proto::CONTAINER_SOCKET_DIR) is the writable directory mounted in it.
    let socket = socket.unwrap_or_else(|| {
        config
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(SOCKET_SUBDIR)
            .join(AGENT_SOCKET_NAME)
    });
    let action_dir = action_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_ACTION_DIR));
    let tcp = match tcp {
        Some(addr) => Some(addr.to_string_lossy().parse().map_err(|_| {
            format!(
                "--tcp needs an IP address and port such as 0.0.0.0:7000, not `{}`",
                addr.display()
            )
        })?),
        None => None,
    };
    Ok(Cli::Serve {
        config,
        socket,
        tcp,
        action_dir,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn serve_with_default_socket() {
        assert_eq!(
            parse(&args(&[
                "/.faasbox-agent",
                "serve",
                "--config",
                "/.faasbox/agent.json"
            ])),
            Ok(Cli::Serve {
                config: "/.faasbox/agent.json".into(),
                socket: "/.faasbox/sock/agent.sock".into(),
                tcp: None,
                action_dir: "/action".into()
            })
        );
        assert_eq!(
            parse(&args(&[
                "a",
                "serve",
                "--config=c.json",
                "--socket",
                "/s",
                "--action-dir=/tmp/a",
                "--tcp",
                "0.0.0.0:7000"
            ])),
            Ok(Cli::Serve {
                config: "c.json".into(),
                socket: "/s".into(),
                tcp: Some("0.0.0.0:7000".parse().unwrap()),
                action_dir: "/tmp/a".into()
            })
        );
    }

    #[test]
    fn direktiv_cmd_and_errors() {
        assert_eq!(
            parse(&args(&["/usr/share/direktiv/direktiv-cmd"])),
            Ok(Cli::DirektivCmd)
        );
        assert_eq!(
            parse(&args(&["/usr/share/direktiv/direktiv-cmd", "x"])),
            Ok(Cli::DirektivCmd)
        );
        assert!(matches!(
            parse(&args(&["direktiv-cmd", "serve", "--config", "c"])),
            Ok(Cli::Serve { .. })
        ));
        assert_eq!(parse(&args(&["a", "--help"])), Ok(Cli::Help));
        assert!(parse(&args(&["a"])).is_err());
        assert!(parse(&args(&["a", "serve"])).is_err());
        assert!(parse(&args(&["a", "serve", "--config"])).is_err());
        assert!(parse(&args(&["a", "serve", "--bogus", "x"])).is_err());
        let err = parse(&args(&["a", "serve", "--config", "c", "--tcp", "nope"])).unwrap_err();
        assert!(err.contains("0.0.0.0:7000"), "{err}");
    }
}
