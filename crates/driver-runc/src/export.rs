//! [`Driver::export_changes`](faasbox_driver::Driver::export_changes) for runc and runsc
//! instances: the instance's overlay upper directory written as an uncompressed OCI layer tar
//! (what an image build appends to its base image).
//!
//! The upper directory holds what the container changed, in overlayfs form; the tar gets it in
//! OCI form:
//!
//! - directories, regular files (a hard-linked file as a copy each time), symbolic links and
//!   FIFOs as they are, with mode, owner and modification time; owners mapped back to the
//!   container's ids through the spec's `uidMappings`/`gidMappings` (a runc instance with a
//!   user namespace writes as `host_base + id`; runsc instances have no mapping);
//! - whiteouts (0:0 character devices) as empty `.wh.<name>` files;
//! - opaque directories (`trusted.overlay.opaque=y`, or `user.overlay.opaque` on a `userxattr`
//!   mount) as the directory followed by `<dir>/.wh..wh..opq`;
//! - left out: the runtime spec's mount points (`/proc`, `/dev`, `/.faasbox`, the agent at
//!   `/.faasbox-agent` and `/usr/share/direktiv/direktiv-cmd`, `/etc/hosts`,
//!   `/etc/resolv.conf`, scratch directories, …) and the agent's call directories (its
//!   `temp_root`, `/tmp/faasbox-calls`) with everything below them, the caller's
//!   `exclude` paths likewise, directories on the way to those that hold nothing else that is
//!   exported (runc made or copied them up to mount on), sockets and device nodes.
//!
//! The container is paused (`runc pause`, the cgroup freezer) while its changes are read, so
//! nothing in it changes them meanwhile — or swaps a file for a link to a host file: files are
//! opened without following links and checked to be the path walked. Entries are written
//! sorted by name. The files' sizes together may not pass the size of the
//! instance's disk (where the upper directory lives), so a tar is never larger than that
//! plus its headers. The walk and the writing block: they run on a blocking thread.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use faasbox_driver::{DriverError, ExportedChanges};
use tar::{EntryType, Header};

use crate::layout::{InstanceDir, InstanceMeta};
use crate::Inner;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";
const OPAQUE_XATTRS: [&str; 2] = ["trusted.overlay.opaque", "user.overlay.opaque"];
const REDIRECT_XATTRS: [&str; 2] = ["trusted.overlay.redirect", "user.overlay.redirect"];
const METACOPY_XATTRS: [&str; 2] = ["trusted.overlay.metacopy", "user.overlay.metacopy"];

impl Inner {
    /// Writes instance `id`'s changes to `dest` (see the module docs).
    pub(crate) async fn export_changes(
        self: &Arc<Self>,
        id: &str,
        dest: &Path,
        exclude: &[String],
    ) -> Result<ExportedChanges, DriverError> {
        if !self.layout.owns(id) {
            return Err(DriverError::InvalidId(id.to_string()));
        }
        let dir = self.layout.instance(id);
        let Some(meta) = InstanceMeta::read(&dir) else {
            return Err(DriverError::io(
                format!("instance {id} has no changes to export (is it running?)"),
                io::Error::from(io::ErrorKind::NotFound),
            ));
        };
        // Frozen while it is read: nothing in the container changes the files (or swaps one
        // for a link to a host file) between the walk and the copy.
        let cli = self.runtime_cli(meta.runtime)?;
        cli.set_paused(id, true).await?;
        let exported = {
            let (id, dest, exclude) = (id.to_string(), dest.to_path_buf(), exclude.to_vec());
            tokio::task::spawn_blocking(move || {
                let result = export_blocking(&id, &dir, &dest, &exclude);
                if result.is_err() {
                    let _ = fs::remove_file(&dest);
                }
                result
            })
            .await
            .map_err(|e| DriverError::io("the export's thread failed", io::Error::other(e)))
            .and_then(|r| r)
        };
        let resumed = cli.set_paused(id, false).await;
        let exported = exported?;
        resumed?;
        Ok(exported)
    }
}

