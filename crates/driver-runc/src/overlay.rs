//! The instance's root filesystem: an overlayfs mount of the image layers (read-only lower
//! directories) with a per-instance upper and work directory.
//!
//! The kernel takes mount options of at most one page, which long layer paths of a many-layer
//! image exceed. When the plain absolute paths do not fit (or contain `:` or `,`, which the
//! option syntax reserves), every directory is opened with `O_PATH` and named by its
//! `/proc/self/fd/N` link instead: about 18 bytes per layer whatever its real path, resolved by
//! the kernel during the mount call, in this process, with no change of working directory
//! (which would be process-wide and race with other threads).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

use faasbox_driver::DriverError;

/// The kernel copies at most one page of mount data, terminating NUL included.
const MAX_OPTIONS: usize = 4095;

/// Mounts `layers` (bottom first) with `upper` and `work` at `target`. Blocking.
pub(crate) fn mount_blocking(
    layers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<(), DriverError> {
    let mount_error = |message: String| DriverError::Mount {
        target: target.to_path_buf(),
        message,
    };
    if layers.is_empty() {
        return Err(mount_error("no lower directory".into()));
    }
    for layer in layers {
        if !layer.is_dir() {
            return Err(mount_error(format!(
                "image layer directory {} does not exist (was the image removed?)",
                layer.display()
            )));
        }
    }
    // Holds the O_PATH handles until the mount call has resolved them.
    let mut handles: Vec<File> = Vec::new();
    let options = match plain_options(layers, upper, work) {
        Some(options) => options,
        None => {
            let mut name = |dir: &Path| -> Result<String, DriverError> {
                let handle = open_path(dir)
                    .map_err(|e| mount_error(format!("cannot open {}: {e}", dir.display())))?;
                let name = format!("/proc/self/fd/{}", handle.as_raw_fd());
                handles.push(handle);
                Ok(name)
            };
            let mut lower = Vec::with_capacity(layers.len());
            for layer in layers.iter().rev() {
                lower.push(name(layer)?);
            }
            let options = format!(
                "lowerdir={},upperdir={},workdir={}",
                lower.join(":"),
                name(upper)?,
                name(work)?
            );
            if options.len() > MAX_OPTIONS {
                return Err(mount_error(format!(
                    "the image has too many layers ({}) for one overlay mount",
                    layers.len()
                )));
            }
            options
        }
    };
    let result = nix::mount::mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::MS_NODEV,
        Some(options.as_str()),
    );
    drop(handles);
    result.map_err(|errno| {
        mount_error(format!(
            "{errno} (overlayfs needs root and a kernel with overlay support; options: {})",
            shorten(&options, 300)
        ))
    })
}

/// The options with plain absolute paths, when they fit and need no escaping.
fn plain_options(layers: &[PathBuf], upper: &Path, work: &Path) -> Option<String> {
    let mut lower = Vec::with_capacity(layers.len());
    for layer in layers.iter().rev() {
        lower.push(plain(layer)?);
    }
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        plain(upper)?,
        plain(work)?
    );
    (options.len() <= MAX_OPTIONS).then_some(options)
}

fn plain(path: &Path) -> Option<&str> {
    let text = path.to_str()?;
    let reserved = |c: char| matches!(c, ':' | ',' | '\\') || c.is_control();
    (path.is_absolute() && !text.contains(reserved)).then_some(text)
}

fn open_path(dir: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(dir)
}

fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
}

/// Unmounts `target`; lazily when it is busy. Returns whether something was mounted there.
pub(crate) fn unmount(target: &Path) -> Result<bool, DriverError> {
    match nix::mount::umount2(target, MntFlags::empty()) {
        Ok(()) => Ok(true),
        // Not a mount point, or already gone.
        Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(false),
        Err(nix::errno::Errno::EBUSY) => nix::mount::umount2(target, MntFlags::MNT_DETACH)
            .map(|()| true)
            .map_err(|errno| DriverError::Mount {
                target: target.to_path_buf(),
                message: format!("cannot unmount: {errno}"),
            }),
        Err(errno) => Err(DriverError::Mount {
            target: target.to_path_buf(),
            message: format!("cannot unmount: {errno}"),
        }),
    }
}

/// Mount points at or below `dir` in this process's mount namespace, deepest first; a path
/// mounted more than once (one mount over another) is listed once per mount. None when the
/// mount table cannot be read.
pub(crate) fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    read_mounts_under(dir).unwrap_or_default()
}

/// [`mounts_under`], or why the mount table could not be read.
pub(crate) fn read_mounts_under(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found: Vec<PathBuf> = mount_table()?
        .into_iter()
        .map(|entry| entry.mount_point)
        .filter(|mount_point| mount_point.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    Ok(found)
}

/// One line of this process's `/proc/self/mountinfo`, the fields this crate reads.
pub(crate) struct MountEntry {
    /// The path within its file system that is mounted.
    pub root: PathBuf,
    pub mount_point: PathBuf,
    pub fstype: String,
    pub source: String,
    pub super_options: String,
}

/// This process's mount table, in the kernel's order.
pub(crate) fn mount_table() -> std::io::Result<Vec<MountEntry>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(text.lines().filter_map(parse_mountinfo_line).collect())
}

