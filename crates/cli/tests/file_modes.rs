//! The data directory is 0711 (only its owner lists it; a container's mapped root passes through
//! to its instance under `run/`), the server's own directories in it 0700, and every file the
//! server writes there 0600 — the database and
//! the files SQLite keeps next to it, the master key, the admin token, the image store's blobs
//! and name table — after a real server has run and written; and a data directory an older
//! version left readable is made private at the next start.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use serde_json::json;
use support::{images, Server};

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// Every directory under `dir` (and `dir`) 0700, every regular file 0600; `skip` names
/// subtrees left out (their own modes are the image's).
fn assert_private_tree(dir: &Path, skip: &dyn Fn(&Path) -> bool, seen: &mut usize) {
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if skip(&path) {
            continue;
        }
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            assert_private_tree(&path, skip, seen);
        } else if kind.is_file() {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
            *seen += 1;
        }
    }
}

/// Whether an unprivileged user (nobody) can read `path`.
fn nobody_can_read(path: &Path) -> bool {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "cat"])
        .arg(path)
        .output()
        .expect("setpriv (util-linux)")
        .status
        .success()
}

/// Whether an unprivileged user (nobody) can list the directory `path`.
fn nobody_can_list(path: &Path) -> bool {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "ls"])
        .arg(path)
        .output()
        .expect("setpriv (util-linux)")
        .status
        .success()
}

#[tokio::test]
async fn the_data_directory_is_private_after_a_real_run_and_after_an_upgrade() {
    let images = images::build(images::TEST_FUNCTION);
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start_in(&data).await;
    server.create_namespace("demo").await;
    server.cli_ok(&["secret", "set", "demo/token", "--value", "a-secret-value"]);
    server.cli_ok(&["token", "create", "--namespace", "demo", "--role", "invoke"]);
    for (archive, name) in [
        (&images.docker_tar, "modes/docker:1"),
        (&images.oci_tar, "modes/oci:1"),
        (&images.rootfs_tar, "modes/rootfs:1"),
    ] {
        let r = server.import(archive, name, &[]).await;
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    }
    server
        .deploy(
            "demo",
            "echo",
            json!({"image": "modes/oci:1", "envs": {"MODE": "plain"}}),
        )
        .await;
    let (status, _, body) = server.invoke("demo", "echo", r#"{"a":1}"#).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    // While it runs (the WAL and shared memory exist now).
    let db = data.join("faasbox.db");
    let files = [
        db.clone(),
        data.join("faasbox.db-wal"),
        data.join("faasbox.db-shm"),
        data.join("keys/master.key"),
        data.join("admin.token"),
        data.join("images/images.json"),
    ];
    assert_eq!(mode(&data), 0o711);
    assert!(!nobody_can_list(&data), "nobody listed the data directory");
    assert_eq!(mode(&data.join("keys")), 0o700);
    for file in &files {
        assert_eq!(mode(file), 0o600, "{}", file.display());
        assert!(!nobody_can_read(file), "nobody read {}", file.display());
    }
    let layers = data.join("images/layers");
    let mut seen = 0;
    assert_private_tree(
        &data.join("images"),
        &|p| p.parent() == Some(layers.as_path()),
        &mut seen,
    );
    assert!(seen >= 4, "blobs were checked ({seen} files)");

    // An older version's modes are fixed at the next start.
    server.stop();
    for (path, m) in [
        (&data, 0o755),
        (&db, 0o644),
        (&data.join("images"), 0o755),
        (&data.join("images/images.json"), 0o644),
    ] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(m)).unwrap();
    }
    let blob = std::fs::read_dir(data.join("images/blobs/sha256"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    std::fs::set_permissions(&blob, std::fs::Permissions::from_mode(0o644)).unwrap();
    let server = Server::start_in(&data).await;
    let (status, _, _) = server.invoke("demo", "echo", "{}").await;
    assert_eq!(status, 200);
    assert_eq!(mode(&data), 0o711);
    for file in [&db, &data.join("faasbox.db-wal"), &blob] {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    let mut seen = 0;
    assert_private_tree(
        &data.join("images"),
        &|p| p.parent() == Some(layers.as_path()),
        &mut seen,
    );
    // Others may pass through the data directory (0711) but not list it, and nobody gets past
    // the server's own directories in it, even to a file whose mode was loosened.
    assert!(!nobody_can_list(&data));
    assert!(!nobody_can_read(&db));
    std::fs::set_permissions(&blob, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(!nobody_can_read(&blob), "nobody read {}", blob.display());
}
