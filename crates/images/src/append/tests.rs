//! Tests of appending a layer: onto a root filesystem imported into a real store, with the
//! new layer extracted as overlayfs expects (a whiteout hides a base file).

use super::*;
use crate::config::{appended_config, CREATED_BY};
use serde_json::Value;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::PathBuf;

use crate::manifest::{parse_document, Document, OCI_LAYER_TAR_GZIP};

/// A tar of (name, contents) files and (name/) directories, 0:0.
fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut header = tar::Header::new_gnu();
        if name.ends_with('/') {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
        } else {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
        }
        header.set_size(data.len() as u64);
        header.set_mtime(1_700_000_000);
        builder.append_data(&mut header, name, *data).unwrap();
    }
    builder.into_inner().unwrap()
}

struct Fixture {
    tmp: tempfile::TempDir,
    store: ImageStore,
    base: ImageRecord,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let store = ImageStore::open(tmp.path().join("store")).unwrap();
        let rootfs = tmp.path().join("rootfs.tar");
        fs::write(
            &rootfs,
            tar_of(&[
                ("etc/", b""),
                ("etc/keep.txt", b"kept"),
                ("etc/gone.txt", b"to be deleted"),
                ("bin/", b""),
                ("bin/tool", b"#!/bin/sh\n"),
            ]),
        )
        .unwrap();
        let opts = RootfsOptions {
            cmd: vec!["/bin/tool".into()],
            env: vec!["PATH=/bin".into(), "MODE=base".into()],
            ..RootfsOptions::default()
        };
        let base = store
            .import_archive(&Scope::Global, &rootfs, "base:1", &opts)
            .unwrap();
        Fixture { tmp, store, base }
    }

    fn layer(&self, file: &str, entries: &[(&str, &[u8])]) -> PathBuf {
        let path = self.tmp.path().join(file);
        fs::write(&path, tar_of(entries)).unwrap();
        path
    }

    fn code_layer(&self) -> PathBuf {
        self.layer(
            "code.tar",
            &[
                ("function/", b""),
                ("function/app.py", b"def handle(c, p):\n    return p\n"),
                ("etc/.wh.gone.txt", b""),
            ],
        )
    }
}

fn changes() -> ConfigChanges {
    ConfigChanges {
        env: vec!["MODE=code".into(), "EXTRA=1".into()],
        workdir: Some("/function".into()),
    }
}

