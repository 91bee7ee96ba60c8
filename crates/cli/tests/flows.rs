//! Workflows end to end against the real server and real runc containers: the seeds' flows as
//! written, errors (catch, retries, timeouts, crashes), cancel, every state type, variables,
//! subflows, invalid flows refused with line and column, and the CLI.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::flows::{host_gateway, Recorder};
use support::images::{self, rootfs_query, TEST_FUNCTION};
use support::{Server, ALLOW_HOST_LOOPBACK};

const SECRET: &str = "s3cr3t-token-4711";

/// A `request`-like function (as direktiv/request): GETs `url` with the input's
/// Authorization header and answers what it got.
const REQUEST_CGI: &str = r#"#!/bin/sh
in="$HTTP_DIREKTIV_TEMPDIR/in.json"
cat > "$in"
url=$(sed -n 's/.*"url":"\([^"]*\)".*/\1/p' "$in")
auth=$(sed -n 's/.*"Authorization":"\([^"]*\)".*/\1/p' "$in")
body=$(wget -q -O- --header "Authorization: $auth" "$url" 2>&1)
printf 'Content-Type: application/json\r\n\r\n{"status":"ok","body":"%s"}' "$body"
"#;

struct Setup {
    server: Server,
    _dirs: Vec<tempfile::TempDir>,
}

/// A server with namespace demo, the images `alpine` (busybox, for direktiv-cmd),
/// `test/function` (the test function), `direktiv/request:v1`, and namespace functions
/// echo, fails, crash, sleep.
async fn setup() -> Setup {
    setup_with(&[]).await
}

/// [`setup`] with a server whose functions may reach the test's [`Recorder`] on the host's
/// loopback (restarts must pass [`ALLOW_HOST_LOOPBACK`] again).
async fn setup_with_host_loopback() -> Setup {
    setup_with(&[ALLOW_HOST_LOOPBACK]).await
}

async fn setup_with(args: &[&str]) -> Setup {
    let server = Server::start_with(args).await;
    server.create_namespace("demo").await;
    let (plain_dir, plain) = images::rootfs_tar_with(&[]);
    let r = server
        .import(&plain, "alpine", &[("entrypoint", "[\"/bin/sh\"]")])
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    let query = rootfs_query();
    let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let function = images::build(TEST_FUNCTION);
    let r = server
        .import(&function.rootfs_tar, "test/function:latest", &query)
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    let (request_dir, request) = images::rootfs_tar_with(&[
        ("www/cgi-bin/index.cgi", REQUEST_CGI, 0o755),
        (
            "bin/sed",
            "#!/bin/sh\nexec /bin/busybox sed \"$@\"\n",
            0o755,
        ),
    ]);
    let r = server.import(&request, "direktiv/request:v1", &query).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    for (name, mode) in [
        ("echo", "plain"),
        ("fails", "error"),
        ("crash", "crash"),
        ("sleep", "sleep"),
    ] {
        server.deploy("demo", name, json!({"image": "test/function:latest", "envs": {"MODE": mode}, "scale": {"max": 4, "concurrency": 4}})).await;
    }
    Setup {
        server,
        _dirs: vec![plain_dir, request_dir],
    }
}

#[tokio::test]
async fn seed_direktiv_cmd_flows_run_as_written() {
    let s = setup().await;
    // The seed's "Special Command" flow.
    s.server
        .deploy_flow(
            "cmd",
            r#"direktiv_api: workflow/v1
functions:
- id: get
  image: alpine
  type: knative-workflow
  cmd: /usr/share/direktiv/direktiv-cmd
states:
- id: getter 
  type: action
  action:
    function: get
    input: 
      data:
        commands:
        - command: echo -n "hello"
        # `\$`: Direktiv's parser itself expands `$MYENV`, from the container's environment
        - command: sh -c 'echo -n \$MYENV'
          envs: 
          - name: MYENV
            value: MYVALUE
          stop: true
"#,
        )
        .await;
    let (status, id, out) = s.server.run_flow("cmd", &json!({})).await;
    assert_eq!(status, 200, "{out}\n{}", s.server.instance_log(&id).await);
    assert_eq!(out["return"][0]["Output"], "hello", "{out}");
    assert_eq!(out["return"][1]["Output"], "MYVALUE", "{out}");
    // The seed's "Files in Function" flow: a script with permission 0755 run as ./hello.sh.
    s.server
        .deploy_flow(
            "files",
            r#"direktiv_api: workflow/v1
functions:
- id: get
  image: alpine
  type: knative-workflow
  cmd: /usr/share/direktiv/direktiv-cmd
states:
- id: getter 
  type: action
  action:
    function: get
    input: 
      files:
      - name: hello.sh
        content: |
          #!/bin/sh

          echo -n "HELLO WORLD"
        permission: 0755 
      data:
        commands:
        - command: ./hello.sh
"#,
        )
        .await;
    let (status, id, out) = s.server.run_flow("files", &json!({})).await;
    assert_eq!(status, 200, "{out}\n{}", s.server.instance_log(&id).await);
    assert_eq!(out["return"][0]["Output"], "HELLO WORLD", "{out}");
    let instance = s.server.instance(&id).await;
    assert_eq!(instance["status"], "complete");
    assert_eq!(instance["states"], json!(["getter"]));

    // An action's `files`: a workflow variable placed in the call's directory.
    s.server
        .deploy_flow(
            "varfiles",
            r#"functions:
- {id: get, image: alpine, type: reusable, cmd: /usr/share/direktiv/direktiv-cmd}
states:
- id: keep
  type: setter
  variables: [{key: script, scope: workflow, value: "echo -n from-a-variable"}]
  transition: run
- id: run
  type: action
  action:
    function: get
    files: [{key: script, scope: workflow, as: script.sh}]
    input: {commands: [{command: sh script.sh}]}
"#,
        )
        .await;
    let (status, id, out) = s.server.run_flow("varfiles", &json!({})).await;
    assert_eq!(status, 200, "{out}\n{}", s.server.instance_log(&id).await);
    assert_eq!(out["return"][0]["Output"], "from-a-variable", "{out}");
}

