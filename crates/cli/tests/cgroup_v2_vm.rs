//! The driver on a cgroup v2 host. This project's machines (and CI) run Debian 12 with the
//! cgroup v1 hybrid layout, while stock Debian 12 and most current distributions run the
//! unified hierarchy only; this test boots a small Debian 12 virtual machine on the unified
//! hierarchy (`systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all`) and runs there, as they
//! were built here: the runc driver crate's tests (real runc, crun and runsc containers, and
//! libcontainer's through faasbox-oci in its key cases: limits, OOM detection, networking
//! through slirp4netns and pasta, cleanup), once on runc and once with the standard class on
//! crun, the CLI's `limits` suite (a real `faasbox
//! server` whose functions hit their memory limit, pids limit and CPU quota) and its
//! `lifecycle` suite (nothing left behind after a stop or a kill), on runc and on crun. See
//! `vm/` for how.
//!
//! It needs root, qemu-system-x86_64, mmdebstrap and mke2fs (`scripts/install-deps.sh`) and
//! Debian's archive. Without them it is skipped with the reason, or fails with it when `CI`
//! is set. `FAASBOX_VM_TEST=skip` skips it on purpose (also failing under `CI`).

mod support;
mod vm;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vm::binaries::Target;
use vm::disk::Suite;
use vm::machine::{Accel, Machine};

/// The driver's container tests.
const DRIVER: Target = Target {
    package: "faasbox-driver-runc",
    kind: "lib",
    name: "faasbox_driver_runc",
};
/// start_latency_report only prints start times (no assertion); emulated, it takes a minute.
/// (The fake driver's and the TCP agent client's tests are faasbox-driver's: they start no
/// container and touch no cgroup, so they run on the host only.)
const DRIVER_ARGUMENTS: &[&str] = &["--test-threads=2", "--skip", "start_latency_report"];
const LIFECYCLE: Target = Target {
    package: "faasbox",
    kind: "test",
    name: "lifecycle",
};
/// Runs a suite's containers on crun instead of runc (`--oci-runtime crun`).
const ON_CRUN: &[&str] = &["FAASBOX_TEST_OCI_RUNTIME=crun"];

/// The suites run in the machine: (name, target, environment, arguments of the test harness).
/// The driver and lifecycle suites run twice, on runc and on crun: the runtimes differ most in
/// how they treat cgroups, which this machine is for.
const SUITES: &[(&str, Target, &[&str], &[&str])] = &[
    ("driver-runc", DRIVER, &[], DRIVER_ARGUMENTS),
    ("driver-crun", DRIVER, ON_CRUN, DRIVER_ARGUMENTS),
    (
        "limits",
        Target {
            package: "faasbox",
            kind: "test",
            name: "limits",
        },
        &[],
        // One at a time: the CPU quota test needs a CPU to itself to exceed its quota.
        &["--test-threads=1"],
    ),
    ("lifecycle", LIFECYCLE, &[], &["--test-threads=2"]),
    ("lifecycle-crun", LIFECYCLE, ON_CRUN, &["--test-threads=2"]),
];

/// Emulated (TCG) on this project's 2-core machines the boot takes 30–60 s and the suites
/// 8 to 13 minutes; the deadlines leave room for a loaded machine.
const BOOT_WITHIN: Duration = Duration::from_secs(300);
const RUN_WITHIN: Duration = Duration::from_secs(35 * 60);

fn missing_tool() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("it needs root (mmdebstrap, and runc inside)".into());
    }
    for (tool, package) in [
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("mmdebstrap", "mmdebstrap"),
        ("mke2fs", "e2fsprogs"),
    ] {
        let found = std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
            .unwrap_or(false)
            || Path::new("/usr/sbin").join(tool).is_file()
            || Path::new("/sbin").join(tool).is_file();
        if !found {
            return Some(format!(
                "{tool} is missing (apt-get install {package}, or scripts/install-deps.sh)"
            ));
        }
    }
    None
}

