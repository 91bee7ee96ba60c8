//! Cases of data keys, secrets and registry credentials.

use super::Backend;
use crate::*;

fn data_key(namespace: &str, key_id: &str, wrapped: &[u8]) -> DataKeyRecord {
    DataKeyRecord {
        namespace: namespace.into(),
        key_id: key_id.into(),
        wrapped: wrapped.to_vec(),
        created: "t0".into(),
        updated: "t0".into(),
    }
}

fn registry(id: &str, namespace: &str, host: &str, username: &str, now: &str) -> RegistryRecord {
    RegistryRecord {
        id: id.into(),
        namespace: namespace.into(),
        url: format!("https://{host}/v2/"),
        host: host.into(),
        username: username.into(),
        ciphertext: vec![1, 2, 3],
        created: now.into(),
        updated: now.into(),
    }
}

/// A second data key for a namespace is ignored: both callers get the first.
pub async fn first_data_key_wins(backend: &impl Backend) {
    let store = backend.open().await;
    let first = store
        .insert_data_key(&data_key("demo", "k1", b"a"))
        .await
        .unwrap();
    let second = store
        .insert_data_key(&data_key("demo", "k1", b"b"))
        .await
        .unwrap();
    assert_eq!(first.wrapped, b"a");
    assert_eq!(second.wrapped, b"a");
    assert_eq!(store.data_key("demo").await.unwrap().unwrap().wrapped, b"a");
    assert!(store.data_key("other").await.unwrap().is_none());
}

/// A secret needs its namespace (`NoNamespace`) and a data key (`NoDataKey`); replacing keeps
/// `created`; secrets are listed by name and deleted once.
pub async fn secrets_need_namespace_and_data_key_and_keep_created(backend: &impl Backend) {
    let store = backend.open().await;
    assert!(matches!(
        store.put_secret("demo", "token", b"x", "t0").await,
        Err(StoreError::NoNamespace(_))
    ));
    store.create_namespace("demo", "t0").await.unwrap();
    assert!(matches!(
        store.put_secret("demo", "token", b"x", "t0").await,
        Err(StoreError::NoDataKey(_))
    ));
    store
        .insert_data_key(&data_key("demo", "k1", b"w"))
        .await
        .unwrap();
    store.put_secret("demo", "token", b"x", "t1").await.unwrap();
    let updated = store.put_secret("demo", "token", b"y", "t2").await.unwrap();
    assert_eq!(
        (updated.created.as_str(), updated.updated.as_str()),
        ("t1", "t2")
    );
    assert_eq!(
        store
            .secret("demo", "token")
            .await
            .unwrap()
            .unwrap()
            .ciphertext,
        b"y"
    );
    store
        .put_secret("demo", "a-first", b"z", "t3")
        .await
        .unwrap();
    let names: Vec<_> = store
        .list_secrets("demo")
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["a-first", "token"]);
    assert!(store.delete_secret("demo", "token").await.unwrap());
    assert!(!store.delete_secret("demo", "token").await.unwrap());
    assert!(store.secret("demo", "token").await.unwrap().is_none());
}

/// Registry credentials are one per namespace and host (a replace keeps id and `created`),
/// pseudo-namespaces have their own, and a missing real namespace is `NoNamespace`.
pub async fn registries_are_unique_per_namespace_and_host(backend: &impl Backend) {
    let store = backend.open().await;
    store.create_namespace("demo", "t0").await.unwrap();
    store
        .insert_data_key(&data_key("demo", "k1", b"w"))
        .await
        .unwrap();
    store
        .insert_data_key(&data_key("*global", "k1", b"g"))
        .await
        .unwrap();
    let first = store
        .put_registry(&registry("r1", "demo", "ghcr.io", "alice", "t1"))
        .await
        .unwrap();
    let replaced = store
        .put_registry(&registry("r2", "demo", "ghcr.io", "bob", "t2"))
        .await
        .unwrap();
    assert_eq!(replaced.id, first.id);
    assert_eq!(replaced.created, "t1");
    assert_eq!(replaced.updated, "t2");
    assert_eq!(replaced.username, "bob");
    store
        .put_registry(&registry("r3", "*global", "ghcr.io", "carol", "t3"))
        .await
        .unwrap();
    assert_eq!(store.list_registries("demo").await.unwrap().len(), 1);
    assert_eq!(
        store
            .registry("*global", "ghcr.io")
            .await
            .unwrap()
            .unwrap()
            .username,
        "carol"
    );
    assert!(matches!(
        store
            .put_registry(&registry("r4", "nope", "ghcr.io", "x", "t4"))
            .await,
        Err(StoreError::NoNamespace(_))
    ));
    assert!(store.delete_registry("demo", "ghcr.io").await.unwrap());
    assert!(!store.delete_registry("demo", "ghcr.io").await.unwrap());
}

