//! Turning source code sent by a user (a tar or tar.gz of a file tree) into an image layer
//! ([`code_layer`]): an uncompressed tar whose entries all sit under one directory (the
//! function's, e.g. `/function`), in a canonical form — directories and regular files only,
//! owner 0:0, modification time 0, setuid/setgid/sticky bits dropped, entries sorted — so the
//! same tree gives the same bytes (and, appended to the same image, the same image digest).
//!
//! The source is read once: file contents go to a spool file beside `dest` (removed at the
//! end), the tree is kept in memory, then the layer is written in order.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::ops::Bound;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use tar::EntryType;

use crate::compress::decompress;
use crate::error::{io_err, ImageError};
use crate::extract::ImportLimits;
use crate::paths;

/// The most entries a source archive may have.
pub const MAX_CODE_ENTRIES: u64 = 100_000;
/// The longest path (prefix included, in bytes) an entry of a code layer may have.
pub const MAX_CODE_PATH: usize = 4096;
/// The longest name (one path component, in bytes).
const MAX_NAME: usize = 255;
const WHITEOUT_PREFIX: &str = ".wh.";
const DIR_MODE: u32 = 0o755;

/// What [`code_layer`] put into the layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeLayer {
    /// Regular files.
    pub files: u64,
    /// Their sizes together.
    pub bytes: u64,
    /// The files' paths relative to the prefix, sorted as in the layer (component by
    /// component: `a/x` before `a-b`).
    pub paths: Vec<String>,
}

/// Re-packs a tar or tar.gz of source code (a file tree sent by a user) as an uncompressed
/// layer tar at `dest` (created or replaced) whose entries all sit under `prefix` (an
/// absolute directory, e.g. `/function`; its directories are written 0755): directories and
/// regular files only (symlinks, devices, hard links refused with a clear error naming the
/// entry), owner 0:0, modes kept but setuid/setgid/sticky dropped, mtime 0, entries sorted:
/// the same tree gives the same bytes. Bounded by `limits.max_layer_bytes` (the files' sizes
/// together), [`MAX_CODE_ENTRIES`] entries and [`MAX_CODE_PATH`] bytes of path; `..`,
/// absolute paths and names that are OCI whiteouts (`.wh.*`) are refused, as is a tree
/// without files.
pub fn code_layer(
    src: &Path,
    prefix: &str,
    dest: &Path,
    limits: &ImportLimits,
) -> Result<CodeLayer, ImageError> {
    let bounds = Bounds {
        bytes: limits.max_layer_bytes,
        entries: MAX_CODE_ENTRIES,
        path: MAX_CODE_PATH,
    };
    build(src, prefix, dest, &bounds)
}

/// The bounds of one source tree.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    bytes: u64,
    entries: u64,
    path: usize,
}

/// One node of the source tree.
#[derive(Debug, Clone, Copy)]
enum Node {
    Dir { mode: u32 },
    File { mode: u32, offset: u64, len: u64 },
}

fn invalid(message: String) -> ImageError {
    ImageError::InvalidSource(message)
}

fn build(src: &Path, prefix: &str, dest: &Path, bounds: &Bounds) -> Result<CodeLayer, ImageError> {
    let prefix = prefix_components(prefix)?;
    let spool_path = sibling(dest, "spool");
    let spool = Spool::create(&spool_path)?;
    let result = read_tree(src, &prefix, bounds, spool).and_then(|(tree, mut spool)| {
        write_layer(&tree, &prefix, &mut spool.file, dest, &spool_path)
    });
    if let Err(e) = fs::remove_file(&spool_path) {
        if e.kind() != io::ErrorKind::NotFound {
            tracing::warn!(path = %spool_path.display(), error = %e, "removing a spool file failed");
        }
    }
    if result.is_err() {
        let _ = fs::remove_file(dest);
    }
    result
}

/// The prefix's components; it must be absolute, plain and name a directory below `/`.
fn prefix_components(prefix: &str) -> Result<Vec<String>, ImageError> {
    let bad = |why: &str| {
        ImageError::InvalidOptions(format!(
            "code directory '{prefix}' {why}; give an absolute directory such as /function"
        ))
    };
    if !prefix.starts_with('/') {
        return Err(bad("is not an absolute path"));
    }
    if prefix.chars().any(char::is_control) {
        return Err(bad("contains control characters"));
    }
    let mut out = Vec::new();
    for part in prefix.split('/') {
        match part {
            "" => {}
            "." | ".." => return Err(bad("has '.' or '..' in it")),
            p if p.starts_with(WHITEOUT_PREFIX) => return Err(bad("has a whiteout name in it")),
            p if p.len() > MAX_NAME => return Err(bad("has a name longer than 255 bytes")),
            p => out.push(p.to_string()),
        }
    }
    if out.is_empty() {
        return Err(bad("is the root directory"));
    }
    Ok(out)
}

