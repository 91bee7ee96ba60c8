//! Which user-mode network helper connects an instance's network namespace to the outside
//! ([`NetworkHelper`]): chosen once per server (`--network-helper`), named the same on the
//! command line, in `faasbox.toml` and in the driver's configuration. slirp4netns is the
//! default: it holds about 0.5 MiB per instance where pasta holds about 29 MiB, and starts
//! several times faster when many instances start at once; pasta stays fully supported.

use std::fmt;
use std::str::FromStr;

/// The process that gives an instance's network namespace its outbound network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NetworkHelper {
    /// `pasta` (package `passt`): about 29 MiB of buffers per instance unless the host merges
    /// identical pages (KSM), and slower to start; gives the instance the host's own IPv6
    /// addresses and routes.
    Pasta,
    /// `slirp4netns` (package `slirp4netns`), the default: about 0.5 MiB per instance, IPv4
    /// and (where the host has an IPv6 default route) IPv6 through slirp's own addresses.
    #[default]
    Slirp4netns,
}

impl NetworkHelper {
    /// The name used on the command line, in `faasbox.toml` and as the program's name.
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkHelper::Pasta => "pasta",
            NetworkHelper::Slirp4netns => "slirp4netns",
        }
    }
}

impl fmt::Display for NetworkHelper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a network helper.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown network helper {0:?}: use slirp4netns (the default) or pasta")]
pub struct UnknownNetworkHelper(pub String);

impl FromStr for NetworkHelper {
    type Err = UnknownNetworkHelper;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pasta" => Ok(NetworkHelper::Pasta),
            "slirp4netns" => Ok(NetworkHelper::Slirp4netns),
            other => Err(UnknownNetworkHelper(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_say_what_is_known() {
        for helper in [NetworkHelper::Pasta, NetworkHelper::Slirp4netns] {
            assert_eq!(helper.as_str().parse::<NetworkHelper>(), Ok(helper));
        }
        assert_eq!(NetworkHelper::default(), NetworkHelper::Slirp4netns);
        let err = "slirp".parse::<NetworkHelper>().unwrap_err().to_string();
        assert!(
            err.contains("pasta") && err.contains("slirp4netns"),
            "{err}"
        );
    }
}
