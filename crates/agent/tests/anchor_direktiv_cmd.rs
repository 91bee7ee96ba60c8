//! Direktiv's own tests of direktiv-cmd, translated: the command server's unit tests
//! (`commands_test.go`, `server_test.go` of v0.8.10 / v0.10.0), the end-to-end
//! `tests/kubernetes/special-command.test.js` and `generic-container.test.js`, and the command
//! line parser Direktiv uses (go-shellwords v1.0.12 with environment expansion and command
//! substitution), run through the agent binary the way the platform drives it.
//!
//! Direktiv posts each log write as one entry (`running 1 commands\n`, `jens\n`); faasbox keeps
//! log lines, so the anchors' concatenated log text is compared as the list of the call's lines.

mod support;

use faasbox_proto::{InvokeOutcome, InvokeStatus, LogStream, CODE_CMD_EXECUTION};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::{deadline_in, lines_of, Options, TestAgent};

/// A cmd agent with these environment variables (the container's environment).
async fn cmd_agent(env: &[(&str, &str)]) -> TestAgent {
    support::cmd_agent(Options {
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Options::default()
    })
    .await
}

use support::ok_output as output;

/// The call's log as Direktiv's log endpoint would have received it: the agent's lines and the
/// commands' output, in order.
fn log(outcome: &InvokeOutcome) -> Vec<&str> {
    outcome
        .logs
        .iter()
        .filter(|l| matches!(l.stream, LogStream::Agent | LogStream::Stdout))
        .map(|l| l.line.as_str())
        .collect()
}

fn commands(list: Value) -> String {
    json!({"data": {"commands": list}}).to_string()
}

