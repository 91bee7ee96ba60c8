//! Several real `faasbox server`s on one PostgreSQL database: `Cluster::start(n, options)`
//! makes a fresh database, one master key file they all use, and n servers, each with its own
//! data directory and a short lease; a server can be killed (SIGKILL) and restarted on its
//! data directory. The admin token is the one the first server to start made.

use std::path::{Path, PathBuf};
use std::time::Duration;

use faasbox_test_registry::postgres::TestDatabase;

use super::Server;

/// How the servers of a [`Cluster`] are started.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// `--cluster-lease-seconds` (short for tests: a dead server is noticed within ~lease).
    pub lease_seconds: u64,
    /// More `faasbox server` flags for every server.
    pub args: Vec<String>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            lease_seconds: 3,
            args: Vec::new(),
        }
    }
}

/// n servers on one PostgreSQL database (see the module's doc).
pub struct Cluster {
    /// The database they share (dropped last: the servers stop first).
    servers: Vec<Option<Server>>,
    data_dirs: Vec<PathBuf>,
    key_file: PathBuf,
    options: ClusterOptions,
    /// The admin token (made by whichever server created the first admin token).
    pub token: String,
    /// The shared database.
    pub database: TestDatabase,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts `n` servers at once on a fresh database and waits until all are healthy.
    pub async fn start(n: usize, options: ClusterOptions) -> Cluster {
        let database = tokio::task::spawn_blocking(TestDatabase::new)
            .await
            .expect("making the test database");
        let dir = tempfile::Builder::new()
            .prefix("faasbox-cluster-")
            .tempdir()
            .expect("tempdir");
        let key_file = dir.path().join("master.key");
        write_master_key(&key_file);
        let data_dirs: Vec<PathBuf> = (0..n)
            .map(|i| dir.path().join(format!("data{i}")))
            .collect();
        for data_dir in &data_dirs {
            std::fs::create_dir_all(data_dir).expect("data dir");
        }
        let mut cluster = Cluster {
            servers: (0..n).map(|_| None).collect(),
            data_dirs,
            key_file,
            options,
            token: String::new(),
            database,
            _dir: dir,
        };
        let starts: Vec<_> = (0..n)
            .map(|i| {
                let (data_dir, args, env) = cluster.launch(i);
                tokio::spawn(async move {
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    let env: Vec<(&str, &str)> =
                        env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                    Server::spawn_untokened(&data_dir, &args, &env).await
                })
            })
            .collect();
        for (i, start) in starts.into_iter().enumerate() {
            cluster.servers[i] = Some(start.await.expect("starting a server"));
        }
        cluster.token = cluster
            .admin_token_files()
            .first()
            .map(|path| {
                std::fs::read_to_string(path)
                    .expect("reading admin.token")
                    .trim()
                    .to_string()
            })
            .expect("one of the servers made the admin token");
        let token = cluster.token.clone();
        for server in cluster.servers.iter_mut().flatten() {
            server.use_token(&token);
        }
        cluster
    }

    /// The data directory, flags and environment server `i` starts with.
    fn launch(&self, i: usize) -> (PathBuf, Vec<String>, Vec<(String, String)>) {
        let mut args = vec![
            "--store".to_string(),
            self.database.url.clone(),
            "--cluster-lease-seconds".to_string(),
            self.options.lease_seconds.to_string(),
        ];
        args.extend(self.options.args.iter().cloned());
        let env = vec![(
            "FAASBOX_MASTER_KEY_FILE".to_string(),
            self.key_file.display().to_string(),
        )];
        (self.data_dirs[i].clone(), args, env)
    }

    /// Server `i` (panics if it is killed and not restarted).
    pub fn server(&self, i: usize) -> &Server {
        self.servers[i].as_ref().expect("the server is running")
    }

    /// The servers running now.
    pub fn running(&self) -> impl Iterator<Item = &Server> {
        self.servers.iter().flatten()
    }

    /// How many servers the cluster has (running or not).
    pub fn len(&self) -> usize {
        self.servers.len()
    }

    /// Server `i`'s data directory (kept across kills and restarts).
    pub fn data_dir(&self, i: usize) -> &Path {
        &self.data_dirs[i]
    }

    /// Server `i`'s node id (`<data-dir>/node.id`).
    pub fn node_id(&self, i: usize) -> String {
        std::fs::read_to_string(self.data_dirs[i].join("node.id"))
            .expect("the server wrote its node id")
            .trim()
            .to_string()
    }

    /// Server `i`'s log so far (all its runs: the file is appended to).
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.data_dirs[i].with_extension("server.log")).unwrap_or_default()
    }

    /// The data directories holding an `admin.token`.
    pub fn admin_token_files(&self) -> Vec<PathBuf> {
        self.data_dirs
            .iter()
            .map(|dir| dir.join("admin.token"))
            .filter(|path| path.is_file())
            .collect()
    }

    /// Kills server `i` with SIGKILL: it cleans up nothing and its runs stay `running`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut server) = self.servers[i].take() {
            server.kill();
        }
    }

    /// Stops server `i` with SIGTERM and waits; whether it exited cleanly.
    pub fn stop(&mut self, i: usize) -> bool {
        self.servers[i]
            .take()
            .is_none_or(|mut server| server.stop())
    }

    /// Starts server `i` again on its data directory (after `kill` or `stop`).
    pub async fn restart(&mut self, i: usize) -> &Server {
        assert!(self.servers[i].is_none(), "server {i} is still running");
        let (data_dir, args, env) = self.launch(i);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut server = Server::spawn_untokened(&data_dir, &args, &env).await;
        server.use_token(&self.token);
        self.servers[i] = Some(server);
        self.server(i)
    }

    /// How long a dead server's work takes at most to be taken over: its lease, one more
    /// heartbeat of the others, and slack for this shared test machine.
    pub fn takeover_bound(&self) -> Duration {
        Duration::from_secs(3 * self.options.lease_seconds + 5)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // The servers stop before the database (a field dropped after them) goes away.
        for server in self.servers.iter_mut() {
            if let Some(mut server) = server.take() {
                server.stop();
            }
        }
        super::unmount_under(self._dir.path());
    }
}

/// A master key file (32 random bytes, 0600) that every server of the cluster is given.
fn write_master_key(path: &Path) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| std::io::Read::read_exact(&mut random, &mut key))
        .expect("reading /dev/urandom");
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| file.write_all(&key))
        .expect("writing the master key file");
}
