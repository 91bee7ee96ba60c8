//! Splitting a direktiv-cmd command line into words exactly as Direktiv's command server does.
//!
//! Direktiv (v0.8.1 to today) splits each command with mattn/go-shellwords v1.0.12, with
//! environment expansion and command substitution switched on, and runs the first word with the
//! rest as its arguments; no shell runs the command itself. Users' commands rely on how that
//! parser behaves, including its surprises, so this module reproduces its behaviour (written from
//! its documented and observed behaviour, not translated from its code):
//!
//! - words split at unquoted spaces, tabs, CRs and LFs; `"…"` and `'…'` group; a backslash outside
//!   single quotes takes the next character literally;
//! - parsing stops at the first unquoted `;`, `&`, `|`, `<` or `>`: the rest of the line is
//!   dropped (a word of digits right before `>` too) — [`Words::cut_at`] says where;
//! - `` `…` `` and `$(…)` (not inside double quotes) run through a shell when the parser reaches
//!   their end ([`Step::Substitute`]); the output, trimmed, takes their place;
//! - then every word is expanded: `$NAME` and `${NAME}` from the environment (an undefined one is
//!   empty). Single quotes do **not** stop it, and `\$` does not either (the backslash is consumed
//!   first); `'\$X'` or `\\\$X` give a literal `$X`;
//! - a word that did not end in a closing quote is split again after expansion (so `$FOO` with
//!   spaces becomes several words, and an empty one disappears), with quotes in the expanded text
//!   parsed as quotes; a word that ended in a closing quote stays one word;
//! - errors: unbalanced quotes, a `(` not after `$`, a `)` with no `$(` →
//!   `invalid command line string`.
//!
//! Bugs of the original that users may meet, kept on purpose (Direktiv's users get them too):
//! `$` followed by a character that cannot start a name repeats the rest of the word (`a$-b` →
//! `a-bb`); after a non-ASCII character the variable name is read at the wrong byte offset
//! (`é$BAR` → `é`); `${` with a character that is not part of a name leaves the whole word as it
//! is (`${BAR-x}`); `"$(echo hi)"` is not substituted and comes out garbled
//! (`(echo hi)echo hi)`); whitespace inside quotes before a `$(…)` in the same line leaks into
//! the substituted command text and can cut the word short (where the original would crash,
//! this returns [`WordsError::Garbled`]). "Letter" and "digit" in names follow Rust's
//! `is_alphabetic`/`is_numeric`, a slightly wider set than Go's for rare scripts.
//!
//! Checked against go-shellwords v1.0.12 itself on 40,000 random command lines built from
//! quotes, escapes, `$`, braces, parentheses, backticks, operators and non-ASCII text: the
//! words (or the error) agree everywhere except where the substituted shell's own output
//! differed between the runs (`$$`, `$_`).

/// The words of a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Words {
    pub args: Vec<String>,
    /// The unquoted character at which the parser stopped, dropping the rest of the line.
    pub cut_at: Option<char>,
}

/// One step of splitting: done, or a command substitution to run first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Done(Words),
    /// Run this text with `sh -c` and hand its output to [`Splitter::substituted`].
    Substitute(String),
}

/// Why a command line cannot be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WordsError {
    /// Go's wording, which Direktiv reported as the command's `Error`.
    #[error("invalid command line string")]
    Invalid,
    /// A quoted space before `$(…)` confused the original parser (it crashed there).
    #[error("invalid command line string: the text before $(…) cannot be told apart from it; put the substitution in a word of its own")]
    Garbled,
}

/// Whether the last word ended in a closing quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Got {
    Nothing,
    Unquoted,
    Quoted,
}

/// Which substitution is waiting for its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    Backtick,
    Dollar,
}

/// Splits one command line; drive it with [`Splitter::step`] until [`Step::Done`].
pub struct Splitter<'a> {
    chars: Vec<char>,
    pos: usize,
    expand: bool,
    substitute: bool,
    getenv: &'a (dyn Fn(&str) -> String + Sync),
    args: Vec<Vec<u8>>,
    /// The word so far, as bytes (the original slices it by byte counts).
    word: Vec<u8>,
    /// The text of the substitution being read (also, as in the original, quoted whitespace).
    inner: Vec<u8>,
    escaped: bool,
    double: bool,
    single: bool,
    backtick: bool,
    dollar: bool,
    got: Got,
    waiting: Option<Waiting>,
    cut_at: Option<char>,
}

