//! The performance benchmark of issue 18: every goal's figure next to its floor, measured in
//! one run against one server, with the benchmarks' own function (`faasbox-echo`, a static
//! non-forking HTTP/1.1 echo server that the workspace builds) as the only thing in its image.
//!
//! 1. Cold start (deploy, first invoke → answer) against `runc run` of the same image running
//!    `faasbox-echo --exit`, one of each in turn; `docker run -d` to the first answer when a
//!    Docker daemon answers.
//! 2. Warm call through the invoke API against a direct call to the function inside its
//!    network namespace, both keep-alive, one of each in turn from the same thread.
//! 3. Throughput with 8 and 32 keep-alive clients, API against direct, one instance taking
//!    that many calls at once on both sides; and through a bare TCP relay into the instance
//!    (one hop that parses nothing): what any forwarding hop leaves on these cores.
//! 4. Cold starts per second: K functions deployed, all invoked at once.
//! 5. Noop flows per second with 8 clients; what an action state adds over invoking its
//!    function.
//! 6. Memory: the platform's share per idle warm instance (agent PSS, the network helper's PSS,
//!    the server's RSS growth per instance), with slirp4netns (the default) and with pasta.
//!
//! Prints a table and one `BENCH <key> <value> <unit>` line per figure (read by
//! `scripts/bench-ci.sh`). Figures are printed, never asserted; only correctness is (every echo
//! came back, no call lost — losses of the burst are counted and printed).
//!
//! Run as root: `scripts/bench.sh`, or `cargo build --release -p faasbox-echo-function -p
//! faasbox-agent && cargo bench -p faasbox --bench perf`. FAASBOX_BENCH_N sets the warm calls
//! (default 300; cold starts N/10, at least 5); FAASBOX_BENCH_QUICK=1 is the short CI run.
//! FAASBOX_PERF_ONLY=burst,cold (sections: memory, cold, warm, throughput, flows, burst,
//! libcontainer) runs
//! only those sections; FAASBOX_PERF_TPUT_SECS sets the seconds per throughput side (for
//! profiling); FAASBOX_PERF_SPARE_CONTAINERS sets the server's `--spare-containers`;
//! FAASBOX_PERF_OCI_RUNTIME=crun runs the server with `--oci-runtime crun` (the floor stays
//! `runc run`). The cold
//! section runs twice: against that server (whose later cold starts take containers created
//! ahead after the earlier ones, "stem cells") and against one with `--spare-containers 0`.
//! The libcontainer section runs the cold starts without stem cells and the burst again on a
//! server with `--oci-runtime libcontainer` (faasbox-oci built next to faasbox; the floor stays
//! `runc run`).

#[path = "bench_support.rs"]
mod bench_support;
#[path = "../tests/support/images.rs"]
#[allow(dead_code)]
mod images;
#[path = "../tests/support/proc_stat.rs"]
mod proc_stat;
mod tcp_relay;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use bench_support::{ms, percentiles, BenchServer, KeepAlive};
use serde_json::json;

const INPUT: &str = r#"{"hello":"world"}"#;
/// Where the echo binary sits in the image (its entrypoint).
const ECHO_IN_IMAGE: &str = "/faasbox-echo";

/// How much the run measures.
struct Plan {
    quick: bool,
    warm_calls: usize,
    cold_starts: usize,
    burst: usize,
    memory_instances: usize,
    throughput_secs: f64,
    flows: usize,
}

impl Plan {
    fn from_env() -> Plan {
        let quick = std::env::var("FAASBOX_BENCH_QUICK").is_ok_and(|v| v == "1");
        let n: usize = std::env::var("FAASBOX_BENCH_N")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(if quick { 60 } else { 300 });
        Plan {
            quick,
            warm_calls: n.max(10),
            cold_starts: (n / 10).max(5),
            // The burst and the idle instances are as many in the quick run as in the full one:
            // their figures depend on the count, and the CI run is compared with the README's.
            burst: if n >= 1000 { 60 } else { 30 },
            memory_instances: 10,
            throughput_secs: std::env::var("FAASBOX_PERF_TPUT_SECS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(if quick { 1.0 } else { 2.5 }),
            flows: if quick { 100 } else { (2 * n).max(200) },
        }
    }
}

/// One row of the table and its machine-readable lines.
struct Row {
    name: String,
    faasbox: String,
    floor: String,
    ratio: String,
    goal: String,
    met: Option<bool>,
}

#[derive(Default)]
struct Report {
    /// The machine and its load (1-minute average) when the run started.
    machine: String,
    rows: Vec<Row>,
    bench: Vec<(String, f64, &'static str)>,
    notes: Vec<String>,
}

impl Report {
    fn row(
        &mut self,
        name: &str,
        faasbox: String,
        floor: String,
        ratio: String,
        goal: &str,
        met: Option<bool>,
    ) {
        self.rows.push(Row {
            name: name.to_string(),
            faasbox,
            floor,
            ratio,
            goal: goal.to_string(),
            met,
        });
    }
    fn bench(&mut self, key: &str, value: f64, unit: &'static str) {
        self.bench.push((key.to_string(), value, unit));
    }
    fn print(&self, plan: &Plan) {
        println!();
        println!(
            "faasbox performance (issue 18), {} run: {} warm calls, {} cold starts, {} at once, \
             {:.1}s per throughput side, {} noop flows, {} idle instances; echo function faasbox-echo",
            if plan.quick { "quick" } else { "full" },
            plan.warm_calls,
            plan.cold_starts,
            plan.burst,
            plan.throughput_secs,
            plan.flows,
            plan.memory_instances
        );
        println!("{}, load at the end {}", self.machine, load());
        // The figure column as wide as its longest name, so the columns line up.
        let width = self
            .rows
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(0)
            .max(32);
        println!(
            "{:<width$} {:>12} {:>26} {:>10} {:>12} {:>4}",
            "figure", "faasbox", "floor", "ratio", "goal", "met"
        );
        for r in &self.rows {
            let met = match r.met {
                Some(true) => "yes",
                Some(false) => "no",
                None => "-",
            };
            println!(
                "{:<width$} {:>12} {:>26} {:>10} {:>12} {:>4}",
                r.name, r.faasbox, r.floor, r.ratio, r.goal, met
            );
        }
        for note in &self.notes {
            println!("{note}");
        }
        println!();
        for (key, value, unit) in &self.bench {
            println!("BENCH {key} {value:.3} {unit}");
        }
    }
}

/// The 1-, 5- and 15-minute load averages.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_string())
}

/// The date, cores, CPU model, kernel and load of this machine.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, m)| m.trim())
        })
        .unwrap_or("unknown CPU");
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!(
        "{date}: {cores} cores, {model}, kernel {}, load at the start {}",
        kernel.trim(),
        load()
    )
}

