//! faasbox's metadata store on PostgreSQL: the backend several servers share. [`PgStore`]
//! implements every trait of `faasbox-store` with the same meaning as the SQLite backend (the
//! shared backend suite holds both to it), over a pool of connections (`deadpool-postgres`).
//!
//! The schema mirrors SQLite's table by table and column by column (`schema.rs`), so the SQL of
//! both backends reads alike and `faasbox admin migrate-store` copies rows as they are. Three
//! rules keep the meaning the same:
//! - every text column is `COLLATE "C"`: text orders by its bytes, as in SQLite, whatever the
//!   database's locale (stored times sort in time order; names sort as on SQLite);
//! - every integer is `BIGINT` (Rust `i64`), and SQLite's 0/1 flags stay integers;
//! - the tables SQLite orders by its implicit `rowid` have an explicit `rowid` column (an
//!   identity), named like SQLite's so the queries and the copy need no translation.
//!
//! Each part's SQL is in a file of its own that implements that part's trait.

mod changes;
mod code;
mod events;
mod flows;
mod functions;
mod image_names;
mod import;
mod namespaces;
mod nodes;
mod pull_failures;
mod routes;
mod runs;
mod schema;
mod secrets;
mod services;
mod sessions;
mod tokens;

use std::str::FromStr;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use faasbox_store::{Result, StoreError};
use tokio_postgres::NoTls;

pub use import::{Import, ImportValue};
pub use schema::SCHEMA_VERSION;

/// How many connections one server keeps to the database at most, unless told otherwise.
pub const DEFAULT_CONNECTIONS: usize = 16;

/// The PostgreSQL store. Cloning it is cheap: clones share the pool.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// The database's URL with its password masked: what messages may show.
    shown: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("database", &self.shown)
            .finish()
    }
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user[:password]@host[:port]/database`)
    /// with at most `connections` connections, and brings its schema up to date. Servers that
    /// open one database at the same time migrate it once: the migration holds an advisory lock,
    /// and who waited for it finds nothing left to do.
    pub async fn open(url: &str, connections: usize) -> Result<PgStore> {
        let shown = masked_url(url);
        let open_error = |source: faasbox_store::BoxError| StoreError::Open {
            path: shown.clone(),
            source,
        };
        let config = tokio_postgres::Config::from_str(url).map_err(|e| open_error(e.into()))?;
        if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            return Err(open_error(
                "TLS to PostgreSQL is not supported yet; connect over loopback or a private network with sslmode=disable (or leave sslmode out)".into(),
            ));
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(connections.max(2))
            .build()
            .map_err(|e| open_error(e.into()))?;
        let mut client = pool.get().await.map_err(|e| open_error(e.into()))?;
        schema::migrate(&mut client).await?;
        drop(client);
        Ok(PgStore { pool, shown })
    }

    /// The database's URL with its password masked.
    pub fn database(&self) -> &str {
        &self.shown
    }

    /// A connection from the pool (waiting for one while all are in use).
    pub(crate) async fn client(&self) -> Result<Object> {
        self.pool.get().await.map_err(StoreError::backend)
    }
}

/// PostgreSQL's error as a [`StoreError::Backend`]. The message carries the server's own text
/// (`ERROR: …`), not only "db error".
pub(crate) fn db(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(server) => StoreError::backend(format!(
            "{}: {} (SQLSTATE {})",
            server.severity(),
            server.message(),
            server.code().code()
        )),
        None => StoreError::backend(e),
    }
}

/// Whether `e` is PostgreSQL refusing a row whose foreign key points nowhere (SQLSTATE 23503).
pub(crate) fn is_foreign_key_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION)
}

/// `url` with the password (if any) replaced by `***`, for messages and logs.
pub fn masked_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::masked_url;

    #[test]
    fn passwords_are_masked_and_the_rest_is_kept() {
        assert_eq!(
            masked_url("postgres://faasbox:s3cret@db.example:5432/faasbox?sslmode=disable"),
            "postgres://faasbox:***@db.example:5432/faasbox?sslmode=disable"
        );
        assert_eq!(
            masked_url("postgres://faasbox@127.0.0.1/db"),
            "postgres://faasbox@127.0.0.1/db"
        );
        assert_eq!(masked_url("postgres://h/db"), "postgres://h/db");
        assert_eq!(
            masked_url("postgresql://a:b:c@h/d"),
            "postgresql://a:***@h/d"
        );
    }
}
