//! The web UI's sign-in sessions, kept in the store (`SessionStore`): every server sharing
//! the store knows every session, and a restart signs nobody out.
//!
//! A session holds the SHA-256 hash and the name of the token it was opened with, never the
//! token: the caller is looked up from the hash at every request ([`TokenBook::check_hash`]),
//! so deleting the token ends its sessions. Sessions are keyed by the SHA-256 of their id, so
//! nothing stored is a usable id. Each has a CSRF token of its own, an absolute and an idle
//! expiry; the store holds at most [`MAX_SESSIONS`] (the oldest goes) and at most
//! [`MAX_PER_TOKEN`] of one token. A session's last use is written at most every
//! [`SessionBook::touch_every`], so a UI page's requests do not each write to the store.
//!
//! [`TokenBook::check_hash`]: super::tokens::TokenBook::check_hash

use std::time::Duration;

use faasbox_store::{SessionCaps, SessionRecord, Store};
use time::OffsetDateTime;

use super::tokens::{hash, random_hex};
use crate::clock;
use crate::failure::Failure;

/// The most sessions kept at once; a new one beyond it drops the oldest.
pub const MAX_SESSIONS: usize = 10_000;
/// The most sessions one token may hold; a new one beyond it drops that token's oldest.
pub const MAX_PER_TOKEN: usize = 100;

/// How long sessions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// From sign-in on, whatever the use (`[ui] session_hours`).
    pub lifetime: Duration,
    /// Since the last request (`[ui] idle_minutes`).
    pub idle: Duration,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            lifetime: Duration::from_secs(8 * 3600),
            idle: Duration::from_secs(60 * 60),
        }
    }
}

/// A session as its user sees it: the token it stands for (by hash), its CSRF token and
/// when it ends at the latest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The SHA-256 of the token the session was opened with.
    pub token_hash: String,
    /// That token's name at sign-in.
    pub token_name: String,
    /// What the UI sends as `X-Faasbox-Csrf` with every API request.
    pub csrf: String,
    /// The absolute expiry (RFC 3339).
    pub expires: String,
}

/// A session just opened: the one time its id exists outside the client.
#[derive(Debug, Clone)]
pub struct Opened {
    /// The session id (the cookie's value): 32 random bytes, hex.
    pub id: String,
    /// What the session is.
    pub info: SessionInfo,
}

/// How sessions live and how many there may be; the sessions themselves are in the store.
pub struct SessionBook {
    limits: SessionLimits,
    max_sessions: usize,
    max_per_token: usize,
}

impl SessionBook {
    /// A book whose sessions live as `limits` say.
    pub fn new(limits: SessionLimits) -> Self {
        Self::with_caps(limits, MAX_SESSIONS, MAX_PER_TOKEN)
    }

    fn with_caps(limits: SessionLimits, max_sessions: usize, max_per_token: usize) -> Self {
        SessionBook {
            limits,
            max_sessions,
            max_per_token,
        }
    }

    /// How long sessions live.
    pub fn limits(&self) -> SessionLimits {
        self.limits
    }

    /// How often a session's last use is written: a tenth of the idle time, at most 30 s (so
    /// an idle expiry comes at most that much early).
    pub fn touch_every(&self) -> Duration {
        (self.limits.idle / 10).min(Duration::from_secs(30))
    }

    /// Opens a session for the token whose hash is `token_hash` (the caller has checked the
    /// token). Expired sessions are swept first.
    pub async fn open(
        &self,
        store: &dyn Store,
        token_hash: &str,
        token_name: &str,
    ) -> Result<Opened, Failure> {
        self.open_at(store, token_hash, token_name, now_ms()).await
    }

    async fn open_at(
        &self,
        store: &dyn Store,
        token_hash: &str,
        token_name: &str,
        now: i64,
    ) -> Result<Opened, Failure> {
        let id = random_hex(32)?;
        let csrf = random_hex(32)?;
        let expires = clock::format_rfc3339(OffsetDateTime::now_utc() + self.limits.lifetime);
        let record = SessionRecord {
            key: hash(&id),
            token_hash: token_hash.to_string(),
            token_name: token_name.to_string(),
            csrf,
            created_ms: now,
            last_used_ms: now,
            expires,
        };
        store.open_session(&record, &self.caps()).await?;
        Ok(Opened {
            id,
            info: info(record),
        })
    }

    /// The live session whose id is `id`, its idle time restarted; `None` (and the session
    /// removed) once it has expired.
    pub async fn find(&self, store: &dyn Store, id: &str) -> Result<Option<SessionInfo>, Failure> {
        self.find_at(store, id, now_ms()).await
    }

    async fn find_at(
        &self,
        store: &dyn Store,
        id: &str,
        now: i64,
    ) -> Result<Option<SessionInfo>, Failure> {
        let key = hash(id);
        let Some(record) = store.session(&key).await? else {
            return Ok(None);
        };
        let caps = self.caps();
        if now - record.created_ms >= caps.lifetime_ms || now - record.last_used_ms >= caps.idle_ms
        {
            store.close_session(&key).await?;
            return Ok(None);
        }
        if now - record.last_used_ms >= millis(self.touch_every()) {
            store.touch_session(&key, now).await?;
        }
        Ok(Some(info(record)))
    }

    /// Ends the session whose id is `id`; whether there was one.
    pub async fn close(&self, store: &dyn Store, id: &str) -> Result<bool, Failure> {
        Ok(store.close_session(&hash(id)).await?)
    }

    /// How many sessions are stored (expired ones not yet swept included).
    pub async fn count(&self, store: &dyn Store) -> Result<u64, Failure> {
        Ok(store.count_sessions().await?)
    }

