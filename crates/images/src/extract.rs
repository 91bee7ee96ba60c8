//! Safe extraction of one layer tar into a fresh directory, in the form
//! overlayfs expects of a lowerdir.
//!
//! The `tar` crate only parses; every file system change is made here, under
//! these rules:
//!
//! - Entry paths lose leading `/` and `./`; a `..` component is refused, so
//!   is an empty path for anything but a directory (the root itself).
//! - Nothing is written through a symlink: every parent directory of an entry
//!   is checked with `lstat` and must be a real directory (missing ones are
//!   created with mode 0755). Files are created with `O_CREAT|O_EXCL|
//!   O_NOFOLLOW` after whatever was at that path has been removed. Symlink
//!   entries are created as they are, whatever they point at, and never
//!   followed.
//! - Hard links must name an existing non-directory inside the layer,
//!   reached without symlinks.
//! - Character and block devices under the top-level `dev/` are skipped and
//!   counted (root filesystems made by debootstrap or mmdebstrap have
//!   `/dev/null` and friends; the runtime provides `/dev`), as are hard links
//!   to them; elsewhere they are refused (except 0:0 character devices, which
//!   are overlayfs whiteouts already). FIFOs are created.
//! - Owners come from the header (numeric uid/gid; we run as root). Files
//!   lose their setuid, setgid and sticky bits; directories keep setgid and
//!   sticky (needed for `/tmp`). Modification times are kept.
//! - Extended attributes stored in the archive (PAX `SCHILY.xattr.*`) are not
//!   applied, so an image cannot set `trusted.overlay.*` itself.
//! - The files of a layer count at their apparent size (a sparse file at its
//!   full length) against [`ImportLimits::max_layer_bytes`]; over it, the
//!   layer is refused before that file's data is read. Runs of zeros
//!   ([`ZERO_RUN`] bytes, aligned) are not written but skipped, so sparse
//!   files (GNU sparse entries, or plain runs of zeros a compressed layer
//!   expands to) stay sparse on disk.
//! - OCI whiteouts become overlayfs whiteouts: `dir/.wh.name` is a 0:0
//!   character device at `dir/name` (unless this layer itself has put
//!   something there: whiteouts only hide lower layers); `dir/.wh..wh..opq` sets
//!   `trusted.overlay.opaque=y` on `dir`; other `.wh..wh.*` names are skipped.
//!
//! The extraction directory is private to the import (under the store's
//! `tmp/`), so nothing else changes it while these checks run.

use std::ffi::{OsStr, OsString};
use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{makedev, mknod, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use tar::EntryType;

use crate::compress::decompress;
use crate::copy::{CopyError, COPY_BUF_SIZE};
use crate::digest::HashingReader;
use crate::error::{io_err, ImageError};
use crate::paths::{self, components};

const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const FILE_MODE_MASK: u32 = 0o777;
const DIR_MODE_MASK: u32 = 0o3777;
const IMPLICIT_DIR_MODE: u32 = 0o755;

/// Bounds of what one import may unpack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportLimits {
    /// The most bytes a layer's files may add up to, each counted at its
    /// apparent size (a sparse file at its full length). Also the most an
    /// entry of an image archive (a blob) may unpack to.
    pub max_layer_bytes: u64,
    /// The most a pull may download: its layers' sizes as the manifest gives them, together
    /// (the server gives its `max-upload-size`, the bound of an image archive, so a pull fills
    /// the disk no more than an import may).
    pub max_download_bytes: u64,
}

impl ImportLimits {
    /// The default layer bound: 16 GiB.
    pub const DEFAULT_MAX_LAYER_BYTES: u64 = 16 << 30;
    /// The default download bound: 16 GiB.
    pub const DEFAULT_MAX_DOWNLOAD_BYTES: u64 = 16 << 30;
}

impl Default for ImportLimits {
    fn default() -> Self {
        ImportLimits {
            max_layer_bytes: Self::DEFAULT_MAX_LAYER_BYTES,
            max_download_bytes: Self::DEFAULT_MAX_DOWNLOAD_BYTES,
        }
    }
}

/// A run of zeros this long (at this alignment in the file) is skipped, not
/// written: a hole in the file.
pub(crate) const ZERO_RUN: usize = 4096;

/// What extracting a layer found out about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Extracted {
    /// `sha256:<hex>` of the uncompressed tar stream.
    pub(crate) diff_id: String,
    /// Length of the uncompressed tar stream.
    pub(crate) tar_size: u64,
    /// Device nodes (and hard links to them) under `dev/` that were skipped.
    pub(crate) skipped_devices: u64,
}

