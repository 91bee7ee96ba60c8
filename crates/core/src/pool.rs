//! Warm instances of one function: reuse, scale-up on demand to `max`, a bounded queue of
//! waiting calls served first come first served (a call that finds others waiting queues
//! behind them, and only the oldest waiting call may take a free instance), `min` kept warm, idle instances stopped, broken ones replaced. A pool of a
//! namespace's function also takes each instance from the namespace's slots
//! ([`NamespaceSlots`], the `quota-instances` quota) and gives it back when it stopped.
//!
//! All bookkeeping happens under one mutex per function; instances start and stop in spawned
//! tasks, so a caller that goes away never leaks a reservation or a half-started instance.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use faasbox_driver::{AgentClient, Driver, DriverError, Instance, InstanceSpec};
use tokio::sync::{oneshot, Notify};

use crate::failure::{codes, Failure, FailureKind};
use crate::quota::{Evictable, NamespaceSlots};

/// Builds the spec of a new instance (resolved fresh for each start, so a re-imported image
/// is picked up by new instances).
pub type SpecBuilder = Box<dyn Fn() -> Result<InstanceSpec, Failure> + Send + Sync>;

/// Scaling rules of one pool.
#[derive(Debug, Clone)]
pub struct PoolRules {
    /// Instances kept warm even when idle.
    pub min: usize,
    /// Instances at most.
    pub max: usize,
    /// Calls one instance takes at once.
    pub concurrency: usize,
    /// An idle instance above `min` is stopped after this long.
    pub idle_timeout: Duration,
    /// Calls that may wait for an instance; more are refused.
    pub queue_limit: usize,
    /// How long a call waits for an instance before it fails.
    pub queue_timeout: Duration,
}

/// The warm instances of one function and the calls waiting for them.
pub struct Pool {
    /// "namespace/function", for messages.
    pub key: String,
    rules: PoolRules,
    build_spec: SpecBuilder,
    driver: Arc<dyn Driver>,
    inner: Mutex<Inner>,
    changed: Notify,
    /// The namespace's instance slots (none for a global service).
    slots: Option<Arc<NamespaceSlots>>,
}

#[derive(Default)]
struct Inner {
    slots: Vec<Slot>,
    starting: usize,
    /// The tickets of the calls waiting for an instance, oldest first.
    queue: VecDeque<u64>,
    next_ticket: u64,
    retired: bool,
    last_start_failure: Option<Instant>,
}

struct Slot {
    shared: Arc<Running>,
    in_flight: usize,
    last_used: Instant,
    broken: bool,
    /// When the instance was started (wall clock, for `fn instances`).
    started: time::OffsetDateTime,
    /// Calls it has served (ended) so far.
    calls: u64,
}

/// A started instance and the client that talks to its agent.
pub struct Running {
    /// The instance, as the driver started it.
    pub instance: Instance,
    /// Sends calls to the instance's agent.
    pub client: AgentClient,
}

/// Why a call could not get an instance.
#[derive(Debug)]
pub enum AcquireError {
    /// The function was redeployed or removed meanwhile: look the pool up again.
    Retired,
    /// No instance: the queue is full, the wait timed out, or one could not start.
    Failed(Failure),
}

/// The right to send calls to one instance; give it back with [`Lease::release`].
pub struct Lease {
    pool: Arc<Pool>,
    /// The instance leased.
    pub running: Arc<Running>,
    /// How long starting the instance took when this lease had to start it (a cold start);
    /// `None` for a warm instance.
    pub started_new: Option<Duration>,
    released: bool,
}

impl Lease {
    /// Returns the instance to the pool; a broken one is stopped and replaced on demand.
    pub fn release(mut self, broken: bool) {
        self.released = true;
        self.pool.give_back(&self.running, broken);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.released {
            // The call was abandoned midway: the instance's state is unknown, replace it.
            self.pool.give_back(&self.running, true);
        }
    }
}

