//! Deploy-time check that a function's `secrets` and its `input` template go together: a
//! secret reaches the function only through the template (as `.secrets.NAME`), and the
//! template sees only the secrets the spec lists (any other is `null`). So a listed secret the
//! template never uses, a template that uses a secret the spec does not list, and secrets
//! without a template are all refused, each with the fix.
//!
//! The template's `jq(…)` expressions are read for `.secrets` references: `.secrets.NAME`,
//! `.secrets."NAME"` and `.secrets["NAME"]` name one secret; any other use of `.secrets` (a
//! pipe, `keys`, `.["secrets"]`) may use them all. `.input.secrets` is the request's field.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::model::FunctionSpec;
use crate::template::{self, Piece};

/// How to list a secret, for messages (the CLI's flag, and the spec's field).
const LIST_THEM: &str = "list it with --secret NAME (\"secrets\": [\"NAME\"] in the spec)";

/// How a template uses `.secrets`.
#[derive(Debug, Default, PartialEq, Eq)]
struct Uses {
    /// Secrets named one by one.
    named: BTreeSet<String>,
    /// `.secrets` used otherwise: every listed secret may be used.
    all: bool,
}

/// Every mismatch between the spec's `secrets` and its `input` template, one sentence each
/// (empty when they fit). A template that does not parse is left to `template::check`.
pub fn problems(spec: &FunctionSpec) -> Vec<String> {
    let listed: BTreeSet<&str> = spec.secrets.iter().map(String::as_str).collect();
    // A code function's handler gets every listed secret in `context.secrets`, template or not.
    let code = spec.effective_contract() == faasbox_proto::Contract::Code;
    let Some(input) = &spec.input else {
        if listed.is_empty() || code {
            return Vec::new();
        }
        return vec![format!(
            "`secrets` lists {} but there is no `input` template, so the function never sees \
             {}: a secret reaches it only through the template, e.g. --input '{{\"auth\": \
             \"jq(.secrets.{})\", \"data\": \"jq(.input)\"}}'",
            quoted(listed.iter().copied()),
            if listed.len() == 1 { "it" } else { "them" },
            listed.iter().next().copied().unwrap_or("NAME")
        )];
    };
    let uses = uses_of(input);
    let mut problems = Vec::new();
    let unlisted: Vec<&str> = uses
        .named
        .iter()
        .map(String::as_str)
        .filter(|n| !listed.contains(n))
        .collect();
    if !unlisted.is_empty() {
        problems.push(format!(
            "the `input` template uses .secrets.{} but `secrets` does not list {} (the \
             template would see null): {}",
            unlisted.join(", .secrets."),
            if unlisted.len() == 1 { "it" } else { "them" },
            LIST_THEM.replace("NAME", unlisted[0])
        ));
    }
    if uses.all && listed.is_empty() {
        problems.push(format!(
            "the `input` template uses .secrets but `secrets` lists none (it would be empty): \
             {LIST_THEM}"
        ));
    }
    if !uses.all && !code {
        let unused: Vec<&str> = listed
            .iter()
            .copied()
            .filter(|n| !uses.named.contains(*n))
            .collect();
        if !unused.is_empty() {
            problems.push(format!(
                "`secrets` lists {} but the `input` template never uses {}, so the function \
                 never sees {}: use jq(.secrets.{}) in the template, or drop the secret",
                quoted(unused.iter().copied()),
                if unused.len() == 1 { "it" } else { "them" },
                if unused.len() == 1 { "it" } else { "them" },
                unused[0]
            ));
        }
    }
    problems
}

fn quoted<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `.secrets` uses of every `jq(…)` in `template`.
fn uses_of(template: &Value) -> Uses {
    let mut uses = Uses::default();
    visit(template, &mut |text| {
        let Ok(pieces) = template::split(text) else {
            return;
        };
        for piece in pieces {
            if let Piece::Expr(expr) = piece {
                scan(expr, &mut uses);
            }
        }
    });
    uses
}

fn visit(value: &Value, f: &mut impl FnMut(&str)) {
    match value {
        Value::String(text) => f(text),
        Value::Array(items) => items.iter().for_each(|v| visit(v, f)),
        Value::Object(map) => map.values().for_each(|v| visit(v, f)),
        _ => {}
    }
}

/// Finds `.secrets` in one jq expression and what follows it.
fn scan(expr: &str, uses: &mut Uses) {
    // `.["secrets"]` and the like: no name can be told.
    if expr.contains("\"secrets\"") {
        uses.all = true;
    }
    let bytes = expr.as_bytes();
    let mut from = 0;
    while let Some(found) = expr[from..].find(".secrets") {
        let start = from + found;
        let end = start + ".secrets".len();
        from = end;
        let before_ok = start == 0 || !is_ident(bytes[start - 1]);
        let after_ok = bytes.get(end).is_none_or(|b| !is_ident(*b));
        if !before_ok || !after_ok {
            continue;
        }
        match named_after(&expr[end..]) {
            Some(name) => {
                uses.named.insert(name);
            }
            None => uses.all = true,
        }
    }
}

