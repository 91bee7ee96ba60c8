//! Warm invoke latency of each contract's echo function (http, cmd, file, openwhisk), next to
//! running the same executable directly inside the same container with `runc exec`, in the
//! same run.
//!
//! Run as root: `scripts/bench.sh` (FAASBOX_BENCH_N sets the iterations). Figures are printed,
//! never asserted.
//!
//! The functions run without outbound network (`"network": false`). With it, the container
//! joins a network namespace made outside its user namespace, and runc 1.1 (Debian 12's)
//! cannot `runc exec` into such a container: it enters the user namespace first and is then
//! refused the network namespace ("failed to setns into net namespace: Operation not
//! permitted"; runc issue 4390, fixed upstream by joining in two stages, runc pull request
//! 4492). The echo functions need no network: a warm call reaches them through the agent's
//! socket either way.

#[path = "bench_support.rs"]
mod bench_support;
#[path = "../tests/support/images.rs"]
#[allow(dead_code)]
mod images;

use bench_support::{container_of, invoke, ms, percentiles, runc_exec, BenchServer};

use std::time::Instant;

use serde_json::{json, Value};

const INPUT: &str = r#"{"hello":"world"}"#;

/// One contract's echo function and the executable behind it.
struct Case {
    contract: &'static str,
    spec: Value,
    /// What `runc exec` runs in the container, with the input on stdin.
    exec: Vec<&'static str>,
    env: Vec<&'static str>,
}

fn main() {
    let n: usize = std::env::var("FAASBOX_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let (_http_dir, http_tar) =
        images::rootfs_tar_with(&[("www/cgi-bin/index.cgi", images::TEST_FUNCTION, 0o755)]);
    let (_isolate_dir, isolate_tar) =
        images::rootfs_tar_with(&[("bin/isolate.sh", images::ISOLATE, 0o755)]);
    let (_action_dir, action_tar) =
        images::rootfs_tar_with(&[("action/exec", images::OPENWHISK_ACTION, 0o755)]);
    let server = BenchServer::start();
    let url = server.url.clone();
    let data_dir = server.data_dir().to_path_buf();
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    let cases = vec![
        Case {
            contract: "http",
            spec: json!({"image": "bench/http", "envs": {"MODE": "plain"}, "network": false}),
            exec: vec!["/www/cgi-bin/index.cgi"],
            env: vec![
                "MODE=plain",
                "REQUEST_METHOD=POST",
                "HTTP_DIREKTIV_TEMPDIR=/tmp",
            ],
        },
        Case {
            contract: "cmd",
            spec: json!({"image": "bench/plain", "contract": "cmd", "network": false}),
            exec: vec!["/bin/busybox", "echo", "-n", "hello"],
            env: vec![],
        },
        Case {
            contract: "file",
            spec: json!({
                "image": "bench/isolate",
                "contract": "file",
                "envs": {"MODE": "echo"},
                "network": false
            }),
            exec: vec!["/bin/isolate.sh"],
            env: vec!["MODE=echo"],
        },
        Case {
            contract: "openwhisk",
            spec: json!({"image": "bench/action", "contract": "openwhisk", "network": false}),
            exec: vec!["/action/exec", INPUT],
            env: vec![],
        },
    ];
    let results = runtime.block_on(async {
        let http = server.ready().await;
        let sh = serde_json::to_string(&["/bin/sh"]).expect("json");
        for (name, tar, entrypoint) in [
            (
                "bench/http",
                &http_tar,
                serde_json::to_string(
                    &images::HTTPD
                        .iter()
                        .chain([images::WWW].iter())
                        .collect::<Vec<_>>(),
                )
                .expect("json"),
            ),
            ("bench/plain", &http_tar, sh.clone()),
            (
                "bench/isolate",
                &isolate_tar,
                serde_json::to_string(&["/bin/isolate.sh"]).expect("json"),
            ),
            ("bench/action", &action_tar, sh.clone()),
        ] {
            let body = std::fs::read(tar).expect("image");
            let r = http
                .post(format!("{url}/api/v1/images/import"))
                .query(&[("name", name), ("entrypoint", entrypoint.as_str())])
                .body(body)
                .send()
                .await
                .expect("import");
            assert!(
                r.status().is_success(),
                "import {name}: {}",
                r.text().await.unwrap_or_default()
            );
        }
        let mut results = Vec::new();
        for case in &cases {
            let name = case.contract;
            let r = http
                .put(format!("{url}/api/v1/namespaces/bench/functions/{name}"))
                .json(&case.spec)
                .send()
                .await
                .expect("deploy");
            assert!(
                r.status().is_success(),
                "deploy {name}: {}",
                r.text().await.unwrap_or_default()
            );
            let input = if name == "cmd" {
                json!({"commands": [{"command": "echo -n hello"}]}).to_string()
            } else {
                INPUT.to_string()
            };
            invoke(&http, &url, name, &input).await;
            let mut warm = Vec::with_capacity(n);
            for _ in 0..n {
                let started = Instant::now();
                invoke(&http, &url, name, &input).await;
                warm.push(started.elapsed());
            }
            let container = container_of(&data_dir, &format!("bench/{name}"));
            let exec = (0..(n / 4).max(10))
                .map(|_| runc_exec(&data_dir, &container, &case.exec, &case.env, INPUT).0)
                .collect::<Vec<_>>();
            results.push((name, warm, exec));
        }
        results
    });
    drop(server);

    println!();
    println!("faasbox contract benchmark: warm invoke of each contract's echo vs `runc exec` of the same executable");
    println!(
        "{:<11} {:>12} {:>12} {:>14} {:>14} {:>9}",
        "contract", "invoke p50", "invoke p99", "runc exec p50", "runc exec p99", "p50 ratio"
    );
    for (name, warm, exec) in results {
        let (w50, w99) = percentiles(&warm);
        let (e50, e99) = percentiles(&exec);
        println!(
            "{name:<11} {:>10.2}ms {:>10.2}ms {:>12.2}ms {:>12.2}ms {:>8.2}x",
            ms(w50),
            ms(w99),
            ms(e50),
            ms(e99),
            w50.as_secs_f64() / e50.as_secs_f64().max(1e-9)
        );
    }
}
