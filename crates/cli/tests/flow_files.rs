//! A flow action's `files` end to end, against the real server and real runc containers:
//! variables of every scope placed as `plain`, `base64`, `tar` and `tar.gz` files in the call's
//! temp dir of an http-contract function (`Direktiv-TempDir`), of a direktiv-cmd function (its
//! working directory), of an isolate and of an OpenWhisk action (`DIREKTIV_TEMPDIR`); a missing
//! variable is an empty file; a bad name is refused at deploy with its line and column; a bad
//! value is catchable.

mod support;

use std::path::Path;

use base64::Engine as _;
use serde_json::{json, Value};
use support::images::{self, rootfs_query};
use support::Server;

/// An http function (busybox httpd CGI) answering what it finds in its call's temp dir.
const READER_CGI: &str = r#"#!/bin/sh
d="$HTTP_DIREKTIV_TEMPDIR"
cat > /dev/null
printf 'Content-Type: application/json\r\n\r\n'
printf '{"plain":"%s","decoded":"%s","tool":"%s","tool_executable":"%s","note":"%s","raw_note":"%s","config":%s,"missing":"%s","missing_bytes":"%s"}' \
  "$(cat "$d/plain.txt")" "$(cat "$d/decoded.txt")" "$(sh "$d/bundle/bin/tool.sh")" \
  "$(test -x "$d/bundle/bin/tool.sh" && echo yes)" "$(cat "$d/bundle/data/note.txt")" \
  "$(cat "$d/raw/data/note.txt")" "$(cat "$d/config.json")" \
  "$(test -f "$d/missing.txt" && echo present)" "$(wc -c < "$d/missing.txt")"
"#;

/// An OpenWhisk action answering the file it finds in `$DIREKTIV_TEMPDIR`.
const OPENWHISK_READER: &str = r#"#!/bin/sh
printf '{"plain":"%s","dir_is_call_dir":"%s"}\n' "$(cat "$DIREKTIV_TEMPDIR/plain.txt")" "$(test "$DIREKTIV_TEMPDIR" = "/tmp/faasbox-calls/$__OW_ACTIVATION_ID" && echo yes)"
"#;

/// An isolate (file contract) answering the file it finds in `$DIREKTIV_TEMPDIR`.
const ISOLATE_READER: &str = r#"#!/bin/sh
printf '{"plain":"%s","dir":"%s"}' "$(cat "$DIREKTIV_TEMPDIR/plain.txt")" "$DIREKTIV_TEMPDIR" > /direktiv-data/data.out
"#;

