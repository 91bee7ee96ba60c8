//! Which user-mode network helper connects an instance's network namespace to the outside
//! ([`NetworkHelper`]): chosen once per server (`--network-helper`), named the same on the
//! command line, in `faasbox.toml` and in the driver's configuration.

use std::fmt;
use std::str::FromStr;

/// The process that gives an instance's network namespace its outbound network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NetworkHelper {
    /// `pasta` (package `passt`): the faster of the two; about 29 MiB of buffers per instance
    /// unless the host merges identical pages (KSM).
    #[default]
    Pasta,
    /// `slirp4netns` (package `slirp4netns`): about 0.3 MiB of its own per instance, slower
    /// outbound traffic.
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
#[error("unknown network helper {0:?}: use pasta (the default) or slirp4netns")]
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
        assert_eq!(NetworkHelper::default(), NetworkHelper::Pasta);
        let err = "slirp".parse::<NetworkHelper>().unwrap_err().to_string();
        assert!(
            err.contains("pasta") && err.contains("slirp4netns"),
            "{err}"
        );
    }
}
