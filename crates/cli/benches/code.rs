//! Functions from code: the build time of a Python and a Node.js echo handler from source (the
//! first build, and a rebuild of the same source), the cold start (the first call after READY)
//! and warm calls, next to running the same handler directly with the interpreter in the same
//! container (`runc exec`, a new interpreter each time), in the same run. The base image is the
//! tests' Debian root filesystem with python3 and nodejs (made with mmdebstrap on first use,
//! kept in `target/test-images/`).
//!
//! Run as root: `scripts/bench.sh` (FAASBOX_BENCH_N sets the iterations). Figures are printed,
//! never asserted. The functions run without outbound network, as in the contracts benchmark
//! (runc 1.1 cannot `runc exec` into a container that joined an outside network namespace).

#[path = "bench_support.rs"]
mod bench_support;
#[path = "../tests/support/lang_images.rs"]
#[allow(dead_code)]
mod lang_images;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bench_support::{invoke, ms, percentiles, BenchServer};
use serde_json::{json, Value};

const INPUT: &str = r#"{"hello":"world"}"#;

/// The end of a text, for lang_images' error messages.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// One language's echo handler.
struct Case {
    name: &'static str,
    base: &'static str,
    language: &'static str,
    file: &'static str,
    code: &'static str,
    handler: &'static str,
    /// The same handler run directly: the interpreter's command line in the container.
    direct: Vec<&'static str>,
}

/// A tar.gz of one file, base64.
fn source(file: &str, code: &str) -> String {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    let mut header = tar::Header::new_gnu();
    header.set_size(code.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    tar.append_data(&mut header, file, code.as_bytes())
        .expect("tar");
    let gz = tar.into_inner().expect("tar").finish().expect("gzip");
    base64::engine::general_purpose::STANDARD.encode(gz)
}

/// PUTs the function and waits until its build is READY; the time it took.
async fn build(http: &reqwest::Client, url: &str, case: &Case, body: &Value) -> Duration {
    let path = format!("{url}/api/v1/namespaces/bench/functions/{}/code", case.name);
    let started = Instant::now();
    let r = http.put(&path).json(body).send().await.expect("PUT code");
    assert!(
        r.status().is_success(),
        "{}: {}",
        case.name,
        r.text().await.unwrap_or_default()
    );
    loop {
        let view: Value = http
            .get(&path)
            .send()
            .await
            .expect("GET code")
            .json()
            .await
            .expect("JSON");
        match view["status"].as_str() {
            Some("READY") => return started.elapsed(),
            Some("ERROR") => panic!("{} did not build: {}", case.name, view["reason"]),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

fn main() {
    let n: usize = std::env::var("FAASBOX_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    if let Some(reason) = lang_images::missing() {
        eprintln!("the code benchmark cannot run here: {reason}");
        return;
    }
    let rootfs = lang_images::rootfs(lang_images::SLIM);
    let cases = [
        Case {
            name: "pyecho",
            base: "python3-base",
            language: "python3",
            file: "echo.py",
            code: "def handle(context, payload):\n    return payload\n",
            handler: "echo.handle",
            direct: vec![
                "python3",
                "-c",
                "import json, sys; sys.path.insert(0, '/function'); import echo; \
                 print(json.dumps(echo.handle({}, json.load(sys.stdin))))",
            ],
        },
        Case {
            name: "nodeecho",
            base: "node-base",
            language: "nodejs",
            file: "index.js",
            code: "module.exports = (context, payload) => payload;\n",
            handler: "index",
            direct: vec![
                "node",
                "-e",
                "let d = ''; process.stdin.on('data', (c) => (d += c)).on('end', () => \
                 console.log(JSON.stringify(require('/function/index')({}, JSON.parse(d)))));",
            ],
        },
    ];
    let server = BenchServer::start();
    let url = server.url.clone();
    let data_dir = server.data_dir().to_path_buf();
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    let results = runtime.block_on(async {
        let http = server.ready().await;
        let r = http
            .post(format!("{url}/api/v1/namespaces/bench/images/import"))
            .query(&[("name", "debian/lang:12")])
            .body(std::fs::read(&rootfs).expect("the root filesystem"))
            .send()
            .await
            .expect("import");
        assert!(r.status().is_success(), "import: {}", r.text().await.unwrap_or_default());
        let mut results = Vec::new();
        for case in &cases {
            let r = http
                .post(format!("{url}/api/v1/namespaces/bench/base-images"))
                .json(&json!({"name": case.base, "image": "debian/lang:12", "language": case.language}))
                .send()
                .await
                .expect("base image");
            assert!(r.status().is_success(), "{}", r.text().await.unwrap_or_default());
            let body = json!({
                "image": case.base,
                "handler": case.handler,
                "source": source(case.file, case.code),
                "network": false,
            });
            let first = build(&http, &url, case, &body).await;
            let again = build(&http, &url, case, &body).await;
            let started = Instant::now();
            invoke(&http, &url, case.name, INPUT).await;
            let cold = started.elapsed();
            let mut warm = Vec::with_capacity(n);
            for _ in 0..n {
                let started = Instant::now();
                invoke(&http, &url, case.name, INPUT).await;
                warm.push(started.elapsed());
            }
            let container = container_of(&data_dir, &format!("bench/{}", case.name));
            let direct = (0..(n / 4).max(10))
                .map(|_| runc_exec(&data_dir, &container, case))
                .collect::<Vec<_>>();
            results.push((case.name, first, again, cold, warm, direct));
        }
        results
    });
    drop(server);

    println!();
    println!("faasbox code benchmark: build from source, cold start and warm call of an echo handler vs the interpreter run directly (`runc exec`)");
    println!(
        "{:<9} {:>9} {:>9} {:>11} {:>9} {:>9} {:>11} {:>11}",
        "handler",
        "build",
        "rebuild",
        "cold start",
        "warm p50",
        "warm p99",
        "direct p50",
        "direct p99"
    );
    for (name, first, again, cold, warm, direct) in results {
        let (w50, w99) = percentiles(&warm);
        let (d50, d99) = percentiles(&direct);
        println!(
            "{name:<9} {:>7.0}ms {:>7.0}ms {:>9.1}ms {:>7.2}ms {:>7.2}ms {:>9.2}ms {:>9.2}ms",
            ms(first),
            ms(again),
            ms(cold),
            ms(w50),
            ms(w99),
            ms(d50),
            ms(d99)
        );
    }
}

/// The id of the running container of `function`, from the driver's instance records.
fn container_of(data_dir: &Path, function: &str) -> String {
    let instances = data_dir.join("run/instances");
    for entry in std::fs::read_dir(&instances).expect("instances").flatten() {
        let record: Value = std::fs::read(entry.path().join("instance.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        if record["function"] == function {
            return entry.file_name().to_string_lossy().into_owned();
        }
    }
    panic!("no instance of {function}");
}

/// Runs the case's handler directly in the container, the input on stdin; the time it took.
fn runc_exec(data_dir: &Path, container: &str, case: &Case) -> Duration {
    let started = Instant::now();
    let mut child = Command::new("runc")
        .arg("--root")
        .arg(data_dir.join("run/runc"))
        .args(["exec", "--cwd", "/function", container])
        .args(&case.direct)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runc exec");
    let _ = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(INPUT.as_bytes());
    let output = child.wait_with_output().expect("runc exec");
    let elapsed = started.elapsed();
    assert!(
        output.status.success() && String::from_utf8_lossy(&output.stdout).contains("world"),
        "running {} directly failed ({}): {}{}",
        case.name,
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    elapsed
}
