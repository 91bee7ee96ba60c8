//! URL query strings: `a=b&c=d`, percent-decoded, `+` read as a space.

/// The decoded value of the first `name` parameter in `query`, if present.
pub fn param(query: Option<&str>, name: &str) -> Option<String> {
    query?
        .split('&')
        .filter(|pair| !pair.is_empty())
        .find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key) == name).then(|| decode(value))
        })
}

/// Percent-decodes `text` (`+` becomes a space); malformed escapes are kept as written and
/// bytes that are not UTF-8 are replaced.
pub fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).and_then(|&b| hex(b)),
                bytes.get(i + 2).and_then(|&b| hex(b)),
            ) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            other => out.push(other),
        }
        i += 1;
    }
    crate::lines::lossy(out)
}

fn hex(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_and_plus() {
        assert_eq!(decode("hello+world%21"), "hello world!");
        assert_eq!(decode("%C3%BCber%20alles"), "über alles");
        assert_eq!(decode("a%2Bb"), "a+b");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz%4"), "%zz%4");
        assert_eq!(decode("%ff"), "\u{fffd}");
    }

    #[test]
    fn finds_parameters() {
        let q = Some("aid=abc-1&log=hello+there%0Anext&empty=&flag");
        assert_eq!(param(q, "aid").as_deref(), Some("abc-1"));
        assert_eq!(param(q, "log").as_deref(), Some("hello there\nnext"));
        assert_eq!(param(q, "empty").as_deref(), Some(""));
        assert_eq!(param(q, "flag").as_deref(), Some(""));
        assert_eq!(param(q, "missing"), None);
        assert_eq!(param(None, "aid"), None);
        assert_eq!(param(Some("a%69d=x"), "aid").as_deref(), Some("x"));
        assert_eq!(param(Some("aid=1&aid=2"), "aid").as_deref(), Some("1"));
    }
}
