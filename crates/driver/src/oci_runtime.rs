//! Which OCI runtime binary runs the instances of the standard runtime class
//! ([`OciRuntime`]): chosen once per server (`--oci-runtime`), named the same on the command
//! line, in `faasbox.toml` and in the driver's configuration. runc is the default; crun (a
//! smaller runtime written in C with the same command line) starts containers with less CPU
//! per start, and so does libcontainer (`faasbox-oci`, built with faasbox: the same command
//! line on youki's libcontainer). gVisor's runsc, which runs the sandboxed class, is not
//! affected by the choice.

use std::fmt;
use std::str::FromStr;

/// The OCI runtime command line that runs standard (not gVisor) instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OciRuntime {
    /// `runc` (package `runc`), the default.
    #[default]
    Runc,
    /// `crun` (package `crun`): the same command line as runc, less CPU per container start.
    Crun,
    /// `faasbox-oci` (built with faasbox): runc's command line on youki's libcontainer, no Go
    /// runtime executed per container start.
    Libcontainer,
}

impl OciRuntime {
    /// The name used on the command line, in `faasbox.toml`, as the program's name and as the
    /// name of its state directory below the driver's.
    pub fn as_str(self) -> &'static str {
        match self {
            OciRuntime::Runc => "runc",
            OciRuntime::Crun => "crun",
            OciRuntime::Libcontainer => "libcontainer",
        }
    }

    /// The program that is executed: `runc`, `crun` or `faasbox-oci`.
    pub fn program(self) -> &'static str {
        match self {
            OciRuntime::Runc => "runc",
            OciRuntime::Crun => "crun",
            OciRuntime::Libcontainer => "faasbox-oci",
        }
    }

    /// Every runtime, runc first.
    pub const ALL: [OciRuntime; 3] = [OciRuntime::Runc, OciRuntime::Crun, OciRuntime::Libcontainer];
}

impl fmt::Display for OciRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a supported OCI runtime.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown OCI runtime {0:?}: use runc (the default), crun or libcontainer")]
pub struct UnknownOciRuntime(pub String);

impl FromStr for OciRuntime {
    type Err = UnknownOciRuntime;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "runc" => Ok(OciRuntime::Runc),
            "crun" => Ok(OciRuntime::Crun),
            "libcontainer" => Ok(OciRuntime::Libcontainer),
            other => Err(UnknownOciRuntime(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_say_what_is_known() {
        for runtime in OciRuntime::ALL {
            assert_eq!(runtime.as_str().parse::<OciRuntime>(), Ok(runtime));
        }
        assert_eq!(OciRuntime::default(), OciRuntime::Runc);
        let err = "youki".parse::<OciRuntime>().unwrap_err().to_string();
        assert!(
            err.contains("runc") && err.contains("crun") && err.contains("libcontainer"),
            "{err}"
        );
    }
}