/// The echo binary, next to the faasbox binary of this build.
fn echo_binary() -> PathBuf {
    let faasbox = Path::new(env!("CARGO_BIN_EXE_faasbox"));
    let echo = faasbox.with_file_name("faasbox-echo");
    if !echo.is_file() {
        let profile = faasbox
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|p| p.to_str())
            .unwrap_or("release");
        let flag = match profile {
            "debug" => String::new(),
            "release" => " --release".to_string(),
            other => format!(" --profile {other}"),
        };
        panic!(
            "the benchmark's function is missing: {} (build it first: \
             cargo build{flag} -p faasbox-echo-function; scripts/bench.sh does)",
            echo.display()
        );
    }
    echo
}

/// Whether FAASBOX_PERF_ONLY (a comma-separated list of sections) leaves `section` in.
fn runs(section: &str) -> bool {
    std::env::var("FAASBOX_PERF_ONLY")
        .map_or(true, |only| only.split(',').any(|s| s.trim() == section))
}

fn main() {
    let plan = Plan::from_env();
    let echo = echo_binary();
    let image = images::build_image(
        |root| {
            std::fs::copy(&echo, root.join(ECHO_IN_IMAGE.trim_start_matches('/')))
                .expect("copying faasbox-echo into the image");
        },
        &[ECHO_IN_IMAGE],
        &[],
        &[],
    );
    // FAASBOX_PERF_SPARE_CONTAINERS: the server's `--spare-containers` (default: its own).
    let spare_containers = std::env::var("FAASBOX_PERF_SPARE_CONTAINERS").ok();
    let mut args = vec![
        "--quota-functions",
        "1000",
        "--quota-min-scale",
        "100",
        "--quota-instances",
        "500",
    ];
    if let Some(n) = &spare_containers {
        args.extend(["--spare-containers", n.as_str()]);
    }
    // FAASBOX_PERF_OCI_RUNTIME: the server's `--oci-runtime` (default: its own, runc).
    let oci_runtime = std::env::var("FAASBOX_PERF_OCI_RUNTIME").ok();
    if let Some(name) = &oci_runtime {
        args.extend(["--oci-runtime", name.as_str()]);
    }
    let server = BenchServer::start_with(&args);
    let url = server.url.clone();
    let api_addr = url.trim_start_matches("http://").to_string();
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    let http = runtime.block_on(server.ready());
    let token = std::fs::read_to_string(server.data_dir().join("admin.token"))
        .expect("admin token")
        .trim()
        .to_string();
    let api = Api {
        addr: api_addr,
        headers: vec![
            format!("Authorization: Bearer {token}"),
            "Content-Type: application/json".to_string(),
        ],
    };
    runtime.block_on(bench_support::import(
        &http,
        &url,
        "bench/echo",
        &image.oci_tar,
        &[],
    ));
    let mut report = Report {
        machine: machine(),
        ..Report::default()
    };

    if runs("memory") {
        eprintln!(
            "perf: memory of {} idle warm instances",
            plan.memory_instances
        );
        runtime.block_on(memory(&server, &http, &image.oci_tar, &plan, &mut report));
    }

    if runs("cold") {
        eprintln!("perf: {} cold starts next to runc run", plan.cold_starts);
        runtime.block_on(cold_starts(
            &http,
            &url,
            server.data_dir(),
            &image.rootfs_tar,
            &plan,
            &mut report,
            None,
        ));
        // The same without stem cells (`--spare-containers 0`): each start makes its
        // container then, as a start of an image without recent demand does.
        eprintln!(
            "perf: {} cold starts without stem cells next to runc run",
            plan.cold_starts
        );
        let mut bare_args = vec!["--spare-containers", "0"];
        if let Some(name) = &oci_runtime {
            bare_args.extend(["--oci-runtime", name.as_str()]);
        }
        let bare = BenchServer::start_with(&bare_args);
        runtime.block_on(async {
            let http = bare.ready().await;
            bench_support::import(&http, &bare.url, "bench/echo", &image.oci_tar, &[]).await;
            cold_starts(
                &http,
                &bare.url,
                bare.data_dir(),
                &image.rootfs_tar,
                &plan,
                &mut report,
                Some(("without a stem cell", "nostem_")),
            )
            .await;
        });
        drop(bare);
        docker_floor(&image.docker_tar, &plan, &mut report);
    }

    // One instance takes every call of the warm, throughput and flow figures; it takes up to
    // 32 at once, as the function does when called directly.
    if runs("warm") || runs("throughput") || runs("flows") {
        let spec = json!({"image": "bench/echo", "scale": {"min": 1, "max": 1, "concurrency": 32}});
        runtime.block_on(async {
            bench_support::deploy(&http, &url, "warm", &spec).await;
            invoke(&http, &url, "warm").await;
        });
    }
    if runs("warm") || runs("throughput") {
        let container = bench_support::container_of(server.data_dir(), "bench/warm");
        let pid = bench_support::container_pid(server.data_dir(), &container);
        if runs("warm") {
            eprintln!(
                "perf: {} warm calls, API and direct in turn",
                plan.warm_calls
            );
            warm(&api, pid, &plan, &mut report);
        }
        if runs("throughput") {
            for clients in [8, 32] {
                eprintln!("perf: throughput with {clients} clients");
                let processes = Cpu {
                    server: server.pid() as i32,
                    agent: pid,
                };
                throughput(&api, processes, clients, &plan, &mut report);
            }
            report.notes.push(
                "throughput: one instance (scale.max 1, concurrency 32) on the faasbox side; the \
                 direct side calls the same instance's server with as many connections"
                    .to_string(),
            );
        }
    }

    if runs("flows") {
        eprintln!("perf: flows");
        runtime.block_on(flows(&http, &url, &plan, &mut report));
    }

    if runs("burst") {
        eprintln!("perf: {} cold starts at once", plan.burst);
        runtime.block_on(burst(
            &http,
            &url,
            server.data_dir(),
            server.pid() as i32,
            &api,
            &plan,
            &mut report,
            None,
        ));
    }

    // The same cold starts (without stem cells) and burst on `--oci-runtime libcontainer`,
    // when this build has faasbox-oci and the server above ran on runc.
    if runs("libcontainer") && oci_runtime.is_none() {
        libcontainer(&runtime, &image, &plan, &mut report);
    }

    report.notes.push(
        "durability (not measured): an accepted async run and a finished flow state are stored \
         before they are acknowledged"
            .to_string(),
    );
    drop(server);
    report.print(&plan);
}

