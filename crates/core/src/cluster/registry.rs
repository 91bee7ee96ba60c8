//! The cluster registry's URL (`[cluster] registry`, `--cluster-registry`): where the servers
//! of a store keep the bytes of the images they share (`crate::shared_images`), and the
//! repository each image name of each table is pushed to.

use faasbox_images::PullOptions;
use faasbox_store::GLOBAL_OWNER;

/// The cluster registry, parsed from its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterRegistry {
    /// The URL as configured, for messages.
    url: String,
    /// `host[:port]`.
    host: String,
    /// The repository prefix (no leading or trailing `/`; empty: none).
    path: String,
    /// `http://`: spoken to over plain HTTP.
    plain: bool,
}

impl ClusterRegistry {
    /// Parses `http(s)://HOST[:PORT][/PATH]`; the error is one sentence for the settings'
    /// problems.
    pub fn parse(url: &str) -> Result<ClusterRegistry, String> {
        // A URL with `user:password@` is refused without showing what precedes the `@`.
        let shown = match url.split_once('@') {
            Some((_, host)) => format!("<credentials hidden>@{host}"),
            None => url.to_string(),
        };
        let bad = |why: &str| {
            format!(
                "cluster registry is {shown:?}: {why}; give the registry's URL, e.g. \
                 http://10.0.0.9:5000/faasbox"
            )
        };
        if url.contains('@') {
            return Err(bad(
                "credentials do not go in the URL: store them once with `faasbox registry add \
                 --global HOST -u USER --password-stdin`",
            ));
        }
        let (plain, rest) = if let Some(rest) = url.strip_prefix("http://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("https://") {
            (false, rest)
        } else {
            return Err(bad("it does not start with http:// or https://"));
        };
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        {
            return Err(bad("it names no valid host"));
        }
        let path = path.trim_matches('/');
        let path = path
            .split('/')
            .filter(|part| !part.is_empty())
            .map(component)
            .collect::<Vec<_>>()
            .join("/");
        Ok(ClusterRegistry {
            url: url.to_string(),
            host: host.to_ascii_lowercase(),
            path,
            plain,
        })
    }

    /// The URL as configured.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The registry's `host[:port]`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// How to speak to it.
    pub(crate) fn options(&self) -> PullOptions {
        PullOptions {
            insecure_registries: if self.plain {
                vec![self.host.clone()]
            } else {
                Vec::new()
            },
            ..PullOptions::default()
        }
    }

    /// The repository of `owner`'s image `name`: `host/path/ns/<ns>/<repo>` or
    /// `host/path/global/<repo>`, made of what registries accept.
    fn repository(&self, owner: &str, name: &str) -> String {
        let (repo, _) = split_name(name);
        let table = if owner == GLOBAL_OWNER {
            "global".to_string()
        } else {
            format!("ns/{}", component(owner))
        };
        let repo = repo.split('/').map(component).collect::<Vec<_>>().join("/");
        let mut out = self.host.clone();
        if !self.path.is_empty() {
            out.push('/');
            out.push_str(&self.path);
        }
        format!("{out}/{table}/{repo}")
    }

    /// Where `owner`'s `name` is pushed: its repository, with the name's tag.
    pub fn target(&self, owner: &str, name: &str) -> String {
        let (_, tag) = split_name(name);
        format!("{}:{tag}", self.repository(owner, name))
    }

    /// Where a server pulls `owner`'s `name` pointing to `digest` from.
    pub fn by_digest(&self, owner: &str, name: &str, digest: &str) -> String {
        format!("{}@{digest}", self.repository(owner, name))
    }
}

/// The repository and tag of a local name (`repo[:tag][@digest]`; tag `latest` when none).
fn split_name(name: &str) -> (&str, &str) {
    let rest = name.split_once('@').map_or(name, |(rest, _)| rest);
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], &rest[last_slash + i + 1..]),
        None => (rest, "latest"),
    }
}

/// One path component a registry accepts (`[a-z0-9]+([._-][a-z0-9]+)*`): lower case, other
/// characters (a host's `:`) as `-`, no separator first, last or twice.
fn component(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().map(|c| c.to_ascii_lowercase()) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if out.ends_with(|p: char| p.is_ascii_alphanumeric()) {
            out.push(if matches!(c, '.' | '_') { c } else { '-' });
        }
    }
    while out.ends_with(|p: char| !p.is_ascii_alphanumeric()) {
        out.pop();
    }
    if out.is_empty() {
        out.push('x');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_urls_are_checked_and_names_become_valid_repositories() {
        let registry = ClusterRegistry::parse("http://127.0.0.1:5000/Faasbox/").unwrap();
        assert_eq!(registry.host(), "127.0.0.1:5000");
        assert_eq!(registry.options().insecure_registries, ["127.0.0.1:5000"]);
        assert_eq!(
            registry.target("demo", "hello:v1"),
            "127.0.0.1:5000/faasbox/ns/demo/hello:v1"
        );
        assert_eq!(
            registry.target(GLOBAL_OWNER, "ghcr.io:443/x/Y__z"),
            "127.0.0.1:5000/faasbox/global/ghcr.io-443/x/y_z:latest"
        );
        assert_eq!(
            registry.by_digest("demo", "a/b:1@sha256:ab", "sha256:cd"),
            "127.0.0.1:5000/faasbox/ns/demo/a/b@sha256:cd"
        );
        let secure = ClusterRegistry::parse("https://reg.example").unwrap();
        assert!(secure.options().insecure_registries.is_empty());
        assert_eq!(secure.target("demo", "x"), "reg.example/ns/demo/x:latest");
        for bad in ["reg.example", "ftp://x", "http://", "http://a b/c"] {
            let e = ClusterRegistry::parse(bad).unwrap_err();
            assert!(e.contains("cluster registry"), "{bad}: {e}");
        }
        let e = ClusterRegistry::parse("http://bob:s3cret-pw@reg.example:5000/x").unwrap_err();
        assert!(e.contains("registry add --global"), "{e}");
        assert!(!e.contains("s3cret-pw") && !e.contains("bob"), "{e}");
    }
}
