//! Direktiv's end-to-end tests of direktiv-cmd (`tests/kubernetes/special-command.test.js` and
//! `generic-container.test.js`), translated: the same flows run in faasbox against a real
//! server and runc containers, plus Direktiv's command line parsing (`$VAR`, `$(…)`) inside a
//! real container and an image without a shell.
//!
//! Direktiv's tests use `ubuntu:24.04` and `alpine`; here the image is busybox with `bash` and
//! `stat` as small wrappers, so the commands run as written. Where Direktiv answers a failed
//! instance with HTTP 500, faasbox's `?wait=true` answers 422 with the same code and message.

mod support;

use serde_json::{json, Value};
use support::images;
use support::{json as parse, Server};

/// A server with namespace demo and the image `alpine` (busybox with bash and stat).
async fn setup() -> (Server, tempfile::TempDir) {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let (dir, tar) = images::rootfs_tar_with(&[
        (
            "bin/bash",
            "#!/bin/sh\nexec /bin/busybox sh \"$@\"\n",
            0o755,
        ),
        (
            "bin/stat",
            "#!/bin/sh\nexec /bin/busybox stat \"$@\"\n",
            0o755,
        ),
    ]);
    let r = server
        .import(&tar, "alpine", &[("entrypoint", "[\"/bin/sh\"]")])
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    (server, dir)
}

/// Direktiv's test flow: one action state `getter` calling direktiv-cmd with `input` (YAML).
fn special_command_flow(input: &str) -> String {
    format!(
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
{input}"#
    )
}

#[tokio::test]
async fn special_command_flows() {
    let (server, _dir) = setup().await;

    // "Test special command with files and permission"
    server
        .deploy_flow(
            "files",
            &special_command_flow(
                r##"      files:
      - name: script.sh
        content: "#!/bin/bash\n\ncat hello.txt\n"
        permission: 0755
      - name: hello.txt
        content: HELLO
        permission: 0444
      data:
        commands:
        - command: ./script.sh
        - command: stat -c "%a" hello.txt
"##,
            ),
        )
        .await;
    let (status, id, out) = server.run_flow("files", &json!({})).await;
    assert_eq!(status, 200, "{out}\n{}", server.instance_log(&id).await);
    assert_eq!(out["return"][0]["Output"], "HELLO", "{out}");
    // Direktiv v0.10 embeds output that is JSON: 444, not "444\n".
    assert_eq!(out["return"][1]["Output"], 444, "{out}");

    // "Test special command with env"
    server
        .deploy_flow(
            "env",
            &special_command_flow(
                r#"      data:
        commands:
        - command: bash -c "env | grep HELLO"
          envs:
          - name: HELLO
            value: WORLD
"#,
            ),
        )
        .await;
    let (status, _, out) = server.run_flow("env", &json!({})).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["return"][0]["Output"], "HELLO=WORLD\n", "{out}");

    // "Test special command with supress": "suppress does not log but adds to result"
    server
        .deploy_flow(
            "suppress",
            &special_command_flow(
                r#"      data:
        commands:
        - command: echo hello1
        - command: echo hello2
          suppress_output: true
"#,
            ),
        )
        .await;
    let (status, _, out) = server.run_flow("suppress", &json!({})).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["return"][0]["Output"], "hello1\n", "{out}");
    assert_eq!(out["return"][1]["Output"], "hello2\n", "{out}");

    // "Test special command with stop": wf5 fails, wf6 goes on.
    server
        .deploy_flow(
            "wf5",
            &special_command_flow(
                r#"      data:
        commands:
        - command: lsaasdasd
          stop: true
        - command: ls
"#,
            ),
        )
        .await;
    let (status, id, out) = server.run_flow("wf5", &json!({})).await;
    assert_eq!(status, 422, "{out}");
    assert_eq!(out["error"]["code"], "io.direktiv.error.execution", "{out}");
    let instance = server.instance(&id).await;
    assert_eq!(
        instance["error"]["message"], "handler function error: stopped because command 0 failed",
        "{instance}"
    );
    server
        .deploy_flow(
            "wf6",
            &special_command_flow(
                r#"      data:
        commands:
        - command: lsaasdasd
        - command: ls
"#,
            ),
        )
        .await;
    let (status, _, out) = server.run_flow("wf6", &json!({})).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["return"].as_array().map(Vec::len), Some(2), "{out}");
    assert_eq!(
        out["return"][0]["Error"], "exec: \"lsaasdasd\": executable file not found in $PATH",
        "{out}"
    );

    // generic-container.test.js
    server
        .deploy_flow(
            "generic",
            &special_command_flow(
                r#"      data:
        commands:
        - command: echo -n data
"#,
            ),
        )
        .await;
    let (status, _, out) = server.run_flow("generic", &json!({})).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["return"][0]["Output"], "data", "{out}");
}

