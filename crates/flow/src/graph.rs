//! A flow as a graph for drawing: its start state, its states (id, type, line) and every edge
//! between them with its kind and label. The layout is the reader's (the web UI lays it out).

use serde::Serialize;

use crate::engine::codes::TIMEOUT_SOFT;
use crate::model::{EdgeKind, Workflow};

/// The flow's states and the ways between them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Graph {
    /// The state an instance starts in.
    pub start: String,
    /// The states, in the order written.
    pub states: Vec<Node>,
    /// Every edge, state by state, in the order [`crate::model::State::edges`] gives.
    pub edges: Vec<GraphEdge>,
}

/// One state of the graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    /// The state id.
    pub id: String,
    /// The state type as written (`action`, `switch`, …).
    #[serde(rename = "type")]
    pub state_type: String,
    /// The line the state is written on.
    pub line: usize,
}

/// One edge of the graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GraphEdge {
    /// The state it leaves.
    pub from: String,
    /// The state it leads to.
    pub to: String,
    /// How (transition, condition, default, catch, event, timeout).
    pub kind: EdgeKind,
    /// What picks it, when something does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// The graph of a (validated) flow.
pub fn of(flow: &Workflow) -> Graph {
    Graph {
        start: flow.first_state().unwrap_or_default().to_string(),
        states: flow
            .states
            .iter()
            .map(|s| Node {
                id: s.id.clone(),
                state_type: s.kind.type_name().to_string(),
                line: s.pos.line,
            })
            .collect(),
        edges: flow
            .states
            .iter()
            .flat_map(|s| {
                s.edges().into_iter().map(|e| GraphEdge {
                    from: s.id.clone(),
                    to: e.to.to_string(),
                    kind: timeout_or(e.kind, e.label.as_deref()),
                    label: e.label,
                })
            })
            .collect(),
    }
}

/// A catch whose pattern is written for the soft timeout (it names a timeout and takes the
/// timeout's code; not a catch-all that also takes it) is a timeout edge.
fn timeout_or(kind: EdgeKind, pattern: Option<&str>) -> EdgeKind {
    let for_timeout = pattern.is_some_and(|p| {
        p.contains("timeout")
            && crate::pattern::ErrorPattern::new(p, Default::default()).matches(TIMEOUT_SOFT)
    });
    if kind == EdgeKind::Catch && for_timeout {
        EdgeKind::Timeout
    } else {
        kind
    }
}
