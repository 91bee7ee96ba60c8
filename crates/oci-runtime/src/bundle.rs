//! `create`: the bundle's spec, adjusted for libcontainer, and the container built from it.
//!
//! libcontainer joins the namespaces a spec names by path after it has made the container's
//! user namespace. A network namespace the host made (the driver makes one per instance, with
//! its network helper) is owned by the host's user namespace, so joining it from inside the
//! new one fails with EPERM (runc joins such namespaces first). So this process joins the
//! network namespace itself, before anything is cloned, and libcontainer gets a copy of the
//! spec without that entry: the container's processes inherit the namespace this process is
//! in. A new network namespace (an entry without a path) is libcontainer's to make, inside the
//! container's user namespace as runc makes it; libcontainer leaves its loopback interface
//! down, so once the container is created (its process has not run yet) this process enters
//! that namespace and brings it up, as runc does (a function without network must still reach
//! itself on 127.0.0.1); on a cgroup v2 host it also writes the "no swap" limit libcontainer
//! leaves out (see swap_limit). The copy lives in `<root>/.bundle-<id>/` while the container is
//! made (see spec_copy): libcontainer keeps what it needs of the spec in the container's own
//! directory, and the container's state names the caller's bundle, as runc's does.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::Context;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::syscall::syscall::SyscallType;
use serde_json::Value;

use crate::spec_copy::SpecCopy;

/// A spec larger than this is refused (the driver's are a few KiB).
const MAX_SPEC_BYTES: u64 = 4 << 20;

/// What `create` and `run` take.
#[derive(Debug, clap::Args)]
pub(crate) struct CreateArgs {
    /// The bundle directory (holding config.json).
    #[arg(long, short = 'b', default_value = ".")]
    bundle: PathBuf,
    /// Where to write the host pid of the container's init.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// The container's id.
    id: String,
}

/// Creates the container; its init waits for `start`.
pub(crate) fn create(root: &Path, args: &CreateArgs) -> anyhow::Result<Container> {
    let dir = crate::container_id::container_dir(root, &args.id)?;
    anyhow::ensure!(
        !dir.exists(),
        "container {} exists already: delete it first",
        args.id
    );
    let bundle = args
        .bundle
        .canonicalize()
        .with_context(|| format!("cannot find the bundle {}", args.bundle.display()))?;
    let mut spec = read_spec(&bundle)?;
    absolute_root(&mut spec, &bundle)?;
    let network = network_namespace(&mut spec)?;
    if let Some(NetworkNamespace::Join(path)) = &network {
        join_network_namespace(path)?;
    }
    // Held (and locked) until this create has ended: see spec_copy.
    let copy = SpecCopy::write(root, &args.id, &spec)?;
    let built = ContainerBuilder::new(args.id.clone(), SyscallType::default())
        .with_root_path(root)
        .and_then(|b| b.with_pid_file(args.pid_file.as_ref()))
        .and_then(|b| {
            b.as_init(copy.dir())
                .with_systemd(false)
                .with_detach(true)
                .build()
        });
    let mut container =
        built.map_err(|e| anyhow::Error::new(e).context(format!("cannot create {}", args.id)))?;
    container.state.bundle = bundle;
    let ready = match network {
        Some(NetworkNamespace::New) => container_loopback_up(&container),
        _ => Ok(()),
    }
    .and_then(|()| crate::swap_limit::apply(&spec))
    .and_then(|()| {
        container
            .save()
            .context("cannot save the container's state")
    });
    if let Err(e) = ready {
        let _ = container.delete(true);
        return Err(e.context(format!("cannot create {}", args.id)));
    }
    Ok(container)
}

fn read_spec(bundle: &Path) -> anyhow::Result<Value> {
    use std::io::Read;
    let path = bundle.join("config.json");
    let file =
        std::fs::File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut text = Vec::new();
    file.take(MAX_SPEC_BYTES + 1)
        .read_to_end(&mut text)
        .with_context(|| format!("cannot read {}", path.display()))?;
    anyhow::ensure!(
        text.len() as u64 <= MAX_SPEC_BYTES,
        "{} is larger than {MAX_SPEC_BYTES} bytes",
        path.display()
    );
    serde_json::from_slice(&text).with_context(|| format!("{} is not JSON", path.display()))
}

/// The copy lives elsewhere, so a root path relative to the bundle becomes absolute.
fn absolute_root(spec: &mut Value, bundle: &Path) -> anyhow::Result<()> {
    let path = spec
        .pointer_mut("/root/path")
        .context("the spec has no root.path")?;
    let text = path.as_str().context("root.path is not a string")?;
    if !Path::new(text).is_absolute() {
        let absolute = bundle.join(text);
        *path = Value::String(absolute.to_string_lossy().into_owned());
    }
    Ok(())
}

