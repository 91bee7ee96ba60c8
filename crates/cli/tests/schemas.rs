//! JSON Schema in and out for functions of every contract (issue 15), against a real server
//! running real containers: a CGI (http contract) function with draft 7 and draft 2020-12
//! schemas, valid and invalid input and output through the faasbox API, Dispatch's API and a
//! flow (which catches `InputError` and `FunctionError`), and proof from the function's own
//! log lines that a refused input never reached it.

mod support;

use serde_json::{json, Value};
use support::{images, json as parse, Server};

/// Logs the input it got (its own record of calls), then answers that input as its output.
const ECHO: &str = "#!/bin/sh\ninput=$(cat | tr -d '\\r\\n')\necho \"called with $input\" >&2\nprintf 'Content-Type: application/json\\r\\n\\r\\n%s' \"$input\"\n";

/// `n` must be an integer (and below 100 in the output); `a` needs `b` beside it, said in
/// each draft's own keyword (draft 7 `dependencies`, 2020-12 `dependentRequired`), so a
/// schema read as the wrong draft would let it pass.
fn schemas(draft7: bool) -> Value {
    let (uri, dependency) = if draft7 {
        ("http://json-schema.org/draft-07/schema#", "dependencies")
    } else {
        (
            "https://json-schema.org/draft/2020-12/schema",
            "dependentRequired",
        )
    };
    json!({
        "in": {
            "$schema": uri,
            "type": "object",
            "required": ["n"],
            "properties": {"n": {"type": "integer"}, "tags": {"type": "array",
                "items": {"type": "string"}}},
            dependency: {"a": ["b"]}
        },
        "out": {
            "$schema": uri,
            "type": "object",
            "properties": {"n": {"maximum": 99}}
        }
    })
}

async fn server() -> Server {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let (_dir, tar) = images::rootfs_tar_with(&[("www/cgi-bin/index.cgi", ECHO, 0o755)]);
    let query = images::rootfs_query();
    let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = server.import(&tar, "test/echo", &query).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    for (name, draft7) in [("d7", true), ("d2020", false)] {
        server
            .deploy(
                "demo",
                name,
                json!({"image": "test/echo", "schema": schemas(draft7)}),
            )
            .await;
    }
    server
}

