//! "The store is reached through its traits": outside a backend's own crate, only the
//! composition (`crates/server/src/app.rs`, which opens the database, and
//! `crates/server/src/migrate_store.rs`, which copies one backend into the other) names
//! `SqliteStore` / `faasbox_store_sqlite` or `PgStore` / `faasbox_store_postgres` in shipped code. Tests may name it to make a temporary store: files
//! under a `tests/` directory, `*_tests.rs` files, files that are test-only as a whole
//! (`#![cfg(test)]`) and everything after a file's first `#[cfg(test)]` are not looked at. Checked on the source text, so it also catches a name in a
//! path or a `use` that the compiler would accept.

use std::path::{Path, PathBuf};

use faasbox_architecture::workspace;

/// Each backend: its crate and the names that give it away.
const BACKENDS: &[(&str, &[&str])] = &[
    (
        "crates/store-sqlite",
        &["SqliteStore", "faasbox_store_sqlite"],
    ),
    (
        "crates/store-postgres",
        &["PgStore", "faasbox_store_postgres"],
    ),
];
/// The files allowed to name a backend.
const ALLOWED: &[&str] = &[
    "crates/server/src/app.rs",
    "crates/server/src/migrate_store.rs",
];

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let path = entry
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// Whether `relative` (a path from the workspace root) is test code by its place.
fn is_test_file(relative: &str) -> bool {
    relative.split('/').any(|part| part == "tests") || relative.ends_with("_tests.rs")
}

/// The shipped files (workspace-relative) outside `backend_crate` that name it (one of
/// `names`), with the name found.
fn naming_files(
    root: &Path,
    backend_crate: &str,
    names: &[&'static str],
) -> Vec<(String, &'static str)> {
    let mut files = Vec::new();
    rust_files(&root.join("crates"), &mut files);
    let mut naming = Vec::new();
    for file in files {
        let relative = file
            .strip_prefix(root)
            .unwrap_or(&file)
            .to_string_lossy()
            .replace('\\', "/");
        if relative.starts_with(&format!("{backend_crate}/")) || is_test_file(&relative) {
            continue;
        }
        // Only `src/` is shipped (build scripts, benches and examples are not looked at).
        if !relative.split('/').any(|part| part == "src") {
            continue;
        }
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        if text.contains("#![cfg(test)]") {
            continue;
        }
        let shipped = text.split("#[cfg(test)]").next().unwrap_or("");
        if let Some(name) = names.iter().find(|name| shipped.contains(*name)) {
            naming.push((relative, *name));
        }
    }
    naming.sort();
    naming
}

#[test]
fn only_the_composition_names_a_store_backend() {
    let root = workspace::root();
    for (backend_crate, names) in BACKENDS {
        let naming = naming_files(&root, backend_crate, names);
        let unexpected: Vec<String> = naming
            .iter()
            .filter(|(file, _)| !ALLOWED.contains(&file.as_str()))
            .map(|(file, name)| format!("{file} names {name}"))
            .collect();
        assert!(
            unexpected.is_empty(),
            "shipped code outside {ALLOWED:?} names the backend of {backend_crate}; take \
             `Arc<dyn faasbox_store::Store>` (or one of its traits) and await its methods \
             instead:\n  {}",
            unexpected.join("\n  ")
        );
        // The check sees the name where it is: the composition opens each backend by name.
        assert!(
            naming.iter().any(|(file, _)| file == ALLOWED[0]),
            "{} no longer names {names:?}: is the check still reading the sources? found \
             {naming:?}",
            ALLOWED[0]
        );
    }
}
