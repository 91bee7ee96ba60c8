//! The machine's disk: the root filesystem (hard-linked, so the cached copy is never
//! written), the host's executables at the same absolute paths (the test executables name
//! the faasbox binaries by the path they were built at), the guest's runner with its list of
//! suites and the service that starts it, written into a sparse ext4 image by `mke2fs -d`
//! (no loop mount, no root privileges beyond reading the files).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

const GUEST_RUNNER: &str = include_str!("guest.sh");
const GUEST_SERVICE: &str = include_str!("faasbox-vm.service");

/// The image's size: the root filesystem and executables take about 1 GiB; the rest is room
/// for the suites' images, containers and logs. Sparse: only what is written takes space.
const IMAGE_SIZE: &str = "8G";

/// One suite the guest runs: an executable and its arguments (words without spaces).
pub struct Suite {
    pub name: String,
    pub executable: PathBuf,
    /// `NAME=value` words set for this suite only.
    pub environment: Vec<String>,
    pub arguments: Vec<String>,
}

/// Writes `image` from the root filesystem `root`, the `executables` (at their own paths)
/// and the guest runner for `suites`.
pub fn build(
    root: &Path,
    work: &Path,
    executables: &[PathBuf],
    suites: &[Suite],
    image: &Path,
) -> Result<()> {
    let stage = work.join("stage");
    if stage.exists() {
        std::fs::remove_dir_all(&stage).with_context(|| format!("removing {}", stage.display()))?;
    }
    run(Command::new("cp").arg("-al").arg(root).arg(&stage))?;
    for executable in executables {
        let inside = under(&stage, executable);
        std::fs::create_dir_all(inside.parent().expect("an absolute path has a parent"))?;
        if std::fs::hard_link(executable, &inside).is_err() {
            std::fs::copy(executable, &inside)
                .with_context(|| format!("copying {}", executable.display()))?;
        }
    }
    let opt = stage.join("opt/faasbox-vm");
    std::fs::create_dir_all(&opt)?;
    write(&opt.join("guest.sh"), GUEST_RUNNER, 0o755)?;
    let list: String = suites
        .iter()
        .map(|s| {
            // Tabs between fields; `-` for no environment (the shell's `read` takes runs of
            // tabs as one separator, so an empty field would shift the next).
            let environment = if s.environment.is_empty() {
                "-".to_string()
            } else {
                s.environment.join(" ")
            };
            format!(
                "{}\t{}\t{environment}\t{}\n",
                s.name,
                s.executable.display(),
                s.arguments.join(" ")
            )
        })
        .collect();
    write(&opt.join("suites"), &list, 0o644)?;
    let systemd = stage.join("etc/systemd/system");
    write(&systemd.join("faasbox-vm.service"), GUEST_SERVICE, 0o644)?;
    let wants = systemd.join("multi-user.target.wants");
    std::fs::create_dir_all(&wants)?;
    std::os::unix::fs::symlink(
        "/etc/systemd/system/faasbox-vm.service",
        wants.join("faasbox-vm.service"),
    )?;
    // Debian empties /tmp at boot (`D /tmp` in tmpfiles.d), which would remove executables
    // built under /tmp (a checkout there, as CI's may be): keep /tmp as it is on the disk.
    let tmpfiles = stage.join("etc/tmpfiles.d");
    std::fs::create_dir_all(&tmpfiles)?;
    write(
        &tmpfiles.join("tmp.conf"),
        "d /tmp 1777 root root -\n",
        0o644,
    )?;
    let _ = std::fs::remove_file(image);
    run(Command::new("mke2fs")
        .args(["-q", "-t", "ext4", "-L", "faasbox-vm", "-d"])
        .arg(&stage)
        .arg("-F")
        .arg(image)
        .arg(IMAGE_SIZE))?;
    std::fs::remove_dir_all(&stage).with_context(|| format!("removing {}", stage.display()))?;
    Ok(())
}

/// `path` (absolute) inside `root`.
fn under(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// Writes a new file (never through a hard link into the cached root filesystem).
fn write(path: &Path, text: &str, mode: u32) -> Result<()> {
    let _ = std::fs::remove_file(path);
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn run(command: &mut Command) -> Result<()> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !out.status.success() {
        bail!(
            "{command:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