/// Extracts the layer blob at `blob` (plain or gzip tar) into `dest`, which
/// must not exist yet. `what` names the layer in errors.
pub(crate) fn extract_layer(
    blob: &Path,
    dest: &Path,
    what: &str,
    limits: &ImportLimits,
) -> Result<Extracted, ImageError> {
    let file = File::open(blob).map_err(io_err("open", blob))?;
    let blob_owned = blob.to_path_buf();
    let stream = decompress(file, what, move |e| ImageError::io("read", blob_owned, e))?;
    extract_stream(stream, dest, what, limits)
}

/// Extracts an uncompressed tar stream into `dest`, which must not exist yet.
pub(crate) fn extract_stream<R: Read>(
    reader: R,
    dest: &Path,
    what: &str,
    limits: &ImportLimits,
) -> Result<Extracted, ImageError> {
    DirBuilder::new()
        .mode(IMPLICIT_DIR_MODE)
        .create(dest)
        .map_err(io_err("create directory", dest))?;
    set_mode(dest, IMPLICIT_DIR_MODE)?;

    let corrupt =
        |e: io::Error| ImageError::invalid(format!("{what} is not a valid tar archive: {e}"));
    let mut archive = tar::Archive::new(HashingReader::new(reader));
    let mut extractor = Extractor {
        root: dest,
        what,
        dir_times: Vec::new(),
        buf: vec![0; COPY_BUF_SIZE],
        apparent: 0,
        max_apparent: limits.max_layer_bytes,
        skipped_devices: Vec::new(),
    };
    {
        let entries = archive.entries().map_err(corrupt)?;
        for entry in entries {
            let mut entry = entry.map_err(corrupt)?;
            extractor.entry(&mut entry)?;
        }
    }
    // The hash covers the whole stream, including the padding after the
    // end-of-archive marker that the tar reader leaves unread.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(corrupt)?;
    extractor.finish();
    let skipped_devices = extractor.skipped_devices.len() as u64;
    let (diff_id, tar_size) = rest.finish();
    Ok(Extracted {
        diff_id,
        tar_size,
        skipped_devices,
    })
}

/// Ownership, permissions and time from an entry header.
#[derive(Debug, Clone, Copy)]
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
}

struct Extractor<'a> {
    root: &'a Path,
    what: &'a str,
    /// Directory mtimes, applied at the end (creating children changes them).
    dir_times: Vec<(PathBuf, i64)>,
    buf: Vec<u8>,
    /// The apparent size of the files so far.
    apparent: u64,
    max_apparent: u64,
    /// The paths (as in the archive, normalised) of the device nodes skipped under `dev/`.
    skipped_devices: Vec<Vec<OsString>>,
}

/// Whether normalised path components lie under the top-level `dev/` (which the runtime
/// provides, so an image's device nodes there are not needed).
fn under_dev(comps: &[OsString]) -> bool {
    comps.len() > 1 && comps[0] == "dev"
}

