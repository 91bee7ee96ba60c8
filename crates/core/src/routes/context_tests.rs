//! Tests of what a route's call gives the function and what the caller gets back.

use super::*;
use crate::failure::FailureKind;
use serde_json::json;

fn ctx() -> HttpContext {
    HttpContext {
        route: "web".into(),
        method: "POST".into(),
        path: "/orders/42".into(),
        params: BTreeMap::from([("id".into(), "42".into())]),
        raw_query: "page=2&q=a%20b".into(),
        query: BTreeMap::from([("page".into(), "2".into()), ("q".into(), "a b".into())]),
        headers: BTreeMap::from([
            ("accept".into(), "text/html".into()),
            ("x-github-event".into(), "push".into()),
            ("content-type".into(), "application/json".into()),
        ]),
        remote_addr: "127.0.0.1:5000".into(),
        host: None,
    }
}

fn input_of(call: &RouteCall) -> Value {
    serde_json::from_slice(&call.input).unwrap()
}

#[test]
fn json_bodies_parse_and_bad_json_is_invalid_with_the_reason() {
    let value = parse_body(Some("application/json"), br#"{"a": [1, 2]}"#).unwrap();
    assert_eq!(value, json!({"a": [1, 2]}));
    let value = parse_body(
        Some("Application/Vnd.GitHub+JSON; charset=utf-8"),
        b"[true]",
    )
    .unwrap();
    assert_eq!(value, json!([true]));
    let failure = parse_body(Some("application/json"), b"{\"a\": ").unwrap_err();
    assert_eq!(failure.kind, FailureKind::Invalid);
    assert!(
        failure.message.contains("not valid JSON"),
        "{}",
        failure.message
    );
    assert!(failure.message.contains("EOF"), "{}", failure.message);
    assert_eq!(
        parse_body(Some("application/json"), b" \n").unwrap(),
        json!({})
    );
}

#[test]
fn forms_become_objects_of_strings_and_repeats_arrays() {
    let value = parse_body(
        Some("application/x-www-form-urlencoded; charset=UTF-8"),
        b"name=J%C3%BCrgen+X&tag=a&tag=b&tag=c&empty=",
    )
    .unwrap();
    assert_eq!(
        value,
        json!({"name": "Jürgen X", "tag": ["a", "b", "c"], "empty": ""})
    );
}

#[test]
fn a_form_with_too_many_fields_is_refused() {
    let fields: Vec<String> = (0..=MAX_FORM_FIELDS).map(|i| format!("f{i}=1")).collect();
    let body = fields.join("&");
    let failure =
        parse_body(Some("application/x-www-form-urlencoded"), body.as_bytes()).unwrap_err();
    assert_eq!(failure.kind, FailureKind::Invalid);
    assert!(failure.message.contains("1000"), "{}", failure.message);
    let fine = fields[..MAX_FORM_FIELDS].join("&");
    let value = parse_body(Some("application/x-www-form-urlencoded"), fine.as_bytes()).unwrap();
    assert_eq!(value.as_object().unwrap().len(), MAX_FORM_FIELDS);
}

#[test]
fn empty_bodies_are_empty_objects_and_others_base64() {
    for content_type in [
        None,
        Some("application/json"),
        Some("text/plain"),
        Some("image/png"),
    ] {
        assert_eq!(
            parse_body(content_type, b"").unwrap(),
            json!({}),
            "{content_type:?}"
        );
    }
    assert_eq!(
        parse_body(Some("text/plain"), b"hi there").unwrap(),
        json!("aGkgdGhlcmU=")
    );
    assert_eq!(
        parse_body(None, b"{\"not\": \"parsed\"}").unwrap(),
        json!("eyJub3QiOiAicGFyc2VkIn0=")
    );
    assert_eq!(
        parse_body(Some("application/octet-stream"), &[0, 255]).unwrap(),
        json!("AP8=")
    );
}

#[test]
fn context_headers_drop_connection_headers_and_credentials() {
    let request: Vec<(&str, &[u8])> = vec![
        ("Host", b"example.com:8080"),
        ("Content-Length", b"12"),
        ("Connection", b"keep-alive, X-Hop"),
        ("Keep-Alive", b"timeout=5"),
        ("X-Hop", b"gone"),
        ("Transfer-Encoding", b"chunked"),
        ("Authorization", b"Basic YWxpY2U6cHc="),
        ("X-Api-Key", b"secret-key-123456"),
        ("X-GitHub-Event", b"push"),
        ("Accept", b"text/html"),
        ("accept", b"application/json"),
        ("Cookie", b"a=1"),
        ("cookie", b"b=2"),
        ("X-Odd", b"caf\xe9"),
    ];
    let shown = context_headers(request, &["authorization", "X-API-KEY"]);
    assert_eq!(
        shown,
        BTreeMap::from([
            (
                "accept".to_string(),
                "text/html, application/json".to_string()
            ),
            ("cookie".to_string(), "a=1; b=2".to_string()),
            ("x-github-event".to_string(), "push".to_string()),
            ("x-odd".to_string(), "caf\u{fffd}".to_string()),
        ])
    );
}

#[test]
fn code_functions_get_the_body_as_payload_and_the_context() {
    let call = call_input_for(
        Contract::Code,
        &ctx(),
        Some("application/json"),
        br#"{"n": 1}"#,
    )
    .unwrap();
    assert_eq!(&call.input[..], br#"{"n": 1}"#, "JSON passes as it came");
    assert_eq!(call.forward, None);
    let context = call.code_context.get("httpContext").unwrap();
    assert_eq!(context["method"], "POST");
    assert_eq!(context["rawQuery"], "page=2&q=a%20b");
    assert_eq!(context["params"], json!({"id": "42"}));
    assert_eq!(context["remoteAddr"], "127.0.0.1:5000");
    assert_eq!(call.code_context.len(), 1);
}

#[test]
fn openwhisk_actions_get_query_then_body_fields_then_ow_parameters() {
    let call = call_input_for(
        Contract::Openwhisk,
        &ctx(),
        Some("application/json"),
        br#"{"page": "from-body", "__ow_method": "forged", "x": [1]}"#,
    )
    .unwrap();
    let input = input_of(&call);
    assert_eq!(input["page"], "from-body", "the body wins over the query");
    assert_eq!(input["q"], "a b");
    assert_eq!(input["x"], json!([1]));
    assert_eq!(
        input["__ow_method"], "post",
        "the platform's parameters win"
    );
    assert_eq!(input["__ow_path"], "/orders/42");
    assert_eq!(input["__ow_query"], "page=2&q=a%20b");
    assert_eq!(input["__ow_headers"]["x-github-event"], "push");
    assert!(input.get("__ow_body").is_none());
    assert!(call.code_context.is_empty() && call.forward.is_none());

    let form = call_input_for(
        Contract::Openwhisk,
        &ctx(),
        Some("application/x-www-form-urlencoded"),
        b"name=ann&q=over",
    )
    .unwrap();
    let input = input_of(&form);
    assert_eq!(
        (input["name"].as_str(), input["q"].as_str()),
        (Some("ann"), Some("over"))
    );
    assert!(input.get("__ow_body").is_none());

    let text = call_input_for(Contract::Openwhisk, &ctx(), Some("text/plain"), b"hello").unwrap();
    assert_eq!(input_of(&text)["__ow_body"], "aGVsbG8=");
    let array = call_input_for(
        Contract::Openwhisk,
        &ctx(),
        Some("application/json"),
        b"[1, 2]",
    )
    .unwrap();
    assert_eq!(input_of(&array)["__ow_body"], "[1, 2]");
    let empty = call_input_for(Contract::Openwhisk, &ctx(), None, b"").unwrap();
    assert!(input_of(&empty).get("__ow_body").is_none());
}

#[test]
fn http_functions_get_the_body_and_the_request_to_forward() {
    let call = call_input_for(Contract::Http, &ctx(), Some("text/plain"), b"hello").unwrap();
    assert_eq!(input_of(&call), json!("aGVsbG8="));
    let forward = call.forward.unwrap();
    assert_eq!(
        (
            forward.method.as_str(),
            forward.path.as_str(),
            forward.query.as_str()
        ),
        ("POST", "/orders/42", "page=2&q=a%20b")
    );
    assert_eq!(
        forward.headers,
        vec![
            ("accept".to_string(), "text/html".to_string()),
            ("x-github-event".to_string(), "push".to_string()),
        ],
        "content-type is the agent's own"
    );
    assert!(call.code_context.is_empty());
}

#[test]
fn cmd_and_file_functions_get_the_body_only() {
    for contract in [Contract::Cmd, Contract::File] {
        let call = call_input_for(
            contract,
            &ctx(),
            Some("application/x-www-form-urlencoded"),
            b"a=1",
        )
        .unwrap();
        assert_eq!(input_of(&call), json!({"a": "1"}));
        assert!(call.code_context.is_empty() && call.forward.is_none());
    }
    let bad = call_input_for(Contract::Cmd, &ctx(), Some("application/json"), b"nope").unwrap_err();
    assert_eq!(bad.kind, FailureKind::Invalid);
}

#[test]
fn raw_responses_give_status_headers_and_body() {
    let answer = raw_response(
        br#"{"statusCode": 201, "headers": {"Location": "/orders/7", "Content-Type": "text/html", "X-Count": 3, "Set-Cookie": ["a=1", "b=2"]}, "body": "<p>made</p>"}"#,
    )
    .unwrap();
    assert_eq!(answer.status, 201);
    assert_eq!(&answer.body[..], b"<p>made</p>");
    let mut headers = answer.headers.clone();
    headers.sort();
    assert_eq!(
        headers,
        vec![
            ("Content-Type".to_string(), "text/html".to_string()),
            ("Location".to_string(), "/orders/7".to_string()),
            ("Set-Cookie".to_string(), "a=1".to_string()),
            ("Set-Cookie".to_string(), "b=2".to_string()),
            ("X-Count".to_string(), "3".to_string()),
        ]
    );
}

#[test]
fn raw_response_defaults_and_content_types() {
    let text = raw_response(br#"{"body": "plain"}"#).unwrap();
    assert_eq!(text.status, 200);
    assert_eq!(
        text.headers,
        vec![("content-type".into(), "text/plain; charset=utf-8".into())]
    );

    let png = [0x89u8, b'P', b'N', b'G', 0, 0xff, 10, 13];
    let encoded = base64_of(&png);
    let wrapped = format!("{}\n{}", &encoded[..4], &encoded[4..]);
    let output =
        json!({"headers": {"content-type": "image/png"}, "body": wrapped, "isBase64Encoded": true});
    let image = raw_response(output.to_string().as_bytes()).unwrap();
    assert_eq!(
        &image.body[..],
        &png[..],
        "bytes exactly, line breaks ignored"
    );
    assert_eq!(
        image.headers,
        vec![("content-type".into(), "image/png".into())]
    );
    let bare = raw_response(
        json!({"body": encoded, "isBase64Encoded": true})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(
        bare.headers,
        vec![("content-type".into(), "application/octet-stream".into())]
    );

    let value = raw_response(br#"{"statusCode": 202, "body": {"ok": true}}"#).unwrap();
    assert_eq!(
        (value.status, &value.body[..]),
        (202, &br#"{"ok":true}"#[..])
    );
    assert_eq!(
        value.headers,
        vec![("content-type".into(), "application/json".into())]
    );

    let empty = raw_response(br#"{"statusCode": 204}"#).unwrap();
    assert!(empty.body.is_empty() && empty.headers.is_empty());
    let redirect = raw_response(
        br#"{"statusCode": 302, "headers": {"location": "/x", "content-length": "99"}}"#,
    )
    .unwrap();
    assert_eq!(
        redirect.headers,
        vec![("location".into(), "/x".into())],
        "content-length is faasbox's"
    );
}

#[test]
fn malformed_raw_responses_say_what_is_wrong() {
    let cases: [(&[u8], &str); 13] = [
        (b"[1]", "an array"),
        (b"\"text\"", "a string"),
        (b"not json", "not JSON"),
        (br#"{"statusCode": 99}"#, "not an HTTP status"),
        (br#"{"statusCode": 600}"#, "not an HTTP status"),
        (br#"{"statusCode": "200"}"#, "not a number"),
        (br#"{"headers": ["a"]}"#, "not an object"),
        (
            br#"{"headers": {"bad name": "x"}}"#,
            "not a valid HTTP header name",
        ),
        (
            br#"{"headers": {"x-a": "one\r\nx-b: two"}}"#,
            "control character",
        ),
        (
            br#"{"headers": {"Transfer-Encoding": "chunked"}}"#,
            "describes a connection",
        ),
        (br#"{"body": "!!", "isBase64Encoded": true}"#, "not base64"),
        (
            br#"{"body": {"a": 1}, "isBase64Encoded": true}"#,
            "not a base64 string",
        ),
        (br#"{"result": 1}"#, "`result`"),
    ];
    for (output, expected) in cases {
        let message = raw_response(output).unwrap_err();
        assert!(
            message.contains(expected),
            "{}: {message}",
            String::from_utf8_lossy(output)
        );
    }
    let many: Map<String, Value> = (0..=MAX_RESPONSE_HEADERS)
        .map(|i| (format!("x-h{i}"), json!("v")))
        .collect();
    let output = json!({"headers": many}).to_string();
    assert!(raw_response(output.as_bytes())
        .unwrap_err()
        .contains("more than 100"));
}

#[test]
fn context_headers_never_show_the_ui_session_cookie() {
    let request: Vec<(&str, &[u8])> = vec![
        ("Cookie", b"a=1; faasbox_session=0123abcd; b=2"),
        ("cookie", b"faasbox_session=ffff"),
        ("Cookie", b"faasbox_sessions=kept"),
    ];
    let shown = context_headers(request, &[]);
    assert_eq!(
        shown.get("cookie").map(String::as_str),
        Some("a=1; b=2; faasbox_sessions=kept")
    );
    let only: Vec<(&str, &[u8])> = vec![("Cookie", b"faasbox_session=0123abcd")];
    assert_eq!(context_headers(only, &[]).get("cookie"), None);
}
