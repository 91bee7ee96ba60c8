//! API tokens: making them (random, high entropy), hashing them for storage, the in-memory
//! book the middleware checks against, and the admin token the first start creates.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Instant;

use faasbox_store::Store;
use faasbox_store::TokenRecord;
use sha2::{Digest, Sha256};

use super::Principal;
use crate::clock;
use crate::failure::Failure;

/// Every token starts with this, so a leaked one is easy to recognise (and grep for).
pub const TOKEN_PREFIX: &str = "fbx_";
/// The admin token's file in the data directory.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// A token's role within its namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything in the namespace.
    Admin,
    /// Call functions and read calls and their logs.
    Invoke,
}

impl Role {
    /// Reads a role as the API and the CLI write it (`admin` or `invoke`); anything else is
    /// refused with the fix.
    pub fn parse(text: &str) -> Result<Role, Failure> {
        match text {
            "admin" => Ok(Role::Admin),
            "invoke" => Ok(Role::Invoke),
            other => Err(Failure::invalid(format!(
                "role '{}' is invalid: use admin or invoke",
                other.escape_debug()
            ))),
        }
    }

    /// The role as the API and the store write it: `admin` or `invoke`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Invoke => "invoke",
        }
    }
}

/// A new token: the one time the token itself exists outside the client.
pub struct Issued {
    /// The token itself (`fbx_…`), shown to the client once and never stored.
    pub token: String,
    /// What the store keeps of it: its id, owner, role and hash.
    pub record: TokenRecord,
}

/// 32 random bytes, hex: 256 bits, so a SHA-256 without salt or stretching is enough.
pub(crate) fn random_hex(bytes: usize) -> Result<String, Failure> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)
        .map_err(|e| Failure::internal(format!("no randomness for a token: {e}")))?;
    Ok(hex::encode(buf))
}

/// A token's SHA-256, hex: what the store keeps and requests are looked up by.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Makes a token and its record (not stored yet).
pub fn issue(name: &str, namespace: Option<String>, role: Role) -> Result<Issued, Failure> {
    let token = format!("{TOKEN_PREFIX}{}", random_hex(32)?);
    let record = TokenRecord {
        id: random_hex(6)?,
        name: name.to_string(),
        namespace,
        role: role.as_str().to_string(),
        hash: hash(&token),
        created: clock::now_rfc3339(),
    };
    Ok(Issued { token, record })
}

/// How many tokens unknown to the book are looked up in the store per second at most; past
/// it an unknown token is refused without a query, so random tokens cannot flood the database.
pub const STORE_LOOKUPS_PER_SECOND: u32 = 20;

/// The stored tokens by hash (whose, and their names), kept in memory so checking a request
/// costs no database read. A token the book does not know may have been made through another
/// server a moment ago: [`check_named_or_store`](Self::check_named_or_store) looks it up in
/// the store (at most [`STORE_LOOKUPS_PER_SECOND`]).
#[derive(Default)]
pub struct TokenBook {
    by_hash: RwLock<HashMap<String, (Principal, String)>>,
    /// Bumped by every reload (under the write lock): a token looked up before a reload is
    /// not added after it (it may have been deleted meanwhile).
    generation: AtomicU64,
    /// This second's start and how many store look-ups it made.
    budget: Mutex<Option<(Instant, u32)>>,
    /// Store look-ups made, and refused by the budget, since start.
    looked_up: AtomicU64,
    refused: AtomicU64,
}

/// Who a stored token belongs to, with its name; `None` (logged) for an unknown role.
fn principal_of(record: &TokenRecord) -> Option<(Principal, String)> {
    let principal = match (&record.namespace, Role::parse(&record.role)) {
        (None, _) => Principal::Admin,
        (Some(ns), Ok(role)) => Principal::Namespace {
            namespace: ns.clone(),
            role,
        },
        (Some(_), Err(_)) => {
            tracing::error!(token = %record.id, "stored token has an unknown role; it is ignored");
            return None;
        }
    };
    Some((principal, record.name.clone()))
}