impl Pool {
    /// A pool of function `key` with `rules`, starting instances from `build_spec` with
    /// `driver`; with `slots`, each instance takes one of its namespace's.
    pub fn new(
        key: String,
        rules: PoolRules,
        build_spec: SpecBuilder,
        driver: Arc<dyn Driver>,
        slots: Option<Arc<NamespaceSlots>>,
    ) -> Arc<Pool> {
        let pool = Arc::new(Pool {
            key,
            rules,
            build_spec,
            driver,
            inner: Mutex::new(Inner::default()),
            changed: Notify::new(),
            slots,
        });
        if let Some(slots) = &pool.slots {
            let pool: Arc<dyn Evictable> = pool.clone();
            let evictable = Arc::downgrade(&pool);
            slots.register(evictable);
        }
        pool
    }

    /// Takes a namespace slot for an instance about to start (always there for a global
    /// service).
    fn take_slot(&self) -> bool {
        self.slots.as_ref().is_none_or(|s| s.try_take())
    }

    /// Gives back the slot of an instance that stopped or never started.
    fn release_slot(&self) {
        if let Some(slots) = &self.slots {
            slots.release();
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for an instance with room for one more call, starting one when allowed. Calls
    /// that have to wait are served in the order they came.
    pub async fn acquire(self: &Arc<Self>) -> Result<Lease, AcquireError> {
        let deadline = tokio::time::Instant::now() + self.rules.queue_timeout;
        // This call's place in the queue once it waits; leaves it however the call ends
        // (also when its caller goes away).
        let mut ticket = Ticket {
            pool: self,
            id: None,
        };
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // Another function of the namespace giving back its slot also wakes this call.
            let freed = self.slots.as_ref().map(|s| s.freed.notified());
            tokio::pin!(freed);
            if let Some(freed) = freed.as_mut().as_pin_mut() {
                freed.enable();
            }
            let mut quota_blocked = false;
            let start_one = {
                let mut inner = self.lock();
                if inner.retired {
                    ticket.leave(&mut inner);
                    return Err(AcquireError::Retired);
                }
                // Only the oldest waiting call (or a new one when none waits) may go ahead.
                let my_turn = match ticket.id {
                    Some(id) => inner.queue.front() == Some(&id),
                    None => inner.queue.is_empty(),
                };
                let below_max = inner.slots.len() + inner.starting < self.rules.max;
                let concurrency = self.rules.concurrency;
                let free = inner
                    .slots
                    .iter_mut()
                    .filter(|s| !s.broken && s.in_flight < concurrency)
                    .max_by_key(|s| s.last_used);
                if let (true, Some(slot)) = (my_turn, free) {
                    slot.in_flight += 1;
                    let running = slot.shared.clone();
                    ticket.leave(&mut inner);
                    return Ok(self.lease(running));
                }
                if my_turn && below_max && self.take_slot() {
                    inner.starting += 1;
                    ticket.leave(&mut inner);
                    true
                } else {
                    quota_blocked = my_turn && below_max;
                    if ticket.id.is_none() {
                        if inner.queue.len() >= self.rules.queue_limit {
                            crate::metrics::queue_rejected(&self.key);
                            return Err(AcquireError::Failed(Failure::function(
                                FailureKind::Unavailable,
                                codes::QUEUE_FULL,
                                format!(
                                    "function {} is busy: {} instances are in use and {} calls already wait; \
                                     raise scale.max or scale.concurrency, or retry later",
                                    self.key, self.rules.max, inner.queue.len()
                                ),
                                true,
                            )));
                        }
                        let id = inner.next_ticket;
                        inner.next_ticket += 1;
                        inner.queue.push_back(id);
                        ticket.id = Some(id);
                        crate::metrics::call_queued(&self.key);
                    }
                    false
                }
            };
            if start_one {
                return self.start_for_caller().await;
            }
            if quota_blocked {
                if let Some(slots) = &self.slots {
                    slots.make_room(self.as_ref());
                }
            }
            let woken = async {
                match freed.as_mut().as_pin_mut() {
                    Some(freed) => tokio::select! {
                        () = notified => {}
                        () = freed => {}
                    },
                    None => notified.await,
                }
            };
            if tokio::time::timeout_at(deadline, woken).await.is_err() {
                let mut inner = self.lock();
                ticket.leave(&mut inner);
                crate::metrics::queue_rejected(&self.key);
                let below_max = inner.slots.len() + inner.starting < self.rules.max;
                if let (true, Some(slots)) = (below_max, &self.slots) {
                    return Err(AcquireError::Failed(
                        slots.exhausted(self.rules.queue_timeout),
                    ));
                }
                return Err(AcquireError::Failed(Failure::function(
                    FailureKind::Unavailable,
                    codes::QUEUE_FULL,
                    format!(
                        "function {} had no free instance within {}s (all {} busy); raise scale.max or scale.concurrency",
                        self.key,
                        self.rules.queue_timeout.as_secs(),
                        self.rules.max
                    ),
                    true,
                )));
            }
        }
    }

    fn lease(self: &Arc<Self>, running: Arc<Running>) -> Lease {
        Lease {
            pool: self.clone(),
            running,
            started_new: None,
            released: false,
        }
    }

    /// Starts an instance in a task of its own (reserved for this caller with one call in
    /// flight); if the caller is gone by then, the reservation is given back.
    async fn start_for_caller(self: &Arc<Self>) -> Result<Lease, AcquireError> {
        let (tx, rx) = oneshot::channel();
        let pool = self.clone();
        let began = Instant::now();
        tokio::spawn(async move {
            let result = pool.start_instance(1).await;
            if let Err(Ok(running)) = tx.send(result) {
                pool.give_back(&running, false);
            }
        });
        match rx.await {
            Ok(Ok(running)) => {
                crate::metrics::cold_start(&self.key);
                let mut lease = self.lease(running);
                lease.started_new = Some(began.elapsed());
                Ok(lease)
            }
            Ok(Err(e)) => Err(AcquireError::Failed(e)),
            Err(_) => Err(AcquireError::Failed(Failure::internal(
                "the task starting an instance ended unexpectedly",
            ))),
        }
    }

    /// Starts one instance and registers it with `in_flight` calls reserved. The caller must
    /// have counted it in `starting`.
    async fn start_instance(self: &Arc<Self>, in_flight: usize) -> Result<Arc<Running>, Failure> {
        let result = match (self.build_spec)() {
            Ok(spec) => {
                let ready_bound = Duration::from_millis(spec.agent.ready_timeout_ms);
                self.driver.start(spec).await.map_err(|e| {
                    Failure::function(
                        FailureKind::FunctionFailed,
                        codes::FUNCTION_START,
                        start_failure(&self.key, ready_bound, e),
                        true,
                    )
                })
            }
            Err(e) => Err(e),
        };
        let mut inner = self.lock();
        inner.starting -= 1;
        let outcome = match result {
            Ok(instance) if !inner.retired => {
                let running = Arc::new(Running {
                    client: AgentClient::at(instance.endpoint.clone()),
                    instance,
                });
                inner.slots.push(Slot {
                    shared: running.clone(),
                    in_flight,
                    last_used: Instant::now(),
                    broken: false,
                    started: time::OffsetDateTime::now_utc(),
                    calls: 0,
                });
                Ok(running)
            }
            Ok(instance) => {
                self.stop_later(instance.id);
                Err(Failure::conflict(format!(
                    "function {} was redeployed or removed while an instance started; retry",
                    self.key
                )))
            }
            Err(e) => {
                inner.last_start_failure = Some(Instant::now());
                self.release_slot();
                Err(e)
            }
        };
        drop(inner);
        self.changed.notify_waiters();
        outcome
    }

    fn give_back(&self, running: &Arc<Running>, broken: bool) {
        let mut stop = None;
        {
            let mut inner = self.lock();
            let retired = inner.retired;
            if let Some(index) = inner
                .slots
                .iter()
                .position(|s| Arc::ptr_eq(&s.shared, running))
            {
                let slot = &mut inner.slots[index];
                slot.in_flight = slot.in_flight.saturating_sub(1);
                slot.calls += 1;
                slot.last_used = Instant::now();
                slot.broken |= broken;
                if (slot.broken || retired) && slot.in_flight == 0 {
                    stop = Some(inner.slots.swap_remove(index).shared.instance.id.clone());
                }
            }
        }
        if let Some(id) = stop {
            self.stop_later(id);
        }
        self.changed.notify_waiters();
        if let Some(slots) = &self.slots {
            // An instance may be idle now: calls of the namespace waiting for a slot look
            // again (and may stop it to make room).
            slots.freed.notify_waiters();
        }
    }

    /// Stops an instance in a task of its own; its namespace slot is given back once it
    /// stopped.
    fn stop_later(&self, id: String) {
        let driver = self.driver.clone();
        let slots = self.slots.clone();
        tokio::spawn(async move {
            if let Err(e) = driver.stop(&id).await {
                tracing::warn!(instance = %id, "stopping instance failed: {e}");
            }
            if let Some(slots) = slots {
                slots.release();
            }
        });
    }

    /// Stops one idle instance above `min` (a call of another function of the namespace needs
    /// its slot); whether there was one.
    pub fn evict_idle(&self) -> bool {
        let id = {
            let mut inner = self.lock();
            let keep = if inner.retired { 0 } else { self.rules.min };
            if inner.slots.len() <= keep {
                return false;
            }
            let Some(index) = inner
                .slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.in_flight == 0)
                .min_by_key(|(_, s)| s.last_used)
                .map(|(i, _)| i)
            else {
                return false;
            };
            inner.slots.swap_remove(index).shared.instance.id.clone()
        };
        tracing::info!(function = %self.key, instance = %id, "stopping an idle instance: its namespace needs the slot");
        self.stop_later(id);
        true
    }

