//! Server configuration: where data lives, where to listen, which binaries to run.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The address `faasbox server` listens on and clients call by default.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8470";
/// The data directory used when none is given.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/faasbox";

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Holds the database, the image store and the instances' state.
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// The static `faasbox-agent` binary mounted into every container.
    pub agent_binary: PathBuf,
    pub runc_path: PathBuf,
    pub runsc_path: PathBuf,
    pub pasta_path: PathBuf,
    /// How long a function may take to start accepting calls.
    pub ready_timeout: Duration,
    /// Calls that may wait for an instance of one function.
    pub queue_limit: usize,
    /// How long a call waits for an instance before it fails.
    pub queue_timeout: Duration,
    /// The largest invoke body accepted.
    pub max_input_bytes: usize,
}

impl ServerConfig {
    /// Defaults for everything but the data directory and address.
    pub fn new(data_dir: PathBuf, listen: SocketAddr) -> Self {
        ServerConfig {
            data_dir,
            listen,
            agent_binary: default_agent_binary(),
            runc_path: "runc".into(),
            runsc_path: "runsc".into(),
            pasta_path: "pasta".into(),
            ready_timeout: Duration::from_secs(120),
            queue_limit: 100,
            queue_timeout: Duration::from_secs(60),
            max_input_bytes: 64 * 1024 * 1024,
        }
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("faasbox.db")
    }
    pub fn images_dir(&self) -> PathBuf {
        self.data_dir.join("images")
    }
    pub fn run_dir(&self) -> PathBuf {
        self.data_dir.join("run")
    }
    pub fn uploads_dir(&self) -> PathBuf {
        self.data_dir.join("uploads")
    }
}

/// `faasbox-agent` next to the running executable (where `cargo build` and the installer put it).
pub fn default_agent_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("faasbox-agent")))
        .unwrap_or_else(|| PathBuf::from("faasbox-agent"))
}
