//! `faasbox admin migrate-store --from sqlite:DIR --to postgres://…`: moves a stopped server's
//! state from its data directory's SQLite database into an empty PostgreSQL database, with
//! nothing lost. A local command: it opens both databases itself, no server runs.
//!
//! Every table is copied in one PostgreSQL transaction (SQLite's export, PostgreSQL's import),
//! the row counts compared per table before the commit, and afterwards every secret and
//! registry credential decrypted through a vault over the PostgreSQL store with the data
//! directory's master key: the copy is only reported done when all of it is still readable.
//! Like `app.rs`, this composition names both backends.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use faasbox_core::config::MasterKeyEnv;
use faasbox_secrets::{KeySource, RegistryScope, Vault};
use faasbox_store::Store;
use faasbox_store_postgres::{ImportValue, PgStore};
use faasbox_store_sqlite::{SqliteStore, Value};

use crate::app::StoreUrl;

/// Rows read from SQLite and inserted into PostgreSQL at a time.
const PAGE: usize = 1000;

/// What to move where.
pub struct MigrateStore {
    /// `--from`: `sqlite:DIR`, DIR being the stopped server's data directory.
    pub from: String,
    /// `--to`: the PostgreSQL database's URL.
    pub to: String,
    /// Connections to PostgreSQL at most.
    pub connections: usize,
    /// The master key given from outside (else DIR's `keys/master.key`).
    pub master_key: MasterKeyEnv,
}

/// What was moved.
#[derive(Debug)]
pub struct Migrated {
    /// The data directory moved.
    pub data_dir: PathBuf,
    /// The target, its password masked.
    pub target: String,
    /// Each table and the rows copied.
    pub tables: Vec<(String, u64)>,
    /// Secrets decrypted through the PostgreSQL store.
    pub secrets: usize,
    /// Registry credentials decrypted through the PostgreSQL store.
    pub registries: usize,
    /// The master key to give every server (a file, or the environment variable).
    pub master_key: String,
}

/// Runs the migration; `progress` gets one line per step (for stderr).
pub async fn run(job: MigrateStore, progress: &mut dyn FnMut(&str)) -> anyhow::Result<Migrated> {
    let data_dir = match job.from.strip_prefix("sqlite:") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => anyhow::bail!(
            "--from {}: give sqlite:DIR, DIR being the data directory of the server to move \
             (e.g. sqlite:/var/lib/faasbox)",
            job.from
        ),
    };
    let url = match StoreUrl::parse(&job.to)? {
        StoreUrl::Postgres(url) => url,
        StoreUrl::Sqlite => anyhow::bail!(
            "--to: give the PostgreSQL database to move into, \
             postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
        ),
    };
    let target = faasbox_store_postgres::masked_url(&url);
    let database = data_dir.join("faasbox.db");
    if !database.is_file() {
        anyhow::bail!(
            "{} does not exist: --from names the data directory of a faasbox server \
             (the one its --data-dir gave)",
            database.display()
        );
    }
    if let Some(pid) = process_with_open(&database) {
        anyhow::bail!(
            "process {pid} has {} open: stop the faasbox server on {} first (migrate-store \
             copies a data directory nobody writes)",
            database.display(),
            data_dir.display()
        );
    }
    let key_source = job
        .master_key
        .source(data_dir.join("keys").join("master.key"))?;
    if let KeySource::DefaultFile(path) = &key_source {
        if !path.is_file() {
            anyhow::bail!(
                "the master key {} does not exist; give the key the server used with \
                 FAASBOX_MASTER_KEY_FILE=… (or FAASBOX_MASTER_KEY)",
                path.display()
            );
        }
    }

    progress(&format!("opening {}", database.display()));
    let opened = database.clone();
    let sqlite = tokio::task::spawn_blocking(move || SqliteStore::open(&opened))
        .await?
        .with_context(|| format!("opening {}", database.display()))?;
    let sqlite_store: Arc<dyn Store> = Arc::new(sqlite.clone());
    // The key must be the one the data keys were wrapped with before anything is copied.
    Vault::open(&key_source, sqlite_store)
        .await
        .with_context(|| format!("checking the master key ({key_source})"))?;

    progress(&format!("opening {target}"));
    let pg = PgStore::open(&url, job.connections)
        .await
        .context("opening the PostgreSQL database of --to (is PostgreSQL running there, does the database exist, may the user connect?)")?;

    let locker = sqlite.clone();
    let lock = tokio::task::spawn_blocking(move || locker.lock_for_export())
        .await?
        .with_context(|| format!("locking {}", database.display()))?;
    let tables = blocking(&sqlite, |s| s.export_tables()).await?;
    let mut import = pg.begin_import().await?;
    let mut copied = Vec::new();
    for table in &tables {
        if !import.has_table(&table.name) {
            anyhow::bail!(
                "the PostgreSQL schema has no table {}: this build cannot move it",
                table.name
            );
        }
        let mut after = 0_i64;
        let mut rows_copied = 0_u64;
        loop {
            let page_of = table.clone();
            let rows = blocking(&sqlite, move |s| s.export_rows(&page_of, after, PAGE)).await?;
            let Some(last) = rows.last() else { break };
            after = match last.last() {
                Some(Value::Int(rowid)) => *rowid,
                _ => anyhow::bail!("{}: a row without its rowid", table.name),
            };
            let count = rows.len();
            let values = rows
                .into_iter()
                .map(|row| row.into_iter().map(import_value).collect())
                .collect();
            import
                .insert(&table.name, &table.columns, values)
                .await
                .with_context(|| format!("copying the table {}", table.name))?;
            rows_copied += count as u64;
            if count < PAGE {
                break;
            }
        }
        let name = table.name.clone();
        let in_sqlite = blocking(&sqlite, move |s| s.count_rows(&name)).await?;
        let in_pg = import.count(&table.name).await?;
        if in_sqlite != in_pg || in_pg != rows_copied {
            anyhow::bail!(
                "the table {} has {in_sqlite} rows in SQLite but {in_pg} in PostgreSQL; \
                 nothing was committed",
                table.name
            );
        }
        progress(&format!("copied {}: {in_pg} rows", table.name));
        copied.push((table.name.clone(), in_pg));
    }
    import
        .finish()
        .await
        .context("committing the copy into PostgreSQL")?;
    drop(lock);
    progress("committed; checking that every secret and registry credential decrypts");

    let store: Arc<dyn Store> = Arc::new(pg);
    let vault = Vault::open(&key_source, store.clone())
        .await
        .with_context(|| format!("opening the vault over PostgreSQL with the {key_source}"))?;
    let (secrets, registries) = check_decryptable(&vault, &*store).await?;
    Ok(Migrated {
        data_dir,
        target,
        tables: copied,
        secrets,
        registries,
        master_key: key_source.to_string(),
    })
}