/// The inputs the function itself logged, across all its calls.
async fn called_with(server: &Server, function: &str) -> Vec<String> {
    let logs = server
        .get_json(&format!(
            "/api/v1/namespaces/demo/functions/{function}/logs?limit=1000"
        ))
        .await;
    logs["logs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["line"].as_str())
        .filter_map(|l| l.strip_prefix("called with "))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn inputs_and_outputs_are_checked_in_both_drafts_and_a_refused_input_never_runs() {
    let server = server().await;
    for function in ["d7", "d2020"] {
        // A valid input runs, and its output (the same) passes `out`.
        let (status, _, body) = server
            .invoke("demo", function, r#"{"n":1,"a":1,"b":2}"#)
            .await;
        assert_eq!(
            status,
            200,
            "{function}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(parse(&body), json!({"n": 1, "a": 1, "b": 2}));

        // An invalid input: 422 InputError naming every violation with its pointer.
        let (status, id, body) = server
            .invoke("demo", function, r#"{"n":"x","a":1,"tags":["ok",2,false]}"#)
            .await;
        let answer = parse(&body);
        assert_eq!(status, 422, "{function}: {answer}");
        assert_eq!(answer["error"]["code"], "InputError", "{answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        for part in [
            "4 problems",
            "at '/n'",
            "at '/tags/1'",
            "at '/tags/2'",
            "\"b\"",
        ] {
            assert!(
                message.contains(part),
                "{function}: no {part:?} in {message}"
            );
        }
        let details = answer["error"]["details"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut pointers: Vec<&str> = details
            .iter()
            .filter_map(|d| d["pointer"].as_str())
            .collect();
        pointers.sort_unstable();
        assert_eq!(pointers, ["", "/n", "/tags/1", "/tags/2"], "{answer}");
        let record = server.get_json(&format!("/api/v1/invocations/{id}")).await;
        assert_eq!(record["error_code"], "InputError", "{record}");
        let lines = server.log_lines(&id).await;
        assert!(
            !lines.iter().any(|l| l.contains("called with")),
            "{lines:?}"
        );

        // An output that fails `out`: 502 FunctionError (the function did run).
        let (status, _, body) = server.invoke("demo", function, r#"{"n":500}"#).await;
        let answer = parse(&body);
        assert_eq!(status, 502, "{function}: {answer}");
        assert_eq!(answer["error"]["code"], "FunctionError", "{answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("schema.out") && message.contains("at '/n'"),
            "{message}"
        );

        // The function's own record: the valid call and the one whose output failed, never
        // the refused input.
        assert_eq!(
            called_with(&server, function).await,
            [r#"{"n":1,"a":1,"b":2}"#, r#"{"n":500}"#],
            "{function}"
        );
    }

    // A schema that does not compile is refused at deploy, whatever the contract.
    let r = server
        .put_json(
            "/api/v1/namespaces/demo/functions/broken",
            &json!({"image": "test/echo", "schema": {"in": {"type": "no-such-type"}}}),
        )
        .await;
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("schema.in"), "{text}");
}

#[tokio::test]
async fn a_flow_action_is_checked_too_and_catches_input_and_function_errors() {
    let server = server().await;
    let flow = r#"direktiv_api: workflow/v1
functions:
- {id: checked, type: knative-namespace, service: d7}
states:
- id: call
  type: action
  action: {function: checked, input: 'jq(.)'}
  catch:
  - {error: InputError, transition: refused}
  - {error: FunctionError, transition: failed}
  transform: 'jq({ok: .return})'
- {id: refused, type: noop, transform: 'jq({caught: .error.code, message: .error.msg})'}
- {id: failed, type: noop, transform: 'jq({caught: .error.code})'}
"#;
    server.deploy_flow("checked", flow).await;
    let (status, _, out) = server.run_flow("checked", &json!({"n": 2})).await;
    assert_eq!((status, &out), (200, &json!({"ok": {"n": 2}})), "{out}");
    let (status, _, out) = server.run_flow("checked", &json!({"n": "two"})).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["caught"], "InputError", "{out}");
    assert!(
        out["message"]
            .as_str()
            .is_some_and(|m| m.contains("at '/n'")),
        "{out}"
    );
    let (status, _, out) = server.run_flow("checked", &json!({"n": 300})).await;
    assert_eq!(
        (status, &out),
        (200, &json!({"caught": "FunctionError"})),
        "{out}"
    );
    // The refused input never reached the function.
    assert_eq!(
        called_with(&server, "d7").await,
        [r#"{"n":2}"#, r#"{"n":300}"#]
    );
}

/// Posts a blocking Dispatch run of `function` with `input`: the status and the body.
async fn dispatch_run(server: &Server, function: &str, input: Value) -> (u16, Value) {
    let r = server
        .http
        .post(server.url(&format!("/v1/runs?functionName={function}")))
        .header("X-Dispatch-Org", "demo")
        .json(&json!({"blocking": true, "input": input}))
        .send()
        .await
        .expect("a Dispatch run");
    let status = r.status().as_u16();
    let body = r.bytes().await.expect("its body");
    (status, parse(&body))
}

#[tokio::test]
async fn dispatch_runs_are_checked_too_with_swaggers_codes_and_the_run_named() {
    let server = server().await;
    // Valid: 200 with the Run and its output.
    let (status, run) = dispatch_run(&server, "d2020", json!({"n": 3})).await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["output"], json!({"n": 3}), "{run}");
    assert_eq!(run["status"], "READY", "{run}");

    // Invalid input: 422 `{code, message, run}`; the run's error is an InputError and the
    // function never got the input.
    let (status, body) = dispatch_run(&server, "d2020", json!({"n": "three"})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], 422, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("at '/n'"), "{body}");
    assert_eq!(body["run"]["error"]["type"], "InputError", "{body}");
    let name = body["run"]["name"].as_str().expect("the run's name");
    let record = server.get_json(&format!("/api/v1/runs/{name}")).await;
    assert_eq!(record["error"]["type"], "InputError", "{record}");

    // Output failing `out`: 502 with a FunctionError run.
    let (status, body) = dispatch_run(&server, "d2020", json!({"n": 500})).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["run"]["error"]["type"], "FunctionError", "{body}");

    // The function's own record: the valid run and the one whose output failed only.
    assert_eq!(
        called_with(&server, "d2020").await,
        [r#"{"n":3}"#, r#"{"n":500}"#]
    );
}
