//! The web UI's static files, embedded in the binary at build time (`include_bytes!`), so
//! `cargo build` alone produces a server with its UI and nothing is fetched from elsewhere.
//! One table lists every file with its content type; a test checks that the table and the
//! `crates/http/ui/` directory agree, so a file cannot be forgotten.
//!
//! For work on the UI itself, `FAASBOX_UI_DIR=<dir>` makes the server read the same files
//! (only those in the table) from that directory at each request, so a change shows on reload
//! without a rebuild.

use std::sync::OnceLock;

use sha2::{Digest, Sha256};

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// `(path below crates/http/ui/, content type, bytes)`. Keep sorted by path.
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("api.js", JS, include_bytes!("../../ui/api.js")),
    ("app.js", JS, include_bytes!("../../ui/app.js")),
    ("diagram.js", JS, include_bytes!("../../ui/diagram.js")),
    ("dom.js", JS, include_bytes!("../../ui/dom.js")),
    ("favicon.svg", SVG, include_bytes!("../../ui/favicon.svg")),
    ("flow.css", CSS, include_bytes!("../../ui/flow.css")),
    ("fn.css", CSS, include_bytes!("../../ui/fn.css")),
    ("format.js", JS, include_bytes!("../../ui/format.js")),
    ("index.html", HTML, include_bytes!("../../ui/index.html")),
    ("logs.js", JS, include_bytes!("../../ui/logs.js")),
    (
        "pages/deploy.js",
        JS,
        include_bytes!("../../ui/pages/deploy.js"),
    ),
    (
        "pages/events.js",
        JS,
        include_bytes!("../../ui/pages/events.js"),
    ),
    (
        "pages/flow.js",
        JS,
        include_bytes!("../../ui/pages/flow.js"),
    ),
    (
        "pages/flows.js",
        JS,
        include_bytes!("../../ui/pages/flows.js"),
    ),
    (
        "pages/function.js",
        JS,
        include_bytes!("../../ui/pages/function.js"),
    ),
    (
        "pages/functions.js",
        JS,
        include_bytes!("../../ui/pages/functions.js"),
    ),
    (
        "pages/images.js",
        JS,
        include_bytes!("../../ui/pages/images.js"),
    ),
    (
        "pages/instance.js",
        JS,
        include_bytes!("../../ui/pages/instance.js"),
    ),
    (
        "pages/namespace.js",
        JS,
        include_bytes!("../../ui/pages/namespace.js"),
    ),
    (
        "pages/namespaces.js",
        JS,
        include_bytes!("../../ui/pages/namespaces.js"),
    ),
    (
        "pages/registries.js",
        JS,
        include_bytes!("../../ui/pages/registries.js"),
    ),
    (
        "pages/routes.js",
        JS,
        include_bytes!("../../ui/pages/routes.js"),
    ),
    ("pages/run.js", JS, include_bytes!("../../ui/pages/run.js")),
    (
        "pages/runs.js",
        JS,
        include_bytes!("../../ui/pages/runs.js"),
    ),
    (
        "pages/secrets.js",
        JS,
        include_bytes!("../../ui/pages/secrets.js"),
    ),
    (
        "pages/server.js",
        JS,
        include_bytes!("../../ui/pages/server.js"),
    ),
    (
        "pages/signin.js",
        JS,
        include_bytes!("../../ui/pages/signin.js"),
    ),
    (
        "pages/tokens.js",
        JS,
        include_bytes!("../../ui/pages/tokens.js"),
    ),
    ("router.js", JS, include_bytes!("../../ui/router.js")),
    ("stream.js", JS, include_bytes!("../../ui/stream.js")),
    ("style.css", CSS, include_bytes!("../../ui/style.css")),
    ("table.js", JS, include_bytes!("../../ui/table.js")),
    ("tar.js", JS, include_bytes!("../../ui/tar.js")),
    (
        "yaml-editor.js",
        JS,
        include_bytes!("../../ui/yaml-editor.js"),
    ),
];

/// The environment variable that serves the UI files from a directory (UI development).
pub const UI_DIR_VARIABLE: &str = "FAASBOX_UI_DIR";

/// One file of the UI.
pub struct Asset {
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
    /// A strong validator of the bytes (hex SHA-256 in quotes), for `ETag`.
    pub etag: String,
}

/// The file at `path` (below `/ui/assets/`), or `None` when the UI has no such file.
pub fn find(path: &str) -> Option<Asset> {
    let index = ASSETS.iter().position(|(p, _, _)| *p == path)?;
    let (name, content_type, embedded) = ASSETS[index];
    if let Some(dir) = std::env::var_os(UI_DIR_VARIABLE) {
        // Only names from the table reach the file system: no path from the request does.
        let bytes = std::fs::read(std::path::Path::new(&dir).join(name)).ok()?;
        let etag = etag_of(&bytes);
        return Some(Asset {
            content_type,
            bytes,
            etag,
        });
    }
    Some(Asset {
        content_type,
        bytes: embedded.to_vec(),
        etag: embedded_etags()[index].clone(),
    })
}

fn embedded_etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| ASSETS.iter().map(|(_, _, b)| etag_of(b)).collect())
}

fn etag_of(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files_on_disk() -> Vec<String> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
        let mut found = Vec::new();
        let mut pending = vec![root.clone()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).expect("the ui directory is readable") {
                let path = entry.expect("a directory entry").path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    let relative = path.strip_prefix(&root).expect("below the root");
                    found.push(relative.to_string_lossy().into_owned());
                }
            }
        }
        found.sort();
        found
    }

    #[test]
    fn every_file_of_the_ui_directory_is_embedded_and_nothing_else() {
        let listed: Vec<String> = ASSETS.iter().map(|(p, _, _)| p.to_string()).collect();
        let mut sorted = listed.clone();
        sorted.sort();
        assert_eq!(listed, sorted, "keep ASSETS sorted by path");
        assert_eq!(files_on_disk(), listed, "crates/http/ui and ASSETS differ");
    }

    #[test]
    fn no_file_builds_html_from_strings() {
        // Data reaches the page only as text (textContent, attributes): never as markup.
        let sinks = [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
        ];
        for (path, _, bytes) in ASSETS {
            if !path.ends_with(".js") {
                continue;
            }
            let text = String::from_utf8_lossy(bytes);
            for sink in sinks {
                assert!(!text.contains(sink), "{path} uses {sink}");
            }
        }
    }

    #[test]
    fn unknown_paths_are_not_found() {
        assert!(find("../Cargo.toml").is_none());
        assert!(find("nope.js").is_none());
        let index = find("index.html").expect("the shell");
        assert!(index.content_type.starts_with("text/html"));
        assert_eq!(index.etag.len(), 66);
    }
}
