//! Bounded expressions and flows against the real server: templates and transforms nested
//! past the parse bound refused at deploy, a YAML alias bomb refused fast with flat memory,
//! runaway jq ending its instance (or call) at its bound while the server keeps answering,
//! cancel and a SIGKILL + restart during a runaway, and the transition and data-size bounds.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::images::{self, rootfs_query};
use support::{alive, cpu_ticks, expr_workers, Server};

const BAD_COMMAND: &str = "direktiv.jq.badCommand";

fn nested_parens() -> String {
    format!("{}1{}", "(".repeat(1000), ")".repeat(1000))
}

fn long_sum() -> String {
    format!("1{}", " + 1".repeat(3000))
}

/// The resident memory of a process (KiB), from /proc.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Asserts the health endpoint answers within two seconds.
async fn healthy(server: &Server) {
    let started = Instant::now();
    let r = tokio::time::timeout(
        Duration::from_secs(2),
        server.http.get(server.url("/api/v1/health")).send(),
    )
    .await;
    assert!(
        matches!(&r, Ok(Ok(r)) if r.status().is_success()),
        "health did not answer within 2 s ({:?})",
        started.elapsed()
    );
}

fn error_of(instance: &Value) -> (String, String) {
    (
        instance["error"]["code"].as_str().unwrap_or("").to_string(),
        instance["error"]["message"]
            .as_str()
            .unwrap_or("")
            .to_string(),
    )
}

/// Namespace demo and the image `busybox` (a bare root filesystem) in `server`; the image's
/// directory lives as long as the returned guard.
async fn with_busybox(server: &Server) -> tempfile::TempDir {
    server.create_namespace("demo").await;
    let (dir, tar) = images::rootfs_tar_with(&[]);
    let query = rootfs_query();
    let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = server.import(&tar, "busybox", &query).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    dir
}

#[tokio::test]
async fn deeply_nested_templates_and_transforms_are_refused_at_deploy() {
    let server = Server::start().await;
    let _image = with_busybox(&server).await;

    for (expr, what) in [(nested_parens(), "parentheses"), (long_sum(), "sum")] {
        let spec = json!({"image": "busybox", "input": {"x": {"y": format!("jq({expr})")}}});
        let r = server
            .put_json("/api/v1/namespaces/demo/functions/deep", &spec)
            .await;
        assert_eq!(r.status(), 400, "{what}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], BAD_COMMAND, "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("at .x.y: jq(") && message.contains("nests too deeply at character"),
            "{message}"
        );

        let flow = format!(
            "direktiv_api: workflow/v1\nstates:\n- id: a\n  type: noop\n  transform: 'jq({expr})'\n"
        );
        let r = server.put_flow("deep", &flow).await;
        assert_eq!(r.status(), 400, "{what}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "faasbox.flow.invalid", "{body}");
        assert_eq!(body["error"]["problems"][0]["line"], 5, "{body}");
        let problem = body["error"]["problems"][0]["message"].as_str().unwrap();
        assert!(problem.contains("nests too deeply"), "{problem}");
        healthy(&server).await;
    }
    // Nothing was stored.
    let r = server.get("/api/v1/namespaces/demo/functions/deep").await;
    assert_eq!(r.status(), 404);
    let r = server.get("/api/v1/namespaces/demo/flows/deep").await;
    assert_eq!(r.status(), 404);
    // The same shapes within the bound deploy and run.
    let fine = format!("{}1{}", "(".repeat(50), ")".repeat(50));
    server
        .deploy_flow(
            "fine",
            &format!("direktiv_api: workflow/v1\nstates:\n- id: a\n  type: noop\n  transform: {{x: 'jq({fine})'}}\n"),
        )
        .await;
    let (status, _, out) = server.run_flow("fine", &json!({})).await;
    assert_eq!((status, out), (200, json!({"x": 1})));
}

#[tokio::test]
async fn a_yaml_alias_bomb_is_refused_at_once_with_flat_memory() {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let mut bomb = String::from("direktiv_api: workflow/v1\nx0: &a0 [x,x,x,x,x,x,x,x,x,x]\n");
    for i in 1..10 {
        let items = vec![format!("*a{}", i - 1); 10].join(",");
        bomb.push_str(&format!("x{i}: &a{i} [{items}]\n"));
    }
    bomb.push_str("states:\n- id: a\n  type: noop\n  transform:\n    v: *a9\n");
    assert!(bomb.len() < 700);
    let before = rss_kib(server.pid());
    let started = Instant::now();
    let r = server.put_flow("bomb", &bomb).await;
    let took = started.elapsed();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("aliases copy more than"), "{message}");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    let after = rss_kib(server.pid());
    assert!(
        after < before + 20 * 1024,
        "server memory went from {before} KiB to {after} KiB"
    );
    healthy(&server).await;
}

