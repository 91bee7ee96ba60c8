//! Bounds on a jq expression, checked before jaq sees it: its length, and how deeply it
//! nests. jaq's lexer, parser and compiler recurse once per level of brackets, string
//! interpolation, operator chain and keyword (`if`, `try`, `def`, `reduce`, …), so an
//! expression such as a thousand nested parentheses or `1 + 1 + …` with thousands of terms
//! would overflow a thread's stack. This scan follows jaq's lexer (same tokens, comments and
//! string escapes, without recursion) and counts, along every path of nested blocks, the
//! blocks and the tokens that make the parser recurse. That count bounds the depth of the
//! parse tree, so a bounded expression parses and compiles within a known stack.

use super::TemplateError;

/// The longest expression accepted (bytes).
pub const MAX_EXPR_BYTES: usize = 16 * 1024;

/// The deepest nesting accepted: brackets, string interpolations, operators and keywords
/// counted along the way from the outside in (see the module documentation).
pub const MAX_NESTING: usize = 128;

/// Keywords after which jaq's parser recurses.
const NESTING_WORDS: [&str; 10] = [
    "def", "if", "try", "catch", "label", "reduce", "foreach", "as", "and", "or",
];

/// Refuses an expression longer than [`MAX_EXPR_BYTES`] or nesting deeper than
/// [`MAX_NESTING`], naming where.
pub fn check(expr: &str) -> Result<(), TemplateError> {
    if expr.len() > MAX_EXPR_BYTES {
        return Err(TemplateError(format!(
            "jq({}) is {} bytes long; an expression may have at most {MAX_EXPR_BYTES}: split it \
             into smaller ones (for example over several states)",
            preview(expr),
            expr.len()
        )));
    }
    let scan = nesting(expr);
    if scan.max > MAX_NESTING {
        let at = expr[..scan.over_at].chars().count() + 1;
        return Err(TemplateError(format!(
            "jq({}) nests too deeply at character {at}: more than {MAX_NESTING} levels of \
             brackets, operators and keywords; simplify it or split it into smaller expressions",
            preview(expr)
        )));
    }
    Ok(())
}

/// The start of an expression, for messages.
fn preview(expr: &str) -> String {
    const SHOWN: usize = 40;
    match expr.char_indices().nth(SHOWN) {
        Some((at, _)) => format!("{}…", &expr[..at]),
        None => expr.to_string(),
    }
}

/// The result of a scan: the deepest nesting, and the byte offset where it first went past
/// [`MAX_NESTING`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nesting {
    /// The deepest nesting along any path (blocks and the tokens jaq's parser recurses on).
    pub max: usize,
    /// The byte offset where it first went past [`MAX_NESTING`] (0 if it never did).
    pub over_at: usize,
    /// The deepest nesting of blocks and strings alone (what jaq's lexer recurses on).
    pub blocks: usize,
}

enum Frame {
    /// Inside `(…)`, `[…]` or `{…}` (or `\(…)` in a string): its closing character and the
    /// nesting tokens seen in it so far.
    Block { close: u8, ops: usize },
    /// Inside a string literal.
    Str,
}

