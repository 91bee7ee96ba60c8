//! A smoke test of runs through a real server with runc containers: an asynchronous invoke is
//! answered 202 at once and its run succeeds with input, output and phases recorded; a
//! blocking call longer than `--blocking-timeout` answers 202 with the run's id and goes on;
//! that running run is cancelled, and a second cancel is refused as the run has ended.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{deploy_mode, server_with_test_function_and, Server};

/// Waits until run `id` has ended; its record.
async fn ended(server: &Server, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let run = server.get_json(&format!("/api/v1/runs/{id}")).await;
        if !matches!(run["status"].as_str(), Some("queued" | "running")) {
            return run;
        }
        assert!(Instant::now() < deadline, "run {id} did not end: {run}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn invocation_id(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("faasbox-invocation-id")
        .and_then(|v| v.to_str().ok())
        .expect("the run's id in the header")
        .to_string()
}

#[tokio::test]
async fn an_async_invoke_runs_later_and_a_long_blocking_call_turns_into_a_run() {
    let server = server_with_test_function_and(&["--blocking-timeout", "2s"]).await;
    deploy_mode(&server, "echo", "echo", json!({})).await;
    deploy_mode(&server, "slow", "sleep", json!({"timeout": "60s"})).await;

    let answer = server
        .http
        .post(server.url("/api/v1/namespaces/demo/functions/echo/invoke?async=true"))
        .body(r#"{"n":7}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 202);
    let id = invocation_id(&answer);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body, json!({"id": id, "status": "queued"}));
    let run = ended(&server, &id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(
        (&run["mode"], &run["attempts"]),
        (&json!("async"), &json!(1))
    );
    assert_eq!(run["input"], json!({"n": 7}), "{run}");
    assert_eq!(run["output"], json!({"n": 7}), "{run}");
    assert_eq!(run["cold_start"], true, "{run}");
    assert!(run["phases"]["run_ms"].is_u64(), "{run}");
    assert!(
        run["started"].is_string() && run["accepted"].is_string(),
        "{run}"
    );

    // The header asks for the same; a callback that is not http(s) is refused, nothing stored.
    let refused = server
        .http
        .post(server.url("/api/v1/namespaces/demo/functions/echo/invoke"))
        .header("Prefer", "respond-async")
        .header("X-Callback-Url", "ftp://example.com/x")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let listed = server
        .get_json("/api/v1/namespaces/demo/runs?function=echo&status=succeeded")
        .await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    let logs = server
        .get_json(&format!("/api/v1/namespaces/demo/runs/{id}/logs?after=0"))
        .await;
    assert_eq!(
        (&logs["run"], &logs["done"]),
        (&json!(id), &json!(true)),
        "{logs}"
    );
    let next = logs["next"].as_u64().unwrap();
    let after = server
        .get_json(&format!("/api/v1/runs/{id}/logs?after={next}"))
        .await;
    assert_eq!(after["logs"], json!([]), "{after}");

    let began = Instant::now();
    let answer = server
        .http
        .post(server.url("/api/v1/namespaces/demo/functions/slow/invoke"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 202);
    assert!(
        began.elapsed() < Duration::from_secs(25),
        "answered at the bound, not at the end"
    );
    let id = invocation_id(&answer);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body, json!({"id": id, "status": "running"}));
    let running = server
        .get_json(&format!("/api/v1/namespaces/demo/runs/{id}"))
        .await;
    assert_eq!(
        (&running["status"], &running["mode"]),
        (&json!("running"), &json!("sync"))
    );

    let cancelled = server
        .http
        .post(server.url(&format!("/api/v1/namespaces/demo/runs/{id}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200);
    let run = ended(&server, &id).await;
    assert_eq!(run["status"], "cancelled", "{run}");
    assert_eq!(run["error"]["type"], "FunctionError", "{run}");
    let again = server
        .http
        .post(server.url(&format!("/api/v1/namespaces/demo/runs/{id}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    let refusal: Value = again.json().await.unwrap();
    assert_eq!(refusal["error"]["code"], "faasbox.run.ended", "{refusal}");
}
