//! Name tables per scope (server-wide and per namespace) over shared contents: a name in one
//! namespace is invisible to another, a digest is found only through a table's own names,
//! contents a name no longer points at stay while they are held or in use, a forced removal
//! takes the content away (keeping the files a hold needs), and a prune removes what is
//! unused and reports the bytes it freed while shared layers stay.

mod common;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use common::*;
use faasbox_images::{ImageRecord, ImageStore, RootfsOptions, Scope};

fn ns(name: &str) -> Scope {
    Scope::Namespace(name.to_string())
}

/// An archive of an image with the busybox base and one app layer saying `text`.
fn archive(t: &TestStore, text: &str) -> PathBuf {
    let base = busybox_layer();
    let app = app_layer(text);
    let config = config_json(&[&base, &app], &[], &[text], &[], "");
    t.file(
        &format!("{text}.tar"),
        &docker_archive(&[&base, &app], &config, "x"),
    )
}

fn import(store: &ImageStore, scope: &Scope, file: &std::path::Path, name: &str) -> ImageRecord {
    store
        .import_archive(scope, file, name, &RootfsOptions::default())
        .unwrap()
}

#[test]
fn each_namespace_has_its_own_names() {
    let t = TestStore::new();
    let (mine, theirs, shared) = (archive(&t, "a"), archive(&t, "b"), archive(&t, "g"));
    let a = import(&t.store, &ns("a"), &mine, "app");
    let b = import(&t.store, &ns("b"), &theirs, "app");
    let g = import(&t.store, &Scope::Global, &shared, "base/tool");
    assert_eq!(a.namespace.as_deref(), Some("a"));
    assert_eq!(g.namespace, None);
    assert_ne!(a.digest, b.digest, "the same name, two images");

    assert_eq!(t.store.get(&ns("a"), "app").unwrap(), Some(a.clone()));
    assert_eq!(t.store.get(&ns("b"), "app").unwrap(), Some(b.clone()));
    assert_eq!(t.store.get(&Scope::Global, "app").unwrap(), None);
    assert_eq!(t.store.get(&ns("c"), "app").unwrap(), None);
    // A digest is found only through the table's own names.
    assert_eq!(t.store.get(&ns("a"), &b.digest).unwrap(), None);
    assert_eq!(t.store.get(&ns("a"), &a.digest).unwrap(), Some(a.clone()));
    assert_eq!(t.store.resolve(Some("a"), &b.digest).unwrap(), None);
    // A namespace sees its own names first, then the server-wide ones.
    assert_eq!(t.store.resolve(Some("a"), "app").unwrap(), Some(a.clone()));
    assert_eq!(
        t.store.resolve(Some("a"), "base/tool").unwrap(),
        Some(g.clone())
    );
    assert_eq!(t.store.resolve(None, "app").unwrap(), None);
    let shadow = import(&t.store, &ns("a"), &mine, "base/tool");
    assert_eq!(
        t.store.resolve(Some("a"), "base/tool").unwrap(),
        Some(shadow)
    );
    assert_eq!(t.store.resolve(Some("b"), "base/tool").unwrap(), Some(g));

    let listed: Vec<String> = t
        .store
        .list(&ns("a"))
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(listed, ["app:latest", "base/tool:latest"]);
    assert_eq!(t.store.list_all().len(), 4);

    // Removing b's name leaves a's image of the same name alone.
    assert!(t.store.remove(&ns("b"), "app", false).unwrap().is_some());
    assert!(t.store.remove(&ns("b"), "app", false).unwrap().is_none());
    assert_eq!(t.store.get(&ns("a"), "app").unwrap(), Some(a.clone()));
    for dir in t.store.layer_dirs(&a.layers) {
        assert!(dir.is_dir());
    }
    assert!(
        t.store.content(&b.digest).is_none(),
        "nothing uses b's image"
    );

    // A namespace's table goes with the namespace; the others stay.
    let freed = t.store.remove_namespace("a").unwrap();
    assert!(freed.layers >= 1, "{freed:?}");
    assert!(t.store.list(&ns("a")).unwrap().is_empty());
    assert_eq!(t.store.list_all().len(), 1, "the server-wide image stays");
    assert_eq!(t.store.remove_namespace("a").unwrap().contents, 0);

    // Pushing looks in the caller's table only (the push fails before any connection).
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = Arc::new(ImageStore::open(t.tmp.path().join("push")).unwrap());
    import(&store, &ns("a"), &mine, "only/a");
    let err = runtime
        .block_on(store.push(
            &ns("b"),
            "only/a",
            "127.0.0.1:1/x:1",
            &faasbox_images::NoCredentials,
            &Default::default(),
            &|_| {},
        ))
        .unwrap_err();
    assert!(
        matches!(err, faasbox_images::ImageError::NotFound(_)),
        "{err}"
    );
}

