//! Direktiv expressions and input templates, shared by the server (function input templates)
//! and the workflow engine: a JSON value in which every string that is exactly `jq(EXPR)`
//! becomes EXPR's result, and strings holding `jq(EXPR)` among other text get each result
//! spliced in as text (strings as they are, other values as JSON).
//!
//! Expressions run with jaq; each must give exactly one result. Every failure is a
//! [`TemplateError`], answered with code `direktiv.jq.badCommand`. Expressions are
//! [bounded](bounds) in length and nesting before jaq parses them; the server runs them in
//! worker processes bounded in CPU time, memory and output ([`sandbox`]), except plain paths
//! such as `.input.name`, which [`fast`] resolves in place.

pub mod bounds;
mod eval;
pub mod fast;
pub mod sandbox;
mod scan;

use serde_json::Value;

pub use eval::Program;
pub use scan::{split, Piece};

/// The stack a thread compiling expressions gets ([`on_compile_stack`]): ample for any
/// expression within the [bounds](bounds).
pub const COMPILE_STACK: usize = 16 * 1024 * 1024;

/// Runs `f` (checking or compiling expressions, loading a flow) on a thread of its own with
/// [`COMPILE_STACK`] of stack, and waits for it. A blocking call: from async code, call it
/// inside `spawn_blocking`.
pub fn on_compile_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("faasbox-compile".into())
            .stack_size(COMPILE_STACK)
            .spawn_scoped(scope, f)
            .expect("the system cannot start a thread to compile expressions");
        match handle.join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// The error code Direktiv uses for jq expressions that cannot be run.
pub const BAD_COMMAND: &str = "direktiv.jq.badCommand";

/// The error code Direktiv uses when state data stops being a JSON object.
pub const NOT_OBJECT: &str = "direktiv.jq.notObject";

/// Evaluates a field that is either a bare jq expression (a string without `jq(`, as switch
/// conditions and foreach arrays may be written) or a template. In this thread and without
/// bounds on time or memory: the server evaluates through a [`sandbox::Evaluator`].
pub fn evaluate(value: &Value, data: &Value) -> Result<Value, TemplateError> {
    evaluate_val(value, &eval::to_jaq(data)?, &mut Programs::default())
}

/// A template that cannot be parsed or evaluated. The message may quote data the expression
/// saw: callers mask secret values in it before showing or storing it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(pub String);

/// Checks that every `jq(...)` in `template` is balanced, within the [bounds](bounds) and
/// compiles (at deploy time); an error names where in the template (`at .a.b[2]: …`). Call
/// it on [`on_compile_stack`].
pub fn check(template: &Value) -> Result<(), TemplateError> {
    check_at(template, &mut String::new())
}

fn check_at(value: &Value, at: &mut String) -> Result<(), TemplateError> {
    let named = |e: TemplateError, at: &str| match at {
        "" => e,
        at => TemplateError(format!("at {at}: {}", e.0)),
    };
    match value {
        Value::String(text) => {
            for piece in split(text).map_err(|e| named(e, at))? {
                if let Piece::Expr(expr) = piece {
                    Program::compile(expr).map_err(|e| named(e, at))?;
                }
            }
            Ok(())
        }
        Value::Array(items) => items.iter().enumerate().try_for_each(|(i, item)| {
            let len = at.len();
            at.push_str(&format!("[{i}]"));
            let checked = check_at(item, at);
            at.truncate(len);
            checked
        }),
        Value::Object(map) => map.iter().try_for_each(|(key, item)| {
            let len = at.len();
            at.push('.');
            at.push_str(key);
            let checked = check_at(item, at);
            at.truncate(len);
            checked
        }),
        _ => Ok(()),
    }
}

/// Renders `template` against `data`, in this thread and without bounds on time or memory
/// (see [`evaluate`]).
pub fn render(template: &Value, data: &Value) -> Result<Value, TemplateError> {
    render_val(template, &eval::to_jaq(data)?, &mut Programs::default())
}

/// Compiled programs by their text, so that an expression used again is compiled once.
#[derive(Default)]
pub struct Programs {
    compiled: std::collections::HashMap<String, std::rc::Rc<Program>>,
}

impl Programs {
    /// The most programs kept; past it the cache starts over.
    const MAX: usize = 512;

    fn get(&mut self, expr: &str) -> Result<std::rc::Rc<Program>, TemplateError> {
        if let Some(program) = self.compiled.get(expr) {
            return Ok(program.clone());
        }
        let program = std::rc::Rc::new(Program::compile(expr)?);
        if self.compiled.len() >= Self::MAX {
            self.compiled.clear();
        }
        self.compiled.insert(expr.to_string(), program.clone());
        Ok(program)
    }
}

/// [`evaluate`] on data already in jaq's form, with compiled programs kept in `programs`.
pub fn evaluate_val(
    value: &Value,
    data: &jaq_json::Val,
    programs: &mut Programs,
) -> Result<Value, TemplateError> {
    match value {
        Value::String(expr) if !expr.contains("jq(") => programs.get(expr)?.run_one(data),
        other => render_val(other, data, programs),
    }
}

/// [`render`] on data already in jaq's form, with compiled programs kept in `programs`.
pub fn render_val(
    template: &Value,
    data: &jaq_json::Val,
    programs: &mut Programs,
) -> Result<Value, TemplateError> {
    Ok(match template {
        Value::String(text) => render_string(text, data, programs)?,
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| render_val(item, data, programs))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_val(v, data, programs)?)))
                .collect::<Result<_, TemplateError>>()?,
        ),
        other => other.clone(),
    })
}

fn render_string(
    text: &str,
    data: &jaq_json::Val,
    programs: &mut Programs,
) -> Result<Value, TemplateError> {
    let pieces = split(text)?;
    if let [Piece::Expr(expr)] = pieces.as_slice() {
        return programs.get(expr)?.run_one(data);
    }
    if pieces.iter().all(|p| matches!(p, Piece::Text(_))) {
        return Ok(Value::String(text.to_string()));
    }
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Expr(expr) => match programs.get(expr)?.run_one(data)? {
                Value::String(s) => out.push_str(&s),
                other => out.push_str(&other.to_string()),
            },
        }
    }
    Ok(Value::String(out))
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