/// What the spec asks of the container's network namespace.
#[derive(Debug, PartialEq, Eq)]
enum NetworkNamespace {
    /// Join the one at this path.
    Join(PathBuf),
    /// A new one.
    New,
}

/// What the spec asks of the network namespace; an entry that joins one by path is removed
/// (`None`: the spec has none, so the container shares this process's).
fn network_namespace(spec: &mut Value) -> anyhow::Result<Option<NetworkNamespace>> {
    let Some(namespaces) = spec
        .pointer_mut("/linux/namespaces")
        .and_then(Value::as_array_mut)
    else {
        return Ok(None);
    };
    let Some(position) = namespaces
        .iter()
        .position(|ns| ns.get("type").and_then(Value::as_str) == Some("network"))
    else {
        return Ok(None);
    };
    let path = match namespaces[position].get("path") {
        None => return Ok(Some(NetworkNamespace::New)),
        Some(Value::String(path)) if path.is_empty() => return Ok(Some(NetworkNamespace::New)),
        Some(Value::String(path)) => PathBuf::from(path),
        Some(_) => anyhow::bail!("the network namespace path is not a string"),
    };
    namespaces.remove(position);
    Ok(Some(NetworkNamespace::Join(path)))
}

/// Enters the network namespace of the created container's init (host root may: it owns every
/// user namespace) and brings its loopback interface up.
fn container_loopback_up(container: &Container) -> anyhow::Result<()> {
    let pid = container
        .pid()
        .context("the created container has no init process")?;
    join_network_namespace(Path::new(&format!("/proc/{}/ns/net", pid.as_raw())))?;
    loopback_up().context("cannot bring up the loopback interface of the container")
}

/// `ip link set lo up`, by the two ioctls it makes.
fn loopback_up() -> std::io::Result<()> {
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: socket takes integers; the result is checked before it is used.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor that nothing else owns; OwnedFd closes it on return.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data (integers, arrays and a union of them): all zeroes is valid.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo\0") {
        *slot = *byte as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name and writes the flags of the ifreq it is given, which
    // lives on this stack frame for the whole call.
    if unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut request) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: after SIOCGIFFLAGS the union holds the interface's flags.
    let flags = unsafe { request.ifr_ifru.ifru_flags };
    request.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    // SAFETY: SIOCSIFFLAGS reads the name and flags of the ifreq it is given (as above).
    if unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &request) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn join_network_namespace(path: &Path) -> anyhow::Result<()> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open the network namespace {}", path.display()))?;
    // SAFETY: setns takes a file descriptor this function owns (open until it returns) and a
    // flag; it changes only the calling thread's network namespace, and this process is
    // single-threaded here, before libcontainer clones the container's processes from it.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(
            anyhow::Error::new(std::io::Error::last_os_error()).context(format!(
                "cannot join the network namespace {}",
                path.display()
            )),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_network_namespace_to_join_is_taken_out_and_the_others_stay() {
        let mut spec = json!({"linux": {"namespaces": [
            {"type": "pid"},
            {"type": "network", "path": "/run/netns/x"},
            {"type": "user"}
        ]}});
        let taken = network_namespace(&mut spec).unwrap();
        assert_eq!(
            taken,
            Some(NetworkNamespace::Join(PathBuf::from("/run/netns/x")))
        );
        assert_eq!(
            spec["linux"]["namespaces"],
            json!([{"type": "pid"}, {"type": "user"}])
        );
        let mut fresh = json!({"linux": {"namespaces": [{"type": "network"}, {"type": "ipc"}]}});
        assert_eq!(
            network_namespace(&mut fresh).unwrap(),
            Some(NetworkNamespace::New)
        );
        // A new one stays libcontainer's to make, in the container's user namespace.
        assert_eq!(
            fresh["linux"]["namespaces"],
            json!([{"type": "network"}, {"type": "ipc"}])
        );
        assert_eq!(network_namespace(&mut json!({})).unwrap(), None);
        let mut odd = json!({"linux": {"namespaces": [{"type": "network", "path": 7}]}});
        assert!(network_namespace(&mut odd).is_err());
    }

    #[test]
    fn a_relative_root_becomes_absolute_and_an_absolute_one_stays() {
        let mut spec = json!({"root": {"path": "rootfs"}});
        absolute_root(&mut spec, Path::new("/b")).unwrap();
        assert_eq!(spec["root"]["path"], "/b/rootfs");
        let mut spec = json!({"root": {"path": "/r"}});
        absolute_root(&mut spec, Path::new("/b")).unwrap();
        assert_eq!(spec["root"]["path"], "/r");
        let err = absolute_root(&mut json!({}), Path::new("/b")).unwrap_err();
        assert!(err.to_string().contains("root.path"), "{err}");
    }
}
