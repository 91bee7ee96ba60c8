//! Builders for the archives the integration tests import: layer tars with
//! any entry names (including malicious ones), image configs, `docker save`
//! archives and OCI image layouts.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use faasbox_images::{ImageStore, Scope};
use sha2::{Digest, Sha256};

pub const MTIME: u64 = 1_700_000_000;

/// A tar written entry by entry, with names exactly as given.
pub struct TarBuilder {
    builder: tar::Builder<Vec<u8>>,
}

impl Default for TarBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl TarBuilder {
    pub fn new() -> Self {
        TarBuilder {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    fn header(kind: tar::EntryType, name: &str, size: usize, mode: u32) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        let raw = name.as_bytes();
        assert!(raw.len() < 100, "test names must fit the header");
        header.as_old_mut().name[..raw.len()].copy_from_slice(raw);
        header.set_entry_type(kind);
        header.set_size(size as u64);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(MTIME);
        header
    }

    fn append(&mut self, mut header: tar::Header, data: &[u8]) -> &mut Self {
        header.set_cksum();
        self.builder.append(&header, data).unwrap();
        self
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.file_mode(name, data, 0o644)
    }

    pub fn file_mode(&mut self, name: &str, data: &[u8], mode: u32) -> &mut Self {
        let header = Self::header(tar::EntryType::Regular, name, data.len(), mode);
        self.append(header, data)
    }

    pub fn dir(&mut self, name: &str) -> &mut Self {
        let header = Self::header(tar::EntryType::Directory, name, 0, 0o755);
        self.append(header, b"")
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        let mut header = Self::header(tar::EntryType::Symlink, name, 0, 0o777);
        header.set_link_name_literal(target).unwrap();
        self.append(header, b"")
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        let mut header = Self::header(tar::EntryType::Link, name, 0, 0o644);
        header.set_link_name_literal(target).unwrap();
        self.append(header, b"")
    }

    pub fn device(
        &mut self,
        name: &str,
        kind: tar::EntryType,
        major: u32,
        minor: u32,
    ) -> &mut Self {
        let mut header = Self::header(kind, name, 0, 0o666);
        header.set_device_major(major).unwrap();
        header.set_device_minor(minor).unwrap();
        self.append(header, b"")
    }

    pub fn finish(&mut self) -> Vec<u8> {
        let builder = std::mem::replace(&mut self.builder, tar::Builder::new(Vec::new()));
        builder.into_inner().unwrap()
    }
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

pub fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap()
}

/// A layer: its uncompressed tar and the blob as shipped.
#[derive(Clone)]
pub struct Layer {
    pub tar: Vec<u8>,
    pub blob: Vec<u8>,
}

impl Layer {
    pub fn plain(tar: Vec<u8>) -> Layer {
        Layer {
            blob: tar.clone(),
            tar,
        }
    }

    pub fn gz(tar: Vec<u8>) -> Layer {
        Layer {
            blob: gzip(&tar),
            tar,
        }
    }

    pub fn diff_id(&self) -> String {
        sha256(&self.tar)
    }

    pub fn digest(&self) -> String {
        sha256(&self.blob)
    }

    pub fn media_type(&self) -> &'static str {
        if self.blob.starts_with(&[0x1f, 0x8b]) {
            "application/vnd.oci.image.layer.v1.tar+gzip"
        } else {
            "application/vnd.oci.image.layer.v1.tar"
        }
    }
}

/// A base layer with the real busybox and a couple of links to it.
pub fn busybox_layer() -> Layer {
    let busybox = fs::read("/bin/busybox").unwrap();
    Layer::plain(
        TarBuilder::new()
            .dir("bin/")
            .file_mode("bin/busybox", &busybox, 0o755)
            .symlink("bin/sh", "busybox")
            .hardlink("bin/ls", "bin/busybox")
            .dir("etc/")
            .file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
            .file("etc/motd", b"welcome\n")
            .finish(),
    )
}

/// A small layer with one file of the given text.
pub fn app_layer(text: &str) -> Layer {
    Layer::plain(
        TarBuilder::new()
            .dir("app/")
            .file_mode("app/run.sh", text.as_bytes(), 0o755)
            .finish(),
    )
}

/// An image config in the docker/OCI format.
pub fn config_json(
    layers: &[&Layer],
    entrypoint: &[&str],
    cmd: &[&str],
    env: &[&str],
    workdir: &str,
) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id()).collect();
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Entrypoint": entrypoint,
            "Cmd": cmd,
            "Env": env,
            "WorkingDir": workdir,
            "User": "",
            "ExposedPorts": {"8080/tcp": {}},
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "test"}],
    }))
    .unwrap()
}

/// A `docker save` archive in the classic layout (`<n>/layer.tar`,
/// `<hex>.json`, `manifest.json` last). Layers repeated (same diff ID) are
/// written once and symlinked, as docker does.
pub fn docker_archive(layers: &[&Layer], config: &[u8], tag: &str) -> Vec<u8> {
    let mut tar = TarBuilder::new();
    let mut names: Vec<String> = Vec::new();
    let mut written: Vec<(String, String)> = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let dir = format!("{i:02}layer");
        let name = format!("{dir}/layer.tar");
        tar.dir(&format!("{dir}/"));
        if let Some((_, first)) = written.iter().find(|(d, _)| *d == layer.diff_id()) {
            tar.symlink(&name, &format!("../{first}"));
        } else {
            tar.file(&name, &layer.blob);
            written.push((layer.diff_id(), name.clone()));
        }
        names.push(name);
    }
    let config_name = format!("{}.json", hex_of(&sha256(config)));
    tar.file(&config_name, config);
    let manifest = serde_json::json!([{
        "Config": config_name,
        "RepoTags": [tag],
        "Layers": names,
    }]);
    tar.file("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    tar.finish()
}

