//! Direktiv workflows (`direktiv_api: workflow/v1`): the language ([`model`]), parsing YAML
//! with the position of every node ([`yaml`], [`parse`]), validation that reports every
//! problem with its line and column ([`validate`]), and the engine that runs instances
//! state by state over traits for its effects ([`engine`]).

pub mod duration;
pub mod engine;
pub mod model;
mod parse;
mod reader;
pub mod validate;
pub mod yaml;

pub use model::Workflow;
pub use yaml::Pos;

/// One thing wrong with a flow, and where.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    #[serde(flatten)]
    pub pos: Pos,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.pos, self.message)
    }
}

/// Parses and validates a flow. On failure, every problem found, in source order.
pub fn load(source: &str) -> Result<Workflow, Vec<Problem>> {
    let root = yaml::parse(source).map_err(|e| {
        vec![Problem {
            pos: e.pos,
            message: format!("not valid YAML: {}", e.message),
        }]
    })?;
    let mut problems = reader::Problems::default();
    let flow = parse::workflow(&root, &mut problems);
    if let Some(flow) = &flow {
        validate::check(&root, flow, &mut problems);
    }
    let mut problems = problems.0;
    problems.sort_by_key(|p| (p.pos.line, p.pos.column));
    problems.dedup();
    match flow {
        Some(flow) if problems.is_empty() => Ok(flow),
        _ if problems.is_empty() => Err(vec![Problem {
            pos: root.pos,
            message: "the flow could not be read".into(),
        }]),
        _ => Err(problems),
    }
}

#[cfg(test)]
mod tests;