/// `dest` with `.<suffix>` appended to its file name.
fn sibling(dest: &Path, suffix: &str) -> PathBuf {
    let mut name = dest
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".{suffix}"));
    dest.with_file_name(name)
}

/// The file contents of the source tree, one after another.
struct Spool {
    file: File,
    len: u64,
}

impl Spool {
    fn create(path: &Path) -> Result<Spool, ImageError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(io_err("create", path))?;
        Ok(Spool { file, len: 0 })
    }
}

/// Reads the source archive into a tree of nodes (keyed by path components, so a directory
/// sorts before what is in it) and the spool.
fn read_tree(
    src: &Path,
    prefix: &[String],
    bounds: &Bounds,
    mut spool: Spool,
) -> Result<(BTreeMap<Vec<String>, Node>, Spool), ImageError> {
    let what = format!("source archive '{}'", src.display());
    let file = File::open(src).map_err(io_err("open", src))?;
    let owned = src.to_path_buf();
    let stream = decompress(file, &what, move |e| ImageError::io("read", owned, e))?;
    let corrupt = |e: io::Error| invalid(format!("{what} is not a valid tar archive: {e}"));
    let mut archive = tar::Archive::new(stream);
    let prefix_len: usize = prefix.iter().map(|p| p.len() + 1).sum();

    let mut tree: BTreeMap<Vec<String>, Node> = BTreeMap::new();
    let mut entries = 0u64;
    let mut bytes = 0u64;
    let mut writer = BufWriter::new(&mut spool.file);
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            continue;
        }
        entries += 1;
        if entries > bounds.entries {
            return Err(invalid(format!(
                "{what} has more than {} entries; send fewer files (dependencies belong in \
                 an image build, not in the function's code)",
                bounds.entries
            )));
        }
        let raw = entry.path_bytes().into_owned();
        let name = paths::display(&raw);
        let entry_err = |why: &str| invalid(format!("entry '{name}' {why}"));
        if raw.starts_with(b"/") {
            return Err(entry_err(
                "is an absolute path; pack the tree with relative paths (tar -C DIR .)",
            ));
        }
        let comps = paths::components(&raw)
            .map_err(|_| entry_err("has '..' in its path, which would leave the code directory"))?;
        let comps = comps
            .into_iter()
            .map(|c| c.into_string())
            .collect::<Result<Vec<String>, _>>()
            .map_err(|_| entry_err("has a name that is not UTF-8; rename it"))?;
        if let Some(part) = comps.iter().find(|c| c.starts_with(WHITEOUT_PREFIX)) {
            return Err(entry_err(&format!(
                "has a name starting with '{WHITEOUT_PREFIX}' ('{part}'), which image layers \
                 use to delete files; rename it"
            )));
        }
        if comps.iter().any(|c| c.len() > MAX_NAME) {
            return Err(entry_err("has a name longer than 255 bytes"));
        }
        let path_len = prefix_len + comps.iter().map(|c| c.len() + 1).sum::<usize>();
        if path_len > bounds.path {
            return Err(entry_err(&format!(
                "has a path longer than {} bytes (with the code directory)",
                bounds.path
            )));
        }
        let mode = entry
            .header()
            .mode()
            .map_err(|e| entry_err(&format!("is damaged: {e}")))?
            & 0o777;
        let node = match kind {
            EntryType::Directory => {
                if comps.is_empty() {
                    // The tree's root: the code directory, whose mode is fixed.
                    continue;
                }
                Node::Dir { mode }
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                if comps.is_empty() {
                    return Err(entry_err("is a file with an empty path"));
                }
                let len = entry.size();
                bytes = bytes.saturating_add(len);
                if bytes > bounds.bytes {
                    return Err(ImageError::TooLarge {
                        what: what.clone(),
                        entry: name.clone(),
                        limit: bounds.bytes,
                    });
                }
                let offset = spool.len;
                let copied = io::copy(&mut entry, &mut writer).map_err(corrupt)?;
                if copied != len {
                    return Err(entry_err("is cut short (the archive is truncated)"));
                }
                spool.len += len;
                Node::File { mode, offset, len }
            }
            EntryType::Symlink => {
                return Err(entry_err(
                    "is a symbolic link; source code may hold only directories and regular \
                     files: replace it with a copy of what it points at",
                ))
            }
            EntryType::Link => {
                return Err(entry_err(
                    "is a hard link; source code may hold only directories and regular files: \
                     pack it as a copy (tar --hard-dereference)",
                ))
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                return Err(entry_err(
                    "is a device node or FIFO; source code may hold only directories and \
                     regular files: remove it",
                ))
            }
            other => {
                return Err(entry_err(&format!(
                    "is of tar type {other:?}; source code may hold only directories and \
                     regular files"
                )))
            }
        };
        insert(&mut tree, comps, node, &name)?;
    }
    writer.flush().map_err(corrupt)?;
    drop(writer);
    Ok((tree, spool))
}

