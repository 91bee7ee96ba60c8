//! Flow events and schedules against a real server: CloudEvents accepted in structured and
//! binary HTTP mode (and through `faasbox event send`), duplicates accepted once, bad events
//! refused with a clear 400 and nothing stored.

mod support;

use serde_json::{json, Value};
use support::Server;

/// A server with the namespace "demo".
async fn demo() -> Server {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    server
}

/// A server with the namespace "demo" in a data directory below `dir`, to restart it on.
async fn restartable_demo(dir: &tempfile::TempDir) -> (Server, std::path::PathBuf) {
    let data_dir = dir.path().join("data");
    let server = Server::start_in(&data_dir).await;
    server.create_namespace("demo").await;
    (server, data_dir)
}

async fn post_event(
    server: &Server,
    ns: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> reqwest::Response {
    let mut request = server
        .http
        .post(server.url(&format!("/api/v1/namespaces/{ns}/events")))
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("POST event")
}

async fn stored_events(server: &Server, ns: &str) -> Vec<Value> {
    let list = server
        .get_json(&format!("/api/v1/namespaces/{ns}/events"))
        .await;
    list.as_array().expect("a list").clone()
}

const STRUCTURED: &str = "application/cloudevents+json";

/// Request headers, body, and what the error message must say.
type BadCase = (
    Vec<(&'static str, &'static str)>,
    &'static [u8],
    &'static str,
);

#[tokio::test]
async fn structured_and_binary_events_are_stored_in_structured_form() {
    let server = demo().await;

    let structured = json!({
        "specversion": "1.0", "id": "s-1", "source": "/shop", "type": "order.created",
        "datacontenttype": "application/json", "region": "eu", "data": {"order": 7}
    });
    let r = post_event(
        &server,
        "demo",
        &[("content-type", STRUCTURED)],
        structured.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status(), 202);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(
        answer,
        json!({"id": "s-1", "source": "/shop", "type": "order.created", "duplicate": false})
    );

    let r = post_event(
        &server,
        "demo",
        &[
            ("content-type", "text/plain"),
            ("ce-specversion", "1.0"),
            ("ce-id", "b-1"),
            ("ce-source", "/sensors/1"),
            ("ce-type", "reading.taken"),
            ("ce-unit", "celsius%20degrees"),
        ],
        b"21.5",
    )
    .await;
    assert_eq!(r.status(), 202);

    let events = stored_events(&server, "demo").await;
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[0]["event"],
        json!({
            "specversion": "1.0", "id": "b-1", "source": "/sensors/1", "type": "reading.taken",
            "datacontenttype": "text/plain", "unit": "celsius degrees", "data": "21.5"
        })
    );
    assert_eq!(events[1]["event"], structured);
}

#[tokio::test]
async fn a_resent_event_is_accepted_once() {
    let server = demo().await;
    let event = json!({"specversion": "1.0", "id": "dup", "source": "/s", "type": "t"});
    for expected_duplicate in [false, true] {
        let r = post_event(
            &server,
            "demo",
            &[("content-type", STRUCTURED)],
            event.to_string().as_bytes(),
        )
        .await;
        assert_eq!(r.status(), 202);
        let answer: Value = r.json().await.unwrap();
        assert_eq!(answer["duplicate"], json!(expected_duplicate));
    }
    assert_eq!(stored_events(&server, "demo").await.len(), 1);
}

