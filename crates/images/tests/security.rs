//! Hostile archives: every one is refused (or defused), and a refused import
//! leaves no name, no scratch files, no layers and no blobs behind.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use faasbox_images::{ImageError, RootfsOptions, Scope};

fn import_rootfs(t: &TestStore, tar: &[u8]) -> Result<faasbox_images::ImageRecord, ImageError> {
    let path = t.file("rootfs.tar", tar);
    t.store
        .import_archive(&Scope::Global, &path, "evil", &RootfsOptions::default())
}

fn refused(t: &TestStore, tar: &[u8], needle: &str) -> String {
    let err = import_rootfs(t, tar).expect_err("import should be refused");
    let msg = err.to_string();
    assert!(msg.contains(needle), "message '{msg}' lacks '{needle}'");
    assert!(
        msg.contains("refusing to import") || msg.contains("does not import"),
        "{msg}"
    );
    t.assert_empty();
    msg
}

fn assert_empty_dir(path: &Path) {
    assert_eq!(
        fs::read_dir(path).unwrap().count(),
        0,
        "{} stays empty",
        path.display()
    );
}

#[test]
fn refuses_parent_directory_entries() {
    let t = TestStore::new();
    let msg = refused(
        &t,
        &TarBuilder::new()
            .file("ok", b"x")
            .file("../x", b"evil")
            .finish(),
        "'../x' escapes the root filesystem",
    );
    assert!(msg.starts_with("image archive entry"), "{msg}");
    assert!(!t.root().join("tmp/x").exists() && !t.root().join("x").exists());
}

#[test]
fn keeps_absolute_entries_inside() {
    let t = TestStore::new();
    let image = import_rootfs(&t, &TarBuilder::new().file("/etc/x", b"inside").finish()).unwrap();
    let dir = &t.store.layer_dirs(&image.layers)[0];
    assert_eq!(fs::read(dir.join("etc/x")).unwrap(), b"inside");
}

#[test]
fn refuses_writing_through_an_absolute_symlink() {
    let t = TestStore::new();
    let outside = t.tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let msg = refused(
        &t,
        &TarBuilder::new()
            .symlink("evil", outside.to_str().unwrap())
            .file("evil/file", b"owned")
            .finish(),
        "'evil/file' would be written through the symlink 'evil'",
    );
    assert!(msg.contains("refusing to import"));
    assert_empty_dir(&outside);
}

#[test]
fn refuses_writing_through_a_relative_symlink() {
    let t = TestStore::new();
    refused(
        &t,
        &TarBuilder::new()
            .symlink("up", "../../")
            .file("up/x", b"owned")
            .finish(),
        "symlink 'up'",
    );
    assert!(!t.root().join("x").exists());
    assert!(!t.root().parent().unwrap().join("x").exists());
}

#[test]
fn refuses_hard_links_out_of_the_layer() {
    let t = TestStore::new();
    refused(
        &t,
        &TarBuilder::new()
            .hardlink("passwd", "../../etc/passwd")
            .finish(),
        "'passwd' is a hard link to '../../etc/passwd', which escapes the root filesystem",
    );
    let t = TestStore::new();
    refused(
        &t,
        &TarBuilder::new()
            .symlink("etc", "/etc")
            .hardlink("passwd", "etc/passwd")
            .finish(),
        "through the symlink 'etc'",
    );
}

#[test]
fn refuses_device_nodes_outside_dev() {
    let t = TestStore::new();
    let msg = refused(
        &t,
        &TarBuilder::new()
            .dir("dev/")
            .device("dev/null", tar::EntryType::Char, 1, 3)
            .dir("usr/")
            .device("usr/sda", tar::EntryType::Block, 8, 0)
            .finish(),
        "image layer contains device node 'usr/sda' outside /dev; faasbox does not import",
    );
    assert!(msg.contains("remove it from the image"), "{msg}");
    let t = TestStore::new();
    refused(
        &t,
        &TarBuilder::new()
            .device("mem", tar::EntryType::Char, 1, 1)
            .finish(),
        "device node 'mem'",
    );
}

#[test]
fn skips_device_nodes_under_dev_with_a_note() {
    let t = TestStore::new();
    let tar = TarBuilder::new()
        .dir("dev/")
        .device("dev/null", tar::EntryType::Char, 1, 3)
        .device("dev/zero", tar::EntryType::Char, 1, 5)
        .device("dev/loop0", tar::EntryType::Block, 7, 0)
        .finish();
    let record = import_rootfs(&t, &tar).expect("a /dev with device nodes imports");
    assert_eq!(record.notes.len(), 1, "{:?}", record.notes);
    assert!(
        record.notes[0].starts_with("skipped 3 device nodes under /dev"),
        "{:?}",
        record.notes
    );
    // The note is the import's answer only: the stored record has none.
    let stored = t.store.require(&Scope::Global, "evil").unwrap();
    assert!(stored.notes.is_empty());
    assert_eq!(stored.digest, record.digest);
}

