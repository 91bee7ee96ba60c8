//! Masking secret values in what faasbox stores or shows about a call: its log lines (every
//! stream) and its error message. The function's own output is returned as it is.
//!
//! A value is found in these forms:
//! - as it is, and as it appears inside a JSON string (quotes, backslashes and control
//!   characters escaped);
//! - base64-encoded, standard and URL-safe alphabets, with and without padding; and, for
//!   values of at least [`MIN_EMBEDDED_BYTES`], the part of its encoding that stays the same
//!   wherever the value sits inside a longer base64 text (`user:password` in a Basic
//!   authorization header): a few characters at each end of such an embedded encoding
//!   depend on its neighbours too and stay;
//! - URL-encoded: any byte of the value may be written as `%XX` (either case of hex digits)
//!   and a space as `+`, in any mix (what `encodeURIComponent`, form encoding and
//!   `quote`/`quote_plus` produce).
//!
//! Values shorter than [`MIN_MASKED_BYTES`] are not masked: a secret like `1` or `on` occurs
//! in almost every log line by chance, and masking it would garble the logs while telling an
//! attacker which short strings are secret. Secrets that short are not worth protecting anyway.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use zeroize::Zeroizing;

/// The shortest value that is masked, in bytes.
pub const MIN_MASKED_BYTES: usize = 4;
/// The shortest value whose encoding is also looked for inside longer base64 text.
pub const MIN_EMBEDDED_BYTES: usize = 8;
/// What a masked value is replaced by.
pub const MASK: &str = "***";

/// How many partial matches one URL-encoded match may follow at once (`%` in a value is
/// ambiguous: `%` itself or the start of `%25`); beyond it, the rarest readings are dropped.
const MAX_URL_PATHS: usize = 64;

/// The secret values of one call, as text to look for.
#[derive(Default)]
pub struct Masker {
    /// Exact texts to replace, longest first.
    needles: Vec<Zeroizing<String>>,
    /// The values themselves, for the URL-encoded forms.
    values: Vec<Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Masker({} values)", self.values.len())
    }
}

impl Masker {
    /// A masker for these values (see the module documentation for the forms looked for).
    pub fn new<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Masker {
        let mut masker = Masker::default();
        for value in values {
            if value.len() < MIN_MASKED_BYTES {
                continue;
            }
            masker.values.push(Zeroizing::new(value.to_vec()));
            if let Ok(text) = std::str::from_utf8(value) {
                masker.needles.push(Zeroizing::new(text.to_string()));
                let quoted = Zeroizing::new(serde_json::to_string(text).unwrap_or_default());
                let escaped = quoted
                    .get(1..quoted.len().saturating_sub(1))
                    .unwrap_or_default();
                if escaped != text && escaped.len() >= MIN_MASKED_BYTES {
                    masker.needles.push(Zeroizing::new(escaped.to_string()));
                }
            }
            masker.needles.extend(base64_forms(value));
        }
        masker.normalize();
        masker
    }

    fn normalize(&mut self) {
        self.needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        self.needles.dedup();
        self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        self.values.dedup();
    }

    /// This masker and `other`'s values together.
    pub fn merged(mut self, other: Masker) -> Masker {
        self.needles.extend(other.needles);
        self.values.extend(other.values);
        self.normalize();
        self
    }

    /// Whether there is nothing to mask.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `text` with every occurrence of a value, in any of its forms, replaced by [`MASK`].
    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_string();
        for needle in &self.needles {
            if out.contains(needle.as_str()) {
                out = out.replace(needle.as_str(), MASK);
            }
        }
        for value in &self.values {
            out = mask_url_encoded(&out, value);
        }
        out
    }
}

/// The base64 encodings of `value`: whole (four variants), and the parts that stay the same
/// when it is embedded at any offset in a longer encoded text.
fn base64_forms(value: &[u8]) -> Vec<Zeroizing<String>> {
    let mut forms = Vec::new();
    for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
        forms.push(Zeroizing::new(engine.encode(value)));
    }
    if value.len() < MIN_EMBEDDED_BYTES {
        return forms;
    }
    // At an offset of `shift` bytes (mod 3) into a longer text, a base64 character made of
    // six bits of the value only is the same whatever surrounds it; at most one character at
    // each end mixes in a neighbour's bits.
    for shift in 0..3usize {
        let mut buf = Zeroizing::new(vec![0u8; shift]);
        buf.extend_from_slice(value);
        let padded = buf.len().div_ceil(3) * 3;
        buf.resize(padded, 0);
        let first = (8 * shift).div_ceil(6);
        let end = 8 * (shift + value.len()) / 6;
        for engine in [STANDARD_NO_PAD, URL_SAFE_NO_PAD] {
            let encoded = Zeroizing::new(engine.encode(buf.as_slice()));
            if let Some(pure) = encoded.get(first..end) {
                forms.push(Zeroizing::new(pure.to_string()));
            }
        }
    }
    forms
}

/// `text` with every URL-encoded occurrence of `value` replaced by [`MASK`].
fn mask_url_encoded(text: &str, value: &[u8]) -> String {
    let bytes = text.as_bytes();
    let Some(&first) = value.first() else {
        return text.to_string();
    };
    let mut out = String::new();
    let mut copied = 0;
    let mut at = 0;
    while at < bytes.len() {
        let b = bytes[at];
        let may_start = b == first || b == b'%' || (b == b'+' && first == b' ');
        if may_start && text.is_char_boundary(at) {
            if let Some(end) = url_match(text, at, value) {
                out.push_str(&text[copied..at]);
                out.push_str(MASK);
                copied = end;
                at = end;
                continue;
            }
        }
        at += 1;
    }
    if copied == 0 {
        return text.to_string();
    }
    out.push_str(&text[copied..]);
    out
}

