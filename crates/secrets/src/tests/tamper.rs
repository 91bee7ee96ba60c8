//! What an attacker with the database (but not the master key) can and cannot do: every
//! altered, swapped or moved ciphertext fails with the clear error, and the raw file bytes
//! hold no value.

use rusqlite::params;

use super::*;
use crate::RegistryScope;

fn ciphertext(env: &TestEnv, ns: &str, name: &str) -> Vec<u8> {
    env.raw()
        .query_row(
            "SELECT ciphertext FROM secrets WHERE namespace = ?1 AND name = ?2",
            params![ns, name],
            |r| r.get(0),
        )
        .unwrap()
}

fn set_ciphertext(env: &TestEnv, ns: &str, name: &str, blob: &[u8]) {
    let changed = env
        .raw()
        .execute(
            "UPDATE secrets SET ciphertext = ?3 WHERE namespace = ?1 AND name = ?2",
            params![ns, name, blob],
        )
        .unwrap();
    assert_eq!(changed, 1);
}

#[tokio::test]
async fn an_altered_byte_is_detected() {
    let env = env();
    env.vault
        .put_secret("demo", "token", SECRET_VALUE)
        .await
        .unwrap();
    let blob = ciphertext(&env, "demo", "token");
    for index in [0, 1, 13, blob.len() - 1] {
        let mut bad = blob.clone();
        bad[index] ^= 0x01;
        set_ciphertext(&env, "demo", "token", &bad);
        let result = env.vault.get_secret("demo", "token").await;
        assert_undecryptable(result, "secret demo/token");
    }
    set_ciphertext(&env, "demo", "token", &blob[..10]);
    assert_undecryptable(
        env.vault.get_secret("demo", "token").await,
        "secret demo/token",
    );
    set_ciphertext(&env, "demo", "token", &blob);
    assert!(env
        .vault
        .get_secret("demo", "token")
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn swapped_ciphertexts_fail_in_one_namespace_and_across() {
    let env = env();
    env.vault.put_secret("demo", "a", b"value-a").await.unwrap();
    env.vault.put_secret("demo", "b", b"value-b").await.unwrap();
    env.vault
        .put_secret("other", "c", b"value-c")
        .await
        .unwrap();

    let (a, b) = (ciphertext(&env, "demo", "a"), ciphertext(&env, "demo", "b"));
    set_ciphertext(&env, "demo", "a", &b);
    set_ciphertext(&env, "demo", "b", &a);
    assert_undecryptable(env.vault.get_secret("demo", "a").await, "secret demo/a");
    assert_undecryptable(env.vault.get_secret("demo", "b").await, "secret demo/b");
    set_ciphertext(&env, "demo", "a", &a);
    set_ciphertext(&env, "demo", "b", &b);

    let c = ciphertext(&env, "other", "c");
    set_ciphertext(&env, "demo", "a", &c);
    set_ciphertext(&env, "other", "c", &a);
    assert_undecryptable(env.vault.get_secret("demo", "a").await, "secret demo/a");
    assert_undecryptable(env.vault.get_secret("other", "c").await, "secret other/c");
}

#[tokio::test]
async fn a_secret_moved_to_another_name_or_namespace_fails() {
    let env = env();
    env.vault
        .put_secret("demo", "token", SECRET_VALUE)
        .await
        .unwrap();
    env.vault.put_secret("other", "x", b"x").await.unwrap();
    let raw = env.raw();
    raw.execute(
        "UPDATE secrets SET name = 'moved' WHERE namespace = 'demo' AND name = 'token'",
        [],
    )
    .unwrap();
    assert_undecryptable(
        env.vault.get_secret("demo", "moved").await,
        "secret demo/moved",
    );
    raw.execute(
        "UPDATE secrets SET namespace = 'other', name = 'token' WHERE namespace = 'demo'",
        [],
    )
    .unwrap();
    assert_undecryptable(
        env.vault.get_secret("other", "token").await,
        "secret other/token",
    );
}

#[tokio::test]
async fn a_secret_moved_into_a_registry_row_fails() {
    let env = env();
    env.vault
        .put_secret("demo", "token", SECRET_VALUE)
        .await
        .unwrap();
    env.vault
        .put_registry(
            RegistryScope::Namespace("demo".into()),
            "ghcr.io",
            "admin",
            "pw",
        )
        .await
        .unwrap();
    let blob = ciphertext(&env, "demo", "token");
    env.raw()
        .execute("UPDATE registries SET ciphertext = ?1", [blob])
        .unwrap();
    assert_undecryptable(
        env.vault
            .registry_credentials(&RegistryScope::Namespace("demo".into()), "ghcr.io")
            .await,
        "registry credentials for ghcr.io (namespace demo)",
    );
}

#[tokio::test]
async fn altered_registry_rows_fail() {
    let env = env();
    let scope = RegistryScope::Namespace("demo".into());
    env.vault
        .put_registry(scope.clone(), "ghcr.io", "admin", SEED_PASSWORD)
        .await
        .unwrap();
    env.vault
        .put_registry(scope.clone(), "quay.io", "admin", "other-pw")
        .await
        .unwrap();
    let raw = env.raw();
    // The username is in clear but bound to the password.
    raw.execute(
        "UPDATE registries SET username = 'mallory' WHERE host = 'ghcr.io'",
        [],
    )
    .unwrap();
    assert_undecryptable(
        env.vault.registry_credentials(&scope, "ghcr.io").await,
        "registry credentials for ghcr.io (namespace demo)",
    );
    // Quay's password moved to ghcr.io's row (usernames equal again).
    raw.execute(
        "UPDATE registries SET username = 'admin' WHERE host = 'ghcr.io'",
        [],
    )
    .unwrap();
    raw.execute(
        "UPDATE registries SET ciphertext = (SELECT ciphertext FROM registries WHERE host = 'quay.io')
         WHERE host = 'ghcr.io'",
        [],
    )
    .unwrap();
    assert_undecryptable(
        env.vault.registry_credentials(&scope, "ghcr.io").await,
        "registry credentials for ghcr.io (namespace demo)",
    );
}

#[tokio::test]
async fn swapped_or_altered_data_keys_fail() {
    let env = env();
    env.vault
        .put_secret("demo", "token", SECRET_VALUE)
        .await
        .unwrap();
    env.vault
        .put_secret("other", "token", SECRET_VALUE)
        .await
        .unwrap();
    let raw = env.raw();
    raw.execute(
        "UPDATE data_keys SET wrapped = (SELECT wrapped FROM data_keys WHERE namespace = 'other')
         WHERE namespace = 'demo'",
        [],
    )
    .unwrap();
    assert_undecryptable(
        env.vault.get_secret("demo", "token").await,
        "secret demo/token",
    );
    raw.execute("DELETE FROM data_keys WHERE namespace = 'other'", [])
        .unwrap();
    assert_undecryptable(
        env.vault.get_secret("other", "token").await,
        "secret other/token",
    );
}

#[tokio::test]
async fn the_raw_database_holds_no_value_password_or_key() {
    let env = env();
    env.vault
        .put_secret("demo", "token", SECRET_VALUE)
        .await
        .unwrap();
    env.vault
        .put_registry(
            RegistryScope::Namespace("demo".into()),
            "https://ghcr.io",
            "admin",
            SEED_PASSWORD,
        )
        .await
        .unwrap();
    env.vault
        .put_registry(RegistryScope::Global, "docker.io", "admin", SEED_PASSWORD)
        .await
        .unwrap();
    let key = env.key_copy().await;
    let check = |bytes: &[u8]| {
        assert!(
            !contains(bytes, SECRET_VALUE),
            "secret value in the database"
        );
        assert!(
            !contains(bytes, SEED_PASSWORD.as_bytes()),
            "password in the database"
        );
        assert!(!contains(bytes, key.bytes()), "master key in the database");
        assert!(
            !contains(bytes, key.to_base64().as_bytes()),
            "master key in the database"
        );
    };
    // While the store is open, the rows sit in the WAL.
    let live = raw_bytes(&env.db);
    assert!(contains(&live, b"ghcr.io"), "the test must see the rows");
    check(&live);
    // After a checkpoint they are in the main file.
    env.raw()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    let checkpointed = raw_bytes(&env.db);
    assert!(contains(&checkpointed, b"ghcr.io"));
    check(&checkpointed);
}

#[tokio::test]
async fn another_master_key_cannot_decrypt() {
    let env = env();
    env.vault
        .put_secret("demo", "token", SECRET_VALUE)
        .await
        .unwrap();
    env.vault
        .put_registry(RegistryScope::Global, "ghcr.io", "admin", SEED_PASSWORD)
        .await
        .unwrap();
    let right = env.vault.key_id().await;
    let stranger = env.vault_with(MasterKey::generate().unwrap());
    let wrong = stranger.key_id().await;
    let err = stranger.get_secret("demo", "token").await.unwrap_err();
    match &err {
        VaultError::WrongMasterKey {
            stored, current, ..
        } => assert_eq!((stored, current), (&right, &wrong)),
        other => panic!("expected WrongMasterKey, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.starts_with("secret demo/token cannot be decrypted"),
        "{message}"
    );
    assert!(
        message.contains(&right) && message.contains(&wrong),
        "{message}"
    );
    assert!(!message.contains("s3cr3t"));
    assert!(matches!(
        stranger
            .registry_credentials(&RegistryScope::Global, "ghcr.io")
            .await,
        Err(VaultError::WrongMasterKey { .. })
    ));
    assert!(matches!(
        stranger.check_master_key().await,
        Err(VaultError::WrongMasterKey { .. })
    ));
    // Writing with the wrong key does not replace the data key either.
    assert!(stranger.put_secret("demo", "x", b"x").await.is_err());

    // A forged key id (the stranger relabels the row) still fails: the id is bound in.
    env.raw()
        .execute("UPDATE data_keys SET key_id = ?1", [&wrong])
        .unwrap();
    assert_undecryptable(
        stranger.get_secret("demo", "token").await,
        "secret demo/token",
    );
}
