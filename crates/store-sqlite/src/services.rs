//! Persistence for service instances: a row per service (its plain parameters as a JSON
//! object) and a row per secret parameter (its ciphertext, opaque here). Both go with their
//! namespace (foreign keys cascade).

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};

use faasbox_store::{Result, ServiceRecord, StoreError};

use crate::{namespace_exists, sql, Sql, SqliteStore};

impl SqliteStore {
    /// Creates or replaces a service with all its parameters, keeping `created` on replace.
    /// The namespace must exist, and have a data key when there are secret parameters.
    pub fn put_service(&self, record: &ServiceRecord) -> Result<ServiceRecord> {
        sql(|| {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            if !namespace_exists(&tx, &record.namespace)? {
                return Err(StoreError::NoNamespace(record.namespace.clone()).into());
            }
            if !record.secret_params.is_empty() {
                let has_key = tx
                    .query_row(
                        "SELECT 1 FROM data_keys WHERE namespace = ?1",
                        [&record.namespace],
                        |_| Ok(()),
                    )
                    .optional()?
                    .is_some();
                if !has_key {
                    return Err(StoreError::NoDataKey(record.namespace.clone()).into());
                }
            }
            let params = serde_json::to_string(&record.params).map_err(StoreError::backend)?;
            tx.execute(
                "INSERT INTO services (namespace, name, params, created, modified)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (namespace, name)
                 DO UPDATE SET params = excluded.params, modified = excluded.modified",
                params![
                    record.namespace,
                    record.name,
                    params,
                    record.created,
                    record.modified
                ],
            )?;
            tx.execute(
                "DELETE FROM service_secret_params WHERE namespace = ?1 AND service = ?2",
                params![record.namespace, record.name],
            )?;
            for (key, ciphertext) in &record.secret_params {
                tx.execute(
                    "INSERT INTO service_secret_params (namespace, service, key, ciphertext)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![record.namespace, record.name, key, ciphertext],
                )?;
            }
            let stored = read_service(&tx, &record.namespace, &record.name)?
                .ok_or_else(|| StoreError::backend("the service just written is not there"))?;
            tx.commit()?;
            Ok(stored)
        })
    }

    /// The service `name` of `namespace`; `None` when there is none.
    pub fn service(&self, namespace: &str, name: &str) -> Result<Option<ServiceRecord>> {
        sql(|| read_service(&self.conn(), namespace, name))
    }

    /// The services of a namespace ordered by name.
    pub fn list_services(&self, namespace: &str) -> Result<Vec<ServiceRecord>> {
        sql(|| {
            let conn = self.conn();
            let names = {
                let mut stmt =
                    conn.prepare("SELECT name FROM services WHERE namespace = ?1 ORDER BY name")?;
                let rows = stmt.query_map([namespace], |r| r.get::<_, String>(0))?;
                rows.collect::<rusqlite::Result<Vec<_>>>()?
            };
            let mut found = Vec::with_capacity(names.len());
            for name in names {
                found.extend(read_service(&conn, namespace, &name)?);
            }
            Ok(found)
        })
    }

    /// Deletes a service (and its secret parameters); whether it existed.
    pub fn delete_service(&self, namespace: &str, name: &str) -> Result<bool> {
        sql(|| {
            Ok(self.conn().execute(
                "DELETE FROM services WHERE namespace = ?1 AND name = ?2",
                params![namespace, name],
            )? > 0)
        })
    }
}

fn read_service(conn: &Connection, namespace: &str, name: &str) -> Sql<Option<ServiceRecord>> {
    let row = conn
        .query_row(
            "SELECT params, created, modified FROM services WHERE namespace = ?1 AND name = ?2",
            params![namespace, name],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            },
        )
        .optional()?;
    let Some((params, created, modified)) = row else {
        return Ok(None);
    };
    let params: BTreeMap<String, String> =
        serde_json::from_str(&params).map_err(StoreError::backend)?;
    let mut stmt = conn.prepare(
        "SELECT key, ciphertext FROM service_secret_params
         WHERE namespace = ?1 AND service = ?2 ORDER BY key",
    )?;
    let secret_params = stmt
        .query_map(params![namespace, name], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<BTreeMap<String, Vec<u8>>>>()?;
    Ok(Some(ServiceRecord {
        namespace: namespace.to_string(),
        name: name.to_string(),
        params,
        secret_params,
        created,
        modified,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use faasbox_store::DataKeyRecord;

    fn service(name: &str, secret: &[(&str, &[u8])], at: &str) -> ServiceRecord {
        ServiceRecord {
            namespace: "demo".into(),
            name: name.into(),
            params: BTreeMap::from([("host".to_string(), format!("{name}.local"))]),
            secret_params: secret
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_vec()))
                .collect(),
            created: at.into(),
            modified: at.into(),
        }
    }

    #[test]
    fn services_are_replaced_whole_listed_and_go_with_their_namespace() {
        let store = SqliteStore::open_in_memory().unwrap();
        assert!(matches!(
            store.put_service(&service("db", &[], "t0")),
            Err(StoreError::NoNamespace(_))
        ));
        store.create_namespace("demo", "t0").unwrap();
        store.put_service(&service("cache", &[], "t0")).unwrap();
        // Secret parameters need the namespace's data key.
        assert!(matches!(
            store.put_service(&service("db", &[("password", b"x")], "t0")),
            Err(StoreError::NoDataKey(_))
        ));
        store
            .insert_data_key(&DataKeyRecord {
                namespace: "demo".into(),
                key_id: "k".into(),
                wrapped: vec![1],
                created: "t0".into(),
                updated: "t0".into(),
            })
            .unwrap();
        let first = service("db", &[("password", b"x"), ("user", b"y")], "t1");
        assert_eq!(store.put_service(&first).unwrap(), first);
        let second = service("db", &[("password", b"z")], "t2");
        let stored = store.put_service(&second).unwrap();
        assert_eq!(stored.created, "t1");
        assert_eq!(stored.modified, "t2");
        assert_eq!(stored.secret_params, second.secret_params);
        let names: Vec<String> = store
            .list_services("demo")
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["cache", "db"]);
        assert!(store.delete_service("demo", "cache").unwrap());
        assert!(!store.delete_service("demo", "cache").unwrap());
        assert!(store.service("demo", "cache").unwrap().is_none());
        assert!(store.delete_namespace("demo").unwrap());
        store.create_namespace("demo", "t3").unwrap();
        assert!(store.list_services("demo").unwrap().is_empty());
        let orphans: i64 = store
            .conn()
            .query_row("SELECT COUNT(*) FROM service_secret_params", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(orphans, 0);
    }
}
