//! Splitting a byte stream into log lines.
//!
//! Lines end at `\n` (a `\r` before it is dropped too). A line longer than [`MAX_LINE_BYTES`] is
//! cut into pieces of at most that size, preferring a cut on a UTF-8 character boundary. Bytes
//! that are not UTF-8 are replaced (lossy conversion).

/// The longest line the agent records; longer lines are split.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Accumulates bytes and hands out complete lines.
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Feeds `data`; returns the lines it completed (without their line ends).
    pub fn push(&mut self, data: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        let mut rest = data;
        loop {
            let newline = rest.iter().position(|&b| b == b'\n');
            let segment = match newline {
                Some(i) => &rest[..i],
                None => rest,
            };
            // Feed in bounded pieces so `pending` never grows past two maximal lines.
            for piece in segment.chunks(MAX_LINE_BYTES) {
                self.pending.extend_from_slice(piece);
                while self.pending.len() > MAX_LINE_BYTES {
                    let cut = char_boundary_before(&self.pending, MAX_LINE_BYTES);
                    let head: Vec<u8> = self.pending.drain(..cut).collect();
                    lines.push(lossy(head));
                }
            }
            match newline {
                Some(i) => {
                    lines.push(self.take_line());
                    rest = &rest[i + 1..];
                }
                None => break,
            }
        }
        lines
    }

    /// The unterminated rest, if any (call at end of stream).
    pub fn finish(&mut self) -> Option<String> {
        if self.pending.is_empty() {
            None
        } else {
            Some(self.take_line())
        }
    }

    fn take_line(&mut self) -> String {
        let mut line = std::mem::take(&mut self.pending);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        lossy(line)
    }
}

/// Splits a whole text (e.g. a request body) into lines; a final line end adds no empty line.
pub fn split_all(data: &[u8]) -> Vec<String> {
    let mut splitter = LineSplitter::default();
    let mut lines = splitter.push(data);
    lines.extend(splitter.finish());
    lines
}

/// The largest index `<= max` that does not cut a UTF-8 character in two (falls back to `max`
/// when the bytes are not UTF-8 there anyway).
pub fn char_boundary_before(bytes: &[u8], max: usize) -> usize {
    if max >= bytes.len() {
        return bytes.len();
    }
    let mut cut = max;
    while cut > 0 && max - cut < 3 && is_continuation(bytes[cut]) {
        cut -= 1;
    }
    if cut == 0 || is_continuation(bytes[cut]) {
        max
    } else {
        cut
    }
}

fn is_continuation(byte: u8) -> bool {
    byte & 0b1100_0000 == 0b1000_0000
}

/// Converts bytes to a `String`, replacing invalid UTF-8, without copying valid input.
pub fn lossy(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_newlines_across_pushes() {
        let mut s = LineSplitter::default();
        assert_eq!(s.push(b"hel"), Vec::<String>::new());
        assert_eq!(s.push(b"lo\nwor"), vec!["hello"]);
        assert_eq!(s.push(b"ld\r\n\nx"), vec!["world", ""]);
        assert_eq!(s.finish().as_deref(), Some("x"));
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn long_lines_are_split() {
        let mut s = LineSplitter::default();
        let data = vec![b'a'; MAX_LINE_BYTES * 2 + 10];
        let mut lines = s.push(&data);
        assert_eq!(lines.len(), 2);
        lines.extend(s.push(b"\n"));
        assert_eq!(lines.len(), 3);
        assert!(lines[..2].iter().all(|l| l.len() == MAX_LINE_BYTES));
        assert_eq!(lines[2].len(), 10);
    }

    #[test]
    fn exactly_maximal_line_stays_whole() {
        let mut data = vec![b'b'; MAX_LINE_BYTES];
        data.push(b'\n');
        let lines = split_all(&data);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].len(), MAX_LINE_BYTES);
    }

    #[test]
    fn split_respects_utf8_boundaries() {
        // 'é' is two bytes; put one across the cut.
        let mut data = vec![b'a'; MAX_LINE_BYTES - 1];
        data.extend_from_slice("éz".as_bytes());
        let lines = split_all(&data);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), MAX_LINE_BYTES - 1);
        assert_eq!(lines[1], "éz");
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(split_all(b"a\xffb\n"), vec!["a\u{fffd}b"]);
    }

    #[test]
    fn split_all_keeps_inner_blank_lines() {
        assert_eq!(split_all(b"one\n\ntwo\n"), vec!["one", "", "two"]);
        assert!(split_all(b"").is_empty());
    }

    #[test]
    fn boundary_helper() {
        let s = "aé".as_bytes(); // a, 0xC3, 0xA9
        assert_eq!(char_boundary_before(s, 2), 1);
        assert_eq!(char_boundary_before(s, 1), 1);
        assert_eq!(char_boundary_before(s, 10), 3);
        assert_eq!(char_boundary_before(&[0x80, 0x80, 0x80, 0x80, 0x80], 4), 4);
    }
}