/// A host id → container id mapping (one of the spec's `uidMappings`/`gidMappings` lists).
#[derive(Debug, Clone, Default)]
struct IdMapping(Vec<(u64, u64, u64)>);

impl IdMapping {
    /// `spec.linux[key]`: `[{containerID, hostID, size}]`; none means ids are the host's.
    fn from_spec(spec: &serde_json::Value, key: &str) -> IdMapping {
        let ranges = spec["linux"][key]
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|m| {
                        Some((
                            m["containerID"].as_u64()?,
                            m["hostID"].as_u64()?,
                            m["size"].as_u64()?,
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        IdMapping(ranges)
    }

    /// The container id of host id `host`; `None` when the namespace does not map it.
    fn to_container(&self, host: u32) -> Option<u64> {
        let host = u64::from(host);
        if self.0.is_empty() {
            return Some(host);
        }
        self.0
            .iter()
            .find(|(_, h, size)| host >= *h && host < h + size)
            .map(|(c, h, _)| c + (host - h))
    }
}

/// What the walk found: one tar entry.
#[derive(Debug)]
struct Item {
    /// The path in the tar (relative, `/`-separated, no trailing slash).
    path: Vec<u8>,
    kind: Kind,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
}

#[derive(Debug)]
enum Kind {
    Dir,
    File {
        source: PathBuf,
        size: u64,
    },
    Symlink {
        target: OsString,
    },
    Fifo,
    /// An empty `.wh.*` file (whiteout or opaque marker).
    Marker,
}

/// Everything one export needs to know while it walks.
struct Walk<'a> {
    id: &'a str,
    /// The merged root file system, to read a metacopy file's data through.
    merged: PathBuf,
    /// Container paths (relative, no leading `/`) left out with everything under them.
    skipped: Vec<Vec<u8>>,
    uids: IdMapping,
    gids: IdMapping,
    max_bytes: u64,
    bytes: u64,
    items: Vec<Item>,
}

fn export_blocking(
    id: &str,
    dir: &InstanceDir,
    dest: &Path,
    exclude: &[String],
) -> Result<ExportedChanges, DriverError> {
    let upper = dir.upper();
    if !upper.is_dir() {
        return Err(DriverError::io(
            format!("instance {id} has no changes to export (is it running?)"),
            io::Error::from(io::ErrorKind::NotFound),
        ));
    }
    let spec_path = dir.config_json();
    let spec: serde_json::Value = fs::read(&spec_path)
        .map_err(|e| DriverError::io(format!("cannot read {}", spec_path.display()), e))
        .and_then(|bytes| {
            serde_json::from_slice(&bytes).map_err(|e| {
                DriverError::io(
                    format!("cannot read {}", spec_path.display()),
                    io::Error::other(e),
                )
            })
        })?;
    let mut skipped: Vec<Vec<u8>> = spec["mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["destination"].as_str())
        .map(relative)
        .collect();
    skipped.extend(exclude.iter().map(|p| relative(p)));
    // The agent's own per-call directories (`temp_root`) are the platform's, not the image's.
    let agent_config = dir.agent_config();
    match fs::read(&agent_config)
        .ok()
        .and_then(|b| serde_json::from_slice::<faasbox_proto::AgentConfig>(&b).ok())
    {
        Some(config) => skipped.push(relative(&config.temp_root)),
        None => tracing::warn!(
            path = %agent_config.display(),
            "cannot read the agent's configuration; its call directories may be exported"
        ),
    }
    skipped.retain(|p| !p.is_empty());
    let disk = dir.disk();
    let stat = nix::sys::statvfs::statvfs(&disk).map_err(|e| {
        DriverError::io(
            format!("cannot read the size of {}", disk.display()),
            io::Error::from(e),
        )
    })?;
    let max_bytes = stat.blocks().saturating_mul(stat.fragment_size());

    let mut walk = Walk {
        id,
        merged: dir.rootfs(),
        skipped,
        uids: IdMapping::from_spec(&spec, "uidMappings"),
        gids: IdMapping::from_spec(&spec, "gidMappings"),
        max_bytes,
        bytes: 0,
        items: Vec::new(),
    };
    walk.dir(&upper, Vec::new())?;
    let entries = walk.items.len() as u64;
    let bytes = write_tar(&walk.items, dest)?;
    tracing::info!(instance = %id, entries, bytes, dest = %dest.display(), "exported the instance's changes");
    Ok(ExportedChanges { entries, bytes })
}

/// A container path as the walk names it: no leading or trailing `/`, no empty components.
fn relative(path: &str) -> Vec<u8> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
        .into_bytes()
}

fn under(path: &[u8], base: &[u8]) -> bool {
    path == base || (path.starts_with(base) && path.get(base.len()) == Some(&b'/'))
}

fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    if parent.is_empty() {
        name.to_vec()
    } else {
        [parent, b"/", name].concat()
    }
}

fn xattr_is(path: &Path, names: &[&str], value: &[u8]) -> Result<bool, DriverError> {
    for name in names {
        match xattr::get(path, name) {
            Ok(Some(v)) if v == value => return Ok(true),
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => {}
            Err(e) => {
                return Err(DriverError::io(
                    format!("cannot read the attributes of {}", path.display()),
                    e,
                ))
            }
        }
    }
    Ok(false)
}

fn has_xattr(path: &Path, names: &[&str]) -> Result<bool, DriverError> {
    for name in names {
        match xattr::get(path, name) {
            Ok(Some(_)) => return Ok(true),
            Ok(None) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => {}
            Err(e) => {
                return Err(DriverError::io(
                    format!("cannot read the attributes of {}", path.display()),
                    e,
                ))
            }
        }
    }
    Ok(false)
}

impl Walk<'_> {
    fn fail(&self, what: String, e: io::Error) -> DriverError {
        DriverError::io(format!("exporting instance {}: {what}", self.id), e)
    }

