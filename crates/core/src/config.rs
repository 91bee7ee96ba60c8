//! Server configuration: where data lives, where to listen, which binaries to run.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use faasbox_driver::{NetworkHelper, OciRuntime, UnknownNetworkHelper, UnknownOciRuntime};
use faasbox_secrets::{KeyError, KeySource, Zeroizing, ENV_KEY, ENV_KEY_FILE};

/// The address `faasbox server` listens on and clients call by default.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8470";
/// The data directory used when none is given.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/faasbox";
/// `--store`'s default: the SQLite database `<data-dir>/faasbox.db`.
pub const STORE_SQLITE: &str = "sqlite";

/// The default writable space of an image build's builder instance: 1 GiB.
pub const DEFAULT_BUILD_DISK_BYTES: u64 = 1 << 30;
/// The host's certificate bundle (Debian's `ca-certificates`), which image builds trust by
/// default (see [`ServerConfig::build_ca_file`]).
pub const DEFAULT_BUILD_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// How long a blocking invoke waits before it answers 202 with the run's id.
pub const DEFAULT_BLOCKING_TIMEOUT: Duration = Duration::from_secs(60);
/// Network namespaces with their network helper made ahead of demand: the helper takes
/// milliseconds (slirp4netns) to tens of milliseconds (pasta) to start, two spares cover
/// back-to-back cold starts, and each idle one holds about 0.5 MiB with slirp4netns (29 MiB
/// with pasta, unless the host merges pages).
pub const DEFAULT_SPARE_NETWORKS: usize = 2;
/// Containers created ahead of demand per function spec after a start of it ("stem cells"):
/// one covers back-to-back cold starts of a function; a burst takes it and the rest start
/// afresh.
pub const DEFAULT_SPARE_CONTAINERS: usize = 1;
/// All stem cells together are at most this many times the per-function number.
pub const SPARE_CONTAINERS_TOTAL_FACTOR: usize = 8;
/// A stem cell not claimed within this long is removed.
pub const SPARE_CONTAINER_IDLE: Duration = Duration::from_secs(60);
/// Runs kept per namespace.
pub const DEFAULT_RUNS_KEEP: u32 = 10_000;
/// How long ended runs are kept: 7 days.
pub const DEFAULT_RUNS_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Asynchronous runs of one function running at once.
pub const DEFAULT_RUNS_PER_FUNCTION: usize = 20;
/// Asynchronous runs running at once in the server.
pub const DEFAULT_RUNS_IN_FLIGHT: usize = 200;

