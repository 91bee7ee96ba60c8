//! `faasbox admin rotate-master-key` (through the API) and `faasbox admin migrate-store`
//! (local: on a stopped server's data directory).

use reqwest::Method;
use serde_json::{json, Value};

use crate::cli::{AdminCommand, OutputFormat};
use crate::client::Client;
use crate::commands::namespaces::text;
use crate::output::{outln, print, print_json, Table};

pub async fn run(
    client: &Client,
    format: OutputFormat,
    command: AdminCommand,
) -> anyhow::Result<()> {
    match command {
        AdminCommand::RotateMasterKey => {
            let rotated: Value = client
                .json(client.request(Method::POST, "/api/v1/admin/rotate-master-key"))
                .await?;
            print(format, &rotated, || {
                Table::new(vec!["NEW KEY ID", "DATA KEYS RE-WRAPPED"])
                    .row(vec![text(&rotated["key_id"]), text(&rotated["rewrapped"])])
            });
        }
        AdminCommand::MigrateStore { .. } => {
            anyhow::bail!("migrate-store runs locally, not through a server")
        }
    }
    Ok(())
}

/// `faasbox admin migrate-store`: progress on stderr, the result and what to do next on stdout.
pub async fn migrate_store(
    format: OutputFormat,
    from: String,
    to: String,
    connections: u32,
    master_key: faasbox_server::config::MasterKeyEnv,
) -> anyhow::Result<()> {
    let job = faasbox_server::migrate_store::MigrateStore {
        from,
        to,
        connections: connections as usize,
        master_key,
    };
    let done = faasbox_server::migrate_store::run(job, &mut |line| eprintln!("{line}")).await?;
    let rows: u64 = done.tables.iter().map(|(_, n)| n).sum();
    let dir = done.data_dir.display().to_string();
    let images = format!(
        "image contents stay in {dir}/images (this data directory's image store): start the \
         PostgreSQL server on {dir}, or copy its images/ along; sharing images between servers \
         comes with the scale-out"
    );
    match format {
        OutputFormat::Json => print_json(&json!({
            "from": dir,
            "to": done.target,
            "tables": done.tables.iter().map(|(t, n)| json!({"table": t, "rows": n})).collect::<Vec<_>>(),
            "rows": rows,
            "secrets_decrypted": done.secrets,
            "registries_decrypted": done.registries,
            "master_key": done.master_key,
            "images": images,
        })),
        OutputFormat::Text => {
            outln!(
                "moved {dir} into {}: {} tables, {rows} rows; {} secrets and {} registry \
                 credentials decrypt with the {}",
                done.target,
                done.tables.len(),
                done.secrets,
                done.registries,
                done.master_key
            );
            outln!("next:");
            outln!(
                "  1. give every server the same master key: copy the {} to each (mode 0600) \
                 and start it with FAASBOX_MASTER_KEY_FILE=<that file>",
                done.master_key
            );
            outln!(
                "  2. start the servers with --store {} (the URL you gave)",
                done.target
            );
            outln!(
                "  3. the admin token in {dir}/admin.token and every other API token still work"
            );
            outln!("  4. {images}");
        }
    }
    Ok(())
}
