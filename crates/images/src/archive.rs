//! The outer archive of an import: which format it is, and — for docker
//! archives and OCI layouts — its files extracted into scratch space so that
//! they can be read in any order.
//!
//! Only regular files and directories are written. Symlinks and hard links
//! inside the outer archive (`docker save` links repeated layers) are kept as
//! a name table and resolved lexically when a file is looked up, so no link
//! ever exists on disk. Absolute names and `..` are refused.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use tar::EntryType;

use crate::compress::{decompress, unsupported, Compression};
use crate::copy::{CopyError, COPY_BUF_SIZE};
use crate::error::{io_err, ImageError};
use crate::extract::{copy_sparse, ImportLimits};
use crate::formats::FileSource;
use crate::paths::{self, components};

/// The formats an archive file can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArchiveKind {
    /// `docker save` output: has `manifest.json`.
    Docker,
    /// An OCI image layout: has `oci-layout` and `index.json`. Docker 25+
    /// writes both layouts in one archive; the OCI one is preferred because it
    /// keeps the original manifest and names every blob by digest.
    OciLayout,
    /// Anything else that is a tar archive: a root filesystem.
    Rootfs,
}

/// Looks at the names in the (possibly gzip-compressed) tar archive at `path`.
pub(crate) fn detect(path: &Path) -> Result<ArchiveKind, ImageError> {
    let mut file = File::open(path).map_err(io_err("open", path))?;
    let mut head = Vec::with_capacity(6);
    (&mut file)
        .take(6)
        .read_to_end(&mut head)
        .map_err(io_err("read", path))?;
    file.seek(SeekFrom::Start(0))
        .map_err(io_err("read", path))?;
    match Compression::sniff(&head) {
        Compression::None => scan_names(path, tar::Archive::new(file).entries_with_seek()),
        Compression::Gzip => scan_names(
            path,
            tar::Archive::new(MultiGzDecoder::new(io::BufReader::new(file))).entries(),
        ),
        other => Err(unsupported(other, &format!("'{}'", path.display()))),
    }
}

fn scan_names<R: Read>(
    path: &Path,
    entries: io::Result<tar::Entries<'_, R>>,
) -> Result<ArchiveKind, ImageError> {
    let not_tar = |e: io::Error| ImageError::UnknownFormat {
        path: path.to_path_buf(),
        reason: format!("it is not a tar archive ({e})"),
    };
    let (mut count, mut manifest_json, mut oci_layout, mut index_json) =
        (0usize, false, false, false);
    for entry in entries.map_err(not_tar)? {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) if count == 0 => return Err(not_tar(e)),
            Err(e) => {
                return Err(ImageError::invalid(format!(
                    "'{}' is a damaged tar archive: {e}",
                    path.display()
                )))
            }
        };
        count += 1;
        if let Ok(comps) = components(&entry.path_bytes()) {
            if let [only] = comps.as_slice() {
                match only.as_bytes() {
                    b"manifest.json" => manifest_json = true,
                    b"oci-layout" => oci_layout = true,
                    b"index.json" => index_json = true,
                    _ => {}
                }
            }
        }
    }
    if count == 0 {
        return Err(ImageError::UnknownFormat {
            path: path.to_path_buf(),
            reason: "the archive is empty".into(),
        });
    }
    Ok(if oci_layout && index_json {
        ArchiveKind::OciLayout
    } else if manifest_json {
        ArchiveKind::Docker
    } else {
        ArchiveKind::Rootfs
    })
}

/// An outer archive's files, extracted under a scratch directory.
#[derive(Debug)]
pub(crate) struct ArchiveDir {
    root: PathBuf,
    /// Link name → the archive path it stands for.
    aliases: HashMap<Vec<OsString>, Vec<OsString>>,
}

/// Most link hops followed when looking a name up.
const MAX_LINK_HOPS: usize = 40;

