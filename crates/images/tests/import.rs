//! Importing each archive format into a real store.

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use common::*;
use faasbox_images::{ImageError, RootfsOptions, RunConfig, Scope};

#[test]
fn imports_a_docker_archive() {
    let t = TestStore::new();
    let base = busybox_layer();
    let top = Layer::gz(
        TarBuilder::new()
            .dir("app/")
            .file_mode("app/handler", b"#!/bin/sh\necho hi\n", 0o755)
            .file("etc/.wh.motd", b"")
            .finish(),
    );
    let config = config_json(
        &[&base, &top],
        &["/bin/sh"],
        &["/app/handler"],
        &["PATH=/bin", "MODE=test"],
        "/app",
    );
    let archive = t.file(
        "echo.tar",
        &docker_archive(&[&base, &top], &config, "demo/echo:latest"),
    );

    let image = t
        .store
        .import_archive(
            &Scope::Global,
            &archive,
            "demo/echo",
            &RootfsOptions::default(),
        )
        .unwrap();
    assert_eq!(image.name, "demo/echo:latest");
    assert_eq!(
        image.config,
        RunConfig {
            entrypoint: vec!["/bin/sh".into()],
            cmd: vec!["/app/handler".into()],
            env: vec!["PATH=/bin".into(), "MODE=test".into()],
            workdir: "/app".into(),
            user: String::new(),
        }
    );
    assert_eq!(image.layers.len(), 2);
    assert_eq!(image.layers[0].diff_id, base.diff_id());
    assert_eq!(image.layers[0].digest, base.digest());
    assert_eq!(image.layers[1].digest, top.digest());
    assert_eq!(image.layers[1].diff_id, top.diff_id());
    assert_eq!(image.size, (base.blob.len() + top.blob.len()) as u64);
    assert!(time_is_rfc3339(&image.created), "{}", image.created);

    // The synthesised OCI manifest is stored and is what the digest names.
    let manifest = fs::read(t.store.blob_path(&image.digest).unwrap()).unwrap();
    assert_eq!(sha256(&manifest), image.digest);
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(manifest["config"]["digest"], sha256(&config));
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar"
    );
    assert_eq!(
        manifest["layers"][1]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    assert_eq!(
        fs::read(t.store.blob_path(&sha256(&config)).unwrap()).unwrap(),
        config
    );
    assert_eq!(
        fs::read(t.store.blob_path(&top.digest()).unwrap()).unwrap(),
        top.blob,
        "layer blobs are kept as received"
    );

    let dirs = t.store.layer_dirs(&image.layers);
    assert_eq!(dirs.len(), 2);
    assert_eq!(
        fs::read(dirs[0].join("bin/busybox")).unwrap(),
        fs::read("/bin/busybox").unwrap()
    );
    assert_eq!(
        fs::read_link(dirs[0].join("bin/sh")).unwrap().to_str(),
        Some("busybox")
    );
    assert_eq!(
        fs::metadata(dirs[0].join("bin/ls")).unwrap().ino(),
        fs::metadata(dirs[0].join("bin/busybox")).unwrap().ino()
    );
    assert!(dirs[1].join("app/handler").is_file());
    let whiteout = fs::symlink_metadata(dirs[1].join("etc/motd")).unwrap();
    assert!(whiteout.file_type().is_char_device() && whiteout.rdev() == 0);
    assert!(t.tmp_names().is_empty());

    assert_eq!(
        t.store.get(&Scope::Global, "demo/echo").unwrap(),
        Some(image.clone())
    );
    assert_eq!(
        t.store.get(&Scope::Global, &image.digest).unwrap(),
        Some(image.clone())
    );
    assert_eq!(
        t.store.get(&Scope::Global, hex_of(&image.digest)).unwrap(),
        Some(image)
    );
}

fn time_is_rfc3339(s: &str) -> bool {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok()
}