#[tokio::test]
async fn runaway_expressions_fail_their_instance_at_the_bound_while_the_server_answers() {
    let server = Server::start_with(&["--jq-memory", "128MiB"]).await;
    server.create_namespace("demo").await;
    let runaways = [
        ("def f: f; f", "CPU time bound of 1s"),
        ("until(false; .)", "CPU time bound of 1s"),
        ("last(range(1e12))", "CPU time bound of 1s"),
        ("[range(1e12)] | length", "bound"),
        ("\"x\" * 1000000000", "memory bound of 128 MiB"),
    ];
    let mut ids = Vec::new();
    for (i, (expr, _)) in runaways.iter().enumerate() {
        let flow = format!(
            "direktiv_api: workflow/v1\nstates:\n- id: a\n  type: noop\n  transform: 'jq({})'\n",
            expr.replace('\'', "''")
        );
        server.deploy_flow(&format!("runaway{i}"), &flow).await;
        ids.push(server.start_flow(&format!("runaway{i}"), &json!({})).await);
    }
    // While they run (two workers, so they take turns), health answers.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut pending = ids.clone();
    while !pending.is_empty() {
        healthy(&server).await;
        let mut still = Vec::new();
        for id in pending {
            let instance = server.instance(&id).await;
            if instance["status"] == "running" {
                still.push(id);
            }
        }
        pending = still;
        assert!(
            Instant::now() < deadline,
            "instances still run: {pending:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for (id, (expr, bound)) in ids.iter().zip(runaways) {
        let instance = server.instance(id).await;
        assert_eq!(instance["status"], "failed", "{expr}: {instance}");
        let (code, message) = error_of(&instance);
        assert_eq!(code, BAD_COMMAND, "{expr}: {message}");
        assert!(message.contains(bound), "{expr}: {message}");
    }
    // The error is catchable like any badCommand.
    server
        .deploy_flow(
            "caught",
            "direktiv_api: workflow/v1\nstates:\n- id: a\n  type: noop\n  transform: 'jq(def f: f; f)'\n  catch: [{error: direktiv.jq.badCommand, transition: b}]\n- {id: b, type: noop, transform: 'jq({code: .error.code})'}\n",
        )
        .await;
    let (status, _, out) = server.run_flow("caught", &json!({})).await;
    assert_eq!((status, out), (200, json!({"code": BAD_COMMAND})));
    assert!(expr_workers(server.pid()).len() <= 2);
}

#[tokio::test]
async fn a_runaway_input_template_fails_its_call_at_the_bound() {
    let server = Server::start().await;
    let _image = with_busybox(&server).await;
    server
        .deploy(
            "demo",
            "spin",
            json!({"image": "busybox", "input": {"x": "jq(last(range(1e12)))"}}),
        )
        .await;
    let started = Instant::now();
    let (status, _, body) = server.invoke("demo", "spin", "{}").await;
    assert_eq!(status, 400);
    let body = support::json(&body);
    assert_eq!(body["error"]["code"], BAD_COMMAND, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("CPU time bound of 1s"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(60));
    healthy(&server).await;
}

#[tokio::test]
async fn cancel_stops_instances_while_they_evaluate_or_wait_for_a_worker() {
    let server = Server::start_with(&["--jq-cpu-time", "10m", "--jq-workers", "2"]).await;
    // Three runaways, two workers: two evaluate, the third waits for a worker.
    let (ids, busy) = start_spinning(&server).await;
    healthy(&server).await;
    for id in &ids {
        let r = server
            .post_json(
                &format!("/api/v1/namespaces/demo/instances/{id}/cancel"),
                &json!({}),
            )
            .await;
        assert_eq!(r.status(), 202);
    }
    for id in &ids {
        let instance = server
            .wait_instance(id, &["cancelled"], Duration::from_secs(10))
            .await;
        assert_eq!(instance["error"]["code"], "direktiv.cancels.api");
    }
    wait_gone(&busy, "the busy workers were not stopped").await;
    healthy(&server).await;
}

#[tokio::test]
async fn a_kill_and_restart_during_runaways_does_not_hang() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mut server = Server::start_in_with(&data_dir, &["--jq-workers", "2"]).await;
    let (ids, busy) = start_spinning(&server).await;
    server.kill();
    // The workers notice their server is gone and end, whatever they were doing.
    wait_gone(&busy, "workers outlived their server").await;
    // The restarted server resumes the instances under the same bound.
    let server = Server::start_in_with(&data_dir, &["--jq-workers", "2"]).await;
    healthy(&server).await;
    for id in &ids {
        let instance = server
            .wait_instance(id, &["failed"], Duration::from_secs(120))
            .await;
        let (code, message) = error_of(&instance);
        assert_eq!(code, BAD_COMMAND);
        assert!(message.contains("CPU time bound"), "{message}");
    }
    healthy(&server).await;
}

/// The runaways that spin on the CPU without growing.
const SPINNING: [&str; 3] = ["def f: f; f", "until(false; .)", "last(range(1e12))"];

/// Starts an instance of each [`SPINNING`] transform in namespace demo; their ids, and the
/// pids of the two workers evaluating (once both have used some CPU time).
async fn start_spinning(server: &Server) -> (Vec<String>, Vec<u32>) {
    server.create_namespace("demo").await;
    let mut ids = Vec::new();
    for (i, expr) in SPINNING.iter().enumerate() {
        let flow = format!(
            "direktiv_api: workflow/v1\nstates:\n- id: a\n  type: noop\n  transform: 'jq({expr})'\n"
        );
        server.deploy_flow(&format!("spin{i}"), &flow).await;
        ids.push(server.start_flow(&format!("spin{i}"), &json!({})).await);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let busy: Vec<u32> = expr_workers(server.pid())
            .into_iter()
            .filter(|&pid| cpu_ticks(pid) >= 20)
            .collect();
        if busy.len() == 2 {
            return (ids, busy);
        }
        assert!(Instant::now() < deadline, "the workers did not get busy");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until none of `pids` runs.
async fn wait_gone(pids: &[u32], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|&pid| alive(pid)) {
        assert!(Instant::now() < deadline, "{what}: {pids:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_transition_and_data_bounds_end_instances_with_their_own_codes() {
    let server =
        Server::start_with(&["--flow-max-transitions", "100", "--flow-max-data", "64KiB"]).await;
    server.create_namespace("demo").await;
    server
        .deploy_flow(
            "loop",
            "direktiv_api: workflow/v1\nstates:\n- {id: a, type: noop, transition: b}\n- {id: b, type: noop, transition: a}\n",
        )
        .await;
    let (status, id, body) = server.run_flow("loop", &json!({})).await;
    assert_eq!(status, 422, "{body}");
    let instance = server.instance(&id).await;
    let (code, message) = error_of(&instance);
    assert_eq!(code, "faasbox.flow.too_many_transitions", "{message}");
    assert!(message.contains("at most 100"), "{message}");

    server
        .deploy_flow(
            "grow",
            "direktiv_api: workflow/v1\nstates:\n- {id: a, type: noop, transform: {small: 1}, transition: b}\n- {id: b, type: noop, transform: 'jq({big: (\"x\" * 100000)})'}\n",
        )
        .await;
    let (_, id, _) = server.run_flow("grow", &json!({})).await;
    let instance = server.instance(&id).await;
    let (code, message) = error_of(&instance);
    assert_eq!(code, "faasbox.flow.data_too_large", "{message}");
    assert!(message.contains("65536 bytes"), "{message}");
    // The too-large data was never stored.
    assert!(
        !support::contains_bytes(&server.database_bytes(), "x".repeat(70_000).as_bytes()),
        "the oversized data reached the database"
    );
}
