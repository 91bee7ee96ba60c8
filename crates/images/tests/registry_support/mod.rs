//! What the registry tests run against: a real `docker-registry` (the
//! Debian package of distribution/registry 2.x, started by the shared
//! `faasbox-test-registry` crate) on a free loopback port with
//! htpasswd users, images built as OCI layouts and copied into it with
//! `skopeo`, and a loopback TCP proxy that counts — and can cut — the bytes
//! the registry sends.
#![allow(dead_code)]

pub mod token;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use faasbox_images::{ImageStore, RegistryAuth, Scope};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream as AsyncTcpStream};

use crate::common::{put_blob, sha256, Layer, TarBuilder};

/// The user skopeo pushes with.
pub const USER: &str = "user";
pub const PASS: &str = "pass";
/// A second user whose password has the characters that break naive
/// URL or shell handling (the Direktiv docs' example, plus a colon).
pub const ADMIN: &str = "admin";
pub const ADMIN_PASS: &str = "8QwFLg%D$qg*:x";

pub use faasbox_test_registry::{TOKEN_ISSUER, TOKEN_SERVICE};

pub fn user() -> RegistryAuth {
    RegistryAuth {
        username: USER.into(),
        password: PASS.into(),
    }
}

/// A running `docker-registry` (from the shared test-support crate).
pub struct Registry(faasbox_test_registry::Registry);

impl Registry {
    /// A registry with basic auth for [`USER`] and [`ADMIN`].
    pub fn start() -> Registry {
        Registry(faasbox_test_registry::Registry::start_htpasswd(&[
            (USER, PASS),
            (ADMIN, ADMIN_PASS),
        ]))
    }

    /// A registry that wants bearer tokens from `realm`, signed by the
    /// certificate in the PEM file `cert`.
    pub fn start_token(realm: &str, cert: &Path) -> Registry {
        Registry(faasbox_test_registry::Registry::start_token(realm, cert))
    }

    /// Copies an image into the registry with skopeo as [`USER`].
    pub fn skopeo_copy(&self, source: &str, path: &str, extra: &[&str]) {
        skopeo_push(source, &self.reference(path), extra);
    }
}

impl std::ops::Deref for Registry {
    type Target = faasbox_test_registry::Registry;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// `skopeo copy` of `source` to `docker://<dest>` as [`USER`]. Digests
/// are preserved (skopeo would otherwise gzip uncompressed layers) unless
/// `extra` asks for a manifest format conversion.
pub fn skopeo_push(source: &str, dest: &str, extra: &[&str]) {
    let mut cmd = Command::new("skopeo");
    cmd.args([
        "--insecure-policy",
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
    ])
    .args(["--dest-creds", &format!("{USER}:{PASS}")]);
    if !extra.contains(&"--format") {
        cmd.arg("--preserve-digests");
    }
    let out = cmd
        .args(extra)
        .arg(source)
        .arg(format!("docker://{dest}"))
        .stdin(Stdio::null())
        .output()
        .expect("skopeo (apt-get install skopeo)");
    assert!(
        out.status.success(),
        "skopeo copy {source} {dest} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A store in a temporary directory.
pub struct Store {
    pub tmp: tempfile::TempDir,
    pub store: Arc<ImageStore>,
}

impl Store {
    pub fn new() -> Store {
        let tmp = tempfile::tempdir().unwrap();
        let store = Arc::new(ImageStore::open(tmp.path().join("store")).unwrap());
        Store { tmp, store }
    }

    pub fn root(&self) -> &Path {
        self.store.root()
    }

    pub fn names_in(&self, sub: &str) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.root().join(sub))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Unfinished downloads.
    pub fn partials(&self) -> Vec<String> {
        let mut names = self.names_in("downloads");
        names.retain(|n| n.ends_with(".partial"));
        names
    }

    /// Asserts that no image, blob, layer or scratch file is stored.
    pub fn assert_nothing_stored(&self) {
        assert!(
            self.store.list(&Scope::Global).unwrap().is_empty(),
            "no names recorded"
        );
        assert!(self.names_in("blobs/sha256").is_empty(), "no blobs");
        assert!(self.names_in("layers").is_empty(), "no layers");
        assert!(self.names_in("tmp").is_empty(), "no scratch left");
    }
}

/// An OCI image layout with a config and layers, tagged `latest`.
pub struct Layout {
    pub dir: PathBuf,
    pub manifest_digest: String,
    pub config: Vec<u8>,
    pub layers: Vec<Layer>,
}

impl Layout {
    /// `oci:<dir>:latest`, for skopeo.
    pub fn source(&self) -> String {
        format!("oci:{}:latest", self.dir.display())
    }

    pub fn diff_ids(&self) -> Vec<String> {
        self.layers.iter().map(Layer::diff_id).collect()
    }
}

/// An image config for `arch`, with a recognisable run configuration.
pub fn config_for(layers: &[&Layer], arch: &str) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id()).collect();
    serde_json::to_vec(&serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "config": {
            "Entrypoint": ["/bin/sh", "-c"],
            "Cmd": [format!("echo {arch}")],
            "Env": ["PATH=/bin", format!("ARCH={arch}")],
            "WorkingDir": "/app",
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap()
}

/// Writes an OCI layout of `layers` for linux/amd64 into `dir`.
pub fn layout(dir: &Path, layers: Vec<Layer>) -> Layout {
    let refs: Vec<&Layer> = layers.iter().collect();
    let config = config_for(&refs, "amd64");
    let manifest_digest = crate::common::oci_layout(dir, &refs, &config, false);
    Layout {
        dir: dir.to_path_buf(),
        manifest_digest,
        config,
        layers,
    }
}

/// A layer of `len` random (incompressible) bytes in one file.
pub fn random_layer(len: usize) -> Layer {
    let mut data = vec![0u8; len];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut data))
        .unwrap();
    Layer::plain(TarBuilder::new().file("big.bin", &data).finish())
}