impl<'a> Splitter<'a> {
    /// A splitter with expansion and substitution on (Direktiv's settings); `getenv` gives a
    /// variable's value, empty when undefined.
    pub fn new(line: &str, getenv: &'a (dyn Fn(&str) -> String + Sync)) -> Splitter<'a> {
        Splitter::with(line, getenv, true, true)
    }

    fn with(
        line: &str,
        getenv: &'a (dyn Fn(&str) -> String + Sync),
        expand: bool,
        substitute: bool,
    ) -> Splitter<'a> {
        Splitter {
            chars: line.chars().collect(),
            pos: 0,
            expand,
            substitute,
            getenv,
            args: Vec::new(),
            word: Vec::new(),
            inner: Vec::new(),
            escaped: false,
            double: false,
            single: false,
            backtick: false,
            dollar: false,
            got: Got::Nothing,
            waiting: None,
            cut_at: None,
        }
    }

    /// Goes on until the end of the line or the next substitution.
    pub fn step(&mut self) -> Result<Step, WordsError> {
        if self.waiting.is_some() {
            // The caller must hand over the output first.
            return Err(WordsError::Invalid);
        }
        while let Some(&c) = self.chars.get(self.pos) {
            self.pos += 1;
            if self.escaped {
                push(&mut self.word, c);
                self.escaped = false;
                self.got = Got::Unquoted;
                continue;
            }
            if c == '\\' {
                if self.single {
                    push(&mut self.word, c);
                } else {
                    self.escaped = true;
                }
                continue;
            }
            if is_space(c) {
                if self.single || self.double || self.backtick || self.dollar {
                    push(&mut self.word, c);
                    push(&mut self.inner, c);
                } else if self.got != Got::Nothing {
                    self.end_word()?;
                }
                continue;
            }
            match c {
                '`' if !self.single && !self.double && !self.dollar => {
                    if self.substitute {
                        if self.backtick {
                            self.waiting = Some(Waiting::Backtick);
                            return Ok(Step::Substitute(lossy(&self.inner)));
                        }
                        self.inner.clear();
                        self.backtick = true;
                        continue;
                    }
                    self.inner.clear();
                    self.backtick = !self.backtick;
                }
                ')' if !self.single && !self.double && !self.backtick => {
                    if self.substitute {
                        if self.dollar {
                            self.waiting = Some(Waiting::Dollar);
                            return Ok(Step::Substitute(lossy(&self.inner)));
                        }
                        // A `)` without `$(` opens a substitution that never closes.
                        self.inner.clear();
                        self.dollar = true;
                        continue;
                    }
                    self.inner.clear();
                    self.dollar = !self.dollar;
                }
                '(' if !self.single && !self.double && !self.backtick => {
                    if !self.dollar && self.word.last() == Some(&b'$') {
                        self.dollar = true;
                        self.word.push(b'(');
                        continue;
                    }
                    return Err(WordsError::Invalid);
                }
                '"' if !self.single && !self.dollar => {
                    if self.double {
                        self.got = Got::Quoted;
                    }
                    self.double = !self.double;
                    continue;
                }
                '\'' if !self.double && !self.dollar => {
                    if self.single {
                        self.got = Got::Quoted;
                    }
                    self.single = !self.single;
                    continue;
                }
                ';' | '&' | '|' | '<' | '>'
                    if !(self.single || self.double || self.backtick || self.dollar) =>
                {
                    if c == '>' && self.word.first().is_some_and(u8::is_ascii_digit) {
                        // `2>…`: the descriptor number goes with the redirection.
                        self.got = Got::Nothing;
                    }
                    self.cut_at = Some(c);
                    break;
                }
                _ => {}
            }
            self.got = Got::Unquoted;
            push(&mut self.word, c);
            if self.backtick || self.dollar {
                push(&mut self.inner, c);
            }
        }
        if self.got != Got::Nothing {
            self.end_word()?;
        }
        if self.escaped || self.single || self.double || self.backtick || self.dollar {
            return Err(WordsError::Invalid);
        }
        Ok(Step::Done(Words {
            args: self.args.iter().map(|arg| lossy(arg)).collect(),
            cut_at: self.cut_at,
        }))
    }

