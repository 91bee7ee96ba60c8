//! Pull and push against a real registry: `docker-registry` (distribution
//! 2.x) on loopback with htpasswd (basic) auth, images copied into it with
//! skopeo. Covers credentials (right, wrong, missing, awkward characters),
//! OCI and docker schema 2 manifests, image indexes, interrupted and resumed
//! downloads, and push → pull round trips.

mod common;
mod registry_support;

use std::collections::HashMap;
use std::fs;
use std::sync::Mutex;

use common::{app_layer, busybox_layer};
use faasbox_images::{
    ImageError, ImageRecord, ImageStore, NoCredentials, Progress, PullOptions, RegistryAuth, Scope,
};
use registry_support::token::TokenServer;
use registry_support::{
    index_layout, layout, random_layer, user, Proxy, Registry, Store, ADMIN, ADMIN_PASS, USER,
};

/// Collects progress events.
#[derive(Default)]
struct Events(Mutex<Vec<Progress>>);

impl Events {
    fn callback(&self) -> impl Fn(Progress) + Send + Sync + '_ {
        |p| self.0.lock().unwrap().push(p)
    }

    fn take(&self) -> Vec<Progress> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

async fn pull(
    store: &std::sync::Arc<ImageStore>,
    reference: &str,
    creds: &dyn faasbox_images::CredentialSource,
) -> Result<ImageRecord, ImageError> {
    store
        .pull(
            &Scope::Global,
            reference,
            creds,
            &PullOptions::default(),
            &|_| {},
        )
        .await
}

fn diff_ids(record: &ImageRecord) -> Vec<String> {
    record.layers.iter().map(|l| l.diff_id.clone()).collect()
}