#[test]
fn refuses_bad_names_in_the_outer_archive() {
    let t = TestStore::new();
    let app = app_layer("x");
    let config = config_json(&[&app], &[], &[], &[], "");
    let mut tar = TarBuilder::new();
    tar.file("00layer/layer.tar", &app.blob)
        .file("../evil", b"escaped")
        .file(&format!("{}.json", hex_of(&sha256(&config))), &config)
        .file("manifest.json", br#"[{"Config":"x.json","Layers":[]}]"#);
    let archive = t.file("outer.tar", &tar.finish());
    let err = t
        .store
        .import_archive(&Scope::Global, &archive, "outer", &RootfsOptions::default())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("'../evil' escapes the root filesystem"),
        "{err}"
    );
    assert!(!t.root().join("evil").exists());
    assert!(!t.root().join("tmp/evil").exists());
    t.assert_empty();

    let mut tar = TarBuilder::new();
    tar.file("/etc/evil", b"x").file("manifest.json", b"[]");
    let archive = t.file("outer.tar", &tar.finish());
    let err = t
        .store
        .import_archive(&Scope::Global, &archive, "outer", &RootfsOptions::default())
        .unwrap_err();
    assert!(
        err.to_string().contains("'/etc/evil' is an absolute path"),
        "{err}"
    );
    t.assert_empty();

    // A docker manifest naming a file outside the archive.
    let mut tar = TarBuilder::new();
    tar.file(
        "manifest.json",
        br#"[{"Config":"../../etc/passwd","Layers":[]}]"#,
    );
    let archive = t.file("outer.tar", &tar.finish());
    let err = t
        .store
        .import_archive(&Scope::Global, &archive, "outer", &RootfsOptions::default())
        .unwrap_err();
    assert!(err.to_string().contains("escapes the archive"), "{err}");
    t.assert_empty();
}

#[test]
fn a_bad_upper_layer_leaves_no_lower_layer_behind() {
    let t = TestStore::new();
    let good = busybox_layer();
    let bad = Layer::gz(
        TarBuilder::new()
            .symlink("lib", "/usr/lib")
            .file("lib/libc.so", b"owned")
            .finish(),
    );
    let config = config_json(&[&good, &bad], &[], &[], &[], "");
    let archive = t.file(
        "mixed.tar",
        &docker_archive(&[&good, &bad], &config, "mixed"),
    );
    let err = t
        .store
        .import_archive(&Scope::Global, &archive, "mixed", &RootfsOptions::default())
        .unwrap_err();
    assert!(matches!(err, ImageError::UnsafeEntry { .. }), "{err}");
    assert!(err.to_string().contains("symlink 'lib'"), "{err}");
    t.assert_empty();
}

#[test]
fn refuses_digests_that_are_paths() {
    let t = TestStore::new();
    let layout = t.tmp.path().join("layout");
    fs::create_dir_all(&layout).unwrap();
    fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    fs::write(
        layout.join("index.json"),
        br#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:../../../etc/passwd","size":1}]}"#,
    )
    .unwrap();
    let err = t
        .store
        .import_oci_dir(&Scope::Global, &layout, "evil")
        .unwrap_err();
    assert!(err.to_string().contains("malformed"), "{err}");
    t.assert_empty();
}

#[test]
fn cannot_claim_another_images_layer_by_its_diff_id() {
    let t = TestStore::new();
    let private = busybox_layer();
    let config = config_json(&[&private], &[], &[], &[], "");
    let archive = t.file("private.tar", &docker_archive(&[&private], &config, "p"));
    let victim = t
        .store
        .import_archive(
            &Scope::Global,
            &archive,
            "tenant-a/private",
            &RootfsOptions::default(),
        )
        .unwrap();

    // The attacker ships other content but names the private diff ID.
    let other = Layer::gz(app_layer("attacker").tar);
    let mut claim = other.clone();
    claim.tar = private.tar.clone(); // only used for the diff ID in the config
    let config = config_json(&[&claim], &[], &[], &[], "");
    let archive = t.file("claim.tar", &docker_archive(&[&other], &config, "c"));
    let err = t
        .store
        .import_archive(
            &Scope::Global,
            &archive,
            "tenant-b/claim",
            &RootfsOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    assert_eq!(t.store.list(&Scope::Global).unwrap(), vec![victim]);
    assert_eq!(t.layer_names().len(), 1);
    assert!(t.tmp_names().is_empty());
}
