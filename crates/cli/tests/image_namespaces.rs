//! Image names belong to namespaces, against a real server, runc and a real htpasswd
//! `docker-registry`: namespace `a`'s admin token tries every way to put its code behind
//! namespace `b`'s function (import, pull, push, remove b's names; pre-seed a registry name b
//! deploys later; overwrite a global service's image) and each attempt is refused or lands in
//! a's own table, while b's function — which gets b's secret through its input template —
//! keeps running b's code; and a private image one namespace pulled is not usable by another
//! until that one's own credentials get it from the registry.

mod support;

use std::process::Command;

use reqwest::Method;
use serde_json::{json, Value};
use support::marked::{self, call, stream_end};
use support::registry::Registry;
use support::{client_with_token, send, Server, FAASBOX};

const SECRET: &str = "b-S3cret-4f1a9";
const A_PASS: &str = "a-Pass%$*:1";
const B_PASS: &str = "b-Pass%$*:2";

/// A token for namespace `ns` with role admin.
fn token_for(server: &Server, ns: &str) -> String {
    let token = server.cli_ok(&[
        "token",
        "create",
        "-n",
        ns,
        "--name",
        &format!("{ns}-admin"),
    ]);
    token.trim().to_string()
}

/// The CLI with another token.
fn cli_as(server: &Server, token: &str, args: &[&str]) -> std::process::Output {
    Command::new(FAASBOX)
        .args(args)
        .env("FAASBOX_URL", &server.url)
        .env("FAASBOX_TOKEN", token)
        .output()
        .expect("running the CLI")
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|i| i["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Adds registry credentials for namespace `ns` with `http`'s token.
async fn add_registry(
    http: &reqwest::Client,
    server: &Server,
    ns: &str,
    addr: &str,
    user: &str,
    password: &str,
) {
    let (status, answer) = send(
        http,
        server,
        Method::POST,
        &format!("/api/v1/namespaces/{ns}/registries"),
        Some(json!({"url": addr, "username": user, "password": password})),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
}

#[tokio::test]
async fn a_namespace_admin_cannot_put_its_code_behind_another_namespaces_function() {
    let registry = Registry::start_htpasswd(&[("a-user", A_PASS), ("b-user", B_PASS)]);
    let server = Server::start().await;
    server.create_namespace("a").await;
    server.create_namespace("b").await;
    let a_token = token_for(&server, "a");
    let a = client_with_token(Some(&a_token));
    let b = client_with_token(Some(&token_for(&server, "b")));
    let (good, evil, service) = (marked::image("b"), marked::image("a"), marked::image("svc"));

    // b's function: b's image in b's table, b's secret through its input template.
    let (status, record) = marked::import(&server, &b, Some("b"), &good, "b/victim", &[]).await;
    assert_eq!(status, 201, "{record}");
    assert_eq!(record["namespace"], "b");
    let b_digest = record["digest"].as_str().unwrap().to_string();
    let (status, _) = send(
        &b,
        &server,
        Method::PUT,
        "/api/v1/namespaces/b/secrets/token",
        Some(json!({"data": base64(SECRET)})),
    )
    .await;
    assert!(status < 300, "{status}");
    let victim = json!({
        "image": "b/victim",
        "secrets": ["token"],
        "input": {"auth": "jq(.secrets.token)", "data": "jq(.input)"},
    });
    let (status, deployed) = send(
        &b,
        &server,
        Method::PUT,
        "/api/v1/namespaces/b/functions/victim",
        Some(victim.clone()),
    )
    .await;
    assert_eq!(status, 201, "{deployed}");
    assert_eq!(deployed["digest"], b_digest.as_str());
    let (status, code, answer) = call(&server, "b", "victim", &json!({"n": 1})).await;
    assert_eq!((status, code.as_str()), (200, "b"), "{answer}");
    assert_eq!(
        answer["input"]["auth"], SECRET,
        "b's own code gets b's secret"
    );

    // A global service on a server-wide image.
    let record = marked::import_ok(&server, None, &service, "svc/shared:1").await;
    let svc_digest = record["digest"].as_str().unwrap().to_string();
    let (status, _) = send(
        &server.http,
        &server,
        Method::PUT,
        "/api/v1/functions/shared",
        Some(json!({"image": "svc/shared:1"})),
    )
    .await;
    assert_eq!(status, 201);

    // b publishes its image to a registry under a name it deploys later.
    let seeded = registry.reference("b-corp/app:1.0");
    add_registry(&b, &server, "b", &registry.addr, "b-user", B_PASS).await;
    let r = b
        .post(server.url("/api/v1/namespaces/b/images/push"))
        .query(&[("name", "b/victim"), ("target", seeded.as_str())])
        .send()
        .await
        .unwrap();
    let (status, end) = stream_end(r).await;
    assert_eq!(
        (status, end["event"].as_str()),
        (200, Some("done")),
        "{end}"
    );

    // --- a's attempts -----------------------------------------------------------------
    // Import over b's name: server-wide needs the admin token, b's table is invisible, a's
    // own table takes it without touching b's.
    let (status, answer) = marked::import(&server, &a, None, &evil, "b/victim", &[]).await;
    assert_eq!(status, 403, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("-n NS"),
        "{answer}"
    );
    let (status, answer) = marked::import(&server, &a, Some("b"), &evil, "b/victim", &[]).await;
    assert_eq!(status, 404, "{answer}");
    let (status, mine) = marked::import(&server, &a, Some("a"), &evil, "b/victim", &[]).await;
    assert_eq!(status, 201, "{mine}");
    assert_eq!(mine["namespace"], "a");
    let evil_digest = mine["digest"].as_str().unwrap().to_string();
    // Over the global service's image.
    let (status, _) = marked::import(&server, &a, None, &evil, "svc/shared:1", &[]).await;
    assert_eq!(status, 403);
    let (status, _) = marked::import(&server, &a, Some("a"), &evil, "svc/shared:1", &[]).await;
    assert_eq!(status, 201);
    // Pre-seeding the registry name b deploys later.
    let (status, _) = marked::import(&server, &a, Some("a"), &evil, &seeded, &[]).await;
    assert_eq!(status, 201);
    // Pulls and pushes into or out of b's table, or the server-wide one.
    for (method, path) in [
        (
            Method::POST,
            format!("/api/v1/namespaces/b/images/pull?ref={seeded}"),
        ),
        (
            Method::POST,
            "/api/v1/namespaces/b/images/push?name=b/victim&target=127.0.0.1:1/x:1".to_string(),
        ),
        (
            Method::DELETE,
            "/api/v1/namespaces/b/images?name=b/victim".to_string(),
        ),
        (
            Method::POST,
            "/api/v1/namespaces/b/images/prune".to_string(),
        ),
        (Method::GET, "/api/v1/namespaces/b/images".to_string()),
        (
            Method::PATCH,
            "/api/v1/namespaces/b/functions/victim".to_string(),
        ),
    ] {
        let (status, answer) = send(
            &a,
            &server,
            method,
            &path,
            Some(json!({"image": "b/victim"})),
        )
        .await;
        assert_eq!(status, 404, "{path}: {answer}");
    }
    for (method, path) in [
        (Method::POST, format!("/api/v1/images/pull?ref={seeded}")),
        (
            Method::POST,
            format!("/api/v1/images/push?name=svc/shared:1&target={seeded}"),
        ),
        (
            Method::DELETE,
            "/api/v1/images?name=svc/shared:1".to_string(),
        ),
        (Method::POST, "/api/v1/images/prune".to_string()),
        (Method::PUT, "/api/v1/functions/shared".to_string()),
    ] {
        let (status, answer) = send(
            &a,
            &server,
            method,
            &path,
            Some(json!({"image": "b/victim"})),
        )
        .await;
        assert_eq!(status, 403, "{path}: {answer}");
    }
    // From its own route a can push only its own images: not b's by digest, and pulling b's
    // private image needs credentials a does not have.
    let r = a
        .post(server.url("/api/v1/namespaces/a/images/push"))
        .query(&[("name", b_digest.as_str()), ("target", "127.0.0.1:1/x:1")])
        .send()
        .await
        .unwrap();
    let (status, end) = stream_end(r).await;
    assert_eq!(status, 200);
    assert_eq!(end["error"]["code"], "faasbox.not_found", "{end}");
    let r = a
        .post(server.url("/api/v1/namespaces/a/images/pull"))
        .query(&[("ref", seeded.as_str())])
        .send()
        .await
        .unwrap();
    let (_, end) = stream_end(r).await;
    assert_eq!(
        end["error"]["code"], "faasbox.registry.unauthorized",
        "{end}"
    );

    // --- nothing of b's changed ---------------------------------------------------------
    let b_images = server.get_json("/api/v1/namespaces/b/images").await;
    assert_eq!(names(&b_images), ["b/victim:latest"]);
    assert_eq!(b_images[0]["digest"], b_digest.as_str());
    let global = server.get_json("/api/v1/images").await;
    assert_eq!(names(&global), ["svc/shared:1"]);
    assert_eq!(global[0]["digest"], svc_digest.as_str());
    let mut a_names = names(&server.get_json("/api/v1/namespaces/a/images").await);
    a_names.sort();
    assert_eq!(
        a_names,
        [
            seeded.clone(),
            "b/victim:latest".into(),
            "svc/shared:1".into()
        ]
    );
    // a's CLI lists its own and the server-wide images, never b's.
    let out = cli_as(&server, &a_token, &["image", "ls"]);
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(listed.starts_with("NAMESPACE"), "{listed}");
    assert!(
        listed.contains("(global)") && listed.contains("\na "),
        "{listed}"
    );
    assert!(!listed.contains(&b_digest[..19]), "{listed}");

    // b's function runs b's code: warm, after an update (new instances), after a redeploy
    // that resolves the name again.
    for step in ["warm", "update", "redeploy"] {
        match step {
            "update" => {
                let (status, answer) = send(
                    &b,
                    &server,
                    Method::PATCH,
                    "/api/v1/namespaces/b/functions/victim",
                    Some(json!({"envs": {"VERSION": "2"}})),
                )
                .await;
                assert_eq!(status, 200, "{answer}");
            }
            "redeploy" => {
                let (status, answer) = send(
                    &b,
                    &server,
                    Method::PUT,
                    "/api/v1/namespaces/b/functions/victim",
                    Some(victim.clone()),
                )
                .await;
                assert_eq!(status, 200, "{answer}");
                assert_eq!(answer["digest"], b_digest.as_str());
            }
            _ => {}
        }
        let (status, code, answer) = call(&server, "b", "victim", &json!({"step": step})).await;
        assert_eq!((status, code.as_str()), (200, "b"), "{step}: {answer}");
        assert_eq!(answer["input"]["auth"], SECRET);
    }
    // b's deploys of the registry name a pre-seeded: never sees only b's tables (nothing
    // there), missing and always pull with b's credentials: b's code.
    let (status, answer) = send(
        &b,
        &server,
        Method::PUT,
        "/api/v1/namespaces/b/functions/reg?pull=never",
        Some(json!({"image": seeded})),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    for (name, query) in [("reg", "?pull=missing"), ("reg2", "")] {
        let (status, answer) = send(
            &b,
            &server,
            Method::PUT,
            &format!("/api/v1/namespaces/b/functions/{name}{query}"),
            Some(json!({"image": seeded})),
        )
        .await;
        assert_eq!(status, 201, "{answer}");
        assert_eq!(answer["image"]["status"], "present", "{answer}");
        assert_ne!(answer["digest"], evil_digest.as_str());
        let (status, code, answer) = call(&server, "b", name, &json!({})).await;
        assert_eq!((status, code.as_str()), (200, "b"), "{answer}");
    }
    // The global service runs the server-wide image for everyone, also after a redeploy.
    let (status, _) = send(
        &server.http,
        &server,
        Method::PUT,
        "/api/v1/functions/shared",
        Some(json!({"image": "svc/shared:1"})),
    )
    .await;
    assert_eq!(status, 200);
    for ns in ["a", "b"] {
        let (status, _, body) = server
            .call(
                &format!("/api/v1/namespaces/{ns}/global-functions/shared/invoke"),
                "{}",
            )
            .await;
        let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        assert_eq!(
            (status, answer["code"].as_str()),
            (200, Some("svc")),
            "{ns}: {answer}"
        );
    }
    // a's own function of that name runs a's code, without b's secret.
    let (status, answer) = send(
        &a,
        &server,
        Method::PUT,
        "/api/v1/namespaces/a/functions/mine",
        Some(json!({"image": "b/victim"})),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["digest"], evil_digest.as_str());
    let (status, code, answer) = call(&server, "a", "mine", &json!({})).await;
    assert_eq!((status, code.as_str()), (200, "a"), "{answer}");
    assert!(!answer.to_string().contains(SECRET));
    assert!(!server.log().contains(SECRET));
}

fn base64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test]
async fn a_private_image_one_namespace_pulled_needs_the_others_own_credentials() {
    let registry = Registry::start_htpasswd(&[("a-user", A_PASS), ("b-user", B_PASS)]);
    let server = Server::start().await;
    server.create_namespace("a").await;
    server.create_namespace("b").await;
    let private = registry.reference("a-corp/private:1");
    // a puts its image into the registry and pulls it with its credentials.
    marked::import_ok(&server, Some("a"), &marked::image("private"), "a/private").await;
    add_registry(&server.http, &server, "a", &registry.addr, "a-user", A_PASS).await;
    server.cli_ok(&["image", "push", "a/private", &private, "-n", "a"]);
    server.cli_ok(&["image", "rm", "a/private", "-n", "a"]);
    let out = server.cli_ok(&["image", "pull", &private, "-n", "a", "-o", "json"]);
    let pulled: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(pulled["namespace"], "a");
    server.cli_ok(&["fn", "deploy", "a/f", "--image", &private]);
    let (status, code, _) = call(&server, "a", "f", &json!({})).await;
    assert_eq!((status, code.as_str()), (200, "private"));

    // b without credentials: the image a pulled is not b's; deploys are saved with the image
    // missing (never: refused), calls fail clearly, and b's table stays empty.
    let b_token = server
        .cli_ok(&["token", "create", "-n", "b"])
        .trim()
        .to_string();
    let out = cli_as(
        &server,
        &b_token,
        &[
            "fn", "deploy", "b/g", "--image", &private, "--pull", "never",
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not in the local store"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for pull in ["missing", "always"] {
        let out = cli_as(
            &server,
            &b_token,
            &["fn", "deploy", "b/g", "--image", &private, "--pull", pull],
        );
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{stderr}");
        assert!(
            stderr.contains("image is missing") && stderr.contains("401"),
            "{stderr}"
        );
    }
    let shown = server.get_json("/api/v1/namespaces/b/functions/g").await;
    assert_eq!(shown["image"]["status"], "missing", "{shown}");
    assert_eq!(shown["digest"], Value::Null);
    let (status, _, answer) = call(&server, "b", "g", &json!({})).await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"]["code"], "faasbox.image.missing");
    let out = cli_as(&server, &b_token, &["image", "pull", &private, "-n", "b"]);
    assert!(!out.status.success());
    assert_eq!(
        server.get_json("/api/v1/namespaces/b/images").await,
        json!([])
    );

    // Wrong credentials of b's own: still refused.
    add_registry(
        &server.http,
        &server,
        "b",
        &registry.addr,
        "b-user",
        "wrong",
    )
    .await;
    let (status, _, answer) = call(&server, "b", "g", &json!({})).await;
    assert_eq!(status, 503, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("b-user"),
        "{answer}"
    );
    // b's valid credentials: the next call pulls with them and runs it.
    server.cli_ok(&["registry", "rm", "b", &registry.addr]);
    add_registry(&server.http, &server, "b", &registry.addr, "b-user", B_PASS).await;
    let (status, code, answer) = call(&server, "b", "g", &json!({})).await;
    assert_eq!((status, code.as_str()), (200, "private"), "{answer}");
    let b_images = server.get_json("/api/v1/namespaces/b/images").await;
    assert_eq!(names(&b_images), std::slice::from_ref(&private));
    let shown = server.get_json("/api/v1/namespaces/b/functions/g").await;
    assert_eq!(
        shown["digest"], b_images[0]["digest"],
        "pinned at that call"
    );
    assert!(!server.log().contains(A_PASS) && !server.log().contains(B_PASS));
}

#[tokio::test]
async fn a_flows_implicit_function_runs_its_namespaces_image_then_a_server_wide_one() {
    let server = Server::start().await;
    for ns in ["a", "b", "c"] {
        server.create_namespace(ns).await;
    }
    // The same name in a's and b's tables, and server-wide.
    for (ns, marker) in [(Some("a"), "a"), (Some("b"), "b"), (None, "global")] {
        marked::import_ok(&server, ns, &marked::image(marker), "tools/run").await;
    }
    let flow = "functions:\n- id: run\n  image: tools/run\n  type: knative-workflow\nstates:\n\
                - id: go\n  type: action\n  action:\n    function: run\n    input: {x: 1}\n  \
                transform: {code: 'jq(.return.code)'}\n";
    for (ns, expected) in [("a", "a"), ("b", "b"), ("c", "global")] {
        let r = server
            .http
            .put(server.url(&format!("/api/v1/namespaces/{ns}/flows/go")))
            .body(flow)
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "{}",
            r.text().await.unwrap_or_default()
        );
        let r = server
            .http
            .post(server.url(&format!("/api/v1/namespaces/{ns}/flows/go/run?wait=true")))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let answer: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(
            (status, answer["code"].as_str()),
            (200, Some(expected)),
            "{ns}: {answer}"
        );
    }
    // Prune keeps the images deployed flows run.
    let r = server
        .post_json("/api/v1/namespaces/a/images/prune", &json!({}))
        .await;
    let pruned: Value = r.json().await.unwrap();
    assert_eq!(pruned["removed"], json!([]), "{pruned}");
}

#[tokio::test]
async fn a_deleted_namespaces_images_go_with_it_and_a_new_one_of_its_name_starts_empty() {
    let server = Server::start().await;
    server.create_namespace("z").await;
    let record = marked::import_ok(&server, Some("z"), &marked::image("z"), "z/app").await;
    server.cli_ok(&["fn", "deploy", "z/f", "--image", "z/app"]);
    let layer = record["layers"][0]["diff_id"].as_str().unwrap().to_string();
    let layer = server
        .data_dir
        .join("images/layers")
        .join(layer.trim_start_matches("sha256:"));
    assert!(layer.is_dir());
    server.cli_ok(&["ns", "rm", "z"]);
    server.create_namespace("z").await;
    assert_eq!(
        server.get_json("/api/v1/namespaces/z/images").await,
        json!([])
    );
    let (status, answer) = send(
        &server.http,
        &server,
        Method::PUT,
        "/api/v1/namespaces/z/functions/f",
        Some(json!({"image": "z/app"})),
    )
    .await;
    assert_eq!(status, 400, "the old namespace's image is gone: {answer}");
    // Its layer went with it (the collection runs in the background).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while layer.exists() {
        assert!(std::time::Instant::now() < deadline, "the layer stays");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
