//! Starting and stopping the server: open the store, the secrets vault and the image store,
//! clean up what a killed server left behind, put the deployed functions back into service, resume
//! workflow instances, serve the API, and on shutdown stop every instance (workflow instances
//! stay `running` and resume at the next start).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use faasbox_driver::{Driver, ImageRef};
use faasbox_driver_runc::{DriverConfig, IdMap, LayerSource, RuncDriver};
use faasbox_images::ImageStore;
use faasbox_secrets::{KeySource, Vault, ENV_KEY, ENV_KEY_FILE};
use faasbox_store::Store;
use faasbox_store_postgres::PgStore;
use faasbox_store_sqlite::SqliteStore;
use tokio::net::TcpListener;

use faasbox_core::config::ServerConfig;
use faasbox_core::state::AppState;

/// Builds the server's state: opens everything and removes leftovers of a previous run.
pub async fn start(config: ServerConfig) -> anyhow::Result<Arc<AppState>> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    // Nobody but the server's user may list or read it: the database, keys, token and images
    // are inside, each 0600 in 0700 directories. Others may only pass through (0711, as
    // /var/lib/docker does): a container's root, mapped to an unprivileged host uid by its user
    // namespace, must reach its instance's root filesystem under `run/`.
    std::fs::set_permissions(&config.data_dir, data_dir_mode()).with_context(|| {
        format!(
            "setting the mode of the data directory {} to 0711",
            config.data_dir.display()
        )
    })?;
    let problems = config.problems();
    if !problems.is_empty() {
        anyhow::bail!("the server's settings cannot work: {}", problems.join("; "));
    }
    if !config.agent_binary.is_file() {
        anyhow::bail!(
            "the faasbox agent binary {} does not exist; build it with `cargo build -p faasbox-agent` \
             (it must sit next to the faasbox binary) or pass --agent PATH",
            config.agent_binary.display()
        );
    }
    // This server's id among the servers sharing the store (made at the first start).
    let node = faasbox_core::cluster::NodeId::load_or_create(&config.data_dir)?;
    tracing::info!(node = %node, "this server is node {node}");
    let store_url = StoreUrl::parse(&config.store)?;
    let key_source = config.master_key.source(config.master_key_path())?;
    if let (StoreUrl::Postgres(_), KeySource::DefaultFile(path)) = (&store_url, &key_source) {
        // Several servers share the database and must use one master key: a server that
        // made its own (in its data directory) would wrap data keys no other server can read.
        if !path.exists() {
            anyhow::bail!(
                "a PostgreSQL store needs its master key given from outside: several servers \
                 share the database and need the same master key, so this server does not make \
                 one in {}. Give it with {ENV_KEY_FILE}=/etc/faasbox/master.key (make one with \
                 `(umask 077; head -c 32 /dev/urandom | base64 > /etc/faasbox/master.key)`, or \
                 after `faasbox admin migrate-store` copy the old data directory's \
                 keys/master.key) or {ENV_KEY}=<base64 of 32 bytes>",
                path.display()
            );
        }
    }
    let (store, in_use) = open_store(&config, &store_url).await?;
    let vault = Arc::new(
        Vault::open(&key_source, store.clone())
            .await
            .with_context(|| format!("opening the secrets vault with the {key_source}"))?,
    );
    let import_limits = faasbox_images::ImportLimits {
        max_layer_bytes: config.limits.max_layer_bytes,
        max_download_bytes: config.limits.max_upload_bytes,
    };
    // Opening collects garbage, which asks `in_use`: a blocking thread's work.
    let images_dir = config.images_dir();
    let images = Arc::new(
        tokio::task::spawn_blocking(move || {
            ImageStore::open_with(images_dir.clone(), Some(in_use), import_limits)
                .with_context(|| format!("opening the image store in {}", images_dir.display()))
        })
        .await??,
    );
    let _ = std::fs::remove_dir_all(config.uploads_dir());
    if config.allow_host_loopback {
        tracing::warn!(
            "allow-host-loopback is on: every function can reach the services on this host's \
             loopback (127.0.0.1, ::1), this server's API included; use it for development only"
        );
    }
    let driver: Arc<dyn Driver> = Arc::new(RuncDriver::new(
        DriverConfig {
            state_dir: config.run_dir(),
            agent_binary: config.agent_binary.clone(),
            oci_runtime: config.oci_runtime,
            runc_path: config.runc_path.clone(),
            crun_path: config.crun_path.clone(),
            libcontainer_path: config.libcontainer_path.clone(),
            runsc_path: Some(config.runsc_path.clone()),
            network_helper: config.network_helper,
            pasta_path: config.pasta_path.clone(),
            slirp4netns_path: config.slirp4netns_path.clone(),
            start_timeout: config.ready_timeout + Duration::from_secs(10),
            allow_host_loopback: config.allow_host_loopback,
            id_map: Some(IdMap::DEFAULT),
            spare_networks: config.spare_networks,
            spare_containers: config.spare_containers,
            spare_containers_total: config.spare_containers
                * faasbox_core::config::SPARE_CONTAINERS_TOTAL_FACTOR,
            spare_container_idle: faasbox_core::config::SPARE_CONTAINER_IDLE,
        },
        Arc::new(StoreLayers(images.clone())),
    )?);
    let report = driver.cleanup_leftovers().await?;
    if !report.is_empty() {
        tracing::info!(%report, "removed what a previous run of this server left behind");
    }
    // Calls and runs the last server left running: sync ones crashed, async ones queued again
    // (once); the executor (started with the API, in `serve`) runs what is queued.
    let recovered = faasbox_core::runs::recovery::recover(&*store, node.as_str()).await?;
    faasbox_core::auth::tokens::bootstrap_admin(&*store, &config.data_dir)
        .await
        .context("creating the admin API token")?;
    let state = Arc::new(AppState::new(
        config, store, images, driver, vault, key_source, node,
    ));
    faasbox_core::runs::recovery::send_callbacks(&state, recovered.requeued.crashed);
    // Among the servers of this store from now on (one, with SQLite); the heartbeat starts
    // with the API (`serve`).
    faasbox_core::membership::join(&state)
        .await
        .context("registering this server (node) in the store")?;
    state.evaluator.warm_up().await.map_err(|e| {
        anyhow::anyhow!("{e} (jq expressions run in worker processes of this binary)")
    })?;
    state
        .tokens
        .reload(&*state.store)
        .await
        .map_err(|e| anyhow::anyhow!(e.to_string()))?;
    state.image_pulls.load(
        state
            .store
            .pull_failures()
            .await
            .context("reading the stored image pull failures")?,
    );
    let functions = faasbox_core::deploy::activate_stored(&state)
        .await
        .map_err(|e| anyhow::anyhow!(e.to_string()))?;
    state.collect_image_garbage();
    tracing::info!("{functions} functions in service");
    let rebuilding = faasbox_core::code::resume(&state).await;
    if rebuilding > 0 {
        tracing::info!(
            "{rebuilding} functions from code were being built when the server stopped; building them again"
        );
    }
    faasbox_core::flows::events::install(&state)
        .await
        .map_err(|e| anyhow::anyhow!(e.to_string()))?;
    state
        .routes
        .reload(&*state.store)
        .await
        .map_err(|e| anyhow::anyhow!("loading the HTTP routes: {e}"))?;
    let resumed = faasbox_core::flows::runner::resume_unfinished(&state)
        .await
        .map_err(|e| anyhow::anyhow!(e.to_string()))?;
    if resumed > 0 {
        tracing::info!(
            "{resumed} workflow instances were running when the server stopped; resuming them"
        );
    }
    // sc-flows: wait timeouts of every server's waits, from the store.
    faasbox_core::flows::runner::start_wait_sweeper(state.clone());
    Ok(state)
}

