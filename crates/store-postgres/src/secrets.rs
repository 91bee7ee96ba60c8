//! SecretStore on PostgreSQL. PLACEHOLDER of the pg-base branch: every method is `todo!()` until
//! its owner writes it (this file never reaches main like this).
#![allow(unused_variables, unused_imports)]

use async_trait::async_trait;
use faasbox_store::*;

use crate::PgStore;

#[async_trait]
impl SecretStore for PgStore {
    async fn data_key(&self, namespace: &str) -> Result<Option<DataKeyRecord>> {
        todo!("PostgreSQL: SecretStore")
    }

    async fn insert_data_key(&self, record: &DataKeyRecord) -> Result<DataKeyRecord> {
        todo!("PostgreSQL: SecretStore")
    }

    async fn list_data_keys(&self) -> Result<Vec<DataKeyRecord>> {
        todo!("PostgreSQL: SecretStore")
    }

    async fn rewrap_data_keys(&self, now: &str, rewrap: Rewrap) -> Result<usize> {
        todo!("PostgreSQL: SecretStore")
    }

    async fn put_secret(
        &self,
        namespace: &str,
        name: &str,
        ciphertext: &[u8],
        now: &str,
    ) -> Result<SecretRecord> {
        todo!("PostgreSQL: SecretStore")
    }

    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<SecretRecord>> {
        todo!("PostgreSQL: SecretStore")
    }

    async fn list_secrets(&self, namespace: &str) -> Result<Vec<SecretEntry>> {
        todo!("PostgreSQL: SecretStore")
    }

    async fn delete_secret(&self, namespace: &str, name: &str) -> Result<bool> {
        todo!("PostgreSQL: SecretStore")
    }

    async fn put_registry(&self, record: &RegistryRecord) -> Result<RegistryRecord> {
        todo!("PostgreSQL: SecretStore")
    }

    async fn registry(&self, namespace: &str, host: &str) -> Result<Option<RegistryRecord>> {
        todo!("PostgreSQL: SecretStore")
    }

    async fn list_registries(&self, namespace: &str) -> Result<Vec<RegistryRecord>> {
        todo!("PostgreSQL: SecretStore")
    }

    async fn delete_registry(&self, namespace: &str, host: &str) -> Result<bool> {
        todo!("PostgreSQL: SecretStore")
    }
}