fn manifest_media_type(store: &ImageStore, record: &ImageRecord) -> String {
    let bytes = fs::read(store.blob_path(&record.digest).unwrap()).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["mediaType"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_an_oci_image_with_credentials() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let image = layout(
        &work.path().join("oci"),
        vec![busybox_layer(), app_layer("echo hello")],
    );
    registry.skopeo_copy(&image.source(), "test/busybox:latest", &[]);

    let t = Store::new();
    let events = Events::default();
    let reference = registry.reference("test/busybox");
    let record = t
        .store
        .pull(
            &Scope::Global,
            &reference,
            &user(),
            &PullOptions::default(),
            &events.callback(),
        )
        .await
        .unwrap();

    assert_eq!(record.name, format!("{reference}:latest"));
    assert_eq!(
        record.digest, image.manifest_digest,
        "the registry's manifest, as built"
    );
    assert_eq!(diff_ids(&record), image.diff_ids());
    assert_eq!(record.config.entrypoint, ["/bin/sh", "-c"]);
    assert_eq!(record.config.cmd, ["echo amd64"]);
    assert_eq!(record.config.env, ["PATH=/bin", "ARCH=amd64"]);
    assert_eq!(record.config.workdir, "/app");
    let dirs = t.store.layer_dirs(&record.layers);
    assert!(dirs[0].join("bin/busybox").is_file());
    assert_eq!(
        fs::read_to_string(dirs[1].join("app/run.sh")).unwrap(),
        "echo hello"
    );
    assert_eq!(
        t.store.get(&Scope::Global, &reference).unwrap(),
        Some(record.clone())
    );
    assert_eq!(
        t.store.list(&Scope::Global).unwrap(),
        std::slice::from_ref(&record)
    );
    assert_eq!(
        manifest_media_type(&t.store, &record),
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert!(t.names_in("tmp").is_empty(), "staging removed");
    assert!(
        t.names_in("downloads").is_empty(),
        "finished downloads removed"
    );

    let events = events.take();
    assert!(
        matches!(events.first(), Some(Progress::Resolved { layers: 2, total_bytes }) if *total_bytes == record.size),
        "{events:?}"
    );
    assert!(matches!(events.last(), Some(Progress::Done)), "{events:?}");
    let started = events
        .iter()
        .filter(|e| matches!(e, Progress::LayerStarted { .. }))
        .count();
    let done = events
        .iter()
        .filter(|e| matches!(e, Progress::LayerDone { .. }))
        .count();
    assert_eq!((started, done), (2, 2), "{events:?}");

    // By digest: the same image, under a name that carries the digest.
    let pinned = format!("{reference}@{}", record.digest);
    let by_digest = pull(&t.store, &pinned, &user()).await.unwrap();
    assert_eq!(by_digest.name, pinned);
    assert_eq!(by_digest.digest, record.digest);
    assert_eq!(t.store.list(&Scope::Global).unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_wrong_and_missing_credentials_clearly() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let image = layout(&work.path().join("oci"), vec![app_layer("x")]);
    registry.skopeo_copy(&image.source(), "test/private:latest", &[]);
    let reference = registry.reference("test/private");
    let t = Store::new();

    let wrong = RegistryAuth {
        username: "user".into(),
        password: "wrong-8QwFLg%D$qg*".into(),
    };
    let err = pull(&t.store, &reference, &wrong).await.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(&err, ImageError::Unauthorized { status: 401, user: Some(u), .. } if u == "user"),
        "{err:?}"
    );
    assert!(
        text.contains(&format!(
            "registry {} refused the credentials for user 'user' (401)",
            registry.addr
        )),
        "{text}"
    );
    // Which command fixes it depends on who asks: the server says.
    assert!(!text.contains("faasbox "), "{text}");
    assert!(!text.contains("wrong-8QwFLg"), "{text}");
    assert!(!format!("{err:?}").contains("wrong-8QwFLg"), "{err:?}");
    t.assert_nothing_stored();

    let err = pull(&t.store, &reference, &NoCredentials)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ImageError::Unauthorized { user: None, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("requires credentials (401)"),
        "{err}"
    );
    t.assert_nothing_stored();

    // Credentials are chosen by registry host.
    let mut by_host = HashMap::new();
    by_host.insert("elsewhere:5000".to_string(), user());
    let err = pull(&t.store, &reference, &by_host).await.unwrap_err();
    assert!(
        matches!(&err, ImageError::Unauthorized { user: None, .. }),
        "{err:?}"
    );
    by_host.insert(registry.addr.clone(), user());
    pull(&t.store, &reference, &by_host).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_with_percent_dollar_star_and_colon_works() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let image = layout(&work.path().join("oci"), vec![app_layer("special")]);
    registry.skopeo_copy(&image.source(), "test/special:v1", &[]);
    let t = Store::new();
    let admin = RegistryAuth {
        username: ADMIN.into(),
        password: ADMIN_PASS.into(),
    };
    let record = pull(&t.store, &registry.reference("test/special:v1"), &admin)
        .await
        .unwrap();
    assert_eq!(record.digest, image.manifest_digest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_unknown_images_and_unreachable_registries() {
    let registry = Registry::start();
    let t = Store::new();
    let err = pull(&t.store, &registry.reference("test/nothere:v9"), &user())
        .await
        .unwrap_err();
    assert!(matches!(err, ImageError::ManifestUnknown { .. }), "{err:?}");
    assert!(
        err.to_string().contains("test/nothere:v9' was not found"),
        "{err}"
    );

    let closed = format!("127.0.0.1:{}/test/x", faasbox_test_registry::free_port());
    let err = pull(&t.store, &closed, &user()).await.unwrap_err();
    assert!(
        matches!(err, ImageError::RegistryUnreachable { .. }),
        "{err:?}"
    );
    assert!(err.is_registry_error());
    assert!(
        err.to_string().contains("cannot reach registry 127.0.0.1:"),
        "{err}"
    );
    t.assert_nothing_stored();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_docker_schema_2_and_pushes_it_back_as_oci() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let image = layout(
        &work.path().join("oci"),
        vec![busybox_layer(), app_layer("v2s2")],
    );
    registry.skopeo_copy(&image.source(), "test/v2s2:latest", &["--format", "v2s2"]);

    let t = Store::new();
    let record = pull(&t.store, &registry.reference("test/v2s2"), &user())
        .await
        .unwrap();
    assert_eq!(
        manifest_media_type(&t.store, &record),
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_ne!(
        record.digest, image.manifest_digest,
        "skopeo wrote a new manifest"
    );
    assert_eq!(diff_ids(&record), image.diff_ids());
    assert_eq!(record.config.cmd, ["echo amd64"]);

    // Pushed, it becomes an OCI manifest for the same layers and config.
    let target = registry.reference("test/converted:v1");
    let pushed = t
        .store
        .push(
            &Scope::Global,
            &record.name,
            &target,
            &user(),
            &PullOptions::default(),
            &|_| {},
        )
        .await
        .unwrap();
    let back = pull(&t.store, &target, &user()).await.unwrap();
    assert_eq!(back.digest, pushed);
    assert_eq!(
        manifest_media_type(&t.store, &back),
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(diff_ids(&back), diff_ids(&record));
    assert_eq!(back.config, record.config);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn picks_amd64_from_an_image_index() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let layers = [busybox_layer(), app_layer("amd64 app")];
    let arm = app_layer("built for arm64");
    let (dir, digests) = index_layout(
        &work.path().join("multi"),
        &[
            ("arm64", vec![&arm]),
            ("amd64", vec![&layers[0], &layers[1]]),
        ],
    );
    let source = format!("oci:{}:latest", dir.display());
    registry.skopeo_copy(&source, "test/multi:latest", &["--all"]);
    registry.skopeo_copy(&source, "test/multi:v2s2", &["--all", "--format", "v2s2"]);

    let t = Store::new();
    let record = pull(&t.store, &registry.reference("test/multi"), &user())
        .await
        .unwrap();
    assert_eq!(
        record.digest, digests[1],
        "the amd64 manifest, not the index"
    );
    assert_eq!(record.config.env, ["PATH=/bin", "ARCH=amd64"]);
    assert_eq!(
        diff_ids(&record),
        layers.iter().map(|l| l.diff_id()).collect::<Vec<_>>()
    );

    // A docker manifest list: the same choice.
    let list = pull(&t.store, &registry.reference("test/multi:v2s2"), &user())
        .await
        .unwrap();
    assert_eq!(list.config.env, ["PATH=/bin", "ARCH=amd64"]);
    assert_eq!(diff_ids(&list), diff_ids(&record));

    // An index without this platform says which platforms it has.
    let riscv_layer = app_layer("riscv");
    let (dir, _) = index_layout(
        &work.path().join("riscv"),
        &[("riscv64", vec![&riscv_layer]), ("arm64", vec![&arm])],
    );
    registry.skopeo_copy(
        &format!("oci:{}:latest", dir.display()),
        "test/riscv:latest",
        &["--all"],
    );
    let before = t.store.list(&Scope::Global).unwrap();
    let err = pull(&t.store, &registry.reference("test/riscv"), &user())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ImageError::PlatformNotFound { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("(it has: linux/riscv64, linux/arm64)"),
        "{err}"
    );
    assert_eq!(t.store.list(&Scope::Global).unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_pull_stores_nothing_and_resumes() {
    const BIG: usize = 8 * 1024 * 1024;
    const CUT: u64 = 3 * 1024 * 1024;
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let image = layout(&work.path().join("oci"), vec![random_layer(BIG)]);
    registry.skopeo_copy(&image.source(), "test/big:latest", &[]);
    let layer = &image.layers[0];
    let layer_size = layer.blob.len() as u64;
    let hex = layer.digest().strip_prefix("sha256:").unwrap().to_string();

    let proxy = Proxy::start(&registry.addr).await;
    let reference = proxy.reference("test/big");
    let t = Store::new();

    // The connection breaks 3 MiB into the 8 MiB layer.
    proxy.cut_after(Some(CUT));
    let err = pull(&t.store, &reference, &user()).await.unwrap_err();
    assert!(
        matches!(err, ImageError::TransferInterrupted { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("run it again"), "{err}");
    t.assert_nothing_stored();
    let partial = t.root().join("downloads").join(format!("{hex}.partial"));
    let kept = fs::metadata(&partial)
        .expect("the partial download is kept")
        .len();
    assert!(kept > 1024 * 1024 && kept < CUT, "kept {kept} bytes");

    // Reopening the store (as after a crash) keeps it.
    drop(t.store);
    let t = Store {
        store: std::sync::Arc::new(ImageStore::open(t.tmp.path().join("store")).unwrap()),
        tmp: t.tmp,
    };
    assert_eq!(fs::metadata(&partial).unwrap().len(), kept);

    // The next pull asks only for the rest.
    proxy.cut_after(None);
    let events = Events::default();
    let record = t
        .store
        .pull(
            &Scope::Global,
            &reference,
            &user(),
            &PullOptions::default(),
            &events.callback(),
        )
        .await
        .unwrap();
    let served = proxy.served();
    assert!(
        served < layer_size - kept + 64 * 1024,
        "served {served} bytes for a {layer_size}-byte layer of which {kept} were kept"
    );
    assert_eq!(record.digest, image.manifest_digest);
    assert_eq!(diff_ids(&record), image.diff_ids());
    assert_eq!(
        fs::metadata(t.store.layer_dirs(&record.layers)[0].join("big.bin"))
            .unwrap()
            .len(),
        BIG as u64
    );
    assert!(
        t.names_in("downloads").is_empty(),
        "the finished download is gone"
    );
    let first_bytes = events.take().into_iter().find_map(|e| match e {
        Progress::Bytes { done, .. } => Some(done),
        _ => None,
    });
    assert_eq!(
        first_bytes,
        Some(kept),
        "progress starts at the resumed offset"
    );

    // Blobs in the store are not downloaded again.
    proxy.cut_after(None);
    pull(&t.store, &proxy.reference("test/big:latest"), &user())
        .await
        .unwrap();
    assert!(proxy.served() < 64 * 1024, "served {}", proxy.served());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_over_the_download_bound_is_refused_before_downloading() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let image = layout(
        &work.path().join("oci"),
        vec![random_layer(3 << 20), random_layer(1 << 20)],
    );
    registry.skopeo_copy(&image.source(), "test/big:latest", &[]);
    let proxy = Proxy::start(&registry.addr).await;
    let reference = proxy.reference("test/big");
    let tmp = tempfile::tempdir().unwrap();
    let limits = faasbox_images::ImportLimits {
        max_download_bytes: 2 << 20,
        ..faasbox_images::ImportLimits::default()
    };
    let t = Store {
        store: std::sync::Arc::new(
            ImageStore::open_with(tmp.path().join("store"), None, limits).unwrap(),
        ),
        tmp,
    };
    let err = pull(&t.store, &reference, &user()).await.unwrap_err();
    assert!(
        matches!(err, ImageError::DownloadTooLarge { limit, bytes, .. }
            if limit == 2 << 20 && bytes > 4 << 20),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("max-upload-size") && message.contains("2 MiB"),
        "{message}"
    );
    t.assert_nothing_stored();
    assert!(t.partials().is_empty(), "{:?}", t.partials());
    // The manifest was read, no layer: the refusal costs the registry almost nothing.
    assert!(proxy.served() < 64 * 1024, "served {}", proxy.served());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_that_ignores_range_gets_a_full_download() {
    const BIG: usize = 4 * 1024 * 1024;
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let image = layout(&work.path().join("oci"), vec![random_layer(BIG)]);
    registry.skopeo_copy(&image.source(), "test/big:latest", &[]);
    let layer_size = image.layers[0].blob.len() as u64;
    let proxy = Proxy::start(&registry.addr).await;
    let reference = proxy.reference("test/big");
    let t = Store::new();

    proxy.cut_after(Some(1024 * 1024));
    pull(&t.store, &reference, &user()).await.unwrap_err();
    assert_eq!(t.partials().len(), 1, "a partial download");
    proxy.cut_after(None);
    proxy.hide_range(true);
    let record = pull(&t.store, &reference, &user()).await.unwrap();
    assert!(proxy.served() > layer_size, "the whole layer came again");
    assert_eq!(diff_ids(&record), image.diff_ids());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_a_local_image_and_pulls_it_back() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let image = layout(
        &work.path().join("oci"),
        vec![busybox_layer(), app_layer("pushed")],
    );
    let t = Store::new();
    let local = t
        .store
        .import_oci_dir(&Scope::Global, &image.dir, "local/app:1")
        .unwrap();

    let target = registry.reference("test/pushed:v1");
    let events = Events::default();
    let pushed = t
        .store
        .push(
            &Scope::Global,
            "local/app:1",
            &target,
            &user(),
            &PullOptions::default(),
            &events.callback(),
        )
        .await
        .unwrap();
    assert_eq!(pushed, local.digest, "an OCI manifest is pushed as it is");
    let events = events.take();
    assert!(
        matches!(events.first(), Some(Progress::Resolved { layers: 2, .. })),
        "{events:?}"
    );
    assert!(matches!(events.last(), Some(Progress::Done)), "{events:?}");
    let uploaded: u64 = events
        .iter()
        .filter_map(|e| match e {
            Progress::Bytes { done, size, .. } if done == size => Some(*size),
            _ => None,
        })
        .sum();
    assert!(uploaded >= local.size, "{events:?}");

    // Pulled back under the registry name, into another store.
    let other = Store::new();
    let back = pull(&other.store, &target, &user()).await.unwrap();
    assert_eq!(back.name, target);
    assert_eq!(back.digest, local.digest);
    assert_eq!(back.config, local.config);
    assert_eq!(back.layers, local.layers);

    // Pushing again uploads nothing new and gives the same digest; so does
    // pushing by digest to another tag.
    let again = t
        .store
        .push(
            &Scope::Global,
            &local.digest,
            &registry.reference("test/pushed:v2"),
            &user(),
            &PullOptions::default(),
            &|_| {},
        )
        .await
        .unwrap();
    assert_eq!(again, pushed);

    // Wrong credentials are refused before anything is uploaded.
    let wrong = RegistryAuth {
        username: USER.into(),
        password: "nope-nope".into(),
    };
    let err = t
        .store
        .push(
            &Scope::Global,
            "local/app:1",
            &registry.reference("test/pushed:v3"),
            &wrong,
            &PullOptions::default(),
            &|_| {},
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ImageError::Unauthorized { .. }), "{err:?}");
    assert!(!err.to_string().contains("nope-nope"), "{err}");

    // A digest is no push target.
    let err = t
        .store
        .push(
            &Scope::Global,
            "local/app:1",
            &format!("{target}@{}", local.digest),
            &user(),
            &PullOptions::default(),
            &|_| {},
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ImageError::InvalidReference { .. }),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_downloads_are_refused_and_started_over() {
    const BIG: usize = 4 * 1024 * 1024;
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let image = layout(&work.path().join("oci"), vec![random_layer(BIG)]);
    registry.skopeo_copy(&image.source(), "test/big:latest", &[]);
    let layer_size = image.layers[0].blob.len() as u64;
    let digest = image.layers[0].digest();
    let proxy = Proxy::start(&registry.addr).await;
    let reference = proxy.reference("test/big");
    let t = Store::new();

    // One flipped byte in the layer: refused, and nothing kept.
    proxy.cut_after(None);
    proxy.corrupt_at(Some(2 * 1024 * 1024));
    let err = pull(&t.store, &reference, &user()).await.unwrap_err();
    assert!(
        matches!(&err, ImageError::RemoteDigestMismatch { expected, .. } if *expected == digest),
        "{err:?}"
    );
    assert!(err.to_string().contains("pull again"), "{err}");
    t.assert_nothing_stored();
    assert!(t.partials().is_empty(), "the corrupt download is dropped");
    proxy.corrupt_at(None);

    // A partial download damaged on disk: the resumed blob does not verify,
    // so it is downloaded again from the start.
    proxy.cut_after(Some(2 * 1024 * 1024));
    pull(&t.store, &reference, &user()).await.unwrap_err();
    let partial = t.root().join("downloads").join(format!(
        "{}.partial",
        digest.strip_prefix("sha256:").unwrap()
    ));
    let mut bytes = fs::read(&partial).unwrap();
    bytes[1000] ^= 0xff;
    fs::write(&partial, &bytes).unwrap();
    proxy.cut_after(None);
    let record = pull(&t.store, &reference, &user()).await.unwrap();
    assert_eq!(diff_ids(&record), image.diff_ids());
    assert!(
        proxy.served() > layer_size,
        "the rest, then the whole layer: {} bytes",
        proxy.served()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_from_a_token_server() {
    let work = tempfile::tempdir().unwrap();
    let tokens = TokenServer::start(work.path(), ADMIN, ADMIN_PASS).await;
    let registry = Registry::start_token(&tokens.realm, &tokens.cert);
    let admin = RegistryAuth {
        username: ADMIN.into(),
        password: ADMIN_PASS.into(),
    };
    let image = layout(
        &work.path().join("oci"),
        vec![busybox_layer(), app_layer("token")],
    );
    let t = Store::new();
    let local = t
        .store
        .import_oci_dir(&Scope::Global, &image.dir, "local/token:1")
        .unwrap();

    // Push and pull with tokens for the right user.
    let target = registry.reference("test/token:v1");
    let options = PullOptions::default();
    let pushed = t
        .store
        .push(
            &Scope::Global,
            &local.name,
            &target,
            &admin,
            &options,
            &|_| {},
        )
        .await
        .unwrap();
    assert_eq!(pushed, local.digest);
    let other = Store::new();
    let back = pull(&other.store, &target, &admin).await.unwrap();
    assert_eq!(back.digest, local.digest);
    assert_eq!(back.layers, local.layers);
    assert!(tokens.issued() >= 2, "tokens were used");

    // The token server refuses a wrong password: a clear 401, nothing stored.
    let wrong = RegistryAuth {
        username: ADMIN.into(),
        password: "not-the-password".into(),
    };
    let third = Store::new();
    let err = pull(&third.store, &target, &wrong).await.unwrap_err();
    assert!(tokens.refused() >= 1);
    assert!(
        matches!(&err, ImageError::Unauthorized { user: Some(u), status: 401, .. } if u == ADMIN),
        "{err:?}"
    );
    assert!(!err.to_string().contains("not-the-password"), "{err}");
    third.assert_nothing_stored();

    // Anonymous: a token that grants nothing, then the registry's 401.
    let err = pull(&third.store, &target, &NoCredentials)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ImageError::Unauthorized { user: None, .. }),
        "{err:?}"
    );
    third.assert_nothing_stored();
}
