//! The API endpoints the web UI needs, against the real server: validating a flow without
//! deploying it (the same problems as a deploy, with line and column, nothing stored), a
//! flow's graph (states and edges with their kinds), the namespace summary and function
//! stats of the last hour, and keyset paging of runs, instances and events (Faasbox-Next).

mod support;

use serde_json::{json, Value};
use support::Server;

/// POSTs `yaml` to `…/flows/{path}/validate` in namespace demo: (status, body).
async fn validate(server: &Server, path: &str, yaml: &str) -> (u16, Value) {
    let r = server
        .http
        .post(server.url(&format!("/api/v1/namespaces/demo/flows/{path}/validate")))
        .body(yaml.to_string())
        .send()
        .await
        .expect("validate");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A token of `ns` with `role` made with the CLI.
fn token(server: &Server, ns: &str, role: &str) -> String {
    let token = server
        .cli_ok(&["token", "create", "-n", ns, "--role", role])
        .trim()
        .to_string();
    assert!(token.starts_with("fbx_"), "{token}");
    token
}

const BAD_FLOWS: &[&str] = &[
    // A transition to a state that does not exist, an unknown type, a jq syntax error.
    "direktiv_api: workflow/v1\nstates:\n- id: a\n  type: noop\n  transition: nowhere\n- id: b\n  type: teleport\n- id: c\n  type: noop\n  log: 'jq(.x | )'\n",
    // Not YAML.
    "states:\n  - id: [a\n",
    // An error pattern that is not a regular expression (refused for new flows only).
    "states:\n- id: a\n  type: noop\n  catch:\n  - error: 'direktiv.(('\n",
    // A bad cron expression.
    "start:\n  type: scheduled\n  cron: 'every day'\nstates:\n- id: a\n  type: noop\n",
    // An action naming a function that is not defined.
    "states:\n- id: a\n  type: action\n  action: {function: ghost}\n",
];

#[tokio::test]
async fn validate_reports_what_deploy_refuses_and_stores_nothing() {
    let server = Server::start().await;
    server.create_namespace("demo").await;

    // Line and column of each problem, as PUT answers them; no graph; nothing stored.
    let (status, body) = validate(&server, "bad", BAD_FLOWS[0]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["valid"], false, "{body}");
    assert_eq!(body["graph"], Value::Null, "{body}");
    let problems = body["problems"].as_array().expect("problems").clone();
    for (line, column, words) in [
        (3, 3, "moves to 'nowhere'"),
        (7, 9, "unknown type 'teleport'"),
        (10, 8, "jq syntax error"),
    ] {
        assert!(
            problems.iter().any(|p| p["line"] == line
                && p["column"] == column
                && p["message"].as_str().unwrap_or("").contains(words)),
            "no {words} at {line}:{column} in {problems:#?}"
        );
    }
    let r = server.get("/api/v1/namespaces/demo/flows/bad").await;
    assert_eq!(r.status(), 404, "validate stored the flow");

    // Every bad flow: the very problems a deploy answers.
    for (i, yaml) in BAD_FLOWS.iter().enumerate() {
        let path = format!("bad{i}");
        let (status, validated) = validate(&server, &path, yaml).await;
        assert_eq!(status, 200, "{validated}");
        assert_eq!(validated["valid"], false, "{yaml}: {validated}");
        let r = server.put_flow(&path, yaml).await;
        assert_eq!(r.status(), 400, "{yaml}");
        let deployed: Value = r.json().await.expect("JSON");
        assert_eq!(
            validated["problems"], deployed["error"]["problems"],
            "validate and deploy differ for {yaml}"
        );
        assert!(
            !validated["problems"]
                .as_array()
                .expect("problems")
                .is_empty(),
            "{validated}"
        );
    }

    // A valid flow with an unreachable state: valid, the warnings a deploy gives, a graph;
    // still nothing stored until the deploy.
    let good = "states:\n- id: a\n  type: noop\n- id: lost\n  type: noop\n";
    let (status, validated) = validate(&server, "good", good).await;
    assert_eq!(status, 200, "{validated}");
    assert_eq!(validated["valid"], true, "{validated}");
    assert_eq!(validated["problems"], json!([]), "{validated}");
    assert_eq!(validated["graph"]["start"], "a", "{validated}");
    let r = server.get("/api/v1/namespaces/demo/flows/good").await;
    assert_eq!(r.status(), 404, "validate stored the flow");
    let r = server.put_flow("good", good).await;
    assert_eq!(r.status(), 201);
    let deployed: Value = r.json().await.expect("JSON");
    assert_eq!(validated["warnings"], deployed["warnings"], "{deployed}");
    assert_eq!(validated["warnings"][0]["line"], 4, "{validated}");

    // The namespace and the path are checked as for a deploy; an invoke token may not.
    let r = server
        .http
        .post(server.url("/api/v1/namespaces/nope/flows/x/validate"))
        .body(good)
        .send()
        .await
        .expect("validate");
    assert_eq!(r.status(), 404);
    let (status, body) = validate(&server, "Bad%20Path", good).await;
    assert_eq!(status, 400, "{body}");
    let invoker = support::client_with_token(Some(&token(&server, "demo", "invoke")));
    let r = invoker
        .post(server.url("/api/v1/namespaces/demo/flows/good/validate"))
        .body(good)
        .send()
        .await
        .expect("validate");
    assert_eq!(r.status(), 403);
    let admin = support::client_with_token(Some(&token(&server, "demo", "admin")));
    let r = admin
        .post(server.url("/api/v1/namespaces/demo/flows/good/validate"))
        .body(good)
        .send()
        .await
        .expect("validate");
    assert_eq!(r.status(), 200);
}

const GRAPH_FLOW: &str = "\
functions:
- {id: work, type: knative-namespace, service: work}
states:
- id: pick
  type: switch
  conditions:
  - condition: 'jq(.n > 1)'
    transition: big
  defaultTransition: small
- id: big
  type: action
  action: {function: work}
  timeout: PT5S
  catch:
  - error: 'direktiv.cancels.timeout.soft'
    transition: slow
  - error: 'work.*'
    transition: failed
  transition: wait
- id: wait
  type: eventsXor
  events:
  - event: {type: order.paid}
    transition: small
  - event: {type: order.cancelled}
    transition: failed
- id: small
  type: noop
- id: slow
  type: noop
- id: failed
  type: noop
";

#[tokio::test]
async fn a_flow_graph_has_switch_catch_and_event_edges() {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    server.deploy_flow("shop/order", GRAPH_FLOW).await;

    let plain = server
        .get_json("/api/v1/namespaces/demo/flows/shop/order")
        .await;
    assert!(
        plain.get("graph").is_none(),
        "no graph unless asked: {plain}"
    );
    let view = server
        .get_json("/api/v1/namespaces/demo/flows/shop/order?graph=true")
        .await;
    let graph = &view["graph"];
    assert_eq!(view["source"], GRAPH_FLOW);
    assert_eq!(graph["start"], "pick", "{graph}");
    assert_eq!(
        graph["states"],
        json!([
            {"id": "pick", "type": "switch", "line": 4},
            {"id": "big", "type": "action", "line": 10},
            {"id": "wait", "type": "eventsXor", "line": 20},
            {"id": "small", "type": "noop", "line": 27},
            {"id": "slow", "type": "noop", "line": 29},
            {"id": "failed", "type": "noop", "line": 31},
        ]),
        "{graph}"
    );
    assert_eq!(
        graph["edges"],
        json!([
            {"from": "pick", "to": "big", "kind": "condition", "label": "jq(.n > 1)"},
            {"from": "pick", "to": "small", "kind": "default"},
            {"from": "big", "to": "wait", "kind": "transition"},
            {"from": "big", "to": "slow", "kind": "timeout", "label": "direktiv.cancels.timeout.soft"},
            {"from": "big", "to": "failed", "kind": "catch", "label": "work.*"},
            {"from": "wait", "to": "small", "kind": "event", "label": "order.paid"},
            {"from": "wait", "to": "failed", "kind": "event", "label": "order.cancelled"},
        ]),
        "{graph}"
    );
    // Validate answers the same graph for the same source.
    let (status, validated) = validate(&server, "shop/order", GRAPH_FLOW).await;
    assert_eq!(status, 200);
    assert_eq!(&validated["graph"], graph);
}

#[tokio::test]
async fn summary_and_stats_count_the_last_hour() {
    let server = support::server_with_test_function().await;
    support::deploy_mode(&server, "echo", "plain", json!({})).await;
    support::deploy_mode(&server, "fails", "error", json!({})).await;
    for i in 0..3 {
        let (status, _, body) = server
            .invoke("demo", "echo", format!("{{\"i\":{i}}}"))
            .await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
    for _ in 0..2 {
        let (status, _, _) = server.invoke("demo", "fails", "{}").await;
        assert!(status >= 400, "{status}");
    }
    // A flow instance that waits for an event.
    server
        .deploy_flow(
            "waits",
            "states:\n- id: w\n  type: consumeEvent\n  event: {type: never.sent}\n",
        )
        .await;
    let waiting = server.start_flow("waits", &json!({})).await;
    support::wait_for(
        std::time::Duration::from_secs(30),
        "the instance waits",
        || async { server.instance(&waiting).await["status"].clone() },
        |status| status == "waiting",
    )
    .await;

    let summary = server.get_json("/api/v1/namespaces/demo/summary").await;
    assert_eq!(summary["functions"], 2, "{summary}");
    assert_eq!(summary["flows"], 1, "{summary}");
    assert_eq!(summary["window"], "1h", "{summary}");
    assert_eq!(
        summary["runs"],
        json!({"ok": 3, "errors": 2, "running": 0}),
        "{summary}"
    );
    assert_eq!(
        summary["instances"],
        json!({"running": 0, "waiting": 1}),
        "{summary}"
    );
    assert!(
        summary["function_instances"].as_u64().unwrap_or(0) >= 2,
        "an instance of each function still runs: {summary}"
    );

    let plain = server.get_json("/api/v1/namespaces/demo/functions").await;
    assert!(
        plain[0].get("stats").is_none(),
        "no stats unless asked: {plain}"
    );
    let listed = server
        .get_json("/api/v1/namespaces/demo/functions?stats=1h")
        .await;
    let of = |name: &str| {
        listed
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(
        of("echo")["stats"],
        json!({"calls": 3, "errors": 0, "cold_starts": 1}),
        "{listed}"
    );
    assert_eq!(of("fails")["stats"]["calls"], 2, "{listed}");
    assert_eq!(of("fails")["stats"]["errors"], 2, "{listed}");
    let pool = &of("echo")["instances"];
    assert_eq!(pool["instances"], 1, "{pool}");
    assert_eq!(pool["idle"], 1, "{pool}");
    let r = server
        .get("/api/v1/namespaces/demo/functions?stats=1d")
        .await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.expect("JSON");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("stats=1h"),
        "{body}"
    );
}

/// GETs `path` (with a query): (the rows' keys by `key`, the Faasbox-Next header).
async fn page_of(
    server: &Server,
    path: &str,
    key: &str,
    query: &[(&str, &str)],
) -> (Vec<String>, Option<String>) {
    let r = server
        .http
        .get(server.url(path))
        .query(query)
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 200, "{path} {query:?}");
    let next = r
        .headers()
        .get("faasbox-next")
        .map(|v| v.to_str().expect("text").to_string());
    let rows: Value = r.json().await.expect("JSON");
    let keys = rows
        .as_array()
        .expect("an array")
        .iter()
        .map(|row| match &row[key] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    (keys, next)
}

/// Follows `Faasbox-Next` from the first page to the last: every page's keys.
async fn all_pages(
    server: &Server,
    path: &str,
    key: &str,
    query: &[(&str, &str)],
) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let mut q: Vec<(&str, &str)> = query.to_vec();
        if let Some(b) = &before {
            q.push(("before", b));
        }
        let (keys, next) = page_of(server, path, key, &q).await;
        assert_eq!(
            next.as_deref(),
            keys.last().map(String::as_str).filter(|_| next.is_some()),
            "Faasbox-Next is the last row's key"
        );
        pages.push(keys);
        match next {
            Some(next) => before = Some(next),
            None => return pages,
        }
        assert!(pages.len() < 100, "paging does not end");
    }
}

