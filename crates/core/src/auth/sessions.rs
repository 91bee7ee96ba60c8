//! The web UI's sign-in sessions, kept in memory (a restart signs everyone out).
//!
//! A session holds the SHA-256 hash and the name of the token it was opened with, never the
//! token: the caller is looked up from the hash at every request ([`TokenBook::check_hash`]),
//! so deleting the token ends its sessions. Sessions are keyed by the SHA-256 of their id, so
//! nothing held here is a usable id. Each has a CSRF token of its own, an absolute and an idle
//! expiry; the book holds at most [`MAX_SESSIONS`] (the oldest goes) and at most
//! [`MAX_PER_TOKEN`] of one token.
//!
//! [`TokenBook::check_hash`]: super::tokens::TokenBook::check_hash

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::tokens::{hash, random_hex};
use crate::clock;
use crate::failure::Failure;

/// The most sessions the server keeps at once; a new one beyond it drops the oldest.
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

struct Session {
    token_hash: String,
    token_name: String,
    csrf: String,
    created: Instant,
    last_used: Instant,
    /// When the absolute expiry falls, as the client is told (RFC 3339).
    expires: String,
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

/// The sessions, by the SHA-256 of their ids.
pub struct SessionBook {
    limits: SessionLimits,
    max_sessions: usize,
    max_per_token: usize,
    sessions: Mutex<HashMap<String, Session>>,
}

impl SessionBook {
    /// An empty book whose sessions live as `limits` say.
    pub fn new(limits: SessionLimits) -> Self {
        Self::with_caps(limits, MAX_SESSIONS, MAX_PER_TOKEN)
    }

