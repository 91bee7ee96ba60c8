//! Master-key rotation: data keys re-wrapped, secrets untouched, key files swapped safely.

use std::sync::atomic::{AtomicBool, Ordering};

use super::*;
use crate::{staged_key_path, write_key_file, KeySource, RegistryScope};

/// Secrets in two namespaces and credentials in the global scope.
async fn filled() -> TestEnv {
    let env = env();
    env.vault
        .put_secret("demo", "token", SECRET_VALUE)
        .await
        .unwrap();
    env.vault
        .put_secret("other", "token", b"other-value")
        .await
        .unwrap();
    env.vault
        .put_registry(RegistryScope::Global, "ghcr.io", "admin", SEED_PASSWORD)
        .await
        .unwrap();
    env
}

async fn assert_readable(vault: &Vault) {
    assert_eq!(
        vault
            .get_secret("demo", "token")
            .await
            .unwrap()
            .unwrap()
            .as_slice(),
        SECRET_VALUE
    );
    assert_eq!(
        vault
            .get_secret("other", "token")
            .await
            .unwrap()
            .unwrap()
            .as_slice(),
        b"other-value"
    );
    let creds = vault
        .registry_credentials(&RegistryScope::Global, "ghcr.io")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(creds.password.as_str(), SEED_PASSWORD);
}

async fn assert_unreadable(vault: &Vault) {
    assert!(matches!(
        vault.get_secret("demo", "token").await,
        Err(VaultError::WrongMasterKey { .. })
    ));
    assert!(matches!(
        vault
            .registry_credentials(&RegistryScope::Global, "ghcr.io")
            .await,
        Err(VaultError::WrongMasterKey { .. })
    ));
}

#[tokio::test]
async fn rotation_rewraps_data_keys_and_leaves_secrets_alone() {
    let env = filled().await;
    let old = env.key_copy().await;
    let new = MasterKey::generate().unwrap();
    let new_id = new.key_id().to_string();
    let secret_before = env
        .store
        .secret("demo", "token")
        .unwrap()
        .unwrap()
        .ciphertext;
    let keys_before = env.store.list_data_keys().unwrap();

    assert_eq!(env.vault.rotate_master_key(copy(&new)).await.unwrap(), 3);
    assert_eq!(env.vault.key_id().await, new_id);
    assert_readable(&env.vault).await;
    assert_readable(&env.vault_with(new)).await;
    assert_unreadable(&env.vault_with(old)).await;

    let keys_after = env.store.list_data_keys().unwrap();
    for (before, after) in keys_before.iter().zip(&keys_after) {
        assert_eq!(after.key_id, new_id);
        assert_ne!(before.wrapped, after.wrapped);
        assert_eq!(before.created, after.created);
    }
    let secret_after = env
        .store
        .secret("demo", "token")
        .unwrap()
        .unwrap()
        .ciphertext;
    assert_eq!(secret_before, secret_after);
    // New data keys are wrapped by the new key too.
    env.vault
        .put_registry(RegistryScope::GlobalPrivate, "quay.io", "a", "pw")
        .await
        .unwrap();
    assert_eq!(env.vault.check_master_key().await.unwrap(), 4);
}

#[tokio::test]
async fn a_failed_rotation_changes_nothing() {
    let env = filled().await;
    let stranger = MasterKey::generate().unwrap();
    // A data key the current master key cannot unwrap.
    env.raw()
        .execute(
            "INSERT INTO data_keys VALUES ('*global-private', ?1, x'00', 't', 't')",
            [stranger.key_id()],
        )
        .unwrap();
    let path = env.dir.path().join("master.key");
    write_key_file(&path, &env.key_copy().await).unwrap();
    let err = env
        .vault
        .rotate_key_file(&path, MasterKey::generate().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, VaultError::WrongMasterKey { .. }), "{err:?}");
    assert!(!staged_key_path(&path).exists());
    assert_eq!(
        MasterKey::from_file(&path).unwrap().key_id(),
        env.vault.key_id().await
    );
    assert_readable(&env.vault).await;
    let current = env.vault.key_id().await;
    assert!(env
        .store
        .list_data_keys()
        .unwrap()
        .iter()
        .filter(|k| k.namespace != "*global-private")
        .all(|k| k.key_id == current));
}

#[tokio::test]
async fn key_file_rotation_swaps_the_file_with_mode_0600() {
    let env = filled().await;
    let path = env.dir.path().join("keys").join("master.key");
    let source = KeySource::DefaultFile(path.clone());
    let vault = Vault::open(&source, env.store.clone()).await;
    // The store already holds data keys under the test key, and there is no key file yet.
    assert!(vault.is_err());
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    write_key_file(&path, &env.key_copy().await).unwrap();
    let vault = Vault::open(&source, env.store.clone()).await.unwrap();

    let new = MasterKey::generate().unwrap();
    let new_id = new.key_id().to_string();
    assert_eq!(vault.rotate_key_file(&path, new).await.unwrap(), 3);
    assert_eq!(mode(&path), 0o600);
    assert!(!staged_key_path(&path).exists());
    assert_eq!(MasterKey::from_file(&path).unwrap().key_id(), new_id);
    assert_readable(&vault).await;
    // A restart finds the new key in the file.
    let reopened = Vault::open(&source, env.store.clone()).await.unwrap();
    assert_eq!(reopened.key_id().await, new_id);
    assert_readable(&reopened).await;
}

#[tokio::test]
async fn a_crash_after_the_commit_is_finished_at_open() {
    let env = filled().await;
    let path = env.dir.path().join("master.key");
    write_key_file(&path, &env.key_copy().await).unwrap();
    let new = MasterKey::generate().unwrap();
    let new_id = new.key_id().to_string();
    // Staged and committed, but the rename never happened.
    write_key_file(&staged_key_path(&path), &new).unwrap();
    env.vault.rotate_master_key(new).await.unwrap();
    let vault = Vault::open(&KeySource::File(path.clone()), env.store.clone())
        .await
        .unwrap();
    assert_eq!(vault.key_id().await, new_id);
    assert_eq!(MasterKey::from_file(&path).unwrap().key_id(), new_id);
    assert!(!staged_key_path(&path).exists());
    assert_readable(&vault).await;
}

#[tokio::test]
async fn a_crash_before_the_commit_is_undone_at_open() {
    let env = filled().await;
    let path = env.dir.path().join("master.key");
    let old_id = env.vault.key_id().await;
    write_key_file(&path, &env.key_copy().await).unwrap();
    write_key_file(&staged_key_path(&path), &MasterKey::generate().unwrap()).unwrap();
    let vault = Vault::open(&KeySource::File(path.clone()), env.store.clone())
        .await
        .unwrap();
    assert_eq!(vault.key_id().await, old_id);
    assert!(!staged_key_path(&path).exists());
    assert_readable(&vault).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_keep_working_during_a_rotation() {
    let env = filled().await;
    let vault = Arc::new(env.vault);
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (vault, stop) = (vault.clone(), stop.clone());
            tokio::spawn(async move {
                let mut reads = 0;
                while !stop.load(Ordering::Relaxed) || reads == 0 {
                    assert_readable(&vault).await;
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for _ in 0..5 {
        assert_eq!(
            vault
                .rotate_master_key(MasterKey::generate().unwrap())
                .await
                .unwrap(),
            3
        );
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        assert!(reader.await.unwrap() > 0);
    }
    assert_eq!(vault.check_master_key().await.unwrap(), 3);
}
