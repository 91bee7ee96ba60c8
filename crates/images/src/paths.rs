//! Normalisation of path names found inside archives, shared by the outer
//! archive reader and the layer extractor.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

/// What is wrong with an archive path name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathProblem {
    /// It has a `..` component.
    DotDot,
}

impl PathProblem {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            PathProblem::DotDot => "escapes the root filesystem",
        }
    }
}

/// An archive path split into components: empty and `.` components
/// (a leading `/`, `./`, doubled slashes) are dropped; `..` is refused.
/// An empty result means the archive root itself.
pub(crate) fn components(raw: &[u8]) -> Result<Vec<OsString>, PathProblem> {
    let mut out = Vec::new();
    for part in raw.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err(PathProblem::DotDot),
            other => out.push(OsStr::from_bytes(other).to_os_string()),
        }
    }
    Ok(out)
}

/// A printable form of a raw archive path, for messages.
pub(crate) fn display(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comps(raw: &str) -> Result<Vec<String>, PathProblem> {
        components(raw.as_bytes()).map(|v| {
            v.into_iter()
                .map(|c| c.to_string_lossy().into_owned())
                .collect()
        })
    }

    #[test]
    fn strips_leading_slash_and_dots() {
        assert_eq!(comps("./a/b").unwrap(), ["a", "b"]);
        assert_eq!(comps("/etc/x").unwrap(), ["etc", "x"]);
        assert_eq!(comps("a//./b/").unwrap(), ["a", "b"]);
        assert!(comps("./").unwrap().is_empty());
        assert!(comps("").unwrap().is_empty());
        assert_eq!(comps("..a/b..").unwrap(), ["..a", "b.."]);
    }

    #[test]
    fn refuses_dot_dot() {
        for bad in ["..", "../x", "a/../b", "a/..", "/../etc"] {
            assert_eq!(comps(bad), Err(PathProblem::DotDot), "{bad}");
        }
    }
}