/// How many connections a server keeps to a PostgreSQL store unless `--store-connections`
/// says otherwise.
pub const DEFAULT_STORE_CONNECTIONS: usize = faasbox_store_postgres::DEFAULT_CONNECTIONS;

/// What `--store` names: the one place that tells the backends apart.
#[derive(PartialEq, Eq)]
pub enum StoreUrl {
    /// The SQLite database in the data directory (`<data-dir>/faasbox.db`).
    Sqlite,
    /// A PostgreSQL database; the URL as given (it may hold a password: show it only through
    /// [`StoreUrl::shown`]).
    Postgres(String),
}

impl std::fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown())
    }
}

impl StoreUrl {
    /// Reads `--store`: `sqlite` (or nothing) or `postgres://…` / `postgresql://…`. The error
    /// says what is accepted; it never shows a password.
    pub fn parse(text: &str) -> anyhow::Result<StoreUrl> {
        let text = text.trim();
        if text.is_empty() || text == faasbox_core::config::STORE_SQLITE {
            return Ok(StoreUrl::Sqlite);
        }
        let shown = faasbox_store_postgres::masked_url(text);
        if let Some(rest) = text
            .strip_prefix("postgres://")
            .or_else(|| text.strip_prefix("postgresql://"))
        {
            // `postgres:///db?host=/run/postgresql` (a Unix socket) names its host in the query.
            if rest.is_empty() || (rest.starts_with(['/', '?']) && !rest.contains("host=")) {
                anyhow::bail!(
                    "--store {shown}: the URL names no host; write \
                     postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
                );
            }
            return Ok(StoreUrl::Postgres(text.to_string()));
        }
        if text.starts_with("sqlite:") {
            anyhow::bail!(
                "--store {shown}: the SQLite store is always the data directory's faasbox.db; \
                 give --store sqlite (the default) and choose the directory with --data-dir"
            );
        }
        anyhow::bail!(
            "--store {shown}: not a store faasbox knows; give `sqlite` (the default: the \
             database in the data directory) or a PostgreSQL URL \
             postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
        )
    }

