//! Error code patterns of `catch[].error` and `retries.codes`, matched as Direktiv matches
//! them: a pattern is a regular expression searched for anywhere in the code (Go's
//! `regexp.MatchString`, not a whole-code match), and a pattern that is exactly `*` means `.*`.
//! So `myapp` also matches `myapp.input` and `xmyapp`, `.` is any character, and `^…$`
//! anchors a pattern. Direktiv's spec pages call these "glob" patterns while its code and its
//! own examples (`codes: [".*"]`) use regular expressions; flows written for Direktiv rely on
//! what its code does.
//!
//! Direktiv never validates a pattern (an invalid one silently never matches). faasbox refuses
//! one at deploy with its place ([`crate::check_new`]). A flow stored by an earlier faasbox,
//! which matched `*` globs, may hold a pattern that is not a valid regular expression (say
//! `*.timeout.*`): it keeps its glob meaning, so stored flows and running instances behave as
//! before.

use std::fmt;

use regex::{Regex, RegexBuilder};

use crate::yaml::Pos;

/// The longest pattern accepted, in bytes.
pub const MAX_PATTERN: usize = 1024;
/// The most memory one compiled pattern may take (regex's compiled program size).
const COMPILED_LIMIT: usize = 256 * 1024;
/// The most memory one pattern's lazy DFA may grow to while matching.
const DFA_LIMIT: usize = 1024 * 1024;

/// One pattern, compiled.
#[derive(Clone)]
pub struct ErrorPattern {
    text: String,
    pos: Pos,
    compiled: Result<Regex, String>,
}

impl ErrorPattern {
    /// Compiles `text` as Direktiv reads it (written at `pos`); a pattern that does not
    /// compile is kept with its error, which validation reports.
    pub fn new(text: &str, pos: Pos) -> ErrorPattern {
        ErrorPattern {
            text: text.to_string(),
            pos,
            compiled: compile(text),
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Where the pattern is written.
    pub fn pos(&self) -> Pos {
        self.pos
    }

    /// Why the pattern cannot be used as a regular expression, with the fix; `None` if it can.
    pub fn problem(&self) -> Option<String> {
        let why = self.compiled.as_ref().err()?;
        let mut message = format!(
            "error pattern '{}' is not a valid regular expression: {why}. Patterns are regular \
             expressions searched for anywhere in the error code (as in Direktiv; '*' alone \
             matches every code)",
            self.text.escape_default()
        );
        let printable = !self.text.chars().any(char::is_control);
        if self.text.contains('*') && self.text.len() <= MAX_PATTERN && printable {
            message.push_str(&format!(
                "; for the glob '{}' write '{}'",
                self.text,
                glob_to_regex(&self.text)
            ));
        }
        Some(message)
    }

    /// Whether the pattern matches `code`.
    pub fn matches(&self, code: &str) -> bool {
        match &self.compiled {
            Ok(regex) => regex.is_match(code),
            // Only in flows stored before patterns were regular expressions (new flows with
            // such a pattern are refused at deploy): the glob meaning they had then.
            Err(_) => glob_matches(&self.text, code),
        }
    }
}

impl PartialEq for ErrorPattern {
    fn eq(&self, other: &ErrorPattern) -> bool {
        self.text == other.text && self.pos == other.pos
    }
}

impl fmt::Debug for ErrorPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ErrorPattern({:?})", self.text)
    }
}

fn compile(text: &str) -> Result<Regex, String> {
    if text.len() > MAX_PATTERN {
        return Err(format!(
            "it is {} bytes long; a pattern may be at most {MAX_PATTERN}",
            text.len()
        ));
    }
    let source = if text == "*" { ".*" } else { text };
    RegexBuilder::new(source)
        .size_limit(COMPILED_LIMIT)
        .dfa_size_limit(DFA_LIMIT)
        .build()
        .map_err(|e| short_error(&e))
}