#[tokio::test]
async fn runs_instances_and_events_page_by_keyset() {
    let server = support::server_with_test_function().await;
    server.create_namespace("other").await;
    support::deploy_mode(&server, "echo", "plain", json!({})).await;
    server
        .deploy(
            "other",
            "echo",
            json!({"image": "test/function:latest", "envs": {"MODE": "plain"}}),
        )
        .await;
    let mut ids = Vec::new();
    for i in 0..120 {
        let (status, id, _) = server
            .invoke("demo", "echo", format!("{{\"i\":{i}}}"))
            .await;
        assert_eq!(status, 200);
        ids.push(id);
    }
    let (status, foreign, _) = server.invoke("other", "echo", "{}").await;
    assert_eq!(status, 200);

    // 120 runs, 50 a page: 50, 50, 20; disjoint, complete, newest first; no Faasbox-Next on
    // the last page.
    let pages = all_pages(
        &server,
        "/api/v1/namespaces/demo/runs",
        "id",
        &[("limit", "50")],
    )
    .await;
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [50, 50, 20]);
    let listed: Vec<String> = pages.concat();
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(
        listed, newest_first,
        "pages in order, disjoint and complete"
    );
    // A full last page still names a next one, which is empty.
    let (keys, next) = page_of(
        &server,
        "/api/v1/namespaces/demo/runs",
        "id",
        &[("limit", "20"), ("before", &ids[20])],
    )
    .await;
    assert_eq!(keys.len(), 20);
    assert_eq!(next.as_deref(), Some(ids[0].as_str()));
    let (keys, next) = page_of(
        &server,
        "/api/v1/namespaces/demo/runs",
        "id",
        &[("before", &ids[0])],
    )
    .await;
    assert!(keys.is_empty() && next.is_none(), "{keys:?} {next:?}");

    // before= of an unknown run, or of another namespace's run, is the same 400.
    for before in [foreign.as_str(), "no-such-run"] {
        let r = server
            .http
            .get(server.url("/api/v1/namespaces/demo/runs"))
            .query(&[("before", before)])
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status(), 400);
        let body: Value = r.json().await.expect("JSON");
        assert_eq!(body["error"]["code"], "faasbox.request.invalid", "{body}");
        let message = body["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains("before"), "{body}");
        assert!(
            !message.contains("other"),
            "it does not name the other namespace: {body}"
        );
    }

    // Instances: by flow, by status, paged.
    server
        .deploy_flow("a", "states:\n- id: s\n  type: noop\n")
        .await;
    server
        .deploy_flow(
            "w",
            "states:\n- id: w\n  type: consumeEvent\n  event: {type: never.sent}\n",
        )
        .await;
    let mut of_a = Vec::new();
    for _ in 0..5 {
        let (status, id, _) = server.run_flow("a", &json!({})).await;
        assert_eq!(status, 200);
        of_a.push(id);
    }
    let waiting = server.start_flow("w", &json!({})).await;
    support::wait_for(
        std::time::Duration::from_secs(30),
        "the instance waits",
        || async { server.instance(&waiting).await["status"].clone() },
        |status| status == "waiting",
    )
    .await;
    let pages = all_pages(
        &server,
        "/api/v1/namespaces/demo/instances",
        "id",
        &[("limit", "2"), ("flow", "a")],
    )
    .await;
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [2, 2, 1]);
    let newest_first: Vec<String> = of_a.iter().rev().cloned().collect();
    assert_eq!(pages.concat(), newest_first);
    let (keys, _) = page_of(
        &server,
        "/api/v1/namespaces/demo/instances",
        "id",
        &[("status", "waiting")],
    )
    .await;
    assert_eq!(keys, vec![waiting.to_string()]);
    let r = server
        .get("/api/v1/namespaces/demo/instances?status=sleeping")
        .await;
    assert_eq!(r.status(), 400);
    let r = server
        .get(&format!(
            "/api/v1/namespaces/other/instances?before={waiting}"
        ))
        .await;
    assert_eq!(r.status(), 400, "another namespace's instance");

    // Events, by seq.
    for i in 0..5 {
        let r = server
            .post_json(
                "/api/v1/namespaces/demo/events",
                &json!({"specversion": "1.0", "id": format!("e{i}"), "source": "/test", "type": "page.test"}),
            )
            .await;
        assert!(r.status().is_success(), "{}", r.status());
    }
    let pages = all_pages(
        &server,
        "/api/v1/namespaces/demo/events",
        "seq",
        &[("limit", "2")],
    )
    .await;
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [2, 2, 1]);
    let seqs: Vec<i64> = pages
        .concat()
        .iter()
        .map(|s| s.parse().expect("a seq"))
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seqs:?}"
    );
    let r = server
        .get("/api/v1/namespaces/demo/events?before=abc")
        .await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn server_info_is_for_admins() {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    server.create_namespace("other").await;
    server
        .deploy_flow("a", "states:\n- id: s\n  type: noop\n")
        .await;
    // One web UI session.
    let r = support::client_with_token(None)
        .post(server.url("/ui/session"))
        .json(&json!({"token": server.token}))
        .send()
        .await
        .expect("sign in");
    assert_eq!(r.status(), 201);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let info = server.get_json("/api/v1/server").await;
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"), "{info}");
    assert_eq!(info["driver"], "runc", "{info}");
    assert_eq!(info["namespaces"], 2, "{info}");
    assert_eq!(info["functions"], 0, "{info}");
    assert_eq!(info["flows"], 1, "{info}");
    assert_eq!(info["sessions"], 1, "{info}");
    assert!(info["uptime_seconds"].as_u64().unwrap_or(0) >= 1, "{info}");
    let started = info["started"].as_str().unwrap_or("");
    assert!(
        time::OffsetDateTime::parse(started, &time::format_description::well_known::Rfc3339)
            .is_ok(),
        "{info}"
    );

    let namespace_admin = support::client_with_token(Some(&token(&server, "demo", "admin")));
    let r = namespace_admin
        .get(server.url("/api/v1/server"))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn an_instance_timeline_has_each_state_with_input_output_and_error() {
    let server = support::server_with_test_function().await;
    support::deploy_mode(&server, "echo", "plain", json!({})).await;
    support::deploy_mode(&server, "fails", "error", json!({})).await;
    server
        .deploy_flow(
            "timeline",
            "functions:
- {id: echo, type: knative-namespace, service: echo}
- {id: fails, type: knative-namespace, service: fails}
states:
- id: first
  type: noop
  transform: {n: 'jq(.n + 1)'}
  transition: call
- id: call
  type: action
  action: {function: echo, input: {n: 'jq(.n)'}}
  transition: boom
- id: boom
  type: action
  action: {function: fails}
",
        )
        .await;
    // An input past 64 KiB is left out of the timeline (truncated); the first state drops it.
    let big = "x".repeat(70 * 1024);
    let (status, id, body) = server
        .run_flow("timeline", &json!({"n": 1, "big": big}))
        .await;
    assert_eq!(status, 422, "{body}");
    let instance = server.instance(&id).await;
    assert_eq!(instance["status"], "failed", "{instance}");
    assert_eq!(instance["states"], json!(["first", "call"]), "states stays");
    let timeline = instance["timeline"].as_array().expect("a timeline").clone();
    let states: Vec<&str> = timeline
        .iter()
        .map(|s| s["state"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(states, ["first", "call", "boom"], "{instance}");
    for (i, step) in timeline.iter().enumerate() {
        assert_eq!(step["step"], i + 1, "{step}");
        assert!(step["started"].is_string(), "{step}");
        assert!(step["finished"].is_string(), "{step}");
    }
    let (first, call, boom) = (&timeline[0], &timeline[1], &timeline[2]);
    assert_eq!(first["input"], Value::Null, "{first}");
    assert_eq!(first["truncated"], true, "{first}");
    assert_eq!(first["output"], json!({"n": 2}), "{first}");
    assert_eq!(first["error"], Value::Null);
    assert_eq!(call["input"], json!({"n": 2}), "{call}");
    assert_eq!(call["truncated"], false, "{call}");
    assert!(call["output"]["return"].is_object(), "{call}");
    assert_eq!(boom["input"], call["output"], "{boom}");
    assert_eq!(boom["output"], Value::Null, "{boom}");
    assert_eq!(boom["error"]["code"], instance["error"]["code"], "{boom}");
    assert!(boom["error"]["message"].is_string(), "{boom}");

    // A secret an action reads is masked in the timeline, as in run records.
    const SECRET: &str = "tl-s3cr3t-value-4711";
    server.cli_ok(&["secret", "set", "demo/tok", "--value", SECRET]);
    server
        .deploy_flow(
            "secretive",
            "functions:
- {id: echo, type: knative-namespace, service: echo}
states:
- id: call
  type: action
  action: {function: echo, secrets: [tok], input: {t: 'jq(.secrets.tok)'}}
",
        )
        .await;
    let (status, id, body) = server.run_flow("secretive", &json!({})).await;
    assert_eq!(status, 200, "{body}");
    let instance = server.instance(&id).await;
    let timeline = instance["timeline"].to_string();
    assert_eq!(
        instance["timeline"][0]["output"]["return"]["t"], "***",
        "the echoed secret, masked: {timeline}"
    );
    assert!(
        !timeline.contains(SECRET),
        "the timeline holds the secret: {timeline}"
    );

    // A waiting state is open (not finished) until the instance is cancelled.
    server
        .deploy_flow(
            "waits",
            "states:\n- id: w\n  type: consumeEvent\n  event: {type: never.sent}\n",
        )
        .await;
    let waiting = server.start_flow("waits", &json!({"k": 1})).await;
    let instance = support::wait_for(
        std::time::Duration::from_secs(30),
        "the instance waits",
        || async { server.instance(&waiting).await },
        |i| i["status"] == "waiting",
    )
    .await;
    let step = &instance["timeline"][0];
    assert_eq!(
        (&step["state"], &step["input"], &step["finished"]),
        (&json!("w"), &json!({"k": 1}), &Value::Null),
        "{instance}"
    );
    let r = server
        .http
        .post(server.url(&format!(
            "/api/v1/namespaces/demo/instances/{waiting}/cancel"
        )))
        .send()
        .await
        .expect("cancel");
    assert_eq!(r.status(), 202);
    let instance = support::wait_for(
        std::time::Duration::from_secs(30),
        "the instance is cancelled",
        || async { server.instance(&waiting).await },
        |i| i["status"] == "cancelled",
    )
    .await;
    let step = &instance["timeline"][0];
    assert!(step["finished"].is_string(), "{instance}");
    assert_eq!(
        step["error"]["code"], instance["error"]["code"],
        "{instance}"
    );
}
