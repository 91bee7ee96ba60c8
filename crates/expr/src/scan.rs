//! Finding `jq(...)` in a string: the closing parenthesis is the one that balances the
//! opening one, parentheses inside jq string literals not counted.

use super::TemplateError;

/// A part of a template string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Text outside any `jq(…)`, kept as it is.
    Text(&'a str),
    /// The expression between `jq(` and its closing `)`.
    Expr(&'a str),
}

/// Splits `text` into literal text and `jq(...)` expressions.
pub fn split(text: &str) -> Result<Vec<Piece<'_>>, TemplateError> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("jq(") {
        if start > 0 {
            pieces.push(Piece::Text(&rest[..start]));
        }
        let body = &rest[start + 3..];
        let end = closing_paren(body).ok_or_else(|| {
            TemplateError(format!(
                "'{}' has a jq( without its closing parenthesis",
                text.escape_debug()
            ))
        })?;
        let expr = &body[..end];
        if expr.trim().is_empty() {
            return Err(TemplateError(format!(
                "'{}' has an empty jq() expression",
                text.escape_debug()
            )));
        }
        pieces.push(Piece::Expr(expr));
        rest = &body[end + 1..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    Ok(pieces)
}

/// The byte index of the `)` closing an already opened parenthesis.
fn closing_paren(body: &str) -> Option<usize> {
    let mut depth = 1usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}