    /// Periodic upkeep: stop idle instances above `min`, start instances up to `min`.
    pub fn maintain(self: &Arc<Self>) {
        let now = Instant::now();
        let mut to_stop = Vec::new();
        let mut to_start = 0;
        {
            let mut inner = self.lock();
            if inner.retired {
                return;
            }
            let mut index = 0;
            while index < inner.slots.len() {
                let slot = &inner.slots[index];
                let idle = slot.in_flight == 0
                    && now.duration_since(slot.last_used) >= self.rules.idle_timeout;
                if slot.in_flight == 0
                    && (slot.broken || (idle && inner.slots.len() > self.rules.min))
                {
                    to_stop.push(inner.slots.swap_remove(index).shared.instance.id.clone());
                } else {
                    index += 1;
                }
            }
            let recently_failed = inner
                .last_start_failure
                .is_some_and(|t| now.duration_since(t) < Duration::from_secs(10));
            let have = inner.slots.len() + inner.starting;
            if have < self.rules.min && !recently_failed {
                // Only as many as the namespace has slots for; the rest at a later upkeep.
                to_start = (have..self.rules.min)
                    .take_while(|_| self.take_slot())
                    .count();
                inner.starting += to_start;
            }
        }
        for id in to_stop {
            self.stop_later(id);
        }
        for _ in 0..to_start {
            let pool = self.clone();
            tokio::spawn(async move {
                if let Err(e) = pool.start_instance(0).await {
                    tracing::warn!(function = %pool.key, "keeping a warm instance failed: {}", e.message);
                }
            });
        }
    }

