//! The API endpoints the web UI needs, against the real server: validating a flow without
//! deploying it (the same problems as a deploy, with line and column, nothing stored) and a
//! flow's graph (states and edges with their kinds).

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
