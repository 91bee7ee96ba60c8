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
