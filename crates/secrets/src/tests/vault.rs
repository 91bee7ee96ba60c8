//! Secrets: round trip, listing without values, deletion, per-namespace data keys.

use faasbox_store::StoreError;

use super::*;
use crate::vault::unwrap_data_key;

#[tokio::test]
async fn round_trip_list_and_delete() {
    let env = env();
    let first = env
        .vault
        .put_secret("demo", "token", SECRET_VALUE)
        .await
        .unwrap();
    assert_eq!(
        (first.namespace.as_str(), first.name.as_str()),
        ("demo", "token")
    );
    env.vault.put_secret("demo", "apiKey", b"k").await.unwrap();
    let value = env
        .vault
        .get_secret("demo", "token")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(value.as_slice(), SECRET_VALUE);

    let listed = env.vault.list_secrets("demo").await.unwrap();
    let names: Vec<_> = listed.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["apiKey", "token"]);
    let shown = format!("{listed:?} {}", serde_json::to_string(&listed).unwrap());
    assert!(!shown.contains("s3cr3t"), "{shown}");

    let replaced = env.vault.put_secret("demo", "token", b"v2").await.unwrap();
    assert_eq!(replaced.created, first.created);
    assert_eq!(
        env.vault
            .get_secret("demo", "token")
            .await
            .unwrap()
            .unwrap()
            .as_slice(),
        b"v2"
    );

    assert!(env.vault.delete_secret("demo", "token").await.unwrap());
    assert!(!env.vault.delete_secret("demo", "token").await.unwrap());
    assert!(env
        .vault
        .get_secret("demo", "token")
        .await
        .unwrap()
        .is_none());
    assert!(env
        .vault
        .get_secret("other", "token")
        .await
        .unwrap()
        .is_none());
    assert_eq!(env.vault.list_secrets("demo").await.unwrap().len(), 1);
}

#[tokio::test]
async fn binary_and_empty_values_round_trip() {
    let env = env();
    let binary: Vec<u8> = (0..=255).collect();
    env.vault.put_secret("demo", "bin", &binary).await.unwrap();
    env.vault.put_secret("demo", "empty", b"").await.unwrap();
    assert_eq!(
        env.vault
            .get_secret("demo", "bin")
            .await
            .unwrap()
            .unwrap()
            .as_slice(),
        binary
    );
    assert!(env
        .vault
        .get_secret("demo", "empty")
        .await
        .unwrap()
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn bad_input_is_refused() {
    let env = env();
    assert!(matches!(
        env.vault.put_secret("nope", "token", b"x").await,
        Err(VaultError::Store(StoreError::NoNamespace(_)))
    ));
    // No data key was left behind for the missing namespace.
    assert!(env.store.data_key("nope").unwrap().is_none());
    for (ns, name) in [
        ("Demo", "x"),
        ("*global", "x"),
        ("demo", ""),
        ("demo", "a/b"),
    ] {
        assert!(
            matches!(
                env.vault.put_secret(ns, name, b"x").await,
                Err(VaultError::InvalidName { .. })
            ),
            "{ns}/{name}"
        );
    }
    let big = vec![0u8; crate::MAX_SECRET_BYTES + 1];
    assert!(matches!(
        env.vault.put_secret("demo", "big", &big).await,
        Err(VaultError::TooLarge { .. })
    ));
}

#[tokio::test]
async fn each_namespace_has_its_own_data_key() {
    let env = env();
    env.vault
        .put_secret("demo", "token", SECRET_VALUE)
        .await
        .unwrap();
    env.vault
        .put_secret("other", "token", SECRET_VALUE)
        .await
        .unwrap();
    env.vault.put_secret("demo", "second", b"x").await.unwrap();
    let master = env.vault.master().await;
    let demo = env.store.data_key("demo").unwrap().unwrap();
    let other = env.store.data_key("other").unwrap().unwrap();
    // version || nonce || 32-byte key || tag, named by the master key's id.
    assert_eq!(demo.wrapped.len(), 1 + 12 + 32 + 16);
    assert_eq!(demo.wrapped[0], 1);
    assert_eq!(demo.key_id, master.key_id());
    let demo_key = unwrap_data_key(&master, &demo, "demo").unwrap();
    let other_key = unwrap_data_key(&master, &other, "other").unwrap();
    assert_ne!(demo_key.bytes(), other_key.bytes());
    // Same value, same name, different namespaces: different ciphertexts.
    assert_ne!(
        env.store
            .secret("demo", "token")
            .unwrap()
            .unwrap()
            .ciphertext,
        env.store
            .secret("other", "token")
            .unwrap()
            .unwrap()
            .ciphertext
    );
    assert_eq!(env.store.list_data_keys().unwrap().len(), 2);
}

#[tokio::test]
async fn secrets_survive_reopening_the_database() {
    let env = env();
    env.vault
        .put_secret("demo", "token", SECRET_VALUE)
        .await
        .unwrap();
    let key = env.key_copy().await;
    let store = Arc::new(SqliteStore::open(&env.db).unwrap());
    let vault = Vault::new(key, store);
    assert_eq!(
        vault
            .get_secret("demo", "token")
            .await
            .unwrap()
            .unwrap()
            .as_slice(),
        SECRET_VALUE
    );
    assert_eq!(vault.check_master_key().await.unwrap(), 1);
}

#[tokio::test]
async fn deleting_a_namespace_drops_its_secrets_and_data_key() {
    let env = env();
    env.vault
        .put_secret("demo", "token", SECRET_VALUE)
        .await
        .unwrap();
    let old = env.store.data_key("demo").unwrap().unwrap();
    assert!(env.store.delete_namespace("demo").unwrap());
    assert!(env.store.data_key("demo").unwrap().is_none());
    env.store.create_namespace("demo", "t1").unwrap();
    assert!(env
        .vault
        .get_secret("demo", "token")
        .await
        .unwrap()
        .is_none());
    assert!(env.vault.list_secrets("demo").await.unwrap().is_empty());
    env.vault.put_secret("demo", "token", b"new").await.unwrap();
    let new = env.store.data_key("demo").unwrap().unwrap();
    assert_ne!(old.wrapped, new.wrapped);
}

#[tokio::test]
async fn debug_output_holds_no_key_material() {
    let env = env();
    let key = env.key_copy().await;
    let b64 = key.to_base64();
    assert_eq!(format!("{key:?}"), "MasterKey(…)");
    let vault = format!("{:?}", env.vault);
    assert!(
        !vault.contains(b64.as_str()) && vault.contains(key.key_id()),
        "{vault}"
    );
}
