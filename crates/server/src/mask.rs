//! Masking secret values in what faasbox stores or shows about a call: its log lines (every
//! stream) and its error message. The function's own output is returned as it is.
//!
//! Values shorter than [`MIN_MASKED_BYTES`] are not masked: a secret like `1` or `on` occurs
//! in almost every log line by chance, and masking it would garble the logs while telling an
//! attacker which short strings are secret. Secrets that short are not worth protecting anyway.

use zeroize::Zeroizing;

/// The shortest value that is masked, in bytes.
pub const MIN_MASKED_BYTES: usize = 4;
/// What a masked value is replaced by.
pub const MASK: &str = "***";

/// The secret values of one call, as text to look for (longest first).
#[derive(Default)]
pub struct Masker {
    needles: Vec<Zeroizing<String>>,
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Masker({} values)", self.needles.len())
    }
}

impl Masker {
    /// A masker for these values. Each value is looked for as it is and, when it differs, as
    /// it appears inside a JSON string (quotes, backslashes and control characters escaped).
    pub fn new<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Masker {
        let mut needles: Vec<Zeroizing<String>> = Vec::new();
        for value in values {
            let Ok(text) = std::str::from_utf8(value) else {
                continue;
            };
            if text.len() < MIN_MASKED_BYTES {
                continue;
            }
            let quoted = Zeroizing::new(serde_json::to_string(text).unwrap_or_default());
            let escaped = quoted
                .get(1..quoted.len().saturating_sub(1))
                .unwrap_or_default();
            if escaped != text && escaped.len() >= MIN_MASKED_BYTES {
                needles.push(Zeroizing::new(escaped.to_string()));
            }
            needles.push(Zeroizing::new(text.to_string()));
        }
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        needles.dedup();
        Masker { needles }
    }

    /// This masker and `other`'s values together.
    pub fn merged(mut self, other: Masker) -> Masker {
        self.needles.extend(other.needles);
        self.needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        self.needles.dedup();
        self
    }

    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// `text` with every occurrence of a value replaced by [`MASK`].
    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_string();
        for needle in &self.needles {
            if out.contains(needle.as_str()) {
                out = out.replace(needle.as_str(), MASK);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
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
}
