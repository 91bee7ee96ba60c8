//! Which flow a `subflow` function's `workflow` names, as Direktiv resolves it: a reference
//! starting with `/` is a path from the namespace's root; any other is relative to the folder
//! of the calling flow, so `child.yaml`, `./child.yaml` and `../a/child.yaml` called from
//! `a/parent.yaml` all name `a/child.yaml`. `.` and `..` are resolved (`..` stops at the
//! root), repeated slashes collapse, and a `:suffix` (a revision in older Direktiv) is dropped.
//!
//! faasbox names flows as they were deployed (`demo/a/child` or `demo/a/child.yaml`), and
//! before this rule it read every reference from the namespace's root. So the reference is
//! looked up as Direktiv resolves it first, then with `.yaml` dropped or added, then (for a
//! plain relative reference from a flow in a folder) from the root as before.

/// The flow paths `reference` may name when called from flow `parent`, in the order they are
/// looked up (without a leading `/`, as flows are stored). Empty when the reference names no
/// flow at all (the root folder itself).
pub fn candidates(parent: &str, reference: &str) -> Vec<String> {
    let reference = reference.split(':').next().unwrap_or_default();
    let folder = match reference.starts_with('/') {
        true => "",
        false => parent.rsplit_once('/').map_or("", |(folder, _)| folder),
    };
    let mut out = Vec::new();
    if let Some(path) = clean(folder, reference) {
        push_with_variants(&mut out, path);
    }
    let plain_relative = !reference.starts_with(['/', '.']);
    if plain_relative && !folder.is_empty() {
        if let Some(path) = clean("", reference) {
            push_with_variants(&mut out, path);
        }
    }
    out
}

/// `path` and the same name with `.yaml` dropped (or added), each once.
fn push_with_variants(out: &mut Vec<String>, path: String) {
    let variant = match path
        .strip_suffix(".yaml")
        .or_else(|| path.strip_suffix(".yml"))
    {
        Some(bare) if !bare.is_empty() && !bare.ends_with('/') => bare.to_string(),
        Some(_) => String::new(),
        None => format!("{path}.yaml"),
    };
    for p in [path, variant] {
        if !p.is_empty() && !out.contains(&p) {
            out.push(p);
        }
    }
}

/// `reference` joined to `folder` and cleaned as Go's `filepath.Join` cleans it; `None` when
/// nothing is left.
fn clean(folder: &str, reference: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for segment in folder.split('/').chain(reference.split('/')) {
        match segment {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::candidates;

    fn first(parent: &str, reference: &str) -> String {
        candidates(parent, reference)
            .into_iter()
            .next()
            .unwrap_or_default()
    }

    /// Direktiv's v0.8 `tests/engine/simple-subflow.test.js`: four parents in `/a` reach
    /// `/a/child.yaml`.
    #[test]
    fn the_four_references_of_direktiv_s_subflow_test() {
        for reference in [
            "/a/child.yaml",
            "child.yaml",
            "./child.yaml",
            "../a/child.yaml",
        ] {
            assert_eq!(
                first("a/parent.yaml", reference),
                "a/child.yaml",
                "{reference}"
            );
        }
    }

    #[test]
    fn relative_to_the_parent_s_folder_and_clamped_at_the_root() {
        assert_eq!(first("a/parent.yaml", "a/child.yaml"), "a/a/child.yaml");
        assert_eq!(first("p.yaml", "../x.yaml"), "x.yaml");
        assert_eq!(first("a/b/p", "../../../x"), "x");
        assert_eq!(first("a/p", ".//b//./c"), "a/b/c");
        assert_eq!(first("a/p", "/a/../b/c.yaml"), "b/c.yaml");
        assert_eq!(first("p", "child.yaml:v2"), "child.yaml");
        assert!(candidates("a/p", "/").is_empty());
        assert!(candidates("a/p", "..").is_empty());
    }

    #[test]
    fn with_and_without_yaml_and_from_the_root_as_before() {
        assert_eq!(
            candidates("a/parent", "a/child.yaml"),
            ["a/a/child.yaml", "a/a/child", "a/child.yaml", "a/child"]
        );
        assert_eq!(candidates("parent", "child"), ["child", "child.yaml"]);
        assert_eq!(
            candidates("a/parent", "./child"),
            ["a/child", "a/child.yaml"]
        );
        assert_eq!(candidates("a/p", "/b.yml"), ["b.yml", "b"]);
        assert_eq!(candidates("a/p", "/.yaml"), [".yaml"]);
    }
}
