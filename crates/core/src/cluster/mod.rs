//! Several servers on one store: this server's node id ([`node`]) and the `[cluster]`
//! settings (how long a server's lease on its work lasts without a heartbeat, and the API
//! address it advertises to the others). How what each server keeps in memory follows what
//! the others change is [`crate::follow`], a module of its own because it needs the server's
//! state, which the settings here are part of.

pub mod node;
pub mod registry;

use std::net::SocketAddr;
use std::time::Duration;

pub use node::NodeId;

/// The default lease: a server that missed heartbeats for this long is declared dead and
/// its work is taken over by another.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(15);
/// The shortest lease accepted (heartbeats go every third of it).
pub const MIN_LEASE: Duration = Duration::from_secs(3);

/// The `[cluster]` settings (`lease_seconds`, `advertise`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// How long this server's work stays its own without a heartbeat (`lease_seconds`,
    /// `--cluster-lease-seconds`); heartbeats go every third of it.
    pub lease: Duration,
    /// The API address the other servers and `faasbox nodes` see for this one (`advertise`,
    /// `--cluster-advertise`); `None`: made from the listen address ([`Self::advertised`]).
    pub advertise: Option<String>,
    /// The OCI registry that carries images between the servers (`registry`,
    /// `--cluster-registry`), `http(s)://HOST[:PORT][/PATH]`; `None`: each server keeps its
    /// own images (see [`images`]).
    pub registry: Option<String>,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            lease: DEFAULT_LEASE,
            advertise: None,
            registry: None,
        }
    }
}

impl ClusterSettings {
    /// How often this server beats: a third of the lease.
    pub fn heartbeat_every(&self) -> Duration {
        self.lease / 3
    }

    /// The lease in milliseconds, as the store compares it with the database's clock.
    pub fn lease_ms(&self) -> i64 {
        i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX)
    }

    /// The address advertised: `advertise` if given, else `http://<listen>`, with the host's
    /// name in place of an unspecified address (0.0.0.0 or ::).
    pub fn advertised(&self, listen: SocketAddr) -> String {
        if let Some(address) = &self.advertise {
            return address.clone();
        }
        if listen.ip().is_unspecified() {
            let host = hostname().unwrap_or_else(|| "localhost".to_string());
            format!("http://{host}:{}", listen.port())
        } else {
            format!("http://{listen}")
        }
    }

    /// Why these settings cannot work, one sentence each.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.lease < MIN_LEASE {
            problems.push(format!(
                "cluster lease_seconds is {}: it must be at least {} (heartbeats go every third of it)",
                self.lease.as_secs(),
                MIN_LEASE.as_secs()
            ));
        }
        if let Some(address) = &self.advertise {
            if !(address.starts_with("http://") || address.starts_with("https://")) {
                problems.push(format!(
                    "cluster advertise is {address:?}: give the API's URL, e.g. http://10.0.0.5:8470"
                ));
            }
        }
        if let Some(url) = &self.registry {
            if let Err(e) = registry::ClusterRegistry::parse(url) {
                problems.push(e);
            }
        }
        problems
    }
}

/// This host's name (from the kernel), if it can be read.
fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_advertised_address_comes_from_the_listen_address_unless_given() {
        let settings = ClusterSettings::default();
        assert_eq!(
            settings.advertised("10.1.2.3:8470".parse().unwrap()),
            "http://10.1.2.3:8470"
        );
        let any = settings.advertised("0.0.0.0:9000".parse().unwrap());
        assert!(
            any.starts_with("http://") && any.ends_with(":9000"),
            "{any}"
        );
        assert!(!any.contains("0.0.0.0"), "{any}");
        let given = ClusterSettings {
            advertise: Some("https://a.example".into()),
            ..ClusterSettings::default()
        };
        assert_eq!(
            given.advertised("127.0.0.1:1".parse().unwrap()),
            "https://a.example"
        );
    }

    #[test]
    fn a_lease_below_the_minimum_or_an_address_without_scheme_is_refused() {
        assert!(ClusterSettings::default().problems().is_empty());
        let bad = ClusterSettings {
            lease: Duration::from_secs(2),
            advertise: Some("10.0.0.5:8470".into()),
            registry: Some("10.0.0.9:5000".into()),
        };
        let problems = bad.problems();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("at least 3"), "{problems:?}");
        assert!(problems[1].contains("http://"), "{problems:?}");
        assert!(problems[2].contains("cluster registry"), "{problems:?}");
        assert_eq!(
            ClusterSettings::default().heartbeat_every(),
            Duration::from_secs(5)
        );
    }
}