#[test]
fn contents_in_use_or_held_outlive_their_names() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let used: Arc<Mutex<HashSet<String>>> = Arc::default();
    let open = || {
        let used = Arc::clone(&used);
        Arc::new(
            ImageStore::open_with(
                &root,
                Some(Box::new(move || Ok(used.lock().unwrap().clone()))),
                Default::default(),
            )
            .unwrap(),
        )
    };
    let store = open();
    let t = TestStore::new();
    let (v1, v2) = (archive(&t, "v1"), archive(&t, "v2"));
    let first = import(&store, &ns("a"), &v1, "app");
    used.lock().unwrap().insert(first.digest.clone());
    // The tag moves: the old content stays because its owner uses it.
    let second = import(&store, &ns("a"), &v2, "app");
    let kept = store
        .content(&first.digest)
        .expect("the used content stays");
    assert_eq!(kept.layers, first.layers);
    for dir in store.layer_dirs(&kept.layers) {
        assert!(dir.is_dir());
    }
    // ... also across a restart.
    drop(store);
    let store = open();
    assert!(store.content(&first.digest).is_some());
    assert_eq!(
        store.get(&ns("a"), "app").unwrap().unwrap().digest,
        second.digest
    );

    // No longer used: the next collection forgets it and deletes its own layer.
    used.lock().unwrap().clear();
    let freed = store.collect_garbage().unwrap();
    assert_eq!((freed.contents, freed.layers), (1, 1), "{freed:?}");
    assert!(freed.bytes > 0);
    assert!(store.content(&first.digest).is_none());

    // A hold keeps a content whose name is removed.
    let (found, hold) = store.resolve_held(Some("a"), "app").expect("a hold");
    assert_eq!(found.digest, second.digest);
    assert!(store.resolve_held(Some("b"), "app").is_none());
    assert!(store.remove(&ns("a"), "app", false).unwrap().is_some());
    assert!(store.content(&second.digest).is_some());
    drop(hold);
    store.collect_garbage().unwrap();
    assert!(store.content(&second.digest).is_none());
    assert!(store.hold(&second.digest).is_none(), "nothing left to hold");
}

/// The owner is asked which contents it uses without the store's mutex held: a server on
/// PostgreSQL answers on its async runtime, whose threads may meanwhile need the image store
/// (a call looking up its image). Held, they all waited until the owner's 60 s timeout, and
/// the server's heartbeat with them (found by the cluster tests under load).
#[test]
fn the_owner_is_asked_while_others_can_use_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let store_slot: Arc<std::sync::OnceLock<std::sync::Weak<ImageStore>>> = Arc::default();
    let answered_while_free: Arc<Mutex<Vec<bool>>> = Arc::default();
    let (slot, seen) = (Arc::clone(&store_slot), Arc::clone(&answered_while_free));
    let in_use = Box::new(move || {
        // Another thread uses the store while this answer is pending, as a runtime's
        // worker would; it must get through before the answer is given.
        let free = match slot.get().and_then(std::sync::Weak::upgrade) {
            Some(store) => {
                let (done, finished) = std::sync::mpsc::channel();
                std::thread::spawn(move || {
                    let _ = store.list(&Scope::Global);
                    let _ = done.send(());
                });
                finished
                    .recv_timeout(std::time::Duration::from_secs(5))
                    .is_ok()
            }
            // Opening collects garbage before the store can be handed out: nothing to use.
            None => true,
        };
        seen.lock().unwrap().push(free);
        Ok(HashSet::new())
    });
    let store = Arc::new(
        ImageStore::open_with(tmp.path().join("store"), Some(in_use), Default::default()).unwrap(),
    );
    store_slot.set(Arc::downgrade(&store)).unwrap();
    let t = TestStore::new();
    import(&store, &ns("a"), &archive(&t, "v1"), "app");
    store.collect_garbage().unwrap();
    let seen = answered_while_free.lock().unwrap().clone();
    assert!(
        seen.len() >= 2,
        "the owner was asked at open and at the collection: {seen:?}"
    );
    assert!(
        seen.iter().all(|free| *free),
        "another thread could not use the store while the owner answered: {seen:?}"
    );
}

