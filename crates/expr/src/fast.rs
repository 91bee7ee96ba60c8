//! A fast path for templates whose expressions are all plain paths (`.`, `.input`,
//! `.input.user.name`, `.secrets.token`): those are resolved here, in place, without jaq.
//!
//! Why this is safe to run on any thread: a plain path only walks down the data, one object
//! key per step, so its work is at most the path's length plus copying the value it lands on
//! (a part of data the caller already holds); it cannot loop, recurse or allocate more than
//! that copy. Anything else (another expression, a step into something that is neither an
//! object nor null, where jq would fail) returns `None` and goes to jaq, so every error message
//! still comes from jaq. The results are the values jq gives for those paths.

use serde_json::Value;

use crate::scan::{split, Piece};

/// Renders `template` like [`crate::render`] when each of its expressions is a plain path
/// that resolves; `None` otherwise.
pub fn render(template: &Value, data: &Value) -> Option<Value> {
    Some(match template {
        Value::String(text) => render_string(text, data)?,
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| render(item, data))
                .collect::<Option<_>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Some((k.clone(), render(v, data)?)))
                .collect::<Option<_>>()?,
        ),
        other => other.clone(),
    })
}

/// Evaluates like [`crate::evaluate`] when the field is a plain path (bare or in a template);
/// `None` otherwise.
pub fn evaluate(value: &Value, data: &Value) -> Option<Value> {
    match value {
        Value::String(expr) if !expr.contains("jq(") => lookup(expr, data).cloned(),
        other => render(other, data),
    }
}

fn render_string(text: &str, data: &Value) -> Option<Value> {
    let pieces = split(text).ok()?;
    if let [Piece::Expr(expr)] = pieces.as_slice() {
        return lookup(expr, data).cloned();
    }
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Expr(expr) => match lookup(expr, data)? {
                Value::String(s) => out.push_str(s),
                other => out.push_str(&other.to_string()),
            },
        }
    }
    Some(Value::String(out))
}

static NULL: Value = Value::Null;

/// The value at plain path `expr` in `data`; `None` if `expr` is not a plain path or a step
/// meets a value jq cannot index by name.
fn lookup<'a>(expr: &str, data: &'a Value) -> Option<&'a Value> {
    let path = expr.trim_matches(|c: char| c == ' ' || c == '\t' || c == '\n' || c == '\r');
    if path == "." {
        return Some(data);
    }
    let mut rest = path.strip_prefix('.')?;
    let mut here = data;
    loop {
        let end = rest.find('.').unwrap_or(rest.len());
        let key = &rest[..end];
        if !is_identifier(key) {
            return None;
        }
        here = match here {
            Value::Object(map) => map.get(key).unwrap_or(&NULL),
            Value::Null => &NULL,
            _ => return None,
        };
        if end == rest.len() {
            return Some(here);
        }
        rest = &rest[end + 1..];
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`: a key jq reads after a dot.
fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn data() -> Value {
        json!({"input": {"name": "Ada", "n": 2, "nested": {"k": [1, 2]}, "nil": null}, "s": "x"})
    }

    #[test]
    fn plain_paths_resolve_like_jq() {
        let template = json!({
            "whole": "jq(.)",
            "name": "jq(.input.name)",
            "deep": "jq( .input.nested.k )",
            "missing": "jq(.input.nope.deeper)",
            "through_null": "jq(.input.nil.x)",
            "text": "hello jq(.input.name), n=jq(.input.n) k=jq(.input.nested.k)",
            "plain": "no expression",
            "list": ["jq(.s)", 1, null]
        });
        let fast = render(&template, &data()).expect("all plain paths");
        assert_eq!(fast, crate::render(&template, &data()).unwrap());
        assert_eq!(evaluate(&json!(".input.n"), &data()), Some(json!(2)));
    }

    #[test]
    fn anything_else_goes_to_jaq() {
        for expr in [
            "jq(.input.n + 1)",
            "jq(.input.name.x)",
            "jq(.input[0])",
            "jq(.\"input\")",
            "jq(.input.)",
            "jq(..)",
            "jq(.in put)",
            "jq(.1)",
            "jq(",
        ] {
            assert_eq!(render(&json!({ "x": expr }), &data()), None, "{expr}");
        }
        assert_eq!(evaluate(&json!("length"), &data()), None);
    }
}
