//! Registry credentials: scopes, host look-ups, listing without passwords.

use super::*;
use crate::{RegistryCredentials, RegistryScope};

fn demo() -> RegistryScope {
    RegistryScope::Namespace("demo".into())
}

fn user_of(found: Option<RegistryCredentials>) -> Option<String> {
    found.map(|c| c.username)
}

#[test]
fn scopes_are_looked_up_by_host() {
    let env = env();
    let v = &env.vault;
    v.put_registry(demo(), "https://ghcr.io/v2/", "alice", "pw-a")
        .unwrap();
    v.put_registry(RegistryScope::Global, "ghcr.io", "bob", "pw-b")
        .unwrap();
    v.put_registry(RegistryScope::GlobalPrivate, "GHCR.io", "carol", "pw-c")
        .unwrap();
    v.put_registry(
        RegistryScope::Global,
        "https://index.docker.io/v1/",
        "dave",
        "pw-d",
    )
    .unwrap();
    v.put_registry(demo(), "localhost:5000", "erin", "pw-e")
        .unwrap();

    // Exact scopes.
    let found = v
        .registry_credentials(&demo(), "ghcr.io/team/app:1")
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.username.as_str(), found.password.as_str()),
        ("alice", "pw-a")
    );
    let other = RegistryScope::Namespace("other".into());
    assert!(v.registry_credentials(&other, "ghcr.io").unwrap().is_none());
    assert_eq!(
        user_of(
            v.registry_credentials(&RegistryScope::Global, "ghcr.io")
                .unwrap()
        )
        .unwrap(),
        "bob"
    );
    assert_eq!(
        user_of(
            v.registry_credentials(&RegistryScope::GlobalPrivate, "ghcr.io")
                .unwrap()
        )
        .unwrap(),
        "carol"
    );
    // The port is part of the host.
    assert_eq!(
        user_of(
            v.registry_credentials(&demo(), "http://localhost:5000/x")
                .unwrap()
        )
        .unwrap(),
        "erin"
    );
    assert!(v
        .registry_credentials(&demo(), "localhost")
        .unwrap()
        .is_none());

    // What a function would pull with.
    let resolve =
        |ns: Option<&str>, image: &str| user_of(v.resolve_registry_credentials(ns, image).unwrap());
    assert_eq!(
        resolve(Some("demo"), "ghcr.io/team/app:1").unwrap(),
        "alice"
    );
    assert_eq!(resolve(Some("other"), "ghcr.io/team/app:1").unwrap(), "bob");
    assert_eq!(resolve(None, "ghcr.io/team/app:1").unwrap(), "carol");
    assert_eq!(
        resolve(Some("demo"), "docker.io/library/alpine").unwrap(),
        "dave"
    );
    assert_eq!(resolve(None, "registry-1.docker.io").unwrap(), "dave");
    assert!(resolve(Some("demo"), "quay.io/x/y").is_none());

    // Global scopes have their own data keys.
    assert!(env.store.data_key("*global").unwrap().is_some());
    assert!(env.store.data_key("*global-private").unwrap().is_some());
}

#[test]
fn passwords_with_special_characters_round_trip() {
    let env = env();
    for (host, password) in [
        ("ghcr.io", SEED_PASSWORD),
        ("quay.io", "a:b:c%$*::"),
        ("gcr.io", "ewogICJ0eXBlIjo...WlJkMWhqK1RRRF=="),
        ("ecr.aws", "späß €"),
    ] {
        env.vault
            .put_registry(demo(), host, "_json_key_base64", password)
            .unwrap();
        let found = env
            .vault
            .registry_credentials(&demo(), host)
            .unwrap()
            .unwrap();
        assert_eq!(found.password.as_str(), password);
        assert_eq!(found.username, "_json_key_base64");
    }
}

