//! Cases of functions from code: records, their build logs and the build cache.

use super::Backend;
use crate::{
    CodeKind, CodeStatus, NewBuildLogLine, StoreError, BUILD_LOG_CUT, MAX_BUILD_LOG_LINES,
};

fn line(text: &str) -> NewBuildLogLine {
    NewBuildLogLine {
        time: "t".to_string(),
        stream: "stdout".to_string(),
        text: text.to_string(),
    }
}

/// Records need their namespace, keep `created` across a rebuild (which clears the status, the
/// digest and the log), are found by status after a reopen, and go with their namespace, as
/// do their logs and cache entries.
pub async fn code_records_keep_status_logs_and_cache_and_go_with_their_namespace(
    backend: &impl Backend,
) {
    let store = backend.open().await;
    let missing = store
        .put_code("nope", CodeKind::Function, "f", "{}", "INITIALIZED", "t0")
        .await;
    assert!(
        matches!(missing, Err(StoreError::NoNamespace(_))),
        "{missing:?}"
    );
    store.create_namespace("demo", "t0").await.unwrap();
    let put = store
        .put_code(
            "demo",
            CodeKind::Function,
            "f",
            r#"{"a":1}"#,
            "INITIALIZED",
            "t1",
        )
        .await
        .unwrap();
    assert_eq!(
        (put.status.as_str(), put.created.as_str()),
        ("INITIALIZED", "t1")
    );
    // The same name of another kind is another record.
    store
        .put_code("demo", CodeKind::ImageBuild, "f", "{}", "READY", "t1")
        .await
        .unwrap();
    store
        .put_code("demo", CodeKind::BaseImage, "b", "{}", "READY", "t1")
        .await
        .unwrap();
    assert!(store
        .set_code_status(
            "demo",
            CodeKind::Function,
            "f",
            &CodeStatus {
                status: "ERROR",
                reason: "no handler",
                digest: Some("sha256:1")
            },
            "t2"
        )
        .await
        .unwrap());
    assert!(!store
        .set_code_status(
            "demo",
            CodeKind::Function,
            "g",
            &CodeStatus {
                status: "READY",
                reason: "",
                digest: None
            },
            "t2"
        )
        .await
        .unwrap());
    assert!(store
        .set_code_spec("demo", CodeKind::Function, "f", r#"{"a":1,"found":true}"#)
        .await
        .unwrap());
    store
        .append_build_log("demo", CodeKind::Function, "f", &[line("one"), line("two")])
        .await
        .unwrap();
    store
        .append_build_log("demo", CodeKind::Function, "f", &[line("three")])
        .await
        .unwrap();
    store
        .put_build_cache("demo", "key", "sha256:cached", "t2")
        .await
        .unwrap();
    drop(store);

    let store = backend.open().await;
    let f = store
        .code("demo", CodeKind::Function, "f")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            f.status.as_str(),
            f.reason.as_str(),
            f.digest.as_deref(),
            f.modified.as_str()
        ),
        ("ERROR", "no handler", Some("sha256:1"), "t2")
    );
    assert_eq!(f.spec, r#"{"a":1,"found":true}"#);
    let log = store
        .build_log("demo", CodeKind::Function, "f", 0, 100)
        .await
        .unwrap();
    let texts: Vec<(u64, &str)> = log.iter().map(|l| (l.seq, l.text.as_str())).collect();
    assert_eq!(texts, [(1, "one"), (2, "two"), (3, "three")]);
    let after = store
        .build_log("demo", CodeKind::Function, "f", 2, 100)
        .await
        .unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].text, "three");
    assert_eq!(
        store.build_cache("demo", "key").await.unwrap().as_deref(),
        Some("sha256:cached")
    );
    let builds = store.codes("demo", CodeKind::ImageBuild).await.unwrap();
    assert_eq!(builds.len(), 1);
    let unfinished = store
        .codes_with_status(&["INITIALIZED", "CREATING"])
        .await
        .unwrap();
    assert!(unfinished.is_empty(), "{unfinished:?}");
    let ready = store.codes_with_status(&["READY"]).await.unwrap();
    let names: Vec<(&str, &str)> = ready
        .iter()
        .map(|r| (r.kind.as_str(), r.name.as_str()))
        .collect();
    assert_eq!(names, [("base-image", "b"), ("image-build", "f")]);

    // A rebuild keeps `created` and starts a new log.
    let again = store
        .put_code(
            "demo",
            CodeKind::Function,
            "f",
            r#"{"a":2}"#,
            "INITIALIZED",
            "t3",
        )
        .await
        .unwrap();
    assert_eq!(
        (again.created.as_str(), again.modified.as_str()),
        ("t1", "t3")
    );
    assert_eq!((again.reason.as_str(), again.digest), ("", None));
    assert!(store
        .build_log("demo", CodeKind::Function, "f", 0, 100)
        .await
        .unwrap()
        .is_empty());
    store
        .append_build_log("demo", CodeKind::Function, "f", &[line("fresh")])
        .await
        .unwrap();
    let fresh = store
        .build_log("demo", CodeKind::Function, "f", 0, 100)
        .await
        .unwrap();
    assert_eq!((fresh[0].seq, fresh[0].text.as_str()), (1, "fresh"));

    assert!(store
        .delete_code("demo", CodeKind::BaseImage, "b")
        .await
        .unwrap());
    assert!(!store
        .delete_code("demo", CodeKind::BaseImage, "b")
        .await
        .unwrap());
    assert!(store.delete_namespace("demo").await.unwrap());
    store.create_namespace("demo", "t4").await.unwrap();
    assert!(store
        .code("demo", CodeKind::Function, "f")
        .await
        .unwrap()
        .is_none());
    assert!(store.build_cache("demo", "key").await.unwrap().is_none());
    assert!(store
        .build_log("demo", CodeKind::Function, "f", 0, 100)
        .await
        .unwrap()
        .is_empty());
}

/// A build's log keeps at most its bound of lines; the line that reaches it says the log was
/// cut, and later lines are dropped.
pub async fn a_build_log_is_cut_at_its_bound(backend: &impl Backend) {
    let store = backend.open().await;
    store.create_namespace("demo", "t0").await.unwrap();
    store
        .put_code("demo", CodeKind::ImageBuild, "deps", "{}", "CREATING", "t1")
        .await
        .unwrap();
    let batch: Vec<NewBuildLogLine> = (0..1000).map(|i| line(&format!("line {i}"))).collect();
    for _ in 0..6 {
        store
            .append_build_log("demo", CodeKind::ImageBuild, "deps", &batch)
            .await
            .unwrap();
    }
    let log = store
        .build_log("demo", CodeKind::ImageBuild, "deps", 0, 10_000)
        .await
        .unwrap();
    assert_eq!(log.len() as u64, MAX_BUILD_LOG_LINES);
    let last = log.last().unwrap();
    assert_eq!(last.text, BUILD_LOG_CUT);
    assert_eq!(last.seq, MAX_BUILD_LOG_LINES);
    // One huge line is cut by bytes too.
    store
        .put_code("demo", CodeKind::ImageBuild, "big", "{}", "CREATING", "t1")
        .await
        .unwrap();
    let big = line(&"x".repeat(2 * 1024 * 1024));
    store
        .append_build_log(
            "demo",
            CodeKind::ImageBuild,
            "big",
            &[line("ok"), big, line("after")],
        )
        .await
        .unwrap();
    let log = store
        .build_log("demo", CodeKind::ImageBuild, "big", 0, 100)
        .await
        .unwrap();
    let texts: Vec<&str> = log.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts, ["ok", BUILD_LOG_CUT]);
}
