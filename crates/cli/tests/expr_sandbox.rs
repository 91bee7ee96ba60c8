//! The expression sandbox against the real `faasbox expr-worker` processes: results, each
//! bound (CPU time, memory, stack, output) ending only the job that went past it with a
//! message naming the bound, cancel killing the worker, workers replaced afterwards, and the
//! cost of one evaluation.

mod support;

use std::time::{Duration, Instant};

use faasbox_expr::sandbox::{EvalError, Evaluator, Limits, WorkerCommand};
use serde_json::{json, Value};
use support::FAASBOX;
use tokio_util::sync::CancellationToken;

fn evaluator(limits: Limits) -> Evaluator {
    Evaluator::sandboxed(
        WorkerCommand {
            program: FAASBOX.into(),
            args: vec!["expr-worker".into()],
        },
        limits,
    )
}

fn small_limits() -> Limits {
    Limits {
        cpu_time: Duration::from_secs(1),
        memory: 128 * 1024 * 1024,
        max_output: 64 * 1024,
        workers: 2,
    }
}

/// The `faasbox expr-worker` processes that are children of this test process.
fn workers() -> Vec<u32> {
    support::expr_workers(std::process::id())
}

fn expr_error(result: Result<Value, EvalError>) -> String {
    match result {
        Err(EvalError::Expr(e)) => e.0,
        other => panic!("expected an expression error, got {other:?}"),
    }
}

#[tokio::test]
async fn results_and_errors_come_back_and_the_environment_is_empty() {
    let ev = evaluator(small_limits());
    let none = CancellationToken::new();
    let data = json!({"x": 1, "list": [3, 1, 2], "name": "Ada"});
    let template = json!({"a": "jq(.x + 1)", "sorted": "jq(.list | sort)", "hi": "hi jq(.name)!"});
    assert_eq!(
        ev.render(&template, &data, &none).await.unwrap(),
        json!({"a": 2, "sorted": [1, 2, 3], "hi": "hi Ada!"})
    );
    assert_eq!(
        ev.evaluate(&json!(".list | length"), &data, &none)
            .await
            .unwrap(),
        json!(3)
    );
    // Plain paths are resolved in place.
    assert_eq!(
        ev.render(&json!("jq(.name)"), &data, &none).await.unwrap(),
        json!("Ada")
    );
    let err = expr_error(ev.evaluate(&json!(".list[]"), &data, &none).await);
    assert!(err.contains("more than one result"), "{err}");
    let err = expr_error(ev.evaluate(&json!("error(\"boom\")"), &data, &none).await);
    assert!(err.contains("boom"), "{err}");
    // The worker runs with an empty environment: nothing of the server's leaks through `env`.
    assert_eq!(
        ev.evaluate(&json!("env"), &data, &none).await.unwrap(),
        json!({})
    );
}

#[tokio::test]
async fn runaway_expressions_end_at_their_bound_and_the_next_job_runs() {
    let ev = evaluator(small_limits());
    let none = CancellationToken::new();
    let cases = [
        ("def f: f; f", "CPU time bound of 1s"),
        ("until(false; .)", "CPU time bound of 1s"),
        ("last(range(1e12))", "CPU time bound of 1s"),
        ("[range(1e12)] | length", "bound"),
        ("\"x\" * 1000000000", "memory bound of 128 MiB"),
        ("def f: 1 + f; f", "recursed too deeply"),
        ("[range(100000)]", "output bound of 64 KiB"),
    ];
    for (expr, bound) in cases {
        let started = Instant::now();
        let err = expr_error(ev.evaluate(&json!(expr), &json!({}), &none).await);
        assert!(err.contains(bound), "{expr}: {err}");
        assert!(
            err.contains(expr) || err.contains("output bound"),
            "{expr}: {err}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{expr} took {:?}",
            started.elapsed()
        );
        // The pool carries on with a fresh worker.
        assert_eq!(
            ev.evaluate(&json!(".a"), &json!({"a": [1]}), &none)
                .await
                .unwrap(),
            json!([1])
        );
        assert_eq!(
            ev.evaluate(&json!("1 + 1"), &json!({}), &none)
                .await
                .unwrap(),
            json!(2)
        );
    }
    assert!(workers().len() <= 2, "at most two workers: {:?}", workers());
}

#[tokio::test]
async fn cancel_stops_the_job_and_kills_its_worker() {
    let ev = evaluator(Limits {
        cpu_time: Duration::from_secs(60),
        ..small_limits()
    });
    let none = CancellationToken::new();
    ev.warm_up().await.unwrap();
    let before = workers();
    assert_eq!(before.len(), 1, "{before:?}");
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.cancel();
    });
    let started = Instant::now();
    let result = ev
        .evaluate(&json!("def f: f; f"), &json!({}), &cancel)
        .await;
    assert_eq!(result, Err(EvalError::Cancelled));
    assert!(started.elapsed() < Duration::from_secs(5));
    // Its worker is gone (killed, and reaped); a new one answers the next job.
    let deadline = Instant::now() + Duration::from_secs(10);
    while workers().contains(&before[0]) {
        assert!(Instant::now() < deadline, "the cancelled worker still runs");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        ev.evaluate(&json!("1 + 2"), &json!({}), &none)
            .await
            .unwrap(),
        json!(3)
    );
    // A job whose future is dropped (a state that stopped waiting) kills its worker too.
    let busy = workers();
    let dropped = tokio::time::timeout(
        Duration::from_millis(300),
        ev.evaluate(&json!("def f: f; f"), &json!({}), &none),
    )
    .await;
    assert!(dropped.is_err());
    let deadline = Instant::now() + Duration::from_secs(10);
    while workers().len() > busy.len() || workers().iter().any(|p| !busy.contains(p)) {
        assert!(
            Instant::now() < deadline,
            "the abandoned worker still runs: {:?}",
            workers()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn jobs_beyond_the_workers_wait_and_then_run() {
    let ev = evaluator(small_limits());
    let none = CancellationToken::new();
    let (looping, empty) = (json!("def f: f; f"), json!({}));
    let runaway = || ev.evaluate(&looping, &empty, &none);
    let quick = async {
        // Starts while both workers are busy with runaways.
        tokio::time::sleep(Duration::from_millis(200)).await;
        ev.evaluate(&json!("[1, 2] | add"), &json!({}), &none).await
    };
    let (a, b, c) = tokio::join!(runaway(), runaway(), quick);
    assert!(expr_error(a).contains("CPU time"));
    assert!(expr_error(b).contains("CPU time"));
    assert_eq!(c.unwrap(), json!(3));
}

/// What one evaluation costs (printed; asserted only loosely, the machine is shared).
#[tokio::test]
async fn an_evaluation_costs_little() {
    let ev = evaluator(Limits::default());
    let none = CancellationToken::new();
    ev.warm_up().await.unwrap();
    let data = json!({"input": {"name": "Ada", "items": [1, 2, 3]}, "secrets": {"t": "x"}});
    let jq_template = json!({"n": "jq(.input.items | length)", "auth": "Bearer jq(.secrets.t)"});
    let path_template = json!({"name": "jq(.input.name)", "auth": "Bearer jq(.secrets.t)"});
    ev.render(&jq_template, &data, &none).await.unwrap();
    for (what, template) in [("jq", &jq_template), ("plain paths", &path_template)] {
        let rounds = 500;
        let started = Instant::now();
        for _ in 0..rounds {
            ev.render(template, &data, &none).await.unwrap();
        }
        let each = started.elapsed() / rounds;
        println!("{what}: {each:?} per evaluation");
        assert!(each < Duration::from_millis(50), "{what}: {each:?}");
    }
}
