//! Direktiv expressions and input templates, shared by the server (function input templates)
//! and the workflow engine: a JSON value in which every string that is exactly `jq(EXPR)`
//! becomes EXPR's result, and strings holding `jq(EXPR)` among other text get each result
//! spliced in as text (strings as they are, other values as JSON).
//!
//! Expressions run with jaq; each must give exactly one result. Every failure is a
//! [`TemplateError`], answered with code `direktiv.jq.badCommand`.

pub mod bounds;
mod eval;
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
/// conditions and foreach arrays may be written) or a template.
pub fn evaluate(value: &Value, data: &Value) -> Result<Value, TemplateError> {
    match value {
        Value::String(expr) if !expr.contains("jq(") => {
            Program::compile(expr)?.run_one(&eval::to_jaq(data)?)
        }
        other => render(other, data),
    }
}

/// A template that cannot be parsed or evaluated. The message may quote data the expression
/// saw: callers mask secret values in it before showing or storing it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(pub String);

/// Checks that every `jq(...)` in `template` is balanced and compiles (at deploy time).
pub fn check(template: &Value) -> Result<(), TemplateError> {
    visit_strings(template, &mut |text| {
        for piece in split(text)? {
            if let Piece::Expr(expr) = piece {
                Program::compile(expr)?;
            }
        }
        Ok(())
    })
}

/// Renders `template` against `data`.
pub fn render(template: &Value, data: &Value) -> Result<Value, TemplateError> {
    let input = eval::to_jaq(data)?;
    render_value(template, &input)
}

fn render_value(template: &Value, data: &jaq_json::Val) -> Result<Value, TemplateError> {
    Ok(match template {
        Value::String(text) => render_string(text, data)?,
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| render_value(item, data))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_value(v, data)?)))
                .collect::<Result<_, TemplateError>>()?,
        ),
        other => other.clone(),
    })
}

fn render_string(text: &str, data: &jaq_json::Val) -> Result<Value, TemplateError> {
    let pieces = split(text)?;
    if let [Piece::Expr(expr)] = pieces.as_slice() {
        return Program::compile(expr)?.run_one(data);
    }
    if pieces.iter().all(|p| matches!(p, Piece::Text(_))) {
        return Ok(Value::String(text.to_string()));
    }
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Expr(expr) => match Program::compile(expr)?.run_one(data)? {
                Value::String(s) => out.push_str(&s),
                other => out.push_str(&other.to_string()),
            },
        }
    }
    Ok(Value::String(out))
}

fn visit_strings(
    value: &Value,
    f: &mut impl FnMut(&str) -> Result<(), TemplateError>,
) -> Result<(), TemplateError> {
    match value {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter().try_for_each(|v| visit_strings(v, f)),
        Value::Object(map) => map.values().try_for_each(|v| visit_strings(v, f)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
