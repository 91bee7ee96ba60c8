//! Functions are boxed in, through the real server and real runc containers: a bounded disk
//! whose filling fails the call with `faasbox.function.disk_full` for every contract while
//! other functions keep answering, no host loopback unless the server allows it, a read-only
//! control mount, seccomp, container root as an unprivileged host uid, and the function
//! first in line for the OOM killer.

mod support;

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use support::images::{self, ISOLATE, TEST_FUNCTION};
use support::{json as parse, OutsideAddress, Server, ALLOW_HOST_LOOPBACK};

/// Container root on the host (faasbox's default id map).
const HOST_ROOT_UID: u32 = 0x7000_0000;

/// A server (with `args`) with namespace `demo` and the images `test/function` (the test
/// function, httpd), `test/plain` (busybox, for cmd and openwhisk) and `test/isolate` (the
/// file contract's test function).
async fn server_with_images(args: &[&str]) -> (Server, Vec<tempfile::TempDir>) {
    let server = Server::start_with(args).await;
    server.create_namespace("demo").await;
    let query = images::rootfs_query();
    let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (function_dir, function) =
        images::rootfs_tar_with(&[("www/cgi-bin/index.cgi", TEST_FUNCTION, 0o755)]);
    let (plain_dir, plain) = images::rootfs_tar_with(&[]);
    let (isolate_dir, isolate) = images::rootfs_tar_with(&[("bin/isolate.sh", ISOLATE, 0o755)]);
    for (name, tar, query) in [
        ("test/function:latest", &function, query.clone()),
        (
            "test/plain:latest",
            &plain,
            vec![("entrypoint", "[\"/bin/sh\"]")],
        ),
        (
            "test/isolate:latest",
            &isolate,
            vec![("entrypoint", "[\"/bin/isolate.sh\"]")],
        ),
    ] {
        let r = server.import(tar, name, &query).await;
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    }
    server
        .deploy(
            "demo",
            "echo",
            json!({"image": "test/function:latest", "envs": {"MODE": "plain"}, "scale": {"max": 2}}),
        )
        .await;
    (server, vec![function_dir, plain_dir, isolate_dir])
}