/// An OCI layout whose `latest` is an image index with one linux image per
/// `(architecture, layers)`, in that order; returns the layout and the
/// manifest digests.
pub fn index_layout(dir: &Path, images: &[(&str, Vec<&Layer>)]) -> (PathBuf, Vec<String>) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let mut entries = Vec::new();
    let mut digests = Vec::new();
    for (arch, layers) in images {
        let config = config_for(layers, arch);
        let manifest = crate::common::oci_manifest(dir, layers, &config);
        let mut desc = put_blob(dir, "application/vnd.oci.image.manifest.v1+json", &manifest);
        desc["platform"] = serde_json::json!({"architecture": arch, "os": "linux"});
        digests.push(sha256(&manifest));
        entries.push(desc);
    }
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    }))
    .unwrap();
    let mut top = put_blob(dir, "application/vnd.oci.image.index.v1+json", &index);
    top["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "latest"});
    fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [top]})).unwrap(),
    )
    .unwrap();
    (dir.to_path_buf(), digests)
}

/// A loopback TCP proxy in front of a registry. It counts the bytes sent
/// back to clients and, while a limit is set, closes every connection once
/// that many bytes have gone out in total. It can flip one byte of what it
/// sends, and with `hide_range` it renames the `Range` request header, so
/// the registry answers with whole blobs.
pub struct Proxy {
    pub addr: String,
    knobs: Arc<Knobs>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct Knobs {
    served: AtomicU64,
    limit: AtomicU64,
    corrupt_at: AtomicU64,
    hide_range: AtomicBool,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let knobs = Arc::new(Knobs {
            limit: AtomicU64::new(u64::MAX),
            corrupt_at: AtomicU64::new(u64::MAX),
            ..Knobs::default()
        });
        let upstream = upstream.to_string();
        let k = knobs.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = AsyncTcpStream::connect(&upstream).await else {
                    continue;
                };
                tokio::spawn(relay(client, server, k.clone()));
            }
        });
        Proxy { addr, knobs, task }
    }

    /// Cut connections after `bytes` more bytes (`None`: never); also
    /// restarts the count of bytes served.
    pub fn cut_after(&self, bytes: Option<u64>) {
        self.knobs.served.store(0, Ordering::SeqCst);
        self.knobs
            .limit
            .store(bytes.unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    /// Flip the byte served at this count (`None`: none).
    pub fn corrupt_at(&self, at: Option<u64>) {
        self.knobs
            .corrupt_at
            .store(at.unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    pub fn hide_range(&self, hide: bool) {
        self.knobs.hide_range.store(hide, Ordering::SeqCst);
    }

    /// Bytes sent to clients since the last `cut_after`.
    pub fn served(&self) -> u64 {
        self.knobs.served.load(Ordering::SeqCst)
    }

    pub fn reference(&self, path: &str) -> String {
        format!("{}/{path}", self.addr)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(client: AsyncTcpStream, server: AsyncTcpStream, knobs: Arc<Knobs>) {
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = server.into_split();
    let k = knobs.clone();
    let up = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match client_rx.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if k.hide_range.load(Ordering::SeqCst) {
                rename_header(&mut buf[..n], b"\r\nrange:", b"\r\nxange:");
            }
            if server_tx.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    });
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match server_rx.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n as u64,
        };
        let before = knobs.served.fetch_add(n, Ordering::SeqCst);
        let limit = knobs.limit.load(Ordering::SeqCst);
        let corrupt_at = knobs.corrupt_at.load(Ordering::SeqCst);
        if (before..before + n).contains(&corrupt_at) {
            buf[(corrupt_at - before) as usize] ^= 0xff;
        }
        if before + n > limit {
            let allowed = limit.saturating_sub(before) as usize;
            let _ = client_tx.write_all(&buf[..allowed]).await;
            break;
        }
        if client_tx.write_all(&buf[..n as usize]).await.is_err() {
            break;
        }
    }
    // Closing both directions ends the connection mid-response.
    let _ = client_tx.shutdown().await;
    up.abort();
}

/// Replaces every case-insensitive occurrence of `from` by `to` (same length).
fn rename_header(buf: &mut [u8], from: &[u8], to: &[u8]) {
    let mut i = 0;
    while i + from.len() <= buf.len() {
        if buf[i..i + from.len()].eq_ignore_ascii_case(from) {
            buf[i..i + from.len()].copy_from_slice(to);
            i += from.len();
        } else {
            i += 1;
        }
    }
}
