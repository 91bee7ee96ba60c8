//! The agent binary speaking the file contract (Direktiv isolates): one shell script is the
//! function; what it does depends on the `mode` in its input.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use faasbox_proto::{InvokeStatus, LogStream, CODE_CONTAINER_FAILED, CODE_DISK_FULL};
use hyper::StatusCode;
use serde_json::json;
use support::{deadline_in, lines_of, Options, TestAgent};

/// The function: reads `$D/data.in`, acts on its `mode`.
const FUNCTION: &str = r#"
bb=/bin/busybox
in="$($bb cat "$D/data.in")"
case "$in" in
  *'"mode":"echo"'*) $bb cp "$D/data.in" "$D/data.out" ;;
  *'"mode":"text"'*) printf 'plain text' > "$D/data.out" ;;
  *'"mode":"nothing"'*) ;;
  *'"mode":"error"'*)
    echo '{"errorCode":"app.bad","errorMessage":"it broke"}' > "$D/error.json"
    echo '{"ignored":true}' > "$D/data.out" ;;
  *'"mode":"crash"'*) echo '{"errorMessage":"only a message"}' > "$D/error.json" ;;
  *'"mode":"logs"'*)
    echo "to stdout"; echo "to stderr" >&2
    echo "log line 1" > "$D/log.log"; echo "log line 2" >> "$D/log.log"
    echo "error line" > "$D/error.log"
    echo '{"ok":true}' > "$D/data.out" ;;
  *'"mode":"exit"'*) echo "failing" >&2; exit 3 ;;
  *'"mode":"sleep"'*) echo $$ > "$STATE/pid"; echo "sleeping"; exec $bb sleep 30 ;;
  *'"mode":"fill"'*)
    $bb dd if=/dev/zero of="$D/big" bs=1024 count=4096 2>/dev/null
    echo '{}' > "$D/data.out" ;;
  *'"mode":"leak"'*)
    if [ -e "$D/leftover" ] || [ -e "$D/sub" ]; then leak=true; else leak=false; fi
    files="$($bb ls "$D" | $bb tr '\n' ' ')"
    echo x > "$D/leftover"; $bb mkdir -p "$D/sub/dir"; echo y > "$D/sub/dir/f"
    echo "{\"leak\":$leak,\"files\":\"$files\"}" > "$D/data.out" ;;
  *'"mode":"serial"'*)
    if [ -e "$STATE/busy" ]; then echo overlap >> "$STATE/overlaps"; fi
    $bb touch "$STATE/busy"; $bb sleep 0.1; $bb rm "$STATE/busy"
    echo "call $in"
    $bb cp "$D/data.in" "$D/data.out" ;;
  *'"mode":"env"'*) printf '{"pwd":"%s","uid":"%s","mark":"%s"}' "$(pwd)" "$($bb id -u)" "$FAASBOX_TEST_MARK" > "$D/data.out" ;;
  *) echo "unknown mode" >&2; exit 9 ;;
esac
"#;

/// An agent whose data directory is `<root>/data` (unless `data_dir` says otherwise) and whose
/// function keeps its own state in `<root>/state`.
async fn file_agent(root: &Path, disk_limit: u64) -> TestAgent {
    file_agent_in(root, &root.join("data"), disk_limit).await
}

async fn file_agent_in(root: &Path, data_dir: &Path, disk_limit: u64) -> TestAgent {
    let state = root.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let agent = TestAgent::start_with(Options {
        contract: "file",
        command: Some(vec![
            "/bin/busybox".into(),
            "sh".into(),
            "-c".into(),
            FUNCTION.into(),
        ]),
        config: json!({"file": {"data_dir": data_dir, "disk_limit_bytes": disk_limit}}),
        env: vec![
            ("D".into(), data_dir.display().to_string()),
            ("STATE".into(), state.display().to_string()),
        ],
        ..Options::default()
    })
    .await;
    let (status, report) = agent.ready().await;
    assert_eq!(status, StatusCode::OK, "{report:?}");
    agent
}

use support::ok_output as output;

