//! Per-namespace quotas (server settings `quota-functions`, `quota-min-scale`,
//! `quota-instances`): how many functions a namespace may deploy, how many warm instances
//! their `scale.min` may ask for together, and how many instances its functions (flows'
//! implicit functions included) may run at once. Global services are the server admin's and
//! count against no namespace.
//!
//! A deploy that would pass a quota is refused ([`QuotaRefusal`]: forbidden, 403, the quota
//! named). At run time a call that needs a new instance while its namespace runs its quota of
//! instances waits — an idle instance of another of the namespace's functions (above its
//! `min`) is stopped to make room — and fails with [`INSTANCES`] after the queue timeout.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::Notify;

use crate::failure::{Failure, FailureKind};
use crate::model::FunctionSpec;

/// Deploying would pass `quota-functions`.
pub const FUNCTIONS: &str = "faasbox.quota.functions";
/// Deploying would pass `quota-min-scale`.
pub const MIN_SCALE: &str = "faasbox.quota.min_scale";
/// A spec asks for more instances than `quota-instances`, or a call found none free in time.
pub const INSTANCES: &str = "faasbox.quota.instances";

/// The quotas of every namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    /// Functions a namespace may have (global services and flows' implicit functions not
    /// counted).
    pub max_functions: u32,
    /// The sum of `scale.min` over a namespace's functions.
    pub max_min_scale: u32,
    /// Instances a namespace's functions may run at once.
    pub max_instances: u32,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            max_functions: 200,
            max_min_scale: 20,
            max_instances: 50,
        }
    }
}

impl Quotas {
    /// Why these quotas cannot work, if they cannot.
    pub fn problem(&self) -> Option<String> {
        (self.max_functions == 0 || self.max_instances == 0)
            .then(|| "quota-functions and quota-instances must be at least 1".to_string())
    }

    /// Checks that `namespace` may deploy `spec` as `name`, given the `scale.min` of each of
    /// its other functions (`others_min`); `existed` says whether `name` is an update.
    pub fn check_deploy(
        &self,
        namespace: &str,
        name: &str,
        spec: &FunctionSpec,
        others_min: &[u32],
        existed: bool,
    ) -> Result<(), QuotaRefusal> {
        let refuse = |exceeded: Exceeded| {
            Err(QuotaRefusal {
                function: format!("{namespace}/{name}"),
                exceeded,
            })
        };
        if !existed && others_min.len() >= self.max_functions as usize {
            return refuse(Exceeded::Functions {
                namespace: namespace.to_string(),
                count: others_min.len(),
                max: self.max_functions,
            });
        }
        if spec.scale.max > self.max_instances {
            return refuse(Exceeded::Instances {
                namespace: namespace.to_string(),
                asked: spec.scale.max,
                max: self.max_instances,
            });
        }
        // Warm instances are instances too: the smaller quota binds.
        let (quota, limit) = if self.max_min_scale <= self.max_instances {
            ("quota-min-scale", self.max_min_scale)
        } else {
            ("quota-instances", self.max_instances)
        };
        let warm: u64 = others_min.iter().copied().map(u64::from).sum();
        if warm + u64::from(spec.scale.min) > u64::from(limit) {
            return refuse(Exceeded::MinScale {
                asked: spec.scale.min,
                others: warm,
                quota,
                limit,
            });
        }
        Ok(())
    }
}

/// A deploy refused because it would pass a quota (a [`FailureKind::Forbidden`] failure with
/// the quota's code when it reaches a caller).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("function {function} was not deployed: {exceeded}")]
pub struct QuotaRefusal {
    /// "namespace/name".
    pub function: String,
    /// Which quota, and by how much.
    pub exceeded: Exceeded,
}

