//! The server's shared state: store, vault, images, driver, and one pool per deployed function
//! (its spec, the image digest it is pinned to, its revision).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use faasbox_driver::Driver;
use faasbox_images::ImageStore;
use faasbox_secrets::{KeySource, Vault};
use faasbox_store::Store;

use crate::auth::tokens::TokenBook;
use crate::config::ServerConfig;
use crate::failure::{Failure, FailureKind};
use crate::image_book::{ImagePulls, PullPolicy, IMAGE_MISSING};
use crate::model::FunctionSpec;
use crate::pool::{Pool, PoolRules};

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
    /// Image pulls of functions whose image is missing (deploy and call time).
    pub image_pulls: ImagePulls,
    pools: RwLock<HashMap<String, Deployed>>,
    /// Flow events and schedules (see `crate::events`; the bus is `crate::event_bus`).
    pub events: crate::event_bus::EventBus,
    /// The workflow instances running in this server.
    pub flow_runs: crate::flow_runs::Runs,
    /// Per-namespace quotas and the instance slots they give.
    pub quotas: crate::quota::QuotaBook,
    /// The request bodies (and outputs) held in memory at once.
    pub bodies: Arc<crate::bodies::BodyBudget>,
    /// Evaluates jq expressions (input templates, flows) in bounded worker processes.
    pub evaluator: faasbox_expr::sandbox::Evaluator,
}

/// A deployed function as the invoker sees it.
#[derive(Clone)]
pub struct Deployed {
    /// The spec of the revision in service.
    pub spec: Arc<FunctionSpec>,
    /// The manifest digest every instance starts from; `None` until the image is local (the
    /// first call that gets it pins it).
    pub digest: Option<String>,
    /// The revision in service; `None` for a flow's implicit function.
    pub revision: Option<u32>,
    /// How an image that is not pinned yet is got.
    pub pull: PullPolicy,
    /// The function's warm instances.
    pub pool: Arc<Pool>,
}

/// What [`AppState::activate`] puts into service.
pub struct Deployment {
    /// The spec to serve.
    pub spec: FunctionSpec,
    /// The manifest digest to pin the instances to; `None` until the image is local.
    pub digest: Option<String>,
    /// The revision it is; `None` for a flow's implicit function.
    pub revision: Option<u32>,
    /// How the image is got while it is not pinned.
    pub pull: PullPolicy,
}

pub use crate::owner::function_key;

