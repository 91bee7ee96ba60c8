//! Containers created ahead of demand ("stem cells", [`crate::DriverConfig`]'s
//! `spare_containers`): `runc run` is most of a cold start, and about half of it is `runc
//! create` (namespaces, mounts, cgroup, seccomp filter) that does not depend on the call. So
//! after a start of an image (its recent demand) the driver keeps a few instances of exactly
//! that start's settings created: directory, disk, root filesystem, network, `config.json`
//! and `runc create` done, the container's init waiting on runc's exec fifo, no code of the
//! function or of the agent run yet. The next start with the same settings takes one, writes
//! `instance.json` (its function) and the agent's configuration (which the agent reads only
//! when it starts: command, user, contract, revision) and runs `runc start`.
//!
//! The key is everything `config.json` and the instance's directory are made from
//! ([`StemKey`]): image digest, environment, limits, network, disk size and scratch mounts;
//! only runc instances (gVisor's `runsc` has no comparable split) and only the agent as the
//! container process. Functions that share all of these (another function of the same image,
//! a later revision, another namespace) share stem cells: a stem cell ran nothing and its
//! writable layer is empty, so nothing passes from one to another. A start whose settings
//! differ in anything takes none, so nothing is widened or specialised after `create`: the
//! cgroup limits, mounts, user namespace and seccomp filter are the start's own from the
//! beginning. An unclaimed stem cell's `instance.json` and bundle `config.json` name no
//! function; the claim writes both.
//!
//! Bounds: at most `spare_containers` per key and `spare_containers_total` in all (ready and
//! being made); made in the background after a successful start, never waited for; one that
//! is not claimed within `spare_container_idle` is torn down. A stem cell whose init has gone
//! (killed, or the runtime's state gone) is torn down instead of handed out, and one whose
//! `runc start` fails is torn down and the start goes on without one. Like a spare network,
//! a stem cell is an instance in all but its started process (its id from
//! [`super::layout::Layout::new_id`]), so teardown, [`crate::Driver::stop_all`] and the
//! cleanup after a crash (`runc list` of the driver's root, instance directories, cgroups,
//! namespaces) remove it like any instance. With crun (`--oci-runtime crun`) the same holds
//! with `crun create` and a write to its exec fifo.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::command::RuntimeCli;
use super::layout::InstanceDir;
use super::report::{seconds, tail_of_file};
use super::start::{
    annotate_bundle, write_agent_config, write_meta, Launch, NetworkPlan, StartOptions, Steps,
    TeardownGuard,
};
use super::Inner;
use faasbox_driver::{DriverError, ImageRef, Instance, InstanceSpec, RuntimeClass};

/// What must be equal for a stem cell to serve a start: everything its container was
/// created from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct StemKey {
    image: ImageRef,
    env: Vec<String>,
    /// Memory bytes, CPU millis, pids.
    limits: (u64, u64, i64),
    network: bool,
    disk_bytes: u64,
    scratch: Vec<String>,
}

impl StemKey {
    fn of(spec: &InstanceSpec) -> Self {
        StemKey {
            image: spec.image.clone(),
            env: spec.env.clone(),
            limits: (
                spec.limits.memory_bytes,
                spec.limits.cpu_millis,
                spec.limits.pids,
            ),
            network: spec.network,
            disk_bytes: spec.disk_bytes,
            scratch: spec.scratch.iter().map(|m| m.path.clone()).collect(),
        }
    }
}

/// The stem cells and their bookkeeping.
#[derive(Debug)]
pub(crate) struct StemCells {
    /// At most this many per key; 0: none at all.
    per_key: usize,
    /// At most this many in all (ready and being made).
    total: usize,
    /// A stem cell not claimed for this long is torn down.
    idle: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Ids of ready stem cells per key, oldest first.
    ready: HashMap<StemKey, Vec<String>>,
    /// Stem cells being made per key.
    filling: HashMap<StemKey, usize>,
    /// Ready and being made, all keys.
    count: usize,
    /// No more stem cells (the driver stopped everything).
    closed: bool,
}

impl State {
    fn forget_if_empty(&mut self, key: &StemKey) {
        if self.ready.get(key).is_some_and(Vec::is_empty) {
            self.ready.remove(key);
        }
        if self.filling.get(key) == Some(&0) {
            self.filling.remove(key);
        }
    }
}

