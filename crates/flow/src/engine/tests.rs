//! The engine over in-memory effects: every state type, catch, retries, timeouts, cancel,
//! secrets kept out of data, checkpoints and resuming.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::model::{FunctionKind, VarScope};

type Behaviour = Box<dyn Fn(&Value, u32) -> Result<Value, FlowError> + Send + Sync>;

#[derive(Default)]
struct Memory {
    functions: HashMap<String, Behaviour>,
    calls: Mutex<Vec<(String, Value)>>,
    keys: Mutex<Vec<String>>,
    vars: Mutex<HashMap<(VarScope, String), Value>>,
    saves: Mutex<Vec<Checkpoint>>,
    logs: Mutex<Vec<String>>,
    metadata: Mutex<Vec<Value>>,
    events: Mutex<Vec<(Value, Option<Duration>)>>,
    /// What `event_watermark` answers.
    watermark: Option<i64>,
    cancelled_calls: Mutex<u32>,
}

#[async_trait]
impl Effects for Memory {
    async fn call(&self, _: &InstanceRef, call: FunctionCall<'_>) -> Result<Value, FlowError> {
        let name = match &call.function.kind {
            FunctionKind::Workflow { image, .. } => image.clone(),
            FunctionKind::Namespace { service } | FunctionKind::Global { service } => {
                service.clone()
            }
            FunctionKind::Subflow { workflow } => workflow.clone(),
        };
        self.calls
            .lock()
            .unwrap()
            .push((name.clone(), call.input.clone()));
        self.keys.lock().unwrap().push(call.key());
        if name == "slow" {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
                _ = call.cancel.cancelled() => {
                    *self.cancelled_calls.lock().unwrap() += 1;
                    return Err(FlowError::crash("cancelled"));
                }
            }
        }
        let f = self.functions.get(&name).expect("unknown test function");
        f(&call.input, call.attempt)
    }
    async fn secrets(
        &self,
        _: &InstanceRef,
        names: &[String],
    ) -> Result<Vec<(String, String)>, FlowError> {
        Ok(names
            .iter()
            .map(|n| (n.clone(), format!("s3cret-{n}")))
            .collect())
    }
    async fn get_var(
        &self,
        _: &InstanceRef,
        scope: VarScope,
        key: &str,
    ) -> Result<Option<Value>, FlowError> {
        Ok(self
            .vars
            .lock()
            .unwrap()
            .get(&(scope, key.to_string()))
            .cloned())
    }
    async fn set_var(
        &self,
        _: &InstanceRef,
        scope: VarScope,
        key: &str,
        value: Option<Value>,
    ) -> Result<(), FlowError> {
        let mut vars = self.vars.lock().unwrap();
        match value {
            Some(v) => vars.insert((scope, key.to_string()), v),
            None => vars.remove(&(scope, key.to_string())),
        };
        Ok(())
    }
    async fn save(&self, _: &InstanceRef, cp: &Checkpoint) -> Result<(), FlowError> {
        self.saves.lock().unwrap().push(cp.clone());
        Ok(())
    }
    async fn log(&self, _: &InstanceRef, message: String) {
        self.logs.lock().unwrap().push(message);
    }
    async fn set_metadata(&self, _: &InstanceRef, metadata: Value) -> Result<(), FlowError> {
        self.metadata.lock().unwrap().push(metadata);
        Ok(())
    }
    async fn generate_event(
        &self,
        _: &InstanceRef,
        event: Value,
        delay: Option<Duration>,
    ) -> Result<(), FlowError> {
        self.events.lock().unwrap().push((event, delay));
        Ok(())
    }
    async fn event_watermark(&self) -> Result<Option<i64>, FlowError> {
        Ok(self.watermark)
    }
}

fn memory() -> Memory {
    let mut m = Memory::default();
    let f = |name: &str, b: Behaviour, m: &mut Memory| {
        m.functions.insert(name.to_string(), b);
    };
    f("echo", Box::new(|input, _| Ok(input.clone())), &mut m);
    f(
        "double",
        Box::new(|input, _| Ok(json!(input["n"].as_i64().unwrap_or(0) * 2))),
        &mut m,
    );
    f(
        "fails",
        Box::new(|_, _| Err(FlowError::catchable("app.broken", "it broke"))),
        &mut m,
    );
    f(
        "crashes",
        Box::new(|_, _| Err(FlowError::crash("boom"))),
        &mut m,
    );
    f(
        "flaky",
        Box::new(|_, attempt| {
            if attempt < 3 {
                Err(FlowError::catchable("app.flaky", "not yet"))
            } else {
                Ok(json!("finally"))
            }
        }),
        &mut m,
    );
    m
}