// --- commands_test.go -----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn test_command_suppress() {
    let agent = cmd_agent(&[]).await;
    let shown = agent
        .invoke("suppress-cmd-1", commands(json!([{"command": "ls"}])))
        .await;
    assert_eq!(
        log(&shown)[..2],
        ["running 1 commands", "running command 'ls'"]
    );
    let hidden = agent
        .invoke(
            "suppress-cmd-2",
            commands(json!([{"command": "ls", "suppress_command": true}])),
        )
        .await;
    assert_eq!(
        log(&hidden)[..2],
        ["running 1 commands", "running command 0"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn test_output_suppress() {
    let agent = cmd_agent(&[]).await;
    let suppressed = agent
        .invoke(
            "suppress-out-1",
            commands(json!([{"command": "echo jens", "suppress_output": true}])),
        )
        .await;
    assert_eq!(
        log(&suppressed),
        ["running 1 commands", "running command 'echo jens'"]
    );
    // Direktiv v0.9 and later: suppressed output stays in the result (v0.8 dropped it there too).
    assert_eq!(
        output(&suppressed),
        json!([{"Error": "", "Output": "jens\n"}])
    );
    let shown = agent
        .invoke(
            "suppress-out-2",
            commands(json!([{"command": "echo jens"}])),
        )
        .await;
    assert_eq!(
        log(&shown),
        ["running 1 commands", "running command 'echo jens'", "jens"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn test_errors() {
    let agent = cmd_agent(&[]).await;
    // The error is logged even when the output is suppressed.
    for (aid, suppress) in [("errors-1", true), ("errors-2", false)] {
        let outcome = agent
            .invoke(
                aid,
                commands(json!([{"command": "onetwo", "suppress_output": suppress}])),
            )
            .await;
        assert_eq!(
            log(&outcome),
            [
                "running 1 commands",
                "running command 'onetwo'",
                "exec: \"onetwo\": executable file not found in $PATH"
            ],
            "{aid}"
        );
        assert_eq!(
            output(&outcome),
            json!([{"Error": "exec: \"onetwo\": executable file not found in $PATH", "Output": ""}])
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn test_stop_on_test_errors() {
    let agent = cmd_agent(&[]).await;
    let stopped = agent
        .invoke(
            "stop-1",
            commands(json!([
                {"command": "echo hello1", "stop": true},
                {"command": "does not exist", "stop": true},
                {"command": "echo hello2", "stop": true},
            ])),
        )
        .await;
    assert_eq!(
        log(&stopped),
        [
            "running 3 commands",
            "running command 'echo hello1'",
            "hello1",
            "running command 'does not exist'",
            "exec: \"does\": executable file not found in $PATH",
            "stopping execution due to error in command 1",
        ]
    );
    // The call fails as Direktiv's server answered it: the code and the message by index.
    assert_eq!(stopped.status, InvokeStatus::Error);
    assert_eq!(stopped.code.as_deref(), Some(CODE_CMD_EXECUTION));
    assert_eq!(
        stopped.message.as_deref(),
        Some("handler function error: stopped because command 1 failed")
    );

    let went_on = agent
        .invoke(
            "stop-2",
            commands(json!([
                {"command": "echo hello1", "stop": true},
                {"command": "does not exist", "stop": false},
                {"command": "echo hello2", "stop": true},
            ])),
        )
        .await;
    assert_eq!(
        log(&went_on),
        [
            "running 3 commands",
            "running command 'echo hello1'",
            "hello1",
            "running command 'does not exist'",
            "exec: \"does\": executable file not found in $PATH",
            "running command 'echo hello2'",
            "hello2",
        ]
    );
    assert_eq!(output(&went_on).as_array().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn test_command_envs() {
    let agent = cmd_agent(&[]).await;
    let outcome = agent
        .invoke(
            "envs-1",
            commands(json!([{
                "command": "sh -c 'env | grep HELLO'",
                "envs": [{"name": "HELLO", "value": "WORLD"}],
            }])),
        )
        .await;
    assert!(log(&outcome).contains(&"HELLO=WORLD"), "{outcome:?}");
}

// --- server_test.go ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn server_payloads() {
    let agent = cmd_agent(&[]).await;
    // Not JSON: the catchable execution error (Direktiv answered 400 with it).
    let outcome = agent.invoke("payload-1", "random data\nhello world").await;
    assert_eq!(outcome.status, InvokeStatus::Error);
    assert_eq!(outcome.code.as_deref(), Some(CODE_CMD_EXECUTION));
    assert!(
        outcome
            .message
            .as_deref()
            .unwrap_or_default()
            .starts_with("failed to unmarshal request payload"),
        "{outcome:?}"
    );
    // An empty body is no commands at all.
    assert_eq!(output(&agent.invoke("payload-2", "").await), json!([]));
    // A file with permission 493 (0755 as Go reads a JSON number) runs.
    let input = json!({
        "files": [{"name": "hello.sh", "permission": 493, "content": "#!/bin/sh\necho -n hello"}],
        "data": {"commands": [{"command": "./hello.sh"}]},
    });
    let outcome = agent.invoke("payload-3", input.to_string()).await;
    assert_eq!(output(&outcome), json!([{"Error": "", "Output": "hello"}]));
}

// --- special-command.test.js and generic-container.test.js -------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn special_command_with_files_and_permission() {
    let agent = cmd_agent(&[]).await;
    // YAML's 0755 and 0444 reach Direktiv as 493 and 292.
    let input = json!({
        "files": [
            {"name": "script.sh", "content": "#!/bin/sh\n\ncat hello.txt\n", "permission": 493},
            {"name": "hello.txt", "content": "HELLO", "permission": 292},
        ],
        "data": {"commands": [{"command": "./script.sh"}, {"command": "stat -c \"%a\" hello.txt"}]},
    });
    let outcome = agent.invoke("files-1", input.to_string()).await;
    // Output that is JSON is embedded (Direktiv v0.10): 444, not "444\n".
    assert_eq!(
        output(&outcome),
        json!([{"Error": "", "Output": "HELLO"}, {"Error": "", "Output": 444}])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn special_command_with_env_suppress_and_stop() {
    let agent = cmd_agent(&[]).await;
    let outcome = agent
        .invoke(
            "special-env",
            commands(json!([{
                "command": "sh -c \"env | grep HELLO\"",
                "envs": [{"name": "HELLO", "value": "WORLD"}],
            }])),
        )
        .await;
    assert_eq!(
        output(&outcome),
        json!([{"Error": "", "Output": "HELLO=WORLD\n"}])
    );

    // "suppress does not log but adds to result"
    let outcome = agent
        .invoke(
            "special-suppress",
            commands(json!([
                {"command": "echo hello1"},
                {"command": "echo hello2", "suppress_output": true},
            ])),
        )
        .await;
    assert_eq!(
        output(&outcome),
        json!([{"Error": "", "Output": "hello1\n"}, {"Error": "", "Output": "hello2\n"}])
    );
    let stdout = lines_of(&outcome.logs, LogStream::Stdout);
    assert_eq!(stdout, ["hello1"]);

    let stopped = agent
        .invoke(
            "special-stop",
            commands(json!([{"command": "lsaasdasd", "stop": true}, {"command": "ls"}])),
        )
        .await;
    assert_eq!(stopped.code.as_deref(), Some(CODE_CMD_EXECUTION));
    assert_eq!(
        stopped.message.as_deref(),
        Some("handler function error: stopped because command 0 failed")
    );
    let went_on = agent
        .invoke(
            "special-nostop",
            commands(json!([{"command": "lsaasdasd"}, {"command": "ls"}])),
        )
        .await;
    let results = output(&went_on);
    assert_eq!(results.as_array().unwrap().len(), 2);
    assert_eq!(
        results[0]["Error"],
        "exec: \"lsaasdasd\": executable file not found in $PATH"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn generic_container() {
    let agent = cmd_agent(&[]).await;
    let outcome = agent
        .invoke("generic-1", commands(json!([{"command": "echo -n data"}])))
        .await;
    assert_eq!(output(&outcome), json!([{"Error": "", "Output": "data"}]));
}

// --- the command line, as go-shellwords v1.0.12 parses it for Direktiv ----------------------

/// A command's `Output` as text (output that is JSON, like `[]`, is embedded as JSON).
fn text(output: &Value) -> String {
    output
        .as_str()
        .map_or_else(|| output.to_string(), str::to_owned)
}

/// Runs each command line with `printf [%s] …`, so every argument shows as `[arg]`.
async fn printed(agent: &TestAgent, aid: &str, args: &[&str]) -> Vec<String> {
    let list: Vec<Value> = args
        .iter()
        .map(|a| json!({"command": format!("printf [%s] {a}")}))
        .collect();
    let outcome = agent.invoke(aid, commands(Value::Array(list))).await;
    output(&outcome)
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["Error"], "", "{r}");
            text(&r["Output"])
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn environment_expansion() {
    let agent = cmd_agent(&[("BAR", "x"), ("FOO", "a b")]).await;
    let cases = [
        ("$BAR", "[x]"),
        ("${BAR}", "[x]"),
        // The expanded word is split again.
        ("$FOO", "[a][b]"),
        ("\"$FOO\"", "[a b]"),
        // Single quotes and a backslash do not stop it…
        ("'$BAR'", "[x]"),
        ("\\$BAR", "[x]"),
        // …these do.
        ("'\\$BAR'", "[$BAR]"),
        ("\\\\\\$BAR", "[$BAR]"),
        // Undefined is empty; an unquoted empty word disappears.
        ("$NOPE end", "[end]"),
        ("\"$NOPE\" end", "[][end]"),
        ("${BAR-x}", "[${BAR-x}]"),
        // The original's bug: `$` and a non-name character repeat the rest of the word.
        ("a$-b", "[a-bb]"),
        ("--o=\"a b\"", "[--o=a b]"),
    ];
    let args: Vec<&str> = cases.iter().map(|(a, _)| *a).collect();
    let got = printed(&agent, "expand-1", &args).await;
    for ((arg, want), got) in cases.iter().zip(&got) {
        assert_eq!(got, want, "printf [%s] {arg}");
    }
    // A command's own envs reach its process, not its command line.
    let outcome = agent
        .invoke(
            "expand-2",
            commands(json!([
                {"command": "printf [%s] $MINE", "envs": [{"name": "MINE", "value": "set"}]},
                {"command": "sh -c 'printf [%s] \\$MINE'", "envs": [{"name": "MINE", "value": "set"}]},
            ])),
        )
        .await;
    let outputs: Vec<String> = output(&outcome)
        .as_array()
        .unwrap()
        .iter()
        .map(|r| text(&r["Output"]))
        .collect();
    assert_eq!(outputs, ["[]", "[set]"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn command_substitution() {
    let agent = support::cmd_agent(Options {
        env: vec![
            ("BAR".into(), "x".into()),
            ("HOME".into(), "/container-home".into()),
        ],
        workdir: Some("/usr".into()),
        ..Options::default()
    })
    .await;
    let cases = [
        ("`echo a b`", "[a][b]"),
        ("$(echo a b)", "[a][b]"),
        ("pre$(echo mid)post", "[premidpost]"),
        ("`printf '\"q r\"'`", "[q r]"),
        // The substituted text is expanded afterwards.
        ("$(echo '$BAR')", "[x]"),
        // Not inside double quotes (and garbled there, as in Direktiv).
        ("\"$(echo hi)\"", "[(echo hi)echo hi)]"),
        // Substitutions run in the function's working directory with the container's
        // environment: not the call's directory and HOME.
        ("$(pwd)", "[/usr]"),
        ("$(printenv HOME)", "[/container-home]"),
    ];
    let args: Vec<&str> = cases.iter().map(|(a, _)| *a).collect();
    let got = printed(&agent, "subst-1", &args).await;
    for ((arg, want), got) in cases.iter().zip(&got) {
        assert_eq!(got, want, "printf [%s] {arg}");
    }
    // A failing substitution is the command's error, with its stderr; the command does not run.
    let outcome = agent
        .invoke(
            "subst-2",
            commands(json!([
                {"command": "printf [%s] $(false)"},
                {"command": "printf [%s] $(echo err >&2; exit 3)"},
                {"command": "touch never-made$(false)"},
                {"command": "ls"},
            ])),
        )
        .await;
    assert_eq!(
        output(&outcome),
        json!([
            {"Error": ": exit status 1", "Output": ""},
            {"Error": "err\n: exit status 3", "Output": ""},
            {"Error": ": exit status 1", "Output": ""},
            {"Error": "", "Output": ""},
        ])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn substitution_without_a_shell_says_so() {
    let agent = cmd_agent(&[("SHELL", "/nonexistent/sh")]).await;
    let outcome = agent
        .invoke(
            "noshell-1",
            commands(json!([{"command": "echo $(date)"}, {"command": "echo -n fine"}])),
        )
        .await;
    let results = output(&outcome);
    let error = results[0]["Error"].as_str().unwrap();
    assert!(
        error.starts_with("fork/exec /nonexistent/sh: no such file or directory")
            && error.contains("this image does not have"),
        "{error}"
    );
    assert_eq!(results[1], json!({"Error": "", "Output": "fine"}));
}

#[tokio::test(flavor = "multi_thread")]
async fn shell_operators_end_the_command_line() {
    let agent = cmd_agent(&[]).await;
    let outcome = agent
        .invoke(
            "cut-1",
            commands(json!([
                {"command": "echo hello | grep nothing"},
                {"command": "echo a; echo b"},
                {"command": "echo kept > file-never-written"},
                {"command": "ls"},
                {"command": "sh -c 'echo hello | grep h'"},
            ])),
        )
        .await;
    assert_eq!(
        output(&outcome),
        json!([
            {"Error": "", "Output": "hello\n"},
            {"Error": "", "Output": "a\n"},
            {"Error": "", "Output": "kept\n"},
            {"Error": "", "Output": ""},
            {"Error": "", "Output": "hello\n"},
        ])
    );
    // Direktiv drops the rest silently; faasbox says so in the call's log.
    let notes: Vec<&str> = lines_of(&outcome.logs, LogStream::Agent)
        .into_iter()
        .filter(|l| l.contains("the rest was not run"))
        .collect();
    assert_eq!(notes.len(), 3, "{notes:?}");
    assert!(notes[0].starts_with(
        "command 'echo hello | grep nothing': the command line ends at its first unquoted '|'"
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_and_empty_command_lines() {
    let agent = cmd_agent(&[]).await;
    let outcome = agent
        .invoke(
            "invalid-1",
            commands(json!([
                {"command": "python3 -c print(1)"},
                {"command": "echo )"},
                {"command": "echo 'unterminated"},
                {"command": ""},
                {"command": "   "},
                {"command": "$NOPE"},
            ])),
        )
        .await;
    let errors: Vec<Value> = output(&outcome)
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Error"].clone())
        .collect();
    assert_eq!(
        errors,
        [
            "invalid command line string",
            "invalid command line string",
            "invalid command line string",
            "no binary provided",
            "no binary provided",
            "no binary provided",
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn substitutions_run_as_the_function_user_within_the_deadline() {
    if !nix::unistd::Uid::effective().is_root() {
        faasbox_test_registry::cannot_run("switching users needs root");
        return;
    }
    let agent = support::cmd_agent(Options {
        user: Some(json!({"uid": 65534, "gid": 65534})),
        ..Options::default()
    })
    .await;
    assert_eq!(printed(&agent, "user-1", &["$(id -u)"]).await, ["[65534]"]);
    // A substitution still running at the deadline ends the call as a timeout.
    let started = Instant::now();
    let outcome = agent
        .invoke_until(
            "late-1",
            &deadline_in(Duration::from_millis(1500)),
            commands(json!([{"command": "echo $(sleep 30)"}])),
        )
        .await;
    // Ten times the 1.5 s deadline (the function itself would run 30 s).
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(outcome.status, InvokeStatus::Timeout, "{outcome:?}");
}
