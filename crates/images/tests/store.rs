//! The store's life cycle: names, lookups, removal with garbage collection,
//! reopening, crash leftovers and concurrent imports.

mod common;

use std::fs;
use std::sync::Arc;

use common::*;
use faasbox_images::{ImageError, ImageStore, RootfsOptions, Scope};

fn two_images(t: &TestStore) -> (faasbox_images::ImageRecord, faasbox_images::ImageRecord) {
    let base = busybox_layer();
    let one = app_layer("one");
    let two = Layer::gz(app_layer("two").tar);
    let c1 = config_json(&[&base, &one], &[], &["one"], &[], "");
    let c2 = config_json(&[&base, &two], &[], &["two"], &[], "");
    let a1 = t.file("one.tar", &docker_archive(&[&base, &one], &c1, "one"));
    let a2 = t.file("two.tar", &docker_archive(&[&base, &two], &c2, "two"));
    let opts = RootfsOptions::default();
    (
        t.store
            .import_archive(&Scope::Global, &a1, "fn/one", &opts)
            .unwrap(),
        t.store
            .import_archive(&Scope::Global, &a2, "fn/two:v2", &opts)
            .unwrap(),
    )
}

#[test]
fn gets_lists_and_removes() {
    let t = TestStore::new();
    let (one, two) = two_images(&t);
    assert_eq!(t.layer_names().len(), 3);
    // 3 layer blobs, 2 configs, 2 manifests.
    assert_eq!(t.blob_names().len(), 7);

    let names: Vec<String> = t
        .store
        .list(&Scope::Global)
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, ["fn/one:latest", "fn/two:v2"]);
    assert_eq!(
        t.store.get(&Scope::Global, "fn/one:latest").unwrap(),
        Some(one.clone())
    );
    assert_eq!(
        t.store.get(&Scope::Global, "fn/two:v2").unwrap(),
        Some(two.clone())
    );
    assert_eq!(
        t.store.get(&Scope::Global, &two.digest).unwrap(),
        Some(two.clone())
    );
    assert_eq!(
        t.store.get(&Scope::Global, "fn/two").unwrap(),
        None,
        "fn/two means fn/two:latest"
    );
    assert_eq!(
        t.store
            .get(&Scope::Global, &format!("sha256:{}", "f".repeat(64)))
            .unwrap(),
        None
    );
    assert_eq!(t.store.get(&Scope::Global, "BAD NAME").unwrap(), None);
    assert!(matches!(
        t.store.remove(&Scope::Global, "BAD NAME", false),
        Err(ImageError::InvalidReference { .. })
    ));
    let err = t.store.require(&Scope::Global, "nope").unwrap_err();
    assert!(
        matches!(err, ImageError::NotFound(_)) && err.is_user_error(),
        "{err}"
    );

    let shared = t.store.layer_dirs(&one.layers)[0].clone();
    let only_one = t.store.layer_dirs(&one.layers)[1].clone();
    assert!(t
        .store
        .remove(&Scope::Global, "fn/one", false)
        .unwrap()
        .is_some());
    assert!(
        t.store
            .remove(&Scope::Global, "fn/one", false)
            .unwrap()
            .is_none(),
        "already gone"
    );
    assert!(shared.join("bin/busybox").is_file(), "shared layer kept");
    assert!(!only_one.exists(), "unreferenced layer deleted");
    assert_eq!(t.layer_names().len(), 2);
    assert_eq!(t.blob_names().len(), 4);
    assert!(!t.store.blob_path(&one.digest).unwrap().exists());
    assert!(t.store.blob_path(&two.digest).unwrap().exists());
    assert_eq!(t.store.list(&Scope::Global).unwrap(), vec![two.clone()]);

    assert!(t
        .store
        .remove(&Scope::Global, "fn/two:v2", false)
        .unwrap()
        .is_some());
    t.assert_empty();
}

