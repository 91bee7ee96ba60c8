//! Registry credentials: scopes, host look-ups, listing without passwords.

use super::*;
use crate::{RegistryCredentials, RegistryScope};

fn demo() -> RegistryScope {
    RegistryScope::Namespace("demo".into())
}

/// The user `v` would pull `image` with for a function of `ns` (a global service: `None`).
async fn resolve(v: &Vault, ns: Option<&str>, image: &str) -> Option<String> {
    user_of(v.resolve_registry_credentials(ns, image).await.unwrap())
}

fn user_of(found: Option<RegistryCredentials>) -> Option<String> {
    found.map(|c| c.username)
}

#[tokio::test]
async fn scopes_are_looked_up_by_host() {
    let env = env();
    let v = &env.vault;
    v.put_registry(demo(), "https://ghcr.io/v2/", "alice", "pw-a")
        .await
        .unwrap();
    v.put_registry(RegistryScope::Global, "ghcr.io", "bob", "pw-b")
        .await
        .unwrap();
    v.put_registry(RegistryScope::GlobalPrivate, "GHCR.io", "carol", "pw-c")
        .await
        .unwrap();
    v.put_registry(
        RegistryScope::Global,
        "https://index.docker.io/v1/",
        "dave",
        "pw-d",
    )
    .await
    .unwrap();
    v.put_registry(demo(), "localhost:5000", "erin", "pw-e")
        .await
        .unwrap();

    // Exact scopes.
    let found = v
        .registry_credentials(&demo(), "ghcr.io/team/app:1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.username.as_str(), found.password.as_str()),
        ("alice", "pw-a")
    );
    let other = RegistryScope::Namespace("other".into());
    assert!(v
        .registry_credentials(&other, "ghcr.io")
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        user_of(
            v.registry_credentials(&RegistryScope::Global, "ghcr.io")
                .await
                .unwrap()
        )
        .unwrap(),
        "bob"
    );
    assert_eq!(
        user_of(
            v.registry_credentials(&RegistryScope::GlobalPrivate, "ghcr.io")
                .await
                .unwrap()
        )
        .unwrap(),
        "carol"
    );
    // The port is part of the host.
    assert_eq!(
        user_of(
            v.registry_credentials(&demo(), "http://localhost:5000/x")
                .await
                .unwrap()
        )
        .unwrap(),
        "erin"
    );
    assert!(v
        .registry_credentials(&demo(), "localhost")
        .await
        .unwrap()
        .is_none());

    // What a function would pull with.
    assert_eq!(
        resolve(v, Some("demo"), "ghcr.io/team/app:1")
            .await
            .unwrap(),
        "alice"
    );
    assert_eq!(
        resolve(v, Some("other"), "ghcr.io/team/app:1")
            .await
            .unwrap(),
        "bob"
    );
    assert_eq!(
        resolve(v, None, "ghcr.io/team/app:1").await.unwrap(),
        "carol"
    );
    assert_eq!(
        resolve(v, Some("demo"), "docker.io/library/alpine")
            .await
            .unwrap(),
        "dave"
    );
    assert_eq!(
        resolve(v, None, "registry-1.docker.io").await.unwrap(),
        "dave"
    );
    assert!(resolve(v, Some("demo"), "quay.io/x/y").await.is_none());

    // Global scopes have their own data keys.
    assert!(env.store.data_key("*global").unwrap().is_some());
    assert!(env.store.data_key("*global-private").unwrap().is_some());
}

#[tokio::test]
async fn passwords_with_special_characters_round_trip() {
    let env = env();
    for (host, password) in [
        ("ghcr.io", SEED_PASSWORD),
        ("quay.io", "a:b:c%$*::"),
        ("gcr.io", "ewogICJ0eXBlIjo...WlJkMWhqK1RRRF=="),
        ("ecr.aws", "späß €"),
    ] {
        env.vault
            .put_registry(demo(), host, "_json_key_base64", password)
            .await
            .unwrap();
        let found = env
            .vault
            .registry_credentials(&demo(), host)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.password.as_str(), password);
        assert_eq!(found.username, "_json_key_base64");
    }
}

