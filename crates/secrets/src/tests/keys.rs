//! Master keys: key files, permissions, base64, key ids and where the key comes from.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use sha2::{Digest, Sha256};

use super::*;
use crate::{staged_key_path, write_key_file, KeyError, KeySource, Zeroizing};

#[tokio::test]
async fn key_file_is_created_once_with_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys").join("master.key");
    let created = MasterKey::load_or_create(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(text.trim_end(), created.to_base64().as_str());
    let again = MasterKey::load_or_create(&path).unwrap();
    assert_eq!(again.key_id(), created.key_id());
    // Nothing but the key file is left in the directory.
    assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
}

#[tokio::test]
async fn readable_key_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    write_key_file(&path, &MasterKey::generate().unwrap()).unwrap();
    for bad in [0o644, 0o640, 0o604] {
        fs::set_permissions(&path, fs::Permissions::from_mode(bad)).unwrap();
        let err = MasterKey::from_file(&path).unwrap_err();
        assert!(matches!(err, KeyError::TooOpen { .. }), "{err:?}");
        let message = err.to_string();
        assert!(
            message.contains(&format!("chmod 600 {}", path.display())),
            "{message}"
        );
        assert!(message.contains(&format!("{bad:04o}")), "{message}");
        // load_or_create must not replace it either.
        assert!(MasterKey::load_or_create(&path).is_err());
    }
    fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
    assert!(MasterKey::from_file(&path).is_ok());
    assert!(matches!(
        MasterKey::from_file(dir.path()),
        Err(KeyError::NotAFile { .. }) | Err(KeyError::Read { .. })
    ));
    assert!(matches!(
        MasterKey::from_file(&dir.path().join("absent")),
        Err(KeyError::NotFound { .. })
    ));
}

#[tokio::test]
async fn key_files_hold_base64_or_raw_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raw.key");
    fs::write(&path, [9u8; 32]).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let raw = MasterKey::from_file(&path).unwrap();
    assert_eq!(raw.bytes(), &[9u8; 32]);
    fs::write(&path, "not a key at all\n").unwrap();
    let err = MasterKey::from_file(&path).unwrap_err().to_string();
    assert!(
        err.contains("is invalid") && !err.contains("not a key at all"),
        "{err}"
    );
}

#[tokio::test]
async fn base64_keys() {
    let key = MasterKey::generate().unwrap();
    let b64 = key.to_base64();
    let padded = MasterKey::from_base64(&format!("  {}\n", b64.as_str())).unwrap();
    let unpadded = MasterKey::from_base64(b64.trim_end_matches('=')).unwrap();
    assert_eq!(padded.key_id(), key.key_id());
    assert_eq!(unpadded.key_id(), key.key_id());
    let short = MasterKey::from_base64("c2hvcnQ=").unwrap_err().to_string();
    assert!(short.contains("decodes to 5 bytes"), "{short}");
    let garbage = MasterKey::from_base64("sec!ret-not-base64")
        .unwrap_err()
        .to_string();
    assert!(!garbage.contains("sec!ret"), "{garbage}");
}

#[tokio::test]
async fn key_id_is_the_first_8_bytes_of_sha256() {
    let key = MasterKey::from_bytes(Zeroizing::new([1u8; 32]));
    let digest = Sha256::digest([1u8; 32]);
    assert_eq!(key.key_id(), hex::encode(&digest[..8]));
    assert_eq!(key.key_id().len(), 16);
    assert_eq!(format!("{key:?}"), "MasterKey(…)");
}

#[tokio::test]
async fn key_sources_follow_the_environment() {
    let default = PathBuf::from("/data/keys/master.key");
    let b64 = Zeroizing::new(MasterKey::generate().unwrap().to_base64().to_string());
    let source = KeySource::from_values(Some(b64.clone()), None, default.clone()).unwrap();
    assert!(matches!(source, KeySource::Base64(_)));
    assert!(source.key_file().is_none());
    assert!(!format!("{source:?} {source}").contains(b64.as_str()));
    assert_eq!(
        source.load().unwrap().key_id(),
        MasterKey::from_base64(&b64).unwrap().key_id()
    );

    let file = PathBuf::from("/etc/faasbox/master.key");
    let source = KeySource::from_values(None, Some(file.clone()), default.clone()).unwrap();
    assert_eq!(source.key_file(), Some(file.as_path()));
    let source =
        KeySource::from_values(Some(Zeroizing::new(String::new())), None, default.clone()).unwrap();
    assert!(matches!(source, KeySource::DefaultFile(p) if p == default));
    assert!(matches!(
        KeySource::from_values(Some(b64), Some(file), default),
        Err(KeyError::Ambiguous(..))
    ));
}

#[tokio::test]
async fn an_explicit_key_file_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let source = KeySource::File(dir.path().join("absent.key"));
    assert!(matches!(source.load(), Err(KeyError::NotFound { .. })));
}

#[tokio::test]
async fn open_creates_the_default_key_only_for_an_empty_database() {
    let env = env();
    let path = env.dir.path().join("keys").join("master.key");
    let source = KeySource::DefaultFile(path.clone());
    let vault = Vault::open(&source, env.store.clone()).await.unwrap();
    vault
        .put_secret("demo", "token", SECRET_VALUE)
        .await
        .unwrap();
    drop(vault);
    // The same key file opens the same secrets.
    let vault = Vault::open(&source, env.store.clone()).await.unwrap();
    assert_eq!(
        vault
            .get_secret("demo", "token")
            .await
            .unwrap()
            .unwrap()
            .as_slice(),
        SECRET_VALUE
    );
    // A lost key file is not silently replaced by a new key.
    fs::remove_file(&path).unwrap();
    let err = Vault::open(&source, env.store.clone()).await.unwrap_err();
    assert!(
        matches!(err, VaultError::Key(KeyError::Missing { .. })),
        "{err:?}"
    );
    assert!(!path.exists());
    // A different key is refused at open.
    write_key_file(&path, &MasterKey::generate().unwrap()).unwrap();
    assert!(matches!(
        Vault::open(&source, env.store.clone()).await,
        Err(VaultError::WrongMasterKey { .. })
    ));
}

#[tokio::test]
async fn key_file_replacement_is_atomic_and_keeps_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    let first = MasterKey::load_or_create(&path).unwrap();
    let second = MasterKey::generate().unwrap();
    write_key_file(&path, &second).unwrap();
    assert_eq!(mode(&path), 0o600);
    let loaded = MasterKey::from_file(&path).unwrap();
    assert_eq!(loaded.key_id(), second.key_id());
    assert_ne!(loaded.key_id(), first.key_id());
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["master.key"]);
    assert_eq!(staged_key_path(&path), dir.path().join("master.key.new"));
}
