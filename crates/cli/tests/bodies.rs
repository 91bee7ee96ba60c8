//! Memory per call is bounded: sixteen concurrent 60 MB invokes through real containers keep
//! the server under twice their combined size (sampled from /proc), and the body budget makes
//! calls beyond it wait, then fail with 503 `faasbox.server.busy`.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};
use support::{images, Server};

/// A field of the server's /proc status in bytes (VmRSS, VmHWM).
fn proc_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .unwrap_or(0)
}

/// A JSON body of about `bytes` bytes: `{"data":"xxxx…"}` with a varying pattern.
fn big_body(bytes: usize) -> bytes::Bytes {
    let mut text = String::with_capacity(bytes + 16);
    text.push_str("{\"data\":\"");
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut i = 0usize;
    while text.len() < bytes - 2 {
        text.push(alphabet[(i * 7 + i / 97) % alphabet.len()] as char);
        i += 1;
    }
    text.push_str("\"}");
    bytes::Bytes::from(text)
}

/// An order-sensitive checksum (FNV-1a) of a byte stream.
fn fnv(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}
const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

#[tokio::test]
async fn sixteen_concurrent_60_mb_invokes_stay_under_twice_their_size_in_server_memory() {
    const CALLS: usize = 16;
    const SIZE: usize = 60 * 1000 * 1000;
    let test_images = images::build(images::TEST_FUNCTION);
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let r = server
        .import(&test_images.oci_tar, "test/function:latest", &[])
        .await;
    assert_eq!(r.status(), 201);
    server
        .deploy(
            "demo",
            "echo",
            json!({"image": "test/function:latest", "envs": {"MODE": "plain"}, "size": "large",
                   "timeout": "5m", "scale": {"max": CALLS}}),
        )
        .await;
    // One small call first: the server's own working set is there before measuring.
    let (status, _, _) = server.invoke("demo", "echo", "{}").await;
    assert_eq!(status, 200);

    let pid = server.pid();
    let baseline = proc_kib(pid, "VmRSS");
    let peak = Arc::new(AtomicU64::new(baseline));
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                peak.fetch_max(proc_kib(pid, "VmRSS"), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let body = big_body(SIZE);
    let expected = (body.len(), fnv(FNV_START, &body));
    let url = server.url("/api/v1/namespaces/demo/functions/echo/invoke");
    let calls: Vec<_> = (0..CALLS)
        .map(|_| {
            let (http, url, body) = (server.http.clone(), url.clone(), body.clone());
            tokio::spawn(async move {
                let r = http
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .expect("invoke");
                let status = r.status().as_u16();
                // The answer is checked as it streams in, never held whole here.
                let (mut len, mut hash, mut head) = (0usize, FNV_START, Vec::new());
                let mut stream = r.bytes_stream();
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.expect("answer body");
                    if head.len() < 200 {
                        head.extend_from_slice(&chunk[..chunk.len().min(200)]);
                    }
                    len += chunk.len();
                    hash = fnv(hash, &chunk);
                }
                (
                    status,
                    len,
                    hash,
                    String::from_utf8_lossy(&head).into_owned(),
                )
            })
        })
        .collect();
    for call in calls {
        let (status, len, hash, head) = call.await.unwrap();
        assert_eq!(status, 200, "{head}");
        assert_eq!((len, hash), expected, "the output is the input, intact");
    }
    sampling.store(false, Ordering::Relaxed);
    sampler.await.unwrap();
    let hwm = proc_kib(pid, "VmHWM");
    let sampled = peak.load(Ordering::Relaxed);
    let combined = (CALLS * SIZE) as u64;
    eprintln!(
        "server memory: baseline {} MB, sampled peak {} MB, VmHWM {} MB; combined bodies {} MB",
        baseline >> 20,
        sampled >> 20,
        hwm >> 20,
        combined >> 20
    );
    assert!(hwm > 0 && sampled > 0, "the server's memory was read");
    assert!(
        hwm < 2 * combined,
        "VmHWM {} MB is not under twice the {} MB of bodies",
        hwm >> 20,
        combined >> 20
    );
    assert_eq!(server.get("/api/v1/health").await.status(), 200);
}

/// A CGI function that reads its input, sleeps `$SLEEP` seconds, then answers its input's size.
const HOLDER: &str = "#!/bin/sh\nn=$(/bin/busybox wc -c)\nsleep \"${SLEEP:-0}\"\nprintf 'Content-Type: application/json\\r\\n\\r\\n{\"size\":%s}' \"$n\"\n";

#[tokio::test]
async fn calls_beyond_the_body_budget_wait_then_get_a_503_and_oversized_bodies_a_413() {
    let server = Server::start_with(&["--body-budget", "100MiB", "--queue-timeout", "2s"]).await;
    server.create_namespace("demo").await;
    let (_dir, tar) = images::rootfs_tar_with(&[("www/cgi-bin/index.cgi", HOLDER, 0o755)]);
    let query = images::rootfs_query();
    let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = server.import(&tar, "budget/holder", &query).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    server
        .deploy(
            "demo",
            "hold",
            json!({"image": "budget/holder", "envs": {"SLEEP": "8"}, "size": "medium",
                   "scale": {"max": 2}}),
        )
        .await;
    let body = big_body(60 << 20);
    // The first call holds 60 MiB of the 100 MiB for about 8 s...
    let first = {
        let (http, url, body) = (
            server.http.clone(),
            server.url("/api/v1/namespaces/demo/functions/hold/invoke"),
            body.clone(),
        );
        tokio::spawn(async move {
            let r = http.post(url).body(body).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        })
    };
    server.wait_busy_calls("demo", "hold", 1).await;
    // ...so a second one waits for room (2 s here), then gets a 503 saying why, without the
    // server reading its body.
    let started = std::time::Instant::now();
    let (status, answer) = headers_only(&server, "hold", body.len()).await;
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "it waited first"
    );
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"]["code"], "faasbox.server.busy");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("body-budget"),
        "{answer}"
    );
    // A small call still fits.
    let (status, _, small) = server.invoke("demo", "hold", "{}").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&small));
    let (status, text) = first.await.unwrap();
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["size"],
        body.len()
    );
    // Once it ended, there is room again.
    let (status, _, _) = server.invoke("demo", "hold", body.clone()).await;
    assert_eq!(status, 200);
    // A body over the largest input (64 MiB) is a 413 at once, before it is read.
    let (status, answer) = headers_only(&server, "hold", 70 << 20).await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["error"]["code"], "faasbox.request.too_large");
}

/// Sends only the head of an invoke of `function` declaring a `length`-byte body.
async fn headers_only(server: &Server, function: &str, length: usize) -> (u16, Value) {
    let path = format!("/api/v1/namespaces/demo/functions/{function}/invoke");
    server.post_head_only(&path, length).await
}
