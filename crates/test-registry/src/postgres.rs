//! A real PostgreSQL for tests: Debian's `postgresql` server binaries run a throwaway cluster in
//! a temporary directory (`initdb`, `pg_ctl`), no system service needed. `initdb` refuses to run
//! as root, so as root the cluster runs as the `postgres` user the package creates.
//!
//! `scripts/test.sh` starts one cluster for the whole run (`scripts/test-postgres.sh`) and
//! names it in `FAASBOX_TEST_POSTGRES`; each test then makes a fresh database in it
//! ([`TestDatabase::new`]). A test run on its own, without that variable, starts a cluster of
//! its own (about half a second) that stops when the test drops it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::free_port;

/// The environment variable naming a running cluster for tests: `postgres://user@host:port`
/// (no database; tests make their own).
pub const POSTGRES_ENV: &str = "FAASBOX_TEST_POSTGRES";

/// A PostgreSQL cluster of the test's own in a temporary directory; stopped on drop.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// `postgres://faasbox@127.0.0.1:<port>`: the cluster, no database.
    pub base_url: String,
}

impl Postgres {
    /// Starts a cluster on a free loopback port. Panics with the reason (and the server's log)
    /// when it cannot: the server binaries missing (`apt-get install postgresql`, or run
    /// `scripts/install-deps.sh`), or the server failing to start.
    pub fn start() -> Postgres {
        let bin = server_binaries().unwrap_or_else(|| {
            panic!(
                "PostgreSQL's server binaries (initdb, pg_ctl) were not found under \
                 /usr/lib/postgresql/*/bin: apt-get install postgresql (scripts/install-deps.sh \
                 does), or set FAASBOX_PG_BIN to their directory"
            )
        });
        // Its parents must be traversable by `postgres`: /tmp's temporary directories are.
        let dir = tempfile::Builder::new()
            .prefix("faasbox-pg.")
            .tempdir()
            .expect("a temporary directory for PostgreSQL");
        let as_root = is_root();
        if as_root {
            run(
                Command::new("chown").arg("postgres:").arg(dir.path()),
                "chown",
            );
        }
        let data = dir.path().join("data");
        run(
            server_command(as_root, &bin.join("initdb"))
                .arg("-D")
                .arg(&data)
                .args([
                    "-U",
                    "faasbox",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-locale",
                    "--no-sync",
                ]),
            "initdb",
        );
        let log = dir.path().join("server.log");
        let mut last_error = String::new();
        for _ in 0..3 {
            let port = free_port();
            let options = format!(
                "-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories='' \
                 -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
                 -c max_connections=400"
            );
            let started = server_command(as_root, &bin.join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", "30", "start", "-o", &options])
                .output()
                .expect("running pg_ctl");
            if started.status.success() {
                return Postgres {
                    dir,
                    bin,
                    base_url: format!("postgres://faasbox@127.0.0.1:{port}"),
                };
            }
            last_error = format!(
                "{}{}",
                String::from_utf8_lossy(&started.stdout),
                String::from_utf8_lossy(&started.stderr)
            );
        }
        panic!(
            "PostgreSQL did not start: {last_error}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = server_command(is_root(), &self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

/// A fresh, empty database for one test: in the cluster `FAASBOX_TEST_POSTGRES` names, else in
/// a cluster of its own (stopped when this is dropped).
pub struct TestDatabase {
    /// `postgres://…/<database>`.
    pub url: String,
    /// The cluster's URL without a database (to make more databases in it).
    pub base_url: String,
    _own: Option<Postgres>,
}

impl TestDatabase {
    /// Makes the database (`t_<process>_<n>`, unique in the cluster).
    pub fn new() -> TestDatabase {
        let (base_url, own) = match std::env::var(POSTGRES_ENV) {
            Ok(url) if !url.is_empty() => (url, None),
            _ => {
                let own = Postgres::start();
                (own.base_url.clone(), Some(own))
            }
        };
        let url = create_database(&base_url);
        TestDatabase {
            url,
            base_url,
            _own: own,
        }
    }
}

impl Default for TestDatabase {
    fn default() -> TestDatabase {
        TestDatabase::new()
    }
}

/// Makes a new database in the cluster at `base_url` (`postgres://user@host:port`) and gives
/// its URL. Names are unique across the test processes that share one cluster.
pub fn create_database(base_url: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "t_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    let out = Command::new("psql")
        .arg(format!("{base_url}/postgres"))
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c"])
        .arg(format!("CREATE DATABASE {name}"))
        .output()
        .expect("running psql (apt-get install postgresql-client)");
    assert!(
        out.status.success(),
        "CREATE DATABASE {name} in {base_url} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!("{base_url}/{name}")
}

/// The newest PostgreSQL's server binaries: `FAASBOX_PG_BIN`, else the highest version under
/// `/usr/lib/postgresql/*/bin` (Debian keeps them off `PATH`).
pub fn server_binaries() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("FAASBOX_PG_BIN") {
        return Some(dir.into());
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `program`, run as the `postgres` user when we are root (its tools refuse root).
fn server_command(as_root: bool, program: &Path) -> Command {
    if as_root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(command: &mut Command, what: &str) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("running {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
