//! The functions in service: each deployed function's spec, the image digest it is pinned
//! to, its revision and its pool of warm instances. A service of its own with what it needs
//! given at construction (the image store, the driver, the quotas' slots, the pool settings),
//! so the invoker, deploys and flows reach pools through it and nothing else.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use faasbox_driver::Driver;
use faasbox_images::ImageStore;

use crate::failure::{Failure, FailureKind};
use crate::image_book::{PullPolicy, IMAGE_MISSING};
use crate::metrics::{PoolGauges, PoolStatistics};
use crate::model::FunctionSpec;
use crate::owner::function_key;
use crate::pool::{Pool, PoolRules};
use crate::quota::QuotaBook;

/// The server settings every pool follows.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    /// Calls that may wait for a busy function before new ones are refused.
    pub queue_limit: usize,
    /// How long a call may wait for an instance.
    pub queue_timeout: Duration,
    /// How long a new instance may take to accept calls.
    pub ready_timeout: Duration,
}

/// A deployed function as the invoker sees it.
#[derive(Clone)]
pub struct Deployed {
    /// The spec in service.
    pub spec: Arc<FunctionSpec>,
    /// The manifest digest every instance starts from; `None` until the image is local (the
    /// first call that gets it pins it).
    pub digest: Option<String>,
    /// The revision in service; `None` for a flow's implicit function.
    pub revision: Option<u32>,
    /// How an image that is not pinned yet is got.
    pub pull: PullPolicy,
    /// Its warm instances.
    pub pool: Arc<Pool>,
    /// A code function's compiled input and output schemas (compiled once per revision).
    pub schemas: Option<Arc<crate::code_schemas::CodeSchemas>>,
}

/// What [`Deployments::activate`] puts into service.
pub struct Deployment {
    /// The spec to serve.
    pub spec: FunctionSpec,
    /// The manifest digest its instances start from (`None`: not local yet).
    pub digest: Option<String>,
    /// The revision (`None` for a flow's implicit function).
    pub revision: Option<u32>,
    /// How its image is got while it is not pinned.
    pub pull: PullPolicy,
}

/// The map of functions in service to their pools.
pub struct Deployments {
    pools: RwLock<HashMap<String, Deployed>>,
    images: Arc<ImageStore>,
    driver: Arc<dyn Driver>,
    quotas: Arc<QuotaBook>,
    settings: PoolSettings,
}

impl Deployments {
    /// No function in service yet; pools start instances with `driver` from `images`, take
    /// their namespace's slots from `quotas`, and follow `settings`.
    pub fn new(
        images: Arc<ImageStore>,
        driver: Arc<dyn Driver>,
        quotas: Arc<QuotaBook>,
        settings: PoolSettings,
    ) -> Self {
        Deployments {
            pools: RwLock::new(HashMap::new()),
            images,
            driver,
            quotas,
            settings,
        }
    }

    /// The function `namespace/name` as it is in service, if it is.
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
            queue_limit: self.settings.queue_limit,
            queue_timeout: self.settings.queue_timeout,
        };
        let images = self.images.clone();
        let hold = digest.as_deref().and_then(|d| images.hold(d));
        let ready_timeout = self.settings.ready_timeout;
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
                    schemas: crate::code_schemas::CodeSchemas::compile(&spec),
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

    /// Retires every pool (at shutdown): idle instances stop now, busy ones after their call.
    pub fn retire_all(&self) {
        for pool in self.all_pools() {
            pool.retire();
        }
    }

    /// Lets every pool start what its `min` asks for and stop what idled too long.
    pub fn maintain_all(&self) {
        for pool in self.all_pools() {
            pool.maintain();
        }
    }
}

impl PoolStatistics for Deployments {
    fn pool_gauges(&self) -> Vec<PoolGauges> {
        self.all_pools()
            .into_iter()
            .map(|pool| {
                let stats = pool.stats();
                PoolGauges {
                    key: pool.key.clone(),
                    instances: stats.instances,
                    busy_calls: stats.busy_calls,
                    waiting: stats.waiting,
                }
            })
            .collect()
    }

    fn spare_containers(&self) -> usize {
        self.driver.spare_containers()
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
