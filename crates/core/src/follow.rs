//! The caches a server keeps in memory (tokens, functions in service, routes) follow what any
//! server changes: every write path that reloads a local cache also publishes a change in the
//! store's changes feed, and a task on each server reads the feed once a second and applies
//! each change. So a change made through one server reaches every other within about a second
//! (plus the time to apply it); a change this server made is applied again, which is
//! idempotent and cheap. With SQLite (one server) the feed only repeats the server's own
//! changes.

use std::sync::Arc;
use std::time::Duration;

use faasbox_store::ChangeRecord;
use tokio::task::JoinHandle;

use crate::failure::Failure;
use crate::owner::Owner;
use crate::state::AppState;

/// How often the feed is read.
pub const POLL: Duration = Duration::from_secs(1);
/// How many changes one read takes at most (the rest come at the next read, at once).
const PAGE: usize = 500;
/// How long changes are kept: far longer than any server takes to read them.
const KEEP_MS: i64 = 10 * 60 * 1000;
/// How often old changes are purged.
const PURGE_EVERY: Duration = Duration::from_secs(60);

pub use crate::changes::{publish, publish_function, Kind};

/// Starts following the feed from its newest change (what is older is in the caches already:
/// start-up loaded them).
pub fn start(state: Arc<AppState>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut cursor = loop {
            match state.store.newest_change().await {
                Ok(seq) => break seq,
                Err(e) => {
                    tracing::error!("cannot read the changes feed, trying again: {e}");
                    tokio::time::sleep(POLL).await;
                }
            }
        };
        let mut purged = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(POLL).await;
            cursor = follow_once(&state, cursor).await;
            if purged.elapsed() >= PURGE_EVERY {
                purged = tokio::time::Instant::now();
                let before = crate::clock::store_ms() - KEEP_MS;
                if let Err(e) = state.store.purge_changes(before).await {
                    tracing::warn!("old changes were not purged: {e}");
                }
            }
        }
    })
}

/// Reads and applies the changes after `cursor`; the new cursor. A change that cannot be
/// applied is logged and passed over (the store is read again by the next change of it).
pub async fn follow_once(state: &AppState, mut cursor: i64) -> i64 {
    loop {
        let changes = match state.store.changes_after(cursor, PAGE).await {
            Ok(changes) => changes,
            Err(e) => {
                tracing::warn!("cannot read the changes feed: {e}");
                return cursor;
            }
        };
        let full = changes.len() == PAGE;
        // Reloads of the whole token book and route table are done once per page.
        let (mut tokens, mut routes) = (false, false);
        for change in &changes {
            cursor = change.seq;
            match apply(state, change).await {
                Ok(Reload {
                    tokens: t,
                    routes: r,
                }) => {
                    tokens |= t;
                    routes |= r;
                }
                Err(e) => tracing::error!(
                    kind = change.kind,
                    key = change.key,
                    "a change of another server was not applied here: {}",
                    e.message
                ),
            }
        }
        if tokens {
            if let Err(e) = state.tokens.reload(&*state.store).await {
                tracing::error!("the tokens were not reloaded: {}", e.message);
            }
        }
        if routes {
            if let Err(e) = state.routes.reload(&*state.store).await {
                tracing::error!("the routes were not reloaded: {}", e.message);
            }
        }
        if !full {
            return cursor;
        }
    }
}

/// What a page of changes needs reloaded whole.
#[derive(Default)]
struct Reload {
    tokens: bool,
    routes: bool,
}

async fn apply(state: &AppState, change: &ChangeRecord) -> Result<Reload, Failure> {
    let Some(kind) = Kind::parse(&change.kind) else {
        // A newer server's kind: nothing here to follow.
        return Ok(Reload::default());
    };
    Ok(match kind {
        Kind::Token => Reload {
            tokens: true,
            routes: false,
        },
        Kind::Route => Reload {
            tokens: false,
            routes: true,
        },
        Kind::NamespaceDeleted => {
            state.deployments.deactivate_namespace(&change.key);
            if let Err(e) = crate::shared_images::forget_namespace(state, &change.key).await {
                tracing::warn!("{}", e.message);
            }
            Reload {
                tokens: true,
                routes: true,
            }
        }
        Kind::Function => {
            let Some((owner, name)) = change.key.split_once('/') else {
                return Err(Failure::internal(format!(
                    "a function change's key is owner/name, not '{}'",
                    change.key
                )));
            };
            follow_function(state, &Owner::from_key(owner), name).await?;
            Reload::default()
        }
        Kind::Image => {
            crate::shared_images::follow(state, &change.key).await?;
            Reload::default()
        }
    })
}

/// Puts `owner`'s function `name` into service as the store has it now: its current revision
/// (unless that one is in service already), or out of service when it is gone. A flow's
/// implicit function (never stored, no revision) is left alone.
pub async fn follow_function(state: &AppState, owner: &Owner, name: &str) -> Result<(), Failure> {
    // One change of a function at a time here: a deploy through this server meanwhile must
    // not be overtaken by an older revision read before it.
    let lock = state.change_lock(owner.key(), name);
    let _changing = lock.lock().await;
    let deployed = state.deployments.deployed(owner.key(), name);
    match owner.load_function(&*state.store, name).await? {
        Some(record) => {
            let current = deployed.as_ref().and_then(|d| d.revision);
            if current.is_none() || current != record.revision {
                crate::deploy::activate_one(state, owner, &record).await?;
            }
        }
        None => {
            if deployed.is_some_and(|d| d.revision.is_some()) {
                state.deployments.deactivate(owner.key(), name);
            }
        }
    }
    Ok(())
}

/// Puts `owner`'s function `name` into service if it is stored but not in service here (a
/// peer deployed it and this server has not read the feed yet): a call right after a deploy
/// through another server finds it. Whether it is in service now.
pub async fn activate_if_stored(state: &AppState, owner: &Owner, name: &str) -> bool {
    if state.deployments.deployed(owner.key(), name).is_some() {
        return true;
    }
    if let Err(e) = follow_function(state, owner, name).await {
        tracing::warn!(
            "{} is stored but could not be put into service: {}",
            owner.describe(name),
            e.message
        );
    }
    state.deployments.deployed(owner.key(), name).is_some()
}

#[cfg(test)]
#[path = "follow_tests.rs"]
mod tests;