    /// Takes the pool out of service: idle instances stop now, busy ones when their call ends;
    /// queued calls are told to look again.
    pub fn retire(&self) {
        let idle: Vec<String> = {
            let mut inner = self.lock();
            inner.retired = true;
            let (idle, busy): (Vec<Slot>, Vec<Slot>) =
                inner.slots.drain(..).partition(|s| s.in_flight == 0);
            inner.slots = busy;
            idle.into_iter()
                .map(|s| s.shared.instance.id.clone())
                .collect()
        };
        for id in idle {
            self.stop_later(id);
        }
        self.changed.notify_waiters();
    }

    /// Each instance running now: its id, when it started, the calls it served, whether it
    /// serves one now (for `fn instances`), oldest first.
    pub fn instances(&self) -> Vec<InstanceStats> {
        let inner = self.lock();
        let mut instances: Vec<InstanceStats> = inner
            .slots
            .iter()
            .map(|s| InstanceStats {
                id: s.shared.instance.id.clone(),
                started: s.started,
                calls: s.calls,
                in_flight: s.in_flight,
            })
            .collect();
        drop(inner);
        instances.sort_by(|a, b| a.started.cmp(&b.started).then_with(|| a.id.cmp(&b.id)));
        instances
    }

    /// Instances now running (for the API).
    pub fn stats(&self) -> PoolStats {
        let inner = self.lock();
        PoolStats {
            instances: inner.slots.len(),
            starting: inner.starting,
            busy_calls: inner.slots.iter().map(|s| s.in_flight).sum(),
            idle: inner.slots.iter().filter(|s| s.in_flight == 0).count(),
            waiting: inner.queue.len(),
        }
    }
}

