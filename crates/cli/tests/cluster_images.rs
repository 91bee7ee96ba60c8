//! Images on every server of a cluster (issue 19): servers on one PostgreSQL database with a
//! cluster registry (a real `docker-registry` on loopback, basic auth, its credentials stored
//! once as global registry credentials) share what is imported through any of them. An image
//! imported through server 0 deploys and runs through server 1 with the same digest; a name
//! removed through server 1 leaves server 0 within seconds, a name given through server 0
//! reaches server 1 without anything asking for it, and a namespace deleted through server 1
//! takes its names off server 0's store; a server that was stopped during an
//! import gets the image once it is back. (Group `cluster` in .config/nextest.toml: one such
//! test at a time.)

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::cluster::{Cluster, ClusterOptions};
use support::registry::Registry;
use support::{images, wait_for, Server};

/// How long a test waits for what it expects.
const WITHIN: Duration = Duration::from_secs(60);
/// How long a change through one server may take to reach another's image store.
const FOLLOWED: Duration = Duration::from_secs(15);

/// The function: answers its input.
const ECHO: &str = r#"#!/bin/sh
printf 'Content-Type: application/json\r\n\r\n'
cat
"#;

const USER: &str = "cluster";
const PASSWORD: &str = "cl-Reg1stry-pw";

/// A registry, and two servers that share images through it (its credentials are the global
/// ones, added once through server 0: the vault is in the shared store).
async fn cluster_with_registry() -> (Cluster, Registry) {
    let registry = Registry::start_htpasswd(&[(USER, PASSWORD)]);
    let cluster = Cluster::start(
        2,
        ClusterOptions {
            args: vec![
                "--cluster-registry".to_string(),
                format!("http://{}/faasbox", registry.addr),
            ],
            ..ClusterOptions::default()
        },
    )
    .await;
    cluster.server(0).cli_ok(&[
        "registry",
        "add",
        "--global",
        &registry.addr,
        "-u",
        USER,
        "--password",
        PASSWORD,
    ]);
    cluster.server(0).create_namespace("demo").await;
    (cluster, registry)
}

/// Imports the echo function's image into namespace demo through `server` as `name`; its
/// digest.
async fn import(server: &Server, name: &str) -> String {
    let (_dir, tar) = images::rootfs_tar_with(&[("www/cgi-bin/index.cgi", ECHO, 0o755)]);
    let query = images::rootfs_query();
    let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = server
        .import_as(&server.http, Some("demo"), &tar, name, &query)
        .await;
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    assert_eq!(status, 201, "importing {name}: {body}");
    let record: Value = serde_json::from_str(&body).expect("an image record");
    record["digest"].as_str().expect("a digest").to_string()
}

/// The digest namespace demo's image `name` has on `server`, if it has it.
async fn digest_on(server: &Server, name: &str) -> Option<String> {
    let images = server.get_json("/api/v1/namespaces/demo/images").await;
    images
        .as_array()
        .expect("a list of images")
        .iter()
        .find(|image| image["name"] == name)
        .map(|image| image["digest"].as_str().unwrap_or_default().to_string())
}

/// Calls demo/`function` through `server` with a marker and checks the echo.
async fn call_echoes(server: &Server, function: &str) {
    let input = json!({ "marker": format!("through {}", server.url) });
    let (status, _, body) = server
        .invoke("demo", function, serde_json::to_vec(&input).unwrap())
        .await;
    assert_eq!(
        status,
        200,
        "calling demo/{function} through {}: {}",
        server.url,
        String::from_utf8_lossy(&body)
    );
    let answer: Value = serde_json::from_slice(&body).expect("a JSON answer");
    assert_eq!(answer, input);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_image_imported_through_one_server_runs_on_another_and_its_removal_reaches_all() {
    let (cluster, registry) = cluster_with_registry().await;
    let digest = import(cluster.server(0), "shared/echo:v1").await;

    // The import answered once the registry had it: deploying and calling through the other
    // server works right away (it pulls by digest if the change has not reached it yet).
    cluster
        .server(1)
        .deploy("demo", "echo", json!({ "image": "shared/echo:v1" }))
        .await;
    call_echoes(cluster.server(1), "echo").await;
    assert_eq!(
        digest_on(cluster.server(1), "shared/echo:v1")
            .await
            .as_deref(),
        Some(digest.as_str()),
        "server 1 has the very image server 0 imported (content by digest)"
    );
    let log = registry.log();
    assert!(
        log.contains("faasbox/ns/demo/shared/echo"),
        "the image went through the cluster registry: {log}"
    );

    // Removed through server 1 (its function first: a revision that runs it keeps it), the
    // name leaves server 0 too.
    let r = cluster
        .server(1)
        .delete("/api/v1/namespaces/demo/functions/echo")
        .await;
    assert!(
        r.status().is_success(),
        "deleting demo/echo: {}",
        r.status()
    );
    let r = cluster
        .server(1)
        .delete("/api/v1/namespaces/demo/images?name=shared/echo:v1")
        .await;
    let status = r.status();
    assert_eq!(
        status,
        200,
        "removing the image: {}",
        r.text().await.unwrap_or_default()
    );
    assert_eq!(digest_on(cluster.server(1), "shared/echo:v1").await, None);
    wait_for(
        FOLLOWED,
        "the removed name gone from server 0's images",
        || digest_on(cluster.server(0), "shared/echo:v1"),
        Option::is_none,
    )
    .await;
    // A name given through server 0 reaches server 1 by the change alone (no deploy asks).
    let digest = import(cluster.server(0), "shared/echo:v2").await;
    let on_1 = wait_for(
        FOLLOWED,
        "server 1 pulled the new name on its change",
        || digest_on(cluster.server(1), "shared/echo:v2"),
        Option::is_some,
    )
    .await;
    assert_eq!(on_1.as_deref(), Some(digest.as_str()));

    // The namespace deleted through server 1 leaves server 0's image store as well.
    let r = cluster.server(1).delete("/api/v1/namespaces/demo").await;
    assert!(r.status().is_success(), "deleting demo: {}", r.status());
    let index = cluster.data_dir(0).join("images/images.json");
    wait_for(
        FOLLOWED,
        "namespace demo's names gone from server 0's image store",
        || async { std::fs::read_to_string(&index).expect("server 0's images.json") },
        |text: &String| !text.contains("shared/echo:v2"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_stopped_during_an_import_gets_the_image_when_it_is_back() {
    let (mut cluster, _registry) = cluster_with_registry().await;
    assert!(cluster.stop(1), "server 1 stopped cleanly");
    let digest = import(cluster.server(0), "shared/late:v1").await;
    cluster
        .server(0)
        .deploy("demo", "late", json!({ "image": "shared/late:v1" }))
        .await;
    cluster.restart(1).await;
    // The call through server 1 needs the pinned digest: it is pulled at start (every row of
    // the catalog), or at the call at the latest.
    call_echoes(cluster.server(1), "late").await;
    let on_1 = wait_for(
        WITHIN,
        "server 1 has the image under its name",
        || digest_on(cluster.server(1), "shared/late:v1"),
        Option::is_some,
    )
    .await;
    assert_eq!(on_1.as_deref(), Some(digest.as_str()));
    let log = cluster.log(1);
    assert!(
        log.contains("reconcil"),
        "server 1 reconciled the catalog at its start: {log}"
    );
}