#[tokio::test]
async fn a_wait_for_events_is_saved_and_times_out_into_catch() {
    let s = setup().await;
    s.server
        .deploy_flow(
            "wait",
            "states:\n- id: w\n  type: consumeEvent\n  timeout: PT1S\n  event: {type: never.sent, context: {who: 'jq(.who)'}}\n  catch: [{error: direktiv.cancels.timeout.soft, transition: late}]\n- {id: late, type: noop, transform: {timedOut: 'jq(.error.code)'}}\n",
        )
        .await;
    let id = s.server.start_flow("wait", &json!({"who": "me"})).await;
    let instance = s
        .server
        .wait_instance(&id, &["complete", "failed"], Duration::from_secs(20))
        .await;
    assert_eq!(
        instance["output"],
        json!({"timedOut": "direktiv.cancels.timeout.soft"}),
        "{instance}"
    );
    assert!(s
        .server
        .instance_log(&id)
        .await
        .contains("state 'w' waits for events"));
}

#[tokio::test]
async fn seed_request_flow_sends_the_secret_and_keeps_it_out_of_the_instance() {
    let s = setup_with_host_loopback().await;
    let recorder = Recorder::start().await;
    let r = s
        .server
        .http
        .put(s.server.url("/api/v1/namespaces/demo/secrets/secretToken"))
        .body(SECRET)
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success(),
        "{}",
        r.text().await.unwrap_or_default()
    );
    let url = format!("http://{}:{}/api", host_gateway(), recorder.port);
    let flow = format!(
        r#"id: httpget
functions:
- id: httprequest
  image: direktiv/request:v1
  type: reusable
states:
- id: getter
  type: action
  action:
    secrets: ["secretToken"]
    function: httprequest
    input:
      method: "GET"
      url: "{url}"
      headers:
        "Content-type": "application/json; charset=UTF-8"
        "Authorization": "bearer jq(.secrets.secretToken)"
"#
    );
    s.server.deploy_flow("httpget", &flow).await;
    let (status, id, out) = s.server.run_flow("httpget", &json!({"who": "me"})).await;
    assert_eq!(status, 200, "{out}\n{}", s.server.instance_log(&id).await);
    assert_eq!(
        out["return"],
        json!({"status": "ok", "body": "pong"}),
        "{out}"
    );
    assert_eq!(out["who"], "me");
    let seen = recorder.all();
    assert!(
        seen.contains(&format!("Authorization: bearer {SECRET}")),
        "the server got the secret: {seen}"
    );
    let instance = s.server.instance(&id).await.to_string();
    let logs = s.server.instance_log(&id).await;
    for (what, text) in [
        ("output", out.to_string()),
        ("instance", instance),
        ("logs", logs),
    ] {
        assert!(
            !text.contains(SECRET),
            "the {what} holds the secret: {text}"
        );
    }
    let db = s.server.database_bytes();
    assert!(
        !support::contains_bytes(&db, SECRET.as_bytes()),
        "the database holds the secret in plain text"
    );
}

#[tokio::test]
async fn invalid_flows_are_refused_with_line_and_column() {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let bad = "direktiv_api: workflow/v1\nstates:\n- id: a\n  type: noop\n  transition: nowhere\n- id: b\n  type: teleport\n- id: c\n  type: noop\n  log: 'jq(.x | )'\n";
    let r = server.put_flow("bad", bad).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    let problems = body["error"]["problems"].as_array().unwrap().clone();
    let find = |line: u64, column: u64, words: &str| {
        assert!(
            problems.iter().any(|p| p["line"] == line
                && p["column"] == column
                && p["message"].as_str().unwrap().contains(words)),
            "no {words} at {line}:{column} in {problems:#?}"
        )
    };
    find(3, 3, "moves to 'nowhere'");
    find(7, 9, "unknown type 'teleport'");
    // State c is reachable from nowhere: only a warning (Direktiv accepts such flows), and
    // a refused flow has no warnings.
    assert!(!problems
        .iter()
        .any(|p| p["message"].as_str().unwrap().contains("unreachable")));
    find(10, 8, "jq syntax error");
    assert_eq!(body["error"]["code"], "faasbox.flow.invalid");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("line 3, column 3"));
    let r = server.put_flow("yaml", "states:\n  - id: [a\n").await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not valid YAML"),
        "{body}"
    );
    assert!(
        body["error"]["problems"][0]["line"].as_u64().unwrap() >= 2,
        "{body}"
    );
    let r = server.get("/api/v1/namespaces/demo/flows/bad").await;
    assert_eq!(r.status(), 404, "a refused flow is not stored");
}