impl Extractor<'_> {
    fn corrupt_entry(&self, entry: &str, e: impl std::fmt::Display) -> ImageError {
        ImageError::invalid(format!("{}: entry '{entry}' is damaged: {e}", self.what))
    }

    fn meta(&self, header: &tar::Header, entry: &str) -> Result<Meta, ImageError> {
        let mode = header.mode().map_err(|e| self.corrupt_entry(entry, e))?;
        // Some writers leave owner and time fields blank: read those as 0.
        let uid = header.uid().unwrap_or(0);
        let gid = header.gid().unwrap_or(0);
        let mtime = header.mtime().unwrap_or(0);
        let id = |v: u64| {
            u32::try_from(v).map_err(|_| self.corrupt_entry(entry, "owner id out of range"))
        };
        Ok(Meta {
            mode,
            uid: id(uid)?,
            gid: id(gid)?,
            mtime: i64::try_from(mtime).unwrap_or(i64::MAX),
        })
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), ImageError> {
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            // Metadata for other entries; the tar reader has applied it.
            return Ok(());
        }
        let raw = entry.path_bytes().into_owned();
        let name = paths::display(&raw);
        let comps = components(&raw).map_err(|p| ImageError::unsafe_entry(&name, p.describe()))?;
        let header = entry.header().clone();
        let meta = self.meta(&header, &name)?;

        let Some((last, parents)) = comps.split_last() else {
            if kind.is_dir() {
                return self.apply_dir_meta(self.root.to_path_buf(), meta);
            }
            return Err(ImageError::unsafe_entry(name, "has an empty path"));
        };

        if let Some(hidden) = last.as_bytes().strip_prefix(WHITEOUT_PREFIX) {
            return self.whiteout(&name, parents, last, hidden, meta);
        }

        match kind {
            EntryType::Directory => {
                let parent = self.parent_dir(parents, &name)?;
                self.directory(parent.join(last), meta)
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.count_apparent(&name, entry.size())?;
                let parent = self.parent_dir(parents, &name)?;
                self.regular(entry, &name, parent.join(last), meta)
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| self.corrupt_entry(&name, "symlink without a target"))?;
                let parent = self.parent_dir(parents, &name)?;
                self.symlink(parent.join(last), &target, meta)
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .ok_or_else(|| self.corrupt_entry(&name, "hard link without a target"))?;
                if under_dev(&comps) {
                    let linked = components(&target).ok();
                    if linked.is_some_and(|t| self.skipped_devices.contains(&t)) {
                        // A link to a device node skipped above: skipped as well.
                        self.skipped_devices.push(comps);
                        return Ok(());
                    }
                }
                let target = self.hard_link_target(&name, &target)?;
                let parent = self.parent_dir(parents, &name)?;
                self.hard_link(&target, parent.join(last))
            }
            EntryType::Char | EntryType::Block => {
                let major = header.device_major().ok().flatten();
                let minor = header.device_minor().ok().flatten();
                if kind == EntryType::Char && major == Some(0) && minor == Some(0) {
                    // Already an overlayfs whiteout.
                    let parent = self.parent_dir(parents, &name)?;
                    return self.make_whiteout(parent.join(last), meta);
                }
                if under_dev(&comps) {
                    tracing::debug!(entry = %name, "skipping a device node under /dev");
                    self.skipped_devices.push(comps);
                    return Ok(());
                }
                Err(ImageError::DeviceNode { entry: name })
            }
            EntryType::Fifo => {
                let parent = self.parent_dir(parents, &name)?;
                self.fifo(parent.join(last), meta)
            }
            other => {
                tracing::debug!(entry = %name, kind = ?other, "skipping layer entry of unknown type");
                Ok(())
            }
        }
    }

    /// Adds a file's apparent size to the layer's; refuses the layer over
    /// the bound (before the file's data is read).
    fn count_apparent(&mut self, entry: &str, size: u64) -> Result<(), ImageError> {
        self.apparent = self.apparent.saturating_add(size);
        if self.apparent > self.max_apparent {
            return Err(ImageError::TooLarge {
                what: self.what.to_string(),
                entry: entry.to_string(),
                limit: self.max_apparent,
            });
        }
        Ok(())
    }

    /// Returns the directory for an entry's parent components, creating
    /// missing ones and refusing symlinks and non-directories on the way.
    fn parent_dir(&self, parents: &[OsString], entry: &str) -> Result<PathBuf, ImageError> {
        let mut path = self.root.to_path_buf();
        for component in parents {
            path.push(component);
            match fs::symlink_metadata(&path) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(ImageError::unsafe_entry(
                        entry,
                        format!(
                            "would be written through the symlink '{}'",
                            self.relative(&path)
                        ),
                    ))
                }
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(ImageError::unsafe_entry(
                        entry,
                        format!(
                            "is inside '{}', which is not a directory",
                            self.relative(&path)
                        ),
                    ))
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    DirBuilder::new()
                        .mode(IMPLICIT_DIR_MODE)
                        .create(&path)
                        .map_err(io_err("create directory", &path))?;
                    set_mode(&path, IMPLICIT_DIR_MODE)?;
                }
                Err(e) => return Err(ImageError::io("inspect", &path, e)),
            }
        }
        Ok(path)
    }

    fn relative(&self, path: &Path) -> String {
        path.strip_prefix(self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    fn whiteout(
        &mut self,
        name: &str,
        parents: &[OsString],
        last: &OsStr,
        hidden: &[u8],
        meta: Meta,
    ) -> Result<(), ImageError> {
        if last.as_bytes() == OPAQUE_MARKER {
            let dir = self.parent_dir(parents, name)?;
            return xattr::set(&dir, OPAQUE_XATTR, b"y")
                .map_err(io_err("set the overlayfs opaque attribute on", &dir));
        }
        if hidden.starts_with(WHITEOUT_PREFIX) {
            tracing::debug!(entry = %name, "skipping whiteout metadata entry");
            return Ok(());
        }
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(ImageError::unsafe_entry(
                name,
                "is a whiteout of an invalid name",
            ));
        }
        let parent = self.parent_dir(parents, name)?;
        let path = parent.join(OsStr::from_bytes(hidden));
        // A whiteout hides lower layers only: what this layer itself put at
        // that path stays (and already hides the lower layers).
        match fs::symlink_metadata(&path) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.make_whiteout(path, meta),
            Err(e) => Err(ImageError::io("inspect", &path, e)),
        }
    }

    fn make_whiteout(&self, path: PathBuf, meta: Meta) -> Result<(), ImageError> {
        remove_existing(&path)?;
        mknod(&path, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
            .map_err(|e| ImageError::io("create whiteout device", &path, e.into()))?;
        chown(&path, meta)
    }

    fn directory(&mut self, path: PathBuf, meta: Meta) -> Result<(), ImageError> {
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                remove_existing(&path)?;
                create_dir(&path)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => create_dir(&path)?,
            Err(e) => return Err(ImageError::io("inspect", &path, e)),
        }
        self.apply_dir_meta(path, meta)
    }

    fn apply_dir_meta(&mut self, path: PathBuf, meta: Meta) -> Result<(), ImageError> {
        chown(&path, meta)?;
        set_mode(&path, meta.mode & DIR_MODE_MASK)?;
        self.dir_times.push((path, meta.mtime));
        Ok(())
    }

    fn regular<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        name: &str,
        path: PathBuf,
        meta: Meta,
    ) -> Result<(), ImageError> {
        remove_existing(&path)?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
            .open(&path)
            .map_err(io_err("create", &path))?;
        copy_sparse(entry, &mut file, &path, &mut self.buf).map_err(|e| match e {
            CopyError::Read(e) => self.corrupt_entry(name, e),
            CopyError::Write(e) => e,
        })?;
        if may_give_owners() {
            std::os::unix::fs::fchown(&file, Some(meta.uid), Some(meta.gid))
                .map_err(io_err("change the owner of", &path))?;
        }
        file.set_permissions(Permissions::from_mode(meta.mode & FILE_MODE_MASK))
            .map_err(io_err("change the mode of", &path))?;
        drop(file);
        set_mtime(&path, meta.mtime)
    }

    fn symlink(&self, path: PathBuf, target: &[u8], meta: Meta) -> Result<(), ImageError> {
        remove_existing(&path)?;
        std::os::unix::fs::symlink(OsStr::from_bytes(target), &path)
            .map_err(io_err("create symlink", &path))?;
        chown(&path, meta)?;
        set_mtime(&path, meta.mtime)
    }

    /// Resolves a hard link's target inside the layer, refusing anything
    /// outside it, reached through a symlink, missing, or a directory.
    fn hard_link_target(&self, entry: &str, raw: &[u8]) -> Result<PathBuf, ImageError> {
        let shown = paths::display(raw);
        let comps = components(raw).map_err(|_| {
            ImageError::unsafe_entry(
                entry,
                format!("is a hard link to '{shown}', which escapes the root filesystem"),
            )
        })?;
        if comps.is_empty() {
            return Err(ImageError::unsafe_entry(
                entry,
                "is a hard link to the root directory",
            ));
        }
        let mut path = self.root.to_path_buf();
        for (i, component) in comps.iter().enumerate() {
            path.push(component);
            let is_last = i + 1 == comps.len();
            let meta = match fs::symlink_metadata(&path) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(ImageError::unsafe_entry(
                        entry,
                        format!("is a hard link to '{shown}', which is not in the layer (yet)"),
                    ))
                }
                Err(e) => return Err(ImageError::io("inspect", &path, e)),
            };
            if is_last {
                if meta.is_dir() {
                    return Err(ImageError::unsafe_entry(
                        entry,
                        format!("is a hard link to the directory '{shown}'"),
                    ));
                }
            } else if meta.file_type().is_symlink() {
                return Err(ImageError::unsafe_entry(
                    entry,
                    format!(
                        "is a hard link to '{shown}', reached through the symlink '{}'",
                        self.relative(&path)
                    ),
                ));
            } else if !meta.is_dir() {
                return Err(ImageError::unsafe_entry(
                    entry,
                    format!("is a hard link to '{shown}', whose parent is not a directory"),
                ));
            }
        }
        Ok(path)
    }

    fn hard_link(&self, target: &Path, path: PathBuf) -> Result<(), ImageError> {
        if target == path {
            return Ok(());
        }
        remove_existing(&path)?;
        // std's hard_link uses linkat without AT_SYMLINK_FOLLOW: a symlink
        // target is linked itself, not followed.
        fs::hard_link(target, &path).map_err(io_err("create hard link", &path))
    }

    fn fifo(&self, path: PathBuf, meta: Meta) -> Result<(), ImageError> {
        remove_existing(&path)?;
        nix::unistd::mkfifo(&path, Mode::from_bits_truncate(0o600))
            .map_err(|e| ImageError::io("create fifo", &path, e.into()))?;
        chown(&path, meta)?;
        set_mode(&path, meta.mode & FILE_MODE_MASK)?;
        set_mtime(&path, meta.mtime)
    }

    /// Applies directory times, deepest first; failures only cost accuracy.
    fn finish(&mut self) {
        for (path, mtime) in self.dir_times.drain(..).rev() {
            if let Err(e) = set_mtime(&path, mtime) {
                tracing::debug!(error = %e, "could not set directory time");
            }
        }
    }
}