#[tokio::test]
async fn bad_cloudevents_get_a_clear_400_and_nothing_is_stored() {
    let server = demo().await;
    let cases: Vec<BadCase> = vec![
        (
            vec![("content-type", STRUCTURED)],
            br#"{"specversion":"1.0","id":"1","source":"/s"}"#,
            "no 'type' attribute",
        ),
        (
            vec![("content-type", STRUCTURED)],
            br#"{"specversion":"0.3","id":"1","source":"/s","type":"t"}"#,
            "use \"1.0\"",
        ),
        (vec![("content-type", STRUCTURED)], b"{not json", "not JSON"),
        (
            vec![("content-type", "application/json")],
            br#"{"hello":"world"}"#,
            "binary mode",
        ),
        (
            vec![
                ("content-type", "application/json"),
                ("ce-specversion", "1.0"),
                ("ce-id", "1"),
                ("ce-source", "/s"),
                ("ce-type", "t"),
            ],
            b"{broken",
            "not valid JSON",
        ),
        (
            vec![("content-type", STRUCTURED)],
            br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","time":"now"}"#,
            "RFC 3339",
        ),
    ];
    for (headers, body, expected) in cases {
        let r = post_event(&server, "demo", &headers, body).await;
        assert_eq!(r.status(), 400, "{headers:?}");
        let answer: Value = r.json().await.unwrap();
        assert_eq!(answer["error"]["code"], "faasbox.request.invalid");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{message:?} lacks {expected:?}");
    }
    assert!(stored_events(&server, "demo").await.is_empty());

    let r = post_event(
        &server,
        "nope",
        &[("content-type", STRUCTURED)],
        br#"{"specversion":"1.0","id":"1","source":"/s","type":"t"}"#,
    )
    .await;
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn cli_sends_binary_and_structured_events() {
    let server = demo().await;
    server.cli_ok(&[
        "event",
        "send",
        "demo",
        "--type",
        "order.created",
        "--source",
        "/shop",
        "--id",
        "cli-1",
        "--context",
        "region=eu west",
        "--data",
        r#"{"order": 1}"#,
    ]);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        file.path(),
        json!({"specversion": "1.0", "id": "cli-2", "source": "/file", "type": "file.sent", "data": [1, 2]})
            .to_string(),
    )
    .unwrap();
    let out = server.cli_ok(&[
        "event",
        "send",
        "demo",
        "--structured",
        "--file",
        file.path().to_str().unwrap(),
        "-o",
        "json",
    ]);
    let answer: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["id"], "cli-2");

    let events = stored_events(&server, "demo").await;
    assert_eq!(events[0]["event"]["data"], json!([1, 2]));
    assert_eq!(events[1]["event"]["region"], "eu west");
    assert_eq!(events[1]["event"]["data"], json!({"order": 1}));

    let listed = server.cli_ok(&["event", "ls", "demo"]);
    assert!(
        listed.contains("file.sent") && listed.contains("order.created"),
        "{listed}"
    );

    let out = server.cli(&["event", "send", "demo", "--data", "{}"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--type is required"));
}

// --- flows started and resumed by events ------------------------------------------------

/// How long a test waits for something the server does in the background.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

async fn deploy_flow(server: &Server, ns: &str, path: &str, yaml: &str) {
    let r = server
        .http
        .put(server.url(&format!("/api/v1/namespaces/{ns}/flows/{path}")))
        .header("content-type", "application/yaml")
        .body(yaml.to_string())
        .send()
        .await
        .expect("PUT flow");
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    assert!(status.is_success(), "deploying {path}: {status} {body}");
}

/// Deploys a flow to namespace demo that must be refused with a 400 saying `says`.
async fn deploy_refused(server: &Server, path: &str, yaml: &str, says: &str) {
    let r = server
        .http
        .put(server.url(&format!("/api/v1/namespaces/demo/flows/{path}")))
        .body(yaml.to_string())
        .send()
        .await
        .expect("PUT flow");
    assert_eq!(r.status(), 400);
    let message = r.text().await.unwrap_or_default();
    assert!(message.contains(says), "{message}");
}

async fn run_flow(server: &Server, ns: &str, path: &str, input: &Value) -> String {
    let r = server
        .post_json(&format!("/api/v1/namespaces/{ns}/flows/{path}/run"), input)
        .await;
    let status = r.status();
    let body: Value = r.json().await.expect("run answer");
    assert!(status.is_success(), "running {path}: {status} {body}");
    body["id"].as_str().expect("instance id").to_string()
}

async fn instances(server: &Server, ns: &str) -> Vec<Value> {
    let list = server
        .get_json(&format!("/api/v1/namespaces/{ns}/instances"))
        .await;
    match list {
        Value::Array(items) => items,
        other => other["instances"].as_array().cloned().unwrap_or_default(),
    }
}

/// The instances of one flow (by its path, with or without a leading '/').
async fn instances_of(server: &Server, ns: &str, flow: &str) -> Vec<Value> {
    let flow = flow.trim_start_matches('/');
    instances(server, ns)
        .await
        .into_iter()
        .filter(|i| {
            ["flow", "path", "workflow"].iter().any(|key| {
                i[*key]
                    .as_str()
                    .is_some_and(|p| p.trim_start_matches('/') == flow)
            })
        })
        .collect()
}

fn is_finished(instance: &Value) -> bool {
    !matches!(
        instance["status"].as_str(),
        Some("pending" | "running" | "waiting") | None
    )
}

async fn instance(server: &Server, ns: &str, id: &str) -> Value {
    server
        .get_json(&format!("/api/v1/namespaces/{ns}/instances/{id}"))
        .await
}

/// Polls until the instance has finished; returns it.
async fn finished(server: &Server, ns: &str, id: &str) -> Value {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let current = instance(server, ns, id).await;
        if is_finished(&current) {
            return current;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "instance {id} did not finish: {current}\nserver log:\n{}",
            support::tail(&server.log(), 40)
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Polls until the instance waits for events.
async fn waiting(server: &Server, ns: &str, id: &str) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while instance(server, ns, id).await["status"] != "waiting" {
        assert!(
            std::time::Instant::now() < deadline,
            "instance {id} never waited"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Polls until `flow` has at least `count` finished instances; returns them.
async fn finished_instances_of(server: &Server, ns: &str, flow: &str, count: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let done: Vec<Value> = instances_of(server, ns, flow)
            .await
            .into_iter()
            .filter(is_finished)
            .collect();
        if done.len() >= count {
            let mut full = Vec::new();
            for i in done {
                let id = i["id"].as_str().expect("id").to_string();
                full.push(instance(server, ns, &id).await);
            }
            return full;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{flow} has {} finished instances, not {count}\nserver log:\n{}",
            done.len(),
            support::tail(&server.log(), 40)
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Sends an event in binary mode with JSON data and extension attributes.
async fn send(
    server: &Server,
    ns: &str,
    event_type: &str,
    source: &str,
    data: Value,
    ext: &[(&str, &str)],
) {
    let id = uuid_like();
    let mut headers = vec![
        ("content-type", "application/json".to_string()),
        ("ce-specversion", "1.0".to_string()),
        ("ce-id", id),
        ("ce-source", source.to_string()),
        ("ce-type", event_type.to_string()),
    ];
    let ext_headers: Vec<(String, String)> = ext
        .iter()
        .map(|(n, v)| (format!("ce-{n}"), v.to_string()))
        .collect();
    let mut request = server
        .http
        .post(server.url(&format!("/api/v1/namespaces/{ns}/events")))
        .body(data.to_string());
    for (name, value) in headers.drain(..) {
        request = request.header(name, value);
    }
    for (name, value) in ext_headers {
        request = request.header(name, value);
    }
    let r = request.send().await.expect("POST event");
    assert_eq!(r.status(), 202);
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "ev-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn output(instance: &Value) -> Value {
    let out = &instance["output"];
    match out {
        Value::String(s) => serde_json::from_str(s).unwrap_or(out.clone()),
        other => other.clone(),
    }
}

/// How long a check that something must not happen watches for it. An accepted event is
/// dispatched to its listeners within milliseconds; three seconds are hundreds of times that.
const NOT_WITHIN: std::time::Duration = std::time::Duration::from_secs(3);

/// Asserts that `flow` has exactly `n` instances for all of [`NOT_WITHIN`].
async fn stays_with_instances(server: &Server, flow: &str, n: usize) {
    support::assert_stays(
        NOT_WITHIN,
        &format!("{n} instances of {flow}"),
        || instances_of(server, "demo", flow),
        |list| list.len() == n,
    )
    .await;
}

/// Asserts that instance `id` stays as `holds` says for all of [`NOT_WITHIN`].
async fn instance_stays(server: &Server, id: &str, what: &str, holds: impl FnMut(&Value) -> bool) {
    support::assert_stays(NOT_WITHIN, what, || instance(server, "demo", id), holds).await;
}

const EVENT_START: &str = r#"direktiv_api: workflow/v1
start:
  type: event
  event:
    type: order.created
    context:
      source: "/shop/*"
states:
- id: done
  type: noop
  transform:
    order: jq(."order.created".data.order)
    source: jq(."order.created".source)
"#;

#[tokio::test]
async fn an_event_start_begins_an_instance_with_the_event_under_its_type() {
    let server = demo().await;
    deploy_flow(&server, "demo", "on-order", EVENT_START).await;
    // Its context filter refuses this one.
    send(
        &server,
        "demo",
        "order.created",
        "/elsewhere",
        json!({"order": 1}),
        &[],
    )
    .await;
    send(
        &server,
        "demo",
        "order.created",
        "/shop/eu",
        json!({"order": 7}),
        &[],
    )
    .await;
    let done = finished_instances_of(&server, "demo", "on-order", 1).await;
    assert_eq!(output(&done[0]), json!({"order": 7, "source": "/shop/eu"}));
    stays_with_instances(&server, "on-order", 1).await;
}

#[tokio::test]
async fn events_xor_start_takes_either_event_and_events_and_waits_for_both() {
    let server = demo().await;
    deploy_flow(
        &server,
        "demo",
        "xor",
        r#"direktiv_api: workflow/v1
start:
  type: eventsXor
  events:
  - type: a.happened
  - type: b.happened
states:
- id: done
  type: noop
  transform:
    got: jq(keys)
"#,
    )
    .await;
    deploy_flow(
        &server,
        "demo",
        "and",
        r#"direktiv_api: workflow/v1
start:
  type: eventsAnd
  lifespan: PT10M
  events:
  - type: a.happened
  - type: b.happened
states:
- id: done
  type: noop
  transform:
    a: jq(."a.happened".data.n)
    b: jq(."b.happened".data.n)
"#,
    )
    .await;
    send(&server, "demo", "a.happened", "/t", json!({"n": 1}), &[]).await;
    let xor = finished_instances_of(&server, "demo", "xor", 1).await;
    assert_eq!(output(&xor[0]), json!({"got": ["a.happened"]}));
    stays_with_instances(&server, "and", 0).await;
    send(&server, "demo", "b.happened", "/t", json!({"n": 2}), &[]).await;
    let and = finished_instances_of(&server, "demo", "and", 1).await;
    assert_eq!(output(&and[0]), json!({"a": 1, "b": 2}));
    finished_instances_of(&server, "demo", "xor", 2).await;
}

#[tokio::test]
async fn a_scheduled_flow_runs_on_its_cron_and_stops_when_removed() {
    let server = demo().await;
    deploy_refused(
        &server,
        "tick",
        "direktiv_api: workflow/v1\nstart:\n  type: scheduled\n  cron: \"every second\"\nstates:\n- id: a\n  type: noop\n",
        "line 4, column 9: invalid cron expression 'every second'",
    )
    .await;
    deploy_flow(
        &server,
        "demo",
        "tick",
        "direktiv_api: workflow/v1\nstart:\n  type: scheduled\n  cron: \"* * * * * *\"\nstates:\n- id: a\n  type: noop\n  transform:\n    ticked: true\n",
    )
    .await;
    let done = finished_instances_of(&server, "demo", "tick", 2).await;
    assert_eq!(output(&done[0]), json!({"ticked": true}));
    let r = server.delete("/api/v1/namespaces/demo/flows/tick").await;
    assert!(r.status().is_success());
    // A slot claimed just before the delete may still start; after a second none does.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let count = instances_of(&server, "demo", "tick").await.len();
    stays_with_instances(&server, "tick", count).await;
}

const CONSUME: &str = r#"direktiv_api: workflow/v1
states:
- id: wait
  type: consumeEvent
  timeout: PT5M
  event:
    type: approval.given
    context:
      orderid: jq(.order)
  transform:
    order: jq(.order)
    approved: jq(."approval.given".data.ok)
"#;

#[tokio::test]
async fn consume_event_waits_for_the_event_its_context_names() {
    let server = demo().await;
    deploy_flow(&server, "demo", "approve", CONSUME).await;
    let id = run_flow(&server, "demo", "approve", &json!({"order": "42"})).await;
    waiting(&server, "demo", &id).await;
    send(
        &server,
        "demo",
        "approval.given",
        "/ui",
        json!({"ok": false}),
        &[("orderid", "41")],
    )
    .await;
    instance_stays(&server, &id, "the instance waiting", |i| !is_finished(i)).await;
    send(
        &server,
        "demo",
        "approval.given",
        "/ui",
        json!({"ok": true}),
        &[("orderid", "42")],
    )
    .await;
    let done = finished(&server, "demo", &id).await;
    assert_eq!(output(&done), json!({"order": "42", "approved": true}));
}

#[tokio::test]
async fn events_and_state_waits_for_both_and_events_xor_state_takes_the_first() {
    let server = demo().await;
    deploy_flow(
        &server,
        "demo",
        "both",
        r#"direktiv_api: workflow/v1
states:
- id: wait
  type: eventsAnd
  timeout: PT5M
  events:
  - type: left.ready
  - type: right.ready
  transform:
    left: jq(."left.ready".data.v)
    right: jq(."right.ready".data.v)
"#,
    )
    .await;
    deploy_flow(
        &server,
        "demo",
        "first",
        r#"direktiv_api: workflow/v1
states:
- id: wait
  type: eventsXor
  timeout: PT5M
  events:
  - event:
      type: left.ready
    transition: went-left
  - event:
      type: right.ready
    transition: went-right
- id: went-left
  type: noop
  transform:
    way: left
- id: went-right
  type: noop
  transform:
    way: right
"#,
    )
    .await;
    let both = run_flow(&server, "demo", "both", &json!({})).await;
    let first = run_flow(&server, "demo", "first", &json!({})).await;
    waiting(&server, "demo", &both).await;
    waiting(&server, "demo", &first).await;
    send(&server, "demo", "right.ready", "/t", json!({"v": "R"}), &[]).await;
    let took = finished(&server, "demo", &first).await;
    assert_eq!(output(&took), json!({"way": "right"}));
    instance_stays(&server, &both, "the instance waiting", |i| !is_finished(i)).await;
    send(&server, "demo", "left.ready", "/t", json!({"v": "L"}), &[]).await;
    let done = finished(&server, "demo", &both).await;
    assert_eq!(output(&done), json!({"left": "L", "right": "R"}));
}

#[tokio::test]
async fn generate_event_starts_another_flow() {
    let server = demo().await;
    deploy_flow(
        &server,
        "demo",
        "listener",
        r#"direktiv_api: workflow/v1
start:
  type: event
  event:
    type: greeting.sent
states:
- id: got
  type: noop
  transform:
    heard: jq(."greeting.sent".data.text)
    region: jq(."greeting.sent".region)
"#,
    )
    .await;
    deploy_flow(
        &server,
        "demo",
        "speaker",
        r#"direktiv_api: workflow/v1
states:
- id: say
  type: generateEvent
  event:
    type: greeting.sent
    source: /speaker
    data:
      text: jq("hello " + .name)
    context:
      region: jq(.region)
"#,
    )
    .await;
    let id = run_flow(
        &server,
        "demo",
        "speaker",
        &json!({"name": "ada", "region": "eu"}),
    )
    .await;
    finished(&server, "demo", &id).await;
    let heard = finished_instances_of(&server, "demo", "listener", 1).await;
    assert_eq!(
        output(&heard[0]),
        json!({"heard": "hello ada", "region": "eu"})
    );
}

#[tokio::test]
async fn a_waiting_instance_survives_a_server_kill_and_resumes_on_its_event() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, data_dir) = restartable_demo(&dir).await;
    deploy_flow(&server, "demo", "approve", CONSUME).await;
    deploy_flow(&server, "demo", "on-order", EVENT_START).await;
    let id = run_flow(&server, "demo", "approve", &json!({"order": "7"})).await;
    waiting(&server, "demo", &id).await;
    server.kill();

    let server = Server::start_in(&data_dir).await;
    send(
        &server,
        "demo",
        "approval.given",
        "/ui",
        json!({"ok": true}),
        &[("orderid", "7")],
    )
    .await;
    let done = finished(&server, "demo", &id).await;
    assert_eq!(output(&done), json!({"order": "7", "approved": true}));

    // An accepted event is not lost to a kill right after it was accepted.
    let mut server = server;
    send(
        &server,
        "demo",
        "order.created",
        "/shop/x",
        json!({"order": 9}),
        &[],
    )
    .await;
    server.kill();
    let server = Server::start_in(&data_dir).await;
    let started = finished_instances_of(&server, "demo", "on-order", 1).await;
    assert_eq!(output(&started[0])["order"], json!(9));
    stays_with_instances(&server, "on-order", 1).await;
}

#[tokio::test]
async fn a_wait_times_out_catchably_and_a_late_event_changes_nothing() {
    let server = demo().await;
    deploy_flow(
        &server,
        "demo",
        "impatient",
        r#"direktiv_api: workflow/v1
states:
- id: wait
  type: consumeEvent
  timeout: PT1S
  event:
    type: never.comes
  catch:
  - error: "direktiv.cancels.timeout.*"
    transition: gave-up
- id: gave-up
  type: noop
  transform:
    timed_out: jq(.error.code)
"#,
    )
    .await;
    let id = run_flow(&server, "demo", "impatient", &json!({})).await;
    let done = finished(&server, "demo", &id).await;
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(
        output(&done),
        json!({"timed_out": "direktiv.cancels.timeout.soft"})
    );
    send(&server, "demo", "never.comes", "/t", json!({}), &[]).await;
    instance_stays(&server, &id, "the finished instance unchanged", |i| {
        *i == done
    })
    .await;
}

#[tokio::test]
async fn a_cancelled_waiting_instance_is_not_resumed_by_its_event() {
    let server = demo().await;
    deploy_flow(&server, "demo", "approve", CONSUME).await;
    let id = run_flow(&server, "demo", "approve", &json!({"order": "5"})).await;
    waiting(&server, "demo", &id).await;
    let r = server
        .post_json(
            &format!("/api/v1/namespaces/demo/instances/{id}/cancel"),
            &json!({}),
        )
        .await;
    assert!(r.status().is_success(), "cancel: {}", r.status());
    let cancelled = finished(&server, "demo", &id).await;
    assert_eq!(cancelled["status"], "cancelled");
    send(
        &server,
        "demo",
        "approval.given",
        "/ui",
        json!({"ok": true}),
        &[("orderid", "5")],
    )
    .await;
    instance_stays(&server, &id, "the instance cancelled", |i| {
        i["status"] == "cancelled"
    })
    .await;
}

#[tokio::test]
async fn a_former_wait_s_timeout_does_not_end_the_next_wait() {
    let server = demo().await;
    deploy_flow(
        &server,
        "demo",
        "two-steps",
        r#"direktiv_api: workflow/v1
states:
- id: first
  type: consumeEvent
  timeout: PT3S
  event:
    type: step.one
  transition: second
- id: second
  type: consumeEvent
  timeout: PT5M
  event:
    type: step.two
  transform:
    steps: jq([."step.one".data.n, ."step.two".data.n])
"#,
    )
    .await;
    let id = run_flow(&server, "demo", "two-steps", &json!({})).await;
    waiting(&server, "demo", &id).await;
    send(&server, "demo", "step.one", "/t", json!({"n": 1}), &[]).await;
    // Past the first wait's deadline (3 s after it began, so inside these 5 s), the instance
    // still waits in the second state.
    support::assert_stays(
        std::time::Duration::from_secs(5),
        "the instance waiting",
        || instance(&server, "demo", &id),
        |i| i["status"] == "waiting",
    )
    .await;
    send(&server, "demo", "step.two", "/t", json!({"n": 2}), &[]).await;
    let done = finished(&server, "demo", &id).await;
    assert_eq!(output(&done), json!({"steps": [1, 2]}));
}

/// Announces `go.ahead` itself (n = 1) before it waits for one: its own event was accepted
/// before the wait's state started, so only the one sent later (n = 2) may resume it.
const ANNOUNCE_THEN_WAIT: &str = r#"direktiv_api: workflow/v1
states:
- id: announce
  type: generateEvent
  event:
    type: go.ahead
    source: /self
    data:
      n: 1
  transition: wait
- id: wait
  type: consumeEvent
  timeout: PT5M
  event:
    type: go.ahead
  transform:
    n: jq(."go.ahead".data.n)
"#;

#[tokio::test]
async fn a_wait_counts_only_events_accepted_after_its_state_started() {
    let server = demo().await;
    deploy_flow(&server, "demo", "announce", ANNOUNCE_THEN_WAIT).await;
    let id = run_flow(&server, "demo", "announce", &json!({})).await;
    waiting(&server, "demo", &id).await;
    // The instance's own event (accepted in this run, before the state) is dispatched and
    // ignored by the wait.
    instance_stays(&server, &id, "the instance waiting", |i| {
        i["status"] == "waiting"
    })
    .await;
    send(&server, "demo", "go.ahead", "/ui", json!({"n": 2}), &[]).await;
    let done = finished(&server, "demo", &id).await;
    assert_eq!(output(&done), json!({"n": 2}), "{done}");
}

#[tokio::test]
async fn a_wait_lost_to_a_kill_is_restored_at_start_and_the_instance_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, data_dir) = restartable_demo(&dir).await;
    deploy_flow(&server, "demo", "announce", ANNOUNCE_THEN_WAIT).await;
    let id = run_flow(&server, "demo", "announce", &json!({})).await;
    waiting(&server, "demo", &id).await;
    // Put the database where a kill between saving the waiting checkpoint and storing its
    // wait leaves it: the instance is `waiting`, its wait listener is not there.
    let store = server.open_store();
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        if store.delete_instance_listeners(&id).unwrap() == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the wait was never stored"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    drop(store);
    // Accepted between the state's start and the kill: the restored wait must count it.
    send(&server, "demo", "go.ahead", "/ui", json!({"n": 2}), &[]).await;
    server.kill();

    let server = Server::start_in(&data_dir).await;
    let done = finished(&server, "demo", &id).await;
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(output(&done), json!({"n": 2}), "{done}");
}

#[tokio::test]
async fn a_delayed_generated_event_is_sent_later_even_across_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, data_dir) = restartable_demo(&dir).await;
    deploy_refused(
        &server,
        "bad-delay",
        "direktiv_api: workflow/v1\nstates:\n- id: a\n  type: generateEvent\n  delay: 2 seconds\n  event:\n    type: t\n    source: /s\n",
        "line 5, column 10: 'delay' in state 'a' is '2 seconds', not an ISO 8601 duration",
    )
    .await;
    deploy_flow(
        &server,
        "demo",
        "listener",
        r#"direktiv_api: workflow/v1
start:
  type: event
  event:
    type: reminder.due
states:
- id: got
  type: noop
  transform:
    about: jq(."reminder.due".data.about)
"#,
    )
    .await;
    deploy_flow(
        &server,
        "demo",
        "reminder",
        r#"direktiv_api: workflow/v1
states:
- id: someday
  type: generateEvent
  delay: PT1H
  event:
    type: reminder.someday
    source: /reminder
  transition: soon
- id: soon
  type: generateEvent
  delay: PT2S
  event:
    type: reminder.due
    source: /reminder
    data:
      about: jq(.about)
  transform:
    sent: true
"#,
    )
    .await;
    let id = run_flow(&server, "demo", "reminder", &json!({"about": "tea"})).await;
    // The instance does not wait for its events (one is an hour away).
    let done = finished(&server, "demo", &id).await;
    assert_eq!(output(&done), json!({"sent": true}), "{done}");
    server.kill();
    // The events are held in the store, not in the killed process.
    let store = server.open_store();
    assert!(
        store.next_delayed_event_due().unwrap().is_some(),
        "the delayed events were not stored"
    );
    drop(store);

    let server = Server::start_in(&data_dir).await;
    let heard = finished_instances_of(&server, "demo", "listener", 1).await;
    assert_eq!(output(&heard[0]), json!({"about": "tea"}));
    stays_with_instances(&server, "listener", 1).await;
    // Entries are `{seq, received, event}`: the CloudEvent's type is under `event`. The
    // two-second one was sent (which shows the list is read right), the hour-delayed one not.
    let sent: Vec<String> = stored_events(&server, "demo")
        .await
        .iter()
        .map(|e| {
            e["event"]["type"]
                .as_str()
                .unwrap_or_else(|| panic!("a stored event without event.type: {e}"))
                .to_string()
        })
        .collect();
    assert!(
        sent.contains(&"reminder.due".to_string()),
        "the two-second event is not among the stored ones: {sent:?}"
    );
    assert!(
        !sent.contains(&"reminder.someday".to_string()),
        "an hour-delayed event was sent early: {sent:?}"
    );
}

#[tokio::test]
async fn a_cron_slot_claimed_just_before_a_crash_still_runs_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    // The test hook makes the server exit right after it stored a slot's claim, before it
    // drives the slot's instance.
    let mut server =
        Server::start_in_with_env(&data_dir, &[("FAASBOX_TEST_CRASH_AFTER_CRON_CLAIM", "1")]).await;
    server.create_namespace("demo").await;
    deploy_flow(
        &server,
        "demo",
        "tick",
        "direktiv_api: workflow/v1\nstart:\n  type: scheduled\n  cron: \"* * * * * *\"\nstates:\n- id: a\n  type: noop\n  transform:\n    ticked: true\n",
    )
    .await;
    assert_eq!(server.wait_exit(PATIENCE), Some(86));
    let store = server.open_store();
    let claimed: Vec<String> = store
        .instances_with_status("running")
        .unwrap()
        .into_iter()
        .filter(|i| i.flow.trim_start_matches('/') == "tick")
        .map(|i| i.id)
        .collect();
    assert_eq!(claimed.len(), 1, "the claimed slot has its instance");
    assert!(store.schedules().unwrap()[0].last_fired_ms > 0);
    drop(store);

    let server = Server::start_in(&data_dir).await;
    let done = finished(&server, "demo", &claimed[0]).await;
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(output(&done), json!({"ticked": true}));
}
