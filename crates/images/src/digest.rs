//! sha256 digests: parsing `sha256:<hex>` strings and hashing streams while
//! they are read or written.

use std::io::{self, Read, Write};

use sha2::{Digest as _, Sha256};

use crate::error::ImageError;

/// Returns the hex part of a `sha256:<64 lowercase hex>` digest.
pub(crate) fn sha256_hex(digest: &str) -> Result<&str, ImageError> {
    match digest.split_once(':') {
        Some(("sha256", hex)) if is_sha256_hex(hex) => Ok(hex),
        Some(("sha256", _)) => Err(ImageError::invalid(format!(
            "digest '{digest}' is malformed: a sha256 digest is 64 lowercase hex digits"
        ))),
        Some((alg, _)) if !alg.is_empty() => Err(ImageError::Unsupported(format!(
            "digest '{digest}' uses algorithm '{alg}'; faasbox only handles sha256 digests"
        ))),
        _ => Err(ImageError::invalid(format!(
            "digest '{digest}' is malformed: expected sha256:<hex>"
        ))),
    }
}

/// Whether `hex` is 64 lowercase hex digits.
pub(crate) fn is_sha256_hex(hex: &str) -> bool {
    hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `sha256:<hex>` of a byte slice.
pub(crate) fn sha256_of(bytes: &[u8]) -> String {
    format_digest(Sha256::digest(bytes).as_slice())
}

fn format_digest(hash: &[u8]) -> String {
    format!("sha256:{}", hex::encode(hash))
}

/// A reader that hashes and counts everything read through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// `sha256:<hex>` of the bytes read so far, and how many there were.
    pub(crate) fn finish(self) -> (String, u64) {
        (format_digest(self.hasher.finalize().as_slice()), self.count)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// A writer that hashes and counts everything written through it.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The inner writer, `sha256:<hex>` of the bytes written, and their count.
    pub(crate) fn finish(self) -> (W, String, u64) {
        let digest = format_digest(self.hasher.finalize().as_slice());
        (self.inner, digest, self.count)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn hashes_known_values() {
        assert_eq!(sha256_of(b""), format!("sha256:{EMPTY}"));
        let mut r = HashingReader::new(&b"abc"[..]);
        io::copy(&mut r, &mut io::sink()).unwrap();
        let (d, n) = r.finish();
        assert_eq!(n, 3);
        assert_eq!(d, sha256_of(b"abc"));
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"abc").unwrap();
        let (inner, d2, n2) = w.finish();
        assert_eq!((inner.as_slice(), d2, n2), (&b"abc"[..], d, 3));
    }

    #[test]
    fn parses_digests() {
        assert_eq!(sha256_hex(&format!("sha256:{EMPTY}")).unwrap(), EMPTY);
        assert!(matches!(
            sha256_hex("sha512:abcd"),
            Err(ImageError::Unsupported(_))
        ));
        assert!(sha256_hex("sha256:ABC").is_err());
        assert!(sha256_hex(EMPTY).is_err());
        assert!(sha256_hex(&format!("sha256:{}", &EMPTY[1..])).is_err());
        assert!(sha256_hex("sha256:../../etc/passwd").is_err());
    }
}