/// The server's settings (from the command line and `faasbox.toml`), read once at start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Holds the database, the image store and the instances' state.
    pub data_dir: PathBuf,
    /// Where the metadata store is (`--store`): [`STORE_SQLITE`] for the SQLite database in
    /// the data directory, or a PostgreSQL URL (`postgres://…`). Read by the composition
    /// (`faasbox-server`), the one place that names a backend.
    pub store: String,
    /// Connections to a PostgreSQL store at most (`--store-connections`; `None`: the
    /// backend's default). Unused with SQLite.
    pub store_connections: Option<usize>,
    /// The address the API listens on.
    pub listen: SocketAddr,
    /// The static `faasbox-agent` binary mounted into every container.
    pub agent_binary: PathBuf,
    /// Which OCI runtime runs the `runc` runtime class (`--oci-runtime`): runc or crun.
    pub oci_runtime: OciRuntime,
    /// The runc binary that runs the `runc` runtime class (with `--oci-runtime runc`).
    pub runc_path: PathBuf,
    /// The crun binary that runs the `runc` runtime class (with `--oci-runtime crun`).
    pub crun_path: PathBuf,
    /// The faasbox-oci binary that runs the `runc` runtime class (with `--oci-runtime
    /// libcontainer`).
    pub libcontainer_path: PathBuf,
    /// gVisor's runsc binary that runs the `runsc` runtime class.
    pub runsc_path: PathBuf,
    /// Which helper gives instances their outbound network (`--network-helper`).
    pub network_helper: NetworkHelper,
    /// The pasta binary (network helper `pasta`).
    pub pasta_path: PathBuf,
    /// The slirp4netns binary (network helper `slirp4netns`).
    pub slirp4netns_path: PathBuf,
    /// How long a function may take to start accepting calls.
    pub ready_timeout: Duration,
    /// Calls that may wait for an instance of one function.
    pub queue_limit: usize,
    /// How long a call waits for an instance before it fails.
    pub queue_timeout: Duration,
    /// The largest invoke body accepted.
    pub max_input_bytes: usize,
    /// Let functions reach the host's loopback services (through their network namespace's
    /// gateway address). Off by default: with it, any function can talk to whatever listens
    /// on the host's `127.0.0.1` — databases, registries, this server's own API. For
    /// development and tests.
    pub allow_host_loopback: bool,
    /// Network namespaces (with their network helper) the driver keeps made ahead of demand.
    pub spare_networks: usize,
    /// Containers created ahead of demand per function spec (runc only; 0: none).
    pub spare_containers: usize,
    /// The master key given from outside, if any (see [`MasterKeyEnv::take`]).
    pub master_key: MasterKeyEnv,
    /// Bounds on uploads, memory and what each namespace may use (see [`Limits`]).
    pub limits: Limits,
    /// The writable space of an image build's builder instance (what the packages it
    /// installs may take), in bytes.
    pub build_disk_bytes: u64,
    /// The certificate authorities an image build's package installs (pip, npm) trust, as a
    /// PEM bundle on this host: by default the host's own ([`DEFAULT_BUILD_CA_FILE`], when it
    /// exists), so builds pass the same TLS-inspecting proxies the host passes. `None`: the
    /// base image's own trust store only.
    pub build_ca_file: Option<PathBuf>,

    /// How long a blocking invoke waits for its run before it answers 202 with the run's id
    /// (the run goes on; `--blocking-timeout`).
    pub blocking_timeout: Duration,
    /// Runs kept per namespace (`--runs-keep`); older ended runs are removed.
    pub runs_keep: u32,
    /// How long ended runs are kept (`--runs-max-age`).
    pub runs_max_age: Duration,
    /// Asynchronous runs of one function running at once.
    pub runs_per_function: usize,
    /// Asynchronous runs running at once, all functions together.
    pub runs_in_flight: usize,

    // Bounds of expressions and flow instances (`--jq-*`, `--flow-max-*`).
    /// Every jq evaluation's bounds: CPU time, memory, output, and how many run at once.
    pub expr_limits: faasbox_expr::sandbox::Limits,
    /// Every flow instance's bounds: states run and data size.
    pub flow_limits: faasbox_flow::engine::Limits,

    /// The web UI's settings (`[ui]`).
    pub ui: UiSettings,
    /// Several servers on one store (`[cluster]`): the lease and the advertised address.
    pub cluster: crate::cluster::ClusterSettings,
}

/// The web UI's settings (`[ui]` in `faasbox.toml`, `--ui-*` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UiSettings {
    /// How long a sign-in session lives at most, in hours (`session_hours`, 1 to 720).
    pub session_hours: u32,
    /// How long a session lives unused, in minutes (`idle_minutes`, 1 to 1440).
    pub idle_minutes: u32,
    /// Marks the session cookie `Secure` (`secure_cookie`): for servers behind HTTPS.
    pub secure_cookie: bool,
}

impl UiSettings {
    /// The largest `session_hours`: 30 days.
    pub const MAX_SESSION_HOURS: u32 = 720;
    /// The largest `idle_minutes`: a day.
    pub const MAX_IDLE_MINUTES: u32 = 1440;

    /// The sessions' lifetimes these settings give.
    pub fn session_limits(&self) -> crate::auth::sessions::SessionLimits {
        crate::auth::sessions::SessionLimits {
            lifetime: Duration::from_secs(u64::from(self.session_hours) * 3600),
            idle: Duration::from_secs(u64::from(self.idle_minutes) * 60),
        }
    }

    /// Why these settings cannot work, one sentence each.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(1..=Self::MAX_SESSION_HOURS).contains(&self.session_hours) {
            problems.push(format!(
                "ui session_hours is {}: it must be 1 to {} (hours a sign-in lasts)",
                self.session_hours,
                Self::MAX_SESSION_HOURS
            ));
        }
        if !(1..=Self::MAX_IDLE_MINUTES).contains(&self.idle_minutes) {
            problems.push(format!(
                "ui idle_minutes is {}: it must be 1 to {} (minutes a sign-in lasts unused)",
                self.idle_minutes,
                Self::MAX_IDLE_MINUTES
            ));
        }
        problems
    }
}