    fn caps(&self) -> SessionCaps {
        SessionCaps {
            lifetime_ms: millis(self.limits.lifetime),
            idle_ms: millis(self.limits.idle),
            max_sessions: u32::try_from(self.max_sessions).unwrap_or(u32::MAX),
            max_per_token: u32::try_from(self.max_per_token).unwrap_or(u32::MAX),
        }
    }
}

fn info(record: SessionRecord) -> SessionInfo {
    SessionInfo {
        token_hash: record.token_hash,
        token_name: record.token_name,
        csrf: record.csrf,
        expires: record.expires,
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Now, in milliseconds since the epoch (this server's clock).
fn now_ms() -> i64 {
    clock::store_ms()
}

#[cfg(test)]
mod tests {
    use faasbox_store_sqlite::SqliteStore;

    use super::*;

    const LIMITS: SessionLimits = SessionLimits {
        lifetime: Duration::from_secs(3600),
        idle: Duration::from_secs(600),
    };
    const SECOND: i64 = 1000;

    fn book() -> (SessionBook, SqliteStore) {
        (
            SessionBook::new(LIMITS),
            SqliteStore::open_in_memory().unwrap(),
        )
    }

    #[tokio::test]
    async fn a_session_is_found_by_its_id_only_and_keeps_no_usable_id() {
        let (book, store) = book();
        let opened = book.open(&store, "h1", "laptop").await.unwrap();
        assert_eq!(opened.id.len(), 64);
        assert_eq!(opened.info.csrf.len(), 64);
        assert_ne!(opened.id, opened.info.csrf);
        let found = book.find(&store, &opened.id).await.unwrap().unwrap();
        assert_eq!(found, opened.info);
        assert_eq!(found.token_hash, "h1");
        assert_eq!(found.token_name, "laptop");
        assert!(book
            .find(&store, &opened.info.csrf)
            .await
            .unwrap()
            .is_none());
        assert!(book.find(&store, "").await.unwrap().is_none());
        use faasbox_store::SessionStore;
        assert!(
            store.session(&opened.id).await.unwrap().is_none(),
            "keyed by the id's hash"
        );
        assert!(store.session(&hash(&opened.id)).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn closing_ends_a_session() {
        let (book, store) = book();
        let opened = book.open(&store, "h1", "t").await.unwrap();
        assert!(book.close(&store, &opened.id).await.unwrap());
        assert!(!book.close(&store, &opened.id).await.unwrap());
        assert!(book.find(&store, &opened.id).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn idle_and_absolute_expiry() {
        let (book, store) = book();
        let start = 1_000_000 * SECOND;
        let a = book.open_at(&store, "h", "t", start).await.unwrap();
        // Used every 9 minutes: stays alive past the idle time, not past the lifetime.
        let mut now = start;
        for _ in 0..6 {
            now += 540 * SECOND;
            assert!(
                book.find_at(&store, &a.id, now).await.unwrap().is_some(),
                "used in time"
            );
        }
        now += 540 * 2 * SECOND;
        assert!(
            book.find_at(&store, &a.id, now).await.unwrap().is_none(),
            "idle too long"
        );
        assert_eq!(
            book.count(&store).await.unwrap(),
            0,
            "an expired session found is removed"
        );

        let b = book.open_at(&store, "h", "t", start).await.unwrap();
        let mut now = start;
        while now < start + (3600 - 300) * SECOND {
            now += 300 * SECOND;
            assert!(book.find_at(&store, &b.id, now).await.unwrap().is_some());
        }
        assert!(
            book.find_at(&store, &b.id, start + 3600 * SECOND)
                .await
                .unwrap()
                .is_none(),
            "past the lifetime, however used"
        );
    }

    #[tokio::test]
    async fn a_use_is_written_at_most_every_touch_interval() {
        let (book, store) = book();
        use faasbox_store::SessionStore;
        let start = 1_000_000 * SECOND;
        let a = book.open_at(&store, "h", "t", start).await.unwrap();
        let key = hash(&a.id);
        book.find_at(&store, &a.id, start + 10 * SECOND)
            .await
            .unwrap();
        assert_eq!(
            store.session(&key).await.unwrap().unwrap().last_used_ms,
            start,
            "10 s after: not written"
        );
        book.find_at(&store, &a.id, start + 40 * SECOND)
            .await
            .unwrap();
        assert_eq!(
            store.session(&key).await.unwrap().unwrap().last_used_ms,
            start + 40 * SECOND
        );
    }

    #[tokio::test]
    async fn a_token_holds_at_most_its_share_and_the_store_at_most_the_cap() {
        let book = SessionBook::with_caps(LIMITS, 30, 10);
        let store = SqliteStore::open_in_memory().unwrap();
        let start = 1_000_000 * SECOND;
        let first = book.open_at(&store, "h", "t", start).await.unwrap();
        let other = book.open_at(&store, "other", "o", start).await.unwrap();
        for i in 1..10 {
            book.open_at(&store, "h", "t", start + i).await.unwrap();
        }
        let now = start + SECOND;
        assert!(book
            .find_at(&store, &first.id, now)
            .await
            .unwrap()
            .is_some());
        book.open_at(&store, "h", "t", now).await.unwrap();
        assert!(
            book.find_at(&store, &first.id, now)
                .await
                .unwrap()
                .is_none(),
            "the oldest went"
        );
        assert!(
            book.find_at(&store, &other.id, now)
                .await
                .unwrap()
                .is_some(),
            "another token's stays"
        );
        for i in 0..40 {
            book.open_at(&store, &format!("t{i}"), "t", now + 1 + i)
                .await
                .unwrap();
        }
        assert_eq!(book.count(&store).await.unwrap(), 30);
    }
}
