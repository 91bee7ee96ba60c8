//! Running the action once (`/run`'s work) and reading its answer from its output, as OpenWhisk's
//! `ActionRunner.run` does.
//!
//! The action is `<dir>/exec`, run in `<dir>` with the argument (one line of JSON) on stdin and,
//! when it is at most [`MAX_ARG_BYTES`] long, also as `argv[1]`. Its exit status does not matter.
//! Its stdout's last line (after the last line end that is not the final character, trimmed) is
//! the result and must be a JSON object or array, else the answer is 502
//! [`ERR_NOT_DICT_RESULT`] and that line is printed as a log; everything on stdout before it and
//! everything on stderr are log lines. An action that cannot be started gets the same 502, the
//! reason printed on stdout. That includes an `exec` that is empty or text without a `#!` line:
//! the proxy's `execve` refuses it ("exec format error"), where the C library's `execvp`, which
//! starts processes here, would quietly run it with `/bin/sh`.

use std::ffi::OsString;
use std::io::Read;
use std::path::Path;

use bytes::Bytes;
use faasbox_proto::{LogStream, ProcessUser};
use hyper::StatusCode;
use serde_json::value::RawValue;

use super::install::EXEC;
use super::{Answer, ERR_NOT_DICT_RESULT};
use crate::calls::Cancelled;
use crate::contract::child::{self, ChildSpec, Ended, MAX_CAPTURE_BYTES};
use crate::lines::{lossy, split_all};
use crate::reaper::Reaper;

/// The longest argument also passed as `argv[1]` (Linux's `MAX_ARG_STRLEN` less its NUL, as the
/// proxy checks it); longer ones go on stdin only.
pub const MAX_ARG_BYTES: usize = 131_071;

/// One run of the action.
#[derive(Debug)]
pub struct Activation<'a> {
    pub dir: &'a Path,
    pub user: Option<&'a ProcessUser>,
    /// The argument, one line of JSON.
    pub args: &'a str,
    /// The complete environment.
    pub env: Vec<(OsString, OsString)>,
}

/// Why a run did not end by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupted {
    TimedOut,
    Aborted,
}

/// A finished run: the proxy's answer (from whatever the action wrote) and whether it was cut
/// short.
#[derive(Debug)]
pub struct Ran {
    pub answer: Answer,
    pub interrupted: Option<Interrupted>,
}

/// Runs the action to its end.
pub async fn run(
    activation: Activation<'_>,
    reaper: &Reaper,
    deadline: tokio::time::Instant,
    cancelled: Cancelled,
) -> Ran {
    let exec = activation.dir.join(EXEC).to_string_lossy().into_owned();
    if !has_executable_format(Path::new(&exec)) {
        let refused = std::io::Error::from_raw_os_error(nix::libc::ENOEXEC);
        return Ran {
            answer: Answer::error(
                StatusCode::BAD_GATEWAY,
                ERR_NOT_DICT_RESULT,
                vec![(LogStream::Stdout, child::spawn_error_text(&exec, &refused))],
            ),
            interrupted: None,
        };
    }
    let mut argv = vec![exec.clone()];
    if activation.args.len() <= MAX_ARG_BYTES {
        argv.push(activation.args.to_owned());
    }
    let spec = ChildSpec {
        argv: &argv,
        env: activation.env,
        cwd: activation.dir,
        user: activation.user,
        stdin: Some(Bytes::copy_from_slice(activation.args.as_bytes())),
        merge_output: false,
    };
    let finished = match child::run(spec, reaper, deadline, cancelled, None).await {
        Ok(finished) => finished,
        Err(err) => {
            let reason = child::spawn_error_text(&exec, &err);
            return Ran {
                answer: Answer::error(
                    StatusCode::BAD_GATEWAY,
                    ERR_NOT_DICT_RESULT,
                    vec![(LogStream::Stdout, reason)],
                ),
                interrupted: None,
            };
        }
    };
    let interrupted = match finished.ended {
        Ended::TimedOut => Some(Interrupted::TimedOut),
        Ended::Aborted => Some(Interrupted::Aborted),
        Ended::Exited(_) | Ended::Lost => None,
    };
    let mut answer = interpret(&finished.stdout.bytes, &finished.stderr.bytes);
    for (captured, name) in [(&finished.stdout, "stdout"), (&finished.stderr, "stderr")] {
        if captured.truncated {
            answer.lines.push((
                LogStream::Agent,
                format!("the action's {name} was longer than {MAX_CAPTURE_BYTES} bytes; the rest was dropped"),
            ));
        }
    }
    Ran {
        answer,
        interrupted,
    }
}