#[test]
fn imports_docker_archives_with_linked_and_blob_named_layers() {
    let t = TestStore::new();
    let base = busybox_layer();
    let app = app_layer("echo app");
    // Docker links a repeated layer to its first copy.
    let config = config_json(&[&base, &app, &base], &[], &["sh"], &[], "");
    let archive = t.file(
        "linked.tar",
        &docker_archive(&[&base, &app, &base], &config, "x"),
    );
    let image = t
        .store
        .import_archive(
            &Scope::Global,
            &archive,
            "linked",
            &RootfsOptions::default(),
        )
        .unwrap();
    assert_eq!(image.layers.len(), 3);
    assert_eq!(image.layers[2].diff_id, base.diff_id());
    let dirs = t.store.layer_dirs(&image.layers);
    assert_eq!(
        dirs.len(),
        2,
        "a repeated layer is listed once, at its top position"
    );
    assert!(dirs[0].join("app/run.sh").is_file());
    assert!(dirs[1].join("bin/busybox").is_file());
    assert_eq!(t.layer_names().len(), 2);

    // Docker 25+ names (blobs/sha256/<hex>), gzip-compressed outer archive.
    let config = config_json(&[&app], &[], &["run"], &[], "");
    let archive = t.file(
        "blobs.tar.gz",
        &gzip(&docker_archive_blobs(&[&app], &config)),
    );
    let image = t
        .store
        .import_archive(
            &Scope::Global,
            &archive,
            "blobs:v1",
            &RootfsOptions::default(),
        )
        .unwrap();
    assert_eq!(image.config.cmd, ["run"]);
    assert_eq!(image.layers[0].digest, app.digest());
    assert_eq!(t.layer_names().len(), 2, "the app layer is shared");
}

#[test]
fn imports_an_oci_layout_directory_with_a_nested_index() {
    let t = TestStore::new();
    let base = Layer::gz(busybox_layer().tar);
    let app = Layer::gz(app_layer("echo oci").tar);
    let config = config_json(&[&base, &app], &["/app/run.sh"], &[], &["A=1"], "/");
    let layout = t.tmp.path().join("layout");
    let manifest_digest = oci_layout(&layout, &[&base, &app], &config, true);

    let image = t
        .store
        .import_oci_dir(&Scope::Global, &layout, "oci/demo:1")
        .unwrap();
    assert_eq!(image.name, "oci/demo:1");
    assert_eq!(
        image.digest, manifest_digest,
        "the original manifest is kept"
    );
    assert_eq!(image.config.entrypoint, ["/app/run.sh"]);
    assert_eq!(image.config.env, ["A=1"]);
    assert_eq!(image.config.workdir, "/");
    assert_eq!(image.layers[0].digest, base.digest());
    assert_eq!(image.layers[0].diff_id, base.diff_id());
    assert_eq!(image.size, (base.blob.len() + app.blob.len()) as u64);
    let dirs = t.store.layer_dirs(&image.layers);
    assert!(dirs[0].join("bin/busybox").is_file());
    assert_eq!(fs::read(dirs[1].join("app/run.sh")).unwrap(), b"echo oci");
    assert!(
        layout.join("index.json").is_file(),
        "the source is left alone"
    );

    // The same layout as a gzip-compressed tar gives the same image.
    let archive = t.file("layout.tar.gz", &gzip(&tar_dir(&layout)));
    let again = t
        .store
        .import_archive(
            &Scope::Global,
            &archive,
            "oci/demo:tar",
            &RootfsOptions::default(),
        )
        .unwrap();
    assert_eq!(again.digest, image.digest);
    assert_eq!(again.layers, image.layers);
    assert_eq!(t.layer_names().len(), 2);
    assert_eq!(t.store.list(&Scope::Global).unwrap().len(), 2);
    assert!(t.tmp_names().is_empty());
}

#[test]
fn imports_an_uncompressed_oci_layout_tar() {
    let t = TestStore::new();
    let app = app_layer("plain");
    let config = config_json(&[&app], &[], &["x"], &[], "");
    let layout = t.tmp.path().join("layout");
    oci_layout(&layout, &[&app], &config, false);
    let archive = t.file("layout.tar", &tar_dir(&layout));
    let image = t
        .store
        .import_archive(&Scope::Global, &archive, "plain", &RootfsOptions::default())
        .unwrap();
    assert_eq!(image.config.cmd, ["x"]);
    assert_eq!(
        image.layers[0].digest,
        app.diff_id(),
        "uncompressed: digest = diff_id"
    );
}