#[tokio::test(flavor = "multi_thread")]
async fn data_round_trip() {
    let data = tempfile::tempdir().unwrap();
    let agent = file_agent(data.path(), 0).await;

    let input = r#"{"mode":"echo","text":"grüß dich ✓","n":[1,2.50]}"#;
    let outcome = agent.invoke("echo-1", input).await;
    assert_eq!(outcome.status, InvokeStatus::Ok, "{outcome:?}");
    assert_eq!(outcome.output.unwrap().get(), input);

    let outcome = agent.invoke("text-1", r#"{"mode":"text"}"#).await;
    assert_eq!(outcome.output.unwrap().get(), "\"cGxhaW4gdGV4dA==\"");

    // No data.out: null (the agent writes `"output":null`, read back as None).
    let outcome = agent.invoke("nothing-1", r#"{"mode":"nothing"}"#).await;
    assert_eq!(outcome.status, InvokeStatus::Ok);
    assert!(outcome.output.is_none_or(|o| o.get() == "null"));

    // The function runs in the configured working directory with the container's environment.
    let outcome = agent.invoke("env-1", r#"{"mode":"env"}"#).await;
    assert_eq!(
        output(&outcome),
        json!({"pwd": "/", "uid": "0", "mark": "xyz"})
    );

    // Nothing is left behind after a call.
    assert_eq!(
        std::fs::read_dir(data.path().join("data")).unwrap().count(),
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_and_exit_status() {
    let data = tempfile::tempdir().unwrap();
    let agent = file_agent(data.path(), 0).await;

    let outcome = agent.invoke("error-1", r#"{"mode":"error"}"#).await;
    assert_eq!(outcome.status, InvokeStatus::Error);
    assert_eq!(outcome.code.as_deref(), Some("app.bad"));
    assert_eq!(outcome.message.as_deref(), Some("it broke"));
    assert!(outcome.output.is_none());

    let outcome = agent.invoke("crash-1", r#"{"mode":"crash"}"#).await;
    assert_eq!(outcome.status, InvokeStatus::Crash);
    assert_eq!(outcome.code, None);
    assert_eq!(outcome.message.as_deref(), Some("only a message"));

    let outcome = agent.invoke("exit-1", r#"{"mode":"exit"}"#).await;
    assert_eq!(outcome.status, InvokeStatus::Error);
    assert_eq!(outcome.code.as_deref(), Some(CODE_CONTAINER_FAILED));
    assert_eq!(
        outcome.message.as_deref(),
        Some("function process exited with status 3")
    );
    assert_eq!(lines_of(&outcome.logs, LogStream::Stderr), ["failing"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_from_streams_and_files() {
    let data = tempfile::tempdir().unwrap();
    let agent = file_agent(data.path(), 0).await;
    let outcome = agent.invoke("logs-1", r#"{"mode":"logs"}"#).await;
    assert_eq!(output(&outcome), json!({"ok": true}));
    assert_eq!(lines_of(&outcome.logs, LogStream::Stdout), ["to stdout"]);
    assert_eq!(
        lines_of(&outcome.logs, LogStream::Function),
        ["log line 1", "log line 2"]
    );
    assert_eq!(
        lines_of(&outcome.logs, LogStream::Stderr),
        ["to stderr", "error line"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_state_leaks_between_calls() {
    let data = tempfile::tempdir().unwrap();
    let agent = file_agent(data.path(), 0).await;
    for aid in ["leak-1", "leak-2", "leak-3"] {
        let outcome = agent.invoke(aid, r#"{"mode":"leak"}"#).await;
        assert_eq!(
            output(&outcome),
            json!({"leak": false, "files": "data.in "}),
            "{aid}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn deadline_kills_the_function() {
    let data = tempfile::tempdir().unwrap();
    let agent = file_agent(data.path(), 0).await;
    let state = data.path().join("state");
    let started = Instant::now();
    let outcome = agent
        .invoke_until(
            "sleep-1",
            &deadline_in(Duration::from_millis(1500)),
            r#"{"mode":"sleep"}"#,
        )
        .await;
    // Ten times the 1.5 s deadline (the function itself would run 30 s).
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(outcome.status, InvokeStatus::Timeout, "{outcome:?}");
    let message = outcome.message.unwrap();
    assert!(
        message.starts_with("the function was still running at the call's deadline"),
        "{message}"
    );
    assert_eq!(lines_of(&outcome.logs, LogStream::Stdout), ["sleeping"]);
    let pid = std::fs::read_to_string(state.join("pid")).unwrap();
    assert_process_gone(pid.trim()).await;
    // The instance goes on.
    let outcome = agent.invoke("echo-after", r#"{"mode":"echo"}"#).await;
    assert_eq!(outcome.status, InvokeStatus::Ok);
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_kills_the_function() {
    let data = tempfile::tempdir().unwrap();
    let agent = Arc::new(file_agent(data.path(), 0).await);
    let state = data.path().join("state");
    let call = {
        let agent = Arc::clone(&agent);
        tokio::spawn(async move { agent.invoke("sleep-2", r#"{"mode":"sleep"}"#).await })
    };
    let until = Instant::now() + Duration::from_secs(10);
    let pid = loop {
        if let Ok(pid) = std::fs::read_to_string(state.join("pid")) {
            if !pid.trim().is_empty() {
                break pid;
            }
        }
        assert!(Instant::now() < until, "the function never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    agent.cancel("sleep-2").await;
    let outcome = call.await.unwrap();
    assert_eq!(outcome.status, InvokeStatus::Crash);
    assert_eq!(outcome.message.as_deref(), Some("cancelled"));
    assert_process_gone(pid.trim()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_take_turns() {
    let data = tempfile::tempdir().unwrap();
    let agent = Arc::new(file_agent(data.path(), 0).await);
    let state = data.path().join("state");
    let started = Instant::now();
    let calls: Vec<_> = (0..8)
        .map(|i| {
            let agent = Arc::clone(&agent);
            tokio::spawn(async move {
                let input = format!(r#"{{"mode":"serial","i":{i}}}"#);
                let outcome = agent.invoke(&format!("serial-{i}"), input.clone()).await;
                (input, outcome)
            })
        })
        .collect();
    for call in calls {
        let (input, outcome) = call.await.unwrap();
        assert_eq!(outcome.status, InvokeStatus::Ok, "{outcome:?}");
        assert_eq!(outcome.output.as_ref().unwrap().get(), input);
        assert_eq!(
            lines_of(&outcome.logs, LogStream::Stdout),
            [format!("call {input}")]
        );
    }
    assert!(
        !state.join("overlaps").exists(),
        "calls ran at the same time"
    );
    assert!(started.elapsed() >= Duration::from_millis(800));
}

#[tokio::test(flavor = "multi_thread")]
async fn full_disk_is_an_error() {
    if !nix::unistd::Uid::effective().is_root() {
        faasbox_test_registry::cannot_run("mounting a tmpfs needs root");
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let mount = SmallTmpfs::mount(&data.path().join("tmpfs"), "size=1m");
    {
        let agent = file_agent_in(data.path(), &mount.path, 1 << 20).await;

        let outcome = agent.invoke("fill-1", r#"{"mode":"fill"}"#).await;
        assert_eq!(outcome.status, InvokeStatus::Error, "{outcome:?}");
        assert_eq!(outcome.code.as_deref(), Some(CODE_DISK_FULL));
        let message = outcome.message.unwrap();
        assert!(message.contains("limit is 1 MiB"), "{message}");
        assert!(
            message.contains(&mount.path.display().to_string()),
            "{message}"
        );

        // The next call starts on an empty disk.
        let outcome = agent.invoke("echo-1", r#"{"mode":"echo"}"#).await;
        assert_eq!(output(&outcome), json!({"mode": "echo"}));

        // An input that does not fit.
        let big = format!(r#"{{"mode":"echo","pad":"{}"}}"#, "x".repeat(2 << 20));
        let outcome = agent.invoke("big-1", big).await;
        assert_eq!(outcome.code.as_deref(), Some(CODE_DISK_FULL), "{outcome:?}");

        let outcome = agent.invoke("echo-2", r#"{"mode":"echo"}"#).await;
        assert_eq!(outcome.status, InvokeStatus::Ok);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unusable_data_dir_fails_ready() {
    let data = tempfile::NamedTempFile::new().unwrap();
    let agent = TestAgent::start_with(Options {
        contract: "file",
        command: Some(vec!["/bin/true".into()]),
        config: json!({"file": {"data_dir": data.path()}}),
        ..Options::default()
    })
    .await;
    let (status, report) = agent.ready().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let error = report.error.unwrap();
    assert!(error.starts_with("the data directory"), "{error}");
    let outcome = agent.invoke("x-1", "{}").await;
    assert_eq!(outcome.status, InvokeStatus::Crash);
}

async fn assert_process_gone(pid: &str) {
    let until = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{pid}")).exists() {
        assert!(Instant::now() < until, "process {pid} survived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A size-bounded tmpfs, unmounted when dropped.
struct SmallTmpfs {
    path: PathBuf,
}

impl SmallTmpfs {
    fn mount(path: &Path, options: &str) -> SmallTmpfs {
        std::fs::create_dir_all(path).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some(options),
        )
        .expect("mount tmpfs");
        SmallTmpfs {
            path: path.to_path_buf(),
        }
    }
}

impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.path, nix::mount::MntFlags::MNT_DETACH);
    }
}