/// The secret named right after `.secrets`: `.NAME`, `."NAME"`, `["NAME"]` or `.["NAME"]`.
fn named_after(rest: &str) -> Option<String> {
    let rest = rest.trim_start();
    let rest = match rest.strip_prefix('.') {
        Some(after_dot) => {
            let after_dot = after_dot.trim_start();
            if let Some(quoted) = after_dot.strip_prefix('"') {
                return string_literal(quoted);
            }
            if let Some(bracket) = after_dot.strip_prefix('[') {
                bracket
            } else {
                let name: String = after_dot
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                return (!name.is_empty()).then_some(name);
            }
        }
        None => rest.strip_prefix('[')?,
    };
    string_literal(rest.trim_start().strip_prefix('"')?)
}

/// A jq string literal without escapes or interpolation, up to its closing quote.
fn string_literal(text: &str) -> Option<String> {
    let end = text.find('"')?;
    let name = &text[..end];
    (!name.is_empty() && !name.contains('\\')).then(|| name.to_string())
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(secrets: &[&str], input: Option<Value>) -> FunctionSpec {
        let mut value = json!({"image": "x", "secrets": secrets});
        if let Some(input) = input {
            value["input"] = input;
        }
        serde_json::from_value(value).unwrap()
    }

    fn uses(expr: &str) -> Uses {
        let mut uses = Uses::default();
        scan(expr, &mut uses);
        uses
    }

    #[test]
    fn references_are_read_in_every_form() {
        for (expr, name) in [
            (".secrets.token", "token"),
            (".secrets . token | ascii", "token"),
            (".secrets.\"my-token\"", "my-token"),
            (".secrets[\"my.token\"]", "my.token"),
            (".secrets.[\"t\"]", "t"),
            ("\"bearer \" + .secrets.t2", "t2"),
        ] {
            let found = uses(expr);
            assert_eq!(found.named, BTreeSet::from([name.to_string()]), "{expr}");
            assert!(!found.all, "{expr}");
        }
        for expr in [
            ".secrets",
            ".secrets | keys",
            "(.secrets).token",
            ".[\"secrets\"].token",
        ] {
            assert!(uses(expr).all, "{expr}");
        }
        // Another object's `secrets` field is not the secrets.
        for expr in [
            ".input.secretsX",
            ".mysecrets.token",
            ".input.secrets.token",
            ".input",
        ] {
            assert_eq!(uses(expr), Uses::default(), "{expr}");
        }
    }

    #[test]
    fn a_code_function_s_secrets_need_no_template() {
        let mut code = spec(&["token", "db"], None);
        code.contract = faasbox_proto::Contract::Code;
        assert!(problems(&code).is_empty());
        // A template may use some of them; one it names unlisted is still refused.
        code.input = Some(json!({"a": "jq(.secrets.token)"}));
        assert!(problems(&code).is_empty());
        code.input = Some(json!({"a": "jq(.secrets.other)"}));
        assert_eq!(problems(&code).len(), 1);
    }

    #[test]
    fn secrets_and_template_must_fit() {
        let template = json!({"auth": "bearer jq(.secrets.token)", "data": "jq(.input)"});
        assert!(problems(&spec(&["token"], Some(template.clone()))).is_empty());
        assert!(problems(&spec(&[], None)).is_empty());
        assert!(problems(&spec(&[], Some(json!({"d": "jq(.input)"})))).is_empty());
        // A secret without a template.
        let p = problems(&spec(&["token"], None));
        assert!(
            p.len() == 1 && p[0].contains("no `input` template") && p[0].contains("--input"),
            "{p:?}"
        );
        // A template using a secret the spec does not list.
        let p = problems(&spec(&[], Some(template.clone())));
        assert!(
            p.len() == 1 && p[0].contains(".secrets.token") && p[0].contains("--secret token"),
            "{p:?}"
        );
        // A listed secret the template never uses.
        let p = problems(&spec(&["token", "other"], Some(template)));
        assert!(p.len() == 1 && p[0].contains("'other'"), "{p:?}");
        // Using them all covers every listed one; but none listed is an error.
        let all = json!({"all": "jq(.secrets)"});
        assert!(problems(&spec(&["a", "b"], Some(all.clone()))).is_empty());
        assert_eq!(problems(&spec(&[], Some(all))).len(), 1);
    }
}