/// Scans `expr` as jaq's lexer does and measures its nesting. Stops where jaq's lexer would
/// stop with an error (jaq then reports that error).
pub fn nesting(expr: &str) -> Nesting {
    let b = expr.as_bytes();
    let mut stack: Vec<Frame> = Vec::new();
    let mut root_ops = 0usize;
    let mut depth = 0usize;
    let mut blocks = 0usize;
    let mut result = Nesting {
        max: 0,
        over_at: 0,
        blocks: 0,
    };
    let mut i = 0usize;
    while i < b.len() {
        if let Some(Frame::Str) = stack.last() {
            match b[i] {
                b'"' => {
                    stack.pop();
                    depth -= 1;
                    blocks -= 1;
                    i += 1;
                }
                b'\\' => match b.get(i + 1) {
                    Some(b'(') => {
                        stack.push(Frame::Block {
                            close: b')',
                            ops: 0,
                        });
                        depth += 1;
                        blocks += 1;
                        result.blocks = result.blocks.max(blocks);
                        raise(depth, i, &mut result);
                        i += 2;
                    }
                    // Any other escape: its character is part of the string.
                    Some(_) => i += 1 + utf8_len(b[i + 1]),
                    None => break,
                },
                _ => i += 1,
            }
            continue;
        }
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => i += 1,
            b'#' => i = comment_end(b, i),
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                let start = i;
                i = word_end(b, i);
                if NESTING_WORDS.contains(&&expr[start..i]) {
                    count_op(&mut stack, &mut root_ops);
                    depth += 1;
                    raise(depth, start, &mut result);
                }
            }
            b'$' | b'@' => i = ident1_end(b, i + 1),
            b'0'..=b'9' => i = number_end(b, i),
            b'|' | b'=' | b'!' | b'<' | b'>' | b'+' | b'-' | b'*' | b'/' | b'%' => {
                let start = i;
                i += 1;
                while i < b.len() && b"|=!<>+*/%".contains(&b[i]) {
                    i += 1;
                }
                count_op(&mut stack, &mut root_ops);
                depth += 1;
                raise(depth, start, &mut result);
            }
            b'.' => {
                i += 1;
                match b.get(i) {
                    Some(b'.') => i += 1,
                    Some(b'a'..=b'z' | b'A'..=b'Z' | b'_') => i = ident0_end(b, i),
                    _ => {}
                }
            }
            b',' => {
                count_op(&mut stack, &mut root_ops);
                depth += 1;
                raise(depth, i, &mut result);
                i += 1;
            }
            b':' | b';' | b'?' => i += 1,
            b'"' => {
                stack.push(Frame::Str);
                depth += 1;
                blocks += 1;
                result.blocks = result.blocks.max(blocks);
                raise(depth, i, &mut result);
                i += 1;
            }
            b'(' | b'[' | b'{' => {
                let close = match c {
                    b'(' => b')',
                    b'[' => b']',
                    _ => b'}',
                };
                stack.push(Frame::Block { close, ops: 0 });
                depth += 1;
                blocks += 1;
                result.blocks = result.blocks.max(blocks);
                raise(depth, i, &mut result);
                i += 1;
            }
            _ => {
                // Not the start of a token: jaq's lexer ends the innermost block here, taking
                // the character if it closes that block; at the top level it stops.
                let Some(Frame::Block { close, ops }) = stack.pop() else {
                    break;
                };
                depth -= 1 + ops;
                blocks -= 1;
                if c == close {
                    i += 1;
                }
            }
        }
    }
    result
}

fn raise(depth: usize, at: usize, result: &mut Nesting) {
    if depth > MAX_NESTING && result.max <= MAX_NESTING {
        result.over_at = at;
    }
    result.max = result.max.max(depth);
}

fn count_op(stack: &mut [Frame], root_ops: &mut usize) {
    match stack.last_mut() {
        Some(Frame::Block { ops, .. }) => *ops += 1,
        _ => *root_ops += 1,
    }
}

/// The length of the UTF-8 character starting with byte `first`.
fn utf8_len(first: u8) -> usize {
    match first {
        0xf0..=0xff => 4,
        0xe0..=0xef => 3,
        0xc0..=0xdf => 2,
        _ => 1,
    }
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// `[a-zA-Z0-9_]*` from `i`.
fn ident0_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_ident(b[i]) {
        i += 1;
    }
    i
}

/// `[a-zA-Z_][a-zA-Z0-9_]*` from `i` (nothing if it does not start so).
fn ident1_end(b: &[u8], i: usize) -> usize {
    match b.get(i) {
        Some(c) if c.is_ascii_alphabetic() || *c == b'_' => ident0_end(b, i + 1),
        _ => i,
    }
}

