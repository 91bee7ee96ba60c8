//! `faasbox admin rotate-master-key`.

use reqwest::Method;
use serde_json::Value;

use crate::cli::{AdminCommand, OutputFormat};
use crate::client::Client;
use crate::commands::namespaces::text;
use crate::output::{print, Table};

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
    }
    Ok(())
}