/// Copies `input` into the new, empty `file`, leaving a hole wherever a
/// [`ZERO_RUN`]-aligned run of zeros would be written (the file's length is
/// still every byte's). Returns the length.
pub(crate) fn copy_sparse<R: Read>(
    input: &mut R,
    file: &mut File,
    path: &Path,
    buf: &mut [u8],
) -> Result<u64, CopyError> {
    use std::io::{Seek, SeekFrom, Write};
    static ZEROS: [u8; ZERO_RUN] = [0; ZERO_RUN];
    let write_err = |e| CopyError::Write(ImageError::io("write", path, e));
    let mut total = 0u64;
    // Zeros read but not written yet: skipped over before the next write.
    let mut hole = 0u64;
    let mut filled = 0usize;
    loop {
        // Fill whole buffers (a reader may return less), so runs stay aligned.
        let n = match input.read(&mut buf[filled..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        filled += n;
        if n != 0 && filled < buf.len() {
            continue;
        }
        for run in buf[..filled].chunks(ZERO_RUN) {
            // Slice comparison is a memcmp: fast in every build profile.
            if run == &ZEROS[..run.len()] {
                hole += run.len() as u64;
                continue;
            }
            if hole > 0 {
                let skip = i64::try_from(hole)
                    .map_err(|_| write_err(io::ErrorKind::InvalidInput.into()))?;
                file.seek(SeekFrom::Current(skip)).map_err(write_err)?;
                hole = 0;
            }
            file.write_all(run).map_err(write_err)?;
        }
        total += filled as u64;
        if n == 0 {
            // A trailing hole still counts towards the length.
            file.set_len(total).map_err(write_err)?;
            return Ok(total);
        }
        filled = 0;
    }
}

/// Removes whatever is at `path` (a directory with its contents), never
/// following a symlink.
fn remove_existing(path: &Path) -> Result<(), ImageError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).map_err(io_err("remove", path)),
        Ok(_) => fs::remove_file(path).map_err(io_err("remove", path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ImageError::io("inspect", path, e)),
    }
}

