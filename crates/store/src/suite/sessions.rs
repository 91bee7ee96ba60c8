//! Cases of the web UI's sessions: found by key until closed, touched forward only, expired
//! ones swept at the next sign-in, and the per-token and overall caps dropping the oldest.

use super::Backend;
use crate::*;

const CAPS: SessionCaps = SessionCaps {
    lifetime_ms: 3_600_000,
    idle_ms: 600_000,
    max_sessions: 5,
    max_per_token: 3,
};

fn session(key: &str, token: &str, at_ms: i64) -> SessionRecord {
    SessionRecord {
        key: key.into(),
        token_hash: token.into(),
        token_name: "laptop".into(),
        csrf: format!("csrf-{key}"),
        created_ms: at_ms,
        last_used_ms: at_ms,
        expires: "2026-01-01T01:00:00Z".into(),
    }
}

/// A session is found by its key until it is closed; a touch moves its last use forward only.
pub async fn sessions_are_found_until_closed_and_touched_forward(backend: &impl Backend) {
    let store = backend.open().await;
    let record = session("k1", "h1", 1_000);
    store.open_session(&record, &CAPS).await.unwrap();
    assert_eq!(store.session("k1").await.unwrap(), Some(record.clone()));
    assert_eq!(store.session("k2").await.unwrap(), None);
    store.touch_session("k1", 5_000).await.unwrap();
    store.touch_session("k1", 3_000).await.unwrap();
    assert_eq!(
        store.session("k1").await.unwrap().unwrap().last_used_ms,
        5_000
    );
    assert_eq!(store.count_sessions().await.unwrap(), 1);
    assert!(store.close_session("k1").await.unwrap());
    assert!(!store.close_session("k1").await.unwrap());
    assert_eq!(store.session("k1").await.unwrap(), None);
}

/// Signing in sweeps expired sessions (idle or past their lifetime) and keeps the caps: a
/// token's oldest goes beyond its share, the oldest of all beyond the total.
pub async fn opening_a_session_sweeps_expired_ones_and_keeps_the_caps(backend: &impl Backend) {
    let store = backend.open().await;
    store
        .open_session(&session("idle", "h1", 0), &CAPS)
        .await
        .unwrap();
    store
        .open_session(&session("used", "h2", 0), &CAPS)
        .await
        .unwrap();
    store.touch_session("used", 599_000).await.unwrap();
    store
        .open_session(&session("new", "h3", 600_000), &CAPS)
        .await
        .unwrap();
    assert_eq!(store.session("idle").await.unwrap(), None, "idle too long");
    assert!(store.session("used").await.unwrap().is_some());
    store
        .open_session(&session("late", "h3", 3_600_000), &CAPS)
        .await
        .unwrap();
    assert_eq!(
        store.session("used").await.unwrap(),
        None,
        "past its lifetime"
    );

    // Caps (on what is left: "late", which the next sign-ins do not expire).
    for (i, key) in ["a1", "a2", "a3", "a4"].iter().enumerate() {
        store
            .open_session(&session(key, "a", 3_600_100 + i as i64), &CAPS)
            .await
            .unwrap();
    }
    assert_eq!(store.session("a1").await.unwrap(), None, "a's oldest went");
    for key in ["a2", "a3", "a4"] {
        assert!(store.session(key).await.unwrap().is_some(), "{key}");
    }
    for (i, key) in ["b1", "b2", "b3"].iter().enumerate() {
        store
            .open_session(&session(key, key, 3_600_200 + i as i64), &CAPS)
            .await
            .unwrap();
    }
    let mut kept = Vec::new();
    for key in ["a2", "a3", "a4", "b1", "b2", "b3"] {
        if store.session(key).await.unwrap().is_some() {
            kept.push(key);
        }
    }
    assert_eq!(
        kept,
        ["a3", "a4", "b1", "b2", "b3"],
        "the oldest of all went"
    );
    assert_eq!(store.count_sessions().await.unwrap(), 5);
}