/// Deleting a namespace deletes its secrets, registry credentials and data key, not those of
/// pseudo-namespaces; the name created again starts empty.
pub async fn deleting_a_namespace_deletes_its_secrets_but_not_global_ones(backend: &impl Backend) {
    let store = backend.open().await;
    store.create_namespace("demo", "t0").await.unwrap();
    store
        .insert_data_key(&data_key("demo", "k1", b"w"))
        .await
        .unwrap();
    store
        .insert_data_key(&data_key("*global", "k1", b"g"))
        .await
        .unwrap();
    store.put_secret("demo", "token", b"x", "t1").await.unwrap();
    store
        .put_registry(&registry("r1", "demo", "ghcr.io", "alice", "t1"))
        .await
        .unwrap();
    store
        .put_registry(&registry("r2", "*global", "ghcr.io", "bob", "t1"))
        .await
        .unwrap();
    assert!(store.delete_namespace("demo").await.unwrap());
    assert!(store.secret("demo", "token").await.unwrap().is_none());
    assert!(store.list_registries("demo").await.unwrap().is_empty());
    assert!(store.data_key("demo").await.unwrap().is_none());
    assert!(store.data_key("*global").await.unwrap().is_some());
    assert_eq!(store.list_registries("*global").await.unwrap().len(), 1);
    // A namespace created again under the same name starts empty.
    store.create_namespace("demo", "t2").await.unwrap();
    assert!(store.list_secrets("demo").await.unwrap().is_empty());
}

/// A failing re-wrap changes no key; a successful one changes every key and its `updated`.
pub async fn rewrap_changes_every_key_or_none(backend: &impl Backend) {
    let store = backend.open().await;
    store
        .insert_data_key(&data_key("a", "old", b"1"))
        .await
        .unwrap();
    store
        .insert_data_key(&data_key("b", "old", b"2"))
        .await
        .unwrap();
    let failed: std::result::Result<usize, StoreError> = store
        .rewrap_data_keys(
            "t1",
            Box::new(|r: &DataKeyRecord| {
                if r.namespace == "b" {
                    Err(StoreError::NoDataKey("b".into()))
                } else {
                    Ok(("new".into(), b"x".to_vec()))
                }
            }),
        )
        .await;
    assert!(failed.is_err());
    assert!(store
        .list_data_keys()
        .await
        .unwrap()
        .iter()
        .all(|k| k.key_id == "old"));
    let count = store
        .rewrap_data_keys(
            "t2",
            Box::new(|r: &DataKeyRecord| {
                let mut wrapped = r.wrapped.clone();
                wrapped.push(b'!');
                Ok(("new".into(), wrapped))
            }),
        )
        .await
        .unwrap();
    assert_eq!(count, 2);
    let keys = store.list_data_keys().await.unwrap();
    assert!(keys.iter().all(|k| k.key_id == "new" && k.updated == "t2"));
    assert_eq!(keys[0].wrapped, b"1!");
    assert_eq!(keys[0].created, "t0");
}

fn service(name: &str, secret: &[(&str, &[u8])], at: &str) -> ServiceRecord {
    ServiceRecord {
        namespace: "demo".into(),
        name: name.into(),
        params: std::collections::BTreeMap::from([("host".to_string(), format!("{name}.local"))]),
        secret_params: secret
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect(),
        created: at.into(),
        modified: at.into(),
    }
}

/// A service needs its namespace (`NoNamespace`) and, for secret parameters, a data key
/// (`NoDataKey`); a replace swaps every parameter and keeps `created`; services are listed by
/// name with their parameters, deleted once, and go with their namespace.
pub async fn services_are_replaced_whole_listed_and_go_with_their_namespace(
    backend: &impl Backend,
) {
    let store = backend.open().await;
    assert!(matches!(
        store.put_service(&service("db", &[], "t0")).await,
        Err(StoreError::NoNamespace(_))
    ));
    store.create_namespace("demo", "t0").await.unwrap();
    store
        .put_service(&service("cache", &[], "t0"))
        .await
        .unwrap();
    assert!(matches!(
        store
            .put_service(&service("db", &[("password", b"x")], "t0"))
            .await,
        Err(StoreError::NoDataKey(_))
    ));
    store
        .insert_data_key(&data_key("demo", "k1", b"w"))
        .await
        .unwrap();
    let first = service("db", &[("password", b"x"), ("user", b"y")], "t1");
    assert_eq!(store.put_service(&first).await.unwrap(), first);
    let second = service("db", &[("password", b"z")], "t2");
    let stored = store.put_service(&second).await.unwrap();
    assert_eq!(
        (stored.created.as_str(), stored.modified.as_str()),
        ("t1", "t2")
    );
    assert_eq!(stored.secret_params, second.secret_params);
    assert_eq!(
        store.service("demo", "db").await.unwrap().as_ref(),
        Some(&stored)
    );
    let listed = store.list_services("demo").await.unwrap();
    let names: Vec<&str> = listed.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["cache", "db"]);
    assert!(listed[0].secret_params.is_empty());
    assert_eq!(listed[1], stored);
    assert!(store.list_services("other").await.unwrap().is_empty());
    assert!(store.delete_service("demo", "cache").await.unwrap());
    assert!(!store.delete_service("demo", "cache").await.unwrap());
    assert!(store.service("demo", "cache").await.unwrap().is_none());
    assert!(store.delete_namespace("demo").await.unwrap());
    store.create_namespace("demo", "t3").await.unwrap();
    assert!(store.list_services("demo").await.unwrap().is_empty());
    assert!(store.service("demo", "db").await.unwrap().is_none());
}