    fn skipped(&self, path: &[u8]) -> bool {
        self.skipped.iter().any(|s| under(path, s))
    }

    /// Whether a skipped path lies below `path` (a directory made or copied up to mount on).
    fn on_the_way(&self, path: &[u8]) -> bool {
        self.skipped
            .iter()
            .any(|s| s.starts_with(path) && s.get(path.len()) == Some(&b'/'))
    }

    fn owner(&self, meta: &fs::Metadata, path: &[u8]) -> Result<(u64, u64), DriverError> {
        let unmapped = |kind: &str, id: u32| {
            self.fail(
                format!(
                    "/{} belongs to host {kind} {id}, which the container's user namespace \
                     does not map",
                    String::from_utf8_lossy(path)
                ),
                io::Error::from(io::ErrorKind::InvalidData),
            )
        };
        let uid = self
            .uids
            .to_container(meta.uid())
            .ok_or_else(|| unmapped("uid", meta.uid()))?;
        let gid = self
            .gids
            .to_container(meta.gid())
            .ok_or_else(|| unmapped("gid", meta.gid()))?;
        Ok((uid, gid))
    }

    /// Walks the directory `host` (container path `path`), in name order.
    fn dir(&mut self, host: &Path, path: Vec<u8>) -> Result<(), DriverError> {
        let mut names: Vec<OsString> = fs::read_dir(host)
            .map_err(|e| self.fail(format!("cannot list {}", host.display()), e))?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(|e| self.fail(format!("cannot list {}", host.display()), e))?;
        names.sort();
        for name in names {
            self.entry(&host.join(&name), join(&path, name.as_bytes()), &name)?;
        }
        Ok(())
    }

