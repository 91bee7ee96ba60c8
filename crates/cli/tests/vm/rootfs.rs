//! The machine's root filesystem: Debian 12 made by mmdebstrap from Debian's archive, with
//! systemd as init, Debian's cloud kernel and its initramfs, and what the suites use (runc,
//! crun, runsc, pasta, slirp4netns, iproute2, busybox-static, umoci, skopeo). It is kept in the cache
//! directory and made again only when this recipe changes (a fresh machine, such as CI's,
//! always makes it: about half a minute to two minutes).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

const SUITE: &str = "bookworm";

const PACKAGES: &[&str] = &[
    "systemd-sysv",
    "linux-image-cloud-amd64",
    "initramfs-tools",
    "kmod",
    "procps",
    "iproute2",
    "runc",
    "crun",
    "runsc",
    "passt",
    "slirp4netns",
    "busybox-static",
    "umoci",
    "skopeo",
];

const SOURCES: &[&str] = &[
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
];

/// A made root filesystem and its kernel and initramfs.
pub struct Rootfs {
    pub dir: PathBuf,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
}

/// The root filesystem under `cache`, made first if it is missing or from another recipe.
pub fn ensure(cache: &Path) -> Result<Rootfs> {
    let dir = cache.join("rootfs");
    let recipe_file = cache.join("rootfs.recipe");
    let recipe = format!(
        "mmdebstrap --variant=essential {SUITE}\n{}\n{}\n",
        PACKAGES.join(","),
        SOURCES.join("\n")
    );
    let current = std::fs::read_to_string(&recipe_file).unwrap_or_default();
    if current != recipe || !dir.is_dir() {
        make(cache, &dir)?;
        std::fs::write(&recipe_file, &recipe)
            .with_context(|| format!("writing {}", recipe_file.display()))?;
    } else {
        eprintln!(
            "cgroup v2 VM: reusing the root filesystem in {}",
            dir.display()
        );
    }
    Ok(Rootfs {
        kernel: boot_file(&dir, "vmlinuz-")?,
        initrd: boot_file(&dir, "initrd.img-")?,
        dir,
    })
}

fn make(cache: &Path, dir: &Path) -> Result<()> {
    let partial = cache.join("rootfs.partial");
    for old in [dir, partial.as_path()] {
        if old.exists() {
            std::fs::remove_dir_all(old).with_context(|| format!("removing {}", old.display()))?;
        }
    }
    std::fs::create_dir_all(cache).with_context(|| format!("creating {}", cache.display()))?;
    let log = cache.join("mmdebstrap.log");
    let began = std::time::Instant::now();
    eprintln!(
        "cgroup v2 VM: making the root filesystem with mmdebstrap (log: {})",
        log.display()
    );
    let status = Command::new("mmdebstrap")
        .arg("--variant=essential")
        .arg(format!("--include={}", PACKAGES.join(",")))
        .arg(SUITE)
        .arg(&partial)
        .args(SOURCES)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log)?)
        .stderr(std::fs::File::options().append(true).open(&log)?)
        .status()
        .context("running mmdebstrap (apt-get install mmdebstrap)")?;
    if !status.success() {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        bail!(
            "mmdebstrap failed ({status}); the end of its log:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    std::fs::rename(&partial, dir)?;
    eprintln!(
        "cgroup v2 VM: root filesystem made in {:.0?}",
        began.elapsed()
    );
    Ok(())
}

/// The one `/boot/<prefix>*` file of the root filesystem.
fn boot_file(root: &Path, prefix: &str) -> Result<PathBuf> {
    let boot = root.join("boot");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&boot)
        .with_context(|| format!("reading {}", boot.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
        .collect();
    found.sort();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        _ => bail!(
            "expected one {prefix}* in {}, found {found:?}",
            boot.display()
        ),
    }
}