/// A docker 25+ style archive: blobs under `blobs/sha256/`, referenced from
/// manifest.json (without the OCI files, to exercise the docker path).
pub fn docker_archive_blobs(layers: &[&Layer], config: &[u8]) -> Vec<u8> {
    let mut tar = TarBuilder::new();
    tar.dir("blobs/").dir("blobs/sha256/");
    let mut names = Vec::new();
    for layer in layers {
        let name = format!("blobs/sha256/{}", hex_of(&layer.digest()));
        tar.file(&name, &layer.blob);
        names.push(name);
    }
    let config_name = format!("blobs/sha256/{}", hex_of(&sha256(config)));
    tar.file(&config_name, config);
    let manifest = serde_json::json!([{"Config": config_name, "RepoTags": null, "Layers": names}]);
    tar.file("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    tar.finish()
}

/// Writes a blob into an OCI layout directory; returns its descriptor.
pub fn put_blob(layout: &Path, media_type: &str, bytes: &[u8]) -> serde_json::Value {
    let digest = sha256(bytes);
    let dir = layout.join("blobs/sha256");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(hex_of(&digest)), bytes).unwrap();
    serde_json::json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
}

/// The OCI manifest of `config` and `layers`, as JSON bytes.
pub fn oci_manifest(layout: &Path, layers: &[&Layer], config: &[u8]) -> Vec<u8> {
    let config_desc = put_blob(layout, "application/vnd.oci.image.config.v1+json", config);
    let layer_descs: Vec<serde_json::Value> = layers
        .iter()
        .map(|l| put_blob(layout, l.media_type(), &l.blob))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_desc,
        "layers": layer_descs,
    }))
    .unwrap()
}

/// Writes an OCI image layout at `layout`. With `nested`, index.json points
/// at an image index listing an arm64 manifest (whose blobs are absent), the
/// amd64 manifest and an attestation. Returns the amd64 manifest digest.
pub fn oci_layout(layout: &Path, layers: &[&Layer], config: &[u8], nested: bool) -> String {
    fs::create_dir_all(layout).unwrap();
    fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let manifest = oci_manifest(layout, layers, config);
    let manifest_desc = put_blob(
        layout,
        "application/vnd.oci.image.manifest.v1+json",
        &manifest,
    );
    let top = if nested {
        let mut amd64 = manifest_desc.clone();
        amd64["platform"] = serde_json::json!({"architecture": "amd64", "os": "linux"});
        let absent = format!("sha256:{}", "0".repeat(64));
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": absent,
                 "size": 10, "platform": {"architecture": "arm64", "os": "linux"}},
                amd64,
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": absent,
                 "size": 10, "platform": {"architecture": "unknown", "os": "unknown"},
                 "annotations": {"vnd.docker.reference.type": "attestation-manifest"}},
            ],
        });
        let bytes = serde_json::to_vec(&index).unwrap();
        let mut desc = put_blob(layout, "application/vnd.oci.image.index.v1+json", &bytes);
        desc["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "latest"});
        desc
    } else {
        let mut desc = manifest_desc;
        desc["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "latest"});
        desc
    };
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [top]});
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    sha256(&manifest)
}

/// A tar of a directory tree (for OCI layout tars).
pub fn tar_dir(dir: &Path) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.append_dir_all(".", dir).unwrap();
    builder.into_inner().unwrap()
}

/// A test store in a temporary directory, with helpers to look inside.
pub struct TestStore {
    pub tmp: tempfile::TempDir,
    pub store: ImageStore,
}

impl TestStore {
    pub fn new() -> TestStore {
        let tmp = tempfile::tempdir().unwrap();
        let store = ImageStore::open(tmp.path().join("store")).unwrap();
        TestStore { tmp, store }
    }

    /// Writes `bytes` to a file in the test directory.
    pub fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.tmp.path().join(name);
        fs::write(&path, bytes).unwrap();
        path
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

    pub fn layer_names(&self) -> Vec<String> {
        self.names_in("layers")
    }

    pub fn blob_names(&self) -> Vec<String> {
        self.names_in("blobs/sha256")
    }

    pub fn tmp_names(&self) -> Vec<String> {
        self.names_in("tmp")
    }

    /// Asserts the store holds nothing at all.
    pub fn assert_empty(&self) {
        assert!(
            self.store.list(&Scope::Global).unwrap().is_empty(),
            "no names recorded"
        );
        assert_eq!(self.tmp_names(), Vec::<String>::new(), "tmp/ is empty");
        assert_eq!(self.layer_names(), Vec::<String>::new(), "no layer dirs");
        assert_eq!(self.blob_names(), Vec::<String>::new(), "no blobs");
    }
}