    /// The store for messages and logs (a PostgreSQL password masked).
    pub fn shown(&self) -> String {
        match self {
            StoreUrl::Sqlite => faasbox_core::config::STORE_SQLITE.to_string(),
            StoreUrl::Postgres(url) => faasbox_store_postgres::masked_url(url),
        }
    }
}

/// Opens (and migrates) the store `url` names, and makes the image store's question "which
/// digests do revisions pin" for it. The image store asks from its own blocking work (garbage
/// collection), so the answer is a synchronous function.
async fn open_store(
    config: &ServerConfig,
    url: &StoreUrl,
) -> anyhow::Result<(Arc<dyn Store>, faasbox_images::InUse)> {
    match url {
        StoreUrl::Sqlite => {
            // Opening (and migrating) the database is blocking work, like every SQLite call.
            let database = config.database_path();
            let shown = database.display().to_string();
            let sqlite =
                Arc::new(tokio::task::spawn_blocking(move || SqliteStore::open(&database)).await??);
            tracing::info!("store: the SQLite database {shown}");
            let pinned = sqlite.clone();
            let in_use: faasbox_images::InUse =
                Box::new(move || pinned.revision_digests().map_err(|e| e.to_string()));
            // The rest of the server reaches the store through its traits only (async:
            // SQLite's work runs on blocking threads).
            Ok((sqlite, in_use))
        }
        StoreUrl::Postgres(text) => {
            let connections = config
                .store_connections
                .unwrap_or(DEFAULT_STORE_CONNECTIONS);
            let pg = PgStore::open(text, connections).await.context(
                "opening the PostgreSQL store of --store (is PostgreSQL running at that \
                 address, does the database exist, and may the user connect to it?)",
            )?;
            tracing::info!(
                "store: the PostgreSQL database {} (at most {connections} connections)",
                pg.database()
            );
            let store: Arc<dyn Store> = Arc::new(pg);
            let pinned = store.clone();
            let runtime = tokio::runtime::Handle::current();
            let in_use: faasbox_images::InUse = Box::new(move || {
                // Asked on a blocking thread: the query runs on the server's runtime and this
                // thread waits for its answer (bounded: no answer keeps every image).
                let (answer, answered) = std::sync::mpsc::channel();
                let pinned = pinned.clone();
                runtime.spawn(async move {
                    let _ = answer.send(pinned.revision_digests().await);
                });
                match answered.recv_timeout(Duration::from_secs(60)) {
                    Ok(digests) => digests.map_err(|e| e.to_string()),
                    Err(_) => Err("the PostgreSQL store did not say within 60 s which images \
                                   revisions pin"
                        .to_string()),
                }
            });
            Ok((store, in_use))
        }
    }
}

/// The runc driver's way to the image store: a digest's extracted layer directories.
struct StoreLayers(Arc<ImageStore>);