    fn entry(&mut self, host: &Path, path: Vec<u8>, name: &OsStr) -> Result<(), DriverError> {
        if self.skipped(&path) {
            return Ok(());
        }
        let show = || format!("/{}", String::from_utf8_lossy(&path));
        let meta = fs::symlink_metadata(host)
            .map_err(|e| self.fail(format!("cannot inspect {}", host.display()), e))?;
        let kind = meta.file_type();
        let mtime = u64::try_from(meta.mtime()).unwrap_or(0);
        let mode = meta.mode() & 0o7777;

        if kind.is_char_device() && meta.rdev() == 0 {
            // An overlayfs whiteout: the name is deleted.
            let parent = path
                .rsplit_once_slash()
                .map(|(p, _)| p.to_vec())
                .unwrap_or_default();
            let marker = [WHITEOUT_PREFIX.as_bytes(), name.as_bytes()].concat();
            self.items.push(Item {
                path: join(&parent, &marker),
                kind: Kind::Marker,
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime,
            });
            return Ok(());
        }
        if kind.is_socket() || kind.is_char_device() || kind.is_block_device() {
            tracing::debug!(path = %show(), "not exporting a socket or device node");
            return Ok(());
        }
        let (uid, gid) = self.owner(&meta, &path)?;
        let item = |kind| Item {
            path: path.clone(),
            kind,
            mode,
            uid,
            gid,
            mtime,
        };
        if kind.is_dir() {
            if has_xattr(host, &REDIRECT_XATTRS)? {
                return Err(self.fail(
                    format!(
                        "{} is a renamed directory of the image (overlayfs redirect_dir), \
                         which an export cannot write as a layer; copy it instead of renaming \
                         it, or turn the overlay module's redirect_dir off",
                        show()
                    ),
                    io::Error::from(io::ErrorKind::Unsupported),
                ));
            }
            let opaque = xattr_is(host, &OPAQUE_XATTRS, b"y")?;
            let at = self.items.len();
            self.items.push(item(Kind::Dir));
            if opaque {
                self.items.push(Item {
                    path: join(&path, OPAQUE_MARKER.as_bytes()),
                    kind: Kind::Marker,
                    mode: 0o644,
                    uid: 0,
                    gid: 0,
                    mtime,
                });
            }
            self.dir(host, path.clone())?;
            if !opaque && self.items.len() == at + 1 && self.on_the_way(&path) {
                // Made (or copied up) only to hold a mount point: not a change of the image.
                self.items.pop();
            }
            return Ok(());
        }
        if kind.is_symlink() {
            let target = fs::read_link(host)
                .map_err(|e| self.fail(format!("cannot read link {}", host.display()), e))?;
            self.items.push(item(Kind::Symlink {
                target: target.into_os_string(),
            }));
            return Ok(());
        }
        if kind.is_fifo() {
            self.items.push(item(Kind::Fifo));
            return Ok(());
        }
        // A regular file; a metacopy-only one (overlay `metacopy=on`) has its data below.
        let size = meta.len();
        self.bytes = self.bytes.saturating_add(size);
        if self.bytes > self.max_bytes {
            return Err(self.fail(
                format!(
                    "the changes are more than the instance's disk ({} bytes) at {}",
                    self.max_bytes,
                    show()
                ),
                io::Error::from(io::ErrorKind::FileTooLarge),
            ));
        }
        let source = if has_xattr(host, &METACOPY_XATTRS)? {
            self.merged.join(Path::new(OsStr::from_bytes(&path)))
        } else {
            host.to_path_buf()
        };
        self.items.push(item(Kind::File { source, size }));
        Ok(())
    }
}

/// `rsplit_once('/')` for byte paths.
trait SplitSlash {
    fn rsplit_once_slash(&self) -> Option<(&[u8], &[u8])>;
}

impl SplitSlash for Vec<u8> {
    fn rsplit_once_slash(&self) -> Option<(&[u8], &[u8])> {
        let at = self.iter().rposition(|&b| b == b'/')?;
        Some((&self[..at], &self[at + 1..]))
    }
}

