//! Boots the machine with qemu-system-x86_64 and reads what the guest's runner reports on
//! the second serial port (the first is the kernel's and systemd's console), within two
//! deadlines: one for the runner to begin (the boot), one for the whole run.
//!
//! KVM is used where the host has hardware virtualisation (`vmx`/`svm` among the CPU flags
//! and a usable `/dev/kvm`); elsewhere qemu emulates the CPU (TCG), several times slower but
//! the same machine. A `/dev/kvm` backed by something else (this project's CI machines have
//! a paravirtual one that only boots kernels built for it) is not used.
//! `FAASBOX_VM_ACCEL=kvm|tcg` overrides the choice.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

const MARK: &str = "FAASBOX-VM ";

/// How qemu runs the guest's CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    /// KVM when the host has hardware virtualisation for it, else emulation.
    pub fn choose() -> Accel {
        match std::env::var("FAASBOX_VM_ACCEL").as_deref() {
            Ok("kvm") => return Accel::Kvm,
            Ok("tcg") => return Accel::Tcg,
            _ => {}
        }
        let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let hardware = flags
            .lines()
            .filter(|l| l.starts_with("flags"))
            .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"));
        let device = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .is_ok();
        if hardware && device {
            Accel::Kvm
        } else {
            Accel::Tcg
        }
    }

    fn args(self) -> [&'static str; 4] {
        match self {
            Accel::Kvm => ["-accel", "kvm", "-cpu", "host"],
            Accel::Tcg => ["-accel", "tcg,thread=multi", "-cpu", "max"],
        }
    }
}

/// What to boot.
pub struct Machine {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub disk: PathBuf,
    pub accel: Accel,
    pub cpus: usize,
    pub memory_mib: u32,
}

/// How each suite ended, from the runner's report.
#[derive(Debug)]
pub struct Report {
    /// The runner's description of the machine (kernel, cgroup filesystem, controllers).
    pub host: String,
    /// (suite, passed, seconds)
    pub suites: Vec<(String, bool, u64)>,
    /// Everything the runner printed (the suites' own output included).
    pub output: String,
}

impl Report {
    pub fn failed(&self) -> Vec<&str> {
        self.suites
            .iter()
            .filter(|(_, passed, _)| !passed)
            .map(|(name, _, _)| name.as_str())
            .collect()
    }

    /// The output of one suite: the lines between its begin and end marks.
    pub fn suite_output(&self, name: &str) -> String {
        let begin = format!("{MARK}suite {name} begin");
        let end = format!("{MARK}suite {name} ");
        self.output
            .lines()
            .skip_while(|l| *l != begin)
            .skip(1)
            .take_while(|l| !l.starts_with(&end))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Kills qemu when the run ends early (a failed assertion, a deadline).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Machine {
    /// Boots the machine (its files in `work`) and waits for the runner's report.
    pub fn run(&self, work: &Path, boot_within: Duration, run_within: Duration) -> Result<Report> {
        let console = work.join("console.log");
        let results = work.join("results.log");
        for file in [&console, &results] {
            let _ = std::fs::remove_file(file);
        }
        let mut qemu = Command::new("qemu-system-x86_64");
        qemu.args(self.accel.args())
            .args([
                "-smp",
                &self.cpus.to_string(),
                "-m",
                &self.memory_mib.to_string(),
            ])
            .args([
                "-nodefaults",
                "-nographic",
                "-no-reboot",
                "-monitor",
                "none",
            ])
            .arg("-kernel")
            .arg(&self.kernel)
            .arg("-initrd")
            .arg(&self.initrd)
            .args([
                "-append",
                "console=ttyS0 root=/dev/vda rw quiet panic=-1 \
                 systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all",
            ])
            .arg("-drive")
            .arg(format!(
                "file={},format=raw,if=virtio,cache=unsafe",
                self.disk.display()
            ))
            .arg("-serial")
            .arg(format!("file:{}", console.display()))
            .arg("-serial")
            .arg(format!("file:{}", results.display()))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(work.join("qemu.log"))?)
            .stderr(std::fs::File::create(work.join("qemu.err"))?);
        eprintln!("cgroup v2 VM: {qemu:?}");
        let began = Instant::now();
        let mut running = Running(qemu.spawn().context("starting qemu-system-x86_64")?);
        let mut booted = None;
        loop {
            let report = std::fs::read_to_string(&results).unwrap_or_default();
            if booted.is_none() && report.lines().any(|l| l == format!("{MARK}begin")) {
                eprintln!("cgroup v2 VM: booted in {:.0?}", began.elapsed());
                booted = Some(began.elapsed());
            }
            if report
                .lines()
                .any(|l| l.starts_with(&format!("{MARK}end ")))
            {
                // Let it power off; a machine that does not is stopped by the drop.
                let off = Instant::now();
                while off.elapsed() < Duration::from_secs(30) {
                    if running.0.try_wait()?.is_some() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                return parse(report);
            }
            if let Some(status) = running.0.try_wait()? {
                bail!(
                    "the machine stopped ({status}) before the runner reported its end\n{}",
                    self.evidence(work, &report)
                );
            }
            if booted.is_none() && began.elapsed() > boot_within {
                bail!(
                    "the machine did not boot to the test runner within {boot_within:?}\n{}",
                    self.evidence(work, &report)
                );
            }
            if began.elapsed() > run_within {
                bail!(
                    "the suites did not finish within {run_within:?}\n{}",
                    self.evidence(work, &report)
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// What tells why a run failed: the end of the console and of the runner's report.
    fn evidence(&self, work: &Path, report: &str) -> String {
        let console = std::fs::read(work.join("console.log")).unwrap_or_default();
        let qemu = std::fs::read_to_string(work.join("qemu.err")).unwrap_or_default();
        format!(
            "qemu's errors:\n{}\nthe console's last lines:\n{}\nthe runner's last lines:\n{}",
            tail(&qemu, 10),
            tail(&String::from_utf8_lossy(&console), 40),
            tail(report, 60)
        )
    }
}

fn parse(output: String) -> Result<Report> {
    let mut host = String::new();
    let mut suites = Vec::new();
    for line in output.lines() {
        let Some(rest) = line.strip_prefix(MARK) else {
            continue;
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        match words.as_slice() {
            ["host", ..] => host = words[1..].join(" "),
            ["not-unified"] => bail!(
                "the machine does not run the unified cgroup hierarchy only: {}",
                host
            ),
            ["network-setup-failed"] => {
                bail!("the runner could not set up the dummy network:\n{output}")
            }
            ["suite", name, outcome @ ("passed" | "failed"), _rc, seconds] => suites.push((
                name.to_string(),
                *outcome == "passed",
                seconds.parse().unwrap_or(0),
            )),
            _ => {}
        }
    }
    Ok(Report {
        host,
        suites,
        output,
    })
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