impl LayerSource for StoreLayers {
    fn layer_dirs(&self, image: &ImageRef) -> Result<Vec<std::path::PathBuf>, String> {
        let content = self.0.content(&image.digest).ok_or_else(|| {
            "it is no longer in the image store (removed with image rm --force); deploy the \
             function again"
                .to_string()
        })?;
        Ok(self.0.layer_dirs(&content.layers))
    }
}

/// The data directory's mode: only its owner lists or reads it; others may pass through.
pub fn data_dir_mode() -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    std::fs::Permissions::from_mode(0o711)
}

/// Serves the API until `shutdown` resolves, then stops every instance.
pub async fn serve(
    state: Arc<AppState>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let maintenance = tokio::spawn(maintain_pools(state.clone()));
    let heap_trim = tokio::spawn(crate::heap_trim::run());
    let event_tasks = faasbox_core::events::spawn(&state);
    faasbox_core::shared_images::start(state.clone());
    let runs_tasks = [
        faasbox_core::runs::executor::start(state.clone()),
        faasbox_core::runs::retention::start(state.clone()),
        faasbox_core::follow::start(state.clone()),
        faasbox_core::membership::start(state.clone()),
    ];
    let served = faasbox_http::serve(state.clone(), listener, shutdown).await;
    maintenance.abort();
    heap_trim.abort();
    // No run is claimed from here on, and asynchronous runs that the stop cuts short stay
    // `running` until `leave` queues them again for the other servers (or the next start).
    state.runs.shut_down();
    for task in runs_tasks {
        task.abort();
    }
    for task in event_tasks {
        task.abort();
    }
    state.flow_runs.shut_down();
    state.deployments.retire_all();
    state
        .driver
        .stop_all()
        .await
        .context("stopping instances")?;
    // The blocking calls' records not written yet are written now (calls the stop cut short
    // as `running`: the next start ends them as `crashed`).
    state.runs.records.settle().await;
    faasbox_core::membership::leave(&state)
        .await
        .context("handing this server's runs back to the store")?;
    served.context("serving the API")
}

/// Runs the server on `config.listen` until SIGINT or SIGTERM. The address is bound first:
/// a server that cannot listen changes nothing (no admin token made and printed, no leftovers
/// of another server on the same data directory cleaned away).
pub async fn run(config: ServerConfig) -> anyhow::Result<()> {
    let listen = config.listen;
    let listener = TcpListener::bind(listen).await.with_context(|| {
        format!("listening on {listen} (is another server running there? pick one with --listen)")
    })?;
    let state = start(config).await?;
    // After start-up (a signal during it still ends the process at once), before the first
    // request is answered.
    let shutdown = shutdown_signal()?;
    tracing::info!("faasbox server listening on http://{listen}");
    serve(state, listener, shutdown).await
}

async fn maintain_pools(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        state.deployments.maintain_all();
    }
}

/// Resolves at SIGTERM or SIGINT. The handlers are installed when this is called, not when
/// the future is first polled: that left a window in which a SIGTERM sent to a server that
/// already answered killed it outright (no instance stopped, exit by signal).
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = interrupt.recv() => {}
        }
        tracing::info!("shutting down: stopping every instance");
    })
}

#[cfg(test)]
mod tests {
    use super::StoreUrl;

    #[test]
    fn store_urls_are_sqlite_or_postgres_and_refusals_mask_the_password() {
        assert_eq!(StoreUrl::parse("sqlite").unwrap(), StoreUrl::Sqlite);
        assert_eq!(StoreUrl::parse(" ").unwrap(), StoreUrl::Sqlite);
        for url in [
            "postgres://u:p@db:5432/faasbox",
            "postgresql://db/faasbox",
            "postgres:///faasbox?host=/run/postgresql",
        ] {
            assert_eq!(
                StoreUrl::parse(url).unwrap(),
                StoreUrl::Postgres(url.to_string())
            );
        }
        assert_eq!(
            StoreUrl::parse("postgres://u:p@db/x").unwrap().shown(),
            "postgres://u:***@db/x"
        );
        for (url, says) in [
            ("mysql://root:pw@db/x", "not a store faasbox knows"),
            ("postgres://", "names no host"),
            ("postgres:///x", "names no host"),
            ("sqlite:/srv/x", "--data-dir"),
        ] {
            let e = StoreUrl::parse(url).unwrap_err().to_string();
            assert!(e.contains(says), "{url}: {e}");
            assert!(!e.contains(":pw@"), "{e}");
        }
    }
}
