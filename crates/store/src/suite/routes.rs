//! Cases of HTTP routes: specs kept as opaque text, `created` kept on replace, listings ordered,
//! and routes gone with their namespace.

use super::Backend;
use crate::*;

fn route(namespace: &str, name: &str, spec: &str, now: &str) -> RouteRecord {
    RouteRecord {
        namespace: namespace.into(),
        name: name.into(),
        spec: spec.into(),
        created: now.into(),
        modified: now.into(),
    }
}

/// A route needs its namespace (`NoNamespace`); replacing it keeps `created` and takes the new
/// spec and `modified`; a namespace's routes are listed by name, every route by namespace then
/// name; a delete says whether there was one; deleting a namespace deletes its routes only.
pub async fn routes_keep_created_are_listed_in_order_and_go_with_their_namespace(
    backend: &impl Backend,
) {
    let store = backend.open().await;
    assert!(matches!(
        store.put_route(&route("demo", "hook", "{}", "t0")).await,
        Err(StoreError::NoNamespace(ns)) if ns == "demo"
    ));
    assert!(store.route("demo", "hook").await.unwrap().is_none());
    store.create_namespace("demo", "t0").await.unwrap();
    store.create_namespace("alpha", "t0").await.unwrap();

    let stored = store
        .put_route(&route("demo", "hook", r#"{"path":"/a"}"#, "t1"))
        .await
        .unwrap();
    assert_eq!(stored, route("demo", "hook", r#"{"path":"/a"}"#, "t1"));
    let replaced = store
        .put_route(&route("demo", "hook", r#"{"path":"/b"}"#, "t2"))
        .await
        .unwrap();
    assert_eq!(replaced.created, "t1");
    assert_eq!(replaced.modified, "t2");
    assert_eq!(replaced.spec, r#"{"path":"/b"}"#);
    assert_eq!(store.route("demo", "hook").await.unwrap(), Some(replaced));

    store
        .put_route(&route("demo", "api", "{}", "t3"))
        .await
        .unwrap();
    store
        .put_route(&route("alpha", "zeta", "{}", "t3"))
        .await
        .unwrap();
    let names = |records: Vec<RouteRecord>| {
        records
            .into_iter()
            .map(|r| format!("{}/{}", r.namespace, r.name))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(store.list_routes("demo").await.unwrap()),
        ["demo/api", "demo/hook"]
    );
    assert!(store.list_routes("nope").await.unwrap().is_empty());
    assert_eq!(
        names(store.all_routes().await.unwrap()),
        ["alpha/zeta", "demo/api", "demo/hook"]
    );

    assert!(store.delete_route("demo", "api").await.unwrap());
    assert!(!store.delete_route("demo", "api").await.unwrap());
    assert!(store.route("demo", "api").await.unwrap().is_none());

    // Reopened, they are still there; a namespace's deletion takes its routes only.
    drop(store);
    let store = backend.open().await;
    assert_eq!(
        names(store.all_routes().await.unwrap()),
        ["alpha/zeta", "demo/hook"]
    );
    assert!(store.delete_namespace("demo").await.unwrap());
    assert_eq!(names(store.all_routes().await.unwrap()), ["alpha/zeta"]);
    assert!(store.route("demo", "hook").await.unwrap().is_none());
    // A namespace made again under the same name has none of the old routes.
    store.create_namespace("demo", "t4").await.unwrap();
    assert!(store.list_routes("demo").await.unwrap().is_empty());
}
