//! The benchmarks' function (`crates/cli/benches/perf.rs`): a small static HTTP/1.1 echo
//! server that answers every POST with its body (200, the request's content type) and every
//! other request with an empty 200.
//!
//! It is what the performance figures of issue 18 measure the platform against, so it costs
//! as little as a server can: std only, no fork or exec per request, a thread per connection,
//! keep-alive (HTTP/1.1 by default, HTTP/1.0 on request), `Content-Length` and chunked
//! request bodies. Inputs are bounded: a request head over [`MAX_HEAD`] bytes gets 431, a
//! body over [`MAX_BODY`] bytes 413, anything unparsable 400; each of those closes the
//! connection.
//!
//! ```text
//! faasbox-echo                      listen on 0.0.0.0:8080
//! faasbox-echo --listen ADDR        listen on ADDR (e.g. 127.0.0.1:9000)
//! faasbox-echo --exit | true        exit 0 at once (the `runc run` floor of the benchmark)
//! ```

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;

/// The largest request body answered; larger ones get 413.
const MAX_BODY: usize = 1 << 20;
/// The largest request line plus headers; larger heads get 431.
const MAX_HEAD: usize = 16 * 1024;
/// The most header lines in one request.
const MAX_HEADERS: usize = 100;
/// The longest chunk-size or trailer line of a chunked body.
const MAX_CHUNK_LINE: usize = 1024;
/// Stack of each connection's thread: the requests live on the heap.
const THREAD_STACK: usize = 128 * 1024;
/// The default listen address (the HTTP function contract's port).
const DEFAULT_LISTEN: &str = "0.0.0.0:8080";

/// How a request's body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// `Content-Length: n` (0 when absent).
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A request's line and the headers that matter to an echo.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    method: String,
    content_type: Option<String>,
    framing: Framing,
    keep_alive: bool,
    expect_continue: bool,
}