/// A word: an identifier, possibly `module::name` (or `module::$name`, `module::@name`).
fn word_end(b: &[u8], i: usize) -> usize {
    let mut i = ident0_end(b, i + 1);
    if b.get(i) == Some(&b':') && b.get(i + 1) == Some(&b':') {
        i += 2;
        if matches!(b.get(i), Some(b'@' | b'$')) {
            i += 1;
        }
        i = ident1_end(b, i);
    }
    i
}

/// A number: digits, an optional fraction and an optional exponent.
fn number_end(b: &[u8], i: usize) -> usize {
    let digits = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    let mut i = digits(i);
    if b.get(i) == Some(&b'.') {
        i = digits(i + 1);
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        i = digits(i);
    }
    i
}

/// The end of a comment starting at `i`: the end of its line, or of the next one while a
/// line ends with an odd number of backslashes (as jaq reads comments).
fn comment_end(b: &[u8], mut i: usize) -> usize {
    loop {
        let line_end = b[i..]
            .iter()
            .position(|&c| c == b'\n')
            .map_or(b.len(), |p| i + p);
        let mut line = &b[i..line_end];
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        let backslashes = line.iter().rev().take_while(|&&c| c == b'\\').count();
        i = (line_end + 1).min(b.len());
        if backslashes % 2 == 0 || line_end >= b.len() {
            return i;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_expressions_pass() {
        for expr in [
            ".input.name",
            ".items | map(select(.x > 1) | {a: .a, b: .b}) | sort_by(.a)",
            "if .a then \"x\\(.b)y\" elif .c then 1 else [1, 2, 3] end",
            "reduce .[] as $x (0; . + $x)",
            "def f(g): g | g; f(.a) # comment with ((((",
            "@base64 \"\\(.a)\"",
            "try error(\"x\") catch .",
        ] {
            assert!(check(expr).is_ok(), "{expr}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_with_its_place() {
        let parens = format!("{}1{}", "(".repeat(1000), ")".repeat(1000));
        let err = check(&parens).unwrap_err().0;
        assert!(err.contains("nests too deeply at character 129"), "{err}");
        let sums = format!("1{}", " + 1".repeat(3000));
        let err = check(&sums).unwrap_err().0;
        assert!(err.contains("nests too deeply"), "{err}");
        for deep in [
            "-".repeat(200) + "1",
            "try ".repeat(200) + "1",
            "if . then ".repeat(200) + "1" + &" else 2 end".repeat(200),
            ". as $x | ".repeat(200) + ".",
            "\"\\(".repeat(100) + "1" + &")\"".repeat(100),
        ] {
            assert!(check(&deep).is_err(), "{}", &deep[..20]);
        }
    }

    #[test]
    fn brackets_in_strings_and_comments_do_not_count_but_interpolations_do() {
        let in_string = format!("\"{}\"", "(".repeat(1000));
        assert!(check(&in_string).is_ok());
        let in_comment = format!("1 # {}\n", "(".repeat(1000));
        assert!(check(&in_comment).is_ok());
        // A comment line ending in an odd number of backslashes continues on the next line.
        let continued = format!("1 # \\\n{}", ")".repeat(1000));
        assert_eq!(nesting(&continued).max, 0);
        let escaped = "\"\\\"(((\"";
        assert_eq!(nesting(escaped).blocks, 1);
    }

    #[test]
    fn closing_brackets_that_do_not_match_unwind_like_jaq() {
        // `( [ )`: the `[` block ends without its `]`, the `)` closes the `(`.
        assert_eq!(nesting("( [ ) (((").blocks, 3);
        // At the top level, a stray closer ends the scan (jaq reports it).
        assert_eq!(nesting(") ((((").max, 0);
    }

    #[test]
    fn long_expressions_are_refused() {
        let long = ".a".repeat(MAX_EXPR_BYTES);
        let err = check(&long).unwrap_err().0;
        assert!(err.contains("at most 16384"), "{err}");
    }
}
