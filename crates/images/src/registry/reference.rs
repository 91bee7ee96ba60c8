//! Which registry, repository, tag and digest an image reference names.
//! A reference without a registry host means Docker Hub, whose official
//! images live under `library/`.

use std::net::{Ipv4Addr, Ipv6Addr};

use oci_client::Reference;

use crate::error::ImageError;
use crate::reference::{is_host, normalize_reference};

/// The name Docker Hub goes by in references and credentials.
pub(crate) const DOCKER_HUB: &str = "docker.io";
/// Where Docker Hub's registry API is served.
const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// Other names of Docker Hub.
const DOCKER_HUB_ALIASES: [&str; 2] = ["index.docker.io", DOCKER_HUB_API];

/// A parsed remote image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemoteRef {
    /// The reference as `normalize_reference` writes it: the local name.
    pub(crate) name: String,
    /// `host[:port]` as written, or `docker.io`.
    pub(crate) registry: String,
    /// The host the API requests go to (`registry-1.docker.io` for Hub).
    pub(crate) api_host: String,
    /// The repository path on the registry (`library/alpine`).
    pub(crate) repository: String,
    pub(crate) tag: String,
    pub(crate) digest: Option<String>,
}

impl RemoteRef {
    pub(crate) fn parse(reference: &str) -> Result<RemoteRef, ImageError> {
        let name = normalize_reference(reference)?;
        let (rest, digest) = match name.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest.to_string())),
            None => (name.as_str(), None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (path, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (
                &rest[..last_slash + i],
                rest[last_slash + i + 1..].to_string(),
            ),
            None => (rest, "latest".to_string()),
        };
        let (host, repository) = match path.split_once('/') {
            Some((first, repo)) if is_host(first) => (first, repo),
            _ => (DOCKER_HUB, path),
        };
        let hub = host == DOCKER_HUB || DOCKER_HUB_ALIASES.contains(&host);
        let (registry, api_host, repository) = if hub {
            let repository = if repository.contains('/') {
                repository.to_string()
            } else {
                format!("library/{repository}")
            };
            (
                DOCKER_HUB.to_string(),
                DOCKER_HUB_API.to_string(),
                repository,
            )
        } else {
            (host.to_string(), host.to_string(), repository.to_string())
        };
        Ok(RemoteRef {
            name,
            registry,
            api_host,
            repository,
            tag,
            digest,
        })
    }

    /// The reference for the registry client: by digest when there is one.
    pub(crate) fn client_ref(&self) -> Reference {
        match &self.digest {
            Some(digest) => self.with_digest(digest),
            None => Reference::with_tag(
                self.api_host.clone(),
                self.repository.clone(),
                self.tag.clone(),
            ),
        }
    }

    /// The same repository at another digest (an index entry).
    pub(crate) fn with_digest(&self, digest: &str) -> Reference {
        Reference::with_digest(
            self.api_host.clone(),
            self.repository.clone(),
            digest.to_string(),
        )
    }

    /// The host names to look credentials up by, most specific first.
    pub(crate) fn credential_hosts(&self) -> Vec<&str> {
        if self.registry == DOCKER_HUB {
            let mut hosts = vec![DOCKER_HUB];
            hosts.extend(DOCKER_HUB_ALIASES);
            hosts
        } else {
            vec![self.registry.as_str()]
        }
    }
}

/// Whether `host[:port]` is on this machine: `localhost`, `127.0.0.0/8`
/// or `[::1]`.
pub(crate) fn is_loopback(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        host.split(':').next().unwrap_or(host)
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
        || name.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn docker_hub_semantics() {
        let r = RemoteRef::parse("alpine").unwrap();
        assert_eq!(r.name, "alpine:latest");
        assert_eq!(r.registry, "docker.io");
        assert_eq!(r.api_host, "registry-1.docker.io");
        assert_eq!(r.repository, "library/alpine");
        assert_eq!(r.tag, "latest");
        assert_eq!(r.credential_hosts()[0], "docker.io");

        let r = RemoteRef::parse("grafana/grafana:10.1").unwrap();
        assert_eq!(r.repository, "grafana/grafana");
        assert_eq!(r.tag, "10.1");
        let r = RemoteRef::parse("docker.io/nginx").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("docker.io", "library/nginx")
        );
        assert_eq!(r.name, "docker.io/nginx:latest");
    }

    #[test]
    fn hosts_ports_tags_and_digests() {
        let r = RemoteRef::parse("127.0.0.1:5000/test/busybox").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.api_host, "127.0.0.1:5000");
        assert_eq!(r.repository, "test/busybox");
        assert_eq!(r.tag, "latest");
        assert_eq!(
            r.client_ref().to_string(),
            "127.0.0.1:5000/test/busybox:latest"
        );

        let r = RemoteRef::parse(&format!("localhost:5000/x:v1@sha256:{HEX}")).unwrap();
        assert_eq!(r.registry, "localhost:5000");
        assert_eq!(r.tag, "v1");
        assert_eq!(r.digest.as_deref(), Some(format!("sha256:{HEX}").as_str()));
        assert_eq!(r.client_ref().digest(), r.digest.as_deref());
        assert_eq!(r.client_ref().tag(), None);

        let r = RemoteRef::parse("ghcr.io/org/team/app:2").unwrap();
        assert_eq!(r.registry, "ghcr.io");
        assert_eq!(r.repository, "org/team/app");
        assert!(RemoteRef::parse("Bad/Name").is_err());
    }

    #[test]
    fn loopback_hosts() {
        for host in [
            "127.0.0.1:5000",
            "127.1.2.3",
            "localhost:80",
            "[::1]:5000",
            "LOCALHOST",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "10.0.0.1:5000",
            "registry.example.com",
            "docker.io",
            "[::2]:1",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
