//! Parsing flows and every validation problem with its line and column.

use crate::model::*;
use crate::{check_new, load, Pos, Problem};

fn problems(source: &str) -> Vec<Problem> {
    check_new(source).expect_err("the flow was accepted")
}

fn has(problems: &[Problem], line: usize, column: usize, words: &str) {
    assert!(
        problems
            .iter()
            .any(|p| p.pos == Pos { line, column } && p.message.contains(words)),
        "no problem at {line}:{column} containing '{words}' in {problems:#?}"
    );
}

const SEED_CMD: &str = r#"direktiv_api: workflow/v1
functions:
- id: get
  image: alpine
  type: knative-workflow
  cmd: /usr/share/direktiv/direktiv-cmd
states:
- id: getter 
  type: action
  action:
    function: get
    input: 
      files:
      - name: hello.sh
        content: |
          #!/bin/sh
          echo -n "HELLO WORLD"
        permission: 0755 
      data:
        commands:
        - command: ./hello.sh
"#;

#[test]
fn parses_the_seed_cmd_flow() {
    let flow = load(SEED_CMD).unwrap();
    assert_eq!(flow.functions.len(), 1);
    let FunctionKind::Workflow { image, cmd, .. } = &flow.functions[0].kind else {
        panic!()
    };
    assert_eq!(image, "alpine");
    assert_eq!(cmd.as_deref(), Some("/usr/share/direktiv/direktiv-cmd"));
    let StateKind::Action { action, .. } = &flow.states[0].kind else {
        panic!()
    };
    assert_eq!(action.function, "get");
    assert_eq!(flow.states[0].pos, Pos { line: 8, column: 3 });
    let input = action.input.as_ref().unwrap();
    assert_eq!(
        input["files"][0]["content"],
        "#!/bin/sh\necho -n \"HELLO WORLD\"\n"
    );
}

#[test]
fn parses_every_state_and_start_type() {
    let source = r#"direktiv_api: workflow/v1
description: all
timeouts:
  interrupt: PT1M
  kill: PT2M
functions:
- {id: w, type: reusable, image: img, size: small, envs: [{name: A, value: b}]}
- {id: n, type: knative-namespace, service: echo}
- {id: g, type: knative-global, service: gsvc}
- {id: s, type: subflow, workflow: other}
start:
  type: eventsAnd
  state: a
  lifespan: PT10M
  events:
  - type: x
    context: {source: y}
  - type: z
states:
- id: a
  type: action
  async: false
  timeout: PT5S
  action:
    function: w
    secrets: [tok]
    input: 'jq(.)'
    retries: {max_attempts: 3, delay: PT1S, multiplier: 2, codes: ["app.*"]}
    files: [{key: k, scope: workflow, as: f.txt}]
  catch:
  - error: "*"
    transition: e
  transition: b
- id: b
  type: switch
  conditions:
  - condition: 'jq(.x > 1)'
    transition: c
  defaultTransition: d
- {id: c, type: delay, duration: PT1S, transition: d}
- id: d
  type: foreach
  array: 'jq(.items)'
  action: {function: n}
  transition: f
- id: e
  type: error
  error: my.code
  message: "bad %s"
  args: ['jq(.x)']
- id: f
  type: parallel
  mode: or
  actions: [{function: g}, {function: s}]
  transition: v
- id: v
  type: validate
  subject: 'jq(.)'
  schema: {type: object}
  transition: get
- {id: get, type: getter, variables: [{key: a, scope: namespace}], transition: set}
- {id: set, type: setter, variables: [{key: a, scope: instance, value: 1}], transition: ce}
- {id: ce, type: consumeEvent, event: {type: t, context: {a: b}}, timeout: PT1H, transition: ge}
- {id: ge, type: generateEvent, delay: PT2S, event: {type: t, source: s, data: 'jq(.)'}, transition: ea}
- {id: ea, type: eventsAnd, events: [{type: t1}, {type: t2}], transition: ex}
- id: ex
  type: eventsXor
  events:
  - event: {type: t1}
    transition: n1
  - event: {type: t2}
- {id: n1, type: noop, log: 'jq(.)', metadata: {a: 1}}
"#;
    let flow = load(source).unwrap_or_else(|p| panic!("{p:#?}"));
    let types: Vec<&str> = flow.states.iter().map(|s| s.kind.type_name()).collect();
    assert_eq!(
        types,
        [
            "action",
            "switch",
            "delay",
            "foreach",
            "error",
            "parallel",
            "validate",
            "getter",
            "setter",
            "consumeEvent",
            "generateEvent",
            "eventsAnd",
            "eventsXor",
            "noop"
        ]
    );
    assert!(
        matches!(flow.start.kind, StartKind::EventsAnd { ref events, lifespan: Some(_) } if events.len() == 2)
    );
    assert_eq!(
        flow.timeouts.kill,
        Some(std::time::Duration::from_secs(120))
    );
    let StateKind::Action { action, .. } = &flow.states[0].kind else {
        panic!()
    };
    let retries = action.retries.as_ref().unwrap();
    assert_eq!((retries.max_attempts, retries.multiplier), (3, 2.0));
    assert_eq!(action.files[0].scope, VarScope::Workflow);
    assert_eq!(flow.states[0].catch[0].error.as_str(), "*");
    let StateKind::GenerateEvent { delay, .. } = &flow.states[10].kind else {
        panic!("{:?}", flow.states[10].kind)
    };
    assert_eq!(*delay, Some(std::time::Duration::from_secs(2)));
    for start in [
        "type: scheduled\n  cron: '* * * * *'",
        "type: event\n  event: {type: a}",
        "type: eventsXor\n  events: [{type: a}]",
    ] {
        let src = format!(
            "direktiv_api: workflow/v1\nstart:\n  {start}\nstates:\n- {{id: a, type: noop}}\n"
        );
        load(&src).unwrap_or_else(|p| panic!("{start}: {p:#?}"));
    }
}

