//! Fast tests of the pool against the fake driver (no root, no containers): scale-up to `max`,
//! per-instance concurrency, the first-come-first-served queue and its limits, scale to zero,
//! `min` kept warm, idle eviction, broken instances replaced, retirement on redeploy.
//!
//! A lease is a call in flight; the pool never talks to the agent itself, so the stand-ins
//! only need to start and stop.

use std::sync::Arc;
use std::time::Duration;

use faasbox_driver::fake::{self, FakeBehaviour, FakeDriver};
use faasbox_driver::Driver;
use futures_util::FutureExt;
use tokio::task::JoinHandle;

use super::{AcquireError, Lease, Pool, PoolRules};
use crate::failure::{codes, FailureKind};
use crate::test_support::WAIT;

fn rules(min: usize, max: usize, concurrency: usize, queue_limit: usize) -> PoolRules {
    PoolRules {
        min,
        max,
        concurrency,
        idle_timeout: Duration::from_secs(3600),
        queue_limit,
        queue_timeout: Duration::from_secs(60),
    }
}

fn pool_with(rules: PoolRules) -> (Arc<Pool>, Arc<FakeDriver>) {
    pool_on(rules, FakeDriver::new(FakeBehaviour::echo()).unwrap())
}

/// A pool on `driver` (for the tests run once with agents on TCP).
fn pool_on(rules: PoolRules, driver: FakeDriver) -> (Arc<Pool>, Arc<FakeDriver>) {
    let driver = Arc::new(driver);
    let dyn_driver: Arc<dyn Driver> = driver.clone();
    let pool = Pool::new(
        "ns/fn".into(),
        rules,
        Box::new(|| Ok(fake::spec("ns/fn"))),
        dyn_driver,
        None,
    );
    (pool, driver)
}

async fn acquire(pool: &Arc<Pool>) -> Lease {
    match pool.acquire().await {
        Ok(lease) => lease,
        Err(e) => panic!("acquire failed: {e:?}"),
    }
}

fn spawn_acquire(pool: &Arc<Pool>) -> JoinHandle<Result<Lease, AcquireError>> {
    let pool = pool.clone();
    tokio::spawn(async move { pool.acquire().await })
}