/// regex's error without its multi-line drawing: the line that says what is wrong.
fn short_error(e: &regex::Error) -> String {
    match e {
        regex::Error::Syntax(text) => text
            .lines()
            .find_map(|l| l.strip_prefix("error: "))
            .unwrap_or(text)
            .to_string(),
        regex::Error::CompiledTooBig(_) => {
            "it compiles to more than the allowed size; write a simpler pattern".into()
        }
        other => other.to_string(),
    }
}

/// The regular expression that means what `glob` (with `*` as any run of characters) meant.
fn glob_to_regex(glob: &str) -> String {
    let parts: Vec<String> = glob.split('*').map(regex::escape).collect();
    format!("^{}$", parts.join(".*"))
}

/// `*` as any run of characters, the rest literal, matched against the whole code.
fn glob_matches(pattern: &str, code: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == code;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !code.starts_with(first) || code.len() < first.len() + last.len() || !code.ends_with(last) {
        return false;
    }
    let mut rest = &code[first.len()..code.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> ErrorPattern {
        ErrorPattern::new(text, Pos { line: 1, column: 1 })
    }

    /// The cases checked with Go's `regexp.MatchString`, as Direktiv runs them.
    #[test]
    fn patterns_match_as_direktiv_matches_them() {
        assert!(p("testcode").matches("testcode"));
        assert!(p("testcode").matches("testcode2"));
        assert!(p("testcode").matches("mytestcode"));
        assert!(p(".*").matches("anything"));
        assert!(p(".*").matches(""));
        assert!(p("*").matches("a.b"));
        assert!(p("*").matches(""));
        assert!(p("myapp.*").matches("xmyappy"));
        assert!(p("myapp.*").matches("myapp.input"));
        assert!(!p("^testcode$").matches("testcode2"));
        assert!(p("^testcode$").matches("testcode"));
        assert!(p("io.direktiv.error.execution").matches("io_direktiv_error_execution"));
        assert!(p("direktiv.cancels.*").matches("direktiv.cancels.timeout.soft"));
        assert!(!p("direktiv.cancels.*").matches("direktiv.retries.exceeded"));
        assert!(!p("other.*").matches("myapp.input"));
        for pattern in ["testcode", ".*", "*", "^a$", "a|b"] {
            assert_eq!(p(pattern).problem(), None, "{pattern}");
        }
    }

    #[test]
    fn an_invalid_pattern_says_why_and_suggests_the_regular_expression_of_a_glob() {
        let bad = p("*.timeout.*");
        let problem = bad.problem().expect("invalid");
        assert!(
            problem.contains("not a valid regular expression"),
            "{problem}"
        );
        assert!(problem.contains("repetition"), "{problem}");
        assert!(problem.contains(r"write '^.*\.timeout\..*$'"), "{problem}");
        assert!(!problem.contains('\n'), "{problem}");
        // A flow stored before keeps the glob meaning it had.
        assert!(bad.matches("direktiv.cancels.timeout.soft"));
        assert!(!bad.matches("direktiv.retries.exceeded"));
        assert!(p("a(b").problem().is_some());
        assert!(p(&"a".repeat(MAX_PATTERN + 1)).problem().is_some());
    }

    #[test]
    fn a_pattern_too_large_once_compiled_is_refused() {
        let huge = p("(a{1000}){1000}");
        let problem = huge.problem().expect("too large");
        assert!(problem.contains("simpler pattern"), "{problem}");
    }

    #[test]
    fn globs_of_stored_flows() {
        assert!(glob_matches("*", "a.b"));
        assert!(glob_matches("app.*", "app.input"));
        assert!(!glob_matches("app.*", "other.input"));
        assert!(glob_matches("*.timeout.*", "direktiv.cancels.timeout.soft"));
        assert!(glob_matches("a.b", "a.b"));
        assert!(!glob_matches("a.b", "a.bc"));
        assert!(!glob_matches("a*a", "a"));
    }
}
