//! Images made by real tools: `umoci` builds a two-layer OCI layout (the
//! second layer deletes files, so it has whiteouts), `skopeo` turns it into a
//! `docker save` archive and an OCI archive. All three import to the same
//! layers, and overlayfs stacks the extracted layers into the expected tree.
//! Skipped (with a note) when umoci or skopeo is not installed.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::TestStore;
use faasbox_images::{RootfsOptions, Scope};

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run(dir: &Path, args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds `oci/` (tag `latest`), `docker.tar` and `oci.tar` in `dir`.
fn build_images(dir: &Path) {
    run(dir, &["umoci", "init", "--layout", "oci"]);
    run(dir, &["umoci", "new", "--image", "oci:latest"]);
    run(dir, &["umoci", "unpack", "--image", "oci:latest", "bundle"]);
    let rootfs = dir.join("bundle/rootfs");
    for sub in ["bin", "etc", "tmp", "var/cache"] {
        fs::create_dir_all(rootfs.join(sub)).unwrap();
    }
    fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh")).unwrap();
    fs::write(rootfs.join("etc/motd"), "hello\n").unwrap();
    fs::write(rootfs.join("etc/gone"), "bye\n").unwrap();
    fs::write(rootfs.join("var/cache/a"), "a\n").unwrap();
    run(
        dir,
        &[
            "umoci",
            "repack",
            "--refresh-bundle",
            "--image",
            "oci:latest",
            "bundle",
        ],
    );
    fs::remove_file(rootfs.join("etc/gone")).unwrap();
    fs::remove_file(rootfs.join("var/cache/a")).unwrap();
    fs::write(rootfs.join("var/cache/b"), "b\n").unwrap();
    run(dir, &["umoci", "repack", "--image", "oci:latest", "bundle"]);
    run(
        dir,
        &[
            "umoci",
            "config",
            "--image",
            "oci:latest",
            "--config.entrypoint",
            "/bin/sh",
            "--config.cmd",
            "-c",
            "--config.cmd",
            "echo hi",
            "--config.env",
            "A=1",
            "--config.workingdir",
            "/tmp",
        ],
    );
    run(
        dir,
        &[
            "skopeo",
            "copy",
            "oci:oci:latest",
            "docker-archive:docker.tar:demo/x:latest",
        ],
    );
    run(
        dir,
        &["skopeo", "copy", "oci:oci:latest", "oci-archive:oci.tar"],
    );
}

#[test]
fn imports_images_built_by_umoci_and_skopeo() {
    if !have("umoci") || !have("skopeo") {
        faasbox_test_registry::cannot_run(
            "umoci or skopeo is missing (install the packages umoci and skopeo)",
        );
        return;
    }
    let t = TestStore::new();
    let work = t.tmp.path().join("work");
    fs::create_dir(&work).unwrap();
    build_images(&work);

    let opts = RootfsOptions::default();
    let from_dir = t
        .store
        .import_oci_dir(&Scope::Global, &work.join("oci"), "real/dir")
        .unwrap();
    let from_oci_tar = t
        .store
        .import_archive(&Scope::Global, &work.join("oci.tar"), "real/oci", &opts)
        .unwrap();
    let from_docker = t
        .store
        .import_archive(
            &Scope::Global,
            &work.join("docker.tar"),
            "real/docker",
            &opts,
        )
        .unwrap();

    for image in [&from_dir, &from_oci_tar, &from_docker] {
        assert_eq!(image.config.entrypoint, ["/bin/sh"], "{}", image.name);
        assert_eq!(image.config.cmd, ["-c", "echo hi"]);
        assert!(image.config.env.contains(&"A=1".to_string()));
        assert_eq!(image.config.workdir, "/tmp");
        assert_eq!(image.layers.len(), 2);
    }
    assert_eq!(from_dir.digest, from_oci_tar.digest);
    let diff_ids = |i: &faasbox_images::ImageRecord| -> Vec<String> {
        i.layers.iter().map(|l| l.diff_id.clone()).collect()
    };
    assert_eq!(diff_ids(&from_docker), diff_ids(&from_dir));
    assert_eq!(t.layer_names().len(), 2, "all three share the two layers");

    let dirs = t.store.layer_dirs(&from_docker.layers);
    assert!(dirs[0].join("bin/busybox").is_file());
    assert_overlay_view(&dirs);
}

/// Mounts the layers with overlayfs (read-only, lower dirs only) and checks
/// the merged tree. Skipped when overlayfs cannot be mounted here.
fn assert_overlay_view(dirs: &[std::path::PathBuf]) {
    let mnt = tempfile::tempdir().unwrap();
    let lower: Vec<String> = dirs.iter().rev().map(|d| d.display().to_string()).collect();
    let status = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o"])
        .arg(format!("ro,lowerdir={}", lower.join(":")))
        .arg(mnt.path())
        .status();
    if !status.is_ok_and(|s| s.success()) {
        faasbox_test_registry::cannot_run(
            "cannot mount overlayfs here, so the merged view is not checked",
        );
        return;
    }
    let root = mnt.path();
    let checks = || {
        assert_eq!(
            fs::read_to_string(root.join("etc/motd")).unwrap(),
            "hello\n"
        );
        assert!(!root.join("etc/gone").exists(), "whiteout hides etc/gone");
        assert!(
            !root.join("var/cache/a").exists(),
            "whiteout hides var/cache/a"
        );
        assert_eq!(fs::read_to_string(root.join("var/cache/b")).unwrap(), "b\n");
        let out = Command::new(root.join("bin/busybox"))
            .args(["echo", "from-overlay"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "from-overlay\n");
    };
    let result = std::panic::catch_unwind(checks);
    let _ = Command::new("umount").arg(root).status();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