/// Waits until the pool's statistics satisfy `condition`.
async fn wait_stats(pool: &Pool, what: &str, condition: impl Fn(&super::PoolStats) -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let stats = pool.stats();
        if condition(&stats) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited {WAIT:?} for {what}, in vain; last stats: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn instance_of(lease: &Lease) -> String {
    lease.running.instance.id.clone()
}

#[tokio::test]
async fn calls_share_instances_up_to_concurrency_and_scale_up_to_max() {
    share_and_scale(pool_with(rules(0, 2, 2, 1))).await;
}

#[tokio::test]
async fn over_tcp_calls_share_instances_up_to_concurrency_and_scale_up_to_max() {
    let driver = FakeDriver::over_tcp(FakeBehaviour::echo()).unwrap();
    share_and_scale(pool_on(rules(0, 2, 2, 1), driver)).await;
}

async fn share_and_scale((pool, driver): (Arc<Pool>, Arc<FakeDriver>)) {
    let mut leases = Vec::new();
    for _ in 0..4 {
        leases.push(acquire(&pool).await);
    }
    let record = driver.record();
    assert_eq!(record.started.len(), 2, "two instances for four calls");
    for id in &record.started {
        let calls = leases.iter().filter(|l| &instance_of(l) == id).count();
        assert_eq!(calls, 2, "instance {id} carries two calls");
    }
    let stats = pool.stats();
    assert_eq!((stats.instances, stats.busy_calls), (2, 4));

    // Every instance is full: the fifth call waits, the sixth finds the queue (1) full.
    let fifth = spawn_acquire(&pool);
    wait_stats(&pool, "the fifth call queued", |s| s.waiting == 1).await;
    match pool.acquire().await {
        Err(AcquireError::Failed(e)) => {
            assert_eq!(e.kind, FailureKind::Unavailable);
            assert_eq!(e.code, codes::QUEUE_FULL);
            assert!(e.message.contains("is busy"), "{}", e.message);
        }
        Err(other) => panic!("expected a full queue, got {other:?}"),
        Ok(_) => panic!("expected a full queue, got a lease"),
    }

    // A call ends: the waiting one takes its place on that instance, nothing new starts.
    let ended = leases.pop().unwrap();
    let freed = instance_of(&ended);
    ended.release(false);
    let lease = tokio::time::timeout(WAIT, fifth)
        .await
        .expect("the queued call got an instance")
        .unwrap()
        .unwrap();
    assert_eq!(instance_of(&lease), freed);
    assert_eq!(driver.record().start_attempts, 2);
    assert_eq!(pool.stats().waiting, 0);
}

#[tokio::test]
async fn waiting_calls_are_served_first_come_first_served() {
    let (pool, _driver) = pool_with(rules(0, 1, 1, 5));
    let busy = acquire(&pool).await;
    let first = spawn_acquire(&pool);
    wait_stats(&pool, "the first call queued", |s| s.waiting == 1).await;
    let second = spawn_acquire(&pool);
    wait_stats(&pool, "the second call queued", |s| s.waiting == 2).await;

    // The instance comes free, and before the waiting calls' tasks ran (this test's runtime
    // has one thread) a new call arrives: it must queue behind them, not take the instance.
    busy.release(false);
    let mut newcomer = Box::pin(pool.acquire());
    assert!(
        (&mut newcomer).now_or_never().is_none(),
        "a new call overtook the waiting ones"
    );
    assert_eq!(pool.stats().waiting, 3);

    let lease = tokio::time::timeout(WAIT, first)
        .await
        .expect("the oldest waiting call got the instance")
        .unwrap()
        .unwrap();
    assert!(!second.is_finished(), "the younger call still waits");
    lease.release(false);
    let lease = tokio::time::timeout(WAIT, second)
        .await
        .expect("the second call got the instance next")
        .unwrap()
        .unwrap();
    lease.release(false);
    let lease = tokio::time::timeout(WAIT, newcomer)
        .await
        .expect("the newcomer got the instance last")
        .unwrap();
    lease.release(false);
    assert_eq!(pool.stats().waiting, 0);
}

#[tokio::test]
async fn a_call_that_waits_past_the_queue_timeout_is_refused_busy() {
    let mut rules = rules(0, 1, 1, 5);
    rules.queue_timeout = Duration::from_millis(100);
    let (pool, _driver) = pool_with(rules);
    let _busy = acquire(&pool).await;
    match pool.acquire().await {
        Err(AcquireError::Failed(e)) => {
            assert_eq!(e.kind, FailureKind::Unavailable);
            assert_eq!(e.code, codes::QUEUE_FULL);
            assert!(e.message.contains("no free instance"), "{}", e.message);
        }
        Err(other) => panic!("expected a queue timeout, got {other:?}"),
        Ok(_) => panic!("expected a queue timeout, got a lease"),
    }
    assert_eq!(pool.stats().waiting, 0, "the refused call left the queue");
}

#[tokio::test]
async fn idle_instances_stop_down_to_zero() {
    let mut rules = rules(0, 2, 1, 5);
    rules.idle_timeout = Duration::ZERO;
    let (pool, driver) = pool_with(rules);
    let a = acquire(&pool).await;
    let b = acquire(&pool).await;
    a.release(false);
    b.release(false);
    pool.maintain();
    assert_eq!(pool.stats().instances, 0);
    driver
        .wait_until(WAIT, "both instances stopped", |r| {
            r.stopped.len() == 2 && r.running().is_empty()
        })
        .await;
}

#[tokio::test]
async fn busy_instances_are_not_stopped_as_idle() {
    let mut rules = rules(0, 1, 1, 5);
    rules.idle_timeout = Duration::ZERO;
    let (pool, driver) = pool_with(rules);
    let lease = acquire(&pool).await;
    pool.maintain();
    assert_eq!(pool.stats().instances, 1, "the busy instance stays");
    lease.release(false);
    pool.maintain();
    assert_eq!(pool.stats().instances, 0);
    driver
        .wait_until(WAIT, "the instance stopped once idle", |r| {
            r.stopped.len() == 1
        })
        .await;
}

#[tokio::test]
async fn min_instances_are_kept_warm_and_extra_idle_ones_evicted() {
    let mut rules = rules(2, 3, 1, 5);
    rules.idle_timeout = Duration::ZERO;
    let (pool, driver) = pool_with(rules);
    pool.maintain();
    driver
        .wait_until(WAIT, "two warm instances", |r| r.started.len() == 2)
        .await;
    wait_stats(&pool, "two warm instances registered", |s| {
        s.instances == 2 && s.starting == 0
    })
    .await;

    // Three calls: the two warm instances and a third one started for the last call.
    let leases = [
        acquire(&pool).await,
        acquire(&pool).await,
        acquire(&pool).await,
    ];
    assert_eq!(driver.record().started.len(), 3);
    for lease in leases {
        lease.release(false);
    }
    pool.maintain();
    assert_eq!(pool.stats().instances, 2, "idle down to min, not below");
    let record = driver
        .wait_until(WAIT, "the extra instance stopped", |r| r.stopped.len() == 1)
        .await;
    assert_eq!(record.running().len(), 2);

    // A namespace that needs the slot may take one more, down to min only.
    assert!(!pool.evict_idle(), "nothing above min to evict");
}

#[tokio::test]
async fn a_broken_instance_is_stopped_and_replaced() {
    let (pool, driver) = pool_with(rules(1, 1, 1, 5));
    pool.maintain();
    wait_stats(&pool, "one warm instance", |s| s.instances == 1).await;
    let lease = acquire(&pool).await;
    let broken = instance_of(&lease);
    lease.release(true);
    let record = driver
        .wait_until(WAIT, "the broken instance stopped", |r| {
            r.stopped.contains(&broken)
        })
        .await;
    assert_eq!(record.started.len(), 1);
    assert_eq!(pool.stats().instances, 0);

    // Upkeep brings the pool back to min, and the next call gets that fresh instance.
    pool.maintain();
    let record = driver
        .wait_until(WAIT, "a replacement started", |r| r.started.len() == 2)
        .await;
    wait_stats(&pool, "the replacement registered", |s| s.instances == 1).await;
    let lease = acquire(&pool).await;
    assert_eq!(instance_of(&lease), record.started[1]);
    assert_eq!(driver.record().start_attempts, 2);

    // A lease dropped without release (its call abandoned) counts as broken too.
    let abandoned = instance_of(&lease);
    drop(lease);
    driver
        .wait_until(WAIT, "the abandoned call's instance stopped", |r| {
            r.stopped.contains(&abandoned)
        })
        .await;
}

#[tokio::test]
async fn a_failed_start_is_a_start_error_and_the_next_call_tries_again() {
    let (pool, driver) = pool_with(rules(0, 1, 1, 5));
    driver
        .behaviour()
        .set_fail_ready(Some("port 8080 never opened"));
    match pool.acquire().await {
        Err(AcquireError::Failed(e)) => {
            assert_eq!(e.kind, FailureKind::FunctionFailed);
            assert_eq!(e.code, codes::FUNCTION_START);
            assert!(e.message.contains("never became ready"), "{}", e.message);
            assert!(
                e.message.contains("port 8080 never opened"),
                "{}",
                e.message
            );
        }
        Err(other) => panic!("expected a start failure, got {other:?}"),
        Ok(_) => panic!("expected a start failure, got a lease"),
    }
    assert_eq!(pool.stats().instances, 0);
    driver.behaviour().set_fail_ready(None);
    let lease = acquire(&pool).await;
    lease.release(false);
    assert_eq!(driver.record().started.len(), 1);
}

#[tokio::test]
async fn retirement_stops_idle_instances_now_busy_ones_after_their_call() {
    let (pool, driver) = pool_with(rules(0, 2, 1, 5));
    let idle = acquire(&pool).await;
    let busy = acquire(&pool).await;
    let (idle_id, busy_id) = (instance_of(&idle), instance_of(&busy));
    idle.release(false);

    pool.retire();
    driver
        .wait_until(WAIT, "the idle instance stopped at retirement", |r| {
            r.stopped.contains(&idle_id)
        })
        .await;
    assert!(
        driver.record().running().contains(&busy_id),
        "the busy instance keeps serving its call"
    );
    assert!(matches!(pool.acquire().await, Err(AcquireError::Retired)));

    busy.release(false);
    driver
        .wait_until(WAIT, "the busy instance stopped once its call ended", |r| {
            r.stopped.contains(&busy_id) && r.running().is_empty()
        })
        .await;
}

#[tokio::test]
async fn retirement_sends_waiting_calls_to_look_again() {
    let (pool, _driver) = pool_with(rules(0, 1, 1, 5));
    let busy = acquire(&pool).await;
    let waiting = spawn_acquire(&pool);
    wait_stats(&pool, "a call queued", |s| s.waiting == 1).await;
    pool.retire();
    let result = tokio::time::timeout(WAIT, waiting)
        .await
        .expect("the waiting call was woken")
        .unwrap();
    assert!(matches!(result, Err(AcquireError::Retired)));
    assert_eq!(pool.stats().waiting, 0);
    busy.release(false);
}

#[tokio::test]
async fn each_instance_says_when_it_started_how_many_calls_it_served_and_if_busy() {
    let (pool, _driver) = pool_with(rules(0, 2, 1, 1));
    assert!(pool.instances().is_empty());
    let first = acquire(&pool).await;
    let second = acquire(&pool).await;
    let listed = pool.instances();
    assert_eq!(listed.len(), 2);
    assert!(
        listed.iter().all(|i| i.in_flight == 1 && i.calls == 0),
        "{listed:?}"
    );
    assert!(listed[0].started <= listed[1].started, "oldest first");
    let (reused, busy) = (instance_of(&first), instance_of(&second));
    first.release(false);
    let again = acquire(&pool).await;
    assert_eq!(instance_of(&again), reused, "the free instance is reused");
    again.release(false);
    let listed = pool.instances();
    let of = |id: &str| {
        let i = listed.iter().find(|i| i.id == id).expect("listed");
        (i.calls, i.in_flight)
    };
    assert_eq!(of(&reused), (2, 0), "two calls served, idle");
    assert_eq!(of(&busy), (0, 1), "busy with its first call");
    second.release(false);
    let now = pool.instances();
    assert!(now.iter().all(|i| i.in_flight == 0), "{now:?}");
    assert_eq!(now.iter().map(|i| i.calls).sum::<u64>(), 3);
}
