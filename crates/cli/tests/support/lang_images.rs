//! Language base images for the functions-from-code tests: Debian 12 root filesystem tarballs
//! with Python 3 and Node.js made by mmdebstrap from Debian's archive (no container registry),
//! trusting the certificate authorities the host added locally, kept under
//! `target/test-images/` keyed by their recipe. Parallel test processes build each
//! one once: a lock file serialises them, and a tarball is written under a temporary name and
//! renamed, so a reader never sees half of one.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use sha2::Digest as _;

const SUITE: &str = "bookworm";

const SOURCES: &[&str] = &[
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
];

/// The interpreters only: `python3` and `node` (about 40 s to make, 270 MB). `python3`, not
/// `python3-minimal`: the minimal one lacks most of the standard library (`json` among it),
/// which faasbox's Python shim, as most handlers, imports.
pub const SLIM: &[&str] = &["python3", "nodejs"];

/// The interpreters with their package managers, for runtime dependencies: `pip` and `npm`,
/// and `apt` for system packages (about 40 s to a few minutes to make, 420 MB). python3-pip
/// brings the whole `python3`.
pub const DEPS: &[&str] = &["python3-minimal", "nodejs", "python3-pip", "npm", "apt"];

/// Why this machine cannot make the images, if it cannot (for [`super::cannot_run`]).
pub fn missing() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("making Debian root filesystems needs root (mmdebstrap)".into());
    }
    let found = Command::new("mmdebstrap")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    (!found).then(|| {
        "mmdebstrap is missing (apt-get install mmdebstrap, or scripts/install-deps.sh)".into()
    })
}

/// Where the tarballs are kept: `target/test-images/` (the target directory is the outermost
/// one cargo marked with CACHEDIR.TAG above the tests' temporary directory, which sits in the
/// target triple's directory when a build target is named, as this workspace does).
pub fn cache_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let target = tmp
        .ancestors()
        .filter(|dir| dir.join("CACHEDIR.TAG").is_file())
        .last()
        .or(tmp.parent())
        .unwrap_or(tmp);
    target.join("test-images")
}

/// Where Debian keeps the certificate authorities added locally.
const LOCAL_CAS: &str = "/usr/local/share/ca-certificates";

/// The certificate authorities this machine added to Debian's (`*.crt` in [`LOCAL_CAS`]),
/// sorted. A test machine behind a TLS-intercepting proxy trusts its proxy this way; the
/// images get them too, so pip and npm reach PyPI and npm's registry through it as the
/// host does. None on most machines.
fn local_cas() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(LOCAL_CAS)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "crt") && p.is_file())
        .collect();
    found.sort();
    found
}

/// The mmdebstrap command line a tarball of `packages` is made with, and the local CAs it
/// adds (their contents); its hash names the file.
fn recipe(packages: &[&str], cas: &[PathBuf]) -> String {
    let mut recipe = format!(
        "mmdebstrap --variant=essential --include={} --format=tar {SUITE}\n{}\n",
        packages.join(","),
        SOURCES.join("\n")
    );
    for ca in cas {
        let pem =
            std::fs::read_to_string(ca).unwrap_or_else(|e| panic!("reading {}: {e}", ca.display()));
        recipe.push_str(&format!("{}\n{pem}\n", ca.display()));
    }
    recipe
}

/// The root filesystem tarball with `packages` (Debian package names) installed, made first
/// when it is not in the cache. Panics with the end of mmdebstrap's log when making it fails.
pub fn rootfs(packages: &[&str]) -> PathBuf {
    let cas = local_cas();
    let recipe = recipe(packages, &cas);
    let key = hex::encode(&sha2::Sha256::digest(recipe.as_bytes())[..8]);
    let dir = cache_dir();
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    let tar = dir.join(format!("{key}.tar"));
    let lock_path = dir.join(format!("{key}.lock"));
    let lock = std::fs::File::create(&lock_path)
        .unwrap_or_else(|e| panic!("creating {}: {e}", lock_path.display()));
    // Held until this function returns: another test process waits here while one builds.
    lock.lock()
        .unwrap_or_else(|e| panic!("locking {}: {e}", lock_path.display()));
    if tar.is_file() {
        return tar;
    }
    let partial = dir.join(format!("{key}.tar.partial-{}", std::process::id()));
    let log = dir.join(format!("{key}.log"));
    let began = Instant::now();
    eprintln!(
        "making the test root filesystem {} with mmdebstrap ({}; log: {})",
        tar.display(),
        packages.join(","),
        log.display()
    );
    let log_file =
        std::fs::File::create(&log).unwrap_or_else(|e| panic!("creating {}: {e}", log.display()));
    let mut command = Command::new("mmdebstrap");
    command.arg("--variant=essential");
    if cas.is_empty() {
        command.arg(format!("--include={}", packages.join(",")));
    } else {
        command
            .arg(format!("--include={},ca-certificates", packages.join(",")))
            .arg(format!(
                "--customize-hook=copy-in {} {LOCAL_CAS}",
                cas.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            ))
            .arg("--customize-hook=chroot \"$1\" update-ca-certificates");
    }
    let status = command
        .arg("--format=tar")
        .arg(SUITE)
        .arg(&partial)
        .args(SOURCES)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("log file handle"))
        .stderr(log_file)
        .status()
        .unwrap_or_else(|e| panic!("running mmdebstrap: {e} (apt-get install mmdebstrap)"));
    if !status.success() {
        let _ = std::fs::remove_file(&partial);
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        panic!(
            "mmdebstrap failed ({status}) making {}; the end of its log:\n{}",
            tar.display(),
            super::tail(&text, 30)
        );
    }
    std::fs::rename(&partial, &tar)
        .unwrap_or_else(|e| panic!("renaming {} to {}: {e}", partial.display(), tar.display()));
    std::fs::write(dir.join(format!("{key}.recipe")), &recipe).expect("writing the recipe");
    eprintln!("made {} in {:.0?}", tar.display(), began.elapsed());
    tar
}