#[tokio::test]
async fn listing_shows_no_password_and_replacing_keeps_the_id() {
    let env = env();
    let first = env
        .vault
        .put_registry(demo(), "https://ghcr.io", "admin", SEED_PASSWORD)
        .await
        .unwrap();
    assert_eq!(first.host, "ghcr.io");
    assert_eq!(first.url, "https://ghcr.io");
    assert_eq!(first.scope, demo());
    let second = env
        .vault
        .put_registry(demo(), "ghcr.io/v2", "robot", "new-pw")
        .await
        .unwrap();
    assert_eq!(second.id, first.id);
    assert_eq!(second.created, first.created);
    assert_eq!(second.username, "robot");
    env.vault
        .put_registry(RegistryScope::Global, "quay.io", "g", SEED_PASSWORD)
        .await
        .unwrap();

    let listed = env.vault.list_registries(&demo()).await.unwrap();
    assert_eq!(listed.len(), 1);
    let shown = format!("{listed:?} {}", serde_json::to_string(&listed).unwrap());
    assert!(
        !shown.contains("new-pw") && !shown.contains("8QwFLg"),
        "{shown}"
    );
    let global = env
        .vault
        .list_registries(&RegistryScope::Global)
        .await
        .unwrap();
    assert_eq!(global.len(), 1);
    assert_eq!(global[0].scope, RegistryScope::Global);
    assert!(env
        .vault
        .list_registries(&RegistryScope::GlobalPrivate)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn delete_by_any_form_of_the_url() {
    let env = env();
    env.vault
        .put_registry(demo(), "ghcr.io", "admin", "pw")
        .await
        .unwrap();
    env.vault
        .put_registry(RegistryScope::Global, "ghcr.io", "admin", "pw")
        .await
        .unwrap();
    assert!(env
        .vault
        .delete_registry(&demo(), "https://GHCR.io/v2/")
        .await
        .unwrap());
    assert!(!env.vault.delete_registry(&demo(), "ghcr.io").await.unwrap());
    assert!(env
        .vault
        .registry_credentials(&demo(), "ghcr.io")
        .await
        .unwrap()
        .is_none());
    assert!(env
        .vault
        .registry_credentials(&RegistryScope::Global, "ghcr.io")
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn bad_registry_input_is_refused() {
    let env = env();
    let v = &env.vault;
    assert!(matches!(
        v.put_registry(demo(), "ghcr.io", "ad:min", "pw").await,
        Err(VaultError::InvalidCredentials {
            field: "username",
            ..
        })
    ));
    assert!(matches!(
        v.put_registry(demo(), "ghcr.io", "admin", "").await,
        Err(VaultError::InvalidCredentials {
            field: "password",
            ..
        })
    ));
    let err = v
        .put_registry(demo(), "https://admin:hunter2@ghcr.io", "admin", "pw")
        .await
        .unwrap_err();
    assert!(matches!(err, VaultError::InvalidRegistry(_)));
    assert!(!err.to_string().contains("hunter2"));
    assert!(matches!(
        v.put_registry(
            RegistryScope::Namespace("nope".into()),
            "ghcr.io",
            "a",
            "pw"
        )
        .await,
        Err(VaultError::Store(faasbox_store::StoreError::NoNamespace(_)))
    ));
    assert!(matches!(
        v.put_registry(
            RegistryScope::Namespace("*global".into()),
            "ghcr.io",
            "a",
            "pw"
        )
        .await,
        Err(VaultError::InvalidName { .. })
    ));
}

#[tokio::test]
async fn deleting_a_namespace_keeps_global_registries() {
    let env = env();
    env.vault
        .put_registry(demo(), "ghcr.io", "admin", "pw")
        .await
        .unwrap();
    env.vault
        .put_registry(RegistryScope::Global, "ghcr.io", "g", "pw")
        .await
        .unwrap();
    env.store.delete_namespace("demo").unwrap();
    assert!(env.store.list_registries("demo").unwrap().is_empty());
    assert!(env
        .vault
        .registry_credentials(&demo(), "ghcr.io")
        .await
        .unwrap()
        .is_none());
    let global = env
        .vault
        .registry_credentials(&RegistryScope::Global, "ghcr.io")
        .await
        .unwrap();
    assert_eq!(global.unwrap().password.as_str(), "pw");
}