fn parse_mountinfo_line(line: &str) -> Option<MountEntry> {
    let (left, right) = line.split_once(" - ")?;
    let mut left = left.split(' ').skip(3);
    let (root, mount_point) = (left.next()?, left.next()?);
    let mut right = right.split(' ');
    let (fstype, source) = (right.next()?, right.next()?);
    Some(MountEntry {
        root: PathBuf::from(unescape_mountinfo(root)),
        mount_point: PathBuf::from(unescape_mountinfo(mount_point)),
        fstype: fstype.to_string(),
        source: unescape_mountinfo(source),
        super_options: right.next().unwrap_or_default().to_string(),
    })
}

/// True when `path` is a mount point.
#[cfg(test)]
pub(crate) fn is_mount_point(path: &Path) -> bool {
    mounts_under(path).iter().any(|p| p == path)
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = std::str::from_utf8(&bytes[i + 1..i + 4]).unwrap_or("");
            if let Ok(value) = u8::from_str_radix(digits, 8) {
                out.push(value);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape_mountinfo(r"/a\040b\134c"), r"/a b\c");
        assert_eq!(unescape_mountinfo(r"/plain"), "/plain");
        assert_eq!(unescape_mountinfo(r"/end\04"), r"/end\04");
    }

    #[test]
    fn mountinfo_lines_are_parsed_with_their_optional_fields() {
        let line =
            r"45 27 0:40 / /data/my\040run rw,relatime shared:1 - tmpfs faasbox-state rw,size=10%";
        let entry = parse_mountinfo_line(line).unwrap();
        assert_eq!(entry.root, Path::new("/"));
        assert_eq!(entry.mount_point, Path::new("/data/my run"));
        assert_eq!(
            (entry.fstype.as_str(), entry.source.as_str()),
            ("tmpfs", "faasbox-state")
        );
        assert_eq!(entry.super_options, "rw,size=10%");
        assert!(parse_mountinfo_line("not a mountinfo line").is_none());
    }

    #[test]
    fn long_or_reserved_paths_need_fd_names() {
        let short = vec![PathBuf::from("/l/0"), PathBuf::from("/l/1")];
        let options = plain_options(&short, Path::new("/u"), Path::new("/w")).unwrap();
        assert_eq!(options, "lowerdir=/l/1:/l/0,upperdir=/u,workdir=/w");
        let long: Vec<PathBuf> = (0..100)
            .map(|i| PathBuf::from(format!("/{}/{i}", "x".repeat(60))))
            .collect();
        assert!(plain_options(&long, Path::new("/u"), Path::new("/w")).is_none());
        let colon = vec![PathBuf::from("/a:b")];
        assert!(plain_options(&colon, Path::new("/u"), Path::new("/w")).is_none());
    }

    /// Real overlay mounts (root only): plain paths and /proc/self/fd names for 120 layers
    /// with long paths; files of every layer are visible, the top layer wins, writes go to the
    /// upper directory only.
    #[test]
    fn overlay_composes_many_long_layers() {
        if !nix::unistd::geteuid().is_root() {
            faasbox_test_registry::cannot_run("real overlay mounts need root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("d".repeat(100)).join("e".repeat(100));
        let mut layers = Vec::new();
        for i in 0..120 {
            let layer = deep.join(format!("layer-{i:03}-{}", "z".repeat(20)));
            std::fs::create_dir_all(&layer).unwrap();
            std::fs::write(layer.join(format!("f{i}")), format!("{i}")).unwrap();
            std::fs::write(layer.join("top"), format!("{i}")).unwrap();
            layers.push(layer);
        }
        for (count, expect_fd_names) in [(2, false), (120, true)] {
            let base = dir.path().join(format!("inst{count}"));
            let (upper, work, target) =
                (base.join("upper"), base.join("work"), base.join("rootfs"));
            for d in [&upper, &work, &target] {
                std::fs::create_dir_all(d).unwrap();
            }
            let used = layers[..count].to_vec();
            assert_eq!(
                plain_options(&used, &upper, &work).is_none(),
                expect_fd_names
            );
            mount_blocking(&used, &upper, &work, &target).unwrap();
            assert!(is_mount_point(&target));
            assert_eq!(std::fs::read_to_string(target.join("f0")).unwrap(), "0");
            assert_eq!(
                std::fs::read_to_string(target.join("top")).unwrap(),
                format!("{}", count - 1)
            );
            std::fs::write(target.join("new"), "x").unwrap();
            assert!(upper.join("new").exists());
            assert!(!layers[count - 1].join("new").exists());
            assert!(unmount(&target).unwrap());
            assert!(!is_mount_point(&target));
            assert!(!unmount(&target).unwrap());
        }
    }
}
