//! Container ids and where a container lives in the runtime's root: `<root>/<id>/`
//! (libcontainer's layout). An id names exactly one directory there.

use std::path::{Path, PathBuf};

/// `<root>/<id>`, after checking that `id` names one directory (no separators, not `.`/`..`).
pub(crate) fn container_dir(root: &Path, id: &str) -> anyhow::Result<PathBuf> {
    let valid = !id.is_empty()
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'));
    anyhow::ensure!(
        valid,
        "invalid container id {id:?}: use letters, digits and _ + - . (not first)"
    );
    Ok(root.join(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_leave_the_root_are_refused() {
        let root = Path::new("/run/x");
        assert_eq!(
            container_dir(root, "fbx1-abc").unwrap(),
            Path::new("/run/x/fbx1-abc")
        );
        for bad in ["", ".", "..", "../x", "a/b", ".bundle-x", "a b"] {
            let err = container_dir(root, bad).unwrap_err().to_string();
            assert!(err.contains("invalid container id"), "{bad:?}: {err}");
        }
    }
}