#[test]
fn listing_shows_no_password_and_replacing_keeps_the_id() {
    let env = env();
    let first = env
        .vault
        .put_registry(demo(), "https://ghcr.io", "admin", SEED_PASSWORD)
        .unwrap();
    assert_eq!(first.host, "ghcr.io");
    assert_eq!(first.url, "https://ghcr.io");
    assert_eq!(first.scope, demo());
    let second = env
        .vault
        .put_registry(demo(), "ghcr.io/v2", "robot", "new-pw")
        .unwrap();
    assert_eq!(second.id, first.id);
    assert_eq!(second.created, first.created);
    assert_eq!(second.username, "robot");
    env.vault
        .put_registry(RegistryScope::Global, "quay.io", "g", SEED_PASSWORD)
        .unwrap();

    let listed = env.vault.list_registries(&demo()).unwrap();
    assert_eq!(listed.len(), 1);
    let shown = format!("{listed:?} {}", serde_json::to_string(&listed).unwrap());
    assert!(
        !shown.contains("new-pw") && !shown.contains("8QwFLg"),
        "{shown}"
    );
    let global = env.vault.list_registries(&RegistryScope::Global).unwrap();
    assert_eq!(global.len(), 1);
    assert_eq!(global[0].scope, RegistryScope::Global);
    assert!(env
        .vault
        .list_registries(&RegistryScope::GlobalPrivate)
        .unwrap()
        .is_empty());
}

#[test]
fn delete_by_any_form_of_the_url() {
    let env = env();
    env.vault
        .put_registry(demo(), "ghcr.io", "admin", "pw")
        .unwrap();
    env.vault
        .put_registry(RegistryScope::Global, "ghcr.io", "admin", "pw")
        .unwrap();
    assert!(env
        .vault
        .delete_registry(&demo(), "https://GHCR.io/v2/")
        .unwrap());
    assert!(!env.vault.delete_registry(&demo(), "ghcr.io").unwrap());
    assert!(env
        .vault
        .registry_credentials(&demo(), "ghcr.io")
        .unwrap()
        .is_none());
    assert!(env
        .vault
        .registry_credentials(&RegistryScope::Global, "ghcr.io")
        .unwrap()
        .is_some());
}

#[test]
fn bad_registry_input_is_refused() {
    let env = env();
    let v = &env.vault;
    assert!(matches!(
        v.put_registry(demo(), "ghcr.io", "ad:min", "pw"),
        Err(VaultError::InvalidCredentials {
            field: "username",
            ..
        })
    ));
    assert!(matches!(
        v.put_registry(demo(), "ghcr.io", "admin", ""),
        Err(VaultError::InvalidCredentials {
            field: "password",
            ..
        })
    ));
    let err = v
        .put_registry(demo(), "https://admin:hunter2@ghcr.io", "admin", "pw")
        .unwrap_err();
    assert!(matches!(err, VaultError::InvalidRegistry(_)));
    assert!(!err.to_string().contains("hunter2"));
    assert!(matches!(
        v.put_registry(
            RegistryScope::Namespace("nope".into()),
            "ghcr.io",
            "a",
            "pw"
        ),
        Err(VaultError::Store(faasbox_store::StoreError::NoNamespace(_)))
    ));
    assert!(matches!(
        v.put_registry(
            RegistryScope::Namespace("*global".into()),
            "ghcr.io",
            "a",
            "pw"
        ),
        Err(VaultError::InvalidName { .. })
    ));
}

#[test]
fn deleting_a_namespace_keeps_global_registries() {
    let env = env();
    env.vault
        .put_registry(demo(), "ghcr.io", "admin", "pw")
        .unwrap();
    env.vault
        .put_registry(RegistryScope::Global, "ghcr.io", "g", "pw")
        .unwrap();
    env.store.delete_namespace("demo").unwrap();
    assert!(env.store.list_registries("demo").unwrap().is_empty());
    assert!(env
        .vault
        .registry_credentials(&demo(), "ghcr.io")
        .unwrap()
        .is_none());
    let global = env
        .vault
        .registry_credentials(&RegistryScope::Global, "ghcr.io")
        .unwrap();
    assert_eq!(global.unwrap().password.as_str(), "pw");
}