#[test]
fn reimporting_a_name_replaces_it() {
    let t = TestStore::new();
    let v1 = t.file("v1.tar", &app_layer("v1").tar);
    let v2 = t.file("v2.tar", &app_layer("v2").tar);
    let opts = RootfsOptions::default();
    let old = t
        .store
        .import_archive(&Scope::Global, &v1, "app", &opts)
        .unwrap();
    let new = t
        .store
        .import_archive(&Scope::Global, &v2, "app", &opts)
        .unwrap();
    assert_ne!(old.digest, new.digest);
    assert_eq!(t.store.list(&Scope::Global).unwrap(), vec![new.clone()]);
    assert_eq!(t.layer_names(), [hex_of(&new.layers[0].diff_id)]);
    assert!(!t.store.blob_path(&old.digest).unwrap().exists());
}

#[test]
fn reopening_keeps_images_and_clears_leftovers() {
    let t = TestStore::new();
    let (one, two) = two_images(&t);
    let root = t.root().to_path_buf();

    // What a crashed import could leave: scratch files, and a complete
    // layer and blob that were never recorded under a name.
    fs::create_dir_all(root.join("tmp/0123/layer-1/bin")).unwrap();
    fs::write(root.join("tmp/0123/layer-1/bin/half"), b"x").unwrap();
    fs::write(root.join("tmp/images-x.json"), b"{").unwrap();
    let orphan_layer = root.join("layers").join("a".repeat(64));
    fs::create_dir_all(orphan_layer.join("etc")).unwrap();
    let orphan_blob = root.join("blobs/sha256").join("b".repeat(64));
    fs::write(&orphan_blob, b"orphan").unwrap();
    drop(t.store);

    let store = ImageStore::open(&root).unwrap();
    assert!(
        fs::read_dir(root.join("tmp")).unwrap().next().is_none(),
        "tmp/ cleared"
    );
    assert!(!orphan_layer.exists());
    assert!(!orphan_blob.exists());
    assert_eq!(store.list(&Scope::Global).unwrap(), vec![one.clone(), two]);
    for dir in store.layer_dirs(&one.layers) {
        assert!(dir.is_dir());
    }
    assert_eq!(store.root(), root);
}

#[test]
fn a_damaged_name_table_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    drop(ImageStore::open(&root).unwrap());
    fs::write(root.join("images.json"), b"garbage").unwrap();
    let err = ImageStore::open(&root).unwrap_err();
    assert!(matches!(err, ImageError::CorruptStore { .. }), "{err}");
    assert!(err.to_string().contains("images.json"), "{err}");
}

#[test]
fn imports_and_removes_concurrently() {
    let t = TestStore::new();
    let store = Arc::new(ImageStore::open(t.tmp.path().join("shared")).unwrap());
    let base = busybox_layer();
    let mut archives = Vec::new();
    for i in 0..4 {
        let app = app_layer(&format!("app {i}"));
        let config = config_json(&[&base, &app], &[], &[], &[], "");
        archives.push(t.file(
            &format!("a{i}.tar"),
            &docker_archive(&[&base, &app], &config, "x"),
        ));
    }
    // A name to remove while the others import.
    let victim = t.file("victim.tar", &app_layer("victim").tar);
    store
        .import_archive(&Scope::Global, &victim, "victim", &RootfsOptions::default())
        .unwrap();

    let mut threads = Vec::new();
    for (i, archive) in archives.into_iter().enumerate() {
        let store = Arc::clone(&store);
        threads.push(std::thread::spawn(move || {
            store
                .import_archive(
                    &Scope::Global,
                    &archive,
                    &format!("img{i}"),
                    &RootfsOptions::default(),
                )
                .unwrap()
        }));
    }
    let remover = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || {
            store
                .remove(&Scope::Global, "victim", false)
                .unwrap()
                .is_some()
        })
    };
    let images: Vec<_> = threads.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(remover.join().unwrap());

    assert_eq!(store.list(&Scope::Global).unwrap().len(), 4);
    for image in &images {
        for dir in store.layer_dirs(&image.layers) {
            assert!(dir.is_dir(), "{}", dir.display());
        }
        assert!(store.blob_path(&image.digest).unwrap().is_file());
    }
    let layers = fs::read_dir(store.root().join("layers")).unwrap().count();
    assert_eq!(layers, 5, "one shared base + four app layers");
    assert_eq!(fs::read_dir(store.root().join("tmp")).unwrap().count(), 0);
}
