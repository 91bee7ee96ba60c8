//! Copying an input stream to a file while telling read failures (damaged
//! input) apart from write failures (our own disk).

use std::io::{self, Read, Write};
use std::path::Path;

use crate::error::ImageError;

/// Why a copy stopped.
#[derive(Debug)]
pub(crate) enum CopyError {
    /// Reading the input failed: the input is damaged or truncated.
    Read(io::Error),
    /// Writing the output failed.
    Write(ImageError),
}

/// Copies `input` to `out` (the file at `path`) through `buf`.
pub(crate) fn copy_to_file<R: Read, W: Write>(
    input: &mut R,
    out: &mut W,
    path: &Path,
    buf: &mut [u8],
) -> Result<u64, CopyError> {
    let mut total = 0u64;
    loop {
        let n = match input.read(buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        out.write_all(&buf[..n])
            .map_err(|e| CopyError::Write(ImageError::io("write", path, e)))?;
        total += n as u64;
    }
}

/// A buffer size for file copies.
pub(crate) const COPY_BUF_SIZE: usize = 128 * 1024;
