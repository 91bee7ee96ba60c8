//! Prometheus metrics (`GET /metrics`): the one registry of the process and the small
//! functions the invoker, the pools, the workflow runner and the events API call to count
//! what happened. Labels are bounded: a namespace, a function (or `global:NAME`, or a flow's
//! implicit `flow:PATH:ID`) and a small fixed set of outcomes; never an invocation or
//! instance id.
//!
//! The registry is process-wide (like the facts it counts: one server per process), so the
//! places that count need no handle threaded through them. Gauges of the pools (instances,
//! calls in flight, calls waiting) are read from the pools at scrape time, so they never drift
//! and a removed function's series go away with it.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry};

use crate::failure::{codes, Failure};

/// The path Prometheus scrapes.
pub const PATH: &str = "/metrics";

/// OpenMetrics text, what `prometheus-client` writes and Prometheus negotiates first.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Call durations, in seconds: from a few milliseconds (a warm call) to the longest timeouts.
const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FunctionLabels {
    namespace: String,
    function: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    namespace: String,
    function: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NamespaceLabels {
    namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FlowLabels {
    namespace: String,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    namespace: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteStatusLabels {
    namespace: String,
    route: String,
    status: String,
}

type DurationFamily = Family<FunctionLabels, Histogram, fn() -> Histogram>;
type RouteDurationFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

struct Metrics {
    registry: Registry,
    invocations: Family<CallLabels, Counter>,
    durations: DurationFamily,
    cold_starts: Family<FunctionLabels, Counter>,
    queued: Family<FunctionLabels, Counter>,
    queue_rejections: Family<FunctionLabels, Counter>,
    instances: Family<FunctionLabels, Gauge>,
    in_flight: Family<FunctionLabels, Gauge>,
    waiting: Family<FunctionLabels, Gauge>,
    flows_started: Family<NamespaceLabels, Counter>,
    flows_finished: Family<FlowLabels, Counter>,
    events_accepted: Family<NamespaceLabels, Counter>,
    log_followers: Gauge,
    spare_containers: Gauge,
    live_log_reads: Counter,
    route_requests: Family<RouteStatusLabels, Counter>,
    route_durations: RouteDurationFamily,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("faasbox");
        let r = &mut registry;
        let build_info: Family<VersionLabels, Gauge> = registered(
            r,
            "build_info",
            "The faasbox server's version (always 1)",
            Family::default(),
        );
        build_info
            .get_or_create(&VersionLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        Metrics {
            invocations: registered(
                r,
                "invocations",
                "Function calls that ended, by outcome: ok, error (the function's own error \
                 code), crash, timeout, oom, cancelled, or rejected (the call never reached the \
                 function: queue full, image pull, secrets, instance start)",
                Family::default(),
            ),
            durations: registered(
                r,
                "invocation_duration_seconds",
                "How long function calls took, from being accepted to their end (queueing and \
                 cold starts included)",
                Family::new_with_constructor(|| Histogram::new(DURATION_BUCKETS)),
            ),
            cold_starts: registered(
                r,
                "cold_starts",
                "Instances started because a call found no free warm one",
                Family::default(),
            ),
            queued: registered(
                r,
                "queued_calls",
                "Calls that had to wait in the function's queue for a free instance",
                Family::default(),
            ),
            queue_rejections: registered(
                r,
                "queue_rejections",
                "Calls refused because the function's queue was full or the wait for an \
                 instance timed out (faasbox.function.queue_full)",
                Family::default(),
            ),
            instances: registered(
                r,
                "instances",
                "Instances of the function running now",
                Family::default(),
            ),
            in_flight: registered(
                r,
                "calls_in_flight",
                "Calls the function's instances are handling now",
                Family::default(),
            ),
            waiting: registered(
                r,
                "calls_waiting",
                "Calls waiting in the function's queue now",
                Family::default(),
            ),
            flows_started: registered(
                r,
                "flow_instances_started",
                "Workflow instances created (run, event start, cron slot, subflow)",
                Family::default(),
            ),
            flows_finished: registered(
                r,
                "flow_instances_finished",
                "Workflow instances that ended, by status: complete, failed or cancelled",
                Family::default(),
            ),
            events_accepted: registered(
                r,
                "events_accepted",
                "CloudEvents accepted into a namespace through the API (duplicates not counted)",
                Family::default(),
            ),
            spare_containers: registered(
                r,
                "spare_containers",
                "Containers created ahead of demand (stem cells, `--spare-containers`) ready to \
                 be claimed by the next start of their image and settings",
                Gauge::default(),
            ),
            log_followers: registered(
                r,
                "log_followers",
                "Clients following function logs live now (`logs?follow=true`)",
                Gauge::default(),
            ),
            live_log_reads: registered(
                r,
                "live_log_reads",
                "Reads of a running call's log lines from its agent, made for followers \
                 (none while nobody follows)",
                Counter::default(),
            ),
            route_requests: registered(
                r,
                "route_requests",
                "Requests an HTTP route answered, by status (refusals included: 401, 413, \
                 429; not the requests no route matched)",
                Family::default(),
            ),
            route_durations: registered(
                r,
                "route_request_seconds",
                "How long HTTP routes took to answer, from the request to the answer",
                Family::new_with_constructor(|| Histogram::new(DURATION_BUCKETS)),
            ),
            registry,
        }
    }
}

/// Registers `metric` under `name` and gives back a handle to it (metrics share their values
/// with their clones).
fn registered<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

/// How a call ended, as the `outcome` label says it.
pub fn outcome_of<T>(result: &Result<T, Failure>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(e) => match (e.code.as_str(), e.catchable) {
            (codes::FUNCTION_TIMEOUT, _) => "timeout",
            (codes::FUNCTION_CANCELLED, _) => "cancelled",
            (codes::FUNCTION_OOM, _) => "oom",
            (
                codes::QUEUE_FULL
                | codes::FUNCTION_START
                | crate::quota::INSTANCES
                | crate::bodies::BUDGET_EXHAUSTED,
                _,
            ) => "rejected",
            (_, Some(true)) => "error",
            (_, Some(false)) => "crash",
            (_, None) => "rejected",
        },
    }
}

/// A call of `function` (as named in its invocation record) in `namespace` ended.
pub fn call_ended(namespace: &str, function: &str, outcome: &'static str, took: Duration) {
    let labels = FunctionLabels {
        namespace: namespace.to_string(),
        function: function.to_string(),
    };
    METRICS
        .durations
        .get_or_create(&labels)
        .observe(took.as_secs_f64());
    METRICS
        .invocations
        .get_or_create(&CallLabels {
            namespace: labels.namespace,
            function: labels.function,
            outcome,
        })
        .inc();
}

/// A request through route `route` of `namespace` was answered with `status`.
pub fn route_answered(namespace: &str, route: &str, status: u16, took: Duration) {
    let labels = RouteLabels {
        namespace: namespace.to_string(),
        route: route.to_string(),
    };
    METRICS
        .route_durations
        .get_or_create(&labels)
        .observe(took.as_secs_f64());
    METRICS
        .route_requests
        .get_or_create(&RouteStatusLabels {
            namespace: labels.namespace,
            route: labels.route,
            status: status.to_string(),
        })
        .inc();
}

/// The pool `pool_key` ("namespace/function") started an instance for a waiting call.
pub fn cold_start(pool_key: &str) {
    METRICS
        .cold_starts
        .get_or_create(&pool_labels(pool_key))
        .inc();
}

/// A call of pool `pool_key` joined its queue.
pub fn call_queued(pool_key: &str) {
    METRICS.queued.get_or_create(&pool_labels(pool_key)).inc();
}

/// A call of pool `pool_key` was refused: queue full, or no instance within the queue timeout.
pub fn queue_rejected(pool_key: &str) {
    METRICS
        .queue_rejections
        .get_or_create(&pool_labels(pool_key))
        .inc();
}

/// A workflow instance was created in `namespace`.
pub fn flow_started(namespace: &str) {
    METRICS
        .flows_started
        .get_or_create(&namespace_labels(namespace))
        .inc();
}

/// A workflow instance of `namespace` ended with `status` (complete, failed, cancelled).
pub fn flow_finished(namespace: &str, status: &'static str) {
    METRICS
        .flows_finished
        .get_or_create(&FlowLabels {
            namespace: namespace.to_string(),
            status,
        })
        .inc();
}

/// An event was accepted into `namespace`.
pub fn event_accepted(namespace: &str) {
    METRICS
        .events_accepted
        .get_or_create(&namespace_labels(namespace))
        .inc();
}

fn namespace_labels(namespace: &str) -> NamespaceLabels {
    NamespaceLabels {
        namespace: namespace.to_string(),
    }
}

/// A pool's key is "namespace/function" (`*global/NAME` for a global service); the function
/// part of a flow's implicit function may hold more slashes (the flow's path).
fn pool_labels(pool_key: &str) -> FunctionLabels {
    let (namespace, function) = pool_key.split_once('/').unwrap_or(("", pool_key));
    FunctionLabels {
        namespace: namespace.to_string(),
        function: function.to_string(),
    }
}

/// What a pool has now, read at scrape time for its gauges.
pub struct PoolGauges {
    /// The pool's key, "namespace/function".
    pub key: String,
    /// Instances running.
    pub instances: usize,
    /// Calls the instances are serving now.
    pub busy_calls: usize,
    /// Calls waiting for an instance.
    pub waiting: usize,
}

/// How many clients follow function logs live now.
pub fn log_followers(followers: usize) {
    METRICS
        .log_followers
        .set(i64::try_from(followers).unwrap_or(i64::MAX));
}

/// A running call's log lines were read from its agent for its followers.
pub fn live_log_read() {
    METRICS.live_log_reads.inc();
}

/// Where the pools' gauges are read from at each scrape (the functions in service), so this
/// module knows neither the state nor the pools.
pub trait PoolStatistics {
    /// Each pool's gauges, read now.
    fn pool_gauges(&self) -> Vec<PoolGauges>;
    /// Containers the driver created ahead of demand, ready now.
    fn spare_containers(&self) -> usize {
        0
    }
}

/// The exposition: the pools' gauges (read now), then every metric as OpenMetrics text.
pub fn render(pools: &dyn PoolStatistics) -> Result<String, std::fmt::Error> {
    let m = &*METRICS;
    m.instances.clear();
    m.in_flight.clear();
    m.waiting.clear();
    for stats in pools.pool_gauges() {
        let labels = pool_labels(&stats.key);
        m.instances
            .get_or_create(&labels)
            .set(i64::try_from(stats.instances).unwrap_or(i64::MAX));
        m.in_flight
            .get_or_create(&labels)
            .set(i64::try_from(stats.busy_calls).unwrap_or(i64::MAX));
        m.waiting
            .get_or_create(&labels)
            .set(i64::try_from(stats.waiting).unwrap_or(i64::MAX));
    }
    m.spare_containers
        .set(i64::try_from(pools.spare_containers()).unwrap_or(i64::MAX));
    let mut text = String::new();
    encode(&mut text, &m.registry)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::FailureKind;

    #[test]
    fn outcomes_are_a_small_fixed_set() {
        let function_error = |code: &str, catchable| {
            let mut e = Failure::new(FailureKind::FunctionFailed, "x", "m");
            e.code = code.to_string();
            e.catchable = catchable;
            Err::<(), _>(e)
        };
        assert_eq!(outcome_of(&Ok::<(), Failure>(())), "ok");
        assert_eq!(
            outcome_of(&function_error("myapp.input", Some(true))),
            "error"
        );
        assert_eq!(
            outcome_of(&function_error(codes::FUNCTION_CRASHED, Some(false))),
            "crash"
        );
        assert_eq!(
            outcome_of(&function_error(codes::FUNCTION_TIMEOUT, Some(true))),
            "timeout"
        );
        assert_eq!(
            outcome_of(&function_error(codes::QUEUE_FULL, Some(true))),
            "rejected"
        );
        assert_eq!(
            outcome_of(&function_error("faasbox.secret.missing", None)),
            "rejected"
        );
    }

    #[test]
    fn pool_keys_become_namespace_and_function() {
        let l = pool_labels("demo/flow:dir/hello:fn1");
        assert_eq!(
            (l.namespace.as_str(), l.function.as_str()),
            ("demo", "flow:dir/hello:fn1")
        );
        let l = pool_labels("*global/resize");
        assert_eq!(
            (l.namespace.as_str(), l.function.as_str()),
            ("*global", "resize")
        );
    }
}
