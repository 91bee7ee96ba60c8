//! API tokens: making them (random, high entropy), hashing them for storage, the in-memory
//! book the middleware checks against, and the admin token the first start creates.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

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

/// The stored tokens by hash (whose, and their names), kept in memory so checking a request
/// costs no database read.
#[derive(Default)]
pub struct TokenBook {
    by_hash: RwLock<HashMap<String, (Principal, String)>>,
}

impl TokenBook {
    /// Re-reads every token from the store (after a change).
    pub async fn reload(&self, store: &dyn Store) -> Result<(), Failure> {
        let mut map = HashMap::new();
        for record in store.list_tokens().await? {
            let principal = match (&record.namespace, Role::parse(&record.role)) {
                (None, _) => Principal::Admin,
                (Some(ns), Ok(role)) => Principal::Namespace {
                    namespace: ns.clone(),
                    role,
                },
                (Some(_), Err(_)) => {
                    tracing::error!(token = %record.id, "stored token has an unknown role; it is ignored");
                    continue;
                }
            };
            map.insert(record.hash, (principal, record.name));
        }
        *self.by_hash.write().unwrap_or_else(|p| p.into_inner()) = map;
        Ok(())
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
    write_private(&path, &issued.token)?;
    store.insert_token(&issued.record).await?;
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
}
