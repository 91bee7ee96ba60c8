//! Servers on a PostgreSQL store: a fresh database per test (in the cluster
//! `FAASBOX_TEST_POSTGRES` names, else one of the test's own), a master key file given from
//! outside as such a server needs, and `psql` to look at what was stored.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::Server;

#[allow(unused_imports)]
pub use faasbox_test_registry::postgres::TestDatabase;

/// Writes a new master key (32 random bytes, base64) to `path`, mode 0600.
pub fn write_master_key(path: &Path) -> PathBuf {
    use base64::Engine;
    use std::io::{Read, Write};
    use std::os::unix::fs::OpenOptionsExt;
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut key))
        .expect("reading /dev/urandom");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .expect("creating the key file");
    writeln!(
        file,
        "{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
    .expect("writing the key file");
    path.to_path_buf()
}

impl Server {
    /// Starts a server on `data_dir` with `--store url` and the master key in `key_file`.
    pub async fn start_on_postgres(data_dir: &Path, url: &str, key_file: &Path) -> Server {
        let key = key_file.to_str().expect("a UTF-8 path");
        Server::start_in_with_args_env(
            data_dir,
            &["--store", url, "--store-connections", "4"],
            &[("FAASBOX_MASTER_KEY_FILE", key)],
        )
        .await
    }
}

/// `sql`'s answer from the database at `url`, through psql (unaligned, no header): one line per
/// row, fields separated by `|`.
pub fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .arg(url)
        .args(["-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql])
        .output()
        .expect("running psql");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every faasbox table of the database at `url` with its row count, by table name.
pub fn row_counts(url: &str) -> Vec<(String, u64)> {
    let tables = psql(
        url,
        "SELECT table_name FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name",
    );
    tables
        .lines()
        .filter(|t| !t.is_empty())
        .map(|table| {
            let n = psql(url, &format!("SELECT COUNT(*) FROM \"{table}\""));
            (table.to_string(), n.trim().parse().expect("a count"))
        })
        .collect()
}
