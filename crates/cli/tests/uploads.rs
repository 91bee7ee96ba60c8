//! Image uploads are bounded: an archive over the server's `max-upload-size` is a 413 JSON
//! error (whether its length is declared or not) and leaves nothing behind; a layer's files
//! count at their apparent size against `max-layer-size`, so a small tar holding a 20 GiB
//! sparse file is refused — or, under a larger bound, stored sparse — never 20 GiB of disk.

mod support;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::{images, Server};

/// Bytes allocated on disk under `dir` (what `du` counts), following no symlinks.
fn allocated(dir: &Path) -> u64 {
    let mut total = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    for entry in entries.flatten() {
        let meta = entry.metadata().unwrap();
        total += meta.blocks() * 512;
        if meta.is_dir() {
            total += allocated(&entry.path());
        }
    }
    total
}

fn no_uploads_left(server: &Server) {
    let uploads = server.data_dir.join("uploads");
    let left: Vec<_> = std::fs::read_dir(&uploads)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "uploads left behind: {left:?}");
}

async fn error_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("JSON ({e}): {text}"));
    (status, body)
}

#[tokio::test]
async fn an_archive_over_the_upload_limit_is_a_413_and_nothing_is_kept() {
    let server = Server::start_with(&["--max-upload-size", "1MiB"]).await;
    let big = vec![7u8; 3 << 20];
    // Declared length over the bound: refused before the body is read (only the head is sent,
    // so the answer cannot be lost to a connection closed while a body is being written).
    let (status, body) = server
        .post_head_only("/api/v1/images/import?name=too/big", big.len())
        .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "faasbox.request.too_large");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("1MiB") && message.contains("max-upload-size"),
        "{message}"
    );
    // No declared length (chunked): refused once the bound is passed.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(64 << 10).map(|c| Ok(c.to_vec())).collect();
    let r = server
        .http
        .post(server.url("/api/v1/images/import?name=too/big"))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await;
    // The server may answer and close before the whole stream was sent.
    if let Ok(r) = r {
        let (status, body) = error_of(r).await;
        assert_eq!(status, 413, "{body}");
        assert_eq!(body["error"]["code"], "faasbox.request.too_large");
    }
    no_uploads_left(&server);
    let list = server.get_json("/api/v1/images").await;
    assert!(!list.to_string().contains("too/big"), "{list}");
    // Under the bound, an import works.
    let (_dir, tar) = images::rootfs_tar_with(&[]);
    let small = Server::start_with(&["--max-upload-size", "64MiB"]).await;
    let r = small.import(&tar, "fits/ok", &[]).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
}

/// A root filesystem tarball (GNU format, `--sparse`) with busybox and `big`: a 20 GiB file
/// holding 2 MB of data; the archive itself is small.
fn sparse_tar(dir: &Path) -> std::path::PathBuf {
    let root = dir.join("rootfs");
    images::write_rootfs(&root, "#!/bin/sh\n");
    let big = root.join("big");
    let file = std::fs::File::create(&big).unwrap();
    file.set_len(20 << 30).unwrap();
    let data = vec![0x5au8; 2 << 20];
    std::os::unix::fs::FileExt::write_at(&file, &data, 10 << 30).unwrap();
    drop(file);
    let tar = dir.join("sparse.tar");
    let status = Command::new("tar")
        .args(["--sparse", "--format=gnu", "--numeric-owner", "-C"])
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .expect("GNU tar");
    assert!(status.success());
    let size = std::fs::metadata(&tar).unwrap().len();
    assert!(size < 8 << 20, "the archive is small: {size}");
    tar
}

#[tokio::test]
async fn a_20_gib_sparse_file_in_a_small_tar_is_refused_or_stays_sparse() {
    let dir = tempfile::tempdir().unwrap();
    let tar = sparse_tar(dir.path());

    // The default bound (16 GiB): refused with the bound named; nothing stored.
    let server = Server::start().await;
    let r = server.import(&tar, "sparse/bomb", &[]).await;
    let (status, body) = error_of(r).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "faasbox.request.too_large");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("more than 16 GiB")
            && message.contains("apparent size")
            && message.contains("big'")
            && message.contains("max-layer-size"),
        "{message}"
    );
    no_uploads_left(&server);
    assert!(
        allocated(&server.data_dir) < 64 << 20,
        "{}",
        allocated(&server.data_dir)
    );
    assert_eq!(server.get("/api/v1/health").await.status(), 200);

    // A larger bound: stored, and the file stays sparse.
    let roomy = Server::start_with(&["--max-layer-size", "32GiB"]).await;
    let r = roomy.import(&tar, "sparse/ok", &[]).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    let layers = roomy.data_dir.join("images/layers");
    let layer = std::fs::read_dir(&layers)
        .unwrap()
        .flatten()
        .find(|e| e.path().join("big").exists())
        .expect("the layer holding big")
        .path();
    let big = layer.join("big");
    let meta = std::fs::metadata(&big).unwrap();
    assert_eq!(meta.len(), 20 << 30);
    assert!(
        meta.blocks() * 512 < 16 << 20,
        "{} bytes allocated",
        meta.blocks() * 512
    );
    let mut probe = [0u8; 4];
    std::os::unix::fs::FileExt::read_exact_at(
        &std::fs::File::open(&big).unwrap(),
        &mut probe,
        (10 << 30) + 100,
    )
    .unwrap();
    assert_eq!(probe, [0x5a; 4]);
    assert!(
        allocated(&roomy.data_dir) < 128 << 20,
        "{}",
        allocated(&roomy.data_dir)
    );
}
