//! A process's `/proc/<pid>/stat`: its state and the CPU time it used. Self-contained, so the
//! benchmarks include it too (`#[path]`).

/// The fields of `/proc/<pid>/stat` from the state on (field 3 of the file is index 0).
pub fn fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.get(stat.rfind(')')? + 2..)?;
    Some(after.split(' ').map(str::to_string).collect())
}

/// The CPU time (user + system, all threads) process `pid` used, in clock ticks of 1/100 s.
pub fn cpu_ticks(pid: u32) -> u64 {
    let fields = fields(pid).unwrap_or_default();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|t| t.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

/// The whole machine's CPU time from `/proc/stat`, in clock ticks: (busy, all), summed over
/// every core; idle and I/O wait are the part of `all` that is not busy.
pub fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    let all: u64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    (all.saturating_sub(idle), all)
}