#[test]
fn the_container_suites_pass_on_a_cgroup_v2_host() {
    if std::env::var("FAASBOX_VM_TEST").as_deref() == Ok("skip") {
        support::cannot_run("the cgroup v2 VM test: FAASBOX_VM_TEST=skip");
        return;
    }
    if let Some(reason) = missing_tool() {
        support::cannot_run(&format!("the cgroup v2 VM test: {reason}"));
        return;
    }
    let faasbox = PathBuf::from(support::FAASBOX);
    let bin_dir = faasbox.parent().expect("the binary's directory");
    let agent = bin_dir.join("faasbox-agent");
    assert!(
        agent.is_file(),
        "{} is missing: build it with `cargo build --workspace --bins`",
        agent.display()
    );
    let work = bin_dir.join("cgroup-v2-vm");
    std::fs::create_dir_all(&work).expect("the work directory");

    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let targets: Vec<Target> = SUITES.iter().map(|(_, target, _, _)| *target).collect();
    let began = Instant::now();
    let executables = vm::binaries::executables(&workspace, &bin_dir.join("deps"), &targets)
        .unwrap_or_else(|e| panic!("finding the test executables: {e:#}"));
    eprintln!(
        "cgroup v2 VM: test executables found in {:.0?}",
        began.elapsed()
    );
    let suites: Vec<Suite> = SUITES
        .iter()
        .zip(&executables)
        .map(|((name, _, environment, arguments), executable)| Suite {
            name: name.to_string(),
            executable: executable.clone(),
            environment: environment.iter().map(|e| e.to_string()).collect(),
            arguments: arguments.iter().map(|a| a.to_string()).collect(),
        })
        .collect();

    let rootfs = vm::rootfs::ensure(&work)
        .unwrap_or_else(|e| panic!("making the machine's root filesystem: {e:#}"));
    let disk = work.join("disk.img");
    // faasbox-oci too: the driver suite's libcontainer tests run it from next to the agent.
    let oci = bin_dir.join("faasbox-oci");
    assert!(
        oci.is_file(),
        "{} is missing: build it with `cargo build --workspace --bins`",
        oci.display()
    );
    let mut files = vec![faasbox.clone(), agent, oci];
    // Suites that share an executable have it copied once.
    for executable in executables {
        if !files.contains(&executable) {
            files.push(executable);
        }
    }
    let began = Instant::now();
    vm::disk::build(&rootfs.dir, &work, &files, &suites, &disk)
        .unwrap_or_else(|e| panic!("making the machine's disk: {e:#}"));
    eprintln!("cgroup v2 VM: disk made in {:.0?}", began.elapsed());

    let machine = Machine {
        kernel: rootfs.kernel,
        initrd: rootfs.initrd,
        disk: disk.clone(),
        accel: Accel::choose(),
        cpus: 2,
        memory_mib: 2048,
    };
    let report = machine
        .run(&work, BOOT_WITHIN, RUN_WITHIN)
        .unwrap_or_else(|e| panic!("the cgroup v2 VM ({:?}): {e:#}", machine.accel));
    eprintln!("cgroup v2 VM ({:?}): {}", machine.accel, report.host);
    for (name, passed, seconds) in &report.suites {
        let outcome = if *passed { "passed" } else { "FAILED" };
        eprintln!("cgroup v2 VM: suite {name} {outcome} in {seconds} s");
    }
    let reported: Vec<&str> = report.suites.iter().map(|(n, _, _)| n.as_str()).collect();
    let expected: Vec<&str> = SUITES.iter().map(|(n, _, _, _)| *n).collect();
    let failed = report.failed();
    if !failed.is_empty() || reported != expected {
        for name in &failed {
            eprintln!(
                "---- suite {name} in the cgroup v2 VM ----\n{}",
                report.suite_output(name)
            );
        }
        panic!(
            "on the cgroup v2 host, suites failed: {failed:?} (ran {reported:?} of {expected:?}); \
             their output is above, the machine's files in {}",
            work.display()
        );
    }
    let _ = std::fs::remove_file(&disk);
}