/// The cold section without stem cells and the burst, on a server with `--oci-runtime
/// libcontainer` (skipped, and said so, when faasbox-oci is not built next to faasbox).
fn libcontainer(
    runtime: &tokio::runtime::Runtime,
    image: &images::TestImages,
    plan: &Plan,
    report: &mut Report,
) {
    let oci = Path::new(bench_support::FAASBOX).with_file_name("faasbox-oci");
    if !oci.is_file() {
        report.notes.push(format!(
            "libcontainer: not measured, {} is not built (cargo build --release -p \
             faasbox-oci-runtime)",
            oci.display()
        ));
        return;
    }
    eprintln!(
        "perf: {} cold starts and {} at once on --oci-runtime libcontainer",
        plan.cold_starts, plan.burst
    );
    let server = BenchServer::start_with(&[
        "--oci-runtime",
        "libcontainer",
        "--spare-containers",
        "0",
        "--quota-functions",
        "1000",
        "--quota-instances",
        "500",
    ]);
    runtime.block_on(async {
        let http = server.ready().await;
        bench_support::import(&http, &server.url, "bench/echo", &image.oci_tar, &[]).await;
        cold_starts(
            &http,
            &server.url,
            server.data_dir(),
            &image.rootfs_tar,
            plan,
            report,
            Some(("libcontainer, without a stem cell", "libcontainer_nostem_")),
        )
        .await;
        let token = std::fs::read_to_string(server.data_dir().join("admin.token"))
            .expect("admin token")
            .trim()
            .to_string();
        let api = Api {
            addr: server.url.trim_start_matches("http://").to_string(),
            headers: vec![
                format!("Authorization: Bearer {token}"),
                "Content-Type: application/json".to_string(),
            ],
        };
        burst(
            &http,
            &server.url,
            server.data_dir(),
            server.pid() as i32,
            &api,
            plan,
            report,
            Some(("libcontainer, no stem cells", "libcontainer_")),
        )
        .await;
    });
}

/// Where and how the invoke API is called with the raw keep-alive client.
struct Api {
    addr: String,
    headers: Vec<String>,
}

impl Api {
    fn connect(&self) -> KeepAlive {
        KeepAlive::connect(&self.addr).expect("connecting to the server")
    }
    fn path(function: &str) -> String {
        format!("/api/v1/namespaces/bench/functions/{function}/invoke")
    }
}

