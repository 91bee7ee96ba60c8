//! A real `docker-registry` (Debian's package) on loopback with htpasswd auth, and a helper
//! that fills it with the test function through `faasbox image push`.

use std::path::Path;

pub use faasbox_test_registry::Registry;

use super::Server;

/// A registry (user `user`, `password`) holding the image of `oci_tar` as `path`, pushed by
/// `faasbox image push` from a server that imported it; returns the registry and the reference.
pub async fn with_image(
    user: &str,
    password: &str,
    oci_tar: &Path,
    path: &str,
) -> (Registry, String) {
    let registry = Registry::start_htpasswd(&[(user, password)]);
    let reference = registry.reference(path);
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let r = server
        .import_as(
            &server.http,
            Some("demo"),
            oci_tar,
            "local/function:latest",
            &[],
        )
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    server.cli_ok(&[
        "registry",
        "add",
        "demo",
        &registry.addr,
        "-u",
        user,
        "--password",
        password,
    ]);
    let out = server.cli_ok(&[
        "image",
        "push",
        "local/function:latest",
        &reference,
        "-n",
        "demo",
    ]);
    assert!(out.contains("sha256:"), "{out}");
    assert!(!out.contains(password), "{out}");
    (registry, reference)
}
