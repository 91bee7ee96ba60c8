//! The agent binary with a real HTTP function (busybox httpd + a CGI script), driven over its
//! Unix socket the way the platform drives it.

mod support;

use std::time::Duration;

use bytes::Bytes;
use faasbox_proto::{InvokeStatus, LogStream, CODE_CONTAINER_FAILED};
use http_body_util::Full;
use hyper::{Request, StatusCode};
use support::{assert_path_gone, lines_of, Options, TestAgent, DEADLINE};

#[tokio::test(flavor = "multi_thread")]
async fn ready_and_outcome_mapping() {
    let agent = TestAgent::start().await;
    let (status, report) = agent.ready().await;
    assert_eq!(status, StatusCode::OK, "{report:?}");
    assert!(report.ready);
    // The function's environment is the agent's; startup output is buffered (and reported).
    assert_eq!(
        lines_of(&report.logs, LogStream::Stdout),
        ["booting mark=xyz"]
    );
    // Ready again: the fast path.
    assert_eq!(agent.ready().await.0, StatusCode::OK);

    // JSON passes through verbatim, unicode included; the startup lines go to the first call.
    let input = "{\"greeting\": \"grüß dich ✓\", \"n\": [1, 2.50]}";
    let outcome = agent.invoke("echo-1", input).await;
    assert_eq!(outcome.status, InvokeStatus::Ok);
    assert_eq!(outcome.output.as_ref().unwrap().get(), input);
    assert_eq!(
        lines_of(&outcome.logs, LogStream::Stdout),
        ["booting mark=xyz"]
    );
    // ... and only to the first.
    let outcome = agent.invoke("echo-2", "[]").await;
    assert!(lines_of(&outcome.logs, LogStream::Stdout).is_empty());

    // An empty answer is null: the agent writes `"output":null`, which serde reads back as
    // `None` (an ok outcome without output means null).
    let request = Request::post("http://agent/v1/invoke")
        .header("faasbox-action-id", "echo-3")
        .header("faasbox-deadline", DEADLINE)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, body) = agent.request(request).await;
    assert_eq!(status, StatusCode::OK);
    let body = String::from_utf8(body.to_vec()).unwrap();
    assert!(
        body.starts_with(r#"{"status":"ok","output":null,"#),
        "{body}"
    );

    let outcome = agent.invoke("error-1", "{}").await;
    assert_eq!(outcome.status, InvokeStatus::Error);
    assert_eq!(outcome.code.as_deref(), Some("app.bad"));
    assert_eq!(outcome.message.as_deref(), Some("it broke"));
    assert!(outcome.output.is_none());

    let outcome = agent.invoke("crash-1", "{}").await;
    assert_eq!(outcome.status, InvokeStatus::Crash);
    assert_eq!(outcome.code, None);
    assert_eq!(outcome.message.as_deref(), Some("only a message"));

    let outcome = agent.invoke("fail-1", "{}").await;
    assert_eq!(outcome.status, InvokeStatus::Error);
    assert_eq!(outcome.code.as_deref(), Some(CODE_CONTAINER_FAILED));
    assert_eq!(
        outcome.message.as_deref(),
        Some("function answered HTTP 500: boom")
    );

    let outcome = agent.invoke("text-1", "{}").await;
    assert_eq!(outcome.status, InvokeStatus::Ok);
    assert_eq!(outcome.output.unwrap().get(), "\"aGVsbG8sIHdvcmxk\"");
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_temp_dir_and_large_input() {
    let agent = TestAgent::start().await;
    let outcome = agent.invoke("env-1", "{}").await;
    assert_eq!(outcome.status, InvokeStatus::Ok, "{outcome:?}");
    let output: serde_json::Value = serde_json::from_str(outcome.output.unwrap().get()).unwrap();
    let temp_dir = agent.temp_root.join("env-1");
    assert_eq!(output["tempdir"], temp_dir.display().to_string());
    assert_eq!(output["deadline"], DEADLINE);
    assert_eq!(output["content_type"], "application/json");
    assert_eq!(output["writable"], true);
    assert_path_gone(&temp_dir);

    // 6 MiB in and out.
    let big = format!("\"{}\"", "x".repeat(6 * 1024 * 1024));
    let outcome = agent.invoke("echo-big", big.clone()).await;
    assert_eq!(outcome.status, InvokeStatus::Ok);
    assert_eq!(outcome.output.unwrap().get().len(), big.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_calls_get_their_own_logs() {
    let agent = std::sync::Arc::new(TestAgent::start().await);
    assert_eq!(agent.ready().await.0, StatusCode::OK);
    let calls = (0..8).map(|i| {
        let agent = agent.clone();
        tokio::spawn(async move {
            let aid = format!("log-{i}");
            let outcome = agent.invoke(&aid, "{}").await;
            (aid, outcome)
        })
    });
    for call in calls.collect::<Vec<_>>() {
        let (aid, outcome) = call.await.unwrap();
        assert_eq!(outcome.status, InvokeStatus::Ok, "{outcome:?}");
        assert_eq!(
            outcome.output.as_ref().unwrap().get(),
            format!("{{\"aid\":\"{aid}\"}}")
        );
        assert_eq!(
            lines_of(&outcome.logs, LogStream::Function),
            [
                format!("get line of {aid}!"),
                format!("post line of {aid}"),
                format!("second post line of {aid}"),
            ],
            "{aid}"
        );
        // Output written before the answer is attributed to the call (other calls in flight
        // get it too).
        let stderr = lines_of(&outcome.logs, LogStream::Stderr);
        assert!(
            stderr.contains(&format!("stderr of {aid}").as_str()),
            "{aid}: {stderr:?}"
        );
        assert!(
            stderr.contains(&format!("late stderr of {aid}").as_str()),
            "{aid}: {stderr:?}"
        );
    }

    // A line for an unknown call waits for the next call.
    let outcome = agent.invoke("stray-1", "{}").await;
    assert_eq!(outcome.status, InvokeStatus::Ok);
    assert!(lines_of(&outcome.logs, LogStream::Function).is_empty());
    let outcome = agent.invoke("echo-after-stray", "{}").await;
    assert_eq!(lines_of(&outcome.logs, LogStream::Function), ["stray line"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_sends_delete_and_aborts_the_call() {
    let agent = std::sync::Arc::new(TestAgent::start().await);
    assert_eq!(agent.ready().await.0, StatusCode::OK);
    let call = {
        let agent = agent.clone();
        tokio::spawn(async move { agent.invoke("slow-1", "{}").await })
    };
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while agent.state_lines("started").is_empty() {
        if call.is_finished() {
            panic!("slow call ended early: {:?}", call.await.unwrap());
        }
        assert!(std::time::Instant::now() < until, "slow call never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let report = agent.cancel("slow-1").await;
    assert_eq!(agent.state_lines("deleted"), ["slow-1"]);
    assert!(
        lines_of(&report.logs, LogStream::Stderr).contains(&"slow call waiting"),
        "{report:?}"
    );
    let outcome = call.await.unwrap();
    assert_eq!(outcome.status, InvokeStatus::Crash);
    assert_eq!(outcome.message.as_deref(), Some("cancelled"));
    assert_path_gone(&agent.temp_root.join("slow-1"));
    // The function saw the DELETE and ended the call on its side too.
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while agent.state_lines("finished").is_empty() {
        assert!(
            std::time::Instant::now() < until,
            "slow call never finished"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Cancelling a call that is not in flight is harmless; the instance still works.
    assert!(agent.cancel("slow-1").await.logs.is_empty());
    assert_eq!(agent.state_lines("deleted"), ["slow-1"]);
    let outcome = agent.invoke("echo-after-cancel", "1").await;
    assert_eq!(outcome.output.unwrap().get(), "1");
}

#[tokio::test(flavor = "multi_thread")]
async fn deadline_sends_delete_and_ends_as_a_timeout() {
    let agent = TestAgent::start().await;
    assert_eq!(agent.ready().await.0, StatusCode::OK);
    let started = std::time::Instant::now();
    let outcome = agent
        .invoke_until(
            "slow-late",
            &support::deadline_in(Duration::from_millis(1500)),
            "{}",
        )
        .await;
    // Ten times the 1.5 s deadline (the function itself would run 30 s).
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(outcome.status, InvokeStatus::Timeout, "{outcome:?}");
    let message = outcome.message.unwrap();
    assert!(
        message.starts_with("the function had not answered at the call's deadline"),
        "{message}"
    );
    // The function got its DELETE, and what it printed is the call's log.
    assert_eq!(agent.state_lines("deleted"), ["slow-late"]);
    assert!(
        lines_of(&outcome.logs, LogStream::Stderr).contains(&"slow call waiting"),
        "{:?}",
        outcome.logs
    );
    assert_path_gone(&agent.temp_root.join("slow-late"));
    // A call whose deadline has passed already ends at once, the same way.
    let outcome = agent
        .invoke_until("slow-past", "2001-01-01T00:00:00Z", "{}")
        .await;
    assert_eq!(outcome.status, InvokeStatus::Timeout, "{outcome:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn function_killed_mid_call() {
    let agent = TestAgent::start().await;
    assert_eq!(agent.ready().await.0, StatusCode::OK);
    let outcome = agent.invoke("die-1", "{}").await;
    assert_eq!(outcome.status, InvokeStatus::Crash);
    let message = outcome.message.unwrap();
    assert!(
        message.contains("killed by signal 9 (SIGKILL)"),
        "{message}"
    );
    assert!(message.contains("out of memory"), "{message}");
    assert!(lines_of(&outcome.logs, LogStream::Stderr).contains(&"dying"));

    let (status, report) = agent.ready().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(!report.ready);
    assert!(report.error.unwrap().contains("SIGKILL"));
    let outcome = agent.invoke("echo-late", "{}").await;
    assert_eq!(outcome.status, InvokeStatus::Crash);
    assert!(outcome.message.unwrap().contains("SIGKILL"));
}

#[tokio::test(flavor = "multi_thread")]
async fn function_exit_fails_ready_and_invoke() {
    let agent = TestAgent::start_with(Options {
        command: Some(vec![
            "/bin/busybox".into(),
            "sh".into(),
            "-c".into(),
            "echo starting; echo oops >&2; exit 3".into(),
        ]),
        ..Options::default()
    })
    .await;
    let (status, report) = agent.ready().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(!report.ready);
    assert_eq!(
        report.error.as_deref(),
        Some("function process exited with status 3")
    );
    assert_eq!(lines_of(&report.logs, LogStream::Stdout), ["starting"]);
    assert_eq!(lines_of(&report.logs, LogStream::Stderr), ["oops"]);
    assert_eq!(
        lines_of(&report.logs, LogStream::Agent),
        ["function process exited with status 3"]
    );
    let outcome = agent.invoke("echo-1", "{}").await;
    assert_eq!(outcome.status, InvokeStatus::Crash);
    assert_eq!(
        outcome.message.as_deref(),
        Some("function process exited with status 3")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn function_that_cannot_start() {
    let agent = TestAgent::start_with(Options {
        command: Some(vec!["/nonexistent/function".into()]),
        ..Options::default()
    })
    .await;
    let (status, report) = agent.ready().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let error = report.error.unwrap();
    assert!(
        error.starts_with("cannot start the function process")
            && error.contains("/nonexistent/function"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ready_times_out() {
    let agent = TestAgent::start_with(Options {
        command: Some(vec!["/bin/busybox".into(), "sleep".into(), "30".into()]),
        ready_timeout_ms: 300,
        ..Options::default()
    })
    .await;
    let started = std::time::Instant::now();
    let (status, report) = agent.ready().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() < Duration::from_secs(5));
    let error = report.error.unwrap();
    assert!(error.contains("within 300 ms"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn function_runs_as_user_in_workdir_with_oom_score_reset() {
    if !nix::unistd::Uid::effective().is_root() {
        faasbox_test_registry::cannot_run("switching users needs root");
        return;
    }
    let agent = TestAgent::start_with(Options {
        command: Some(vec![
            "/bin/busybox".into(),
            "sh".into(),
            "-c".into(),
            "echo uid=$(/bin/busybox id -u) groups=$(/bin/busybox id -G) cwd=$(pwd) oom=$(cat /proc/self/oom_score_adj); exit 0"
                .into(),
        ]),
        user: Some(serde_json::json!({"uid": 65534, "gid": 65533, "additional_gids": [4242]})),
        workdir: Some("/usr".into()),
        ..Options::default()
    })
    .await;
    let (_, report) = agent.ready().await;
    assert_eq!(
        lines_of(&report.logs, LogStream::Stdout),
        ["uid=65534 groups=65533 4242 cwd=/usr oom=1000"],
        "{report:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn log_endpoint_and_protocol_errors() {
    let agent = TestAgent::start().await;
    assert_eq!(agent.ready().await.0, StatusCode::OK);

    // The log endpoint, as the function sees it.
    let log_request = |method: &str, path: &str| {
        let stream = std::net::TcpStream::connect(("127.0.0.1", agent.log_port)).unwrap();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
        );
        use std::io::{Read, Write};
        let mut stream = stream;
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    };
    assert!(log_request("GET", "/var/x").starts_with("HTTP/1.1 501"));
    assert!(log_request("GET", "/nothing").starts_with("HTTP/1.1 404"));
    assert!(log_request("POST", "/log?aid=unknown").starts_with("HTTP/1.1 200"));
    assert!(log_request("GET", "/log?log=no+aid").starts_with("HTTP/1.1 200"));
    let outcome = agent.invoke("echo-1", "{}").await;
    assert_eq!(
        lines_of(&outcome.logs, LogStream::Function),
        ["hello", "no aid"]
    );

    // Malformed platform requests.
    let invoke = |aid: Option<&str>, deadline: Option<&str>| {
        let mut request = Request::post("http://agent/v1/invoke");
        if let Some(aid) = aid {
            request = request.header("faasbox-action-id", aid);
        }
        if let Some(deadline) = deadline {
            request = request.header("faasbox-deadline", deadline);
        }
        request.body(Full::new(Bytes::from_static(b"{}"))).unwrap()
    };
    for request in [
        invoke(None, Some(DEADLINE)),
        invoke(Some("echo-1"), None),
        invoke(Some("echo-1"), Some("tomorrow")),
        invoke(Some("../etc"), Some(DEADLINE)),
    ] {
        assert_eq!(agent.request(request).await.0, StatusCode::BAD_REQUEST);
    }
    let get = |path: &str| {
        Request::get(format!("http://agent{path}"))
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    assert_eq!(
        agent.request(get("/v2/nothing")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        agent.request(get("/v1/invoke")).await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    let cancel = Request::post("http://agent/v1/cancel")
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(agent.request(cancel).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_is_forwarded_and_the_agent_follows() {
    let mut agent = TestAgent::start().await;
    assert_eq!(agent.ready().await.0, StatusCode::OK);
    let status = agent.stop().expect("agent exited after SIGTERM");
    // busybox httpd dies of the SIGTERM; the agent exits 128 + 15.
    assert_eq!(status.code(), Some(143));
}

#[test]
fn direktiv_cmd_explains_itself() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("direktiv-cmd");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_faasbox-agent"), &link).unwrap();
    let output = std::process::Command::new(&link).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("direktiv-cmd runs under faasbox's agent"),
        "{stderr}"
    );
}