#[test]
fn appended_image_has_the_base_layers_and_the_new_one() {
    let f = Fixture::new();
    let ns = Scope::of(Some("demo"));
    let layer = f.code_layer();
    let image = f
        .store
        .append_layer(&ns, &f.base.digest, &layer, "fn-echo", &changes())
        .unwrap();

    assert_eq!(image.namespace.as_deref(), Some("demo"));
    assert_eq!(image.layers.len(), 2);
    assert_eq!(image.layers[0], f.base.layers[0]);
    assert_ne!(image.digest, f.base.digest);
    assert_eq!(image.config.env, ["PATH=/bin", "MODE=code", "EXTRA=1"]);
    assert_eq!(image.config.workdir, "/function");
    assert_eq!(image.config.cmd, ["/bin/tool"]);
    assert_eq!(
        image.layers[1].diff_id,
        crate::digest::sha256_of(&fs::read(&layer).unwrap())
    );

    // The new layer's directory holds the new files, and a whiteout (a 0:0 character device)
    // where the deleted base file was; the base's layer is unchanged.
    let dirs = f.store.layer_dirs(&image.layers);
    assert_eq!(dirs.len(), 2);
    assert_eq!(
        fs::read_to_string(dirs[1].join("function/app.py")).unwrap(),
        "def handle(c, p):\n    return p\n"
    );
    let whiteout = fs::symlink_metadata(dirs[1].join("etc/gone.txt")).unwrap();
    assert!(whiteout.file_type().is_char_device());
    assert_eq!(whiteout.rdev(), 0);
    assert!(!dirs[1].join("etc/keep.txt").exists());
    assert_eq!(
        fs::read_to_string(dirs[0].join("etc/gone.txt")).unwrap(),
        "to be deleted"
    );
    // What the image reads, topmost layer first: the whiteout hides the file.
    assert_eq!(
        f.store.read_small_file(&image.layers, "etc/keep.txt", 100),
        Some("kept".into())
    );

    // The manifest lists the base's blob and the new one, gzip; the config extends the base's.
    let manifest = fs::read(f.store.blob_path(&image.digest).unwrap()).unwrap();
    let Document::Manifest(manifest) = parse_document(&manifest, Some(false), "m").unwrap() else {
        panic!("not a manifest");
    };
    assert_eq!(manifest.layers.len(), 2);
    assert_eq!(manifest.layers[0].digest, f.base.layers[0].digest);
    assert_eq!(manifest.layers[1].digest, image.layers[1].digest);
    assert_eq!(
        manifest.layers[1].media_type.as_deref(),
        Some(OCI_LAYER_TAR_GZIP)
    );
    let config: Value = serde_json::from_slice(
        &fs::read(f.store.blob_path(&manifest.config.digest).unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(
        config["rootfs"]["diff_ids"],
        serde_json::json!([f.base.layers[0].diff_id, image.layers[1].diff_id])
    );
    let history = config["history"].as_array().unwrap();
    assert_eq!(history.last().unwrap()["created_by"], CREATED_BY);
    assert!(history.last().unwrap().get("created").is_none());

    // The name is in the namespace's table only.
    assert!(f.store.get(&ns, "fn-echo").unwrap().is_some());
    assert!(f.store.get(&Scope::Global, "fn-echo").unwrap().is_none());
}

#[test]
fn same_inputs_give_the_same_digest() {
    let f = Fixture::new();
    let layer = f.code_layer();
    let a = f
        .store
        .append_layer(&Scope::Global, &f.base.digest, &layer, "a", &changes())
        .unwrap();
    // A copy of the same bytes elsewhere, another name, another table: the same image.
    let copy = f.tmp.path().join("copy.tar");
    fs::copy(&layer, &copy).unwrap();
    let ns = Scope::of(Some("other"));
    let b = f
        .store
        .append_layer(&ns, &f.base.digest, &copy, "b", &changes())
        .unwrap();
    assert_eq!(a.digest, b.digest);
    assert_eq!(a.layers, b.layers);

    // Other changes, or other layer bytes, give another image.
    let other_env = ConfigChanges {
        env: vec!["MODE=other".into()],
        ..changes()
    };
    let c = f
        .store
        .append_layer(&Scope::Global, &f.base.digest, &layer, "c", &other_env)
        .unwrap();
    assert_ne!(c.digest, a.digest);
    assert_eq!(c.layers, a.layers);
    let other_layer = f.layer("other.tar", &[("function/app.py", b"x")]);
    let d = f
        .store
        .append_layer(
            &Scope::Global,
            &f.base.digest,
            &other_layer,
            "d",
            &changes(),
        )
        .unwrap();
    assert_ne!(d.digest, a.digest);
    assert_ne!(d.layers[1], a.layers[1]);

    // Appending onto an appended image stacks a third layer.
    let e = f
        .store
        .append_layer(
            &Scope::Global,
            &a.digest,
            &other_layer,
            "e",
            &ConfigChanges::default(),
        )
        .unwrap();
    assert_eq!(e.layers.len(), 3);
    assert_eq!(e.config.workdir, "/function");
}

#[test]
fn refuses_unknown_bases_and_bad_inputs() {
    let f = Fixture::new();
    let layer = f.code_layer();
    let unknown = format!("sha256:{}", "0".repeat(64));
    let err = f
        .store
        .append_layer(&Scope::Global, &unknown, &layer, "x", &changes())
        .unwrap_err();
    assert!(matches!(err, ImageError::NotFound(_)), "{err}");
    assert!(err.is_user_error());
    assert!(err.to_string().contains(&unknown), "{err}");

    let err = f
        .store
        .append_layer(&Scope::Global, "base:1", &layer, "x", &changes())
        .unwrap_err();
    assert!(err.to_string().contains("manifest digest"), "{err}");

    let bad_env = ConfigChanges {
        env: vec!["NOVALUE".into()],
        workdir: None,
    };
    let err = f
        .store
        .append_layer(&Scope::Global, &f.base.digest, &layer, "x", &bad_env)
        .unwrap_err();
    assert!(err.to_string().contains("KEY=VALUE"), "{err}");

    let gz = f.tmp.path().join("code.tar.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), Level::fast());
    enc.write_all(&fs::read(&layer).unwrap()).unwrap();
    fs::write(&gz, enc.finish().unwrap()).unwrap();
    let err = f
        .store
        .append_layer(&Scope::Global, &f.base.digest, &gz, "x", &changes())
        .unwrap_err();
    assert!(err.to_string().contains("uncompressed"), "{err}");

    // A layer that breaks the extraction rules is refused like an import's, and nothing of
    // it is kept.
    let escaping = f.tmp.path().join("escape.tar");
    let mut header = tar::Header::new_gnu();
    header.as_old_mut().name[..9].copy_from_slice(b"../escape");
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(1);
    header.set_mode(0o644);
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, &b"x"[..]).unwrap();
    fs::write(&escaping, builder.into_inner().unwrap()).unwrap();
    let layers_before = fs::read_dir(f.store.layers_dir()).unwrap().count();
    let err = f
        .store
        .append_layer(&Scope::Global, &f.base.digest, &escaping, "x", &changes())
        .unwrap_err();
    assert!(matches!(err, ImageError::UnsafeEntry { .. }), "{err}");
    assert_eq!(
        fs::read_dir(f.store.layers_dir()).unwrap().count(),
        layers_before
    );
    assert!(f.store.get(&Scope::Global, "x").unwrap().is_none());
}

#[test]
fn config_changes_keep_the_rest_of_the_base_config() {
    let base = br#"{"architecture":"amd64","os":"linux","created":"2020-01-01T00:00:00Z",
        "config":{"Env":["A=1","B=2"],"Labels":{"x":"y"}},
        "rootfs":{"type":"layers","diff_ids":["sha256:aa"]},
        "history":[{"created":"2020-01-01T00:00:00Z","created_by":"base"}]}"#;
    let changes = ConfigChanges {
        env: vec!["B=3".into(), "C=4".into(), "A=0".into()],
        workdir: Some("/srv".into()),
    };
    let bytes =
        appended_config(base, &changes, vec!["sha256:aa".into(), "sha256:bb".into()]).unwrap();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["config"]["Env"], serde_json::json!(["A=0", "B=3", "C=4"]));
    assert_eq!(v["config"]["WorkingDir"], "/srv");
    assert_eq!(v["config"]["Labels"]["x"], "y");
    assert_eq!(v["created"], "2020-01-01T00:00:00Z");
    assert_eq!(v["rootfs"]["diff_ids"][1], "sha256:bb");
    assert_eq!(v["history"].as_array().unwrap().len(), 2);
    assert_eq!(
        bytes,
        appended_config(base, &changes, vec!["sha256:aa".into(), "sha256:bb".into()]).unwrap()
    );

    // A base without config or history gets both.
    let bytes = appended_config(b"{}", &changes, vec!["sha256:bb".into()]).unwrap();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["config"]["Env"], serde_json::json!(["B=3", "C=4", "A=0"]));
    assert_eq!(v["history"].as_array().unwrap().len(), 1);

    assert!(appended_config(b"[]", &changes, vec![]).is_err());
    assert!(appended_config(br#"{"config":{"Env":"A=1"}}"#, &changes, vec![]).is_err());
}

#[test]
fn a_code_layer_appends_under_its_directory() {
    let f = Fixture::new();
    // A source tree with a path longer than a plain tar header holds.
    let deep = format!("pkg/{}/mod.py", "d".repeat(120));
    let src = f.layer(
        "src.tar",
        &[("main.py", b"import pkg\n"), (deep.as_str(), b"X = 1\n")],
    );
    let layer = f.tmp.path().join("code-layer.tar");
    let code =
        crate::code_layer(&src, "/function", &layer, &crate::ImportLimits::default()).unwrap();
    assert_eq!(code.paths, ["main.py", deep.as_str()]);
    let image = f
        .store
        .append_layer(&Scope::Global, &f.base.digest, &layer, "fn", &changes())
        .unwrap();
    let top = f.store.layer_dirs(&image.layers).pop().unwrap();
    let main = top.join("function/main.py");
    assert_eq!(fs::read_to_string(&main).unwrap(), "import pkg\n");
    let meta = fs::metadata(&main).unwrap();
    assert_eq!((meta.uid(), meta.gid(), meta.mtime()), (0, 0, 0));
    assert_eq!(
        fs::read_to_string(top.join("function").join(&deep)).unwrap(),
        "X = 1\n"
    );
    // The same source appended again is the same image.
    let again = f.tmp.path().join("code-layer-2.tar");
    crate::code_layer(&src, "/function", &again, &crate::ImportLimits::default()).unwrap();
    let second = f
        .store
        .append_layer(&Scope::Global, &f.base.digest, &again, "fn2", &changes())
        .unwrap();
    assert_eq!(second.digest, image.digest);
}
