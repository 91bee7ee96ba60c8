//! A data directory from before image namespaces and revisions keeps working: its images
//! (`images.json` version 1) become server-wide images, its functions and global services
//! (schema 8, no revisions) get revision 1 pinned to their image's digest at the first start,
//! a function whose image is not there then is pinned at its first call that finds it, and
//! namespaces, secrets, tokens and invocations are all still there.
//!
//! The old data directory is made by a server of this build and then turned back into the
//! old format exactly as the old code wrote it: `images.json` version 1 (one table, each name
//! with its content) and the database at schema 8 (no revision table or columns).

mod support;

use serde_json::{json, Value};
use support::marked::{self, call};
use support::{client_with_token, Server};

/// Rewrites `images.json` (version 2) as version 1: every server-wide name with its content.
fn images_json_to_version_1(data: &std::path::Path) {
    let path = data.join("images/images.json");
    let v2: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(v2["version"], 2);
    let contents = v2["contents"].as_array().unwrap();
    let images: Vec<Value> = v2["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|name| {
            assert!(name["namespace"].is_null(), "old stores had no namespaces");
            let content = contents
                .iter()
                .find(|c| c["digest"] == name["digest"])
                .unwrap();
            json!({
                "name": name["name"],
                "digest": content["digest"],
                "config": content["config"],
                "layers": content["layers"],
                "size": content["size"],
                "created": name["created"],
                "config_digest": content["config_digest"],
            })
        })
        .collect();
    let v1 = json!({"version": 1, "images": images});
    std::fs::write(&path, serde_json::to_vec_pretty(&v1).unwrap()).unwrap();
}

/// Takes the database back to schema 8: no revisions (9), no index of a function's calls (10),
/// no instance calls and no state or invocation on instance log lines (11), no subflow depth of
/// instances (12), no records of functions from code (13), no run fields (14), no service
/// instances (15), no event subscriptions (16), no HTTP routes (17), no instance steps (18), no
/// nodes (19), no flow leases or delivery claims (20), no changes feed (21), no UI sessions
/// (22), no image catalog (23).
fn database_to_schema_8(data: &std::path::Path) {
    let conn = rusqlite::Connection::open(data.join("faasbox.db")).unwrap();
    conn.execute_batch(
        "DROP TABLE image_names;
         DROP TABLE ui_sessions;
         DROP TABLE changes;
         DROP INDEX flow_instances_by_owner;
         ALTER TABLE flow_instances DROP COLUMN owner;
         ALTER TABLE flow_instances DROP COLUMN lease_until_ms;
         ALTER TABLE flow_instances DROP COLUMN epoch;
         ALTER TABLE event_deliveries DROP COLUMN claimed_by;
         ALTER TABLE event_deliveries DROP COLUMN claimed_until_ms;
         DROP TABLE nodes;
         ALTER TABLE invocations DROP COLUMN node;
         DROP TABLE flow_instance_steps;
         DROP TABLE routes;
         DROP TABLE subscriptions;
         DROP TABLE service_secret_params;
         DROP TABLE services;
         DROP INDEX invocations_by_status;
         ALTER TABLE invocations DROP COLUMN began;
         ALTER TABLE invocations DROP COLUMN mode;
         ALTER TABLE invocations DROP COLUMN revision;
         ALTER TABLE invocations DROP COLUMN input;
         ALTER TABLE invocations DROP COLUMN output;
         ALTER TABLE invocations DROP COLUMN error_type;
         ALTER TABLE invocations DROP COLUMN event;
         ALTER TABLE invocations DROP COLUMN http_context;
         ALTER TABLE invocations DROP COLUMN cold_start;
         ALTER TABLE invocations DROP COLUMN wait_ms;
         ALTER TABLE invocations DROP COLUMN init_ms;
         ALTER TABLE invocations DROP COLUMN run_ms;
         ALTER TABLE invocations DROP COLUMN attempts;
         ALTER TABLE invocations DROP COLUMN callback_url;
         ALTER TABLE invocations DROP COLUMN callback_status;
         ALTER TABLE invocations DROP COLUMN secrets;
         ALTER TABLE invocations DROP COLUMN services;
         DROP TABLE code_build_cache;
         DROP TABLE code_build_logs;
         DROP TABLE code_records;
         DROP INDEX invocations_by_function;
         DROP TABLE flow_instance_calls;
         ALTER TABLE flow_instance_logs DROP COLUMN state;
         ALTER TABLE flow_instance_logs DROP COLUMN invocation;
         DROP TABLE function_revisions;
         ALTER TABLE functions DROP COLUMN revision;
         ALTER TABLE global_functions DROP COLUMN revision;
         ALTER TABLE flow_instances DROP COLUMN depth;
         PRAGMA user_version = 8;",
    )
    .unwrap();
}

