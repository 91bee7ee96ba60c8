//! The agent binary speaking the cmd contract (direktiv-cmd), driven over its Unix socket the way
//! the platform drives it: the seed's examples, failures, suppression, logs, temp dirs,
//! deadlines, cancels, concurrent calls and a running call's lines read while it runs.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use faasbox_proto::{InvokeOutcome, InvokeStatus, LogStream, LogsReport, CODE_CMD_EXECUTION};
use serde_json::json;
use support::{assert_path_gone, deadline_in, lines_of, Options, TestAgent};

async fn cmd_agent() -> TestAgent {
    support::cmd_agent(Options::default()).await
}

use support::ok_output as output;

fn all_lines(outcome: &InvokeOutcome) -> Vec<&str> {
    outcome.logs.iter().map(|l| l.line.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_examples() {
    let agent = cmd_agent().await;

    // The first example of the seed, as written; then the command's env read by a shell (the
    // `$` escaped, as Direktiv's parser would expand it from the container's environment).
    let input = json!({"data": {"commands": [
        {"command": "echo -n \"hello\"", "env": [{"name": "MYENV", "value": "MYVALUE"}], "stop": true},
        {"command": "/bin/busybox sh -c 'echo -n \\$MYENV'", "env": [{"name": "MYENV", "value": "MYVALUE"}]},
    ]}});
    let outcome = agent.invoke("seed-1", input.to_string()).await;
    assert_eq!(
        output(&outcome),
        json!([{"Error": "", "Output": "hello"}, {"Error": "", "Output": "MYVALUE"}])
    );
    // The raw output keeps Direktiv's field order.
    assert!(outcome
        .output
        .as_ref()
        .unwrap()
        .get()
        .starts_with(r#"[{"Error":"","Output":"hello"}"#));
    let lines = all_lines(&outcome);
    assert!(lines.contains(&"running 2 commands"), "{lines:?}");
    assert!(
        lines.contains(&"running command 'echo -n \"hello\"'"),
        "{lines:?}"
    );
    assert_eq!(
        lines_of(&outcome.logs, LogStream::Stdout),
        ["hello", "MYVALUE"]
    );

    // The second example: a file with permission 0755 (as YAML 1.2 / JSON give it: 755), run.
    let input = json!({
        "files": [{"name": "script.sh", "content": "#!/bin/sh\n\necho -n \"HELLO WORLD\"\n", "permission": 755}],
        "data": {"commands": [{"command": "./script.sh"}]}
    });
    let outcome = agent.invoke("seed-2", input.to_string()).await;
    assert_eq!(
        output(&outcome),
        json!([{"Error": "", "Output": "HELLO WORLD"}])
    );
    // A string permission works too; without the execute bit the script cannot run.
    let input = json!({
        "files": [
            {"name": "a.sh", "content": "#!/bin/sh\necho -n a", "permission": "0700"},
            {"name": "b.sh", "content": "#!/bin/sh\necho -n b"}
        ],
        "commands": [{"command": "./a.sh"}, {"command": "./b.sh"}]
    });
    let outcome = agent.invoke("seed-3", input.to_string()).await;
    assert_eq!(
        output(&outcome),
        json!([
            {"Error": "", "Output": "a"},
            {"Error": "fork/exec ./b.sh: permission denied", "Output": ""}
        ])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn json_output_is_embedded_and_both_shapes_work() {
    let agent = cmd_agent().await;
    let commands = json!([
        {"command": "echo '{\"a\": [1, 2], \"b\": \"ü\"}'"},
        {"command": "echo 42"},
        {"command": "echo not json"},
    ]);
    let expected = json!([
        {"Error": "", "Output": {"a": [1, 2], "b": "ü"}},
        {"Error": "", "Output": 42},
        {"Error": "", "Output": "not json\n"},
    ]);
    let direktiv = json!({"data": {"commands": commands}});
    let top_level = json!({"commands": commands});
    for (aid, input) in [("shape-1", direktiv), ("shape-2", top_level)] {
        let outcome = agent.invoke(aid, input.to_string()).await;
        assert_eq!(output(&outcome), expected, "{aid}");
    }
    // Nothing to do is an empty array.
    for (aid, input) in [("empty-1", ""), ("empty-2", "{}")] {
        let outcome = agent.invoke(aid, input).await;
        assert_eq!(output(&outcome), json!([]));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn suppression() {
    let agent = cmd_agent().await;
    let input = json!({"commands": [
        {"command": "echo s3cr3t-arg", "suppress_command": true},
        {"command": "echo hidden-output", "suppress_output": true},
        {"command": "sh -c 'echo both-hidden; exit 2'", "suppress_command": true, "suppress_output": true},
    ]});
    let outcome = agent.invoke("suppress-1", input.to_string()).await;
    // Suppressed output stays in the result; only the log goes without it.
    assert_eq!(
        output(&outcome),
        json!([
            {"Error": "", "Output": "s3cr3t-arg\n"},
            {"Error": "", "Output": "hidden-output\n"},
            {"Error": "exit status 2", "Output": "both-hidden\n"},
        ])
    );
    let lines = all_lines(&outcome);
    assert!(lines.contains(&"running command 0"), "{lines:?}");
    assert!(lines.contains(&"running command 2"), "{lines:?}");
    assert!(
        lines.contains(&"running command 'echo hidden-output'"),
        "{lines:?}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("echo s3cr3t-arg") || l.contains("both-hidden")),
        "{lines:?}"
    );
    assert_eq!(lines_of(&outcome.logs, LogStream::Stdout), ["s3cr3t-arg"]);
    assert!(lines.contains(&"exit status 2"));
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_continue_unless_stop() {
    let agent = cmd_agent().await;
    let input = json!({"commands": [
        {"command": "false"},
        {"command": "no-such-command-here --flag"},
        {"command": "echo after"},
        {"command": "sh -c \"echo partial; exit 3\"", "stop": true},
        {"command": "echo never"},
    ]});
    let outcome = agent.invoke("stop-1", input.to_string()).await;
    assert_eq!(outcome.status, InvokeStatus::Error, "{outcome:?}");
    assert_eq!(outcome.code.as_deref(), Some(CODE_CMD_EXECUTION));
    let lines = all_lines(&outcome);
    assert_eq!(
        outcome.message.as_deref(),
        Some("handler function error: stopped because command 3 failed")
    );
    assert!(
        lines.contains(&"stopping execution due to error in command 3"),
        "{lines:?}"
    );
    assert!(lines.contains(&"exit status 1"), "{lines:?}");
    assert!(
        lines.contains(&"exec: \"no-such-command-here\": executable file not found in $PATH"),
        "{lines:?}"
    );
    assert_eq!(
        lines_of(&outcome.logs, LogStream::Stdout),
        ["after", "partial"]
    );
    assert!(!lines
        .iter()
        .any(|l| l.contains("never") && !l.contains("running")));

    // With the command suppressed, the message names it by number.
    let input = json!({"commands": [
        {"command": "echo fine"},
        {"command": "false --password=hunter2", "stop": true, "suppress_command": true},
    ]});
    let outcome = agent.invoke("stop-2", input.to_string()).await;
    assert_eq!(outcome.code.as_deref(), Some(CODE_CMD_EXECUTION));
    assert_eq!(
        outcome.message.as_deref(),
        Some("handler function error: stopped because command 1 failed")
    );
    assert!(!all_lines(&outcome).iter().any(|l| l.contains("hunter2")));

    // Bad input fails the call the same way.
    let outcome = agent.invoke("bad-1", "{\"commands\": 5}").await;
    assert_eq!(outcome.status, InvokeStatus::Error);
    assert_eq!(outcome.code.as_deref(), Some(CODE_CMD_EXECUTION));
    assert!(outcome
        .message
        .unwrap()
        .starts_with("failed to unmarshal request payload"));
    let input = json!({"files": [{"name": "../escape", "content": "x"}], "commands": []});
    let outcome = agent.invoke("bad-2", input.to_string()).await;
    assert_eq!(outcome.code.as_deref(), Some(CODE_CMD_EXECUTION));
    assert!(outcome
        .message
        .unwrap()
        .starts_with("failed to prepare file: ../escape"));
}

#[tokio::test(flavor = "multi_thread")]
async fn temp_dir_is_home_and_removed() {
    let agent = cmd_agent().await;
    let input = json!({"commands": [
        {"command": "pwd"},
        {"command": "sh -c 'echo -n \\$HOME'"},
        {"command": "sh -c 'echo -n \\$PWD'"},
        {"command": "sh -c 'echo -n \\$FAASBOX_TEST_MARK'"},
        {"command": "sh -c 'echo -n \\$HOME'", "envs": [{"name": "HOME", "value": "/elsewhere"}]},
    ]});
    let outcome = agent.invoke("home-1", input.to_string()).await;
    let dir = agent.temp_root.join("home-1").display().to_string();
    assert_eq!(
        output(&outcome),
        json!([
            {"Error": "", "Output": format!("{dir}\n")},
            {"Error": "", "Output": dir},
            {"Error": "", "Output": dir},
            {"Error": "", "Output": "xyz"},
            {"Error": "", "Output": "/elsewhere"},
        ])
    );
    assert_path_gone(&agent.temp_root.join("home-1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_as_the_configured_user() {
    if !nix::unistd::Uid::effective().is_root() {
        faasbox_test_registry::cannot_run("switching users needs root");
        return;
    }
    let agent = support::cmd_agent(Options {
        user: Some(json!({"uid": 65534, "gid": 65534})),
        ..Options::default()
    })
    .await;
    let input = json!({
        "files": [{"name": "private.sh", "content": "#!/bin/sh\necho -n \"$(id -u):$(id -g)\"", "permission": "0700"}],
        "commands": [{"command": "./private.sh"}, {"command": "touch written-by-user"}]
    });
    let outcome = agent.invoke("user-1", input.to_string()).await;
    assert_eq!(
        output(&outcome),
        json!([{"Error": "", "Output": "65534:65534"}, {"Error": "", "Output": ""}])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deadline_kills_the_command() {
    let agent = cmd_agent().await;
    let input = json!({"commands": [
        {"command": "echo before"},
        {"command": "sleep 30"},
        {"command": "echo never"},
    ]});
    let started = Instant::now();
    let outcome = agent
        .invoke_until(
            "late-1",
            &deadline_in(Duration::from_millis(1500)),
            input.to_string(),
        )
        .await;
    // Ten times the 1.5 s deadline (the function itself would run 30 s).
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(outcome.status, InvokeStatus::Timeout, "{outcome:?}");
    let message = outcome.message.unwrap();
    assert!(
        message.starts_with("command 'sleep 30' was still running"),
        "{message}"
    );
    assert_eq!(lines_of(&outcome.logs, LogStream::Stdout), ["before"]);
    assert_path_gone(&agent.temp_root.join("late-1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_kills_the_running_command() {
    let agent = Arc::new(cmd_agent().await);
    let pid_file = agent.state.join("pid");
    let input = json!({"commands": [
        {"command": format!("sh -c 'echo running; echo \\$\\$ > {}; exec sleep 30'", pid_file.display())},
    ]});
    let call = {
        let agent = Arc::clone(&agent);
        tokio::spawn(async move { agent.invoke("cancel-1", input.to_string()).await })
    };
    let until = Instant::now() + Duration::from_secs(10);
    let pid = loop {
        if let Ok(pid) = std::fs::read_to_string(&pid_file) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                break pid;
            }
        }
        assert!(Instant::now() < until, "the command never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let report = agent.cancel("cancel-1").await;
    assert!(
        lines_of(&report.logs, LogStream::Stdout).contains(&"running"),
        "{report:?}"
    );
    let outcome = call.await.unwrap();
    assert_eq!(outcome.status, InvokeStatus::Crash);
    assert_eq!(outcome.message.as_deref(), Some("cancelled"));
    let until = Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            Instant::now() < until,
            "the command {pid} survived the cancel"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_path_gone(&agent.temp_root.join("cancel-1"));
}

/// `GET /v1/logs?aid=…&after=N` of the agent.
async fn logs_after(agent: &TestAgent, aid: &str, after: u64) -> LogsReport {
    let request = hyper::Request::get(format!("http://agent/v1/logs?aid={aid}&after={after}"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let (status, body) = agent.request(request).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("logs report {e}: {}", String::from_utf8_lossy(&body)))
}

/// A command's first line is readable through `/v1/logs` while the command still sleeps; the
/// lines read then are the outcome's first lines, so the rest of the outcome is what is left.
#[tokio::test(flavor = "multi_thread")]
async fn a_running_call_s_lines_are_readable_before_it_ends() {
    let agent = Arc::new(cmd_agent().await);
    let unknown = logs_after(&agent, "nobody", 3).await;
    assert_eq!(
        (unknown.lines.len(), unknown.next, unknown.running),
        (0, 3, false)
    );
    let input = json!({"commands": [{"command": "sh -c 'echo one; sleep 2; echo two'"}]});
    let call = {
        let agent = Arc::clone(&agent);
        tokio::spawn(async move { agent.invoke("live-1", input.to_string()).await })
    };
    let until = Instant::now() + Duration::from_secs(10);
    let mut read = Vec::new();
    let mut next = 0;
    loop {
        let report = logs_after(&agent, "live-1", next).await;
        assert!(report.next >= next);
        next = report.next;
        read.extend(report.lines);
        if lines_of(&read, LogStream::Stdout).contains(&"one") {
            assert!(report.running, "{read:?}");
            break;
        }
        assert!(Instant::now() < until, "`one` never came: {read:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!call.is_finished(), "the call ended before `one` was read");
    assert!(!lines_of(&read, LogStream::Stdout).contains(&"two"));
    let outcome = call.await.unwrap();
    assert_eq!(outcome.status, InvokeStatus::Ok);
    assert_eq!(&outcome.logs[..read.len()], &read[..]);
    let rest = &outcome.logs[read.len()..];
    assert_eq!(lines_of(rest, LogStream::Stdout), ["two"]);
    let ended = logs_after(&agent, "live-1", 0).await;
    assert!(!ended.running && ended.lines.is_empty(), "{ended:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_calls_get_their_own_logs() {
    use std::os::unix::fs::PermissionsExt as _;
    let agent = Arc::new(cmd_agent().await);
    // A barrier instead of a stopwatch: each call marks that it started, then waits (at most
    // 20 s) until all eight have; only calls running side by side all get past it.
    let barrier = tempfile::tempdir().unwrap();
    std::fs::set_permissions(barrier.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let script = barrier.path().join("together.sh");
    std::fs::write(
        &script,
        "echo start-$ME\n\
         touch \"$BARRIER/$ME.started\"\n\
         i=0\n\
         while [ \"$(ls \"$BARRIER\" | grep -c started)\" -lt 8 ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done\n\
         echo end-$ME >&2\n\
         printf 'me=%s' \"$ME\"\n\
         [ \"$(ls \"$BARRIER\" | grep -c started)\" -ge 8 ] || printf ' (alone: the calls did not run side by side)'\n",
    )
    .unwrap();
    let barrier_dir = barrier.path().display().to_string();
    let command = format!("sh {}", script.display());
    let calls: Vec<_> = (0..8)
        .map(|i| {
            let agent = Arc::clone(&agent);
            let (barrier_dir, command) = (barrier_dir.clone(), command.clone());
            tokio::spawn(async move {
                let aid = format!("many-{i}");
                let input = json!({"commands": [
                    {"command": command,
                     "envs": [{"name": "ME", "value": aid}, {"name": "BARRIER", "value": barrier_dir}]},
                ]});
                let started = Instant::now();
                let outcome = agent.invoke(&aid, input.to_string()).await;
                (aid, outcome, started.elapsed())
            })
        })
        .collect();
    for call in calls {
        let (aid, outcome, _) = call.await.unwrap();
        assert_eq!(
            output(&outcome),
            json!([{"Error": "", "Output": format!("start-{aid}\nend-{aid}\nme={aid}")}]),
            "{aid}"
        );
        assert_eq!(
            lines_of(&outcome.logs, LogStream::Stdout),
            [
                format!("start-{aid}"),
                format!("end-{aid}"),
                format!("me={aid}")
            ],
            "{aid}"
        );
    }
}