#[test]
fn a_forced_removal_takes_the_content_but_not_the_files_a_hold_needs() {
    let tmp = tempfile::tempdir().unwrap();
    let digests: Arc<Mutex<HashSet<String>>> = Arc::default();
    let used = Arc::clone(&digests);
    let store = Arc::new(
        ImageStore::open_with(
            tmp.path().join("store"),
            Some(Box::new(move || Ok(used.lock().unwrap().clone()))),
            Default::default(),
        )
        .unwrap(),
    );
    let t = TestStore::new();
    let app = import(&store, &ns("a"), &archive(&t, "app"), "app");
    digests.lock().unwrap().insert(app.digest.clone());
    let hold = store.hold(&app.digest).unwrap();
    // Not forced: the name goes, the used content stays.
    let other = import(&store, &ns("a"), &archive(&t, "app"), "again");
    assert_eq!(other.digest, app.digest);
    store.remove(&ns("a"), "again", false).unwrap().unwrap();
    assert!(store.content(&app.digest).is_some());
    // Another name still pointing at it keeps it even when forced.
    import(&store, &ns("b"), &archive(&t, "app"), "theirs");
    store.remove(&ns("a"), "app", true).unwrap().unwrap();
    assert!(store.content(&app.digest).is_some());
    // The last name, forced: the content is gone although it is used and held, but its
    // layers stay while the hold lives (instances run on them).
    store.remove(&ns("b"), "theirs", true).unwrap().unwrap();
    assert!(store.content(&app.digest).is_none());
    for dir in store.layer_dirs(&app.layers) {
        assert!(dir.is_dir(), "{}", dir.display());
    }
    drop(hold);
    let freed = store.collect_garbage().unwrap();
    assert_eq!(freed.layers, 2, "{freed:?}");
    assert!(store.list_all().is_empty());
}

#[test]
fn prune_removes_unused_names_of_one_table_and_keeps_shared_layers() {
    let t = TestStore::new();
    let used = import(&t.store, &ns("a"), &archive(&t, "used"), "used");
    let unused = import(&t.store, &ns("a"), &archive(&t, "unused"), "unused");
    let theirs = import(&t.store, &ns("b"), &archive(&t, "theirs"), "theirs");
    let global = import(&t.store, &Scope::Global, &archive(&t, "g"), "g");
    let base = used.layers[0].diff_id.clone();
    assert_eq!(base, unused.layers[0].diff_id, "the base layer is shared");

    let pruned = t
        .store
        .prune(&ns("a"), |r| r.digest == used.digest)
        .unwrap();
    let removed: Vec<&str> = pruned.removed.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(removed, ["unused:latest"]);
    assert_eq!(pruned.freed.layers, 1, "{:?}", pruned.freed);
    assert!(pruned.freed.bytes > 0);
    for record in [&used, &theirs, &global] {
        for dir in t.store.layer_dirs(&record.layers) {
            assert!(dir.is_dir(), "{}: {}", record.name, dir.display());
        }
    }
    assert!(t.store.content(&unused.digest).is_none());
    assert_eq!(t.store.list_all().len(), 3);
    // Nothing left to prune there; the other tables were not touched.
    let again = t
        .store
        .prune(&ns("a"), |r| r.name == "used:latest")
        .unwrap();
    assert!(again.removed.is_empty());
    assert_eq!(again.freed.bytes, 0);
}