fn inst() -> InstanceRef {
    InstanceRef {
        id: "i1".into(),
        namespace: "demo".into(),
        flow: "f".into(),
    }
}

const FUNCTIONS: &str = r#"direktiv_api: workflow/v1
functions:
- {id: echo, type: knative-workflow, image: echo}
- {id: double, type: knative-namespace, service: double}
- {id: fails, type: knative-workflow, image: fails}
- {id: crashes, type: knative-workflow, image: crashes}
- {id: flaky, type: knative-workflow, image: flaky}
- {id: slow, type: knative-workflow, image: slow}
- {id: child, type: subflow, workflow: echo}
"#;

async fn run_with(m: Arc<Memory>, states: &str, input: Value) -> Outcome {
    let flow =
        Arc::new(crate::load(&format!("{FUNCTIONS}{states}")).unwrap_or_else(|p| panic!("{p:#?}")));
    let engine = Engine::new(m, Evaluator::in_process());
    let cp = Checkpoint::start(flow.first_state(), input, 0);
    engine
        .run(&inst(), &flow, cp, &CancellationToken::new())
        .await
}

async fn run(states: &str, input: Value) -> (Outcome, Arc<Memory>) {
    let m = Arc::new(memory());
    (run_with(m.clone(), states, input).await, m)
}

#[tokio::test]
async fn metadata_is_set_as_each_state_starts_and_a_bad_one_is_caught() {
    let (out, m) = run(
        r#"states:
- id: a
  type: noop
  metadata: {stage: one, order: 'jq(.order)'}
  transform: {order: 'jq(.order + 1)'}
  transition: b
- id: b
  type: noop
  metadata: 'jq(.order)'
  transition: c
- id: c
  type: noop
  metadata: 'jq(.order | error("no"))'
  catch: [{error: 'direktiv.jq.*', transition: d}]
- id: d
  type: noop
  transform: {caught: 'jq(.error.code)'}
"#,
        json!({"order": 7}),
    )
    .await;
    assert!(
        matches!(out, Outcome::Completed(ref v) if v["caught"] == codes::BAD_COMMAND),
        "{out:?}"
    );
    assert_eq!(
        *m.metadata.lock().unwrap(),
        [json!({"stage": "one", "order": 7}), json!(8)],
        "set when each state starts, from the data it starts with"
    );
}

#[tokio::test]
async fn action_result_lands_at_return_and_secrets_stay_out() {
    let (out, m) = run(
        r#"states:
- id: a
  type: action
  action:
    function: echo
    secrets: [token]
    input: {auth: "bearer jq(.secrets.token)", who: "jq(.name)"}
  transform: {got: "jq(.return)", name: "jq(.name)"}
"#,
        json!({"name": "x"}),
    )
    .await;
    assert_eq!(
        out,
        Outcome::Completed(
            json!({"got": {"auth": "bearer s3cret-token", "who": "x"}, "name": "x"})
        )
    );
    assert_eq!(m.calls.lock().unwrap()[0].1["auth"], "bearer s3cret-token");
    let saved = serde_json::to_string(&*m.saves.lock().unwrap()).unwrap();
    assert!(
        !saved.contains("s3cret") || saved.contains("bearer s3cret-token"),
        "only the function's own output may hold it"
    );
    let saves = m.saves.lock().unwrap();
    assert!(saves.iter().all(|cp| cp.data.get("secrets").is_none()));
}

#[tokio::test]
async fn catch_by_pattern_puts_the_error_at_dot_error() {
    let (out, _) = run(
        r#"states:
- id: a
  type: action
  action: {function: fails}
  catch:
  - {error: "other.*", transition: wrong}
  - {error: "app.*", transition: handled}
- {id: wrong, type: noop}
- {id: handled, type: noop, transform: {error: "jq(.error)"}}
"#,
        json!({}),
    )
    .await;
    assert_eq!(
        out,
        Outcome::Completed(json!({"error": {"code": "app.broken", "msg": "it broke"}}))
    );
}