#[tokio::test]
async fn suppressed_output_stays_out_of_the_call_log_and_stop_logs_its_index() {
    let (server, _dir) = setup().await;
    server
        .deploy(
            "demo",
            "sh",
            json!({"image": "alpine", "cmd": "/usr/share/direktiv/direktiv-cmd"}),
        )
        .await;
    let input = json!({"data": {"commands": [
        {"command": "echo hello1"},
        {"command": "echo hello2", "suppress_output": true},
    ]}});
    let (status, id, body) = server.invoke("demo", "sh", input.to_string()).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        parse(&body),
        json!([{"Error": "", "Output": "hello1\n"}, {"Error": "", "Output": "hello2\n"}])
    );
    let logs = server.log_lines(&id).await;
    assert!(logs.iter().any(|l| l == "hello1"), "{logs:?}");
    assert!(
        !logs
            .iter()
            .any(|l| l.contains("hello2") && !l.starts_with("running")),
        "{logs:?}"
    );

    let input = json!({"commands": [
        {"command": "echo hello1", "stop": true},
        {"command": "does not exist", "stop": true},
        {"command": "echo hello2", "stop": true},
    ]});
    let (status, id, body) = server.invoke("demo", "sh", input.to_string()).await;
    assert_eq!(status, 502, "{}", String::from_utf8_lossy(&body));
    let error = &parse(&body)["error"];
    assert_eq!(error["code"], "io.direktiv.error.execution");
    assert_eq!(error["catchable"], true);
    assert_eq!(
        error["message"],
        "handler function error: stopped because command 1 failed"
    );
    let logs = server.log_lines(&id).await;
    let tail: Vec<&str> = logs
        .iter()
        .map(String::as_str)
        .skip_while(|l| *l != "running 3 commands")
        .take(6)
        .collect();
    assert_eq!(
        tail,
        [
            "running 3 commands",
            "running command 'echo hello1'",
            "hello1",
            "running command 'does not exist'",
            "exec: \"does\": executable file not found in $PATH",
            "stopping execution due to error in command 1",
        ],
        "{logs:?}"
    );
}

#[tokio::test]
async fn command_lines_expand_like_direktiv_inside_the_container() {
    let (server, _dir) = setup().await;
    server
        .deploy(
            "demo",
            "sh",
            json!({"image": "alpine", "cmd": "/usr/share/direktiv/direktiv-cmd",
                   "envs": {"BAR": "x", "FOO": "a b"}}),
        )
        .await;
    let commands = [
        ("printf [%s] $BAR ${BAR}", "[x][x]"),
        ("printf [%s] $FOO \"$FOO\"", "[a][b][a b]"),
        ("printf [%s] '$BAR' '\\$BAR'", "[x][$BAR]"),
        ("printf [%s] $NOPE end", "[end]"),
        (
            "printf [%s] $(echo a b) pre`echo mid`post",
            "[a][b][premidpost]",
        ),
        // Substitutions run with the container's /bin/sh and environment.
        ("printf [%s] $(echo $BAR-$$)", ""),
    ];
    let list: Vec<Value> = commands
        .iter()
        .map(|(c, _)| json!({"command": c, "envs": [{"name": "BAR", "value": "not-for-the-line"}]}))
        .collect();
    let (status, _, body) = server
        .invoke("demo", "sh", json!({"commands": list}).to_string())
        .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let out = parse(&body);
    for (i, (command, want)) in commands.iter().enumerate() {
        let got = &out[i]["Output"];
        assert_eq!(out[i]["Error"], "", "{command}: {}", out[i]);
        if want.is_empty() {
            // `$$` is the substitution shell's pid: only its shape is known.
            let text = got.as_str().unwrap_or_default();
            assert!(
                text.starts_with("[x-") && text.ends_with(']'),
                "{command}: {got}"
            );
        } else {
            assert_eq!(got, want, "{command}");
        }
    }
}

#[tokio::test]
async fn substitution_in_an_image_without_a_shell_is_a_clear_error() {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    // Only busybox and an `echo` link: no /bin/sh.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", root.join("bin/echo")).unwrap();
    let tar = dir.path().join("noshell.tar");
    let status = std::process::Command::new("tar")
        .args(["-C", root.to_str().unwrap(), "--numeric-owner", "-cf"])
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    let r = server
        .import(&tar, "noshell", &[("entrypoint", "[\"/bin/busybox\"]")])
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    server
        .deploy(
            "demo",
            "bare",
            json!({"image": "noshell", "cmd": "/usr/share/direktiv/direktiv-cmd"}),
        )
        .await;
    let input = json!({"commands": [{"command": "echo $(date)"}, {"command": "echo -n works"}]});
    let (status, _, body) = server.invoke("demo", "bare", input.to_string()).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let out = parse(&body);
    let error = out[0]["Error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("fork/exec /bin/sh: no such file or directory")
            && error.contains("this image does not have"),
        "{error}"
    );
    assert_eq!(out[1], json!({"Error": "", "Output": "works"}));
}
