//! Flow events and schedules against a real server: CloudEvents accepted in structured and
//! binary HTTP mode (and through `faasbox event send`), duplicates accepted once, bad events
//! refused with a clear 400 and nothing stored.

mod support;

use serde_json::{json, Value};
use support::Server;

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
    let server = Server::start().await;
    server.create_namespace("demo").await;

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
    let server = Server::start().await;
    server.create_namespace("demo").await;
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
    let server = Server::start().await;
    server.create_namespace("demo").await;
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
    let server = Server::start().await;
    server.create_namespace("demo").await;
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
