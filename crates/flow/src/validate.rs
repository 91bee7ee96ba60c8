//! Checks across the whole flow: state ids, transitions, functions named by actions, and
//! every `jq(…)` expression's syntax; for a flow being deployed also its error patterns, and
//! warnings (states no transition reaches).

use std::collections::{HashMap, HashSet};

use crate::model::{Action, FileType, FunctionKind, Workflow};
use crate::reader::Problems;
use crate::yaml::Node;

/// Records in `p` every problem across the flow `root` was parsed into.
pub fn check(root: &Node, flow: &Workflow, p: &mut Problems) {
    jq_expressions(root, p);
    let mut seen = HashMap::new();
    for state in &flow.states {
        if let Some(first) = seen.insert(state.id.as_str(), state.pos) {
            p.add(
                state.pos,
                format!(
                    "state id '{}' is used twice (first at {first}); state ids must be unique",
                    state.id
                ),
            );
        }
    }
    let mut function_ids = HashSet::new();
    for f in &flow.functions {
        if !function_ids.insert(f.id.as_str()) {
            p.add(
                f.pos,
                format!(
                    "function id '{}' is used twice; function ids must be unique",
                    f.id
                ),
            );
        }
    }
    if let Some(first) = &flow.start.state {
        if !seen.contains_key(first.as_str()) {
            p.add(
                start_pos(root),
                format!("start.state names '{first}', which is not a state of this flow"),
            );
        }
    }
    for state in &flow.states {
        for target in state.targets() {
            if !seen.contains_key(target) {
                p.add(
                    state.pos,
                    format!(
                        "state '{}' moves to '{target}', which is not a state of this flow",
                        state.id
                    ),
                );
            }
        }
        for action in state.actions() {
            if flow.function(&action.function).is_none() {
                p.add(
                    action.pos,
                    format!("the action of state '{}' calls function '{}', which is not defined under functions", state.id, action.function),
                );
            }
            action_files(flow, &state.id, action, p);
        }
    }
}

/// What only a flow being deployed is held to: error patterns must be regular expressions
/// (problems), and states no transition reaches are reported (warnings; Direktiv accepts
/// them, and flows written for it have them).
pub fn new_flow(flow: &Workflow, p: &mut Problems, warnings: &mut Problems) {
    for state in &flow.states {
        let codes = state
            .actions()
            .into_iter()
            .filter_map(|a| a.retries.as_ref())
            .flat_map(|r| r.codes.iter());
        for pattern in state.catch.iter().map(|c| &c.error).chain(codes) {
            if let Some(problem) = pattern.problem() {
                p.add(pattern.pos(), format!("state '{}': {problem}", state.id));
            }
        }
    }
    unreachable_states(flow, warnings);
}

/// An action's `files`: known types, names that stay inside the call's directory, and a
/// function that runs in a container (a subflow has no directory to put them in).
fn action_files(flow: &Workflow, state: &str, action: &Action, p: &mut Problems) {
    let subflow = flow
        .function(&action.function)
        .is_some_and(|f| matches!(f.kind, FunctionKind::Subflow { .. }));
    if subflow {
        if let Some(file) = action.files.first() {
            p.add(
                file.pos,
                format!(
                    "state '{state}': function '{}' is a subflow, which takes no files; pass the values in the input instead",
                    action.function
                ),
            );
        }
    }
    for file in &action.files {
        if FileType::parse(file.file_type.as_deref()).is_none() {
            p.add(
                file.pos,
                format!(
                    "state '{state}': file '{}' has type '{}'; use one of {}",
                    file.name(),
                    file.file_type.as_deref().unwrap_or_default(),
                    FileType::NAMES
                ),
            );
        }
        if let Some(problem) = faasbox_proto::file_name_problem(file.name()) {
            p.add(
                file.pos,
                format!(
                    "state '{state}': file name '{}' cannot be used: {problem} (set `as` to a plain relative name)",
                    file.name().escape_default()
                ),
            );
        }
    }
}

/// Where `start` is written (the document's start when it is not).
fn start_pos(root: &Node) -> crate::yaml::Pos {
    match &root.kind {
        crate::yaml::NodeKind::Map(entries) => entries
            .iter()
            .find(|(k, _)| k.name == "start")
            .map_or(root.pos, |(_, v)| v.pos),
        _ => root.pos,
    }
}

fn unreachable_states(flow: &Workflow, p: &mut Problems) {
    let Some(first) = flow.first_state() else {
        return;
    };
    let mut reached: HashSet<&str> = HashSet::new();
    let mut todo = vec![first];
    while let Some(id) = todo.pop() {
        if !reached.insert(id) {
            continue;
        }
        if let Some(state) = flow.state(id) {
            todo.extend(state.targets());
        }
    }
    for state in &flow.states {
        if !reached.contains(state.id.as_str()) {
            p.add(
                state.pos,
                format!(
                    "state '{}' is unreachable: no transition leads to it from the first state \
                     (it never runs)",
                    state.id
                ),
            );
        }
    }
}

fn jq_expressions(root: &Node, p: &mut Problems) {
    root.visit_strings(&mut |text, pos| {
        if !text.contains("jq(") {
            return;
        }
        if let Err(e) = faasbox_expr::check(&serde_json::Value::String(text.to_string())) {
            p.add(pos, format!("jq syntax error: {e}"));
        }
    });
}