#[test]
fn imports_root_filesystem_tarballs() {
    let t = TestStore::new();
    let rootfs = busybox_layer().tar;
    let opts = RootfsOptions {
        entrypoint: vec!["/bin/sh".into(), "-c".into()],
        cmd: vec!["echo hello".into()],
        env: vec!["PATH=/bin".into()],
        workdir: Some("/tmp".into()),
        user: Some("1000:1000".into()),
    };
    let plain = t.file("rootfs.tar", &rootfs);
    let image = t
        .store
        .import_archive(&Scope::Global, &plain, "fs/plain", &opts)
        .unwrap();
    assert_eq!(
        image.config,
        RunConfig {
            entrypoint: opts.entrypoint.clone(),
            cmd: opts.cmd.clone(),
            env: opts.env.clone(),
            workdir: "/tmp".into(),
            user: "1000:1000".into(),
        }
    );
    assert_eq!(image.layers.len(), 1);
    assert_eq!(image.layers[0].diff_id, sha256(&rootfs));
    assert_eq!(image.layers[0].digest, sha256(&rootfs));
    assert_eq!(image.size, rootfs.len() as u64);
    let dir = &t.store.layer_dirs(&image.layers)[0];
    assert!(dir.join("bin/busybox").is_file());

    // The stored config is an OCI image config for this machine.
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(t.store.blob_path(&image.digest).unwrap()).unwrap())
            .unwrap();
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    let config: serde_json::Value =
        serde_json::from_slice(&fs::read(t.store.blob_path(config_digest).unwrap()).unwrap())
            .unwrap();
    assert_eq!(config["os"], "linux");
    assert_eq!(config["rootfs"]["diff_ids"][0], sha256(&rootfs));

    // Same tarball, same options: same digest (no timestamps in the config).
    let again = t
        .store
        .import_archive(&Scope::Global, &plain, "fs/again", &opts)
        .unwrap();
    assert_eq!(again.digest, image.digest);

    // The gzip version is another blob but the same layer, extracted once.
    let gz = t.file("rootfs.tar.gz", &gzip(&rootfs));
    let inode = fs::metadata(dir).unwrap().ino();
    let zipped = t
        .store
        .import_archive(&Scope::Global, &gz, "fs/gz", &RootfsOptions::default())
        .unwrap();
    assert_eq!(zipped.layers[0].diff_id, image.layers[0].diff_id);
    assert_ne!(zipped.layers[0].digest, image.layers[0].digest);
    assert_eq!(zipped.config, RunConfig::default());
    assert_eq!(t.layer_names().len(), 1);
    assert_eq!(fs::metadata(dir).unwrap().ino(), inode);
}

#[test]
fn shares_layers_between_images() {
    let t = TestStore::new();
    let base = busybox_layer();
    let one = app_layer("one");
    let two = app_layer("two");
    let c1 = config_json(&[&base, &one], &[], &["one"], &[], "");
    let c2 = config_json(&[&base, &two], &[], &["two"], &[], "");
    let a1 = t.file("one.tar", &docker_archive(&[&base, &one], &c1, "one"));
    let a2 = t.file("two.tar", &docker_archive(&[&base, &two], &c2, "two"));

    let first = t
        .store
        .import_archive(&Scope::Global, &a1, "one", &RootfsOptions::default())
        .unwrap();
    let base_dir = t.store.layer_dirs(&first.layers)[0].clone();
    let inode = fs::metadata(&base_dir).unwrap().ino();
    let second = t
        .store
        .import_archive(&Scope::Global, &a2, "two", &RootfsOptions::default())
        .unwrap();
    assert_eq!(t.store.layer_dirs(&second.layers)[0], base_dir);
    assert_eq!(
        fs::metadata(&base_dir).unwrap().ino(),
        inode,
        "not extracted again"
    );
    assert_eq!(t.layer_names().len(), 3);
}