fn create_dir(path: &Path) -> Result<(), ImageError> {
    DirBuilder::new()
        .mode(IMPLICIT_DIR_MODE)
        .create(path)
        .map_err(io_err("create directory", path))
}

/// chmod on a path known not to be a symlink (chmod follows symlinks).
fn set_mode(path: &Path, mode: u32) -> Result<(), ImageError> {
    fs::set_permissions(path, Permissions::from_mode(mode))
        .map_err(io_err("change the mode of", path))
}

fn chown(path: &Path, meta: Meta) -> Result<(), ImageError> {
    if !may_give_owners() {
        return Ok(());
    }
    std::os::unix::fs::lchown(path, Some(meta.uid), Some(meta.gid))
        .map_err(io_err("change the owner of", path))
}

/// Whether extracted files get the owners their layer gives them: only a process running as
/// root may give files to other users. A store opened by another user (the core's tests run
/// unprivileged, or someone inspecting images) keeps every file as that user's; no driver runs
/// containers from such a store, since running them needs root too.
fn may_give_owners() -> bool {
    nix::unistd::geteuid().is_root()
}

fn set_mtime(path: &Path, mtime: i64) -> Result<(), ImageError> {
    let time = TimeSpec::new(mtime, 0);
    utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &time,
        &time,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|e| ImageError::io("set the time of", path, e.into()))
}

#[cfg(test)]
mod tests;