/// The end of the longest URL-encoded reading of `value` starting at `start` and ending on a
/// character boundary of `text`, if any.
fn url_match(text: &str, start: usize, value: &[u8]) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut paths = vec![start];
    let mut next = Vec::new();
    for &want in value {
        next.clear();
        for &at in &paths {
            if bytes.get(at) == Some(&want) {
                next.push(at + 1);
            }
            if want == b' ' && bytes.get(at) == Some(&b'+') {
                next.push(at + 1);
            }
            if bytes.get(at) == Some(&b'%') {
                let hex = bytes.get(at + 1..at + 3).and_then(|h| {
                    std::str::from_utf8(h)
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                });
                if hex == Some(want) {
                    next.push(at + 3);
                }
            }
        }
        if next.is_empty() {
            return None;
        }
        next.sort_unstable();
        next.dedup();
        next.truncate(MAX_URL_PATHS);
        std::mem::swap(&mut paths, &mut next);
    }
    paths
        .into_iter()
        .rev()
        .find(|&end| text.is_char_boundary(end))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn masks_values_and_their_json_form_but_not_short_ones() {
        let masker = Masker::new([
            b"s3cr3t".as_slice(),
            b"a\"b\\cd".as_slice(),
            b"abc".as_slice(),
            &[0xff, 0xfe, 0xfd, 0xfc],
        ]);
        assert_eq!(masker.mask("x s3cr3t y s3cr3ts3cr3t"), "x *** y ******");
        assert_eq!(
            masker.mask(r#"{"v":"a\"b\\cd"} a"b\cd"#),
            r#"{"v":"***"} ***"#
        );
        assert_eq!(masker.mask("abc stays"), "abc stays");
        assert!(Masker::new([b"ab".as_slice()]).is_empty());
        assert_eq!(format!("{masker:?}"), "Masker(3 values)");
    }

    #[test]
    fn base64_forms_are_masked_whole_and_embedded() {
        let secret = b"p4ss?w0rd>>~~";
        let masker = Masker::new([secret.as_slice()]);
        for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
            let encoded = engine.encode(secret);
            assert_eq!(
                masker.mask(&format!("token {encoded} end")),
                "token *** end"
            );
        }
        // Inside a Basic authorization header: only edge characters of the encoding stay,
        // and the value cannot be decoded from what is left.
        for user in ["u", "us", "use", "user"] {
            let header =
                STANDARD.encode(format!("{user}:{}", std::str::from_utf8(secret).unwrap()));
            let masked = masker.mask(&format!("Authorization: Basic {header}"));
            assert!(masked.contains(MASK), "{user}: {masked}");
            let left = masked.rsplit(' ').next().unwrap().replace(MASK, "");
            assert!(left.len() <= 8, "{user}: {masked}");
        }
        // Short values are masked whole only (no embedded search that would hit by chance).
        let short = Masker::new([b"abcd".as_slice()]);
        assert_eq!(short.mask("YWJjZA== YWJjZA"), "*** ***");
        assert_eq!(short.mask("YWJj"), "YWJj");
    }

    #[test]
    fn url_encoded_forms_are_masked_in_any_mix() {
        let masker = Masker::new([b"a b&c/d%e=\xc3\xbc".as_slice()]);
        for form in [
            "a%20b%26c%2Fd%25e%3D%C3%BC",
            "a+b%26c%2fd%25e%3d%c3%bc",
            "a b&c/d%e=ü",
            "a%20b&c/d%e%3Dü",
            "%61%20%62%26%63%2F%64%25%65%3D%C3%BC",
        ] {
            assert_eq!(masker.mask(&format!("q={form}&x=1")), "q=***&x=1", "{form}");
        }
        assert_eq!(masker.mask("a%20b%26c nothing"), "a%20b%26c nothing");
        let plain = Masker::new([b"hunter22".as_slice()]);
        assert_eq!(plain.mask("pw=hunter%32%32;"), "pw=***;");
    }

    proptest! {
        /// Whatever the secret, none of its encoded forms survives masking, and masking
        /// never panics on any text.
        #[test]
        fn no_encoded_form_survives(
            secret in proptest::collection::vec(any::<u8>(), MIN_MASKED_BYTES..40),
            prefix in "[a-zA-Z0-9 ]{0,8}",
        ) {
            let masker = Masker::new([secret.as_slice()]);
            let percent: String = secret.iter().map(|b| format!("%{b:02X}")).collect();
            let b64 = STANDARD.encode(&secret);
            let url = URL_SAFE_NO_PAD.encode(&secret);
            let line = format!("{prefix} [{percent}] [{b64}] [{url}]");
            let masked = masker.mask(&line);
            prop_assert!(!masked.contains(&percent), "{}", masked);
            prop_assert!(!masked.contains(&b64), "{}", masked);
            prop_assert!(!masked.contains(&url), "{}", masked);
            if let Ok(text) = std::str::from_utf8(&secret) {
                let masked = masker.mask(&format!("{prefix}{text}{prefix}"));
                prop_assert!(!masked.contains(text), "{}", masked);
            }
        }

        #[test]
        fn masking_any_text_never_panics(
            secret in "[%+ a-z\u{e9}]{4,12}",
            text in "[%+ 0-9a-fA-F\u{e9}]{0,60}",
        ) {
            let masker = Masker::new([secret.as_bytes()]);
            let _ = masker.mask(&text);
        }
    }
}
