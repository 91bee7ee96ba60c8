//! The web UI in a real headless Chromium (support::browser) against a real server and runc:
//! signing in and out, deploying a function from an image and running it in the playground,
//! deploying from code (a file picked in the form), live logs, a flow edited (a mistake marked
//! at its line, fixed, diagram, deploy, run, the instance followed to `complete`), rollback,
//! cancelling an instance, a namespace token seeing nothing of another namespace, an invoke
//! token's pages asking nothing it may not do, a secret's value never reaching the browser, a
//! stolen cookie without its CSRF token refused, API errors shown with their message, and how
//! fast every page answers with 1,000 runs stored. Every test saves screenshots
//! (target/ui-screenshots/<test>/) and fails on any console error. The page conventions relied
//! on are docs/UI.md's.

mod support;

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{json, Value};
use support::browser::Browser;
use support::{client_with_token, images, wait_for, Server};

/// The UI tests' function image (server-wide).
const IMAGE: &str = "ui/function:latest";

/// The function: logs `ui-called <input>` (stderr: the run's logs) and answers
/// `{"greeting": $GREETING, "input": <input>}`, or `{"ok": true}` when `QUIET` is set (so a
/// secret in its input is logged, masked, but never returned).
const FUNCTION: &str = r#"#!/bin/sh
input_file="$HTTP_DIREKTIV_TEMPDIR/input.json"
cat > "$input_file"
echo "ui-called $(tr -d '\n' < "$input_file")" >&2
printf 'Content-Type: application/json\r\n\r\n'
if [ -n "$QUIET" ]; then
  printf '{"ok":true}'
else
  printf '{"greeting":"%s","input":' "${GREETING:-hello}"
  cat "$input_file"
  printf '}'
fi
"#;

/// The image, built once per test binary.
fn image() -> &'static images::TestImages {
    static IMAGES: std::sync::OnceLock<images::TestImages> = std::sync::OnceLock::new();
    IMAGES.get_or_init(|| images::shared(FUNCTION))
}

/// A server with namespace `demo` and the function image imported as [`IMAGE`].
async fn server() -> Server {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let r = server.import(&image().oci_tar, IMAGE, &[]).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    server
}

/// Deploys `ns/name` from [`IMAGE`] with `envs` and `extra` spec fields, through the API.
async fn deploy(server: &Server, ns: &str, name: &str, envs: Value, extra: Value) {
    let mut spec = json!({"image": IMAGE, "envs": envs});
    if let (Some(spec), Value::Object(extra)) = (spec.as_object_mut(), extra) {
        spec.extend(extra);
    }
    server.deploy(ns, name, spec).await;
}

/// The playground's run status once the run succeeded.
const SUCCEEDED: &str =
    "#run-status[data-status=\"succeeded\"], #run-status [data-status=\"succeeded\"]";

/// A browser signed in with `token`; `None` when the browser cannot run here (skipped).
async fn signed_in(server: &Server, test: &str, token: &str) -> Option<Browser> {
    let mut browser = Browser::start(&server.url, test).await?;
    browser.sign_in(token).await;
    Some(browser)
}

/// The session cookie's value in the browser.
async fn session_cookie(browser: &mut Browser) -> Value {
    let cookies = browser.cookies().await;
    cookies
        .into_iter()
        .find(|c| c["name"] == "faasbox_session")
        .unwrap_or_else(|| panic!("no faasbox_session cookie in the browser"))
}