#[test]
fn refuses_zstd_layers() {
    let t = TestStore::new();
    let app = app_layer("z");
    let config = config_json(&[&app], &[], &[], &[], "");
    let layout = t.tmp.path().join("layout");
    oci_layout(&layout, &[&app], &config, false);
    // Rewrite the manifest to claim zstd.
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let manifest_path = layout.join("blobs/sha256").join(hex_of(&digest));
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(&manifest_path).unwrap()).unwrap();
    manifest["layers"][0]["mediaType"] = "application/vnd.oci.image.layer.v1.tar+zstd".into();
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let desc = put_blob(
        &layout,
        "application/vnd.oci.image.manifest.v1+json",
        &bytes,
    );
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [desc]})).unwrap(),
    )
    .unwrap();

    let err = t
        .store
        .import_oci_dir(&Scope::Global, &layout, "z")
        .unwrap_err();
    assert!(matches!(err, ImageError::Unsupported(_)), "{err}");
    assert!(err.to_string().contains("zstd"), "{err}");
    t.assert_empty();
}

#[test]
fn refuses_digest_mismatches() {
    // A layer blob whose content does not match its name and descriptor.
    let t = TestStore::new();
    let base = busybox_layer();
    let app = app_layer("tamper");
    let config = config_json(&[&base, &app], &[], &[], &[], "");
    let layout = t.tmp.path().join("layout");
    oci_layout(&layout, &[&base, &app], &config, true);
    let blob = layout.join("blobs/sha256").join(hex_of(&app.digest()));
    let mut tampered = app.blob.clone();
    let last = tampered.len() - 2000;
    tampered[last] ^= 1;
    fs::write(&blob, &tampered).unwrap();
    let err = t
        .store
        .import_oci_dir(&Scope::Global, &layout, "tampered")
        .unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    assert!(err.to_string().contains(&app.digest()), "{err}");
    t.assert_empty();

    // Same through a tar of the layout.
    let archive = t.file("tampered.tar", &tar_dir(&layout));
    let err = t
        .store
        .import_archive(
            &Scope::Global,
            &archive,
            "tampered",
            &RootfsOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    t.assert_empty();

    // A config whose diff IDs do not match the layers.
    let t = TestStore::new();
    let wrong = config_json(&[&base, &base], &[], &[], &[], "");
    let archive = t.file("wrong.tar", &docker_archive(&[&base, &app], &wrong, "w"));
    let err = t
        .store
        .import_archive(&Scope::Global, &archive, "wrong", &RootfsOptions::default())
        .unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    assert!(err.to_string().contains("uncompressed"), "{err}");
    t.assert_empty();
}

#[test]
fn refuses_what_is_not_an_image() {
    let t = TestStore::new();
    let junk = t.file("junk.bin", &[0x42; 4096]);
    let err = t
        .store
        .import_archive(&Scope::Global, &junk, "junk", &RootfsOptions::default())
        .unwrap_err();
    assert!(matches!(err, ImageError::UnknownFormat { .. }), "{err}");
    assert!(err.is_user_error());
    assert!(err
        .to_string()
        .contains("not a docker archive, OCI layout or root filesystem tarball"));

    let empty = t.file("empty.tar", &[0; 1024]);
    let err = t
        .store
        .import_archive(&Scope::Global, &empty, "empty", &RootfsOptions::default())
        .unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");

    let missing = t.tmp.path().join("missing.tar");
    let err = t
        .store
        .import_archive(
            &Scope::Global,
            &missing,
            "missing",
            &RootfsOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(err, ImageError::Io { .. }), "{err}");
    assert!(!err.is_user_error());
    assert!(err.to_string().contains("missing.tar"), "{err}");

    let err = t
        .store
        .import_oci_dir(&Scope::Global, t.tmp.path(), "nolayout")
        .unwrap_err();
    assert!(err.to_string().contains("oci-layout"), "{err}");

    let err = t
        .store
        .import_archive(&Scope::Global, &junk, "Bad Name", &RootfsOptions::default())
        .unwrap_err();
    assert!(matches!(err, ImageError::InvalidReference { .. }), "{err}");

    let rootfs = t.file("r.tar", &app_layer("x").tar);
    let bad_env = RootfsOptions {
        env: vec!["NOVALUE".into()],
        ..RootfsOptions::default()
    };
    let err = t
        .store
        .import_archive(&Scope::Global, &rootfs, "r", &bad_env)
        .unwrap_err();
    assert!(matches!(err, ImageError::InvalidOptions(_)), "{err}");
    t.assert_empty();
}
