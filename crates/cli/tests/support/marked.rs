//! Function images whose code says who built it: each answers `{"code": MARKER, "version":
//! $VERSION, "input": <its input>}` (after `sleep $SLEEP` when set), so a test can tell which
//! image — not which spec — answered a call. Built as root filesystem tarballs (busybox httpd
//! and one CGI script); the same tarball imported with other settings shares its layer.

use std::path::PathBuf;

use serde_json::Value;

use super::images::{rootfs_query, rootfs_tar_with};
use super::Server;

const SCRIPT: &str = r#"#!/bin/sh
input_file="$HTTP_DIREKTIV_TEMPDIR/input.json"
cat > "$input_file"
if [ -n "$SLEEP" ]; then sleep "$SLEEP"; fi
printf 'Content-Type: application/json\r\n\r\n{"code":"@MARKER@","version":"%s","input":' "$VERSION"
cat "$input_file"
printf '}'
"#;

/// A root filesystem tarball whose function answers with `marker`.
pub struct Marked {
    pub tar: PathBuf,
    _dir: tempfile::TempDir,
}

pub fn image(marker: &str) -> Marked {
    let script = SCRIPT.replace("@MARKER@", marker);
    let (dir, tar) = rootfs_tar_with(&[("/www/cgi-bin/index.cgi", &script, 0o755)]);
    Marked { tar, _dir: dir }
}

/// Imports `image` as `name` into namespace `ns`'s images (`None`: server-wide) with `http`'s
/// token, with `env` (`KEY=VALUE`) in its config; returns (status, answer).
pub async fn import(
    server: &Server,
    http: &reqwest::Client,
    ns: Option<&str>,
    image: &Marked,
    name: &str,
    env: &[&str],
) -> (u16, Value) {
    let query = rootfs_query();
    let env = serde_json::to_string(env).expect("json");
    let mut pairs: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    pairs.push(("env", &env));
    let r = server.import_as(http, ns, &image.tar, name, &pairs).await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Like [`import`], asserting it worked; returns the image record.
pub async fn import_ok(server: &Server, ns: Option<&str>, image: &Marked, name: &str) -> Value {
    let (status, record) = import(server, &server.http, ns, image, name, &[]).await;
    assert_eq!(status, 201, "importing {name}: {record}");
    record
}

/// The last event of a pull or push stream (`done` or `error`).
pub async fn stream_end(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let last = text
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    (status, last)
}

/// Calls `ns/name` and returns (status, the answer's `code`, the whole answer).
pub async fn call(server: &Server, ns: &str, name: &str, input: &Value) -> (u16, String, Value) {
    let (status, _, body) = server.invoke(ns, name, input.to_string()).await;
    let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let code = answer["code"].as_str().unwrap_or_default().to_string();
    (status, code, answer)
}