#[test]
fn bad_yaml_is_reported_with_its_place() {
    let p = problems("states:\n- id: a\n  type: [noop\n");
    assert_eq!(p.len(), 1);
    assert!(p[0].message.starts_with("not valid YAML"), "{p:?}");
    assert!(p[0].pos.line >= 3, "{p:?}");
}

#[test]
fn every_problem_is_listed_with_line_and_column() {
    let source = r#"direktiv_api: workflow/v1
functions:
- id: f
  type: knative-workflow
  image: img
  colour: red
states:
- id: a
  type: action
  action:
    function: missing
  transition: nowhere
- id: b
  type: teleport
- id: c
  type: noop
  log: 'jq(.a | )'
- id: a
  type: noop
- id: d
  type: switch
  conditions:
  - condition: '.x >'
    transition: a
  defaultTransition: ghost
"#;
    let p = problems(source);
    has(&p, 6, 3, "unknown field 'colour'");
    has(&p, 11, 5, "function 'missing', which is not defined");
    has(&p, 8, 3, "moves to 'nowhere'");
    has(&p, 14, 9, "unknown type 'teleport'");
    has(&p, 17, 8, "jq syntax error");
    has(&p, 18, 3, "used twice");
    has(&p, 23, 16, "jq syntax error");
    has(&p, 20, 3, "moves to 'ghost'");
    let lines: Vec<usize> = p.iter().map(|p| p.pos.line).collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted, "problems are in source order");
}

#[test]
fn unknown_fields_bad_durations_and_missing_fields() {
    let source = r#"direktiv_api: workflow/v1
states:
- id: a
  type: delay
  duration: 5 seconds
  transition: b
- id: b
  type: noop
  action: {function: x}
- id: c
  type: action
"#;
    let p = problems(source);
    has(&p, 5, 13, "not an ISO 8601 duration");
    has(&p, 9, 3, "unknown field 'action' in state 'b'");
    has(&p, 10, 3, "state 'c' needs 'action'");
}

#[test]
fn a_generated_event_s_bad_delay_is_reported_at_its_place() {
    let source = r#"direktiv_api: workflow/v1
states:
- id: a
  type: generateEvent
  delay: soon
  event:
    type: t
    source: s
"#;
    let p = problems(source);
    has(
        &p,
        5,
        10,
        "'delay' in state 'a' is 'soon', not an ISO 8601 duration",
    );
    let no_delay = load("states:\n- {id: a, type: generateEvent, event: {type: t, source: s}}\n")
        .unwrap_or_else(|p| panic!("{p:#?}"));
    assert!(matches!(
        no_delay.states[0].kind,
        StateKind::GenerateEvent { delay: None, .. }
    ));
}

