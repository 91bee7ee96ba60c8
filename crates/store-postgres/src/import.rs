//! Copying rows into an empty PostgreSQL store, for `faasbox admin migrate-store`: one
//! transaction from [`PgStore::begin_import`] to [`Import::finish`] (nothing is left behind
//! when the copy fails half-way), rows inserted by column name in multi-row `INSERT`s, then
//! every identity set past its largest value and the events counter to the newest event.

use std::collections::HashMap;

use deadpool_postgres::Object;
use faasbox_store::{Result, StoreError};
use tokio_postgres::types::{ToSql, Type};

use crate::{db, PgStore};

/// One value of a row to copy (what SQLite's export gives).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportValue {
    /// SQL's NULL.
    Null,
    /// An integer.
    Int(i64),
    /// Text (UTF-8).
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

/// The column of SQLite's implicit row id, copied into the column of that name where the
/// PostgreSQL table has one and dropped where it has none.
const ROWID: &str = "rowid";

/// Tables the schema fills itself: not faasbox's data, not copied, not checked for emptiness.
const OWN_TABLES: [&str; 2] = ["counters", "schema_version"];

/// Held while the emptiness check and the copy run, so two copies into one database do not
/// both find it empty (any constant; this one spells "faasbox" and 2).
const IMPORT_LOCK: i64 = 0x6661_6173_626f_7802;

/// The most parameters one statement gets (PostgreSQL's limit is 65535).
const MAX_PARAMS: usize = 60_000;
/// The most rows one `INSERT` carries.
const MAX_ROWS: usize = 500;

/// A copy in progress: a connection in an open transaction. Dropped before [`Import::finish`],
/// the connection is closed, which rolls the transaction back.
pub struct Import {
    client: Option<Object>,
    /// Each table's columns and their types.
    tables: HashMap<String, Vec<(String, Type)>>,
}

impl PgStore {
    /// Starts a copy into this database, which must hold no faasbox data (a refusal names
    /// the first table with rows).
    pub async fn begin_import(&self) -> Result<Import> {
        let client = self.client().await?;
        client.batch_execute("BEGIN").await.map_err(db)?;
        let mut import = Import {
            client: Some(client),
            tables: HashMap::new(),
        };
        let client = import.client()?;
        client
            .execute("SELECT pg_advisory_xact_lock($1)", &[&IMPORT_LOCK])
            .await
            .map_err(db)?;
        let rows = client
            .query(
                "SELECT c.table_name::text, c.column_name::text, c.udt_name::text
                 FROM information_schema.columns c
                 JOIN information_schema.tables t
                   ON t.table_schema = c.table_schema AND t.table_name = c.table_name
                 WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
                 ORDER BY c.table_name, c.ordinal_position",
                &[],
            )
            .await
            .map_err(db)?;
        let mut tables: HashMap<String, Vec<(String, Type)>> = HashMap::new();
        for row in rows {
            let table: String = row.get(0);
            let column: String = row.get(1);
            let ty = match row.get::<_, String>(2).as_str() {
                "int8" => Type::INT8,
                "text" => Type::TEXT,
                "bytea" => Type::BYTEA,
                other => {
                    return Err(StoreError::backend(format!(
                        "{table}.{column} has the type {other}, which migrate-store cannot fill"
                    )))
                }
            };
            tables.entry(table).or_default().push((column, ty));
        }
        let mut names: Vec<&String> = tables.keys().collect();
        names.sort();
        for table in names {
            if OWN_TABLES.contains(&table.as_str()) {
                continue;
            }
            let has_rows: bool = client
                .query_one(&format!("SELECT EXISTS (SELECT 1 FROM \"{table}\")"), &[])
                .await
                .map_err(db)?
                .get(0);
            if has_rows {
                return Err(StoreError::Refused(
                    format!(
                        "the database {} already holds faasbox data (the table {table} has \
                         rows); migrate into a new, empty database (createdb)",
                        self.database()
                    )
                    .into(),
                ));
            }
        }
        import.tables = tables;
        Ok(import)
    }
}

impl Import {
    fn client(&self) -> Result<&Object> {
        self.client
            .as_ref()
            .ok_or_else(|| StoreError::backend("the copy has ended"))
    }

    /// Whether the database has `table` (a table SQLite has and PostgreSQL not is an error
    /// of the caller's to report).
    pub fn has_table(&self, table: &str) -> bool {
        self.tables.contains_key(table)
    }