/// Invokes `function` with `input`, and meanwhile `echo`: the first must fail with
/// `disk_full` naming the bound, the echo must answer.
async fn expect_disk_full_while_echo_answers(server: &Server, function: &str, input: Value) {
    let filling = server.invoke("demo", function, input.to_string());
    let echo = async {
        // Some calls while the other one fills its disk.
        for i in 0..3 {
            let (status, _, body) = server
                .invoke("demo", "echo", json!({"i": i}).to_string())
                .await;
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            assert_eq!(parse(&body), json!({"i": i}));
        }
    };
    let ((status, id, body), ()) = tokio::join!(filling, echo);
    assert_eq!(
        status,
        502,
        "{function}: {}",
        String::from_utf8_lossy(&body)
    );
    let error = &parse(&body)["error"];
    assert_eq!(
        error["code"], "faasbox.function.disk_full",
        "{function}: {error}"
    );
    assert_eq!(error["catchable"], true, "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("8 MiB"), "{function}: {message}");
    let record = server
        .get_json(&format!("/api/v1/namespaces/demo/invocations/{id}"))
        .await;
    assert_eq!(record["status"], "failed", "{record}");
}

#[tokio::test]
async fn a_full_disk_fails_the_call_for_every_contract_while_others_answer() {
    let (server, _dirs) = server_with_images(&[]).await;
    let small = |mut spec: Value| {
        spec["disk"] = json!("8MiB");
        spec["scale"] = json!({"max": 1});
        spec
    };
    server
        .deploy(
            "demo",
            "http",
            small(json!({"image": "test/function:latest", "envs": {"MODE": "disk"}})),
        )
        .await;
    server
        .deploy(
            "demo",
            "cmd",
            small(json!({"image": "test/plain:latest", "cmd": "/usr/share/direktiv/direktiv-cmd"})),
        )
        .await;
    server
        .deploy(
            "demo",
            "file",
            small(json!({"image": "test/isolate:latest", "contract": "file", "envs": {"MODE": "filltmp"}})),
        )
        .await;
    let action = "#!/bin/sh\nhead -c 100000000 /dev/zero > /tmp/fill\necho '{\"wrote\": true}'\n";
    server
        .deploy(
            "demo",
            "openwhisk",
            small(json!({"image": "test/plain:latest", "contract": "openwhisk", "code": action})),
        )
        .await;

    // http: the function writes /tmp full and answers 500.
    expect_disk_full_while_echo_answers(&server, "http", json!({"fill": "tmp"})).await;
    // The instance was replaced: the next call finds a clean disk.
    let (status, _, body) = server.invoke("demo", "http", "{}").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(parse(&body), json!({"leftover": "no"}));
    // http: what fills the disk is in the call's own temp dir (removed after the call).
    expect_disk_full_while_echo_answers(&server, "http", json!({"fill": "tempdir"})).await;
    // cmd: a command writes its working directory full (the command's own failure is
    // recorded, and the call fails with disk_full).
    let commands = json!({"commands": [{"command": "sh -c 'head -c 100000000 /dev/zero > big'"}]});
    expect_disk_full_while_echo_answers(&server, "cmd", commands).await;
    // file: the isolate writes /tmp full (the data dir shares the disk).
    expect_disk_full_while_echo_answers(&server, "file", json!({})).await;
    // openwhisk: the action writes /tmp full and still prints a result.
    expect_disk_full_while_echo_answers(&server, "openwhisk", json!({"a": 1})).await;

    // The server is fine, and no instance wrote to the host's disk: what is left under the
    // data directory is small.
    let health = server.get_json("/api/v1/health").await;
    assert_eq!(health["status"], "ok", "{health}");
    let used = du_bytes(&server.data_dir.join("run"));
    assert!(used < 8 << 20, "{used} bytes under run/");
}

/// Bytes used by files below `dir` on its own file system (tmpfs mounts below it excluded).
fn du_bytes(dir: &std::path::Path) -> u64 {
    let out = std::process::Command::new("du")
        .args(["-s", "-x", "-B1"])
        .arg(dir)
        .output()
        .expect("du");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX)
}

#[tokio::test]
async fn functions_are_boxed_in() {
    let (server, _dirs) = server_with_images(&[]).await;
    server
        .deploy(
            "demo",
            "box",
            json!({"image": "test/function:latest", "envs": {"MODE": "box"}, "scale": {"max": 1}}),
        )
        .await;
    let (status, _, body) = server.invoke("demo", "box", "{}").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let seen = parse(&body);
    // seccomp in filter mode, and a call the runtime default denies refused with EPERM (a new
    // user namespace needs no capability: only the filter stops it).
    assert_eq!(seen["seccomp"], "2", "{seen}");
    assert!(
        seen["unshare"]
            .as_str()
            .unwrap()
            .contains("Operation not permitted"),
        "{seen}"
    );
    assert_eq!(seen["control"], "read-only", "{seen}");
    // No new privileges, and the README's small capability set as the bounding set: Docker's
    // default minus MKNOD, NET_RAW, AUDIT_WRITE and SETFCAP (bit numbers from
    // linux/capability.h, computed here, not taken from the driver).
    assert_eq!(seen["no_new_privs"], "1", "{seen}");
    let kept: u64 = [
        0,  // CHOWN
        1,  // DAC_OVERRIDE
        3,  // FOWNER
        4,  // FSETID
        5,  // KILL
        6,  // SETGID
        7,  // SETUID
        8,  // SETPCAP
        10, // NET_BIND_SERVICE
        18, // SYS_CHROOT
    ]
    .iter()
    .map(|bit| 1u64 << bit)
    .sum();
    assert_eq!(seen["cap_bounding"], format!("{kept:016x}"), "{seen}");
    // Root inside, an unprivileged uid on the host.
    assert_eq!(seen["uid"], "0", "{seen}");
    assert_eq!(
        seen["uid_map"],
        format!("0 {HOST_ROOT_UID} 65536"),
        "{seen}"
    );
    let made = find_in_uppers(&server.data_dir, "tmp/made-by-function");
    let meta = std::fs::metadata(&made).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (HOST_ROOT_UID, HOST_ROOT_UID));
    // The function first in line for the OOM killer, the agent after it.
    assert_eq!(seen["oom"], "1000", "{seen}");
    let agent_oom: i32 = seen["agent_oom"].as_str().unwrap().parse().unwrap();
    assert!(agent_oom < 1000, "{seen}");
    let log = server.log();
    assert!(
        log.contains("user namespaces in use"),
        "the start says so:\n{log}"
    );
}