#[test]
fn a_bad_cron_expression_is_refused_at_its_line_and_column() {
    let source = "direktiv_api: workflow/v1\nstart:\n  type: scheduled\n  cron: \"61 * * * *\"\nstates:\n- id: a\n  type: noop\n";
    let problems = crate::load(source).unwrap_err();
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(
        text.iter()
            .any(|t| t.starts_with("line 4, column 9:") && t.contains("invalid cron expression")),
        "{text:?}"
    );
}

#[test]
fn a_start_state_that_does_not_exist_is_reported_at_start() {
    let p = problems("start:\n  type: default\n  state: ghost\nstates:\n- {id: a, type: noop}\n");
    has(&p, 2, 3, "start.state names 'ghost'");
}

#[test]
fn action_files_with_unknown_types_or_unsafe_names_are_refused_where_written() {
    let p = problems(
        "functions:\n- {id: f, image: alpine, type: knative-workflow}\nstates:\n- id: a\n  type: action\n  action:\n    function: f\n    files:\n    - {key: k, scope: instance, type: zip}\n    - {key: k, scope: instance, as: ../up}\n    - key: /abs\n      scope: namespace\n",
    );
    has(
        &p,
        9,
        8,
        "file 'k' has type 'zip'; use one of plain, base64, tar, tar.gz",
    );
    has(&p, 10, 8, "file name '../up' cannot be used");
    has(&p, 11, 7, "file name '/abs' cannot be used");
    let p = problems(
        "functions:\n- {id: sub, type: subflow, workflow: other}\nstates:\n- id: a\n  type: action\n  action:\n    function: sub\n    files: [{key: k, scope: instance}]\n",
    );
    has(
        &p,
        8,
        14,
        "function 'sub' is a subflow, which takes no files",
    );
    let flow = crate::load(
        "functions:\n- {id: f, image: alpine, type: knative-workflow}\nstates:\n- id: a\n  type: action\n  action:\n    function: f\n    files:\n    - {key: a, scope: instance}\n    - {key: b, scope: workflow, type: base64, as: sub/b.bin}\n    - {key: c, scope: namespace, type: tar}\n    - {key: d, scope: namespace, type: tar.gz}\n",
    )
    .unwrap();
    let StateKind::Action { action, .. } = &flow.states[0].kind else {
        panic!()
    };
    let types: Vec<_> = action
        .files
        .iter()
        .map(|f| (f.name(), FileType::parse(f.file_type.as_deref())))
        .collect();
    assert_eq!(
        types,
        [
            ("a", Some(FileType::Plain)),
            ("sub/b.bin", Some(FileType::Base64)),
            ("c", Some(FileType::Tar)),
            ("d", Some(FileType::TarGz)),
        ]
    );
}

#[test]
fn unreachable_states_are_a_warning_as_direktiv_accepts_them() {
    // Direktiv's own engine/simple-events test flow has a state no transition reaches.
    let source = "states:\n- {id: a, type: noop, transition: c}\n- {id: b, type: noop}\n- {id: c, type: noop}\n";
    let checked = check_new(source).expect("deploys");
    assert_eq!(checked.warnings.len(), 1, "{:?}", checked.warnings);
    let warning = &checked.warnings[0];
    assert_eq!(warning.pos.line, 3);
    assert!(
        warning.message.contains("state 'b' is unreachable"),
        "{warning}"
    );
    assert!(load(source).is_ok());
}