    /// The output of the substitution [`Splitter::step`] asked for; it replaces the
    /// substitution's text in the word.
    pub fn substituted(&mut self, output: &str) -> Result<(), WordsError> {
        let cut = match self.waiting.take() {
            Some(Waiting::Backtick) => {
                self.backtick = false;
                self.inner.len()
            }
            Some(Waiting::Dollar) => {
                self.dollar = false;
                self.inner.len() + 2
            }
            None => return Err(WordsError::Invalid),
        };
        let keep = self
            .word
            .len()
            .checked_sub(cut)
            .ok_or(WordsError::Garbled)?;
        self.word.truncate(keep);
        self.word.extend_from_slice(output.as_bytes());
        self.inner.clear();
        Ok(())
    }

    /// Ends the current word: expanded and, unless it ended in a quote, split again.
    fn end_word(&mut self) -> Result<(), WordsError> {
        if self.expand {
            let expanded = expand(&self.word, self.getenv);
            if self.got == Got::Unquoted {
                let text = lossy(&expanded);
                let mut again = Splitter::with(&text, self.getenv, false, false);
                match again.step()? {
                    Step::Done(words) => self
                        .args
                        .extend(words.args.into_iter().map(String::into_bytes)),
                    // Substitution is off in the second pass.
                    Step::Substitute(_) => return Err(WordsError::Invalid),
                }
            } else {
                self.args.push(expanded);
            }
        } else {
            self.args.push(self.word.clone());
        }
        self.word.clear();
        self.got = Got::Nothing;
        Ok(())
    }
}

/// Splits a line without running anything: a substitution in it is an error.
#[cfg(test)]
fn split_plain(line: &str, getenv: &(dyn Fn(&str) -> String + Sync)) -> Result<Words, WordsError> {
    match Splitter::new(line, getenv).step()? {
        Step::Done(words) => Ok(words),
        Step::Substitute(_) => Err(WordsError::Invalid),
    }
}

/// Expands `$NAME` and `${NAME}` in a word (see the module's notes for the quirks kept).
fn expand(word: &[u8], getenv: &dyn Fn(&str) -> String) -> Vec<u8> {
    let text = lossy(word);
    let chars: Vec<char> = text.chars().collect();
    // Names are cut from the word's bytes at character positions, as the original does.
    let bytes = word;
    let slice = |from: usize, to: usize| lossy(bytes.get(from..to).unwrap_or_default());
    let mut out = Vec::with_capacity(word.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            i += 1;
            let Some(&next) = chars.get(i) else { break };
            push(&mut out, next);
        } else if c == '$' {
            i += 1;
            let Some(&first) = chars.get(i) else {
                push(&mut out, '$');
                break;
            };
            if first == '{' {
                i += 1;
                let start = i;
                let mut last = c;
                while let Some(&n) = chars.get(i) {
                    last = n;
                    if n == '\\' {
                        i += 1;
                        if i == chars.len() {
                            return word.to_vec();
                        }
                        i += 1;
                        continue;
                    }
                    if n == '}' || !is_name_char(n) {
                        break;
                    }
                    i += 1;
                }
                if last != '}' {
                    return word.to_vec();
                }
                if i > start {
                    out.extend_from_slice(getenv(&slice(start, i)).as_bytes());
                }
            } else {
                let start = i;
                while let Some(&n) = chars.get(i) {
                    if n == '\\' {
                        i += 1;
                        if i == chars.len() {
                            return word.to_vec();
                        }
                        i += 1;
                        continue;
                    }
                    if !is_name_char(n) {
                        break;
                    }
                    i += 1;
                }
                if i > start {
                    out.extend_from_slice(getenv(&slice(start, i)).as_bytes());
                    i -= 1;
                } else {
                    out.extend_from_slice(bytes.get(start..).unwrap_or_default());
                }
            }
        } else {
            push(&mut out, c);
        }
        i += 1;
    }
    out
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_name_char(c: char) -> bool {
    c == '_' || c.is_alphabetic() || c.is_numeric()
}