impl TokenBook {
    /// Re-reads every token from the store (after a change).
    pub async fn reload(&self, store: &dyn Store) -> Result<(), Failure> {
        let mut map = HashMap::new();
        for record in store.list_tokens().await? {
            if let Some(entry) = principal_of(&record) {
                map.insert(record.hash, entry);
            }
        }
        let mut book = self.by_hash.write().unwrap_or_else(|p| p.into_inner());
        *book = map;
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Like [`check_named`](Self::check_named), and a token the book does not know is looked
    /// up in the store (made through another server, whose change this one has not read yet)
    /// and added. Past [`STORE_LOOKUPS_PER_SECOND`] an unknown token is refused without a
    /// query; a store that fails refuses it too (logged).
    pub async fn check_named_or_store(
        &self,
        store: &dyn Store,
        token: &str,
    ) -> Option<(Principal, String)> {
        let token_hash = hash(token);
        if let Some(found) = self.check_hash(&token_hash) {
            return Some(found);
        }
        if !self.take_lookup() {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        self.looked_up.fetch_add(1, Ordering::Relaxed);
        let generation = self.generation.load(Ordering::SeqCst);
        let record = match store.token_by_hash(&token_hash).await {
            Ok(Some(record)) => record,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!("an unknown token could not be looked up in the store: {e}");
                return None;
            }
        };
        let entry = principal_of(&record)?;
        let mut book = self.by_hash.write().unwrap_or_else(|p| p.into_inner());
        if self.generation.load(Ordering::SeqCst) == generation {
            book.insert(record.hash, entry.clone());
        }
        Some(entry)
    }

    /// How many unknown tokens were looked up in the store, and how many were refused
    /// without a look-up (the budget was spent), since start.
    pub fn store_lookups(&self) -> (u64, u64) {
        (
            self.looked_up.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
        )
    }

    /// Takes one look-up from this second's budget; whether there was one.
    fn take_lookup(&self) -> bool {
        let mut budget = self.budget.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match &mut *budget {
            Some((start, used)) if now.duration_since(*start).as_secs() < 1 => {
                if *used >= STORE_LOOKUPS_PER_SECOND {
                    if *used == STORE_LOOKUPS_PER_SECOND {
                        tracing::warn!(
                            "more than {STORE_LOOKUPS_PER_SECOND} unknown tokens this second: the rest are refused without a look-up"
                        );
                        *used += 1;
                    }
                    return false;
                }
                *used += 1;
                true
            }
            _ => {
                *budget = Some((now, 1));
                true
            }
        }
    }

    /// Who a presented token belongs to. Looked up by its hash: how long a look-up of a
    /// SHA-256 takes says nothing usable about a 256-bit random token.
    pub fn check(&self, token: &str) -> Option<Principal> {
        self.check_named(token).map(|(principal, _)| principal)
    }

    /// Like [`check`](Self::check), with the token's name.
    pub fn check_named(&self, token: &str) -> Option<(Principal, String)> {
        self.by_hash
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&hash(token))
            .cloned()
    }

    /// Who the token whose SHA-256 is `token_hash` belongs to, with its name: how a UI session
    /// (which keeps the hash, never the token) finds its caller at each request.
    pub fn check_hash(&self, token_hash: &str) -> Option<(Principal, String)> {
        self.by_hash
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(token_hash)
            .cloned()
    }
}

/// On a server's first start (no admin token stored), creates the admin token, writes it to
/// `<data-dir>/admin.token` (0600) and prints it once. The file is written before the hash is
/// stored, so a crash in between only means the next start makes a new one.
pub async fn bootstrap_admin(store: &dyn Store, data_dir: &Path) -> Result<(), Failure> {
    let has_admin = store
        .list_tokens()
        .await?
        .iter()
        .any(|t| t.namespace.is_none());
    if has_admin {
        return Ok(());
    }
    let issued = issue("admin", None, Role::Admin)
        .map_err(|e| Failure::internal(format!("making the admin token: {e}")))?;
    let path = admin_token_path(data_dir);
    // The file first: a token stored but never written down would lock everyone out.
    write_private(&path, &issued.token)?;
    if !store.insert_first_admin(&issued.record).await? {
        // Another server on the same store made the admin token meanwhile (servers started
        // together): its data directory has the file.
        let _ = std::fs::remove_file(&path);
        tracing::info!(
            "another server of this store made the admin token at the same time; use the one \
             in that server's data directory"
        );
        return Ok(());
    }
    eprintln!(
        "faasbox: created the admin API token (shown only this once): {}\n\
         faasbox: it is saved in {} (mode 0600); clients send it as `Authorization: Bearer <token>`, \
         the CLI reads it from FAASBOX_TOKEN, --token, or that file",
        issued.token,
        path.display()
    );
    Ok(())
}