/// Why an instance of function `key` could not start. One that never became ready says so,
/// with the bound it had and what its process printed (the driver's details).
fn start_failure(key: &str, ready_bound: Duration, e: DriverError) -> String {
    match e {
        DriverError::NotReady {
            reason, details, ..
        } => format!(
            "function {key}: its instance never became ready{reason}. An instance has {} to \
             accept calls (the function's timeout, or the server's --ready-timeout if shorter): \
             make it listen on port 8080 sooner, or deploy it with a longer --timeout{details}",
            humantime::format_duration(ready_bound)
        ),
        other => format!("function {key} could not start: {other}"),
    }
}

/// A call's place in its pool's queue ([`Pool::acquire`]); leaving it (or dropping it while
/// still queued) wakes the calls behind, one of which is now the oldest.
struct Ticket<'a> {
    pool: &'a Pool,
    id: Option<u64>,
}

impl Ticket<'_> {
    /// Takes this call out of the queue (`inner` is the pool's, locked).
    fn leave(&mut self, inner: &mut Inner) {
        if let Some(id) = self.id.take() {
            inner.queue.retain(|t| *t != id);
            self.pool.changed.notify_waiters();
        }
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if self.id.is_some() {
            let pool = self.pool;
            let mut inner = pool.lock();
            self.leave(&mut inner);
        }
    }
}

impl Evictable for Pool {
    fn evict_idle(&self) -> bool {
        Pool::evict_idle(self)
    }
}

/// One running instance of a pool ([`Pool::instances`]).
#[derive(Debug, Clone)]
pub struct InstanceStats {
    /// The instance's id, as the driver named it.
    pub id: String,
    /// When it was started.
    pub started: time::OffsetDateTime,
    /// Calls it has served (ended) so far.
    pub calls: u64,
    /// Calls it serves now.
    pub in_flight: usize,
}

/// What a function's pool has now (the API shows it with the function).
#[derive(Debug, Clone, Copy, serde::Serialize, utoipa::ToSchema)]
pub struct PoolStats {
    /// Instances running.
    pub instances: usize,
    /// Instances being started.
    pub starting: usize,
    /// Calls the instances are serving now.
    pub busy_calls: usize,
    /// Instances serving no call now.
    pub idle: usize,
    /// Calls waiting for an instance.
    pub waiting: usize,
}

#[cfg(test)]
#[path = "pool_tests.rs"]
mod tests;
