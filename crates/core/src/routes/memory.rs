//! What the gateway remembers between requests for routes' authentication, bounded: Slack
//! signatures seen within their window (a replay is refused) and basic-auth credentials
//! verified recently (Argon2 is slow on purpose). Only digests are kept, never a credential.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// How many verified basic-auth credentials are remembered.
const VERIFIED_CAPACITY: usize = 1024;
/// How long a verified basic-auth credential is remembered.
const VERIFIED_FOR: Duration = Duration::from_secs(300);
/// How many Slack signatures are remembered (within their windows).
const REPLAY_CAPACITY: usize = 100_000;

/// Slack signatures seen, until their window has passed: one seen again is a replay.
#[derive(Default)]
pub struct ReplayGuard {
    seen: Mutex<HashMap<[u8; 32], Instant>>,
}

impl ReplayGuard {
    pub(crate) fn key(namespace: &str, route: &str, signature: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        for part in [namespace, route, signature] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        h.finalize().into()
    }

    /// Whether `key` is new (then it is remembered until `expires`).
    pub(crate) fn first_time(&self, key: [u8; 32], expires: Instant) -> bool {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.get(&key).is_some_and(|until| *until > now) {
            return false;
        }
        if seen.len() >= REPLAY_CAPACITY {
            seen.retain(|_, until| *until > now);
            if seen.len() >= REPLAY_CAPACITY {
                // Still full: the one that expires first goes.
                if let Some(first) = seen
                    .iter()
                    .min_by_key(|(_, until)| **until)
                    .map(|(k, _)| *k)
                {
                    seen.remove(&first);
                }
            }
        }
        seen.insert(key, expires);
        true
    }
}

/// Basic-auth credentials verified recently, by a digest of (route, stored hash, user,
/// password): a changed password no longer matches, and no password is kept.
#[derive(Default)]
pub struct VerifiedCache {
    entries: Mutex<HashMap<[u8; 32], Instant>>,
}

impl VerifiedCache {
    pub(crate) fn key(
        namespace: &str,
        route: &str,
        hash: &str,
        user: &str,
        password: &str,
    ) -> [u8; 32] {
        let mut h = Sha256::new();
        for part in [namespace, route, hash, user, password] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        h.finalize().into()
    }

    pub(crate) fn contains(&self, key: &[u8; 32]) -> bool {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .is_some_and(|at| at.elapsed() < VERIFIED_FOR)
    }

    pub(crate) fn insert(&self, key: [u8; 32]) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= VERIFIED_CAPACITY {
            entries.retain(|_, at| at.elapsed() < VERIFIED_FOR);
            if entries.len() >= VERIFIED_CAPACITY {
                entries.clear();
            }
        }
        entries.insert(key, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replay_memory_is_bounded() {
        let guard = ReplayGuard::default();
        let until = Instant::now() + Duration::from_secs(60);
        for i in 0..(REPLAY_CAPACITY + 5) {
            assert!(guard.first_time(ReplayGuard::key("d", "r", &i.to_string()), until));
        }
        assert!(guard.seen.lock().unwrap().len() <= REPLAY_CAPACITY);
        let cache = VerifiedCache::default();
        for i in 0..(VERIFIED_CAPACITY + 5) {
            cache.insert(VerifiedCache::key("d", "r", "h", "u", &i.to_string()));
        }
        assert!(cache.entries.lock().unwrap().len() <= VERIFIED_CAPACITY);
        assert!(cache.contains(&VerifiedCache::key(
            "d",
            "r",
            "h",
            "u",
            &(VERIFIED_CAPACITY + 4).to_string()
        )));
        assert!(!cache.contains(&VerifiedCache::key("d", "r", "h2", "u", "1")));
    }
}