#[tokio::test]
async fn an_old_data_directory_keeps_its_images_functions_and_data() {
    let (old, new) = (marked::image("old"), marked::image("new"));
    let mut server = Server::start().await;
    server.create_namespace("demo").await;
    server.cli_ok(&["secret", "set", "demo/s", "--value", "v"]);
    let token = server.cli_ok(&["token", "create", "-n", "demo", "--role", "invoke"]);
    let image = marked::import_ok(&server, None, &old, "old/app").await;
    marked::import_ok(&server, None, &old, "old/other").await;
    server.cli_ok(&["fn", "deploy", "demo/f", "--image", "old/app"]);
    server.cli_ok(&["fn", "deploy", "demo/h", "--image", "old/other"]);
    server.cli_ok(&["fn", "deploy", "--global", "g", "--image", "old/app"]);
    let (status, code, _) = call(&server, "demo", "f", &json!({})).await;
    assert_eq!((status, code.as_str()), (200, "old"));
    // h's image is gone when the new server first starts.
    server.cli_ok(&["image", "rm", "old/other", "--force"]);
    let updated = server.get_json("/api/v1/namespaces/demo/functions/f").await["updated"].clone();
    assert!(server.stop());
    let data = server.data_dir.clone();
    images_json_to_version_1(&data);
    database_to_schema_8(&data);

    let server = Server::start_in(&data).await;
    // The images are server-wide now, with their digests.
    let images = server.get_json("/api/v1/images").await;
    assert_eq!(images.as_array().unwrap().len(), 1, "{images}");
    assert_eq!(images[0]["name"], "old/app:latest");
    assert_eq!(images[0]["namespace"], Value::Null);
    assert_eq!(images[0]["digest"], image["digest"]);
    let stored: Value =
        serde_json::from_slice(&std::fs::read(data.join("images/images.json")).unwrap()).unwrap();
    assert_eq!(stored["version"], 1, "rewritten only at the next change");

    // Functions and global services: revision 1, pinned at this start.
    let f = server.get_json("/api/v1/namespaces/demo/functions/f").await;
    assert_eq!(f["revision"], 1, "{f}");
    assert_eq!(f["digest"], image["digest"]);
    assert_eq!(f["image"]["status"], "present");
    assert_eq!(f["updated"], updated, "the function itself is unchanged");
    let history = server
        .get_json("/api/v1/namespaces/demo/functions/f/revisions")
        .await;
    assert_eq!(history.as_array().unwrap().len(), 1);
    assert_eq!(history[0]["created_by"], "(before revisions)");
    assert_eq!(history[0]["created"], updated);
    let g = server.get_json("/api/v1/functions/g").await;
    assert_eq!(
        (g["revision"].clone(), g["digest"].clone()),
        (json!(1), image["digest"].clone())
    );
    let (status, code, _) = call(&server, "demo", "f", &json!({})).await;
    assert_eq!((status, code.as_str()), (200, "old"));
    let (status, _, body) = server
        .call("/api/v1/namespaces/demo/global-functions/g/invoke", "{}")
        .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    // h's image was not there: revision 1 without a digest, pinned at the first call that
    // finds it.
    let h = server.get_json("/api/v1/namespaces/demo/functions/h").await;
    assert_eq!(
        (h["revision"].clone(), h["digest"].clone()),
        (json!(1), Value::Null),
        "{h}"
    );
    let (status, _, answer) = call(&server, "demo", "h", &json!({})).await;
    assert_eq!(status, 503, "{answer}");
    let other = marked::import_ok(&server, None, &new, "old/other").await;
    let (status, code, _) = call(&server, "demo", "h", &json!({})).await;
    assert_eq!((status, code.as_str()), (200, "new"));
    let h = server.get_json("/api/v1/namespaces/demo/functions/h").await;
    assert_eq!(h["digest"], other["digest"]);
    let history = server
        .get_json("/api/v1/namespaces/demo/functions/h/revisions")
        .await;
    assert_eq!(history[0]["digest"], other["digest"], "the pin is stored");

    // Nothing else was lost: secrets, tokens, calls.
    let secrets = server.get_json("/api/v1/namespaces/demo/secrets").await;
    assert_eq!(secrets.as_array().unwrap().len(), 1);
    let calls = server.get_json("/api/v1/namespaces/demo/invocations").await;
    assert_eq!(calls.as_array().unwrap().len(), 5, "{calls}");
    let invoker = client_with_token(Some(token.trim()));
    let r = invoker
        .post(server.url("/api/v1/namespaces/demo/functions/f/invoke"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // The tag moving now changes nothing until a redeploy; the redeploy is revision 2.
    marked::import_ok(&server, None, &new, "old/app").await;
    let (_, code, _) = call(&server, "demo", "f", &json!({})).await;
    assert_eq!(code, "old");
    server.cli_ok(&["fn", "deploy", "demo/f", "--image", "old/app"]);
    let (_, code, _) = call(&server, "demo", "f", &json!({})).await;
    assert_eq!(code, "new");
    assert_eq!(
        server.get_json("/api/v1/namespaces/demo/functions/f").await["revision"],
        2
    );
}
