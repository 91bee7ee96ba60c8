//! Functions from code: build time from source (a first build, and the same source again), cold
//! start and warm call of the Python and Node.js echo handlers, next to running the same handler
//! directly with the interpreter inside the same container (`runc exec`), in the same run.
//!
//! Needs mmdebstrap and Debian's archive for the language image (built once, kept under
//! `target/test-images/`). Run as root: `scripts/bench.sh` (FAASBOX_BENCH_N sets the warm
//! iterations). Figures are printed, never asserted. The functions run without outbound network
//! (see `contracts.rs` on runc 1.1 and `runc exec`).

#[path = "bench_support.rs"]
mod bench_support;
#[path = "../tests/support/lang_images.rs"]
#[allow(dead_code)]
mod lang_images;

use std::time::{Duration, Instant};

use base64::Engine;
use bench_support::{container_of, invoke, ms, percentiles, runc_exec, BenchServer};
use serde_json::{json, Value};

const INPUT: &str = r#"{"hello":"world"}"#;

/// One language's echo handler.
struct Language {
    name: &'static str,
    base: &'static str,
    file: &'static str,
    code: &'static str,
    handler: &'static str,
    /// The same handler run directly by the interpreter, the input on stdin.
    direct: &'static [&'static str],
}

const LANGUAGES: &[Language] = &[
    Language {
        name: "python3",
        base: "py-base",
        file: "echo.py",
        code: "def handle(context, payload):\n    return payload\n",
        handler: "echo.handle",
        direct: &[
            "python3",
            "-c",
            "import sys, json; sys.path.insert(0, '/function'); import echo; \
             sys.stdout.write(json.dumps(echo.handle({}, json.load(sys.stdin))))",
        ],
    },
    Language {
        name: "nodejs",
        base: "node-base",
        file: "echo.js",
        code: "module.exports = (context, payload) => payload;\n",
        handler: "echo",
        direct: &[
            "node",
            "-e",
            "const h = require('/function/echo.js'); let d = ''; \
             process.stdin.on('data', c => d += c).on('end', () => \
             process.stdout.write(JSON.stringify(h({}, JSON.parse(d)))));",
        ],
    },
];

fn main() {
    if let Some(why) = lang_images::missing() {
        eprintln!("the code benchmark needs a language image: {why}");
        std::process::exit(1);
    }
    let n: usize = std::env::var("FAASBOX_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let cold_n = (n / 20).max(5);
    let rootfs = lang_images::rootfs(lang_images::SLIM);
    let server = BenchServer::start();
    let url = server.url.clone();
    let data_dir = server.data_dir().to_path_buf();
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    let rows = runtime.block_on(async {
        let http = server.ready().await;
        let r = http
            .post(format!("{url}/api/v1/namespaces/bench/images/import"))
            .query(&[("name", "lang/slim")])
            .body(std::fs::read(&rootfs).expect("language image"))
            .send()
            .await
            .expect("import");
        assert!(r.status().is_success(), "import: {}", r.text().await.unwrap_or_default());
        let mut rows = Vec::new();
        for language in LANGUAGES {
            let r = http
                .post(format!("{url}/api/v1/namespaces/bench/base-images"))
                .json(&json!({"name": language.base, "image": "lang/slim", "language": language.name}))
                .send()
                .await
                .expect("base image");
            assert!(r.status().is_success(), "base image: {}", r.text().await.unwrap_or_default());
            let source = source(language.file, language.code);
            let body = json!({"image": language.base, "handler": language.handler,
                              "source": source, "network": false});
            let echo = format!("{}-echo", language.name);
            let first_build = build(&http, &url, &echo, &body).await;
            let same_source = build(&http, &url, &echo, &body).await;
            invoke(&http, &url, &echo, INPUT).await;
            let mut warm = Vec::with_capacity(n);
            for _ in 0..n {
                let started = Instant::now();
                invoke(&http, &url, &echo, INPUT).await;
                warm.push(started.elapsed());
            }
            let mut cold = Vec::with_capacity(cold_n);
            for i in 0..cold_n {
                let name = format!("{}-cold{i}", language.name);
                build(&http, &url, &name, &body).await;
                let started = Instant::now();
                invoke(&http, &url, &name, INPUT).await;
                cold.push(started.elapsed());
            }
            let container = container_of(&data_dir, &format!("bench/{echo}"));
            let direct = (0..(n / 4).max(10))
                .map(|_| {
                    let (took, output) = runc_exec(&data_dir, &container, language.direct, &[], INPUT);
                    let value: Value = serde_json::from_slice(&output).expect("direct output");
                    assert_eq!(value, json!({"hello": "world"}));
                    took
                })
                .collect::<Vec<_>>();
            rows.push((language.name, first_build, same_source, cold, warm, direct));
        }
        rows
    });
    drop(server);

    println!();
    println!(
        "faasbox functions-from-code benchmark ({n} warm calls, {cold_n} cold starts per language; \
         direct = `runc exec` of the interpreter running the same handler in the same container)"
    );
    println!(
        "{:<8} {:>12} {:>12} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>11} {:>11}",
        "language",
        "build first",
        "build again",
        "cold p50",
        "cold p99",
        "warm p50",
        "warm p99",
        "direct p50",
        "direct p99",
        "cold/direct",
        "warm/direct"
    );
    for (name, first, again, cold, warm, direct) in rows {
        let (c50, c99) = percentiles(&cold);
        let (w50, w99) = percentiles(&warm);
        let (d50, d99) = percentiles(&direct);
        let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
        println!(
            "{name:<8} {:>10.0}ms {:>10.0}ms {:>8.1}ms {:>8.1}ms {:>8.2}ms {:>8.2}ms {:>8.1}ms {:>8.1}ms {:>10.2}x {:>10.3}x",
            ms(first),
            ms(again),
            ms(c50),
            ms(c99),
            ms(w50),
            ms(w99),
            ms(d50),
            ms(d99),
            ratio(c50, d50),
            ratio(w50, d50),
        );
    }
}

/// base64 of a tar.gz holding `file` with `code`.
fn source(file: &str, code: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = dir.path().join("src");
    std::fs::create_dir_all(&tree).expect("mkdir");
    std::fs::write(tree.join(file), code).expect("write");
    let archive = dir.path().join("src.tar.gz");
    let status = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(&tree)
        .arg(".")
        .status()
        .expect("tar");
    assert!(status.success(), "tar failed");
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(&archive).expect("read"))
}

/// Puts function `name` from code and waits for READY; how long that took.
async fn build(http: &reqwest::Client, url: &str, name: &str, body: &Value) -> Duration {
    let started = Instant::now();
    let r = http
        .put(format!(
            "{url}/api/v1/namespaces/bench/functions/{name}/code"
        ))
        .json(body)
        .send()
        .await
        .expect("put code");
    assert!(
        r.status().is_success(),
        "put {name}: {}",
        r.text().await.unwrap_or_default()
    );
    loop {
        let view: Value = http
            .get(format!(
                "{url}/api/v1/namespaces/bench/functions/{name}/code"
            ))
            .send()
            .await
            .expect("get code")
            .json()
            .await
            .expect("JSON");
        match view["status"].as_str() {
            Some("READY") => return started.elapsed(),
            Some("ERROR") => panic!("{name} did not build: {view}"),
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// The last `lines` lines of `text` (what `lang_images` shows of a failed mmdebstrap).
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