#[tokio::test]
async fn uncaught_errors_and_crashes_fail_the_instance() {
    let (out, _) = run(
        "states:\n- {id: a, type: action, action: {function: fails}}\n",
        json!({}),
    )
    .await;
    assert!(
        matches!(out, Outcome::Failed(ref e) if e.code == "app.broken" && e.message == "it broke"),
        "{out:?}"
    );
    let (out, _) = run("states:\n- id: a\n  type: action\n  action: {function: crashes}\n  catch: [{error: '*', transition: b}]\n- {id: b, type: noop}\n", json!({})).await;
    assert!(
        matches!(out, Outcome::Failed(ref e) if e.code == codes::CRASHED && !e.catchable),
        "{out:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn retries_back_off_and_give_up() {
    let (out, m) = run(
        "states:\n- id: a\n  type: action\n  action:\n    function: flaky\n    retries: {max_attempts: 3, delay: PT1S, multiplier: 2, codes: ['app.*']}\n",
        json!({}),
    )
    .await;
    assert_eq!(out, Outcome::Completed(json!({"return": "finally"})));
    assert_eq!(m.calls.lock().unwrap().len(), 3);
    let (out, m) = run(
        "states:\n- id: a\n  type: action\n  action:\n    function: fails\n    retries: {max_attempts: 2, delay: PT1S, codes: ['app.*']}\n",
        json!({}),
    )
    .await;
    assert!(
        matches!(out, Outcome::Failed(ref e) if e.code == codes::RETRIES_EXCEEDED),
        "{out:?}"
    );
    assert_eq!(m.calls.lock().unwrap().len(), 3);
    let (out, m) = run("states:\n- id: a\n  type: action\n  action:\n    function: fails\n    retries: {max_attempts: 2, codes: ['other']}\n", json!({})).await;
    assert!(
        matches!(out, Outcome::Failed(ref e) if e.code == "app.broken"),
        "{out:?}"
    );
    assert_eq!(m.calls.lock().unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_huge_retry_delay_or_multiplier_waits_at_most_a_day() {
    for retries in [
        "{max_attempts: 3, delay: PT1S, multiplier: 1e300, codes: ['app.*']}",
        "{max_attempts: 2, delay: P100000W, codes: ['app.*']}",
    ] {
        let started = tokio::time::Instant::now();
        let flow = format!(
            "states:\n- id: a\n  type: action\n  action:\n    function: fails\n    retries: {retries}\n"
        );
        let (out, m) = run(&flow, json!({})).await;
        assert!(
            matches!(out, Outcome::Failed(ref e) if e.code == codes::RETRIES_EXCEEDED),
            "{retries}: {out:?}"
        );
        assert!(m.calls.lock().unwrap().len() > 1, "{retries}");
        let waited = started.elapsed();
        let attempts = m.calls.lock().unwrap().len() as u32;
        assert!(
            waited <= super::actions::MAX_RETRY_DELAY * attempts,
            "{retries}: waited {waited:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn soft_timeouts_are_catchable_and_hard_ones_are_not() {
    let (out, m) = run(
        "states:\n- id: a\n  type: action\n  timeout: PT2S\n  action: {function: slow}\n  catch: [{error: 'direktiv.cancels.timeout.soft', transition: b}]\n- {id: b, type: noop}\n",
        json!({}),
    )
    .await;
    assert!(
        matches!(out, Outcome::Completed(ref d) if d["error"]["code"] == codes::TIMEOUT_SOFT),
        "{out:?}"
    );
    tokio::task::yield_now().await;
    assert_eq!(
        *m.cancelled_calls.lock().unwrap(),
        1,
        "the running call was cancelled"
    );
    let src = "timeouts: {kill: PT3S}\nstates:\n- id: a\n  type: action\n  action: {function: slow}\n  catch: [{error: '*', transition: b}]\n- {id: b, type: noop}\n";
    let (out, _) = run(src, json!({})).await;
    assert!(
        matches!(out, Outcome::Failed(ref e) if e.code == codes::TIMEOUT_HARD),
        "{out:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn cancel_stops_the_running_action() {
    let m = Arc::new(memory());
    let flow = Arc::new(
        crate::load(&format!(
            "{FUNCTIONS}states:\n- {{id: a, type: action, action: {{function: slow}}}}\n"
        ))
        .unwrap(),
    );
    let engine = Engine::new(m.clone(), Evaluator::in_process());
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        c.cancel();
    });
    let out = engine
        .run(
            &inst(),
            &flow,
            Checkpoint::start(Some("a"), json!({}), 0),
            &cancel,
        )
        .await;
    assert!(
        matches!(out, Outcome::Failed(ref e) if e.code == codes::CANCELLED),
        "{out:?}"
    );
    tokio::task::yield_now().await;
    assert_eq!(*m.cancelled_calls.lock().unwrap(), 1);
}

/// A cancelled delay ends at the cancel, not after the guard's grace period: a parent that
/// stops waiting for its subflow must find the child already ended. Time is the paused
/// test clock, so the comparison is exact.
#[tokio::test(start_paused = true)]
async fn a_cancelled_delay_ends_at_once() {
    let m = Arc::new(memory());
    let flow = Arc::new(crate::load("states:\n- {id: a, type: delay, duration: PT60S}\n").unwrap());
    let engine = Engine::new(m.clone(), Evaluator::in_process());
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        c.cancel();
    });
    let started = tokio::time::Instant::now();
    let out = engine
        .run(
            &inst(),
            &flow,
            Checkpoint::start(Some("a"), json!({}), 0),
            &cancel,
        )
        .await;
    assert!(
        matches!(out, Outcome::Failed(ref e) if e.code == codes::CANCELLED),
        "{out:?}"
    );
    assert_eq!(started.elapsed(), Duration::from_secs(1));
}

#[tokio::test]
async fn switch_foreach_parallel_validate() {
    let states = r#"states:
- id: s
  type: switch
  conditions:
  - {condition: 'jq(.n > 10)', transition: big}
  - {condition: '.n > 1', transition: each}
  defaultTransition: big
- {id: big, type: noop, transform: {size: big}}
- id: each
  type: foreach
  array: 'jq([range(.n) | {n: .}])'
  action: {function: double, input: {n: "jq(.n)"}}
  transition: par
- id: par
  type: parallel
  mode: and
  actions: [{function: double, input: {n: 5}}, {function: echo, input: "x"}]
  transform: {each: "jq(.return)"}
  transition: v
- id: v
  type: validate
  schema: {type: object, required: [each]}
"#;
    let (out, _) = run(states, json!({"n": 3})).await;
    assert_eq!(out, Outcome::Completed(json!({"each": [10, "x"]})));
    let (out, _) = run(
        &states.replace(
            "transform: {each: \"jq(.return)\"}",
            "transform: {first: \"jq(.return)\"}",
        ),
        json!({"n": 3}),
    )
    .await;
    assert!(
        matches!(out, Outcome::Failed(ref e) if e.code == codes::SCHEMA_FAILED),
        "{out:?}"
    );
    let (out, _) = run(states, json!({"n": 30})).await;
    assert_eq!(out, Outcome::Completed(json!({"size": "big"})));
    let each = "states:\n- id: each\n  type: foreach\n  array: '.items'\n  action: {function: double}\n  transform: {r: 'jq(.return)'}\n";
    let (out, _) = run(each, json!({"items": [{"n": 0}, {"n": 1}, {"n": 2}]})).await;
    assert_eq!(out, Outcome::Completed(json!({"r": [0, 2, 4]})));
    let (out, _) = run("states:\n- id: p\n  type: parallel\n  mode: or\n  actions: [{function: fails}, {function: echo, input: {a: 1}}]\n", json!({})).await;
    assert_eq!(out, Outcome::Completed(json!({"return": [null, {"a": 1}]})));
}

#[tokio::test]
async fn variables_in_three_scopes() {
    let (out, m) = run(
        r#"states:
- id: set
  type: setter
  variables:
  - {key: a, scope: namespace, value: 1}
  - {key: b, scope: workflow, value: "jq(.x)"}
  - {key: c, scope: instance, value: {deep: true}}
  transition: get
- id: get
  type: getter
  variables:
  - {key: a, scope: namespace}
  - {key: b, scope: workflow, as: bee}
  - {key: c, scope: instance}
  - {key: none, scope: instance}
"#,
        json!({"x": "y"}),
    )
    .await;
    assert_eq!(
        out,
        Outcome::Completed(
            json!({"x": "y", "var": {"a": 1, "bee": "y", "c": {"deep": true}, "none": null}})
        )
    );
    assert_eq!(m.vars.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn error_state_not_object_and_subflow() {
    let (out, _) = run(
        "states:\n- {id: e, type: error, error: my.code, message: 'bad %s', args: ['jq(.x)']}\n",
        json!({"x": 7}),
    )
    .await;
    assert_eq!(
        out,
        Outcome::Failed(FlowError::catchable("my.code", "bad 7"))
    );
    let (out, _) = run(
        "states:\n- {id: t, type: noop, transform: 'jq(.x)'}\n",
        json!({"x": 7}),
    )
    .await;
    assert!(
        matches!(out, Outcome::Failed(ref e) if e.code == codes::NOT_OBJECT),
        "{out:?}"
    );
    let (out, _) = run(
        "states:\n- {id: t, type: noop, transform: {a: 'jq(.x[])'}}\n",
        json!({"x": [1, 2]}),
    )
    .await;
    assert!(
        matches!(out, Outcome::Failed(ref e) if e.code == codes::BAD_COMMAND),
        "{out:?}"
    );
    let (out, m) = run(
        "states:\n- {id: c, type: action, action: {function: child, input: {q: 1}}}\n",
        json!({}),
    )
    .await;
    assert_eq!(out, Outcome::Completed(json!({"return": {"q": 1}})));
    assert_eq!(m.calls.lock().unwrap()[0].0, "echo");
}

#[tokio::test(start_paused = true)]
async fn a_delay_resumes_from_its_saved_end_and_finished_states_do_not_rerun() {
    let states = "states:\n- {id: a, type: action, action: {function: echo, input: {v: 1}}, transition: d}\n- {id: d, type: delay, duration: PT1H, transition: b}\n- {id: b, type: noop}\n";
    let m = Arc::new(memory());
    let flow = Arc::new(crate::load(&format!("{FUNCTIONS}{states}")).unwrap());
    let engine = Engine::new(m.clone(), Evaluator::in_process());
    let cancel = CancellationToken::new();
    let i = inst();
    let run = engine.run(
        &i,
        &flow,
        Checkpoint::start(flow.first_state(), json!({}), 0),
        &cancel,
    );
    let interrupted = tokio::time::timeout(Duration::from_secs(60), run).await;
    assert!(interrupted.is_err(), "the delay was still running");
    let saved = m.saves.lock().unwrap().last().cloned().unwrap();
    assert_eq!(saved.state.as_deref(), Some("d"));
    assert!(saved.wake_at_ms.is_some());
    assert_eq!(saved.data, json!({"return": {"v": 1}}));
    let before = m.calls.lock().unwrap().len();
    let out = engine.run(&inst(), &flow, saved, &cancel).await;
    assert_eq!(out, Outcome::Completed(json!({"return": {"v": 1}})));
    assert_eq!(
        m.calls.lock().unwrap().len(),
        before,
        "the finished action did not run again"
    );
}

#[tokio::test]
async fn event_states_wait_and_resume() {
    let states = r#"states:
- id: w
  type: eventsXor
  events:
  - event: {type: a, context: {who: "jq(.who)"}}
    transition: got-a
  - event: {type: b}
    transition: got-b
- id: got-a
  type: generateEvent
  delay: PT3S
  event: {type: done, source: flow, data: "jq(.a)"}
- {id: got-b, type: noop}
"#;
    let mut m = memory();
    m.watermark = Some(41);
    let m = Arc::new(m);
    let flow = Arc::new(crate::load(&format!("{FUNCTIONS}{states}")).unwrap());
    let engine = Engine::new(m.clone(), Evaluator::in_process());
    let cancel = CancellationToken::new();
    let out = engine
        .run(
            &inst(),
            &flow,
            Checkpoint::start(flow.first_state(), json!({"who": "me"}), 0),
            &cancel,
        )
        .await;
    let Outcome::Waiting(wait) = out else {
        panic!("{out:?}")
    };
    assert_eq!(wait.mode, WaitMode::Xor);
    assert_eq!(wait.events[0].context["who"], "me");
    assert_eq!(
        wait.watermark,
        Some(41),
        "the wait keeps the mark of its start"
    );
    let saved = m.saves.lock().unwrap().last().cloned().unwrap();
    assert_eq!(saved.wait.as_ref(), Some(&wait));
    let again = engine.run(&inst(), &flow, saved.clone(), &cancel).await;
    assert!(matches!(again, Outcome::Waiting(_)));
    let out = engine
        .resume(
            &inst(),
            &flow,
            saved,
            WaitResolution::Events(vec![(0, json!({"x": 1}))]),
            &cancel,
        )
        .await;
    assert_eq!(out, Outcome::Completed(json!({"who": "me", "a": {"x": 1}})));
    let events = m.events.lock().unwrap();
    assert_eq!(events[0].0["data"], json!({"x": 1}));
    assert_eq!(events[0].1, Some(Duration::from_secs(3)));
}

#[tokio::test]
async fn an_async_action_does_not_wait_and_leaves_the_data() {
    let (out, m) = run(
        "states:\n- {id: a, type: action, async: true, action: {function: echo, input: {x: 1}}}\n",
        json!({"keep": true}),
    )
    .await;
    assert_eq!(out, Outcome::Completed(json!({"keep": true})));
    for _ in 0..100 {
        if !m.calls.lock().unwrap().is_empty() {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(
        m.calls.lock().unwrap()[0].1,
        json!({"x": 1}),
        "the call still ran"
    );
}

#[tokio::test(start_paused = true)]
async fn call_keys_name_each_call_and_repeat_when_resumed() {
    let states = "states:
- {id: a, type: action, action: {function: echo}, transition: each}
- {id: each, type: foreach, array: 'jq([1, 2, 3])', action: {function: echo}, transition: both}
- {id: both, type: parallel, mode: and, actions: [{function: echo}, {function: echo}], transition: again}
- id: again
  type: action
  action: {function: flaky, retries: {max_attempts: 3, delay: PT1S, codes: ['app.*']}}
  transition: a2
- {id: a2, type: switch, conditions: [{condition: 'jq(.loop != true)', transition: a, transform: {loop: true}}]}
";
    let (out, m) = run(states, json!({})).await;
    assert!(matches!(out, Outcome::Completed(_)), "{out:?}");
    let mut keys = m.keys.lock().unwrap().clone();
    assert_eq!(
        keys[..9],
        [
            "0/a/0/1",
            "1/each/0/1",
            "1/each/1/1",
            "1/each/2/1",
            "2/both/0/1",
            "2/both/1/1",
            "3/again/0/1",
            "3/again/0/2",
            "3/again/0/3",
        ]
    );
    // The second lap through the same states (after the switch) gets keys of its own.
    assert_eq!(keys[9], "5/a/0/1");
    let calls = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), calls, "every call has its own key");

    // Resumed from the checkpoint saved before `each`, the same calls get the same keys.
    let saved = m
        .saves
        .lock()
        .unwrap()
        .iter()
        .find(|cp| cp.state.as_deref() == Some("each"))
        .cloned()
        .unwrap();
    let again = Arc::new(memory());
    let flow = Arc::new(crate::load(&format!("{FUNCTIONS}{states}")).unwrap());
    Engine::new(again.clone(), Evaluator::in_process())
        .run(&inst(), &flow, saved, &CancellationToken::new())
        .await;
    let resumed = again.keys.lock().unwrap().clone();
    assert_eq!(resumed[..3], ["1/each/0/1", "1/each/1/1", "1/each/2/1"]);
}

async fn run_limited(
    states: &str,
    limits: Limits,
    cp: Option<Checkpoint>,
) -> (Outcome, Arc<Memory>) {
    let m = Arc::new(memory());
    let flow = Arc::new(crate::load(states).unwrap_or_else(|p| panic!("{p:#?}")));
    let cp = cp.unwrap_or_else(|| Checkpoint::start(flow.first_state(), json!({}), 0));
    let out = Engine::new(m.clone(), Evaluator::in_process())
        .with_limits(limits)
        .run(&inst(), &flow, cp, &CancellationToken::new())
        .await;
    (out, m)
}

#[tokio::test]
async fn an_endless_loop_ends_at_the_transition_bound_also_after_a_restart() {
    let looping =
        "states:\n- {id: a, type: noop, transition: b}\n- {id: b, type: noop, transition: a}\n";
    let limits = Limits {
        max_transitions: 50,
        ..Limits::default()
    };
    let (out, m) = run_limited(looping, limits, None).await;
    let Outcome::Failed(e) = out else {
        panic!("{out:?}")
    };
    assert_eq!(e.code, codes::TOO_MANY_TRANSITIONS);
    assert!(!e.catchable);
    assert!(e.message.contains("at most 50"), "{}", e.message);
    assert_eq!(m.saves.lock().unwrap().last().unwrap().step, 50);
    // A loop that catches its own failure counts each caught state too.
    let catching = format!(
        "{FUNCTIONS}states:\n- id: a\n  type: action\n  action: {{function: fails}}\n  catch: [{{error: '*', transition: a}}]\n"
    );
    let (out, _) = run_limited(&catching, limits, None).await;
    assert!(
        matches!(out, Outcome::Failed(ref e) if e.code == codes::TOO_MANY_TRANSITIONS),
        "{out:?}"
    );
    // An instance resumed with its count used up does not run another state.
    let mut cp = Checkpoint::start(Some("a"), json!({}), 0);
    cp.step = 50;
    let (out, m) = run_limited(looping, limits, Some(cp)).await;
    assert!(
        matches!(out, Outcome::Failed(ref e) if e.code == codes::TOO_MANY_TRANSITIONS),
        "{out:?}"
    );
    assert!(m.saves.lock().unwrap().is_empty());
}

#[tokio::test]
async fn data_past_its_bound_ends_the_instance_and_is_never_saved() {
    let growing = "states:\n- {id: a, type: noop, transform: {small: 1}, transition: b}\n- {id: b, type: noop, transform: 'jq({big: (\"x\" * 2000)})'}\n";
    let limits = Limits {
        max_data: 1000,
        ..Limits::default()
    };
    let (out, m) = run_limited(growing, limits, None).await;
    let Outcome::Failed(e) = out else {
        panic!("{out:?}")
    };
    assert_eq!(e.code, codes::DATA_TOO_LARGE);
    assert!(!e.catchable);
    assert!(
        e.message.contains("1000 bytes") && e.message.contains("state 'b'"),
        "{}",
        e.message
    );
    let saves = m.saves.lock().unwrap().clone();
    assert!(saves.iter().all(|cp| cp.data.to_string().len() <= 1000));
    assert_eq!(saves.last().unwrap().data, json!({"small": 1}));
    // Input already past the bound does not start running.
    let big = Checkpoint::start(Some("a"), json!({"x": "y".repeat(2000)}), 0);
    let (out, _) = run_limited(growing, limits, Some(big)).await;
    assert!(
        matches!(out, Outcome::Failed(ref e) if e.code == codes::DATA_TOO_LARGE),
        "{out:?}"
    );
}

#[tokio::test]
async fn long_log_lines_are_cut() {
    let src = "states:\n- {id: a, type: noop, log: 'jq(\"y\" * 100000)'}\n";
    let (out, m) = run_limited(src, Limits::default(), None).await;
    assert!(matches!(out, Outcome::Completed(_)), "{out:?}");
    let logs = m.logs.lock().unwrap();
    let line = logs
        .iter()
        .find(|l| l.starts_with("yyy"))
        .expect("the log line");
    assert!(
        line.len() < 17 * 1024 && line.ends_with("(16384 of 100000 bytes shown)"),
        "{}",
        &line[line.len() - 40..]
    );
}

/// Direktiv's `truth()`: `null`, `false`, `0`, `""`, `[]` and `{}` are not met; a condition
/// expression that gives null is `direktiv.jq.badCommand` (catchable); a literal null is not
/// met.
#[tokio::test]
async fn switch_conditions_are_met_as_direktiv_s_truth_decides() {
    let states = r#"states:
- id: s
  type: switch
  conditions:
  - {condition: 'jq(.v)', transition: met}
  defaultTransition: not
- {id: met, type: noop, transform: {met: true}}
- {id: not, type: noop, transform: {met: false}}
"#;
    for (value, met) in [
        (json!(false), false),
        (json!(0), false),
        (json!(0.0), false),
        (json!(""), false),
        (json!([]), false),
        (json!({}), false),
        (json!(true), true),
        (json!(1), true),
        (json!(-0.5), true),
        (json!("false"), true),
        (json!("0"), true),
        (json!([0]), true),
        (json!({"a": null}), true),
    ] {
        let (out, _) = run(states, json!({ "v": value })).await;
        assert_eq!(
            out,
            Outcome::Completed(json!({ "met": met })),
            "condition value {value}"
        );
    }
    let (out, _) = run(states, json!({})).await;
    let Outcome::Failed(e) = out else {
        panic!("{out:?}")
    };
    assert_eq!(e.code, codes::BAD_COMMAND);
    assert!(e.catchable);
    assert!(
        e.message.contains("jq(.v)") && e.message.contains("null"),
        "{e}"
    );
    let caught = format!(
        "{}- {{id: caught, type: noop, transform: {{caught: 'jq(.error.code)'}}}}\n",
        states.replace(
            "  defaultTransition: not\n",
            "  defaultTransition: not\n  catch: [{error: direktiv.jq.badCommand, transition: caught}]\n",
        )
    );
    let (out, _) = run(&caught, json!({"v": null})).await;
    assert_eq!(
        out,
        Outcome::Completed(json!({"caught": codes::BAD_COMMAND}))
    );
    let literal = states.replace("condition: 'jq(.v)'", "condition: null");
    let (out, _) = run(&literal, json!({})).await;
    assert_eq!(out, Outcome::Completed(json!({ "met": false })));
    let literal = states.replace("condition: 'jq(.v)'", "condition: true");
    let (out, _) = run(&literal, json!({})).await;
    assert_eq!(out, Outcome::Completed(json!({ "met": true })));
}

/// Direktiv's v0.8 `tests/engine/simple-loop.test.js`: a loop that counts down to 0 ends
/// (with jq's truthiness 0 would be true and it would never end).
#[tokio::test]
async fn direktiv_s_simple_loop_ends_at_zero() {
    let states = r#"states:
- id: init
  type: noop
  transform: {i: 5, result: []}
  transition: check
- id: check
  type: switch
  conditions:
  - condition: 'jq(.i)'
    transform: 'jq(.result += [.i] | .i -= 1)'
    transition: check
"#;
    let (out, _) = run(states, json!({})).await;
    assert_eq!(
        out,
        Outcome::Completed(json!({"i": 0, "result": [5, 4, 3, 2, 1]}))
    );
}

#[tokio::test]
async fn catch_and_retry_patterns_are_unanchored_regular_expressions() {
    // `broken` is found inside `app.broken`; `.` is any character.
    let states = r#"states:
- id: a
  type: action
  action: {function: fails}
  catch:
  - {error: '^broken', transition: wrong}
  - {error: 'broken', transition: handled}
- {id: wrong, type: noop, transform: {wrong: true}}
- {id: handled, type: noop, transform: {handled: 'jq(.error.code)'}}
"#;
    let (out, _) = run(states, json!({})).await;
    assert_eq!(out, Outcome::Completed(json!({"handled": "app.broken"})));
    let retried = "states:\n- id: a\n  type: action\n  action:\n    function: flaky\n    retries: {max_attempts: 3, delay: PT0S, codes: ['flak']}\n";
    let (out, m) = run(retried, json!({})).await;
    assert_eq!(out, Outcome::Completed(json!({"return": "finally"})));
    assert_eq!(m.calls.lock().unwrap().len(), 3);
    // Not retried: the pattern does not occur in the code.
    let (out, m) = run(&retried.replace("'flak'", "'^flak'"), json!({})).await;
    assert!(
        matches!(&out, Outcome::Failed(e) if e.code == "app.flaky"),
        "{out:?}"
    );
    assert_eq!(m.calls.lock().unwrap().len(), 1);
    // Retries run out: Direktiv's code and message.
    let (out, m) = run(
        &retried.replace("max_attempts: 3", "max_attempts: 1"),
        json!({}),
    )
    .await;
    let Outcome::Failed(e) = out else {
        panic!("{out:?}")
    };
    assert_eq!(e.code, codes::RETRIES_EXCEEDED);
    assert!(e.message.starts_with("maximum retries exceeded"), "{e}");
    assert_eq!(
        m.calls.lock().unwrap().len(),
        2,
        "max_attempts 1: one retry"
    );
}

#[tokio::test]
async fn direktiv_s_error_codes_for_foreach_parallel_and_a_second_error() {
    let (out, _) = run(
        "states:\n- {id: e, type: foreach, array: 'jq(.x)', action: {function: echo}}\n",
        json!({"x": {"not": "a list"}}),
    )
    .await;
    assert!(
        matches!(&out, Outcome::Failed(e) if e.code == "direktiv.foreach.badArray" && e.catchable && e.message.starts_with("jq produced non-array output")),
        "{out:?}"
    );
    let (out, _) = run(
        "states:\n- {id: p, type: parallel, mode: or, actions: [{function: fails}, {function: fails}]}\n",
        json!({}),
    )
    .await;
    assert!(
        matches!(&out, Outcome::Failed(e) if e.code == "direktiv.parallel.allFailed" && e.catchable && e.message.starts_with("all branches failed")),
        "{out:?}"
    );
    // A crash in the last branch is not turned into a catchable error.
    let (out, _) = run(
        "states:\n- {id: p, type: parallel, mode: or, actions: [{function: crashes}]}\n",
        json!({}),
    )
    .await;
    assert!(
        matches!(&out, Outcome::Failed(e) if e.code == codes::CRASHED),
        "{out:?}"
    );
    // Two error states in a row: the second raise is its own, catchable error.
    let double = "states:\n- {id: a, type: error, error: first, message: one, transition: b}\n- {id: b, type: error, error: second, message: two}\n";
    let (out, _) = run(double, json!({})).await;
    assert!(
        matches!(&out, Outcome::Failed(e) if e.code == "direktiv.workflow.multipleErrors" && e.catchable && e.message.starts_with("the workflow instance tried to throw multiple errors")),
        "{out:?}"
    );
}

/// Without `data`, a generated event carries the instance data (as in Direktiv).
#[tokio::test]
async fn a_generated_event_without_data_carries_the_instance_data() {
    let (out, m) = run(
        "states:\n- {id: g, type: generateEvent, event: {type: t, source: s}}\n",
        json!({"x": 1}),
    )
    .await;
    assert_eq!(out, Outcome::Completed(json!({"x": 1})));
    assert_eq!(m.events.lock().unwrap()[0].0["data"], json!({"x": 1}));
}