/// Decrypts every secret and every registry password; how many of each.
async fn check_decryptable(vault: &Vault, store: &dyn Store) -> anyhow::Result<(usize, usize)> {
    let mut secrets = 0;
    let mut registries = 0;
    let mut scopes = vec![RegistryScope::Global, RegistryScope::GlobalPrivate];
    for namespace in store.list_namespaces().await? {
        for secret in vault.list_secrets(&namespace.name).await? {
            vault
                .get_secret(&namespace.name, &secret.name)
                .await
                .with_context(|| {
                    format!("decrypting the secret {}/{}", namespace.name, secret.name)
                })?
                .with_context(|| {
                    format!(
                        "the secret {}/{} is listed but not found",
                        namespace.name, secret.name
                    )
                })?;
            secrets += 1;
        }
        scopes.push(RegistryScope::Namespace(namespace.name));
    }
    for scope in scopes {
        for registry in vault.list_registries(&scope).await? {
            vault
                .registry_credentials(&scope, &registry.host)
                .await
                .with_context(|| format!("decrypting the {scope}'s registry {}", registry.host))?
                .with_context(|| {
                    format!(
                        "the {scope}'s registry {} is listed but not found",
                        registry.host
                    )
                })?;
            registries += 1;
        }
    }
    Ok((secrets, registries))
}

/// Runs SQLite work on a blocking thread.
async fn blocking<T: Send + 'static>(
    sqlite: &SqliteStore,
    work: impl FnOnce(&SqliteStore) -> faasbox_store::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let store = sqlite.clone();
    Ok(tokio::task::spawn_blocking(move || work(&store)).await??)
}

fn import_value(value: Value) -> ImportValue {
    match value {
        Value::Null => ImportValue::Null,
        Value::Int(n) => ImportValue::Int(n),
        Value::Text(t) => ImportValue::Text(t),
        Value::Blob(b) => ImportValue::Blob(b),
    }
}

/// A process other than this one that has `file` open, found through `/proc/*/fd` (a server
/// keeps its database open as long as it runs, even while it writes nothing).
fn process_with_open(file: &Path) -> Option<u32> {
    let wanted = std::fs::canonicalize(file).ok()?;
    let me = std::process::id();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue; // gone, or not ours to look at
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|target| target == wanted) {
                return Some(pid);
            }
        }
    }
    None
}