/// A request with only `cookie` (and `csrf`, if given) as credentials: (status, JSON body).
async fn replay(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    cookie: &str,
    csrf: Option<&str>,
    body: Option<&str>,
) -> (u16, Value) {
    let mut request = client_with_token(None)
        .request(method, server.url(path))
        .header("cookie", format!("faasbox_session={cookie}"));
    if let Some(csrf) = csrf {
        request = request.header("x-faasbox-csrf", csrf);
    }
    if let Some(body) = body {
        request = request.body(body.to_string());
    }
    let r = request.send().await.expect("replayed request");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn sign_in_and_out() {
    let server = server().await;
    let Some(mut b) = Browser::start(&server.url, "sign_in_and_out").await else {
        return;
    };
    b.allow_console(
        "/ui/session - Failed to load resource: the server responded with a status of 401",
    );
    // Not signed in: any page leads to the sign-in page.
    b.open("/ui/ns/demo").await;
    b.wait_ready("signin").await;
    b.shot("signin").await;
    // A wrong token: the API's message, on the page.
    b.type_into("input[name=token]", "not-a-token").await;
    b.click("button[data-action=sign-in]").await;
    b.wait_for(".error[data-code=\"faasbox.auth.invalid\"]")
        .await;
    b.shot("wrong-token").await;

    b.sign_in(&server.token).await;
    b.wait_ready("namespaces").await;
    b.wait_for("nav#nav").await;
    b.wait_for("tr[data-key=\"demo\"]").await;
    assert_eq!(
        b.count("nav#nav a[href=\"/ui/tokens\"], nav#nav a[href=\"/ui/server\"]")
            .await,
        2,
        "the admin pages in an admin's navigation"
    );
    let who = b.text("#whoami").await;
    assert!(!who.trim().is_empty(), "#whoami shows who is signed in");
    b.shot("namespaces").await;
    let cookie = session_cookie(&mut b).await;
    assert_eq!(cookie["httpOnly"], true, "{cookie}");
    assert_eq!(cookie["sameSite"], "Strict", "{cookie}");
    assert_eq!(cookie["path"], "/ui", "{cookie}");
    let value = cookie["value"].as_str().expect("cookie value").to_string();
    // The cookie alone reads who is signed in, never the CSRF token: the page keeps that
    // from its sign-in.
    let (status, session) = replay(
        &server,
        reqwest::Method::GET,
        "/ui/session",
        &value,
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "{session}");
    assert!(session.get("csrf").is_none(), "{session}");
    let kept = b
        .js("return localStorage.getItem('faasbox.csrf')", json!([]))
        .await;
    let csrf = kept
        .as_str()
        .expect("the page keeps the CSRF token")
        .to_string();
    assert_eq!(csrf.len(), 64, "{kept}");
    let (status, _) = replay(
        &server,
        reqwest::Method::GET,
        "/ui/api/v1/namespaces",
        &value,
        Some(&csrf),
        None,
    )
    .await;
    assert_eq!(status, 200, "cookie and CSRF token work before signing out");

    // Signing out ends the session server-side: the old cookie (with its CSRF token) is 401.
    b.click("button[data-action=sign-out]").await;
    b.wait_ready("signin").await;
    b.shot("signed-out").await;
    for path in ["/ui/session", "/ui/api/v1/namespaces"] {
        let (status, body) = replay(
            &server,
            reqwest::Method::GET,
            path,
            &value,
            Some(&csrf),
            None,
        )
        .await;
        assert_eq!(status, 401, "{path} after sign-out: {body}");
    }
    // And the browser is back at the sign-in page for any page.
    b.open("/ui/ns/demo/functions").await;
    b.wait_ready("signin").await;
    b.finish().await;
}

#[tokio::test]
async fn stolen_cookie_without_csrf_cannot_read_or_change() {
    let server = server().await;
    deploy(&server, "demo", "keep", json!({}), json!({})).await;
    let r = server
        .http
        .put(server.url("/api/v1/namespaces/demo/secrets/keep"))
        .body("original-secret-value")
        .send()
        .await
        .expect("PUT secret");
    assert!(r.status().is_success(), "{}", r.status());
    let secrets_before = server.get_json("/api/v1/namespaces/demo/secrets").await;

    let Some(mut b) = signed_in(&server, "stolen_cookie", &server.token).await else {
        return;
    };
    b.shot("signed-in").await;
    let cookie = session_cookie(&mut b).await;
    let value = cookie["value"].as_str().expect("cookie value").to_string();
    let wrong = "0".repeat(64);
    // Nor can the cookie alone learn its CSRF token.
    let (status, shown) = replay(
        &server,
        reqwest::Method::GET,
        "/ui/session",
        &value,
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "{shown}");
    assert!(
        shown.get("csrf").is_none(),
        "GET /ui/session gave the CSRF token: {shown}"
    );
    let attempts: [(reqwest::Method, &str, Option<&str>); 4] = [
        (
            reqwest::Method::GET,
            "/ui/api/v1/namespaces/demo/functions",
            None,
        ),
        (
            reqwest::Method::GET,
            "/ui/api/v1/namespaces/demo/secrets",
            None,
        ),
        (
            reqwest::Method::PUT,
            "/ui/api/v1/namespaces/demo/secrets/keep",
            Some("stolen-value"),
        ),
        (
            reqwest::Method::DELETE,
            "/ui/api/v1/namespaces/demo/functions/keep",
            None,
        ),
    ];
    for (method, path, body) in &attempts {
        for csrf in [None, Some(wrong.as_str())] {
            let (status, answer) = replay(&server, method.clone(), path, &value, csrf, *body).await;
            assert_eq!(
                (status, answer["error"]["code"].as_str()),
                (403, Some("faasbox.auth.csrf")),
                "{method} {path} with the cookie and CSRF {csrf:?}: {answer}"
            );
        }
    }
    // The cookie is for /ui only: on /api it is no credential at all.
    let (status, _) = replay(
        &server,
        reqwest::Method::GET,
        "/api/v1/namespaces/demo/functions",
        &value,
        None,
        None,
    )
    .await;
    assert_eq!(status, 401, "the session cookie must not work on /api");
    // Nothing changed.
    server
        .get_json("/api/v1/namespaces/demo/functions/keep")
        .await;
    let secrets_after = server.get_json("/api/v1/namespaces/demo/secrets").await;
    assert_eq!(secrets_before, secrets_after, "the secret was not replaced");
    // The page itself (which holds the CSRF token) still works.
    b.open("/ui/ns/demo/functions").await;
    b.wait_ready("functions").await;
    b.wait_for("tr[data-key=\"keep\"]").await;
    b.finish().await;
}

#[tokio::test]
async fn deploy_and_run_in_the_playground() {
    let server = server().await;
    let Some(mut b) = signed_in(&server, "deploy_and_run", &server.token).await else {
        return;
    };
    b.open("/ui/ns/demo/deploy").await;
    b.wait_ready("deploy").await;
    b.type_into("form#deploy-image [name=name]", "hello").await;
    b.type_into("form#deploy-image [name=image]", IMAGE).await;
    b.type_into("form#deploy-image [name=envs]", "GREETING=from-the-ui")
        .await;
    b.shot("deploy-form").await;
    b.click("form#deploy-image button[data-action=deploy]")
        .await;
    b.wait_ready("function").await;
    let url = b.url().await;
    assert!(
        url.ends_with("/ui/ns/demo/functions/hello"),
        "after deploy: {url}"
    );
    // The API agrees: revision 1, pinned to a digest the page shows.
    let shown = server
        .get_json("/api/v1/namespaces/demo/functions/hello")
        .await;
    assert_eq!(shown["revision"], 1, "{shown}");
    let digest = shown["digest"]
        .as_str()
        .or(shown["spec"]["digest"].as_str())
        .unwrap_or_else(|| panic!("a digest in {shown}"))
        .to_string();
    let short: String = digest
        .trim_start_matches("sha256:")
        .chars()
        .take(8)
        .collect();
    b.wait_text("section#spec", &short).await;
    b.wait_for("section#revisions tr[data-key=\"1\"]").await;
    b.shot("function").await;

    // A blocking run: output, that run's logs, phases, and a link to the run.
    b.set_value(
        "section#playground textarea[name=input]",
        r#"{"name": "blocking-call"}"#,
    )
    .await;
    b.click("section#playground button[data-action=run]").await;
    b.wait_text_within("pre#output", "blocking-call", Duration::from_secs(60))
        .await;
    let output = b.text("pre#output").await;
    assert!(
        output.contains("from-the-ui"),
        "the greeting set on the deploy page in the output: {output}"
    );
    b.wait_for(SUCCEEDED).await;
    b.wait_text_within("pre#run-logs", "ui-called", Duration::from_secs(20))
        .await;
    b.wait_for("table#phases tr").await;
    let first_run = b.attribute("a#run-link", "href").await.unwrap_or_default();
    assert!(
        first_run.contains("/ui/ns/demo/runs/"),
        "run link: {first_run}"
    );
    b.shot("blocking-run").await;

    // An asynchronous run: its id at once, then its output.
    b.set_value(
        "section#playground textarea[name=input]",
        r#"{"name": "async-call"}"#,
    )
    .await;
    b.click("section#playground button[data-action=run-async]")
        .await;
    b.wait_text_within("pre#output", "async-call", Duration::from_secs(60))
        .await;
    let async_run = b.attribute("a#run-link", "href").await.unwrap_or_default();
    assert!(
        async_run.contains("/ui/ns/demo/runs/") && async_run != first_run,
        "the async run's own link: {async_run} (first: {first_run})"
    );
    let id = async_run.rsplit('/').next().unwrap_or_default().to_string();
    let record = server.get_json(&format!("/api/v1/runs/{id}")).await;
    assert_eq!(record["mode"], "async", "{record}");
    b.shot("async-run").await;

    // The run's page: input, output, logs.
    b.click("a#run-link").await;
    b.wait_ready("run").await;
    b.wait_text("main", "async-call").await;
    b.wait_text_within("main", "ui-called", Duration::from_secs(20))
        .await;
    b.shot("run").await;
    b.finish().await;
}

#[tokio::test]
async fn live_logs_appear_while_calls_run() {
    let server = server().await;
    deploy(&server, "demo", "live", json!({}), json!({})).await;
    let Some(mut b) = signed_in(&server, "live_logs", &server.token).await else {
        return;
    };
    b.open("/ui/ns/demo/functions/live").await;
    b.wait_ready("function").await;
    b.wait_for("section#logs pre#log-lines").await;
    // A mark that a reload would lose.
    b.js("window.__notReloaded = true", json!([])).await;
    for n in 1..=3 {
        let marker = format!("live-call-{n}");
        let (status, _, body) = server
            .invoke("demo", "live", json!({ "marker": marker }).to_string())
            .await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        b.wait_text_within("pre#log-lines", &marker, Duration::from_secs(5))
            .await;
    }
    let lines = b.count("pre#log-lines > div").await;
    assert!(lines >= 3, "one div per line: {lines}");
    assert_eq!(
        b.js("return window.__notReloaded === true", json!([]))
            .await,
        true,
        "the page was not reloaded"
    );
    b.shot("live-logs").await;
    b.finish().await;
}

/// The flow of the flow test with the mistake (`actoin`, line 7, column 9).
const FLOW_WRONG: &str = "functions:
- {id: hello, type: knative-namespace, service: hello}
states:
- id: greet
  action: {function: hello, input: {name: 'jq(.name)'}}
  transition: shout
  type: actoin
- id: shout
  type: noop
  transform: {said: 'jq(.return.greeting + \" \" + .return.input.name)'}
";

#[tokio::test]
async fn flow_with_a_mistake_fixed_deployed_run_and_followed() {
    let server = server().await;
    deploy(
        &server,
        "demo",
        "hello",
        json!({"GREETING": "hi"}),
        json!({}),
    )
    .await;
    let fixed = FLOW_WRONG.replace("actoin", "action");
    // The flow exists (a first version of one state), so its page opens with the editor.
    server
        .deploy_flow("greet", "states:\n- {id: start, type: noop}\n")
        .await;
    let Some(mut b) = signed_in(&server, "flow", &server.token).await else {
        return;
    };
    b.open("/ui/ns/demo/flows").await;
    b.wait_ready("flows").await;
    b.wait_for("tr[data-key=\"greet\"]").await;
    b.shot("flows").await;
    b.open("/ui/ns/demo/flows/greet").await;
    b.wait_ready("flow").await;
    b.wait_for("svg#diagram g.node[data-state=\"start\"]").await;

    // The mistake: marked at its line, the message names it, with its column.
    b.set_value("textarea#flow-source", FLOW_WRONG).await;
    b.wait_for("ul#problems li[data-line=\"7\"]").await;
    let column = b
        .attribute("ul#problems li[data-line=\"7\"]", "data-column")
        .await;
    assert_eq!(column.as_deref(), Some("9"), "the problem's column");
    let message = b.text("ul#problems li[data-line=\"7\"]").await;
    assert!(
        message.contains("actoin"),
        "the message names the mistake: {message}"
    );
    let marked = b.text("#gutter .problem-line").await;
    assert_eq!(marked.trim(), "7", "the gutter marks line 7");
    b.shot("mistake").await;

    // Fixed: no problems; the diagram has a node per state and the edge between them.
    b.set_value("textarea#flow-source", &fixed).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while b.count("ul#problems li").await > 0 {
        if std::time::Instant::now() > deadline {
            b.fail("the problems stayed after the fix").await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(b.count("#gutter .problem-line").await, 0, "no marked line");
    b.wait_for("svg#diagram g.node[data-state=\"shout\"]").await;
    assert_eq!(
        b.count("svg#diagram g.node[data-state]").await,
        2,
        "a node per state"
    );
    let edges = b
        .count("svg#diagram [data-from=\"greet\"][data-to=\"shout\"]")
        .await;
    assert!(edges >= 1, "the transition greet → shout is drawn");
    b.shot("fixed").await;

    // Deploy (the API agrees), then run with input and follow the instance to its end.
    b.click("button[data-action=deploy]").await;
    wait_for(
        Duration::from_secs(10),
        "the deployed flow's source",
        || server.get_json("/api/v1/namespaces/demo/flows/greet"),
        |flow| flow["source"] == fixed.as_str(),
    )
    .await;
    b.set_value("textarea[name=input]", r#"{"name": "flow-input"}"#)
        .await;
    b.click("button[data-action=run]").await;
    // The page goes to the new instance, or lists it: either way, open it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if b.count("main[data-page=\"instance\"]").await > 0 {
            break;
        }
        if b.count("table#instances tr[data-key] a").await > 0 {
            b.click("table#instances tr[data-key] a").await;
            break;
        }
        if std::time::Instant::now() > deadline {
            b.fail("after run: neither the instance page nor the instance in the list")
                .await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.wait_ready("instance").await;
    b.wait_text_within("#status", "complete", Duration::from_secs(60))
        .await;
    b.wait_for("ol#timeline li[data-state=\"greet\"]").await;
    b.wait_for("ol#timeline li[data-state=\"shout\"]").await;
    // Each state with its input and output: the action's input is the flow's input; the
    // last state's output is what the flow answered.
    b.wait_text("ol#timeline li[data-state=\"greet\"]", "flow-input")
        .await;
    b.wait_text("ol#timeline li[data-state=\"shout\"]", "hi flow-input")
        .await;
    // The API agrees.
    let id = b
        .url()
        .await
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let instance = server.instance(&id).await;
    assert_eq!(instance["status"], "complete", "{instance}");
    b.shot("instance").await;
    b.finish().await;
}

#[tokio::test]
async fn rollback_to_an_earlier_revision() {
    let server = server().await;
    deploy(
        &server,
        "demo",
        "f",
        json!({"GREETING": "first"}),
        json!({}),
    )
    .await;
    deploy(
        &server,
        "demo",
        "f",
        json!({"GREETING": "second"}),
        json!({}),
    )
    .await;
    let Some(mut b) = signed_in(&server, "rollback", &server.token).await else {
        return;
    };
    b.open("/ui/ns/demo/functions/f").await;
    b.wait_ready("function").await;
    b.wait_for("section#revisions tr.current[data-key=\"2\"]")
        .await;
    b.wait_for("section#revisions tr[data-key=\"1\"]").await;
    b.shot("revisions").await;
    b.click("section#revisions tr[data-key=\"1\"] button[data-action=rollback]")
        .await;
    // Destructive: asks in the page first; nothing happened yet.
    b.wait_for("section#revisions button[data-action=confirm]")
        .await;
    assert_eq!(
        server.get_json("/api/v1/namespaces/demo/functions/f").await["revision"],
        2,
        "nothing before the confirmation"
    );
    b.shot("confirm").await;
    b.click("section#revisions button[data-action=confirm]")
        .await;
    b.wait_for("section#revisions tr.current[data-key=\"1\"]")
        .await;
    b.wait_for("section#revisions [data-result=rollback]").await;
    b.shot("rolled-back").await;
    let shown = server.get_json("/api/v1/namespaces/demo/functions/f").await;
    assert_eq!(shown["revision"], 1, "{shown}");
    let (status, _, body) = server.invoke("demo", "f", "{}").await;
    assert_eq!(status, 200);
    assert_eq!(support::json(&body)["greeting"], "first");
    b.finish().await;
}

#[tokio::test]
async fn namespace_token_sees_nothing_of_another_namespace() {
    let server = server().await;
    server.create_namespace("other").await;
    deploy(&server, "demo", "mine", json!({}), json!({})).await;
    deploy(&server, "other", "theirs-hidden-fn", json!({}), json!({})).await;
    let token = server
        .cli_ok(&["token", "create", "--namespace", "demo"])
        .trim()
        .to_string();
    let Some(mut b) = Browser::start(&server.url, "namespace_token").await else {
        return;
    };
    b.record_responses();
    // Pages of `other` answer the API's 404 (and the admin pages 403): expected in the console.
    b.allow_console("/ui/api/v1/namespaces/other");
    b.allow_console("the server responded with a status of 403");
    b.sign_in(&token).await;
    b.shot("first-page").await;
    b.open("/ui/").await;
    b.wait_ready("namespaces").await;
    b.wait_for("tr[data-key=\"demo\"]").await;
    assert_eq!(
        b.count("tr[data-key=\"other\"]").await,
        0,
        "other is not listed"
    );
    b.shot("namespaces").await;
    b.open("/ui/ns/demo/functions").await;
    b.wait_ready("functions").await;
    b.wait_for("tr[data-key=\"mine\"]").await;
    b.shot("own-functions").await;
    for path in [
        "/ui/ns/other/functions/theirs-hidden-fn",
        "/ui/ns/other/functions",
        "/ui/ns/other/runs",
        "/ui/ns/other",
    ] {
        b.open(path).await;
        b.wait_for("main[data-ready=\"true\"] .error").await;
        let code = b.attribute(".error", "data-code").await.unwrap_or_default();
        assert_eq!(code, "faasbox.not_found", "{path}");
        let html = b.html().await;
        assert!(
            !html.contains("theirs-hidden-fn"),
            "{path} shows the other namespace's function"
        );
        b.shot(&path.replace('/', "_")).await;
    }
    // The admin pages are not in the navigation.
    assert_eq!(
        b.count("nav#nav a[href=\"/ui/tokens\"], nav#nav a[href=\"/ui/server\"]")
            .await,
        0,
        "no admin pages in a namespace token's navigation"
    );
    let responses = b.responses().await;
    assert!(
        responses
            .iter()
            .any(|r| r.url.contains("/ui/api/v1/namespaces/demo/functions") && r.body.is_some()),
        "the responses were recorded with their bodies: {responses:#?}"
    );
    for r in &responses {
        let body = r.body.as_deref().unwrap_or_default();
        assert!(
            !body.contains("theirs-hidden-fn"),
            "{} ({}) shows the other namespace's function: {body}",
            r.url,
            r.status
        );
    }
    b.finish().await;
}

/// Every page kind for namespace `demo`, with its page name: (path, page).
fn every_page(
    function: &str,
    run: &str,
    flow: &str,
    instance: &str,
) -> Vec<(String, &'static str)> {
    vec![
        ("/ui/".to_string(), "namespaces"),
        ("/ui/ns/demo".to_string(), "namespace"),
        ("/ui/ns/demo/functions".to_string(), "functions"),
        (format!("/ui/ns/demo/functions/{function}"), "function"),
        ("/ui/ns/demo/deploy".to_string(), "deploy"),
        ("/ui/ns/demo/runs".to_string(), "runs"),
        (format!("/ui/ns/demo/runs/{run}"), "run"),
        ("/ui/ns/demo/flows".to_string(), "flows"),
        (format!("/ui/ns/demo/flows/{flow}"), "flow"),
        (format!("/ui/ns/demo/instances/{instance}"), "instance"),
        ("/ui/ns/demo/events".to_string(), "events"),
        ("/ui/ns/demo/routes".to_string(), "routes"),
        ("/ui/ns/demo/secrets".to_string(), "secrets"),
        ("/ui/ns/demo/registries".to_string(), "registries"),
        ("/ui/ns/demo/images".to_string(), "images"),
        ("/ui/tokens".to_string(), "tokens"),
        ("/ui/server".to_string(), "server"),
    ]
}

/// A flow calling `function` (one action state).
fn calling(function: &str) -> String {
    format!(
        "functions:\n- {{id: f, type: knative-namespace, service: {function}}}\nstates:\n- {{id: call, type: action, action: {{function: f}}}}\n"
    )
}

#[tokio::test]
async fn secret_value_never_reaches_the_browser() {
    let server = server().await;
    let marker = format!("ui-secret-{}", uuid_like());
    let Some(mut b) = signed_in(&server, "secret_value", &server.token).await else {
        return;
    };
    b.record_responses();
    // Set through the UI.
    b.open("/ui/ns/demo/secrets").await;
    b.wait_ready("secrets").await;
    b.type_into("form#set-secret [name=name]", "tok").await;
    b.type_into("form#set-secret input[type=password][name=value]", &marker)
        .await;
    b.click("form#set-secret button[data-action=set-secret]")
        .await;
    b.wait_for("tr[data-key=\"tok\"]").await;
    b.shot("secret-set").await;

    // Used by a function (its input template) that logs its input, and by a flow.
    deploy(
        &server,
        "demo",
        "uses",
        json!({"QUIET": "1"}),
        json!({"secrets": ["tok"], "input": {"key": "jq(.secrets.tok)", "name": "jq(.input.name)"}}),
    )
    .await;
    server.deploy_flow("calls", &calling("uses")).await;
    let (status, instance, _) = server.run_flow("calls", &json!({})).await;
    assert_eq!(status, 200);
    // A run from the playground: output and logs shown (the logged value masked).
    b.open("/ui/ns/demo/functions/uses").await;
    b.wait_ready("function").await;
    b.set_value(
        "section#playground textarea[name=input]",
        r#"{"name": "x"}"#,
    )
    .await;
    b.click("section#playground button[data-action=run]").await;
    b.wait_text_within("pre#output", "true", Duration::from_secs(60))
        .await;
    b.wait_for(SUCCEEDED).await;
    b.wait_text_within("pre#run-logs", "ui-called", Duration::from_secs(20))
        .await;
    let run = b
        .attribute("a#run-link", "href")
        .await
        .unwrap_or_default()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    // The server did record the value (masked) in the run's logs: the function saw it.
    let logs = server.log_lines(&run).await.join("\n");
    assert!(logs.contains("ui-called") && logs.contains("***"), "{logs}");

    let pages = every_page("uses", &run, "calls", &instance);
    for (path, page) in &pages {
        b.open(path).await;
        b.wait_ready(page).await;
        let html = b.html().await;
        assert!(!html.contains(&marker), "{path} shows the secret's value");
        b.shot(page).await;
    }
    let responses = b.responses().await;
    let with_bodies = responses.iter().filter(|r| r.body.is_some()).count();
    assert!(
        responses
            .iter()
            .any(|r| r.url.contains(&format!("/runs/{run}/logs"))
                || r.url.contains(&format!("/invocations/{run}/logs"))
                || r.url.contains("/logs")),
        "the logs were among the responses: {:#?}",
        responses.iter().map(|r| &r.url).collect::<Vec<_>>()
    );
    assert!(with_bodies > pages.len(), "bodies read: {with_bodies}");
    let encoded = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(&marker)
    };
    for r in &responses {
        let body = r.body.as_deref().unwrap_or_default();
        assert!(
            !body.contains(&marker) && !body.contains(encoded.trim_end_matches('=')),
            "{} ({}) holds the secret's value: {body}",
            r.url,
            r.status
        );
    }
    eprintln!(
        "{} responses checked ({with_bodies} with bodies)",
        responses.len()
    );
    b.finish().await;
}

/// 16 random hex digits (the secret marker's tail).
fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{:016x}",
        (nanos as u64) ^ u64::from(std::process::id()).rotate_left(32)
    )
}

#[tokio::test]
async fn api_errors_are_shown_with_their_message() {
    let server = server().await;
    let Some(mut b) = signed_in(&server, "api_errors", &server.token).await else {
        return;
    };
    b.allow_console("the server responded with a status of 404");
    for (path, page) in [
        ("/ui/ns/demo/functions/nosuch", "function"),
        ("/ui/ns/nosuch/functions", "functions"),
        ("/ui/ns/demo/runs/0123456789abcdef0123456789abcdef", "run"),
    ] {
        b.open(path).await;
        b.wait_for(&format!("main[data-page=\"{page}\"][data-ready=\"true\"] .error[data-code=\"faasbox.not_found\"]"))
            .await;
        let message = b.text(".error").await;
        assert!(
            message.len() > 10
                && !message.contains("[object Object]")
                && !message.contains("    at "),
            "{path}: the API's message, not a stack: {message}"
        );
        b.shot(page).await;
    }
    // A page URL the UI does not have: its own message, not a server 404.
    b.open("/ui/no/such/page").await;
    b.wait_for("main[data-ready=\"true\"]").await;
    let text = b.text("main").await.to_lowercase();
    assert!(text.contains("no such page"), "{text}");
    b.shot("no-such-page").await;
    b.finish().await;
}

#[tokio::test]
async fn pages_answer_quickly_with_1000_runs() {
    let server = server().await;
    deploy(&server, "demo", "many", json!({}), json!({})).await;
    server.deploy_flow("calls", &calling("many")).await;
    let (status, instance, _) = server.run_flow("calls", &json!({})).await;
    assert_eq!(status, 200);
    // 1,000 asynchronous runs, 50 submitted at a time.
    let began = std::time::Instant::now();
    let mut ids = Vec::new();
    for chunk in 0..20 {
        let submits = (0..50).map(|i| {
            let server = &server;
            async move {
                let r = server
                    .http
                    .post(server.url("/api/v1/namespaces/demo/functions/many/invoke?async=true"))
                    .header("content-type", "application/json")
                    .body(json!({ "n": chunk * 50 + i }).to_string())
                    .send()
                    .await
                    .expect("async invoke");
                assert_eq!(r.status(), 202);
                r.headers()["faasbox-invocation-id"]
                    .to_str()
                    .unwrap_or_default()
                    .to_string()
            }
        });
        ids.extend(join_all(submits).await);
    }
    let last = ids.last().cloned().unwrap_or_default();
    let last_path = format!("/api/v1/runs/{last}");
    wait_for(
        Duration::from_secs(300),
        "the last of 1,000 runs to end",
        || server.get_json(&last_path),
        |run| run["status"] == "succeeded",
    )
    .await;
    eprintln!("1,000 runs made in {:?}", began.elapsed());

    let Some(mut b) = signed_in(&server, "pages_1000_runs", &server.token).await else {
        return;
    };
    for (path, page) in every_page("many", &last, "calls", &instance) {
        b.timed_open(&path, page).await;
        b.shot(page).await;
    }
    // The runs list pages through them: 50 rows, then the next 50.
    b.open("/ui/ns/demo/runs").await;
    b.wait_ready("runs").await;
    let first: Vec<String> = b
        .js(
            "return Array.from(document.querySelectorAll('table.list tr[data-key]')).map(r => r.dataset.key)",
            json!([]),
        )
        .await
        .as_array()
        .into_iter()
        .flatten()
        .map(|k| k.as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(first.len(), 50, "a page of 50 rows");
    b.click("button[data-action=next-page]").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = b
            .js(
                "return Array.from(document.querySelectorAll('table.list tr[data-key]')).map(r => r.dataset.key)",
                json!([]),
            )
            .await;
        let keys: Vec<&str> = now
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if keys.len() == 50 && keys.iter().all(|k| !first.iter().any(|f| f == k)) {
            break;
        }
        if std::time::Instant::now() > deadline {
            b.fail("the next page never showed 50 other runs").await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.shot("runs-page-2").await;
    b.finish().await;
}

#[tokio::test]
async fn an_invoke_token_sees_every_page_without_a_refused_request() {
    let server = server().await;
    deploy(&server, "demo", "hello", json!({}), json!({})).await;
    server.deploy_flow("calls", &calling("hello")).await;
    let (status, instance, _) = server.run_flow("calls", &json!({})).await;
    assert_eq!(status, 200);
    let (status, run, _) = server.invoke("demo", "hello", "{}").await;
    assert_eq!(status, 200);
    let token = server
        .cli_ok(&["token", "create", "--namespace", "demo", "--role", "invoke"])
        .trim()
        .to_string();
    let Some(mut b) = signed_in(&server, "invoke_token", &token).await else {
        return;
    };
    // Every page of the namespace renders, and none asks for what the token may not do (a
    // refused request would be a console error, failing `finish`).
    for (path, page) in every_page("hello", &run, "calls", &instance) {
        if page == "tokens" || page == "server" {
            continue;
        }
        b.open(&path).await;
        b.wait_ready(page).await;
        b.shot(page).await;
    }
    b.finish().await;
}

#[tokio::test]
async fn cancel_a_running_instance() {
    let server = server().await;
    server
        .deploy_flow(
            "slow",
            "states:\n- id: wait\n  type: delay\n  duration: PT60S\n  transition: after\n- {id: after, type: noop}\n",
        )
        .await;
    let id = server.start_flow("slow", &json!({})).await;
    let Some(mut b) = signed_in(&server, "cancel_instance", &server.token).await else {
        return;
    };
    b.open(&format!("/ui/ns/demo/instances/{id}")).await;
    b.wait_ready("instance").await;
    b.wait_text("#status", "running").await;
    b.click("button[data-action=cancel]").await;
    // Asked in the page first: nothing happened yet.
    b.wait_for("button[data-action=confirm]").await;
    assert_eq!(server.instance(&id).await["status"], "running");
    b.shot("confirm").await;
    b.click("button[data-action=confirm]").await;
    b.wait_text("#status", "cancelled").await;
    b.shot("cancelled").await;
    let instance = server.instance(&id).await;
    assert_eq!(instance["status"], "cancelled", "{instance}");
    b.finish().await;
}

#[tokio::test]
async fn deploy_from_code_and_run() {
    let server = server().await;
    // A shell base image made from the test image (busybox's sh runs the handler).
    server.cli_ok(&[
        "base-image",
        "create",
        "shell-base",
        IMAGE,
        "--language",
        "shell",
        "-n",
        "demo",
    ]);
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("run.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nread -r payload\necho \"code-log-line\"\nprintf '{\"got\": %s}\\n' \"$payload\"\n",
    )
    .expect("writing the handler");
    let Some(mut b) = signed_in(&server, "deploy_from_code", &server.token).await else {
        return;
    };
    b.open("/ui/ns/demo/deploy?tab=code").await;
    b.wait_ready("deploy").await;
    b.type_into("form#deploy-code [name=name]", "script").await;
    b.set_value("form#deploy-code select[name=base]", "shell-base")
        .await;
    b.upload("form#deploy-code input[type=file][name=files]", &script)
        .await;
    b.type_into("form#deploy-code [name=handler]", "run.sh")
        .await;
    b.shot("code-form").await;
    b.click("form#deploy-code button[data-action=deploy]").await;
    // Built (the page follows the build's log meanwhile), then the function's page, which
    // shows the build's status.
    b.wait_for_within(
        "main[data-page=\"function\"][data-ready=\"true\"]",
        Duration::from_secs(180),
    )
    .await;
    b.wait_text("section#spec", "READY").await;
    b.shot("function").await;
    b.set_value("section#playground textarea[name=input]", r#"{"n": 1}"#)
        .await;
    b.click("section#playground button[data-action=run]").await;
    b.wait_text_within("pre#output", "got", Duration::from_secs(60))
        .await;
    b.wait_for(SUCCEEDED).await;
    b.wait_text_within("pre#run-logs", "code-log-line", Duration::from_secs(20))
        .await;
    b.shot("run").await;
    let shown = server
        .get_json("/api/v1/namespaces/demo/functions/script")
        .await;
    assert_eq!(
        shown["spec"]["handler"]
            .as_str()
            .or(shown["handler"].as_str()),
        Some("run.sh"),
        "{shown}"
    );
    b.finish().await;
}