impl AppState {
    /// The state over the opened store, images, driver and vault; no function in service yet.
    pub fn new(
        config: ServerConfig,
        store: Arc<dyn Store>,
        images: Arc<ImageStore>,
        driver: Arc<dyn Driver>,
        vault: Arc<Vault>,
        key_source: KeySource,
    ) -> Self {
        let expr_limits = config.expr_limits;
        AppState {
            quotas: crate::quota::QuotaBook::new(config.limits.quotas),
            bodies: crate::bodies::BodyBudget::new(config.limits.body_budget_bytes),
            config,
            store,
            images,
            driver,
            vault,
            key_source,
            tokens: TokenBook::default(),
            image_pulls: ImagePulls::default(),
            pools: RwLock::new(HashMap::new()),
            events: crate::event_bus::EventBus::default(),
            flow_runs: Default::default(),
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

    /// The function `name` of owner `namespace` (a namespace, or `*global`) in service, if it is.
    pub fn deployed(&self, namespace: &str, name: &str) -> Option<Deployed> {
        self.pools
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&function_key(namespace, name))
            .cloned()
    }

    /// Puts a (new or changed) function into service; the previous version's instances
    /// finish their calls and stop. The pool holds its image's content while it lives.
    pub fn activate(&self, namespace: &str, name: &str, deployment: Deployment) {
        let key = function_key(namespace, name);
        let Deployment {
            spec,
            digest,
            revision,
            pull,
        } = deployment;
        let spec = Arc::new(spec);
        let rules = PoolRules {
            min: spec.scale.min as usize,
            max: spec.scale.max as usize,
            concurrency: spec.scale.concurrency as usize,
            idle_timeout: spec.scale.idle_timeout.0,
            queue_limit: self.config.queue_limit,
            queue_timeout: self.config.queue_timeout,
        };
        let images = self.images.clone();
        let hold = digest.as_deref().and_then(|d| images.hold(d));
        let ready_timeout = self.config.ready_timeout;
        let builder_spec = spec.clone();
        let builder_key = key.clone();
        let builder_digest = digest.clone();
        // A flow's implicit function has no revisions: it is always version 1.
        let builder_version = u64::from(revision.unwrap_or(1));
        let pool = Pool::new(
            key.clone(),
            rules,
            Box::new(move || {
                let _kept = &hold;
                let content = pinned_content(
                    &images,
                    &builder_key,
                    &builder_spec,
                    builder_digest.as_deref(),
                )?;
                let image_files = |path: &str| {
                    images.read_small_file(
                        &content.layers,
                        path,
                        crate::instance_spec::MAX_ACCOUNT_FILE_BYTES,
                    )
                };
                crate::instance_spec::build(
                    &builder_key,
                    &builder_spec,
                    builder_version,
                    &content,
                    &image_files,
                    ready_timeout,
                )
            }),
            self.driver.clone(),
            self.quotas.slots(namespace),
        );
        let previous = self
            .pools
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                key,
                Deployed {
                    spec,
                    digest,
                    revision,
                    pull,
                    pool: pool.clone(),
                },
            );
        if let Some(previous) = previous {
            previous.pool.retire();
        }
        pool.maintain();
    }

    /// Takes a function out of service.
    pub fn deactivate(&self, namespace: &str, name: &str) {
        let removed = self
            .pools
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&function_key(namespace, name));
        if let Some(removed) = removed {
            removed.pool.retire();
        }
    }

    /// Takes every function of a namespace out of service.
    pub fn deactivate_namespace(&self, namespace: &str) {
        self.deactivate_matching(namespace, |_, _| true);
    }

    /// Takes the functions of `namespace` that `retire` picks (by name and spec) out of
    /// service; returns how many.
    pub fn deactivate_matching(
        &self,
        namespace: &str,
        retire: impl Fn(&str, &FunctionSpec) -> bool,
    ) -> usize {
        let prefix = format!("{namespace}/");
        let removed: Vec<Deployed> = {
            let mut pools = self.pools.write().unwrap_or_else(|p| p.into_inner());
            let keys: Vec<String> = pools
                .iter()
                .filter(|(key, deployed)| {
                    key.strip_prefix(&prefix)
                        .is_some_and(|name| retire(name, &deployed.spec))
                })
                .map(|(key, _)| key.clone())
                .collect();
            keys.iter().filter_map(|k| pools.remove(k)).collect()
        };
        for deployed in &removed {
            deployed.pool.retire();
        }
        removed.len()
    }

    /// The pools of every function in service.
    pub fn all_pools(&self) -> Vec<Arc<Pool>> {
        self.pools
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|d| d.pool.clone())
            .collect()
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

/// The content an instance of function `key` starts from: its pinned digest's.
fn pinned_content(
    images: &faasbox_images::ImageStore,
    key: &str,
    spec: &FunctionSpec,
    digest: Option<&str>,
) -> Result<faasbox_images::ImageContent, Failure> {
    let Some(digest) = digest else {
        return Err(Failure::new(
            FailureKind::Unavailable,
            IMAGE_MISSING,
            format!(
                "image '{}' of {key} is not local yet; the next call pulls it",
                spec.image
            ),
        ));
    };
    images.content(digest).ok_or_else(|| {
        Failure::new(
            FailureKind::Unavailable,
            IMAGE_MISSING,
            format!(
                "image '{}' ({digest}) of {key} was removed from the store (image rm --force); \
                 deploy the function again",
                spec.image
            ),
        )
    })
}