/// Which quota a deploy would pass, and by how much.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Exceeded {
    #[error(
        "namespace {namespace} has {count} functions, its quota (quota-functions = {max}); \
         delete one, or ask the server's admin to raise quota-functions"
    )]
    /// The namespace has as many functions as `quota-functions` allows.
    Functions {
        /// The namespace deployed to.
        namespace: String,
        /// The functions it has.
        count: usize,
        /// `quota-functions`.
        max: u32,
    },
    #[error(
        "`scale.max` ({asked}) is more than the instances namespace {namespace} may run \
         (quota-instances = {max}); lower scale.max"
    )]
    /// The function's `scale.max` is more than `quota-instances`.
    Instances {
        /// The namespace deployed to.
        namespace: String,
        /// The `scale.max` asked for.
        asked: u32,
        /// `quota-instances`.
        max: u32,
    },
    #[error(
        "its `scale.min` ({asked}) and that of the namespace's other functions ({others}) \
         add up to more than {quota} = {limit}; lower scale.min here or elsewhere"
    )]
    /// The namespace's `scale.min`s together would pass `quota-min-scale` (or `quota-instances`).
    MinScale {
        /// The `scale.min` asked for.
        asked: u32,
        /// The `scale.min`s of the namespace's other functions, added up.
        others: u64,
        /// The quota that binds: `quota-min-scale`, or `quota-instances` when it is smaller.
        quota: &'static str,
        /// The binding quota's value.
        limit: u32,
    },
}

impl Exceeded {
    /// The error code callers see.
    pub fn code(&self) -> &'static str {
        match self {
            Exceeded::Functions { .. } => FUNCTIONS,
            Exceeded::Instances { .. } => INSTANCES,
            Exceeded::MinScale { .. } => MIN_SCALE,
        }
    }
}

impl From<QuotaRefusal> for Failure {
    fn from(refusal: QuotaRefusal) -> Self {
        Failure::new(
            FailureKind::Forbidden,
            refusal.exceeded.code(),
            refusal.to_string(),
        )
    }
}

/// The instance slots of one namespace, shared by its pools.
pub struct NamespaceSlots {
    namespace: String,
    limit: usize,
    used: Mutex<usize>,
    /// Woken when a slot is freed.
    pub freed: Notify,
    pools: Mutex<Vec<Weak<dyn Evictable>>>,
}

/// What the slots need of a pool of the namespace (`crate::pool::Pool`): to stop one of its
/// idle instances to make room.
pub trait Evictable: Send + Sync {
    /// Stops one idle instance above its function's `min`; whether there was one.
    fn evict_idle(&self) -> bool;
}

impl NamespaceSlots {
    fn new(namespace: &str, limit: u32) -> NamespaceSlots {
        NamespaceSlots {
            namespace: namespace.to_string(),
            limit: limit as usize,
            used: Mutex::new(0),
            freed: Notify::new(),
            pools: Mutex::new(Vec::new()),
        }
    }

    /// Takes a slot for an instance about to start, if one is free.
    pub fn try_take(&self) -> bool {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        if *used < self.limit {
            *used += 1;
            true
        } else {
            false
        }
    }

    /// Gives back the slot of an instance that stopped (or never started).
    pub fn release(&self) {
        {
            let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
            *used = used.saturating_sub(1);
        }
        self.freed.notify_waiters();
    }

    /// Instances running or starting now.
    pub fn used(&self) -> usize {
        *self.used.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn register(&self, pool: Weak<dyn Evictable>) {
        let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        pools.retain(|p| p.strong_count() > 0);
        pools.push(pool);
    }

    /// Stops one idle instance (above its function's `min`) of another of the namespace's
    /// pools than `asking`, to make room; whether one was found.
    pub fn make_room(&self, asking: &dyn Evictable) -> bool {
        let pools: Vec<Arc<dyn Evictable>> = self
            .pools
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        pools
            .iter()
            .filter(|p| !std::ptr::addr_eq(Arc::as_ptr(p), asking))
            .any(|p| p.evict_idle())
    }

    /// The error of a call that found no slot in time.
    pub fn exhausted(&self, waited: std::time::Duration) -> Failure {
        Failure::function(
            FailureKind::Unavailable,
            INSTANCES,
            format!(
                "namespace {} runs its quota of {} instances (quota-instances) and none became \
                 free within {}s; retry later, lower other functions' scale, or ask the server's \
                 admin to raise quota-instances",
                self.namespace,
                self.limit,
                waited.as_secs()
            ),
            true,
        )
    }
}

/// The instance slots of every namespace, and the lock that makes a deploy's quota check and
/// its store one step.
pub struct QuotaBook {
    /// The quotas every namespace has.
    pub quotas: Quotas,
    slots: Mutex<HashMap<String, Arc<NamespaceSlots>>>,
    deploys: tokio::sync::Mutex<()>,
}

impl QuotaBook {
    /// A book with `quotas` and no slots taken yet.
    pub fn new(quotas: Quotas) -> QuotaBook {
        QuotaBook {
            quotas,
            slots: Mutex::new(HashMap::new()),
            deploys: tokio::sync::Mutex::new(()),
        }
    }