    /// Inserts `rows` into `table`; each row's values are in the order of `columns` (SQLite's
    /// names, which are PostgreSQL's). A `rowid` column is kept where the table has one.
    pub async fn insert(
        &mut self,
        table: &str,
        columns: &[String],
        rows: Vec<Vec<ImportValue>>,
    ) -> Result<()> {
        let known = self.tables.get(table).ok_or_else(|| {
            StoreError::backend(format!("the PostgreSQL schema has no table {table}"))
        })?;
        // Which of the given columns go in, with their PostgreSQL types.
        let mut keep: Vec<(usize, &str, &Type)> = Vec::new();
        for (index, column) in columns.iter().enumerate() {
            match known.iter().find(|(name, _)| name == column) {
                Some((name, ty)) => keep.push((index, name, ty)),
                None if column == ROWID => {}
                None => {
                    return Err(StoreError::backend(format!(
                        "the PostgreSQL schema has no column {table}.{column}"
                    )))
                }
            }
        }
        if keep.is_empty() || rows.is_empty() {
            return Ok(());
        }
        let per_statement = (MAX_PARAMS / keep.len()).clamp(1, MAX_ROWS);
        let names: Vec<String> = keep
            .iter()
            .map(|(_, name, _)| format!("\"{name}\""))
            .collect();
        let client = self.client()?;
        for chunk in rows.chunks(per_statement) {
            let mut params: Vec<Box<dyn ToSql + Sync + Send>> =
                Vec::with_capacity(chunk.len() * keep.len());
            let mut tuples = Vec::with_capacity(chunk.len());
            for row in chunk {
                let mut slots = Vec::with_capacity(keep.len());
                for (index, name, ty) in &keep {
                    let value = row.get(*index).ok_or_else(|| {
                        StoreError::backend(format!("a row of {table} lacks the column {name}"))
                    })?;
                    params.push(param(table, name, ty, value)?);
                    slots.push(format!("${}", params.len()));
                }
                tuples.push(format!("({})", slots.join(", ")));
            }
            let sql = format!(
                "INSERT INTO \"{table}\" ({}) VALUES {}",
                names.join(", "),
                tuples.join(", ")
            );
            let refs: Vec<&(dyn ToSql + Sync)> = params
                .iter()
                .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                .collect();
            client.execute(&sql, &refs).await.map_err(db)?;
        }
        Ok(())
    }

    /// How many rows `table` has now (in this transaction).
    pub async fn count(&self, table: &str) -> Result<u64> {
        let n: i64 = self
            .client()?
            .query_one(&format!("SELECT COUNT(*) FROM \"{table}\""), &[])
            .await
            .map_err(db)?
            .get(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Ends the copy: every identity continues after its largest copied value, the events
    /// counter after the newest event, and the transaction commits.
    pub async fn finish(mut self) -> Result<()> {
        let client = self.client()?;
        let identities = client
            .query(
                "SELECT table_name::text, column_name::text FROM information_schema.columns
                 WHERE table_schema = current_schema() AND is_identity = 'YES'",
                &[],
            )
            .await
            .map_err(db)?;
        for row in identities {
            let table: String = row.get(0);
            let column: String = row.get(1);
            // `false`: the next value handed out is this one itself (1 in an empty table).
            client
                .execute(
                    &format!(
                        "SELECT setval(pg_get_serial_sequence($1, $2),
                                       COALESCE((SELECT MAX(\"{column}\") FROM \"{table}\"), 0) + 1,
                                       false)"
                    ),
                    &[&format!("\"{table}\""), &column],
                )
                .await
                .map_err(db)?;
        }
        client
            .execute(
                "UPDATE counters SET value = (SELECT COALESCE(MAX(seq), 0) FROM events)
                 WHERE name = 'events'",
                &[],
            )
            .await
            .map_err(db)?;
        client.batch_execute("COMMIT").await.map_err(db)?;
        // Committed: the connection goes back to the pool as any other.
        self.client = None;
        Ok(())
    }
}

impl Drop for Import {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            // Still in the transaction: close the connection (PostgreSQL rolls back) rather
            // than hand it back to the pool with the transaction open.
            drop(Object::take(client));
        }
    }
}

/// `value` as a parameter for a column of type `ty`.
fn param(
    table: &str,
    column: &str,
    ty: &Type,
    value: &ImportValue,
) -> Result<Box<dyn ToSql + Sync + Send>> {
    let mismatch = || {
        let kind = match value {
            ImportValue::Null => "NULL",
            ImportValue::Int(_) => "an integer",
            ImportValue::Text(_) => "a text",
            ImportValue::Blob(_) => "a blob",
        };
        StoreError::backend(format!(
            "{table}.{column}: {kind} does not fit the column's type {ty}"
        ))
    };
    Ok(match (ty, value) {
        (&Type::INT8, ImportValue::Null) => Box::new(None::<i64>),
        (&Type::INT8, ImportValue::Int(n)) => Box::new(*n),
        (&Type::INT8, ImportValue::Text(t)) => {
            Box::new(t.trim().parse::<i64>().map_err(|_| mismatch())?)
        }
        (&Type::TEXT, ImportValue::Null) => Box::new(None::<String>),
        (&Type::TEXT, ImportValue::Text(t)) => Box::new(t.clone()),
        (&Type::TEXT, ImportValue::Int(n)) => Box::new(n.to_string()),
        (&Type::TEXT, ImportValue::Blob(b)) => {
            Box::new(String::from_utf8(b.clone()).map_err(|_| mismatch())?)
        }
        (&Type::BYTEA, ImportValue::Null) => Box::new(None::<Vec<u8>>),
        (&Type::BYTEA, ImportValue::Blob(b)) => Box::new(b.clone()),
        (&Type::BYTEA, ImportValue::Text(t)) => Box::new(t.clone().into_bytes()),
        _ => return Err(mismatch()),
    })
}