/// One call; whether the echo came back (an error names what went wrong).
fn call(client: &mut KeepAlive, path: &str, headers: &[String]) -> Result<(), String> {
    let (status, body) = client
        .post(path, headers, INPUT.as_bytes())
        .map_err(|e| format!("{path}: {e}"))?;
    if status != 200 || body != INPUT.as_bytes() {
        return Err(format!(
            "{path}: {status} {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        ));
    }
    Ok(())
}

/// The direct side's headers: what a client of the function sends.
fn direct_headers() -> Vec<String> {
    vec!["Content-Type: application/json".to_string()]
}

async fn invoke(http: &reqwest::Client, url: &str, name: &str) {
    let body = bench_support::invoke(http, url, name, INPUT).await;
    assert_eq!(body, INPUT.as_bytes(), "the echo came back changed");
}

async fn delete(http: &reqwest::Client, url: &str, name: &str) {
    let r = http
        .delete(format!("{url}/api/v1/namespaces/bench/functions/{name}"))
        .send()
        .await
        .expect("delete");
    assert!(r.status().is_success(), "deleting {name}: {}", r.status());
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

fn fmt_ms(d: Duration) -> String {
    format!("{:.2} ms", ms(d))
}

async fn cold_starts(
    http: &reqwest::Client,
    url: &str,
    data_dir: &Path,
    rootfs_tar: &Path,
    plan: &Plan,
    report: &mut Report,
    // A variant's label for the rows and prefix for the BENCH keys.
    variant: Option<(&str, &str)>,
) {
    let (label, key) = match variant {
        Some((label, key)) => (format!(", {label}"), key),
        None => (String::new(), ""),
    };
    let mut floor = bench_support::RuncFloor::new(rootfs_tar, &[ECHO_IN_IMAGE, "--exit"]);
    floor.run_once();
    let spec = json!({"image": "bench/echo"});
    let (mut cold, mut runc) = (Vec::new(), Vec::new());
    for i in 0..plan.cold_starts {
        let name = format!("cold{i}");
        bench_support::deploy(http, url, &name, &spec).await;
        let started = Instant::now();
        invoke(http, url, &name).await;
        cold.push(started.elapsed());
        delete(http, url, &name).await;
        wait_for_instances(data_dir, 0);
        runc.push(floor.run_once());
    }
    let (c50, c99) = percentiles(&cold);
    let (r50, r99) = percentiles(&runc);
    let (q50, q99) = (ratio(c50, r50), ratio(c99, r99));
    report.row(
        &format!("cold start p50{label}"),
        fmt_ms(c50),
        format!("{} runc run", fmt_ms(r50)),
        format!("{q50:.2}x"),
        "<= 1.3x",
        Some(q50 <= 1.3),
    );
    report.row(
        &format!("cold start p99{label}"),
        fmt_ms(c99),
        format!("{} runc run", fmt_ms(r99)),
        format!("{q99:.2}x"),
        "<= 2x",
        Some(q99 <= 2.0),
    );
    report.bench(&format!("{key}cold_p50"), ms(c50), "ms");
    report.bench(&format!("{key}cold_p99"), ms(c99), "ms");
    report.bench(&format!("{key}floor_runc_run_p50"), ms(r50), "ms");
    report.bench(&format!("{key}floor_runc_run_p99"), ms(r99), "ms");
    report.bench(&format!("{key}cold_p50_ratio"), q50, "x");
    report.bench(&format!("{key}cold_p99_ratio"), q99, "x");
}

/// `docker run -d` of the same image to its first answer, when a Docker daemon answers.
fn docker_floor(docker_tar: &Path, plan: &Plan, report: &mut Report) {
    let docker_up = Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !docker_up {
        report
            .notes
            .push("docker: not running, skipped".to_string());
        return;
    }
    let loaded = Command::new("docker")
        .args(["load", "-q", "-i"])
        .arg(docker_tar)
        .output()
        .expect("docker load");
    assert!(
        loaded.status.success(),
        "docker load: {}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    let mut samples = Vec::new();
    for _ in 0..plan.cold_starts {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let started = Instant::now();
        let out = Command::new("docker")
            .args(["run", "-d", "--rm", "-p"])
            .arg(format!("127.0.0.1:{port}:8080"))
            .arg("test/function:latest")
            .output()
            .expect("docker run");
        assert!(
            out.status.success(),
            "docker run: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let deadline = started + Duration::from_secs(30);
        let addr = format!("127.0.0.1:{port}");
        loop {
            let answered = KeepAlive::connect(&addr)
                .ok()
                .and_then(|mut c| call(&mut c, "/", &direct_headers()).ok());
            if answered.is_some() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the docker container never answered"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        samples.push(started.elapsed());
        let _ = Command::new("docker")
            .args(["rm", "-f", &id])
            .stdout(Stdio::null())
            .status();
    }
    let (d50, d99) = percentiles(&samples);
    report.row(
        "docker run -d → answer p50/p99",
        fmt_ms(d50),
        fmt_ms(d99),
        "-".to_string(),
        "-",
        None,
    );
    report.bench("floor_docker_run_p50", ms(d50), "ms");
}

/// Warm calls through the API and directly, one of each in turn from one thread (the API
/// connection opened before the thread joins the instance's network namespace).
fn warm(api: &Api, pid: i32, plan: &Plan, report: &mut Report) {
    let mut through_api = api.connect();
    let headers = api.headers.clone();
    let n = plan.warm_calls;
    let (api_samples, direct_samples) = bench_support::in_netns_of(pid, move || {
        let mut direct = KeepAlive::connect("127.0.0.1:8080").expect("connecting to the function");
        let path = Api::path("warm");
        let (mut a, mut d) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for i in 0..n + 10 {
            let t = Instant::now();
            call(&mut through_api, &path, &headers).expect("warm call");
            let api_took = t.elapsed();
            let t = Instant::now();
            call(&mut direct, "/", &direct_headers()).expect("direct call");
            let direct_took = t.elapsed();
            if i >= 10 {
                a.push(api_took);
                d.push(direct_took);
            }
        }
        (a, d)
    });
    let (a50, a99) = percentiles(&api_samples);
    let (d50, d99) = percentiles(&direct_samples);
    let (added50, added99) = (ms(a50) - ms(d50), ms(a99) - ms(d99));
    report.row(
        "warm call p50",
        fmt_ms(a50),
        format!("{} direct", fmt_ms(d50)),
        format!("+{added50:.2} ms"),
        "<= +0.5 ms",
        Some(added50 <= 0.5),
    );
    report.row(
        "warm call p99",
        fmt_ms(a99),
        format!("{} direct", fmt_ms(d99)),
        format!("+{added99:.2} ms"),
        "<= +2 ms",
        Some(added99 <= 2.0),
    );
    report.bench("warm_p50", ms(a50), "ms");
    report.bench("warm_p99", ms(a99), "ms");
    report.bench("floor_direct_p50", ms(d50), "ms");
    report.bench("floor_direct_p99", ms(d99), "ms");
    report.bench("warm_added_p50", added50, "ms");
    report.bench("warm_added_p99", added99, "ms");
}

/// The processes whose CPU time a throughput run reports per call: the server and the
/// instance's agent (the container's first process).
#[derive(Clone, Copy)]
struct Cpu {
    server: i32,
    agent: i32,
}

/// A process's CPU time so far (user and system, all its threads), in seconds (the kernel's
/// clock ticks are 1/100 s).
fn cpu_seconds(pid: i32) -> f64 {
    proc_stat::cpu_ticks(pid.unsigned_abs()) as f64 / 100.0
}

/// Calls per second with `clients` keep-alive clients, through the API, directly and through
/// a bare TCP relay (one hop that parses nothing, [`tcp_relay`]): each client thread holds one
/// connection of each; all run the API side for the set time, then all the direct side, then
/// all the relay side, twice. The relay's rate bounds what any forwarding hop reaches on these
/// cores, shared with the clients and the function. The server's and the agent's CPU time
/// over the run, divided by the calls through the API, is printed too: the other sides use
/// neither, and unlike calls per second it holds on a machine busy with other work.
fn throughput(api: &Api, cpu: Cpu, clients: usize, plan: &Plan, report: &mut Report) {
    const SIDES: usize = 3;
    let barrier = Arc::new(Barrier::new(clients));
    let secs = plan.throughput_secs / 2.0;
    let function: std::net::SocketAddr = ([127, 0, 0, 1], 8080).into();
    let relay = tcp_relay::TcpRelay::start(cpu.agent, function, clients);
    let relay_addr = relay.addr.to_string();
    let states: Vec<_> = (0..clients)
        .map(|_| {
            (
                api.connect(),
                api.headers.clone(),
                barrier.clone(),
                relay_addr.clone(),
            )
        })
        .collect();
    let cpu_before = [cpu_seconds(cpu.server), cpu_seconds(cpu.agent)];
    let results = bench_support::in_netns_threads(
        cpu.agent,
        states,
        move |(mut through_api, headers, barrier, relay_addr)| {
            let mut direct = KeepAlive::connect(&function.to_string()).expect("the function");
            let mut relayed = KeepAlive::connect(&relay_addr).expect("the relay");
            let path = Api::path("warm");
            let direct_headers = direct_headers();
            // Calls per second of this client: [api, direct, relay]; and its calls through
            // the API.
            let mut rates = [0.0f64; SIDES];
            let mut api_calls = 0u64;
            for _round in 0..2 {
                for (side, rate) in rates.iter_mut().enumerate() {
                    barrier.wait();
                    let started = Instant::now();
                    let mut calls = 0u64;
                    while started.elapsed().as_secs_f64() < secs {
                        match side {
                            0 => call(&mut through_api, &path, &headers)
                                .expect("call through the API"),
                            1 => call(&mut direct, "/", &direct_headers).expect("direct call"),
                            _ => call(&mut relayed, "/", &direct_headers).expect("relayed call"),
                        }
                        calls += 1;
                    }
                    if side == 0 {
                        api_calls += calls;
                    }
                    *rate += calls as f64 / started.elapsed().as_secs_f64() / 2.0;
                }
            }
            (rates, api_calls)
        },
    );
    let cpu_after = [cpu_seconds(cpu.server), cpu_seconds(cpu.agent)];
    relay.join();
    let side = |i: usize| -> f64 { results.iter().map(|(r, _)| r[i]).sum() };
    let (through_api, direct, relayed) = (side(0), side(1), side(2));
    let api_calls: u64 = results.iter().map(|(_, n)| n).sum();
    let pct = 100.0 * through_api / direct.max(1e-9);
    let relay_pct = 100.0 * relayed / direct.max(1e-9);
    report.row(
        &format!("throughput, {clients} clients"),
        format!("{through_api:.0}/s"),
        format!("{direct:.0}/s direct"),
        format!("{pct:.0} %"),
        ">= 60 %",
        Some(pct >= 60.0),
    );
    report.row(
        &format!("  one bare TCP relay, {clients} clients"),
        format!("{relayed:.0}/s"),
        format!("{direct:.0}/s direct"),
        format!("{relay_pct:.0} %"),
        "(bound)",
        None,
    );
    report.bench(&format!("tput{clients}"), through_api, "/s");
    report.bench(&format!("floor_tput{clients}_direct"), direct, "/s");
    report.bench(&format!("tput{clients}_pct"), pct, "%");
    report.bench(&format!("floor_tput{clients}_relay"), relayed, "/s");
    report.bench(&format!("floor_tput{clients}_relay_pct"), relay_pct, "%");
    let per_call = |i: usize| 1e6 * (cpu_after[i] - cpu_before[i]) / api_calls.max(1) as f64;
    let (server_us, agent_us) = (per_call(0), per_call(1));
    report.notes.push(format!(
        "throughput, {clients} clients: CPU per call through the API: server {server_us:.0} µs, \
         agent {agent_us:.0} µs ({api_calls} calls); one bare TCP relay (a hop that parses \
         nothing, one thread per direction) reaches {relay_pct:.0} % of direct: what one hop \
         leaves on these cores, shared with the clients and the function"
    ));
    report.bench(&format!("cpu_server_per_call{clients}"), server_us, "us");
    report.bench(&format!("cpu_agent_per_call{clients}"), agent_us, "us");
}

/// K functions, deployed, then all invoked at once (a thread and a connection each); the rate
/// is K over the time until the last answer.
#[allow(clippy::too_many_arguments)]
async fn burst(
    http: &reqwest::Client,
    url: &str,
    data_dir: &Path,
    server_pid: i32,
    api: &Api,
    plan: &Plan,
    report: &mut Report,
    // A variant's label for the rows and notes and prefix for the BENCH keys.
    variant: Option<(&str, &str)>,
) {
    let (label, key) = match variant {
        Some((label, key)) => (format!(", {label}"), key),
        None => (String::new(), ""),
    };
    let before = std::fs::read_dir(data_dir.join("run/instances")).map_or(0, |d| d.count());
    let spec = json!({"image": "bench/echo"});
    for i in 0..plan.burst {
        bench_support::deploy(http, url, &format!("burst{i}"), &spec).await;
    }
    let barrier = Arc::new(Barrier::new(plan.burst + 1));
    let threads: Vec<_> = (0..plan.burst)
        .map(|i| {
            let mut client = api.connect();
            let headers = api.headers.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                call(&mut client, &Api::path(&format!("burst{i}")), &headers)
            })
        })
        .collect();
    barrier.wait();
    let started = Instant::now();
    let (busy_before, all_before) = proc_stat::machine_ticks();
    let server_before = cpu_seconds(server_pid);
    let mut lost = Vec::new();
    for t in threads {
        if let Err(e) = t.join().expect("burst thread") {
            lost.push(e);
        }
    }
    let elapsed = started.elapsed();
    let (busy_after, all_after) = proc_stat::machine_ticks();
    let server_per_start = (cpu_seconds(server_pid) - server_before) / plan.burst as f64;
    let rate = plan.burst as f64 / elapsed.as_secs_f64();
    // Whether the burst was bound by CPU (near 100 %) or by waiting on something.
    let busy = 100.0 * busy_after.saturating_sub(busy_before) as f64
        / all_after.saturating_sub(all_before).max(1) as f64;
    report.notes.push(format!(
        "burst{label}: the machine's CPUs were {busy:.0} % busy during the {} starts ({:.2} s); \
         the server's own CPU time per start {:.1} ms (its threads, not the runtime, helpers or \
         agents it starts)",
        plan.burst,
        elapsed.as_secs_f64(),
        server_per_start * 1000.0
    ));
    report.bench(&format!("{key}burst_cpu_busy"), busy, "%");
    report.bench(
        &format!("{key}cpu_server_per_start"),
        server_per_start * 1000.0,
        "ms",
    );
    for e in &lost {
        eprintln!("perf: lost call: {e}");
    }
    report.row(
        &format!("cold starts/s ({} at once{label})", plan.burst),
        format!("{rate:.1}/s"),
        format!("lost {}", lost.len()),
        "-".to_string(),
        ">= 100/s",
        Some(rate >= 100.0 && lost.is_empty()),
    );
    report.bench(&format!("{key}coldstarts_per_s"), rate, "/s");
    report.bench(&format!("{key}coldstarts_lost"), lost.len() as f64, "calls");
    // Then all deleted at once: their instances stop (container, network, mounts, cgroups
    // and directory each); the server's CPU time per stop includes its function's delete.
    let stopping = Instant::now();
    let server_before = cpu_seconds(server_pid);
    for i in 0..plan.burst {
        delete(http, url, &format!("burst{i}")).await;
    }
    wait_for_instances(data_dir, before);
    let stop_took = stopping.elapsed();
    let server_per_stop = (cpu_seconds(server_pid) - server_before) / plan.burst as f64;
    report.notes.push(format!(
        "burst{label}: its {} functions deleted, their instances all stopped in {:.2} s; the \
         server's own CPU time per stop {:.1} ms",
        plan.burst,
        stop_took.as_secs_f64(),
        server_per_stop * 1000.0
    ));
    report.bench(
        &format!("{key}stops_per_s"),
        plan.burst as f64 / stop_took.as_secs_f64(),
        "/s",
    );
    report.bench(
        &format!("{key}cpu_server_per_stop"),
        server_per_stop * 1000.0,
        "ms",
    );
    assert!(
        lost.is_empty(),
        "{} of {} calls of the burst were lost",
        lost.len(),
        plan.burst
    );
}

/// Noop flows per second with 8 clients, and an action state's latency over invoking its
/// function (the warm function), one of each in turn.
async fn flows(http: &reqwest::Client, url: &str, plan: &Plan, report: &mut Report) {
    const CLIENTS: usize = 8;
    bench_support::put_flow(http, url, "noop", "states:\n- {id: a, type: noop}\n").await;
    bench_support::put_flow(
        http,
        url,
        "action",
        "functions:\n- {id: echo, type: knative-namespace, service: warm}\n\
         states:\n- {id: a, type: action, action: {function: echo}}\n",
    )
    .await;
    for _ in 0..10 {
        bench_support::run_flow(http, url, "noop", INPUT).await;
        bench_support::run_flow(http, url, "action", INPUT).await;
    }
    let per_client = plan.flows / CLIENTS;
    let started = Instant::now();
    let clients = (0..CLIENTS).map(|_| {
        let (http, url) = (http.clone(), url.to_string());
        tokio::spawn(async move {
            for _ in 0..per_client {
                bench_support::run_flow(&http, &url, "noop", INPUT).await;
            }
        })
    });
    for c in futures_util::future::join_all(clients).await {
        c.expect("flow client");
    }
    let rate = (per_client * CLIENTS) as f64 / started.elapsed().as_secs_f64();

    let n = (plan.warm_calls / 2).max(20);
    let (mut direct, mut action) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let t = Instant::now();
        invoke(http, url, "warm").await;
        direct.push(t.elapsed());
        let t = Instant::now();
        let out = bench_support::run_flow(http, url, "action", INPUT).await;
        action.push(t.elapsed());
        assert_eq!(
            out["return"],
            json!({"hello": "world"}),
            "the action's echo"
        );
    }
    let (d50, _) = percentiles(&direct);
    let (a50, _) = percentiles(&action);
    let added = ms(a50) - ms(d50);
    report.row(
        &format!("noop flows/s, {CLIENTS} clients"),
        format!("{rate:.0}/s"),
        "-".to_string(),
        "-".to_string(),
        ">= 2000/s",
        Some(rate >= 2000.0),
    );
    report.row(
        "action state added p50",
        fmt_ms(a50),
        format!("{} invoke", fmt_ms(d50)),
        format!("+{added:.2} ms"),
        "<= +0.5 ms",
        Some(added <= 0.5),
    );
    report.bench("flows8_per_s", rate, "/s");
    report.bench("action_added_p50", added, "ms");
}

/// Waits (up to 30 s) until the server runs at most `count` instances (their directories under
/// `run/instances`), so that stopping deleted functions' instances does not overlap the next
/// measurement.
fn wait_for_instances(data_dir: &Path, count: usize) {
    let dir = data_dir.join("run/instances");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // Instances have their instance.json; the server's spare network namespaces
        // (`--spare-networks`) have directories there too, without one, and its stem cells
        // (`--spare-containers`) one that says `"stem": true`.
        let now = std::fs::read_dir(&dir).map_or(0, |d| {
            d.flatten()
                .filter(|e| {
                    std::fs::read(e.path().join("instance.json"))
                        .ok()
                        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                        .is_some_and(|meta| meta["stem"] != true)
                })
                .count()
        });
        if now <= count {
            return;
        }
        if Instant::now() > deadline {
            eprintln!("perf: still {now} instances 30 s after their functions were deleted (expected {count})");
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The server's resident set in KiB (VmRSS).
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmRSS:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
        })
        .expect("the server's VmRSS")
}

/// What M idle warm instances of one server cost, per instance (KiB).
struct IdleSample {
    agent: f64,
    /// The network helper (pasta or slirp4netns), and how many were found.
    helper: f64,
    helpers: usize,
    /// The agent's and the helper's private memory (USS: pages no other process maps): what
    /// one more instance adds, where the PSS above also holds a share of the binaries' pages
    /// that every instance maps (the agent's code, the helper's libraries).
    agent_private: f64,
    helper_private: f64,
    function: f64,
    server_growth: f64,
    before: u64,
    after: u64,
    /// The driver's state files (the OCI spec, the runtime's state, configuration, pid files)
    /// on its state directory's tmpfs, per instance: memory, not counted in the platform's
    /// share (on a disk they were page cache, not counted either).
    state_files: f64,
}

impl IdleSample {
    fn platform(&self) -> f64 {
        self.agent + self.helper + self.server_growth
    }

    fn platform_private(&self) -> f64 {
        self.agent_private + self.helper_private + self.server_growth
    }
}

/// A process's private memory (USS) in KiB: its pages no other process maps.
fn private_kib(pid: i32) -> u64 {
    bench_support::smaps_kib(pid, "Private_Clean").unwrap_or(0)
        + bench_support::smaps_kib(pid, "Private_Dirty").unwrap_or(0)
}

/// Deploys M functions of one idle warm instance each on `server`, measures them (agent and
/// network helper PSS and USS, the server's RSS growth) and deletes them again. One function
/// is deployed and called first and not counted: the server's growth is then what instances
/// add, not what its first deploy and call allocate once (caches, prepared statements,
/// connection pools).
async fn idle_instances(server: &BenchServer, http: &reqwest::Client, m: usize) -> IdleSample {
    let url = &server.url;
    let spec = json!({"image": "bench/echo", "scale": {"min": 1}});
    bench_support::deploy(http, url, "memwarm", &spec).await;
    invoke(http, url, "memwarm").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(server.pid());
    let state_before = used_kib(&server.data_dir().join("run"));
    for i in 0..m {
        bench_support::deploy(http, url, &format!("mem{i}"), &spec).await;
    }
    for i in 0..m {
        invoke(http, url, &format!("mem{i}")).await;
    }
    // Idle: the server closes its kept connection to an idle agent after 1 s, the agent its
    // connection to the function, and the agent returns the memory freed to the kernel then
    // (at the latest 1.5 s after its last call); every figure is taken 2 s after the calls.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let after = rss_kib(server.pid());
    let state_after = used_kib(&server.data_dir().join("run"));
    let (mut agent, mut helper, mut function, mut helpers) = (0u64, 0u64, 0u64, 0usize);
    let (mut agent_private, mut helper_private) = (0u64, 0u64);
    for i in 0..m {
        let container = bench_support::container_of(server.data_dir(), &format!("bench/mem{i}"));
        let pid = bench_support::container_pid(server.data_dir(), &container);
        agent += bench_support::smaps_kib(pid, "Pss").expect("the agent's PSS");
        agent_private += private_kib(pid);
        for child in bench_support::children_of(pid) {
            function += bench_support::smaps_kib(child, "Pss").unwrap_or(0);
        }
        // The helper's pid file keeps pasta's name for either helper.
        let pid_file = server
            .data_dir()
            .join("run/instances")
            .join(&container)
            .join("pasta.pid");
        if let Some(p) = std::fs::read_to_string(pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            if let Some(kib) = bench_support::smaps_kib(p, "Pss") {
                helper += kib;
                helper_private += private_kib(p);
                helpers += 1;
            }
        }
    }
    for i in 0..m {
        delete(http, url, &format!("mem{i}")).await;
    }
    delete(http, url, "memwarm").await;
    wait_for_instances(server.data_dir(), 0);
    let per = |total: u64| total as f64 / m as f64;
    IdleSample {
        agent: per(agent),
        helper: per(helper),
        helpers,
        agent_private: per(agent_private),
        helper_private: per(helper_private),
        function: per(function),
        server_growth: after.saturating_sub(before) as f64 / m as f64,
        before,
        after,
        state_files: state_after.saturating_sub(state_before) as f64 / m as f64,
    }
}

/// KiB in use on the file system of `dir` (the driver's state tmpfs).
fn used_kib(dir: &Path) -> u64 {
    nix::sys::statvfs::statvfs(dir).map_or(0, |fs| {
        fs.blocks().saturating_sub(fs.blocks_free()) * fs.fragment_size() / 1024
    })
}

/// M idle warm instances (one function each): the platform's memory per instance, with the
/// server under test's network helper (slirp4netns, the default, unless FAASBOX_NETWORK_HELPER
/// says otherwise) and with the other helper (a second server, where installed). BENCH keys:
/// `mem_platform` for the default helper, `mem_<helper>` for each helper's own PSS,
/// `mem_platform_<helper>` for the other one's platform share.
async fn memory(
    server: &BenchServer,
    http: &reqwest::Client,
    image_tar: &Path,
    plan: &Plan,
    report: &mut Report,
) {
    let m = plan.memory_instances;
    let helper = std::env::var("FAASBOX_NETWORK_HELPER")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "slirp4netns".to_string());
    let other_helper = if helper == "pasta" {
        "slirp4netns"
    } else {
        "pasta"
    };
    let main = idle_instances(server, http, m).await;
    report.row(
        &format!("memory per idle instance ({helper})"),
        format!("{:.0} KiB", main.platform()),
        format!(
            "agent {:.0} {helper} {:.0} srv {:.0}",
            main.agent, main.helper, main.server_growth
        ),
        "-".to_string(),
        "<= 1024 KiB",
        Some(main.platform() <= 1024.0),
    );
    // Not the goal's measure (that is the share above); printed because it is what each
    // further instance costs: the shares of code every instance maps shrink as they grow.
    report.row(
        &format!("  private memory per idle instance ({helper})"),
        format!("{:.0} KiB", main.platform_private()),
        format!(
            "agent {:.0} {helper} {:.0} srv {:.0}",
            main.agent_private, main.helper_private, main.server_growth
        ),
        "-".to_string(),
        "(USS)",
        None,
    );
    let other = if bench_support::command_exists(other_helper) {
        let second = BenchServer::start_with(&["--network-helper", other_helper]);
        let second_http = second.ready().await;
        bench_support::import(&second_http, &second.url, "bench/echo", image_tar, &[]).await;
        let sample = idle_instances(&second, &second_http, m).await;
        report.row(
            &format!("memory per idle instance, {other_helper}"),
            format!("{:.0} KiB", sample.platform()),
            format!(
                "agent {:.0} {other_helper} {:.0} srv {:.0}",
                sample.agent, sample.helper, sample.server_growth
            ),
            "-".to_string(),
            "<= 1024 KiB",
            Some(sample.platform() <= 1024.0),
        );
        Some(sample)
    } else {
        report.notes.push(format!(
            "memory: {other_helper} is not installed, its row is skipped"
        ));
        None
    };
    // An instance of a function without network has no helper: the same agent and server
    // bookkeeping.
    let without_network = main.agent + main.server_growth;
    report.row(
        "memory per instance, no network",
        format!("{without_network:.0} KiB"),
        format!("agent {:.0} srv {:.0}", main.agent, main.server_growth),
        "-".to_string(),
        "<= 1024 KiB",
        Some(without_network <= 1024.0),
    );
    let ksm = std::fs::read_to_string("/sys/kernel/mm/ksm/run")
        .map(|v| if v.trim() == "1" { "on" } else { "off" })
        .unwrap_or("not in this kernel");
    report.notes.push(format!(
        "memory: the host's same-page merging (KSM) is {ksm}; pasta's share shrinks with it on \
         (README, Performance: Memory)"
    ));
    report.notes.push(format!(
        "memory: {m} idle warm instances (after one more deployed and called first, not \
         counted); per instance: agent PSS {:.0} KiB, {helper} PSS {:.0} KiB ({} found), server \
         RSS growth {:.0} KiB ({} → {} KiB over {m}); the function's own PSS {:.0} KiB (not \
         counted); the driver's state files on its tmpfs {:.0} KiB (not counted: on a disk they \
         were page cache)",
        main.agent,
        main.helper,
        main.helpers,
        main.server_growth,
        main.before,
        main.after,
        main.function,
        main.state_files
    ));
    report.bench("mem_state_files", main.state_files, "KiB");
    report.bench("mem_agent", main.agent, "KiB");
    report.bench(&format!("mem_{helper}"), main.helper, "KiB");
    report.bench("mem_server", main.server_growth, "KiB");
    report.bench("mem_platform", main.platform(), "KiB");
    report.bench("mem_agent_private", main.agent_private, "KiB");
    report.bench(&format!("mem_{helper}_private"), main.helper_private, "KiB");
    report.bench("mem_platform_private", main.platform_private(), "KiB");
    if let Some(other) = other {
        report.notes.push(format!(
            "memory with {other_helper}: {m} idle warm instances on a second server; per \
             instance: agent PSS {:.0} KiB, {other_helper} PSS {:.0} KiB ({} found), server RSS \
             growth {:.0} KiB",
            other.agent, other.helper, other.helpers, other.server_growth
        ));
        report.bench(&format!("mem_{other_helper}"), other.helper, "KiB");
        report.bench(
            &format!("mem_platform_{other_helper}"),
            other.platform(),
            "KiB",
        );
    }
    report.bench("mem_platform_no_network", without_network, "KiB");
    report.bench("floor_mem_function", main.function, "KiB");
}