/// Whether the kernel would take `path` as a program: not empty, and not text without a `#!`
/// line (binary formats are left to the kernel). A file that cannot be read is left to the
/// spawn to report.
fn has_executable_format(path: &Path) -> bool {
    let mut head = [0u8; 512];
    let read = match std::fs::File::open(path).and_then(|mut file| file.read(&mut head)) {
        Ok(read) => read,
        Err(_) => return true,
    };
    let head = &head[..read];
    let text = !head.contains(&0);
    !head.is_empty() && (head.starts_with(b"#!") || !text)
}

/// The proxy's answer from what the action wrote.
pub fn interpret(stdout: &[u8], stderr: &[u8]) -> Answer {
    let (logs, last) = split_last_line(stdout);
    let mut lines: Vec<(LogStream, String)> = split_all(logs)
        .into_iter()
        .map(|line| (LogStream::Stdout, line))
        .collect();
    lines.extend(
        split_all(stderr)
            .into_iter()
            .map(|line| (LogStream::Stderr, line)),
    );
    let last = lossy(last.to_vec());
    let last = last.trim();
    match serde_json::from_str::<&RawValue>(last) {
        Ok(raw) if super::message::is_object_or_array(raw) => {
            Answer::json(StatusCode::OK, raw.get().to_owned(), lines)
        }
        _ => {
            lines.push((LogStream::Stdout, last.to_owned()));
            Answer::error(StatusCode::BAD_GATEWAY, ERR_NOT_DICT_RESULT, lines)
        }
    }
}

/// Splits stdout at its last line end that is not its final byte: (the logs with their line
/// ends, the result line).
fn split_last_line(stdout: &[u8]) -> (&[u8], &[u8]) {
    let search = &stdout[..stdout.len().saturating_sub(1)];
    match search.iter().rposition(|&b| b == b'\n') {
        Some(i) => (&stdout[..=i], &stdout[i + 1..]),
        None => (&[], stdout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_line_is_the_result() {
        assert_eq!(split_last_line(b""), (&b""[..], &b""[..]));
        assert_eq!(split_last_line(b"{}\n"), (&b""[..], &b"{}\n"[..]));
        assert_eq!(split_last_line(b"log\n{}\n"), (&b"log\n"[..], &b"{}\n"[..]));
        assert_eq!(split_last_line(b"a\nb\n\n"), (&b"a\nb\n"[..], &b"\n"[..]));
        assert_eq!(split_last_line(b"a\n{}"), (&b"a\n"[..], &b"{}"[..]));
    }

    #[test]
    fn executable_formats() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, content: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, content).unwrap();
            has_executable_format(&path)
        };
        assert!(file("script", b"#!/bin/sh\necho '{}'\n"));
        assert!(file("elf", b"\x7fELF\x02\x01\x01\0\0\0"));
        assert!(!file("empty", b""));
        assert!(!file("text", b"echo '{}'\n"));
        assert!(has_executable_format(&dir.path().join("missing")));
    }

    #[test]
    fn answers() {
        let answer = interpret(b"hello stdout\n{\"a\": [1]}\n", b"hello stderr\n");
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.body, "{\"a\": [1]}");
        assert_eq!(
            answer.lines,
            [
                (LogStream::Stdout, "hello stdout".to_string()),
                (LogStream::Stderr, "hello stderr".to_string())
            ]
        );
        let answer = interpret(b"[\"a\", \"b\"]", b"");
        assert_eq!(answer.status, StatusCode::OK);
        let answer = interpret(b"not a json object\n", b"");
        assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
        assert_eq!(
            answer.body,
            r#"{"error":"The action did not return a dictionary or array."}"#
        );
        assert_eq!(
            answer.lines,
            [(LogStream::Stdout, "not a json object".to_string())]
        );
        for bad in [&b"42\n"[..], b"\"str\"", b""] {
            assert_eq!(interpret(bad, b"").status, StatusCode::BAD_GATEWAY);
        }
    }
}