impl Default for UiSettings {
    fn default() -> Self {
        UiSettings {
            session_hours: 8,
            idle_minutes: 60,
            secure_cookie: false,
        }
    }
}

/// What one request, one import and one namespace may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The largest image archive an import accepts (413 above it).
    pub max_upload_bytes: u64,
    /// The most a layer's files may add up to, each at its apparent size (a sparse file at
    /// its full length); also the most one entry of an image archive may unpack to.
    pub max_layer_bytes: u64,
    /// What each namespace may deploy and run.
    pub quotas: crate::quota::Quotas,
    /// The bytes of request bodies (invokes, flow runs) and their outputs held in memory at
    /// once; calls beyond it wait, then get 503. At least `max_input_bytes`.
    pub body_budget_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_upload_bytes: 16 << 30,
            max_layer_bytes: faasbox_images::ImportLimits::DEFAULT_MAX_LAYER_BYTES,
            quotas: crate::quota::Quotas::default(),
            body_budget_bytes: 1 << 30,
        }
    }
}

/// `FAASBOX_MASTER_KEY` / `FAASBOX_MASTER_KEY_FILE` as read at start. `Debug` hides the key.
#[derive(Clone, Default)]
pub struct MasterKeyEnv {
    /// The key itself (`FAASBOX_MASTER_KEY`), if set.
    pub key: Option<Zeroizing<String>>,
    /// The file the key is read from (`FAASBOX_MASTER_KEY_FILE`), if set.
    pub file: Option<PathBuf>,
}

impl std::fmt::Debug for MasterKeyEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKeyEnv")
            .field("key", &self.key.as_ref().map(|_| "…"))
            .field("file", &self.file)
            .finish()
    }
}

impl MasterKeyEnv {
    /// Reads the two variables and removes them from this process's environment, so that no
    /// child process (runc, pasta, agents, functions) inherits the key.
    ///
    /// Call it before any other thread is started (first thing in `main`): changing the
    /// environment while other threads may read it is a data race.
    pub fn take() -> MasterKeyEnv {
        let key = std::env::var(ENV_KEY).ok().map(Zeroizing::new);
        let file = std::env::var_os(ENV_KEY_FILE).map(PathBuf::from);
        std::env::remove_var(ENV_KEY);
        std::env::remove_var(ENV_KEY_FILE);
        MasterKeyEnv { key, file }
    }

    /// Where the master key comes from: the variables, else `<data-dir>/keys/master.key`.
    pub fn source(&self, default_file: PathBuf) -> Result<KeySource, KeyError> {
        KeySource::from_values(self.key.clone(), self.file.clone(), default_file)
    }
}

impl ServerConfig {
    /// Defaults for everything but the data directory and address.
    pub fn new(data_dir: PathBuf, listen: SocketAddr) -> Self {
        ServerConfig {
            data_dir,
            store: STORE_SQLITE.to_string(),
            store_connections: None,
            listen,
            agent_binary: default_agent_binary(),
            oci_runtime: OciRuntime::Runc,
            runc_path: "runc".into(),
            crun_path: "crun".into(),
            libcontainer_path: default_oci_binary(),
            runsc_path: "runsc".into(),
            network_helper: NetworkHelper::Slirp4netns,
            pasta_path: "pasta".into(),
            slirp4netns_path: "slirp4netns".into(),
            ready_timeout: Duration::from_secs(120),
            queue_limit: 100,
            queue_timeout: Duration::from_secs(60),
            max_input_bytes: 64 * 1024 * 1024,
            blocking_timeout: DEFAULT_BLOCKING_TIMEOUT,
            runs_keep: DEFAULT_RUNS_KEEP,
            runs_max_age: DEFAULT_RUNS_MAX_AGE,
            runs_per_function: DEFAULT_RUNS_PER_FUNCTION,
            runs_in_flight: DEFAULT_RUNS_IN_FLIGHT,
            allow_host_loopback: false,
            spare_networks: DEFAULT_SPARE_NETWORKS,
            spare_containers: DEFAULT_SPARE_CONTAINERS,
            master_key: MasterKeyEnv::default(),
            limits: Limits::default(),
            build_disk_bytes: DEFAULT_BUILD_DISK_BYTES,
            build_ca_file: Some(PathBuf::from(DEFAULT_BUILD_CA_FILE)).filter(|path| path.is_file()),
            expr_limits: faasbox_expr::sandbox::Limits::default(),
            flow_limits: faasbox_flow::engine::Limits::default(),
            ui: UiSettings::default(),
            cluster: crate::cluster::ClusterSettings::default(),
        }
    }