/// Why a request could not be read.
#[derive(Debug)]
enum RequestError {
    /// The connection failed or closed in the middle of a request.
    Io(io::Error),
    /// Not HTTP/1.x as this server reads it (400).
    Malformed(&'static str),
    /// The request line and headers exceed [`MAX_HEAD`] or [`MAX_HEADERS`] (431).
    HeadTooLarge,
    /// The body exceeds [`MAX_BODY`] (413).
    BodyTooLarge,
    /// A transfer coding other than chunked (501).
    Unsupported(&'static str),
}

impl RequestError {
    /// The status answered for this error, if an answer is still possible.
    fn status(&self) -> Option<(u16, &'static str, &'static str)> {
        match self {
            RequestError::Io(_) => None,
            RequestError::Malformed(why) => Some((400, "Bad Request", why)),
            RequestError::HeadTooLarge => Some((
                431,
                "Request Header Fields Too Large",
                "request head too large",
            )),
            RequestError::BodyTooLarge => Some((413, "Payload Too Large", "body over 1 MiB")),
            RequestError::Unsupported(why) => Some((501, "Not Implemented", why)),
        }
    }
}

impl From<io::Error> for RequestError {
    fn from(e: io::Error) -> Self {
        RequestError::Io(e)
    }
}

/// Reads one line of at most `limit` bytes (with its `\n`) into `line`. Returns `false` at a
/// clean end of input before any byte; a line without its end within the limit is `too_long`.
fn read_line_bounded<R: BufRead>(
    reader: &mut R,
    line: &mut Vec<u8>,
    limit: usize,
    too_long: fn() -> RequestError,
) -> Result<bool, RequestError> {
    line.clear();
    let read = reader
        .by_ref()
        .take(limit as u64 + 1)
        .read_until(b'\n', line)?;
    if read == 0 {
        return Ok(false);
    }
    if line.last() != Some(&b'\n') {
        if line.len() > limit {
            return Err(too_long());
        }
        return Err(RequestError::Io(io::ErrorKind::UnexpectedEof.into()));
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(true)
}

/// Reads the next request's head; `None` when the connection ended cleanly between requests.
fn read_head<R: BufRead>(reader: &mut R) -> Result<Option<Head>, RequestError> {
    let mut line = Vec::new();
    let mut budget = MAX_HEAD;
    // An empty line before the request line is tolerated (RFC 9112, 2.2).
    let mut started = false;
    loop {
        if !read_line_bounded(reader, &mut line, budget, || RequestError::HeadTooLarge)? {
            return if started {
                Err(RequestError::Io(io::ErrorKind::UnexpectedEof.into()))
            } else {
                Ok(None)
            };
        }
        budget = budget.saturating_sub(line.len() + 2);
        if !line.is_empty() || started {
            break;
        }
        started = true;
    }
    let request_line = std::str::from_utf8(&line)
        .map_err(|_| RequestError::Malformed("request line not UTF-8"))?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(RequestError::Malformed(
            "request line is not METHOD TARGET VERSION",
        ));
    };
    if method.is_empty() || target.is_empty() {
        return Err(RequestError::Malformed("empty method or target"));
    }
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Err(RequestError::Malformed("not HTTP/1.0 or HTTP/1.1")),
    };
    let mut head = Head {
        method: method.to_string(),
        content_type: None,
        framing: Framing::Length(0),
        keep_alive: http11,
        expect_continue: false,
    };
    let mut length: Option<usize> = None;
    let mut chunked = false;
    for count in 0.. {
        if count > MAX_HEADERS {
            return Err(RequestError::HeadTooLarge);
        }
        if !read_line_bounded(reader, &mut line, budget, || RequestError::HeadTooLarge)? {
            return Err(RequestError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        budget = budget.saturating_sub(line.len() + 2);
        if line.is_empty() {
            break;
        }
        let text =
            std::str::from_utf8(&line).map_err(|_| RequestError::Malformed("header not UTF-8"))?;
        let (name, value) = text
            .split_once(':')
            .ok_or(RequestError::Malformed("header without a colon"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let n: usize = value
                .parse()
                .map_err(|_| RequestError::Malformed("bad Content-Length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(RequestError::Malformed("conflicting Content-Length"));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if !value.eq_ignore_ascii_case("chunked") {
                return Err(RequestError::Unsupported(
                    "transfer coding other than chunked",
                ));
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case("content-type") {
            head.content_type = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    head.keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    head.keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("expect") && value.eq_ignore_ascii_case("100-continue")
        {
            head.expect_continue = http11;
        }
    }
    head.framing = match (chunked, length) {
        (true, Some(_)) => {
            return Err(RequestError::Malformed(
                "both Content-Length and Transfer-Encoding",
            ))
        }
        (true, None) => Framing::Chunked,
        (false, Some(n)) if n > MAX_BODY => return Err(RequestError::BodyTooLarge),
        (false, n) => Framing::Length(n.unwrap_or(0)),
    };
    Ok(Some(head))
}

/// Reads the body `framing` announces, at most [`MAX_BODY`] bytes.
fn read_body<R: BufRead>(reader: &mut R, framing: Framing) -> Result<Vec<u8>, RequestError> {
    match framing {
        Framing::Length(n) => {
            if n > MAX_BODY {
                return Err(RequestError::BodyTooLarge);
            }
            let mut body = vec![0; n];
            reader.read_exact(&mut body)?;
            Ok(body)
        }
        Framing::Chunked => {
            let mut body = Vec::new();
            let mut line = Vec::new();
            let too_long = || RequestError::Malformed("chunk line too long");
            loop {
                if !read_line_bounded(reader, &mut line, MAX_CHUNK_LINE, too_long)? {
                    return Err(RequestError::Io(io::ErrorKind::UnexpectedEof.into()));
                }
                let size = std::str::from_utf8(&line)
                    .ok()
                    .and_then(|l| l.split(';').next())
                    .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
                    .ok_or(RequestError::Malformed("bad chunk size"))?;
                if size == 0 {
                    break;
                }
                if size > MAX_BODY - body.len() {
                    return Err(RequestError::BodyTooLarge);
                }
                let start = body.len();
                body.resize(start + size, 0);
                reader.read_exact(&mut body[start..])?;
                let mut crlf = [0; 2];
                reader.read_exact(&mut crlf)?;
                if &crlf != b"\r\n" {
                    return Err(RequestError::Malformed("chunk not followed by CRLF"));
                }
            }
            // Trailer fields, ignored, up to the empty line.
            for _ in 0..=MAX_HEADERS {
                if !read_line_bounded(reader, &mut line, MAX_CHUNK_LINE, too_long)? {
                    return Err(RequestError::Io(io::ErrorKind::UnexpectedEof.into()));
                }
                if line.is_empty() {
                    return Ok(body);
                }
            }
            Err(RequestError::HeadTooLarge)
        }
    }
}

/// Writes one answer in a single write (the head and the body together).
fn respond<W: Write>(
    out: &mut W,
    status: (u16, &str),
    content_type: &str,
    body: &[u8],
    keep_alive: bool,
) -> io::Result<()> {
    let mut answer = Vec::with_capacity(128 + body.len());
    write!(
        answer,
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}\r\n",
        status.0,
        status.1,
        content_type,
        body.len(),
        if keep_alive {
            ""
        } else {
            "Connection: close\r\n"
        }
    )?;
    answer.extend_from_slice(body);
    out.write_all(&answer)?;
    out.flush()
}

/// Serves one connection until the client closes it, asks to, or sends something unreadable.
fn serve_connection<S: Read + Write>(reader: &mut BufReader<S>) -> io::Result<()> {
    loop {
        let head = match read_head(reader) {
            Ok(Some(head)) => head,
            Ok(None) => return Ok(()),
            Err(e) => return refuse(reader.get_mut(), e),
        };
        if head.expect_continue {
            reader
                .get_mut()
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let body = match read_body(reader, head.framing) {
            Ok(body) => body,
            Err(e) => return refuse(reader.get_mut(), e),
        };
        let (content_type, body) = if head.method == "POST" {
            (
                head.content_type
                    .as_deref()
                    .unwrap_or("application/octet-stream"),
                body.as_slice(),
            )
        } else {
            ("text/plain", &b""[..])
        };
        respond(
            reader.get_mut(),
            (200, "OK"),
            content_type,
            body,
            head.keep_alive,
        )?;
        if !head.keep_alive {
            return Ok(());
        }
    }
}

/// Answers a request that could not be read (when it still can) and ends the connection.
fn refuse<W: Write>(out: &mut W, error: RequestError) -> io::Result<()> {
    if let RequestError::Io(e) = error {
        return Err(e);
    }
    match error.status() {
        Some((code, reason, why)) => respond(
            out,
            (code, reason),
            "text/plain",
            format!("{why}\n").as_bytes(),
            false,
        ),
        None => Ok(()),
    }
}

/// Accepts connections forever, one thread each.
fn serve(listener: TcpListener) -> io::Result<()> {
    loop {
        let (stream, _) = match listener.accept() {
            Ok(accepted) => accepted,
            // Out of file descriptors or a connection reset before accept: keep serving.
            Err(_) => continue,
        };
        let _ = stream.set_nodelay(true);
        // When no thread can be started the connection is dropped (closed): the client sees
        // it and the server keeps serving the others.
        let _ = std::thread::Builder::new()
            .stack_size(THREAD_STACK)
            .spawn(move || handle(stream));
    }
}

fn handle(stream: TcpStream) {
    let _ = serve_connection(&mut BufReader::new(stream));
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut listen = DEFAULT_LISTEN.to_string();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--exit" | "true" => return ExitCode::SUCCESS,
            "--listen" => match args.next() {
                Some(addr) => listen = addr,
                None => {
                    eprintln!("faasbox-echo: --listen needs an address (e.g. 0.0.0.0:8080)");
                    return ExitCode::from(2);
                }
            },
            "--help" | "-h" => {
                println!("usage: faasbox-echo [--listen ADDR] | --exit");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("faasbox-echo: unknown argument {other:?} (usage: faasbox-echo [--listen ADDR] | --exit)");
                return ExitCode::from(2);
            }
        }
    }
    let listener = match TcpListener::bind(&listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("faasbox-echo: cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match serve(listener) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("faasbox-echo: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn head_of(raw: &[u8]) -> Result<Option<Head>, RequestError> {
        read_head(&mut Cursor::new(raw.to_vec()))
    }

    #[test]
    fn reads_length_and_chunked_bodies_back_to_back() {
        let raw = b"POST / HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}\
POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: x\r\n\r\n";
        let mut reader = Cursor::new(raw.to_vec());
        let first = read_head(&mut reader).unwrap().unwrap();
        assert_eq!(first.framing, Framing::Length(2));
        assert_eq!(first.content_type.as_deref(), Some("application/json"));
        assert!(first.keep_alive);
        assert_eq!(read_body(&mut reader, first.framing).unwrap(), b"{}");
        let second = read_head(&mut reader).unwrap().unwrap();
        assert_eq!(second.framing, Framing::Chunked);
        assert_eq!(read_body(&mut reader, second.framing).unwrap(), b"abcde");
        assert!(read_head(&mut reader).unwrap().is_none(), "clean end");
    }

    #[test]
    fn bounds_are_refused_with_their_status() {
        let big = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        let e = head_of(big.as_bytes()).unwrap_err();
        assert_eq!(e.status().map(|s| s.0), Some(413));

        let chunked = format!(
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
            MAX_BODY + 1
        );
        let mut reader = Cursor::new(chunked.into_bytes());
        let head = read_head(&mut reader).unwrap().unwrap();
        let e = read_body(&mut reader, head.framing).unwrap_err();
        assert_eq!(e.status().map(|s| s.0), Some(413));

        let long_header = format!("GET / HTTP/1.1\r\nX-Long: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        let e = head_of(long_header.as_bytes()).unwrap_err();
        assert_eq!(e.status().map(|s| s.0), Some(431));

        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: 1\r\n")).collect();
        let e = head_of(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()).unwrap_err();
        assert_eq!(e.status().map(|s| s.0), Some(431));

        for bad in [
            &b"POST / HTTP/2\r\n\r\n"[..],
            b"POST /\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
            b"POST / HTTP/1.1\r\nno colon\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            let e = head_of(bad).unwrap_err();
            assert_eq!(e.status().map(|s| s.0), Some(400), "{bad:?}");
        }
        let e = head_of(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n").unwrap_err();
        assert_eq!(e.status().map(|s| s.0), Some(501));
        let e = head_of(b"POST / HTTP/1.1\r\nContent-Le").unwrap_err();
        assert!(e.status().is_none(), "a cut-off request gets no answer");
    }

    #[test]
    fn http10_closes_unless_asked_and_11_keeps_alive_unless_asked() {
        let h = head_of(b"POST / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!h.keep_alive);
        let h = head_of(b"POST / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(h.keep_alive);
        let h = head_of(b"POST / HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!h.keep_alive);
    }

    /// Reads one answer (head and Content-Length body) from `reader`.
    fn read_answer<R: BufRead>(reader: &mut R) -> (String, Vec<u8>) {
        let mut head = String::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.strip_prefix("Content-Length: ") {
                length = v.trim().parse().unwrap();
            }
            head.push_str(&line);
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        (head, body)
    }

    #[test]
    fn one_connection_serves_many_requests_then_a_refusal_closes_it() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || serve(listener));
        let stream = TcpStream::connect(addr).unwrap();
        let mut writer = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        for i in 0..3 {
            let body = format!("{{\"n\":{i}}}");
            write!(
                writer,
                "POST / HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            let (head, echoed) = read_answer(&mut reader);
            assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
            assert!(
                head.contains("Content-Type: application/json\r\n"),
                "{head}"
            );
            assert!(!head.contains("Connection: close"), "{head}");
            assert_eq!(echoed, body.as_bytes());
        }
        // A second connection at the same time is served too.
        let mut other = TcpStream::connect(addr).unwrap();
        other.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let mut answer = Vec::new();
        other.read_to_end(&mut answer).unwrap();
        assert!(answer.starts_with(b"HTTP/1.1 200 OK\r\n"));

        write!(
            writer,
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        )
        .unwrap();
        let (head, _) = read_answer(&mut reader);
        assert!(head.starts_with("HTTP/1.1 413 "), "{head}");
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "the connection is closed after a refusal");
    }
}
