//! Event subscriptions on a real server with real runc containers: a subscription runs its
//! function (the test function) for each matching CloudEvent the namespace accepts — by type,
//! source pattern and context pattern — with the event's data as the run's input and the event
//! (without data) as its `event`; a non-matching event runs nothing; deleting it stops the runs;
//! a missing function is refused with the fix; and each event runs each subscription's
//! function exactly once across a SIGKILL of the server (counted from the runs list and from
//! the function's own record of its calls, the gate).

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};
use support::gate::Gate;
use support::{
    assert_stays, deploy_mode, server_with_test_function, server_with_test_function_and, wait_for,
    Server, ALLOW_HOST_LOOPBACK,
};

const WITHIN: Duration = Duration::from_secs(60);

/// Sends a structured CloudEvent to namespace demo; asserts it was accepted.
async fn send(server: &Server, id: &str, event_type: &str, source: &str, extra: Value) {
    let mut event = json!({"specversion": "1.0", "id": id, "type": event_type, "source": source});
    if let (Some(event), Value::Object(extra)) = (event.as_object_mut(), extra) {
        event.extend(extra);
    }
    let r = server
        .http
        .post(server.url("/api/v1/namespaces/demo/events"))
        .header("content-type", "application/cloudevents+json")
        .body(event.to_string())
        .send()
        .await
        .expect("POST event");
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
}

/// The runs of `demo/<function>`, newest first.
async fn runs_of(server: &Server, function: &str) -> Vec<Value> {
    let list = server
        .get_json(&format!(
            "/api/v1/namespaces/demo/runs?function={function}&limit=1000"
        ))
        .await;
    list.as_array().expect("a list of runs").clone()
}

/// Waits until `function` has `count` ended runs; them, by the id of their event.
async fn ended_runs(server: &Server, function: &str, count: usize) -> BTreeMap<String, Value> {
    let runs = wait_for(
        WITHIN,
        &format!("{count} ended runs of {function}"),
        || runs_of(server, function),
        |runs| {
            runs.len() >= count
                && runs
                    .iter()
                    .all(|r| !matches!(r["status"].as_str(), Some("queued" | "running")))
        },
    )
    .await;
    assert_eq!(runs.len(), count, "{runs:#?}");
    let mut by_event = BTreeMap::new();
    for run in runs {
        let event = run["event"]["id"]
            .as_str()
            .expect("the run's event")
            .to_string();
        assert!(
            by_event.insert(event.clone(), run).is_none(),
            "two runs of {function} for event {event}"
        );
    }
    by_event
}

