//! The server's shared state: the store, the vault, the images, the driver, and the services
//! built on them (the functions in service, [`Deployments`]; the event bus; the flow runs;
//! the quotas; the body budget; the jq evaluator).

use std::sync::Arc;

use faasbox_driver::Driver;
use faasbox_images::ImageStore;
use faasbox_secrets::{KeySource, Vault};
use faasbox_store::Store;

use crate::auth::tokens::TokenBook;
use crate::config::ServerConfig;
use crate::deployments::{Deployments, PoolSettings};
use crate::failure::Failure;
use crate::image_book::ImagePulls;

/// Everything the server's services share: the settings, the store, images, driver, vault,
/// tokens, the deployed functions' pools, events, flows and budgets.
pub struct AppState {
    /// The server's settings.
    pub config: ServerConfig,
    /// The metadata store, through its async traits (whatever backend `app.rs` opened).
    pub store: Arc<dyn Store>,
    /// The image store: the server-wide and the namespaces' images.
    pub images: Arc<ImageStore>,
    /// Starts and stops the functions' instances.
    pub driver: Arc<dyn Driver>,
    /// Secrets and registry credentials (encrypted in the store).
    pub vault: Arc<Vault>,
    /// Where the master key came from (a rotation writes the new key there).
    pub key_source: KeySource,
    /// The API tokens (their hashes), as the auth middleware checks them.
    pub tokens: TokenBook,
    /// When this server started (the state is made at start-up).
    pub started: time::OffsetDateTime,
    /// The web UI's sign-in sessions (in memory).
    pub sessions: crate::auth::sessions::SessionBook,
    /// Image pulls of functions whose image is missing (deploy and call time).
    pub image_pulls: ImagePulls,
    /// The functions in service and their pools.
    pub deployments: Deployments,
    /// Flow events and schedules (see `crate::events`; the bus is `crate::event_bus`).
    pub events: crate::event_bus::EventBus,
    /// The workflow instances running in this server.
    pub flow_runs: crate::flow_runs::Runs,
    /// Per-namespace quotas and the instance slots they give.
    pub quotas: Arc<crate::quota::QuotaBook>,
    /// The request bodies (and outputs) held in memory at once.
    pub bodies: Arc<crate::bodies::BodyBudget>,
    /// Evaluates jq expressions (input templates, flows) in bounded worker processes.
    pub evaluator: faasbox_expr::sandbox::Evaluator,
    /// The builds of functions from code running in the background.
    pub code_builds: crate::code_builds::Builds,
    /// The runs: the executor's wake-up, running runs' cancels, asynchronous runs in flight.
    pub runs: crate::run_book::Runs,
    /// The HTTP routes the gateway serves (reloaded from the store when one changes).
    pub routes: crate::routes::RouteTable,
    /// Function log lines as calls print them, for the followers of a function's logs.
    pub live_logs: crate::live_logs::LiveLogs,
    /// This server's id among the servers sharing the store (`<data-dir>/node.id`).
    pub node: crate::cluster::NodeId,
    /// The `[cluster]` settings (a copy of `config.cluster`, the advertised address filled in).
    pub cluster: crate::cluster::ClusterSettings,
}

pub use crate::owner::function_key;

impl AppState {
    /// The state over the opened store, images, driver and vault; no function in service yet.
    /// `node` is this server's id (`NodeId::load_or_create` on the data directory).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: ServerConfig,
        store: Arc<dyn Store>,
        images: Arc<ImageStore>,
        driver: Arc<dyn Driver>,
        vault: Arc<Vault>,
        key_source: KeySource,
        node: crate::cluster::NodeId,
    ) -> Self {
        let cluster = crate::cluster::ClusterSettings {
            advertise: Some(config.cluster.advertised(config.listen)),
            ..config.cluster.clone()
        };
        let expr_limits = config.expr_limits;
        let sessions = crate::auth::sessions::SessionBook::new(config.ui.session_limits());
        let quotas = Arc::new(crate::quota::QuotaBook::new(config.limits.quotas));
        let deployments = Deployments::new(
            images.clone(),
            driver.clone(),
            quotas.clone(),
            PoolSettings {
                queue_limit: config.queue_limit,
                queue_timeout: config.queue_timeout,
                ready_timeout: config.ready_timeout,
            },
        );
        AppState {
            quotas,
            deployments,
            bodies: crate::bodies::BodyBudget::new(config.limits.body_budget_bytes),
            config,
            store,
            images,
            driver,
            vault,
            key_source,
            tokens: TokenBook::default(),
            sessions,
            started: time::OffsetDateTime::now_utc(),
            image_pulls: ImagePulls::default(),
            events: crate::event_bus::EventBus::default(),
            flow_runs: Default::default(),
            code_builds: Default::default(),
            runs: Default::default(),
            routes: Default::default(),
            live_logs: Default::default(),
            node,
            cluster,
            evaluator: faasbox_expr::sandbox::Evaluator::sandboxed(
                faasbox_expr::sandbox::WorkerCommand::this_executable(),
                expr_limits,
            ),
        }
    }

    /// The lock that makes changes of one function (deploy, update, rollback, pinning its
    /// image at a call) happen one at a time, so what runs is what the store says is current.
    pub fn change_lock(&self, namespace: &str, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.image_pulls
            .lock_for(&format!("change\n{}", function_key(namespace, name)))
    }

    /// Runs `work` to its end in a task of its own, even if the caller stops waiting: an HTTP
    /// client that goes away drops its request's future, and a change made of several store
    /// calls (a token and the token book, a namespace and its images) must not stop halfway.
    pub async fn to_completion<T, F, W>(self: &Arc<Self>, work: W) -> Result<T, Failure>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T, Failure>> + Send + 'static,
        W: FnOnce(Arc<AppState>) -> F,
    {
        tokio::spawn(work(self.clone())).await?
    }

    /// Runs blocking work (the image store, files) off the async threads. The store is async
    /// and needs none of this.
    pub async fn blocking<T, F>(self: &Arc<Self>, work: F) -> Result<T, Failure>
    where
        T: Send + 'static,
        F: FnOnce(&AppState) -> Result<T, Failure> + Send + 'static,
    {
        let state = self.clone();
        tokio::task::spawn_blocking(move || work(&state)).await?
    }

    /// Collects image garbage in the background (after a change of what is in use).
    pub fn collect_image_garbage(self: &Arc<Self>) {
        let images = self.images.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = images.collect_garbage() {
                tracing::warn!("collecting image garbage failed: {e}");
            }
        });
    }
}