    /// Why these settings cannot work, one sentence each (empty when they can).
    pub fn problems(&self) -> Vec<String> {
        const DAY: Duration = Duration::from_secs(24 * 3600);
        let mut problems = Vec::new();
        for (key, value) in [
            ("ready-timeout", self.ready_timeout),
            ("queue-timeout", self.queue_timeout),
        ] {
            if value.is_zero() || value > DAY {
                problems.push(format!("{key} must be more than 0 and at most 24h"));
            }
        }
        if self.limits.body_budget_bytes < self.max_input_bytes as u64 {
            problems.push(format!(
                "body-budget ({} bytes) must hold at least one largest request body ({} bytes)",
                self.limits.body_budget_bytes, self.max_input_bytes
            ));
        }
        if self.limits.max_upload_bytes == 0 || self.limits.max_layer_bytes == 0 {
            problems.push("max-upload-size and max-layer-size must be more than 0".into());
        }
        problems.extend(self.limits.quotas.problem());
        problems.extend(self.ui.problems());
        problems.extend(self.cluster.problems());
        problems
    }

    /// The SQLite database in the data directory.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("faasbox.db")
    }
    /// The image store's directory.
    pub fn images_dir(&self) -> PathBuf {
        self.data_dir.join("images")
    }
    /// Where the driver keeps the running instances' state.
    pub fn run_dir(&self) -> PathBuf {
        self.data_dir.join("run")
    }
    /// Where image archives being uploaded are spooled (emptied at start).
    pub fn uploads_dir(&self) -> PathBuf {
        self.data_dir.join("uploads")
    }
    /// The default master key file (mode 0600, created on first start).
    pub fn master_key_path(&self) -> PathBuf {
        self.data_dir.join("keys").join("master.key")
    }
}

/// `faasbox-agent` next to the running executable (where `cargo build` and the installer put it).
pub fn default_agent_binary() -> PathBuf {
    next_to_this_executable("faasbox-agent")
}

/// `faasbox-oci` (`--oci-runtime libcontainer`) next to the running executable.
pub fn default_oci_binary() -> PathBuf {
    next_to_this_executable(OciRuntime::Libcontainer.program())
}

fn next_to_this_executable(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(name)))
        .unwrap_or_else(|| PathBuf::from(name))
}

/// The mode of the directories the server itself makes in the data directory.
pub fn private_dir() -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    std::fs::Permissions::from_mode(0o700)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_that_cannot_work_are_named() {
        let mut config = ServerConfig::new("/x".into(), DEFAULT_LISTEN.parse().unwrap());
        assert!(config.problems().is_empty());
        config.queue_timeout = Duration::from_secs(u64::MAX);
        config.limits.body_budget_bytes = 1;
        config.limits.quotas.max_instances = 0;
        let problems = config.problems();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("queue-timeout"));
        assert!(problems[1].contains("body-budget"));

        let mut config = ServerConfig::new("/x".into(), DEFAULT_LISTEN.parse().unwrap());
        config.ui.session_hours = 0;
        config.ui.idle_minutes = UiSettings::MAX_IDLE_MINUTES + 1;
        let problems = config.problems();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("session_hours is 0"), "{problems:?}");
        assert!(problems[1].contains("idle_minutes is 1441"), "{problems:?}");
    }

    #[test]
    fn master_key_variables_are_taken_out_of_the_environment() {
        std::env::set_var(ENV_KEY_FILE, "/tmp/some.key");
        let taken = MasterKeyEnv::take();
        assert_eq!(
            taken.file.as_deref(),
            Some(std::path::Path::new("/tmp/some.key"))
        );
        assert!(std::env::var_os(ENV_KEY_FILE).is_none());
        assert!(std::env::var_os(ENV_KEY).is_none());
    }
}