impl ArchiveDir {
    /// Extracts the regular files of the archive at `archive` into `dest`
    /// (which must not exist).
    pub(crate) fn extract(
        archive: &Path,
        dest: &Path,
        limits: &ImportLimits,
    ) -> Result<ArchiveDir, ImageError> {
        let file = File::open(archive).map_err(io_err("open", archive))?;
        let what = format!("'{}'", archive.display());
        let stream = decompress(file, &what, |e| ImageError::io("read", archive, e))?;
        fs::create_dir(dest).map_err(io_err("create directory", dest))?;
        let damaged =
            |e: io::Error| ImageError::invalid(format!("{what} is a damaged tar archive: {e}"));

        let mut dir = ArchiveDir {
            root: dest.to_path_buf(),
            aliases: HashMap::new(),
        };
        let mut buf = vec![0u8; COPY_BUF_SIZE];
        let mut tar = tar::Archive::new(stream);
        for entry in tar.entries().map_err(damaged)? {
            let mut entry = entry.map_err(damaged)?;
            let raw = entry.path_bytes().into_owned();
            let name = paths::display(&raw);
            if raw.starts_with(b"/") {
                return Err(ImageError::unsafe_entry(name, "is an absolute path"));
            }
            let comps =
                components(&raw).map_err(|p| ImageError::unsafe_entry(&name, p.describe()))?;
            if comps.is_empty() {
                continue;
            }
            let path = comps.iter().fold(dest.to_path_buf(), |p, c| p.join(c));
            match entry.header().entry_type() {
                EntryType::Directory => {
                    fs::create_dir_all(&path).map_err(io_err("create directory", &path))?;
                }
                EntryType::Regular | EntryType::Continuous => {
                    if let Some(parent) = path.parent() {
                        fs::create_dir_all(parent).map_err(io_err("create directory", parent))?;
                    }
                    dir.aliases.remove(&comps);
                    if entry.size() > limits.max_layer_bytes {
                        return Err(ImageError::TooLarge {
                            what: what.clone(),
                            entry: name,
                            limit: limits.max_layer_bytes,
                        });
                    }
                    let mut out =
                        crate::private::create_file(&path).map_err(io_err("create", &path))?;
                    copy_sparse(&mut entry, &mut out, &path, &mut buf).map_err(|e| match e {
                        CopyError::Read(e) => damaged(e),
                        CopyError::Write(e) => e,
                    })?;
                }
                EntryType::Symlink => {
                    let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                    let resolved = resolve_symlink(&comps, &target).ok_or_else(|| {
                        ImageError::unsafe_entry(
                            &name,
                            format!(
                                "is a symlink to '{}', outside the archive",
                                paths::display(&target)
                            ),
                        )
                    })?;
                    dir.aliases.insert(comps, resolved);
                }
                EntryType::Link => {
                    let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                    let resolved = components(&target).map_err(|_| {
                        ImageError::unsafe_entry(
                            &name,
                            format!(
                                "is a hard link to '{}', outside the archive",
                                paths::display(&target)
                            ),
                        )
                    })?;
                    dir.aliases.insert(comps, resolved);
                }
                _ => {}
            }
        }
        Ok(dir)
    }
}

impl FileSource for ArchiveDir {
    fn file(&self, name: &str) -> Result<Option<PathBuf>, ImageError> {
        let mut comps = components(name.as_bytes())
            .map_err(|_| ImageError::unsafe_entry(name, "escapes the archive"))?;
        let mut hops = 0;
        'resolve: loop {
            for i in (1..=comps.len()).rev() {
                if let Some(target) = self.aliases.get(&comps[..i]) {
                    hops += 1;
                    if hops > MAX_LINK_HOPS {
                        return Err(ImageError::invalid(format!(
                            "archive entry '{name}' is part of a symlink loop"
                        )));
                    }
                    let mut next = target.clone();
                    next.extend_from_slice(&comps[i..]);
                    comps = next;
                    continue 'resolve;
                }
            }
            break;
        }
        let path = comps.iter().fold(self.root.clone(), |p, c| p.join(c));
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => Ok(Some(path)),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ImageError::io("inspect", &path, e)),
        }
    }

    fn is_scratch(&self) -> bool {
        true
    }
}

/// Where a symlink at `link` pointing at `target` leads, as archive path
/// components, or `None` when it leads out of the archive.
fn resolve_symlink(link: &[OsString], target: &[u8]) -> Option<Vec<OsString>> {
    let mut out: Vec<OsString> = if target.starts_with(b"/") {
        Vec::new()
    } else {
        link[..link.len().saturating_sub(1)].to_vec()
    };
    for part in target.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                out.pop()?;
            }
            other => out.push(std::ffi::OsStr::from_bytes(other).to_os_string()),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comps(s: &str) -> Vec<OsString> {
        components(s.as_bytes()).unwrap()
    }

    #[test]
    fn resolves_symlinks_lexically() {
        assert_eq!(
            resolve_symlink(&comps("a/layer.tar"), b"../b/layer.tar"),
            Some(comps("b/layer.tar"))
        );
        assert_eq!(
            resolve_symlink(&comps("a/x"), b"/blobs/y"),
            Some(comps("blobs/y"))
        );
        assert_eq!(resolve_symlink(&comps("a/x"), b"../../etc/passwd"), None);
    }
}