    /// The slots of `owner_key`'s namespace; `None` for global services.
    pub fn slots(&self, owner_key: &str) -> Option<Arc<NamespaceSlots>> {
        if owner_key == faasbox_store::GLOBAL_OWNER {
            return None;
        }
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        Some(
            slots
                .entry(owner_key.to_string())
                .or_insert_with(|| {
                    Arc::new(NamespaceSlots::new(owner_key, self.quotas.max_instances))
                })
                .clone(),
        )
    }

    /// Held from a deploy's quota check until its function is stored.
    pub async fn lock_deploys(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.deploys.lock().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(min: u32, max: u32) -> FunctionSpec {
        serde_json::from_value(serde_json::json!({"image": "x", "scale": {"min": min, "max": max}}))
            .unwrap()
    }

    #[test]
    fn deploys_are_checked_against_each_quota() {
        let quotas = Quotas {
            max_functions: 2,
            max_min_scale: 3,
            max_instances: 5,
        };
        let two = [1, 1];
        let refusal = quotas
            .check_deploy("demo", "f", &spec(0, 1), &two, false)
            .unwrap_err();
        assert_eq!(
            refusal.exceeded,
            Exceeded::Functions {
                namespace: "demo".into(),
                count: 2,
                max: 2
            }
        );
        let err = Failure::from(refusal);
        assert_eq!(
            (err.kind, err.code.as_str()),
            (FailureKind::Forbidden, FUNCTIONS)
        );
        assert!(
            err.message.contains("quota-functions = 2"),
            "{}",
            err.message
        );
        // An update of one of the two is no new function.
        assert!(quotas
            .check_deploy("demo", "f", &spec(1, 1), &two[..1], true)
            .is_ok());
        let err = Failure::from(
            quotas
                .check_deploy("demo", "f", &spec(3, 5), &two[..1], true)
                .unwrap_err(),
        );
        assert_eq!(err.code, MIN_SCALE);
        assert!(
            err.message.contains("quota-min-scale = 3"),
            "{}",
            err.message
        );
        let err = Failure::from(
            quotas
                .check_deploy("demo", "f", &spec(0, 6), &[], false)
                .unwrap_err(),
        );
        assert_eq!(err.code, INSTANCES);
        assert!(quotas.problem().is_none());
        assert!(Quotas {
            max_instances: 0,
            ..quotas
        }
        .problem()
        .is_some());
        // With fewer instances than warm ones allowed, the instance quota binds.
        let tight = Quotas {
            max_min_scale: 20,
            max_instances: 2,
            ..quotas
        };
        let err = Failure::from(
            tight
                .check_deploy("demo", "f", &spec(2, 2), &[1], true)
                .unwrap_err(),
        );
        assert!(
            err.message.contains("quota-instances = 2"),
            "{}",
            err.message
        );
    }

    #[test]
    fn slots_are_taken_and_given_back() {
        let book = QuotaBook::new(Quotas {
            max_instances: 2,
            ..Quotas::default()
        });
        assert!(book.slots(faasbox_store::GLOBAL_OWNER).is_none());
        let slots = book.slots("demo").unwrap();
        assert!(Arc::ptr_eq(&slots, &book.slots("demo").unwrap()));
        assert!(slots.try_take() && slots.try_take());
        assert!(!slots.try_take());
        slots.release();
        assert_eq!(slots.used(), 1);
        assert!(slots.try_take());
        assert_eq!(book.slots("other").unwrap().used(), 0);
    }
}