/// The admin token's file in `data_dir` (written at the first start, mode 0600).
pub fn admin_token_path(data_dir: &Path) -> PathBuf {
    data_dir.join(ADMIN_TOKEN_FILE)
}

/// Writes `text` to `path` with mode 0600 through a temporary file and a rename.
fn write_private(path: &Path, text: &str) -> Result<(), Failure> {
    let failed = |what: &str, shown: &Path, e: std::io::Error| {
        Failure::internal(format!("{what} {}: {e}", shown.display()))
    };
    let tmp = path.with_extension("token.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| failed("creating", &tmp, e))?;
    file.write_all(format!("{text}\n").as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(|e| failed("writing", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| failed("saving", path, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_only_their_hash_is_kept() {
        let a = issue("a", None, Role::Admin).unwrap();
        let b = issue("b", None, Role::Admin).unwrap();
        assert_ne!(a.token, b.token);
        assert!(a.token.starts_with(TOKEN_PREFIX) && a.token.len() == 4 + 64);
        assert_eq!(a.record.hash, hash(&a.token));
        assert!(!a.record.hash.contains(&a.token[4..]));
    }

    #[test]
    fn the_hash_is_sha256_hex() {
        // FIPS 180-2's test vector for "abc".
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[tokio::test]
    async fn the_book_knows_stored_tokens_only() {
        let store = faasbox_store_sqlite::SqliteStore::open_in_memory().unwrap();
        store.create_namespace("demo", "t").unwrap();
        let admin = issue("admin", None, Role::Admin).unwrap();
        let invoke = issue("ci", Some("demo".into()), Role::Invoke).unwrap();
        store.insert_token(&admin.record).unwrap();
        store.insert_token(&invoke.record).unwrap();
        let book = TokenBook::default();
        book.reload(&store).await.unwrap();
        assert_eq!(book.check(&admin.token), Some(Principal::Admin));
        assert_eq!(
            book.check(&invoke.token),
            Some(Principal::Namespace {
                namespace: "demo".into(),
                role: Role::Invoke
            })
        );
        assert_eq!(book.check("fbx_nope"), None);
        assert_eq!(book.check_named(&invoke.token).unwrap().1, "ci");
        assert_eq!(
            book.check_hash(&invoke.record.hash),
            book.check_named(&invoke.token)
        );
        assert_eq!(book.check_hash(&invoke.token), None, "by hash only");
        store.delete_namespace("demo").unwrap();
        book.reload(&store).await.unwrap();
        assert_eq!(
            book.check(&invoke.token),
            None,
            "a namespace's tokens go with it"
        );
        assert_eq!(book.check_hash(&invoke.record.hash), None);
    }

    #[tokio::test]
    async fn an_unknown_token_is_looked_up_in_the_store_within_the_budget() {
        let store = faasbox_store_sqlite::SqliteStore::open_in_memory().unwrap();
        let book = TokenBook::default();
        book.reload(&store).await.unwrap();
        // Made by another server: the book has not been reloaded.
        let peer = issue("peer", None, Role::Admin).unwrap();
        store.insert_token(&peer.record).unwrap();
        assert_eq!(book.check_named(&peer.token), None);
        assert_eq!(
            book.check_named_or_store(&store, &peer.token).await,
            Some((Principal::Admin, "peer".into()))
        );
        // Now in the book: no second look-up.
        assert_eq!(book.check_named(&peer.token).unwrap().1, "peer");
        assert_eq!(book.store_lookups(), (1, 0));

        // A flood of unknown tokens: at most the budget reaches the store.
        for n in 0..(STORE_LOOKUPS_PER_SECOND * 3) {
            assert_eq!(
                book.check_named_or_store(&store, &format!("fbx_random{n}"))
                    .await,
                None
            );
        }
        let (looked_up, refused) = book.store_lookups();
        assert!(
            looked_up <= u64::from(STORE_LOOKUPS_PER_SECOND) * 2,
            "{looked_up} look-ups"
        );
        assert!(
            refused >= u64::from(STORE_LOOKUPS_PER_SECOND),
            "{refused} refused"
        );
        assert_eq!(
            looked_up + refused,
            1 + u64::from(STORE_LOOKUPS_PER_SECOND) * 3
        );
        // The next second has a budget again.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let late = issue("late", None, Role::Admin).unwrap();
        store.insert_token(&late.record).unwrap();
        assert!(book
            .check_named_or_store(&store, &late.token)
            .await
            .is_some());
    }
}
