//! The web UI's sign-in sessions, in the store so that every server sharing it knows every
//! session (a load balancer may send a user's requests to any of them) and a restart signs
//! nobody out. A session is keyed by the SHA-256 of its id (the cookie's value), so nothing
//! stored is a usable id; it holds the hash and name of the token it was opened with, never
//! the token. Times are milliseconds since the epoch by the servers' clocks.

use async_trait::async_trait;

use crate::Result;

/// One stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The SHA-256 (hex) of the session's id.
    pub key: String,
    /// The SHA-256 of the token it was opened with.
    pub token_hash: String,
    /// That token's name at sign-in.
    pub token_name: String,
    /// The session's CSRF token.
    pub csrf: String,
    /// When it was opened.
    pub created_ms: i64,
    /// When it was last used (updated at most every few seconds, see the core).
    pub last_used_ms: i64,
    /// Its absolute expiry as the client is told (RFC 3339).
    pub expires: String,
}

/// How long sessions live and how many the store keeps, for [`SessionStore::open_session`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionCaps {
    /// A session opened longer ago than this has expired.
    pub lifetime_ms: i64,
    /// A session unused for longer than this has expired.
    pub idle_ms: i64,
    /// The most sessions kept: a new one beyond it drops the oldest.
    pub max_sessions: u32,
    /// The most sessions of one token: a new one beyond it drops that token's oldest.
    pub max_per_token: u32,
}

/// The UI's sessions.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session, in one transaction with the sweep that makes room for it:
    /// sessions expired at `record.created_ms` go, then the token's oldest while it holds
    /// `max_per_token` or more, then the oldest of all while there are `max_sessions` or more.
    async fn open_session(&self, record: &SessionRecord, caps: &SessionCaps) -> Result<()>;

    /// The session keyed `key`, expired or not (the caller judges); `None` when there is none.
    async fn session(&self, key: &str) -> Result<Option<SessionRecord>>;

    /// Records that the session keyed `key` was used at `used_ms` (never moves it back).
    async fn touch_session(&self, key: &str, used_ms: i64) -> Result<()>;

    /// Removes the session keyed `key`; whether there was one.
    async fn close_session(&self, key: &str) -> Result<bool>;

    /// How many sessions are stored (expired ones not yet swept included).
    async fn count_sessions(&self) -> Result<u64>;
}