impl StemCells {
    pub(crate) fn new(per_key: usize, total: usize, idle: Duration) -> Self {
        StemCells {
            per_key,
            total: if per_key == 0 { 0 } else { total },
            idle,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stem cells ready now, all keys.
    pub(crate) fn ready(&self) -> usize {
        self.state().ready.values().map(Vec::len).sum()
    }

    /// Takes a ready stem cell of `key` (the newest).
    fn take(&self, key: &StemKey) -> Option<String> {
        let mut state = self.state();
        let id = state.ready.get_mut(key)?.pop()?;
        state.count = state.count.saturating_sub(1);
        state.forget_if_empty(key);
        Some(id)
    }

    /// How many stem cells of `key` to start making now (counted as being made).
    fn reserve_fills(&self, key: &StemKey) -> usize {
        let mut state = self.state();
        if state.closed {
            return 0;
        }
        let have = state.ready.get(key).map_or(0, Vec::len) + state.filling.get(key).unwrap_or(&0);
        let missing = self
            .per_key
            .saturating_sub(have)
            .min(self.total.saturating_sub(state.count));
        if missing > 0 {
            *state.filling.entry(key.clone()).or_default() += missing;
            state.count += missing;
        }
        missing
    }

    /// A stem cell of `key` being made is ready (`Some`) or failed (`None`). Returns the id
    /// back when the pool was closed meanwhile (the caller tears it down).
    fn finish_fill(&self, key: &StemKey, id: Option<String>) -> Option<String> {
        let mut state = self.state();
        if let Some(filling) = state.filling.get_mut(key) {
            *filling = filling.saturating_sub(1);
        }
        let back = match id {
            Some(id) if !state.closed => {
                state.ready.entry(key.clone()).or_default().push(id);
                None
            }
            other => {
                state.count = state.count.saturating_sub(1);
                other
            }
        };
        state.forget_if_empty(key);
        back
    }

    /// Removes stem cell `id` of `key` if it is still ready (not claimed); true when it was.
    fn expire(&self, key: &StemKey, id: &str) -> bool {
        let mut state = self.state();
        let Some(ready) = state.ready.get_mut(key) else {
            return false;
        };
        let Some(at) = ready.iter().position(|r| r == id) else {
            return false;
        };
        ready.remove(at);
        state.count = state.count.saturating_sub(1);
        state.forget_if_empty(key);
        true
    }

    /// Closes the pool; returns the ready stem cells' ids (for the caller to tear down, unless
    /// a cleanup that finds them anyway follows).
    pub(crate) fn close(&self) -> Vec<String> {
        let mut state = self.state();
        state.closed = true;
        state.count = state.filling.values().sum();
        std::mem::take(&mut state.ready)
            .into_values()
            .flatten()
            .collect()
    }
}

/// Why claiming a stem cell failed.
enum ClaimError {
    /// Before the container process ran (`runc start` refused): the start goes on without.
    BeforeStart(DriverError),
    /// The agent did not become ready: the start's own failure.
    Ready(DriverError),
}

impl Inner {
    /// The stem-cell key of a start, when stem cells may serve it: runc, the agent as the
    /// container process, stem cells configured.
    pub(super) fn stem_key(&self, spec: &InstanceSpec, options: &StartOptions) -> Option<StemKey> {
        (self.stems.per_key > 0
            && spec.runtime == RuntimeClass::Standard
            && options.args.is_none()
            && options.wait_ready)
            .then(|| StemKey::of(spec))
    }

    /// Starts `spec` from a stem cell of `key`, if there is a live one: `None` when there is
    /// none (or the ones there were could not be started), so the caller starts afresh.
    pub(super) async fn start_from_stem(
        self: &Arc<Self>,
        key: &StemKey,
        spec: &InstanceSpec,
        cli: &RuntimeCli,
    ) -> Option<Result<Instance, DriverError>> {
        loop {
            let id = self.stems.take(key)?;
            let dir = self.layout.instance(&id);
            if !stem_alive(&dir, cli, &id) {
                tracing::warn!(instance = %id, function = %spec.function, "a stem cell's container is gone; removing it");
                self.discard_stem(id);
                continue;
            }
            let guard = TeardownGuard {
                inner: Some(Arc::clone(self)),
                id: id.clone(),
            };
            let deadline = Instant::now() + self.config.start_timeout;
            let bound = self.config.start_timeout + Duration::from_secs(5);
            let claimed =
                tokio::time::timeout(bound, self.claim_stem(&id, &dir, spec, cli, deadline)).await;
            guard.disarm();
            let error = match claimed {
                Ok(Ok(instance)) => return Some(Ok(instance)),
                Ok(Err(ClaimError::BeforeStart(e))) => {
                    tracing::warn!(instance = %id, function = %spec.function, error = %e, "cannot start a stem cell; starting afresh");
                    self.discard_stem(id);
                    continue;
                }
                Ok(Err(ClaimError::Ready(e))) => e,
                Err(_) => DriverError::NotReady {
                    function: spec.function.clone(),
                    reason: format!(" within {}", seconds(self.config.start_timeout)),
                    details: format!("\nagent log:\n{}", tail_of_file(&dir.agent_log(), 20)),
                },
            };
            if let Err(teardown_error) = self.teardown(&id).await {
                tracing::warn!(instance = %id, error = %teardown_error, "teardown after a failed start failed");
            }
            return Some(Err(error));
        }
    }

    async fn claim_stem(
        &self,
        id: &str,
        dir: &InstanceDir,
        spec: &InstanceSpec,
        cli: &RuntimeCli,
        deadline: Instant,
    ) -> Result<Instance, ClaimError> {
        let mut steps = Steps::new();
        write_meta(dir, spec).map_err(ClaimError::BeforeStart)?;
        annotate_bundle(dir, &spec.function).map_err(ClaimError::BeforeStart)?;
        write_agent_config(dir, spec).map_err(ClaimError::BeforeStart)?;
        steps.done("stem cell: agent config");
        cli.release_created(id, Duration::from_secs(2))
            .await
            .map_err(ClaimError::BeforeStart)?;
        steps.done("runtime start (exec fifo)");
        self.wait_ready(id, dir, &spec.function, cli, deadline)
            .await
            .map_err(ClaimError::Ready)?;
        steps.done("wait ready");
        steps.report(id, &spec.function);
        Ok(Instance {
            id: id.to_string(),
            endpoint: faasbox_proto::AgentEndpoint::Unix(dir.socket()),
            runtime: spec.runtime,
        })
    }

    /// Starts making the stem cells of `key` that are missing, each in a task of its own;
    /// each is torn down when not claimed within the idle period.
    pub(super) fn refill_stems(self: &Arc<Self>, key: &StemKey, spec: &InstanceSpec) {
        for _ in 0..self.stems.reserve_fills(key) {
            let inner = Arc::clone(self);
            let key = key.clone();
            let spec = spec.clone();
            tokio::spawn(async move {
                let (id, made) = inner.make_stem(&spec).await;
                let back = match made {
                    Ok(()) => inner.stems.finish_fill(&key, Some(id.clone())),
                    Err(e) => {
                        tracing::warn!(function = %spec.function, error = %e, "cannot create a stem cell");
                        inner.stems.finish_fill(&key, None);
                        Some(id.clone())
                    }
                };
                if back.is_none() {
                    tokio::time::sleep(inner.stems.idle).await;
                    if !inner.stems.expire(&key, &id) {
                        return;
                    }
                    tracing::debug!(instance = %id, function = %spec.function, "a stem cell was not claimed in time; removing it");
                }
                if let Err(e) = inner.teardown(&id).await {
                    tracing::warn!(instance = %id, error = %e, "teardown of a stem cell failed");
                }
            });
        }
    }

    /// Makes one stem cell of `spec`: everything of a start up to `runc create`, with a
    /// spare network when there is one (so that it is ready sooner; the spares refill in the
    /// background) or one made now. Returns its id and whether it was made; on failure the
    /// caller tears it down.
    async fn make_stem(self: &Arc<Self>, spec: &InstanceSpec) -> (String, Result<(), DriverError>) {
        let (id, network) = match self.plan_network(spec) {
            Ok(planned) => planned,
            Err(e) => return (self.layout.new_id(), Err(e)),
        };
        let made = self.create_stem(&id, spec, network).await;
        (id, made)
    }

    async fn create_stem(
        &self,
        id: &str,
        spec: &InstanceSpec,
        network: Option<NetworkPlan>,
    ) -> Result<(), DriverError> {
        self.live_instances().insert(id.to_string(), spec.runtime);
        let cli = self.runtime_cli(spec.runtime)?;
        let options = StartOptions {
            args: None,
            wait_ready: false,
        };
        let deadline = Instant::now() + self.config.start_timeout;
        let bound = self.config.start_timeout + Duration::from_secs(5);
        match tokio::time::timeout(
            bound,
            self.create_and_start(id, spec, &options, &cli, network, deadline, Launch::Create),
        )
        .await
        {
            Ok(made) => made.map(|_| ()),
            Err(_) => Err(DriverError::Runtime {
                command: format!("runc create {id}"),
                message: format!("not done within {}", seconds(bound)),
            }),
        }
    }

    /// Tears a stem cell down in the background.
    fn discard_stem(self: &Arc<Self>, id: String) {
        let inner = Arc::clone(self);
        tokio::spawn(async move {
            if let Err(e) = inner.teardown(&id).await {
                tracing::warn!(instance = %id, error = %e, "teardown of a stem cell failed");
            }
        });
    }
}

/// Whether a stem cell can still be started: its init (the runtime's pid file) lives and
/// what `start` opens to let it go on is there ([`RuntimeCli::start_handle`]).
fn stem_alive(dir: &InstanceDir, cli: &RuntimeCli, id: &str) -> bool {
    super::ready::init_alive(&dir.init_pid()) && cli.start_handle(id).exists()
}

#[cfg(test)]
mod tests {
    use super::*;
    use faasbox_driver::Limits;

    fn agent() -> faasbox_proto::AgentConfig {
        serde_json::from_value(serde_json::json!({"contract": "http", "command": ["/f"]}))
            .expect("agent config")
    }

    fn key(image: &str) -> StemKey {
        StemKey::of(&InstanceSpec {
            function: "ns/f".to_string(),
            image: ImageRef {
                name: image.to_string(),
                digest: format!("sha256:{image}"),
            },
            env: Vec::new(),
            agent: agent(),
            limits: Limits::default(),
            runtime: RuntimeClass::Standard,
            network: false,
            disk_bytes: 0,
            scratch: Vec::new(),
        })
    }

    #[test]
    fn fills_per_key_and_in_all_up_to_the_bounds() {
        let stems = StemCells::new(2, 3, Duration::from_secs(60));
        let (a, b) = (key("ns/a"), key("ns/b"));
        assert_eq!(stems.reserve_fills(&a), 2);
        assert_eq!(stems.reserve_fills(&a), 0);
        assert_eq!(stems.reserve_fills(&b), 1, "only one left of the total");
        assert_eq!(stems.finish_fill(&a, Some("a1".into())), None);
        assert_eq!(stems.finish_fill(&a, None), None);
        assert_eq!(stems.finish_fill(&b, Some("b1".into())), None);
        assert_eq!(stems.ready(), 2);
        assert_eq!(stems.take(&b).as_deref(), Some("b1"));
        assert_eq!(stems.take(&b), None);
        assert_eq!(stems.reserve_fills(&b), 2, "a1 and two of b make the total");
        assert_eq!(stems.reserve_fills(&key("ns/c")), 0);
        assert!(stems.expire(&a, "a1"));
        assert!(!stems.expire(&a, "a1"), "gone already");
        assert_eq!(stems.take(&a), None);
        assert_eq!(stems.close(), Vec::<String>::new());
        assert_eq!(
            stems.finish_fill(&b, Some("b2".into())).as_deref(),
            Some("b2")
        );
        assert_eq!(stems.reserve_fills(&a), 0);
        assert_eq!(stems.reserve_fills(&key("ns/c")), 0);
    }

    #[test]
    fn none_when_off_and_keys_differ_in_any_create_time_property() {
        assert_eq!(
            StemCells::new(0, 8, Duration::from_secs(1)).reserve_fills(&key("ns/a")),
            0
        );
        let base = InstanceSpec {
            function: "ns/a".to_string(),
            image: ImageRef::default(),
            env: vec!["A=1".into()],
            agent: agent(),
            limits: Limits {
                memory_bytes: 1 << 20,
                cpu_millis: 100,
                pids: 10,
            },
            runtime: RuntimeClass::Standard,
            network: false,
            disk_bytes: 1 << 20,
            scratch: Vec::new(),
        };
        let mut other = base.clone();
        other.limits.pids = 11;
        assert_ne!(StemKey::of(&base), StemKey::of(&other));
        let mut other = base.clone();
        other.env.push("B=2".into());
        assert_ne!(StemKey::of(&base), StemKey::of(&other));
        let mut other = base.clone();
        other.network = true;
        assert_ne!(StemKey::of(&base), StemKey::of(&other));
        let mut other = base.clone();
        other.disk_bytes *= 2;
        assert_ne!(StemKey::of(&base), StemKey::of(&other));
        let mut other = base.clone();
        other.agent.function_version = 7;
        other.function = "other/fn".into();
        assert_eq!(
            StemKey::of(&base),
            StemKey::of(&other),
            "the agent's configuration and instance.json are written at the claim"
        );
    }
}