/// The file `relative` in the upper directory of the server's one instance that has it.
fn find_in_uppers(data_dir: &std::path::Path, relative: &str) -> PathBuf {
    let instances = data_dir.join("run/instances");
    std::fs::read_dir(&instances)
        .unwrap()
        .flatten()
        .map(|e| e.path().join("disk/upper").join(relative))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("no instance under {} has {relative}", instances.display()))
}

/// Whether a function reaches a service the test runs on the host's loopback (the call's
/// fetch gives up after 5 s).
async fn reaches_a_loopback_service(server: &Server) -> bool {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connected = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&connected);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            flag.store(true, Ordering::SeqCst);
            drop(socket);
        }
    });
    deploy_fetch(server, "loopback", json!({"TARGET_PORT": port.to_string()})).await;
    let (status, _, body) = server.invoke("demo", "loopback", "{}").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    connected.load(Ordering::SeqCst)
}

/// Deploys the test function's fetch mode with `envs` (`TARGET_PORT`, `TARGET_HOST`).
async fn deploy_fetch(server: &Server, name: &str, mut envs: Value) {
    envs["MODE"] = json!("fetch");
    server
        .deploy(
            "demo",
            name,
            json!({"image": "test/function:latest", "envs": envs, "timeout": "20s"}),
        )
        .await;
}

/// What the test function's fetch mode got.
fn fetched(body: &[u8]) -> String {
    parse(body)["fetched"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn host_loopback_is_out_of_reach_unless_the_server_allows_it() {
    let (server, _dirs) = server_with_images(&[]).await;
    assert!(
        !reaches_a_loopback_service(&server).await,
        "a function reached the host's loopback"
    );
    // Nor the faasbox API itself (it would answer 401 without a token).
    let api_port = server.url.rsplit(':').next().unwrap().to_string();
    deploy_fetch(&server, "api", json!({"TARGET_PORT": api_port})).await;
    let (status, _, body) = server.invoke("demo", "api", "{}").await;
    assert_eq!(status, 200);
    let got = fetched(&body);
    assert!(!got.contains("server returned"), "reached the API: {got}");

    // An address of the outside world still answers.
    let outside = OutsideAddress::add();
    let listener = tokio::net::TcpListener::bind((outside.ip, 0))
        .await
        .unwrap();
    let outside_port = listener.local_addr().unwrap().port();
    let serve = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = socket.read(&mut buf).await;
        socket
            .write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 12\r\n\r\nfrom outside")
            .await
            .unwrap();
    });
    deploy_fetch(
        &server,
        "outside",
        json!({"TARGET_PORT": outside_port.to_string(), "TARGET_HOST": outside.ip.to_string()}),
    )
    .await;
    let (status, _, body) = server.invoke("demo", "outside", "{}").await;
    assert_eq!(status, 200);
    assert_eq!(fetched(&body), "from outside");
    serve.await.unwrap();
    drop(server);

    // Opted in: the same function reaches the loopback service, and the start says so.
    let (server, _dirs) = server_with_images(&[ALLOW_HOST_LOOPBACK]).await;
    assert!(
        reaches_a_loopback_service(&server).await,
        "opted in, the function reaches the host's loopback"
    );
    assert!(server.log().contains("allow-host-loopback is on"));
}
