//! Direktiv workflows (`direktiv_api: workflow/v1`): the language ([`model`]), parsing YAML
//! with the position of every node ([`yaml`], [`parse`]), validation that reports every
//! problem with its line and column ([`validate`]), the flow as a graph for drawing
//! ([`graph`]), and the engine that runs instances
//! state by state over traits for its effects ([`engine`]); error patterns ([`pattern`]) and
//! subflow references ([`subflow`]) as Direktiv reads them.

pub mod duration;
pub mod engine;
pub mod graph;
pub mod model;
mod parse;
pub mod pattern;
mod reader;
pub mod subflow;
pub mod validate;
pub mod yaml;

pub use model::Workflow;
pub use yaml::Pos;

/// One thing wrong with a flow, and where.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// Where in the source.
    #[serde(flatten)]
    pub pos: Pos,
    /// What is wrong, and what to write instead where that is known.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.pos, self.message)
    }
}

/// A flow checked for deploying, with what deserves a warning but does not stop it (states
/// no transition reaches, which Direktiv accepts too).
#[derive(Debug)]
pub struct Checked {
    /// The flow.
    pub flow: Workflow,
    /// What to tell the deployer without refusing the flow.
    pub warnings: Vec<Problem>,
}

/// Parses and validates a stored flow (one deployed before, or an instance's source). On
/// failure, every problem found, in source order.
pub fn load(source: &str) -> Result<Workflow, Vec<Problem>> {
    read(source, false).map(|checked| checked.flow)
}

/// Parses and validates a flow being deployed: as [`load`], and also refuses what a stored
/// flow is forgiven (error patterns that are not regular expressions, which earlier versions
/// read as globs), and collects warnings.
pub fn check_new(source: &str) -> Result<Checked, Vec<Problem>> {
    read(source, true)
}

fn read(source: &str, new: bool) -> Result<Checked, Vec<Problem>> {
    let root = yaml::parse(source).map_err(|e| {
        vec![Problem {
            pos: e.pos,
            message: format!("not valid YAML: {}", e.message),
        }]
    })?;
    let mut problems = reader::Problems::default();
    let mut warnings = reader::Problems::default();
    let flow = parse::workflow(&root, &mut problems);
    if let Some(flow) = &flow {
        validate::check(&root, flow, &mut problems);
        if new {
            validate::new_flow(flow, &mut problems, &mut warnings);
        }
    }
    let sorted = |mut list: Vec<Problem>| {
        list.sort_by_key(|p| (p.pos.line, p.pos.column));
        list.dedup();
        list
    };
    let problems = sorted(problems.0);
    match flow {
        Some(flow) if problems.is_empty() => Ok(Checked {
            flow,
            warnings: sorted(warnings.0),
        }),
        _ if problems.is_empty() => Err(vec![Problem {
            pos: root.pos,
            message: "the flow could not be read".into(),
        }]),
        _ => Err(problems),
    }
}

#[cfg(test)]
mod tests;