fn encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A tar archive (gzip-compressed when `gzip`) of `bin/tool.sh` (0755) and `data/note.txt`,
/// made by the system's tar.
fn archive(dir: &Path, gzip: bool) -> Vec<u8> {
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("bin")).unwrap();
    std::fs::create_dir_all(src.join("data")).unwrap();
    std::fs::write(src.join("bin/tool.sh"), "#!/bin/sh\necho -n tool-ran\n").unwrap();
    std::fs::write(src.join("data/note.txt"), "note-from-the-archive").unwrap();
    let status = std::process::Command::new("chmod")
        .args(["0755", src.join("bin/tool.sh").to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = dir.join(if gzip { "a.tar.gz" } else { "a.tar" });
    let status = std::process::Command::new("tar")
        .args([
            "-C",
            src.to_str().unwrap(),
            if gzip { "-czf" } else { "-cf" },
            out.to_str().unwrap(),
            ".",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(out).unwrap()
}

/// A server with namespace demo and the images `files/reader` (the http reader), `alpine`
/// (busybox, for direktiv-cmd) and `files/isolate`.
async fn setup() -> (Server, Vec<tempfile::TempDir>) {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let query = rootfs_query();
    let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (reader_dir, reader) =
        images::rootfs_tar_with(&[("www/cgi-bin/index.cgi", READER_CGI, 0o755)]);
    let r = server.import(&reader, "files/reader", &query).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    let (plain_dir, plain) = images::rootfs_tar_with(&[]);
    let r = server
        .import(&plain, "alpine", &[("entrypoint", "[\"/bin/sh\"]")])
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    let (isolate_dir, isolate) =
        images::rootfs_tar_with(&[("bin/isolate.sh", ISOLATE_READER, 0o755)]);
    let r = server
        .import(
            &isolate,
            "files/isolate",
            &[("entrypoint", "[\"/bin/isolate.sh\"]")],
        )
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    (server, vec![reader_dir, plain_dir, isolate_dir])
}

/// Sets the variables (from the flow's input) in all three scopes, then hands them as files
/// to the http reader, and the same files to a direktiv-cmd function.
const FILES_FLOW: &str = r#"functions:
- {id: reader, image: files/reader, type: knative-workflow}
- {id: sh, image: alpine, type: knative-workflow, cmd: /usr/share/direktiv/direktiv-cmd}
states:
- id: set
  type: setter
  variables:
  - {key: greeting, scope: instance, value: 'jq(.greeting)'}
  - {key: config, scope: instance, value: 'jq(.config)'}
  - {key: blob, scope: workflow, value: 'jq(.blob)'}
  - {key: bundle, scope: namespace, value: 'jq(.bundle)'}
  - {key: rawbundle, scope: workflow, value: 'jq(.rawbundle)'}
  transition: read
- id: read
  type: action
  action:
    function: reader
    input: {}
    files:
    - {key: greeting, scope: instance, as: plain.txt}
    - {key: blob, scope: workflow, type: base64, as: decoded.txt}
    - {key: bundle, scope: namespace, type: tar.gz}
    - {key: rawbundle, scope: workflow, type: tar, as: raw}
    - {key: config, scope: instance, as: config.json}
    - {key: never-set, scope: instance, as: missing.txt}
  transform: 'jq({http: .return})'
  transition: cmd
- id: cmd
  type: action
  action:
    function: sh
    files:
    - {key: greeting, scope: instance, type: plain, as: plain.txt}
    - {key: blob, scope: workflow, type: base64, as: sub/decoded.txt}
    - {key: bundle, scope: namespace, type: tar.gz, as: bundle}
    input:
      commands:
      - command: cat plain.txt
      - command: cat sub/decoded.txt
      - command: ./bundle/bin/tool.sh
      - command: cat bundle/data/note.txt
"#;

#[tokio::test]
async fn action_files_reach_http_and_cmd_functions_in_every_type_and_scope() {
    let (server, mut dirs) = setup().await;
    let work = tempfile::tempdir().unwrap();
    let input = json!({
        "greeting": "hello-plain",
        "config": {"a": [1, 2]},
        "blob": encode(b"decoded-bytes"),
        "bundle": encode(&archive(&work.path().join("gz"), true)),
        "rawbundle": encode(&archive(&work.path().join("plain"), false)),
    });
    dirs.push(work);
    server.deploy_flow("files", FILES_FLOW).await;
    let (status, id, out) = server.run_flow("files", &input).await;
    assert_eq!(status, 200, "{out}\n{}", server.instance_log(&id).await);
    assert_eq!(
        out["http"],
        json!({
            "plain": "hello-plain",
            "decoded": "decoded-bytes",
            "tool": "tool-ran",
            "tool_executable": "yes",
            "note": "note-from-the-archive",
            "raw_note": "note-from-the-archive",
            "config": {"a": [1, 2]},
            "missing": "present",
            "missing_bytes": "0",
        }),
        "{out}"
    );
    let outputs: Vec<&Value> = out["return"]
        .as_array()
        .expect("cmd results")
        .iter()
        .map(|r| &r["Output"])
        .collect();
    assert_eq!(
        outputs,
        [
            "hello-plain",
            "decoded-bytes",
            "tool-ran",
            "note-from-the-archive"
        ],
        "{out}"
    );
}

#[tokio::test]
async fn action_files_reach_isolates_and_openwhisk_actions_and_bad_ones_are_refused() {
    let (server, _dirs) = setup().await;
    server
        .deploy(
            "demo",
            "isolate",
            json!({"image": "files/isolate", "contract": "file"}),
        )
        .await;
    server
        .deploy(
            "demo",
            "action",
            json!({"image": "alpine", "contract": "openwhisk", "code": OPENWHISK_READER}),
        )
        .await;
    server
        .deploy_flow(
            "isolate",
            r#"functions:
- {id: iso, service: isolate, type: knative-namespace}
- {id: ow, service: action, type: knative-namespace}
states:
- id: set
  type: setter
  variables: [{key: greeting, scope: namespace, value: hello-isolate}]
  transition: read
- id: read
  type: action
  action:
    function: iso
    files: [{key: greeting, scope: namespace, as: plain.txt}]
  transform: 'jq({isolate: .return})'
  transition: openwhisk
- id: openwhisk
  type: action
  action:
    function: ow
    input: {}
    files: [{key: greeting, scope: namespace, as: plain.txt}]
"#,
        )
        .await;
    let (status, id, out) = server.run_flow("isolate", &json!({})).await;
    assert_eq!(status, 200, "{out}\n{}", server.instance_log(&id).await);
    assert_eq!(
        out["isolate"],
        json!({"plain": "hello-isolate", "dir": "/direktiv-data/files"}),
        "{out}"
    );
    assert_eq!(
        out["return"],
        json!({"plain": "hello-isolate", "dir_is_call_dir": "yes"}),
        "{out}"
    );

    // A name that leaves the call's directory, or an unknown type: refused at deploy, placed.
    let r = server
        .put_flow(
            "badname",
            "functions:\n- {id: iso, service: isolate, type: knative-namespace}\nstates:\n- id: read\n  type: action\n  action:\n    function: iso\n    files:\n    - {key: k, scope: instance, as: ../../etc/passwd}\n    - {key: k, scope: instance, type: zip}\n",
        )
        .await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("line 9, column 8")
            && message.contains("file name '../../etc/passwd' cannot be used"),
        "{body}"
    );
    assert!(
        message.contains("line 10, column 8")
            && message.contains("has type 'zip'; use one of plain, base64, tar, tar.gz"),
        "{body}"
    );
    let r = server.get("/api/v1/namespaces/demo/flows/badname").await;
    assert_eq!(r.status(), 404, "a refused flow must not be stored");

    // A value that is not base64: a catchable error naming the file, without the value.
    server
        .deploy_flow(
            "badvalue",
            r#"functions:
- {id: iso, service: isolate, type: knative-namespace}
states:
- id: set
  type: setter
  variables: [{key: key, scope: instance, value: "not base64: s3cr3t!"}]
  transition: read
- id: read
  type: action
  action:
    function: iso
    files: [{key: key, scope: instance, type: base64, as: key.pem}]
  catch: [{error: faasbox.flow.files, transition: caught}]
- id: caught
  type: noop
  transform: 'jq({code: .error.code, message: .error.msg})'
"#,
        )
        .await;
    let (status, id, out) = server.run_flow("badvalue", &json!({})).await;
    assert_eq!(status, 200, "{out}\n{}", server.instance_log(&id).await);
    assert_eq!(out["code"], "faasbox.flow.files", "{out}");
    let message = out["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("file 'key.pem' cannot be placed: its variable is not valid base64"),
        "{out}"
    );
    assert!(!message.contains("s3cr3t"), "{out}");
    assert!(!server.instance_log(&id).await.contains("s3cr3t"));

    // Files larger than an isolate's bounded data dir: the isolate's disk-full code.
    server
        .deploy(
            "demo",
            "tiny",
            json!({"image": "files/isolate", "contract": "file", "disk": "1MiB"}),
        )
        .await;
    server
        .deploy_flow(
            "toobig",
            r#"functions:
- {id: tiny, service: tiny, type: knative-namespace}
states:
- id: set
  type: setter
  variables: [{key: blob, scope: instance, value: 'jq(.blob)'}]
  transition: read
- id: read
  type: action
  action:
    function: tiny
    input: {}
    files: [{key: blob, scope: instance, as: blob.txt}]
"#,
        )
        .await;
    let blob = "x".repeat(2 * 1024 * 1024);
    let (status, id, out) = server.run_flow("toobig", &json!({ "blob": blob })).await;
    assert_ne!(status, 200, "{out}");
    let instance = server
        .get_json(&format!("/api/v1/namespaces/demo/instances/{id}"))
        .await;
    assert_eq!(
        instance["error"]["code"],
        "faasbox.function.disk_full",
        "{instance}\n{}",
        server.instance_log(&id).await
    );
}