    fn with_caps(limits: SessionLimits, max_sessions: usize, max_per_token: usize) -> Self {
        SessionBook {
            limits,
            max_sessions,
            max_per_token,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// How long sessions live.
    pub fn limits(&self) -> SessionLimits {
        self.limits
    }

    /// Opens a session for the token whose hash is `token_hash` (the caller has checked the
    /// token). Expired sessions are swept first.
    pub fn open(&self, token_hash: &str, token_name: &str) -> Result<Opened, Failure> {
        self.open_at(token_hash, token_name, Instant::now())
    }

    fn open_at(&self, token_hash: &str, token_name: &str, now: Instant) -> Result<Opened, Failure> {
        let id = random_hex(32)?;
        let csrf = random_hex(32)?;
        let expires = clock::format_rfc3339(OffsetDateTime::now_utc() + self.limits.lifetime);
        let mut sessions = self.lock();
        sessions.retain(|_, s| self.alive(s, now));
        let own = sessions
            .values()
            .filter(|s| s.token_hash == token_hash)
            .count();
        if own >= self.max_per_token {
            drop_oldest(&mut sessions, |s| s.token_hash == token_hash);
        }
        if sessions.len() >= self.max_sessions {
            drop_oldest(&mut sessions, |_| true);
        }
        let session = Session {
            token_hash: token_hash.to_string(),
            token_name: token_name.to_string(),
            csrf,
            created: now,
            last_used: now,
            expires,
        };
        let info = info(&session);
        sessions.insert(hash(&id), session);
        Ok(Opened { id, info })
    }

    /// The live session whose id is `id`, its idle time restarted; `None` (and the session
    /// dropped) once it has expired.
    pub fn find(&self, id: &str) -> Option<SessionInfo> {
        self.find_at(id, Instant::now())
    }

    fn find_at(&self, id: &str, now: Instant) -> Option<SessionInfo> {
        let key = hash(id);
        let mut sessions = self.lock();
        let session = sessions.get_mut(&key)?;
        if !self.alive(session, now) {
            sessions.remove(&key);
            return None;
        }
        session.last_used = session.last_used.max(now);
        Some(info(session))
    }

    /// Ends the session whose id is `id`; whether there was one.
    pub fn close(&self, id: &str) -> bool {
        self.lock().remove(&hash(id)).is_some()
    }

    /// How many sessions are held (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn alive(&self, session: &Session, now: Instant) -> bool {
        now.saturating_duration_since(session.created) < self.limits.lifetime
            && now.saturating_duration_since(session.last_used) < self.limits.idle
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn info(session: &Session) -> SessionInfo {
    SessionInfo {
        token_hash: session.token_hash.clone(),
        token_name: session.token_name.clone(),
        csrf: session.csrf.clone(),
        expires: session.expires.clone(),
    }
}

fn drop_oldest(sessions: &mut HashMap<String, Session>, which: impl Fn(&Session) -> bool) {
    let oldest = sessions
        .iter()
        .filter(|(_, s)| which(s))
        .min_by_key(|(_, s)| s.created)
        .map(|(key, _)| key.clone());
    if let Some(key) = oldest {
        sessions.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: SessionLimits = SessionLimits {
        lifetime: Duration::from_secs(3600),
        idle: Duration::from_secs(600),
    };

    fn book() -> SessionBook {
        SessionBook::new(LIMITS)
    }

    #[test]
    fn a_session_is_found_by_its_id_only_and_keeps_no_usable_id() {
        let book = book();
        let opened = book.open("h1", "laptop").unwrap();
        assert_eq!(opened.id.len(), 64);
        assert_eq!(opened.info.csrf.len(), 64);
        assert_ne!(opened.id, opened.info.csrf);
        let found = book.find(&opened.id).unwrap();
        assert_eq!(found, opened.info);
        assert_eq!(found.token_hash, "h1");
        assert_eq!(found.token_name, "laptop");
        assert!(book.find(&opened.info.csrf).is_none());
        assert!(book.find("").is_none());
        let held = book.lock();
        assert!(!held.contains_key(&opened.id), "keyed by the id's hash");
        assert!(held.contains_key(&hash(&opened.id)));
    }

    #[test]
    fn closing_ends_a_session() {
        let book = book();
        let opened = book.open("h1", "t").unwrap();
        assert!(book.close(&opened.id));
        assert!(!book.close(&opened.id));
        assert!(book.find(&opened.id).is_none());
    }

    #[test]
    fn idle_and_absolute_expiry() {
        let book = book();
        let start = Instant::now();
        let a = book.open_at("h", "t", start).unwrap();
        // Used every 9 minutes: stays alive past the idle time, not past the lifetime.
        let mut now = start;
        for _ in 0..6 {
            now += Duration::from_secs(540);
            assert!(book.find_at(&a.id, now).is_some(), "used in time");
        }
        now += Duration::from_secs(540 * 2);
        assert!(book.find_at(&a.id, now).is_none(), "idle too long");
        assert!(book.is_empty(), "an expired session found is dropped");

        let b = book.open_at("h", "t", start).unwrap();
        let mut now = start;
        while now < start + Duration::from_secs(3600 - 300) {
            now += Duration::from_secs(300);
            assert!(book.find_at(&b.id, now).is_some());
        }
        assert!(
            book.find_at(&b.id, start + Duration::from_secs(3600))
                .is_none(),
            "past the lifetime, however used"
        );
    }

    #[test]
    fn signing_in_sweeps_expired_sessions() {
        let book = book();
        let start = Instant::now();
        book.open_at("h", "t", start).unwrap();
        book.open_at("h", "t", start).unwrap();
        assert_eq!(book.len(), 2);
        book.open_at("h", "t", start + Duration::from_secs(601))
            .unwrap();
        assert_eq!(book.len(), 1);
    }

    #[test]
    fn a_token_holds_at_most_its_share_the_oldest_goes() {
        let book = book();
        let start = Instant::now();
        let first = book.open_at("h", "t", start).unwrap();
        let other = book.open_at("other", "o", start).unwrap();
        for i in 1..MAX_PER_TOKEN {
            book.open_at("h", "t", start + Duration::from_millis(i as u64))
                .unwrap();
        }
        let now = start + Duration::from_secs(1);
        assert!(book.find_at(&first.id, now).is_some());
        book.open_at("h", "t", now).unwrap();
        assert!(book.find_at(&first.id, now).is_none(), "the oldest went");
        assert!(
            book.find_at(&other.id, now).is_some(),
            "another token's stays"
        );
        assert_eq!(book.len(), MAX_PER_TOKEN + 1);
    }

    #[test]
    fn the_book_holds_at_most_max_sessions() {
        const MAX: usize = 300;
        let book = SessionBook::with_caps(LIMITS, MAX, 10);
        let start = Instant::now();
        let first = book.open_at("t0", "t", start).unwrap();
        for i in 1..MAX {
            book.open_at(
                &format!("t{}", i % 100),
                "t",
                start + Duration::from_micros(i as u64),
            )
            .unwrap();
        }
        assert_eq!(book.len(), MAX);
        let now = start + Duration::from_secs(1);
        book.open_at("new", "n", now).unwrap();
        assert_eq!(book.len(), MAX);
        assert!(book.find_at(&first.id, now).is_none(), "the oldest went");
    }
}