/// Puts `node` at `comps`, creating missing parent directories (0755). A later entry for the
/// same path replaces an earlier one, as when unpacking; a file where a directory is needed
/// (or the other way round) is refused.
fn insert(
    tree: &mut BTreeMap<Vec<String>, Node>,
    comps: Vec<String>,
    node: Node,
    name: &str,
) -> Result<(), ImageError> {
    let conflict = || {
        invalid(format!(
            "entry '{name}' is both a file and a directory in the archive; pack the tree again"
        ))
    };
    for end in 1..comps.len() {
        match tree.get(&comps[..end]) {
            Some(Node::Dir { .. }) => {}
            Some(Node::File { .. }) => return Err(conflict()),
            None => {
                tree.insert(comps[..end].to_vec(), Node::Dir { mode: DIR_MODE });
            }
        }
    }
    if let Node::File { .. } = node {
        let has_children = tree
            .range::<Vec<String>, _>((Bound::Excluded(&comps), Bound::Unbounded))
            .next()
            .is_some_and(|(k, _)| k.starts_with(&comps));
        if has_children {
            return Err(conflict());
        }
    }
    tree.insert(comps, node);
    Ok(())
}

/// Writes the layer: the prefix's directories, then the tree in order.
fn write_layer(
    tree: &BTreeMap<Vec<String>, Node>,
    prefix: &[String],
    spool: &mut File,
    dest: &Path,
    spool_path: &Path,
) -> Result<CodeLayer, ImageError> {
    let files: Vec<String> = tree
        .iter()
        .filter(|(_, n)| matches!(n, Node::File { .. }))
        .map(|(k, _)| k.join("/"))
        .collect();
    if files.is_empty() {
        return Err(invalid(
            "the archive holds no files; send the directory or file with the handler's code".into(),
        ));
    }
    let out = crate::private::create_file(dest).map_err(io_err("create", dest))?;
    let mut builder = tar::Builder::new(BufWriter::new(out));
    let write_err = |e: io::Error| ImageError::io("write", dest, e);

    for end in 1..=prefix.len() {
        let path = prefix[..end].join("/");
        let mut header = header(EntryType::Directory, DIR_MODE, 0);
        builder
            .append_data(&mut header, format!("{path}/"), io::empty())
            .map_err(write_err)?;
    }
    let base = prefix.join("/");
    let mut bytes = 0u64;
    for (comps, node) in tree {
        let path = format!("{base}/{}", comps.join("/"));
        match *node {
            Node::Dir { mode } => {
                let mut header = header(EntryType::Directory, mode, 0);
                builder
                    .append_data(&mut header, format!("{path}/"), io::empty())
                    .map_err(write_err)?;
            }
            Node::File { mode, offset, len } => {
                spool
                    .seek(SeekFrom::Start(offset))
                    .map_err(io_err("read", spool_path))?;
                let mut header = header(EntryType::Regular, mode, len);
                let mut data = Read::by_ref(spool).take(len);
                builder
                    .append_data(&mut header, &path, &mut data)
                    .map_err(write_err)?;
                bytes += len;
            }
        }
    }
    let mut out = builder.into_inner().map_err(write_err)?;
    out.flush().map_err(write_err)?;
    out.into_inner()
        .map_err(|e| write_err(e.into_error()))?
        .sync_all()
        .map_err(write_err)?;
    Ok(CodeLayer {
        files: files.len() as u64,
        bytes,
        paths: files,
    })
}

/// A header owned by 0:0 with time 0 and no user or group names.
fn header(kind: EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(size);
    header
}

#[cfg(test)]
mod tests;