#[tokio::test]
async fn errors_are_caught_retried_and_timed_out() {
    let s = setup().await;
    let flow = r#"functions:
- {id: fails, type: knative-namespace, service: fails}
- {id: crash, type: knative-namespace, service: crash}
- {id: sleep, type: knative-namespace, service: sleep}
states:
- id: pick
  type: switch
  conditions:
  - {condition: 'jq(.case == "catch")', transition: catch}
  - {condition: 'jq(.case == "retry")', transition: retry}
  - {condition: 'jq(.case == "crash")', transition: crash}
  - {condition: 'jq(.case == "soft")', transition: soft}
  defaultTransition: unknown
- id: catch
  type: action
  action: {function: fails}
  catch:
  - {error: "other.*", transition: wrong}
  - {error: "myapp.*", transition: handled}
- id: retry
  type: action
  action:
    function: fails
    retries: {max_attempts: 2, delay: PT0.2S, multiplier: 2, codes: ["myapp.*"]}
- id: crash
  type: action
  action: {function: crash}
  catch: [{error: "*", transition: handled}]
- id: soft
  type: action
  timeout: PT1S
  action: {function: sleep}
  catch: [{error: direktiv.cancels.timeout.soft, transition: handled}]
- {id: unknown, type: error, error: test.unknown, message: 'no case %s', args: ['jq(.case)']}
- {id: wrong, type: noop}
- {id: handled, type: noop}
"#;
    s.server.deploy_flow("errors", flow).await;
    let (status, _, out) = s.server.run_flow("errors", &json!({"case": "catch"})).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["error"]["code"], "myapp.input", "{out}");
    assert!(
        out["error"]["msg"].as_str().unwrap().contains("customerId"),
        "{out}"
    );

    let before = s
        .server
        .get_json("/api/v1/namespaces/demo/invocations?function=fails&limit=1000")
        .await
        .as_array()
        .unwrap()
        .len();
    let (status, id, out) = s.server.run_flow("errors", &json!({"case": "retry"})).await;
    assert_eq!(status, 422, "{out}");
    assert_eq!(out["error"]["code"], "direktiv.retries.exceeded", "{out}");
    let after = s
        .server
        .get_json("/api/v1/namespaces/demo/invocations?function=fails&limit=1000")
        .await
        .as_array()
        .unwrap()
        .len();
    assert_eq!(after - before, 3, "one call and two retries");
    assert!(s.server.instance_log(&id).await.contains("retry 2 of 2"));
    let instance = s.server.instance(&id).await;
    assert_eq!(instance["status"], "failed");
    assert_eq!(instance["error"]["code"], "direktiv.retries.exceeded");

    let (status, _, out) = s.server.run_flow("errors", &json!({"case": "crash"})).await;
    assert_eq!(status, 422, "a crash is not catchable: {out}");
    assert_eq!(out["error"]["code"], "faasbox.function.crashed", "{out}");

    let (status, _, out) = s.server.run_flow("errors", &json!({"case": "soft"})).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        out["error"]["code"], "direktiv.cancels.timeout.soft",
        "{out}"
    );

    let (status, _, out) = s.server.run_flow("errors", &json!({"case": "other"})).await;
    assert_eq!(status, 422, "{out}");
    assert_eq!(out["error"]["code"], "test.unknown");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no case other"),
        "{out}"
    );

    s.server
        .deploy_flow("hard", "timeouts: {kill: PT1S}\nfunctions:\n- {id: sleep, type: knative-namespace, service: sleep}\nstates:\n- id: a\n  type: action\n  action: {function: sleep}\n  catch: [{error: '*', transition: b}]\n- {id: b, type: noop}\n")
        .await;
    let (status, _, out) = s.server.run_flow("hard", &json!({})).await;
    assert_eq!(status, 422, "{out}");
    assert_eq!(
        out["error"]["code"], "direktiv.cancels.timeout.hard",
        "{out}"
    );
}

