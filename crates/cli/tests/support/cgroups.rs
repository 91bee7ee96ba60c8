//! A process's cgroups as the kernel shows them (`/proc/<pid>/cgroup` and the cgroup
//! mounts in `/proc/self/mountinfo`), read the same way on cgroup v1, hybrid and unified
//! (v2) hosts, so tests find a container's limits and counters without knowing how the
//! driver names its cgroups or which hierarchy the host runs.

use std::path::PathBuf;
use std::time::Duration;

/// One mounted cgroup hierarchy.
struct Hierarchy {
    mount_point: PathBuf,
    /// v1 controllers (and `name=…`) of the hierarchy; empty for the unified one.
    controllers: Vec<String>,
    unified: bool,
}

fn hierarchies() -> Vec<Hierarchy> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").expect("/proc/self/mountinfo");
    let mut found = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mut right = right.split(' ');
        let (Some(fstype), Some(_), Some(options)) = (right.next(), right.next(), right.next())
        else {
            continue;
        };
        let Some(mount_point) = left.split(' ').nth(4) else {
            continue;
        };
        let unified = match fstype {
            "cgroup2" => true,
            "cgroup" => false,
            _ => continue,
        };
        let controllers = if unified {
            Vec::new()
        } else {
            options.split(',').map(str::to_string).collect()
        };
        found.push(Hierarchy {
            mount_point: PathBuf::from(mount_point),
            controllers,
            unified,
        });
    }
    found
}

/// True when the host mounts the unified hierarchy only (a cgroup v2 host).
pub fn unified_only() -> bool {
    let all = hierarchies();
    !all.is_empty() && all.iter().all(|h| h.unified)
}

/// The cgroups of one process: each hierarchy's directory for it.
pub struct ProcessCgroups {
    /// (v1 controllers of the line, directory); the unified line has no controllers.
    dirs: Vec<(Vec<String>, PathBuf)>,
}

impl ProcessCgroups {
    /// Reads `/proc/<pid>/cgroup`; `None` when the process is gone.
    pub fn of(pid: u32) -> Option<ProcessCgroups> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        let mounts = hierarchies();
        let mut dirs = Vec::new();
        for line in text.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_), Some(controllers), Some(path)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let controllers: Vec<String> = controllers
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect();
            let mount = mounts.iter().find(|h| {
                if controllers.is_empty() {
                    h.unified
                } else {
                    !h.unified && controllers.iter().all(|c| h.controllers.contains(c))
                }
            });
            if let Some(mount) = mount {
                let dir = mount.mount_point.join(path.trim_start_matches('/'));
                dirs.push((controllers, dir));
            }
        }
        Some(ProcessCgroups { dirs })
    }

    /// The distinct directories that hold the memory, pids and cpu controllers for the
    /// process (one on a v2 host; three or fewer on v1), the ones a container's limits live in.
    pub fn limit_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for controller in ["memory", "pids", "cpu"] {
            let dir = self.dir(controller);
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        dirs
    }

    /// The directory of the v1 hierarchy that has `controller`, else the unified one.
    pub fn dir(&self, controller: &str) -> PathBuf {
        self.dirs
            .iter()
            .find(|(controllers, _)| controllers.iter().any(|c| c == controller))
            .or_else(|| {
                self.dirs
                    .iter()
                    .find(|(controllers, _)| controllers.is_empty())
            })
            .map(|(_, dir)| dir.clone())
            .unwrap_or_else(|| panic!("no cgroup hierarchy has the {controller} controller"))
    }

    fn read(&self, controller: &str, file: &str) -> String {
        let path = self.dir(controller).join(file);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
            .trim()
            .to_string()
    }

    fn unified_for(&self, controller: &str) -> bool {
        !self
            .dirs
            .iter()
            .any(|(controllers, _)| controllers.iter().any(|c| c == controller))
    }

    /// The limits the kernel enforces, in one shape for v1 and v2.
    pub fn limits(&self) -> Limits {
        let (memory, swap) = if self.unified_for("memory") {
            let swap = self.dir("memory").join("memory.swap.max");
            (
                self.read("memory", "memory.max"),
                swap.exists()
                    .then(|| self.read("memory", "memory.swap.max")),
            )
        } else {
            let memsw = self.dir("memory").join("memory.memsw.limit_in_bytes");
            let memory = self.read("memory", "memory.limit_in_bytes");
            // v1 counts memory+swap; the swap on top of memory is the difference.
            let swap = memsw.exists().then(|| {
                let total: u64 = self
                    .read("memory", "memory.memsw.limit_in_bytes")
                    .parse()
                    .expect("memsw limit");
                let memory: u64 = memory.parse().expect("memory limit");
                total.saturating_sub(memory).to_string()
            });
            (memory, swap)
        };
        let cpu = if self.unified_for("cpu") {
            self.read("cpu", "cpu.max")
        } else {
            format!(
                "{} {}",
                self.read("cpu", "cpu.cfs_quota_us"),
                self.read("cpu", "cpu.cfs_period_us")
            )
        };
        Limits {
            memory,
            swap,
            cpu,
            pids: self.read("pids", "pids.max"),
        }
    }

    /// CPU time used and how often the quota throttled the group.
    pub fn cpu_usage(&self) -> CpuUsage {
        let stat = self.read("cpu", "cpu.stat");
        let throttled = counter(&stat, "nr_throttled");
        let used = if self.unified_for("cpu") {
            Duration::from_micros(counter(&stat, "usage_usec"))
        } else {
            let nanos: u64 = self
                .read("cpuacct", "cpuacct.usage")
                .parse()
                .expect("cpuacct.usage");
            Duration::from_nanos(nanos)
        };
        CpuUsage { used, throttled }
    }

    /// How often a fork failed at `pids.max` (the `max` line of `pids.events`).
    pub fn pids_max_events(&self) -> u64 {
        counter(&self.read("pids", "pids.events"), "max")
    }
}

/// Limits as strings the kernel's files use: `memory` in bytes (or `max`), `swap` the swap
/// allowed on top of memory when the host accounts swap, `cpu` as `quota period` in
/// microseconds, `pids` a count (or `max`).
#[derive(Debug, PartialEq, Eq)]
pub struct Limits {
    pub memory: String,
    pub swap: Option<String>,
    pub cpu: String,
    pub pids: String,
}

#[derive(Debug, Clone, Copy)]
pub struct CpuUsage {
    pub used: Duration,
    pub throttled: u64,
}

fn counter(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|line| {
            let (name, value) = line.split_once(' ')?;
            (name == key).then(|| value.trim().parse().ok())?
        })
        .unwrap_or_else(|| panic!("no {key} in:\n{text}"))
}