/// Opens the regular file at `path` for reading, making sure it is that file: not a symbolic
/// link, and reached through no link on the way (the path the kernel resolved is `path`).
fn open_exactly(path: &Path) -> Result<File, DriverError> {
    let fail = |e: io::Error| DriverError::io(format!("cannot read {}", path.display()), e);
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(fail)?;
    let resolved = fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).map_err(fail)?;
    let regular = file.metadata().map_err(fail)?.is_file();
    if resolved != path || !regular {
        return Err(fail(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "it changed while it was exported (it is now {}); export while nothing runs in \
                 the instance",
                resolved.display()
            ),
        )));
    }
    Ok(file)
}

/// Counts what passes through.
struct Counting<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes `items` as a tar at `dest`; returns its size.
fn write_tar(items: &[Item], dest: &Path) -> Result<u64, DriverError> {
    let fail = |e: io::Error| DriverError::io(format!("cannot write {}", dest.display()), e);
    let file = File::create(dest).map_err(fail)?;
    let mut builder = tar::Builder::new(Counting {
        inner: BufWriter::new(file),
        count: 0,
    });
    for item in items {
        let mut header = Header::new_gnu();
        header.set_mode(item.mode);
        header.set_uid(item.uid);
        header.set_gid(item.gid);
        header.set_mtime(item.mtime);
        header.set_size(0);
        let path = Path::new(OsStr::from_bytes(&item.path));
        match &item.kind {
            Kind::Dir => {
                header.set_entry_type(EntryType::Directory);
                let mut dir = item.path.clone();
                dir.push(b'/');
                builder
                    .append_data(&mut header, Path::new(OsStr::from_bytes(&dir)), io::empty())
                    .map_err(fail)?;
            }
            Kind::Marker => {
                header.set_entry_type(EntryType::Regular);
                builder
                    .append_data(&mut header, path, io::empty())
                    .map_err(fail)?;
            }
            Kind::Fifo => {
                header.set_entry_type(EntryType::Fifo);
                builder
                    .append_data(&mut header, path, io::empty())
                    .map_err(fail)?;
            }
            Kind::Symlink { target } => {
                header.set_entry_type(EntryType::Symlink);
                builder
                    .append_link(&mut header, path, Path::new(target))
                    .map_err(fail)?;
            }
            Kind::File { source, size } => {
                let file = open_exactly(source)?;
                header.set_entry_type(EntryType::Regular);
                header.set_size(*size);
                // Exactly the size walked: a file that changed meanwhile cannot break the tar.
                let mut padded = file.take(*size).chain(io::repeat(0)).take(*size);
                builder
                    .append_data(&mut header, path, &mut padded)
                    .map_err(fail)?;
            }
        }
    }
    let mut out = builder.into_inner().map_err(fail)?;
    out.flush().map_err(fail)?;
    let count = out.count;
    out.inner
        .into_inner()
        .map_err(|e| fail(e.into_error()))?
        .sync_all()
        .map_err(fail)?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_host_ids_back() {
        let spec = serde_json::json!({"linux": {"uidMappings": [
            {"containerID": 0, "hostID": 1_879_048_192u64, "size": 65536}
        ]}});
        let uids = IdMapping::from_spec(&spec, "uidMappings");
        assert_eq!(uids.to_container(1_879_048_192), Some(0));
        assert_eq!(uids.to_container(1_879_048_192 + 1000), Some(1000));
        assert_eq!(uids.to_container(0), None);
        assert_eq!(uids.to_container(1_879_048_192 + 65536), None);
        let none = IdMapping::from_spec(&spec, "gidMappings");
        assert_eq!(none.to_container(1000), Some(1000));
    }

    #[test]
    fn container_paths() {
        assert_eq!(relative("/etc/hosts"), b"etc/hosts");
        assert_eq!(relative("/.faasbox/"), b".faasbox");
        assert_eq!(relative("/"), b"");
        assert!(under(b"etc/hosts", b"etc/hosts"));
        assert!(under(b"etc/hosts/x", b"etc/hosts"));
        assert!(!under(b"etc/hostsx", b"etc/hosts"));
        assert_eq!(join(b"", b"a"), b"a");
        assert_eq!(join(b"a", b"b"), b"a/b");
    }
}