#[tokio::test]
async fn cancel_stops_the_running_action() {
    let s = setup().await;
    s.server.deploy_flow("slow", "functions:\n- {id: sleep, type: knative-namespace, service: sleep}\nstates:\n- {id: a, type: action, action: {function: sleep}}\n").await;
    let id = s.server.start_flow("slow", &json!({})).await;
    s.server
        .wait_log(&id, "running state 'a'", Duration::from_secs(30))
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let calls = s
            .server
            .get_json("/api/v1/namespaces/demo/invocations?function=sleep")
            .await;
        if calls
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["status"] == "running")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the action never started: {calls}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = s.server.cli_ok(&["flow", "cancel", &id]);
    assert!(out.contains("cancelling"), "{out}");
    let instance = s
        .server
        .wait_instance(
            &id,
            &["cancelled", "failed", "complete"],
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(instance["status"], "cancelled", "{instance}");
    assert_eq!(instance["error"]["code"], "direktiv.cancels.api");
    let calls = s
        .server
        .get_json("/api/v1/namespaces/demo/invocations?function=sleep")
        .await;
    assert_eq!(
        calls[0]["status"], "cancelled",
        "the function's call was cancelled: {calls}"
    );
    let r = s
        .server
        .http
        .post(
            s.server
                .url(&format!("/api/v1/namespaces/demo/instances/{id}/cancel")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        409,
        "an ended instance cannot be cancelled again"
    );
}

#[tokio::test]
async fn states_variables_subflows_foreach_parallel_validate() {
    let s = setup().await;
    s.server
        .deploy_flow(
            "child",
            "functions:\n- {id: echo, type: knative-namespace, service: echo}\nstates:\n- {id: c, type: action, action: {function: echo, input: {doubled: 'jq(.n * 2)'}}, transform: {child: 'jq(.return.doubled)'}}\n",
        )
        .await;
    let flow = r#"functions:
- {id: echo, type: knative-namespace, service: echo}
- {id: fails, type: knative-namespace, service: fails}
- {id: child, type: subflow, workflow: child}
states:
- id: set
  type: setter
  variables:
  - {key: ns-var, scope: namespace, value: 'jq(.n)'}
  - {key: wf-var, scope: workflow, value: {from: workflow}}
  - {key: inst-var, scope: instance, value: only-me}
  transition: get
- id: get
  type: getter
  variables:
  - {key: ns-var, scope: namespace}
  - {key: wf-var, scope: workflow, as: wf}
  - {key: inst-var, scope: instance}
  transition: sub
- id: sub
  type: action
  action: {function: child, input: {n: 'jq(.n)'}}
  transform: {n: 'jq(.n)', var: 'jq(.var)', sub: 'jq(.return.child)'}
  transition: each
- id: each
  type: foreach
  array: 'jq([range(.n) | {i: .}])'
  action: {function: echo, input: {item: 'jq(.i)'}}
  transform: 'jq(. + {each: [.return[].item]} | del(.return))'
  transition: all
- id: all
  type: parallel
  mode: and
  actions:
  - {function: echo, input: {a: 1}}
  - {function: echo, input: {b: 2}}
  transform: 'jq(. + {all: .return} | del(.return))'
  transition: any
- id: any
  type: parallel
  mode: or
  actions:
  - {function: fails}
  - {function: echo, input: {c: 3}}
  transform: 'jq(. + {any: .return} | del(.return))'
  transition: check
- id: check
  type: validate
  schema:
    type: object
    required: [each, all, any]
    properties:
      n: {type: integer, maximum: 5}
"#;
    s.server.deploy_flow("states", flow).await;
    let (status, id, out) = s.server.run_flow("states", &json!({"n": 3})).await;
    assert_eq!(status, 200, "{out}\n{}", s.server.instance_log(&id).await);
    assert_eq!(
        out["var"],
        json!({"ns-var": 3, "wf": {"from": "workflow"}, "inst-var": "only-me"}),
        "{out}"
    );
    assert_eq!(out["sub"], 6, "{out}");
    assert_eq!(out["each"], json!([0, 1, 2]), "{out}");
    assert_eq!(out["all"], json!([{"a": 1}, {"b": 2}]), "{out}");
    assert_eq!(out["any"], json!([null, {"c": 3}]), "{out}");
    let instances = s.server.get_json("/api/v1/namespaces/demo/instances").await;
    assert!(
        instances
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["flow"] == "child" && i["parent"] == id.as_str()),
        "the subflow ran as a child: {instances}"
    );

    // Namespace and workflow variables outlive the instance; instance variables do not.
    s.server
        .deploy_flow(
            "reader",
            "states:\n- id: get\n  type: getter\n  variables:\n  - {key: ns-var, scope: namespace}\n  - {key: wf-var, scope: workflow}\n  - {key: inst-var, scope: instance}\n",
        )
        .await;
    let (status, _, out) = s.server.run_flow("reader", &json!({})).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        out["var"],
        json!({"ns-var": 3, "wf-var": null, "inst-var": null}),
        "workflow variables belong to their flow: {out}"
    );

    let (status, _, out) = s.server.run_flow("states", &json!({"n": 7})).await;
    assert_eq!(status, 422, "{out}");
    assert_eq!(out["error"]["code"], "direktiv.schema.failed", "{out}");
}

