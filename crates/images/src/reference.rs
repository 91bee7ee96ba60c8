//! Image references (`[host[:port]/]path[:tag][@sha256:<hex>]`): validation
//! and normalisation to the form the store records names in.

use crate::error::ImageError;

const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// Validates an image reference and normalises it: `:latest` is added when
/// it has neither a tag nor a digest. Nothing else is rewritten (no implicit
/// `docker.io/library/` prefix).
///
/// Accepted: an optional registry host (`example.com/`, `localhost:5000/`),
/// lowercase path components of `[a-z0-9._-]` that start and end with a
/// letter or digit, an optional `:tag` (`[A-Za-z0-9_][A-Za-z0-9_.-]*`, at most
/// 128 characters) and an optional `@sha256:<64 hex>` digest.
pub fn normalize_reference(name: &str) -> Result<String, ImageError> {
    let fail = |reason: &str| ImageError::InvalidReference {
        reference: name.to_string(),
        reason: reason.to_string(),
    };
    if name.is_empty() {
        return Err(fail("the name is empty"));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(fail("it contains whitespace or control characters"));
    }
    if name.contains("..") {
        return Err(fail("it contains '..'"));
    }

    let (rest, digest) = match name.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (name, None),
    };
    if let Some(digest) = digest {
        validate_digest(digest).map_err(|reason| fail(&reason))?;
    }

    // A ':' after the last '/' starts the tag; one before it is a host's port.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (repo, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(tag) = tag {
        validate_tag(tag).map_err(|reason| fail(&reason))?;
    }
    validate_repository(repo).map_err(|reason| fail(&reason))?;

    let mut out = repo.to_string();
    if let Some(tag) = tag {
        out.push(':');
        out.push_str(tag);
    }
    if let Some(digest) = digest {
        out.push('@');
        out.push_str(digest);
    } else if tag.is_none() {
        out.push_str(":latest");
    }
    Ok(out)
}

fn validate_digest(digest: &str) -> Result<(), String> {
    match digest.split_once(':') {
        Some(("sha256", hex))
            if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) =>
        {
            Ok(())
        }
        Some(("sha256", _)) => Err("a sha256 digest is 64 lowercase hex digits".into()),
        Some((alg, _)) => Err(format!(
            "digest algorithm '{alg}' is not supported (use sha256)"
        )),
        None => Err("the digest after '@' must look like sha256:<hex>".into()),
    }
}

fn validate_tag(tag: &str) -> Result<(), String> {
    if tag.is_empty() {
        return Err("the tag after ':' is empty".into());
    }
    if tag.len() > MAX_TAG_LEN {
        return Err(format!("the tag is longer than {MAX_TAG_LEN} characters"));
    }
    let mut bytes = tag.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !first_ok || !bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')) {
        return Err(format!(
            "tag '{tag}' may only contain letters, digits, '_', '.' and '-' and must not start with '.' or '-'"
        ));
    }
    Ok(())
}

fn validate_repository(repo: &str) -> Result<(), String> {
    if repo.is_empty() {
        return Err("the repository name is empty".into());
    }
    if repo.len() > MAX_NAME_LEN {
        return Err(format!(
            "the repository name is longer than {MAX_NAME_LEN} characters"
        ));
    }
    let mut components: Vec<&str> = repo.split('/').collect();
    if components.len() > 1 && is_host(components[0]) {
        validate_host(components[0])?;
        components.remove(0);
    }
    for component in components {
        validate_path_component(component)?;
    }
    Ok(())
}

/// Like docker: the first component is a registry host when it has a '.' or
/// a ':' or is `localhost`.
pub(crate) fn is_host(component: &str) -> bool {
    component.contains('.') || component.contains(':') || component == "localhost"
}

fn validate_host(host: &str) -> Result<(), String> {
    let (name, port) = match host.split_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
        && !name.starts_with(['.', '-'])
        && !name.ends_with(['.', '-']);
    if !name_ok {
        return Err(format!("registry host '{host}' is not a valid host name"));
    }
    if let Some(port) = port {
        if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("registry port in '{host}' must be a number"));
        }
    }
    Ok(())
}

fn validate_path_component(component: &str) -> Result<(), String> {
    if component.is_empty() {
        return Err(
            "the repository name has an empty path component ('//' or a leading or trailing '/')"
                .into(),
        );
    }
    if component.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "repository name component '{component}' must be lowercase"
        ));
    }
    let chars_ok = component
        .bytes()
        .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'));
    let ends_ok = component.starts_with(|c: char| c.is_ascii_alphanumeric())
        && component.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !chars_ok || !ends_ok {
        return Err(format!(
            "repository name component '{component}' may only contain a-z, 0-9, '.', '_' and '-' \
             and must start and end with a letter or digit"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::normalize_reference as norm;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn adds_latest_when_untagged() {
        assert_eq!(norm("demo/echo").unwrap(), "demo/echo:latest");
        assert_eq!(norm("busybox").unwrap(), "busybox:latest");
        assert_eq!(norm("demo/echo:1.0").unwrap(), "demo/echo:1.0");
    }

    #[test]
    fn keeps_hosts_ports_and_digests() {
        assert_eq!(
            norm("localhost:5000/fn/echo").unwrap(),
            "localhost:5000/fn/echo:latest"
        );
        assert_eq!(
            norm("registry.example.com/a/b:v2").unwrap(),
            "registry.example.com/a/b:v2"
        );
        let with_digest = format!("demo/echo@sha256:{HEX}");
        assert_eq!(norm(&with_digest).unwrap(), with_digest);
        let both = format!("demo/echo:v1@sha256:{HEX}");
        assert_eq!(norm(&both).unwrap(), both);
        assert_eq!(norm("a_b-c/e__f.g").unwrap(), "a_b-c/e__f.g:latest");
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "",
            " demo",
            "demo echo",
            "demo\n",
            "Demo/echo",
            "demo/../etc",
            "demo//echo",
            "/demo",
            "demo/",
            "demo:",
            "demo:-x",
            "demo@sha256:abc",
            "demo@md5:abc",
            "-demo",
            "demo/echo:a/b",
            "localhost:abc/x",
            "demo$",
        ] {
            let err = norm(bad).expect_err(bad);
            assert!(
                err.to_string().contains("invalid image reference"),
                "{bad}: {err}"
            );
        }
        let long_tag = format!("demo:{}", "a".repeat(129));
        assert!(norm(&long_tag).is_err());
    }
}