fn push(buf: &mut Vec<u8>, c: char) {
    let mut utf8 = [0u8; 4];
    buf.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `BAR=x`, `FOO="a b"`, `Q=a"b c"d`, `SEMI=a;b`; everything else undefined.
    fn env(name: &str) -> String {
        match name {
            "BAR" => "x".into(),
            "FOO" => "a b".into(),
            "Q" => "a\"b c\"d".into(),
            "SEMI" => "a;b".into(),
            _ => String::new(),
        }
    }

    fn words(line: &str) -> Vec<String> {
        split_plain(line, &env)
            .unwrap_or_else(|e| panic!("{line}: {e}"))
            .args
    }

    /// Splits with substitutions answered by `run` (command text → output).
    fn with_substitutions(
        line: &str,
        run: impl Fn(&str) -> Result<String, WordsError>,
    ) -> Result<Words, WordsError> {
        let mut splitter = Splitter::new(line, &env);
        loop {
            match splitter.step()? {
                Step::Done(words) => return Ok(words),
                Step::Substitute(text) => splitter.substituted(&run(&text)?)?,
            }
        }
    }

    /// A stand-in shell for the table's substitutions (the agent's tests run the real one).
    fn fake_shell(text: &str) -> Result<String, WordsError> {
        Ok(match text {
            "echo a b" => "a b",
            "echo mid" => "mid",
            "printf \"q r\"" => "q r",
            "echo '$BAR'" => "$BAR",
            "echo hi" => "hi",
            other => panic!("unexpected substitution {other:?}"),
        }
        .to_string())
    }

    #[test]
    fn plain_words_and_quotes() {
        assert_eq!(words("echo -n \"hello\""), ["echo", "-n", "hello"]);
        assert_eq!(
            words("bash -c \"env | grep HELLO\""),
            ["bash", "-c", "env | grep HELLO"]
        );
        assert_eq!(
            words("stat -c \"%a\" hello.txt"),
            ["stat", "-c", "%a", "hello.txt"]
        );
        assert_eq!(words("  ls \t -la\n"), ["ls", "-la"]);
        assert_eq!(words("echo --o=\"a b\""), ["echo", "--o=a b"]);
        assert_eq!(words("echo \"\" x"), ["echo", "", "x"]);
        assert!(words("").is_empty());
        assert!(words("   ").is_empty());
    }

    #[test]
    fn environment_expansion_as_direktiv_does_it() {
        // The facts table (go-shellwords v1.0.12 with ParseEnv).
        assert_eq!(words("echo $BAR"), ["echo", "x"]);
        assert_eq!(words("echo ${BAR}"), ["echo", "x"]);
        assert_eq!(words("echo $FOO"), ["echo", "a", "b"]);
        assert_eq!(words("echo \"$FOO\""), ["echo", "a b"]);
        assert_eq!(words("echo '$BAR'"), ["echo", "x"]);
        assert_eq!(words("echo \\$BAR"), ["echo", "x"]);
        assert_eq!(words("echo \\\\\\$BAR"), ["echo", "$BAR"]);
        assert_eq!(words("echo '\\$BAR'"), ["echo", "$BAR"]);
        assert_eq!(words("echo $NOPE end"), ["echo", "end"]);
        assert_eq!(words("echo \"$NOPE\" end"), ["echo", "", "end"]);
        assert_eq!(words("echo ${BAR-x}"), ["echo", "${BAR-x}"]);
        assert_eq!(words("echo ${}"), ["echo"]);
        assert_eq!(words("echo $"), ["echo", "$"]);
        assert_eq!(words("echo a$-b"), ["echo", "a-bb"]);
        assert_eq!(words("echo é$BAR"), ["echo", "é"]);
        assert_eq!(words("echo ${BAR"), ["echo", "${BAR"]);
        assert_eq!(words("echo pre${BAR}post"), ["echo", "prexpost"]);
        // Quotes inside an expanded value are parsed again; a `;` in it ends that word's words.
        assert_eq!(words("echo $Q"), ["echo", "ab cd"]);
        assert_eq!(words("echo $SEMI"), ["echo", "a"]);
    }

    #[test]
    fn words_that_end_unquoted_are_split_again() {
        assert_eq!(words("echo \"a b\"c"), ["echo", "a", "bc"]);
        assert_eq!(words("echo a\"b c\"d"), ["echo", "ab", "cd"]);
        assert_eq!(words("echo \"\\n\""), ["echo", "n"]);
        assert_eq!(words("echo \\n"), ["echo", "n"]);
    }

    #[test]
    fn parsing_stops_at_shell_operators() {
        for (line, args, at) in [
            ("echo hello | grep h", vec!["echo", "hello"], '|'),
            ("echo a; echo b", vec!["echo", "a"], ';'),
            ("echo a && echo b", vec!["echo", "a"], '&'),
            ("ls > out", vec!["ls"], '>'),
            ("ls 2>/dev/null", vec!["ls"], '>'),
            ("cat < in", vec!["cat"], '<'),
        ] {
            let split = split_plain(line, &env).unwrap();
            assert_eq!(split.args, args, "{line}");
            assert_eq!(split.cut_at, Some(at), "{line}");
        }
        // Quoted operators are text. An escaped one is too, until the unquoted word is split
        // again after expansion: there it ends that word (go-shellwords gives `e` as well).
        let quoted = split_plain("echo 'a|b' \"c;d\" e\\>f", &env).unwrap();
        assert_eq!(quoted.args, ["echo", "a|b", "c;d", "e"]);
        assert_eq!(quoted.cut_at, None);
    }

    #[test]
    fn invalid_lines() {
        for line in [
            "python3 -c print(1)",
            "echo )",
            "echo 'unterminated",
            "echo \"unterminated",
            "echo trailing\\",
            "echo `unclosed",
            "echo $(unclosed",
        ] {
            assert_eq!(
                with_substitutions(line, fake_shell),
                Err(WordsError::Invalid),
                "{line}"
            );
        }
    }

    #[test]
    fn command_substitution() {
        let run = |line: &str| with_substitutions(line, fake_shell).unwrap().args;
        assert_eq!(run("echo `echo a b`"), ["echo", "a", "b"]);
        assert_eq!(run("echo $(echo a b)"), ["echo", "a", "b"]);
        assert_eq!(run("echo pre$(echo mid)post"), ["echo", "premidpost"]);
        assert_eq!(run("echo `printf '\"q r\"'`"), ["echo", "q r"]);
        assert_eq!(run("echo $(echo '$BAR')"), ["echo", "x"]);
        // Not inside double quotes, and garbled there.
        assert_eq!(run("echo \"$(echo hi)\""), ["echo", "(echo hi)echo hi)"]);
        // A failing substitution fails the split with its error.
        let failed = with_substitutions("echo $(echo hi)", |_| Err(WordsError::Invalid));
        assert_eq!(failed, Err(WordsError::Invalid));
        // Where the original parser crashed (quoted whitespace leaking into the substitution).
        assert_eq!(
            with_substitutions("echo \"a b\" $(echo hi)", |_| Ok("hi".into())),
            Err(WordsError::Garbled)
        );
    }

    #[test]
    fn asking_out_of_turn_is_refused() {
        let getenv = env;
        let mut splitter = Splitter::new("echo $(echo hi)", &getenv);
        assert_eq!(splitter.substituted("x"), Err(WordsError::Invalid));
        assert_eq!(splitter.step(), Ok(Step::Substitute("echo hi".to_string())));
        assert_eq!(splitter.step(), Err(WordsError::Invalid));
        splitter.substituted("hi").unwrap();
        assert_eq!(
            splitter.step(),
            Ok(Step::Done(Words {
                args: vec!["echo".into(), "hi".into()],
                cut_at: None
            }))
        );
    }
}