#[tokio::test]
async fn subscriptions_run_their_function_for_matching_events_only() {
    let server = server_with_test_function().await;
    deploy_mode(&server, "echo", "plain", json!({})).await;
    deploy_mode(&server, "every", "plain", json!({})).await;

    // A function that does not exist is refused with the fix.
    let r = server
        .put_json(
            "/api/v1/namespaces/demo/subscriptions/lost",
            &json!({"function": "nope", "type": "order.created"}),
        )
        .await;
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("deploy it first"),
        "{body}"
    );
    let r = server
        .get("/api/v1/namespaces/demo/subscriptions/lost")
        .await;
    assert_eq!(r.status(), 404);

    // One with a source and a context pattern (through the CLI), one on the type alone.
    server.cli_ok(&[
        "subscription",
        "create",
        "demo/eu-orders",
        "--function",
        "echo",
        "--type",
        "order.created",
        "--source",
        "/shop/*",
        "--context",
        "region=eu-*",
    ]);
    let r = server
        .put_json(
            "/api/v1/namespaces/demo/subscriptions/all-orders",
            &json!({"function": "every", "type": "order.created"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let listed = server.cli_ok(&["subscription", "ls", "demo"]);
    assert!(
        listed.contains("eu-orders") && listed.contains("all-orders"),
        "{listed}"
    );
    let shown = server
        .get_json("/api/v1/namespaces/demo/subscriptions/eu-orders")
        .await;
    assert_eq!(shown["function"], "echo");
    assert_eq!(shown["source"], "/shop/*");
    assert_eq!(shown["context"], json!({"region": "eu-*"}));

    let eu = |region: &str, data: Option<Value>| {
        let mut extra = json!({"region": region});
        if let Some(data) = data {
            extra["data"] = data;
            extra["datacontenttype"] = json!("application/json");
        }
        extra
    };
    // Matches both.
    send(
        &server,
        "e1",
        "order.created",
        "/shop/web",
        eu("eu-west", Some(json!({"n": 1}))),
    )
    .await;
    // Source does not match eu-orders.
    send(
        &server,
        "e2",
        "order.created",
        "/other/web",
        eu("eu-west", Some(json!({"n": 2}))),
    )
    .await;
    // Context does not match eu-orders.
    send(
        &server,
        "e3",
        "order.created",
        "/shop/web",
        eu("us-east", Some(json!({"n": 3}))),
    )
    .await;
    // Another type: matches neither.
    send(
        &server,
        "e4",
        "order.cancelled",
        "/shop/web",
        eu("eu-west", Some(json!({"n": 4}))),
    )
    .await;
    // Matches both, without data: the input is {}.
    send(
        &server,
        "e5",
        "order.created",
        "/shop/app",
        eu("eu-north", None),
    )
    .await;

    let every = ended_runs(&server, "every", 4).await;
    assert_eq!(
        every.keys().cloned().collect::<Vec<_>>(),
        ["e1", "e2", "e3", "e5"]
    );
    let echo = ended_runs(&server, "echo", 2).await;
    assert_eq!(echo.keys().cloned().collect::<Vec<_>>(), ["e1", "e5"]);
    let first = &echo["e1"];
    assert_eq!(first["status"], "succeeded", "{first}");
    assert_eq!(first["mode"], "async", "{first}");
    assert_eq!(first["input"], json!({"n": 1}), "{first}");
    assert_eq!(first["output"], json!({"n": 1}), "{first}");
    assert_eq!(first["event"]["type"], "order.created", "{first}");
    assert_eq!(first["event"]["source"], "/shop/web", "{first}");
    assert_eq!(first["event"]["region"], "eu-west", "{first}");
    assert!(first["event"].get("data").is_none(), "{first}");
    let empty = &echo["e5"];
    assert_eq!(empty["input"], json!({}), "{empty}");
    assert_eq!(empty["output"], json!({}), "{empty}");

    // Deleted: its function runs no more, the other subscription goes on.
    server.cli_ok(&["subscription", "rm", "demo/eu-orders"]);
    let listed = server.cli_ok(&["subscription", "ls", "demo"]);
    assert!(!listed.contains("eu-orders"), "{listed}");
    send(
        &server,
        "e6",
        "order.created",
        "/shop/web",
        eu("eu-west", Some(json!({"n": 6}))),
    )
    .await;
    ended_runs(&server, "every", 5).await;
    assert_stays(
        Duration::from_secs(3),
        "no run of the deleted subscription's function",
        || runs_of(&server, "echo"),
        |runs| runs.len() == 2,
    )
    .await;
}

#[tokio::test]
async fn each_event_runs_each_subscription_once_across_a_kill() {
    const EVENTS: usize = 20;
    let gate = Gate::start().await;
    let mut server = server_with_test_function_and(&[ALLOW_HOST_LOOPBACK]).await;
    gate.open();
    deploy_mode(
        &server,
        "counted",
        "gate",
        json!({"envs": {"MODE": "gate", "TARGET_PORT": gate.port.to_string()}}),
    )
    .await;
    let r = server
        .put_json(
            "/api/v1/namespaces/demo/subscriptions/count",
            &json!({"function": "counted", "type": "tick", "source": "/clock"}),
        )
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());

    // Accepted events, then the server killed at once: some were not dispatched yet, some
    // dispatched but not handed over, some running.
    for i in 0..EVENTS {
        send(
            &server,
            &format!("t{i}"),
            "tick",
            "/clock",
            json!({"data": {"tag": format!("t{i}")}}),
        )
        .await;
    }
    server.kill();
    let server = Server::start_in_with(&server.data_dir, &[ALLOW_HOST_LOOPBACK]).await;

    let runs = ended_runs(&server, "counted", EVENTS).await;
    for (event, run) in &runs {
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["input"], json!({"tag": event}), "{run}");
    }
    // The function's own record: each event's call reached it once — or, when its run was
    // running at the kill and ran again (attempt 2, as the runs do), at most twice.
    let arrivals = gate.arrivals();
    for (event, run) in &runs {
        let tag = format!("tag{event}");
        let calls = arrivals.iter().filter(|a| a.tag == tag).count();
        let attempts = run["attempts"].as_u64().unwrap_or(1) as usize;
        assert!(
            calls >= 1 && calls <= attempts,
            "{calls} calls of {event} in {attempts} attempts: {arrivals:?}, run {run}"
        );
    }
    // A call running at the kill may be cancelled by its agent once the server's connection
    // drops: the http contract's cancel (`DELETE /`, no input) reaches the function with an
    // empty tag. It is no call.
    let tags: std::collections::BTreeSet<_> = arrivals
        .iter()
        .filter(|a| !a.tag.is_empty())
        .map(|a| a.tag.clone())
        .collect();
    assert_eq!(tags.len(), EVENTS, "only the events' calls: {arrivals:?}");
    // Nothing more comes.
    assert_stays(
        Duration::from_secs(3),
        "no further run",
        || runs_of(&server, "counted"),
        |runs| runs.len() == EVENTS,
    )
    .await;
}