#[test]
fn error_patterns_are_regular_expressions_and_an_invalid_one_is_refused_where_written() {
    let source = r#"functions:
- {id: f, type: knative-namespace, service: f}
states:
- id: a
  type: action
  action:
    function: f
    retries: {max_attempts: 1, codes: [".*", "*.timeout"]}
  catch:
  - error: "*"
  - error: "a(b"
"#;
    let p = problems(source);
    assert_eq!(p.len(), 2, "{p:#?}");
    has(
        &p,
        8,
        46,
        "error pattern '*.timeout' is not a valid regular expression",
    );
    has(&p, 8, 46, r"write '^.*\.timeout$'");
    has(&p, 11, 12, "error pattern 'a(b'");
    // A stored flow (from before patterns were regular expressions) still loads; such a
    // pattern keeps its glob meaning.
    let flow = load(source).expect("a stored flow loads");
    let StateKind::Action { action, .. } = &flow.states[0].kind else {
        panic!("not an action")
    };
    let codes = &action.retries.as_ref().expect("retries").codes;
    assert!(codes[1].matches("direktiv.cancels.timeout"));
    assert!(flow.states[0].catch[0].error.matches("anything"));
}

#[test]
fn retries_default_to_direktiv_s_five_second_delay_and_a_zero_multiplier_does_not_scale() {
    let flow = load("functions:\n- {id: f, type: knative-namespace, service: f}\nstates:\n- id: a\n  type: action\n  action:\n    function: f\n    retries: {max_attempts: 1, multiplier: 0, codes: ['.*']}\n")
        .expect("loads");
    let StateKind::Action { action, .. } = &flow.states[0].kind else {
        panic!("not an action")
    };
    let retries = action.retries.as_ref().expect("retries");
    assert_eq!(retries.delay, std::time::Duration::from_secs(5));
    assert_eq!(retries.multiplier, 1.0);
    let p = problems("functions:\n- {id: f, type: knative-namespace, service: f}\nstates:\n- id: a\n  type: action\n  action:\n    function: f\n    retries: {max_attempts: 1, multiplier: -1, codes: ['.*']}\n");
    has(&p, 8, 15, "multiplier must be a number, 0");
}

#[test]
fn the_graph_names_every_edge_with_its_kind_and_label() {
    let source = "\
states:
- id: pick
  type: switch
  conditions:
  - condition: 'jq(.n > 1)'
    transition: big
  defaultTransition: small
- id: big
  type: action
  action: {function: f}
  catch:
  - error: 'direktiv.cancels.timeout.*'
    transition: slow
  - error: '.*'
    transition: failed
  transition: wait
- id: wait
  type: eventsXor
  events:
  - event: {type: a.done}
    transition: small
  - event: {type: b.done}
- id: small
  type: noop
- id: slow
  type: noop
- id: failed
  type: noop
functions:
- id: f
  type: knative-namespace
  service: f
";
    let flow = check_new(source).expect("valid").flow;
    let graph = crate::graph::of(&flow);
    assert_eq!(graph.start, "pick");
    let states: Vec<(&str, &str, usize)> = graph
        .states
        .iter()
        .map(|n| (n.id.as_str(), n.state_type.as_str(), n.line))
        .collect();
    assert_eq!(
        states,
        [
            ("pick", "switch", 2),
            ("big", "action", 8),
            ("wait", "eventsXor", 17),
            ("small", "noop", 23),
            ("slow", "noop", 25),
            ("failed", "noop", 27),
        ]
    );
    let edges: Vec<(&str, &str, EdgeKind, Option<&str>)> = graph
        .edges
        .iter()
        .map(|e| (e.from.as_str(), e.to.as_str(), e.kind, e.label.as_deref()))
        .collect();
    assert_eq!(
        edges,
        [
            ("pick", "big", EdgeKind::Condition, Some("jq(.n > 1)")),
            ("pick", "small", EdgeKind::Default, None),
            ("big", "wait", EdgeKind::Transition, None),
            (
                "big",
                "slow",
                EdgeKind::Timeout,
                Some("direktiv.cancels.timeout.*")
            ),
            ("big", "failed", EdgeKind::Catch, Some(".*")),
            ("wait", "small", EdgeKind::Event, Some("a.done")),
        ]
    );
    // The same targets as `targets()`, as a set.
    for state in &flow.states {
        let mut from_edges: Vec<&str> = state.edges().iter().map(|e| e.to).collect();
        let mut targets = state.targets();
        from_edges.sort_unstable();
        targets.sort_unstable();
        assert_eq!(from_edges, targets, "{}", state.id);
    }
}