#[tokio::test]
async fn the_cli_deploys_runs_lists_and_shows_logs() {
    let s = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hello.yaml");
    std::fs::write(&file, "direktiv_api: workflow/v1\nstates:\n- id: hello\n  type: noop\n  log: 'hello jq(.name)'\n  metadata: {greeting: 'jq(.name)'}\n  transform: {greeting: 'Hello jq(.name)'}\n").unwrap();
    let out = s
        .server
        .cli_ok(&["flow", "deploy", "demo/hello", file.to_str().unwrap()]);
    assert!(out.contains("demo/hello"), "{out}");
    let out = s.server.cli_ok(&[
        "flow",
        "run",
        "demo/hello",
        "--data",
        "{\"name\":\"world\"}",
        "--wait",
    ]);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        json!({"greeting": "Hello world"})
    );
    let out = s.server.cli_ok(&[
        "flow",
        "run",
        "demo/hello",
        "--data",
        "{\"name\":\"again\"}",
    ]);
    let id = out.trim().to_string();
    s.server
        .wait_instance(&id, &["complete"], Duration::from_secs(20))
        .await;
    let out = s.server.cli_ok(&["flow", "logs", &id, "--follow"]);
    assert!(out.contains("hello again"), "{out}");
    let input = dir.path().join("input.json");
    std::fs::write(&input, r#"{"name":"from a file"}"#).unwrap();
    let out = s.server.cli_ok(&[
        "flow",
        "run",
        "demo/hello",
        "--data",
        &format!("@{}", input.display()),
        "--wait",
    ]);
    assert!(out.contains("Hello from a file"), "{out}");
    assert!(s.server.cli_ok(&["flow", "ls", "demo"]).contains("hello"));
    let out = s.server.cli_ok(&["flow", "instances", "demo"]);
    assert!(out.contains(&id) && out.contains("complete"), "{out}");
    let out = s.server.cli_ok(&["flow", "instance", &id]);
    assert!(
        out.contains("METADATA") && out.contains(r#"{"greeting":"again"}"#),
        "{out}"
    );
    let shown = s.server.get_json(&format!("/api/v1/instances/{id}")).await;
    assert_eq!(shown["metadata"], json!({"greeting": "again"}), "{shown}");
    assert!(s
        .server
        .cli_ok(&["flow", "get", "demo/hello"])
        .contains("type: noop"));
    std::fs::write(&file, "states:\n- id: a\n  type: noop\n  transition: b\n").unwrap();
    let refused = s
        .server
        .cli(&["flow", "deploy", "demo/hello", file.to_str().unwrap()]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("line 2, column 3") && err.contains("'b'"),
        "{err}"
    );
    s.server.cli_ok(&["flow", "rm", "demo/hello"]);
    assert!(!s.server.cli_ok(&["flow", "ls", "demo"]).contains("hello"));
}

#[tokio::test]
async fn sigkill_mid_delay_and_mid_action_then_restart_finishes_without_rerunning_finished_states()
{
    let mut s = setup_with_host_loopback().await;
    let recorder = Recorder::start().await;
    let base = format!("http://{}:{}", host_gateway(), recorder.port);
    let flow = format!(
        r#"functions:
- id: sh
  image: alpine
  type: knative-workflow
  cmd: /usr/share/direktiv/direktiv-cmd
states:
- id: first
  type: action
  action:
    function: sh
    input: {{commands: [{{command: "wget -q -O- {base}/first", stop: true}}]}}
  transform: {{first: 'jq(.return[0].Output)'}}
  transition: wait
- id: wait
  type: delay
  duration: PT3S
  transition: second
- id: second
  type: action
  action:
    function: sh
    input: {{commands: [{{command: "wget -q -O- {base}/second-started", stop: true}}, {{command: "sleep 4", stop: true}}, {{command: "wget -q -O- {base}/second", stop: true}}]}}
  transform: {{first: 'jq(.first)', second: 'jq(.return[2].Output)'}}
"#
    );
    s.server.deploy_flow("resume", &flow).await;
    let id = s.server.start_flow("resume", &json!({})).await;
    s.server
        .wait_log(&id, "running state 'wait'", Duration::from_secs(30))
        .await;
    s.server.kill();
    let data_dir = s.server.data_dir.clone();
    let restarted = Server::start_in_with(&data_dir, &[ALLOW_HOST_LOOPBACK]).await;
    restarted
        .wait_log(&id, "running state 'second'", Duration::from_secs(30))
        .await;
    // Killed while the second action's call runs (it has told the recorder it started).
    support::wait_until(Duration::from_secs(60), "the second action's call", || {
        recorder.count("/second-started") >= 1
    })
    .await;
    let mut restarted = restarted;
    restarted.kill();
    let again = Server::start_in_with(&data_dir, &[ALLOW_HOST_LOOPBACK]).await;
    let instance = again
        .wait_instance(&id, &["complete", "failed"], Duration::from_secs(60))
        .await;
    assert_eq!(
        instance["status"],
        "complete",
        "{instance}\n{}",
        again.instance_log(&id).await
    );
    assert_eq!(
        instance["output"],
        json!({"first": "pong", "second": "pong"})
    );
    assert_eq!(instance["states"], json!(["first", "wait", "second"]));
    assert_eq!(
        recorder.count("/first"),
        1,
        "the finished action did not run again: {}",
        recorder.all()
    );
    assert!(recorder.count("/second") >= 1);
    drop(again);
}

#[tokio::test]
async fn a_server_stopped_with_sigterm_mid_delay_resumes_the_instance() {
    let mut server = Server::start().await;
    server.create_namespace("demo").await;
    server
        .deploy_flow("nap", "states:\n- {id: a, type: noop, transform: {a: 1}, transition: nap}\n- {id: nap, type: delay, duration: PT2S, transition: b}\n- {id: b, type: noop, transform: {a: 'jq(.a)', b: 2}}\n")
        .await;
    let id = server.start_flow("nap", &json!({})).await;
    server
        .wait_log(&id, "running state 'nap'", Duration::from_secs(20))
        .await;
    assert!(server.stop(), "the server stopped cleanly");
    let data_dir = server.data_dir.clone();
    let restarted = Server::start_in(&data_dir).await;
    let instance = restarted
        .wait_instance(
            &id,
            &["complete", "failed", "cancelled"],
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(instance["status"], "complete", "{instance}");
    assert_eq!(instance["output"], json!({"a": 1, "b": 2}));
    assert_eq!(instance["states"], json!(["a", "nap", "b"]));
    drop(restarted);
}

#[tokio::test]
async fn knative_global_actions_call_global_services_and_instances_stay_in_their_namespace() {
    let s = setup().await;
    let server = &s.server;
    let spec = json!({"image": "test/function:latest", "envs": {"MODE": "plain"}});
    let r = server
        .http
        .put(server.url("/api/v1/functions/shared"))
        .json(&spec)
        .send()
        .await
        .expect("deploy global service");
    assert!(
        r.status().is_success(),
        "{}",
        r.text().await.unwrap_or_default()
    );
    server
        .deploy_flow(
            "global",
            "functions:\n- {id: shared, type: knative-global, service: shared}\nstates:\n- {id: a, type: action, action: {function: shared, input: {x: 'jq(.x)'}}}\n",
        )
        .await;
    let (status, id, body) = server.run_flow("global", &json!({"x": 41})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["return"]["x"], 41, "{body}");
    assert!(!id.is_empty());

    // Another namespace's token sees neither the flow nor the instance, by path or by id.
    server.create_namespace("other").await;
    let other = support::client_with_token(Some(
        server
            .cli_ok(&["token", "create", "--namespace", "other"])
            .trim(),
    ));
    for path in [
        "/api/v1/namespaces/demo/flows".to_string(),
        "/api/v1/namespaces/demo/flows/global".to_string(),
        format!("/api/v1/namespaces/demo/instances/{id}"),
        format!("/api/v1/instances/{id}"),
        format!("/api/v1/instances/{id}/logs"),
    ] {
        let r = other.get(server.url(&path)).send().await.expect("get");
        assert_eq!(r.status(), 404, "{path}");
    }
    let r = other
        .post(server.url(&format!("/api/v1/instances/{id}/cancel")))
        .send()
        .await
        .expect("cancel");
    assert_eq!(r.status(), 404);
    let r = other
        .post(server.url("/api/v1/namespaces/demo/flows/global/run"))
        .json(&json!({}))
        .send()
        .await
        .expect("run");
    assert_eq!(r.status(), 404);

    // An invoke token of demo runs flows and reads instances but cannot change flows.
    let invoke = support::client_with_token(Some(
        server
            .cli_ok(&["token", "create", "--namespace", "demo", "--role", "invoke"])
            .trim(),
    ));
    let r = invoke
        .post(server.url("/api/v1/namespaces/demo/flows/global/run?wait=true"))
        .json(&json!({"x": 1}))
        .send()
        .await
        .expect("run");
    assert_eq!(r.status(), 200);
    let r = invoke
        .get(server.url(&format!("/api/v1/instances/{id}")))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    let r = invoke
        .put(server.url("/api/v1/namespaces/demo/flows/global"))
        .body("states:\n- {id: a, type: noop}\n")
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 403);
}

/// The instances of flow `flow` in namespace demo.
async fn instances_of(server: &Server, flow: &str) -> Vec<Value> {
    let all = server.get_json("/api/v1/namespaces/demo/instances").await;
    all.as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["flow"] == flow)
        .cloned()
        .collect()
}

