//! Recognising compressed streams by their magic bytes and undoing gzip.
//! Other compressions are recognised only to refuse them with a clear message.

use std::fs::File;
use std::io::{self, Cursor, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::error::{io_err, ImageError};

/// The compression of a stream, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Zstd,
    Xz,
    Bzip2,
}

impl Compression {
    /// Recognises the magic number at the start of `head`.
    pub(crate) fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Compression::Xz
        } else if head.starts_with(b"BZh") {
            Compression::Bzip2
        } else {
            Compression::None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Xz => "xz",
            Compression::Bzip2 => "bzip2",
        }
    }
}

/// Reads up to `n` bytes (fewer only at end of stream).
fn read_head<R: Read>(reader: &mut R, n: usize) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(n);
    reader.by_ref().take(n as u64).read_to_end(&mut head)?;
    Ok(head)
}

/// The compression of the file at `path`, from its first bytes.
pub(crate) fn sniff_file(path: &Path) -> Result<Compression, ImageError> {
    let file = File::open(path).map_err(io_err("open", path))?;
    let mut head = Vec::with_capacity(6);
    file.take(6)
        .read_to_end(&mut head)
        .map_err(io_err("read", path))?;
    Ok(Compression::sniff(&head))
}

/// The error for a compression faasbox cannot undo.
pub(crate) fn unsupported(compression: Compression, what: &str) -> ImageError {
    ImageError::Unsupported(format!(
        "{what} is {}-compressed; faasbox reads uncompressed and gzip tar archives only — \
         recompress it with gzip (for images: skopeo copy --dest-compress-format gzip)",
        compression.name()
    ))
}

/// Wraps `reader` so that it yields uncompressed bytes. `what` names the
/// stream in errors (e.g. "layer sha256:…"); `on_io` turns a failure to read
/// the first bytes into an error. Only gzip can be undone.
pub(crate) fn decompress<R: Read + Send + 'static>(
    mut reader: R,
    what: &str,
    on_io: impl FnOnce(io::Error) -> ImageError,
) -> Result<Box<dyn Read + Send>, ImageError> {
    let head = read_head(&mut reader, 6).map_err(on_io)?;
    let compression = Compression::sniff(&head);
    let whole = Cursor::new(head).chain(reader);
    match compression {
        Compression::None => Ok(Box::new(whole)),
        Compression::Gzip => Ok(Box::new(MultiGzDecoder::new(whole))),
        other => Err(unsupported(other, what)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn io_fail(e: io::Error) -> ImageError {
        ImageError::io("read", "test", e)
    }

    #[test]
    fn sniffs_magic_numbers() {
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(
            Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compression::Zstd
        );
        assert_eq!(Compression::sniff(b"BZh9"), Compression::Bzip2);
        assert_eq!(Compression::sniff(b"ustar"), Compression::None);
        assert_eq!(Compression::sniff(b""), Compression::None);
    }

    #[test]
    fn undoes_gzip_and_passes_plain_through() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"hello world").unwrap();
        let gz = gz.finish().unwrap();
        let mut d = decompress(Cursor::new(gz), "test", io_fail).unwrap();
        let mut out = String::new();
        d.read_to_string(&mut out).unwrap();
        assert_eq!(out, "hello world");

        let mut d = decompress(Cursor::new(b"hi".to_vec()), "test", io_fail).unwrap();
        let mut out = String::new();
        d.read_to_string(&mut out).unwrap();
        assert_eq!(out, "hi");
    }

    #[test]
    fn refuses_zstd() {
        let err = decompress(
            Cursor::new(vec![0x28, 0xb5, 0x2f, 0xfd, 0, 0]),
            "layer x",
            io_fail,
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("zstd"), "{err}");
    }
}