#[tokio::test]
async fn sigkill_inside_a_subflow_then_restart_continues_the_same_child() {
    let mut s = setup_with_host_loopback().await;
    let recorder = Recorder::start().await;
    let base = format!("http://{}:{}", host_gateway(), recorder.port);
    let inner = format!(
        r#"functions:
- id: sh
  image: alpine
  type: knative-workflow
  cmd: /usr/share/direktiv/direktiv-cmd
states:
- id: count
  type: action
  action:
    function: sh
    input: {{commands: [{{command: "wget -q -O- {base}/count", stop: true}}]}}
  transform: {{n: 'jq(.n)', counted: 'jq(.return[0].Output)'}}
  transition: nap
- id: nap
  type: delay
  duration: PT3S
  transition: done
- id: done
  type: noop
  transform: {{n: 'jq(.n)', counted: 'jq(.counted)', done: true}}
"#
    );
    s.server.deploy_flow("inner", &inner).await;
    s.server
        .deploy_flow(
            "outer",
            "functions:\n- {id: inner, type: subflow, workflow: inner}\nstates:\n- {id: call, type: action, action: {function: inner, input: {n: 7}}, transform: {child: 'jq(.return)'}}\n",
        )
        .await;
    let id = s.server.start_flow("outer", &json!({})).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let child = loop {
        if let Some(child) = instances_of(&s.server, "inner").await.first() {
            break child["id"].as_str().unwrap().to_string();
        }
        assert!(std::time::Instant::now() < deadline, "no child started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    s.server
        .wait_log(&child, "running state 'nap'", Duration::from_secs(60))
        .await;
    s.server.kill();
    let restarted = Server::start_in_with(&s.server.data_dir, &[ALLOW_HOST_LOOPBACK]).await;
    let instance = restarted
        .wait_instance(&id, &["complete", "failed"], Duration::from_secs(60))
        .await;
    assert_eq!(
        instance["status"],
        "complete",
        "{instance}\n{}",
        restarted.instance_log(&id).await
    );
    assert_eq!(
        instance["output"],
        json!({"child": {"n": 7, "counted": "pong", "done": true}})
    );
    assert_eq!(
        recorder.count("/count"),
        1,
        "the child's finished action did not run again: {}",
        recorder.all()
    );
    let children = instances_of(&restarted, "inner").await;
    assert_eq!(children.len(), 1, "one child, continued: {children:?}");
    let child_instance = restarted.instance(&child).await;
    assert_eq!(child_instance["status"], "complete", "{child_instance}");
    assert_eq!(child_instance["parent"], id.as_str());
    assert_eq!(child_instance["states"], json!(["count", "nap", "done"]));
    assert!(restarted
        .instance_log(&id)
        .await
        .contains(&format!("continuing subflow instance {child}")));
}

/// A flow whose implicit direktiv-cmd function `sh` runs `commands` in state `work`, after
/// an optional delay.
fn cmd_flow(envs: &str, delay: Option<&str>, commands: &[String]) -> String {
    let commands: Vec<String> = commands
        .iter()
        .map(|c| format!("{{command: \"{c}\", stop: true}}"))
        .collect();
    let mut flow = format!(
        "functions:\n- {{id: sh, image: alpine, type: knative-workflow, cmd: /usr/share/direktiv/direktiv-cmd, envs: {envs}}}\nstates:\n"
    );
    if let Some(delay) = delay {
        flow.push_str(&format!(
            "- {{id: nap, type: delay, duration: {delay}, transition: work}}\n"
        ));
    }
    flow.push_str(&format!(
        "- {{id: work, type: action, action: {{function: sh, input: {{commands: [{}]}}}}}}\n",
        commands.join(", ")
    ));
    flow
}

#[tokio::test]
async fn deleting_a_namespace_cancels_its_instances_and_none_resumes() {
    let mut s = setup_with_host_loopback().await;
    let recorder = Recorder::start().await;
    let base = format!("http://{}:{}", host_gateway(), recorder.port);
    let fetch = |path: &str| format!("wget -q -O- {base}/{path}");
    let slow = cmd_flow(
        "{}",
        None,
        &[fetch("started"), "sleep 300".into(), fetch("finished")],
    );
    s.server.deploy_flow("slow", &slow).await;
    let nap = cmd_flow("{}", Some("PT3S"), &[fetch("after-nap")]);
    s.server.deploy_flow("nap", &nap).await;
    let slow_id = s.server.start_flow("slow", &json!({})).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while recorder.count("/started") == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the slow action never started:\n{}",
            s.server.instance_log(&slow_id).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Deleted at once after its delay began: well before the delay ends.
    let nap_id = s.server.start_flow("nap", &json!({})).await;
    s.server
        .wait_log(&nap_id, "running state 'nap'", Duration::from_secs(30))
        .await;

    let r = s.server.delete("/api/v1/namespaces/demo").await;
    assert_eq!(r.status(), 204);
    // The running command got its cancel: its container is done long before `sleep 300`.
    support::wait_containers_gone(
        &s.server.data_dir,
        "demo/flow:slow:sh",
        Duration::from_secs(30),
    )
    .await;

    s.server.kill();
    let restarted = Server::start_in_with(&s.server.data_dir, &[ALLOW_HOST_LOOPBACK]).await;
    for id in [&slow_id, &nap_id] {
        let r = restarted.get(&format!("/api/v1/instances/{id}")).await;
        assert_eq!(r.status(), 404, "instance {id} is gone");
    }
    restarted.create_namespace("demo").await;
    let instances = restarted
        .get_json("/api/v1/namespaces/demo/instances")
        .await;
    assert_eq!(instances, json!([]));
    // Watched until well past the nap's end (4 s): neither instance went on, before or after
    // the restart.
    support::assert_stays(
        Duration::from_secs(4),
        "no call after the namespace's deletion",
        || async {
            (
                recorder.count("/finished"),
                recorder.count("/after-nap"),
                recorder.all(),
            )
        },
        |(finished, after_nap, _)| *finished == 0 && *after_nap == 0,
    )
    .await;
    assert!(container_functions_of(&restarted, "demo/").is_empty());
}

/// The functions of `prefix` that have containers now.
fn container_functions_of(server: &Server, prefix: &str) -> Vec<String> {
    support::container_functions(&server.data_dir)
        .into_iter()
        .filter(|f| f.starts_with(prefix))
        .collect()
}

#[tokio::test]
async fn deleting_a_flow_retires_its_functions_and_its_running_instance_finishes() {
    let s = setup_with_host_loopback().await;
    let recorder = Recorder::start().await;
    let base = format!("http://{}:{}", host_gateway(), recorder.port);
    let flow = format!(
        r#"functions:
- {{id: sh, image: alpine, type: knative-workflow, cmd: /usr/share/direktiv/direktiv-cmd}}
states:
- {{id: one, type: action, action: {{function: sh, input: {{commands: [{{command: "wget -q -O- {base}/one", stop: true}}]}}}}, transform: {{one: 'jq(.return[0].Output)'}}, transition: nap}}
- {{id: nap, type: delay, duration: PT12S, transition: two}}
- {{id: two, type: action, action: {{function: sh, input: {{commands: [{{command: "wget -q -O- {base}/two", stop: true}}]}}}}, transform: {{one: 'jq(.one)', two: 'jq(.return[0].Output)'}}}}
"#
    );
    s.server.deploy_flow("twice", &flow).await;
    let id = s.server.start_flow("twice", &json!({})).await;
    s.server
        .wait_log(&id, "running state 'nap'", Duration::from_secs(60))
        .await;
    let warm = container_functions_of(&s.server, "demo/flow:twice:");
    assert_eq!(
        warm,
        ["demo/flow:twice:sh"],
        "the first action's instance is warm"
    );

    let r = s.server.delete("/api/v1/namespaces/demo/flows/twice").await;
    assert_eq!(r.status(), 204);
    // Its idle instance stops now, not after the 5 minutes of idle timeout.
    support::wait_containers_gone(
        &s.server.data_dir,
        "demo/flow:twice:sh",
        Duration::from_secs(20),
    )
    .await;
    let r = s.server.get("/api/v1/namespaces/demo/flows/twice").await;
    assert_eq!(r.status(), 404);
    // The running instance goes on with the flow it started with.
    let instance = s
        .server
        .wait_instance(&id, &["complete", "failed"], Duration::from_secs(60))
        .await;
    assert_eq!(instance["status"], "complete", "{instance}");
    assert_eq!(instance["output"], json!({"one": "pong", "two": "pong"}));
    assert_eq!(recorder.count("/one"), 1);
    assert_eq!(recorder.count("/two"), 1);
}

#[tokio::test]
async fn redeploying_a_flow_with_a_changed_function_retires_its_old_instances() {
    let s = setup().await;
    let env = |v: &str| cmd_flow(&format!("{{V: {v}}}"), None, &["env".to_string()]);
    s.server.deploy_flow("re", &env("one")).await;
    let (status, _, out) = s.server.run_flow("re", &json!({})).await;
    assert_eq!(status, 200, "{out}");
    assert!(
        out["return"][0]["Output"]
            .as_str()
            .unwrap()
            .contains("V=one"),
        "{out}"
    );
    assert_eq!(
        container_functions_of(&s.server, "demo/flow:re:"),
        ["demo/flow:re:sh"]
    );
    s.server.deploy_flow("re", &env("two")).await;
    support::wait_containers_gone(
        &s.server.data_dir,
        "demo/flow:re:sh",
        Duration::from_secs(20),
    )
    .await;
    let (status, _, out) = s.server.run_flow("re", &json!({})).await;
    assert_eq!(status, 200, "{out}");
    assert!(
        out["return"][0]["Output"]
            .as_str()
            .unwrap()
            .contains("V=two"),
        "{out}"
    );
}

#[tokio::test]
async fn an_async_subflow_interrupted_by_a_kill_is_resumed_on_its_own() {
    let mut server = Server::start().await;
    server.create_namespace("demo").await;
    server
        .deploy_flow(
            "later",
            "states:\n- {id: a, type: noop, transition: nap}\n- {id: nap, type: delay, duration: PT3S, transition: done}\n- {id: done, type: noop, transform: {finished: true}}\n",
        )
        .await;
    server
        .deploy_flow(
            "fire-and-forget",
            "functions:\n- {id: later, type: subflow, workflow: later}\nstates:\n- {id: go, type: action, async: true, action: {function: later}}\n",
        )
        .await;
    let (status, parent, out) = server.run_flow("fire-and-forget", &json!({})).await;
    assert_eq!(status, 200, "the parent does not wait: {out}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let child = loop {
        if let Some(child) = instances_of(&server, "later").await.first() {
            break child.clone();
        }
        assert!(std::time::Instant::now() < deadline, "no subflow started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(child.get("parent").is_none(), "on its own: {child}");
    let child = child["id"].as_str().unwrap().to_string();
    assert!(server.instance_log(&parent).await.contains(&child));
    server
        .wait_log(&child, "running state 'nap'", Duration::from_secs(30))
        .await;
    server.kill();
    let restarted = Server::start_in(&server.data_dir).await;
    let child = restarted
        .wait_instance(
            &child,
            &["complete", "failed", "cancelled"],
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(child["status"], "complete", "{child}");
    assert_eq!(child["output"]["finished"], true, "{child}");
}

#[tokio::test]
async fn a_resumed_parent_that_times_out_cancels_its_subflow() {
    let mut server = Server::start().await;
    server.create_namespace("demo").await;
    server
        .deploy_flow(
            "sleepy",
            "states:\n- {id: a, type: noop, transition: nap}\n- {id: nap, type: delay, duration: PT60S}\n",
        )
        .await;
    server
        .deploy_flow(
            "impatient",
            "timeouts: {interrupt: PT4S}\nfunctions:\n- {id: sleepy, type: subflow, workflow: sleepy}\nstates:\n- {id: call, type: action, action: {function: sleepy}}\n",
        )
        .await;
    let id = server.start_flow("impatient", &json!({})).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let child = loop {
        if let Some(child) = instances_of(&server, "sleepy").await.first() {
            break child["id"].as_str().unwrap().to_string();
        }
        assert!(std::time::Instant::now() < deadline, "no child started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    server
        .wait_log(&child, "running state 'nap'", Duration::from_secs(30))
        .await;
    server.kill();
    // Down past the parent's interrupt timeout: resumed, it times out before its call.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let restarted = Server::start_in(&server.data_dir).await;
    let parent = restarted
        .wait_instance(&id, &["complete", "failed"], Duration::from_secs(30))
        .await;
    assert_eq!(parent["status"], "failed", "{parent}");
    assert_eq!(parent["error"]["code"], "direktiv.cancels.timeout.soft");
    let child = restarted
        .wait_instance(
            &child,
            &["complete", "failed", "cancelled"],
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(child["status"], "cancelled", "{child}");
}

#[tokio::test]
async fn redeploying_a_flow_stops_instances_whose_image_cmd_or_size_changed_only() {
    let s = setup().await;
    let query = rootfs_query();
    let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let copy = images::build(TEST_FUNCTION);
    let r = s
        .server
        .import(&copy.rootfs_tar, "test/copy:latest", &query)
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    let flow = |function: &str, note: &str| {
        format!(
            "functions:\n- {{id: f, type: knative-workflow, envs: {{MODE: plain}}, {function}}}\nstates:\n- {{id: a, type: action, action: {{function: f, input: {{n: 1}}}}, transform: {{out: 'jq(.return)', note: {note}}}}}\n"
        )
    };
    let run = |note: &'static str| {
        let server = &s.server;
        async move {
            let (status, _, out) = server.run_flow("re", &json!({})).await;
            assert_eq!(status, 200, "{out}");
            assert_eq!(out, json!({"out": {"n": 1}, "note": note}));
        }
    };
    let name = "demo/flow:re:f";
    let pid = || support::container_pid(&s.server.data_dir, name);
    s.server
        .deploy_flow("re", &flow("image: test/function:latest", "first"))
        .await;
    run("first").await;
    let first = pid().expect("the flow's function runs");

    // A state changed, the function not: its instance goes on serving.
    s.server
        .deploy_flow("re", &flow("image: test/function:latest", "second"))
        .await;
    run("second").await;
    assert_eq!(
        pid(),
        Some(first),
        "an unchanged function's instance was replaced"
    );

    // Its size, its image, its cmd changed: each time the old instance stops.
    let mut old = first;
    for (function, note) in [
        ("image: test/function:latest, size: medium", "sized"),
        ("image: test/copy:latest, size: medium", "copied"),
        (
            "image: test/copy:latest, size: medium, cmd: /bin/busybox httpd -f -p 8080 -h /www",
            "commanded",
        ),
    ] {
        s.server.deploy_flow("re", &flow(function, note)).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while pid() == Some(old) {
            assert!(
                std::time::Instant::now() < deadline,
                "{function}: the old instance still runs"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        run(note).await;
        old = pid().expect("the changed function runs");
    }
}
