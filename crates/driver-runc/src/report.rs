//! Text for error messages: the end of a log file, the agent's report, durations.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use faasbox_proto::{LogLine, ReadyReport};

pub(super) fn seconds(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs.fract() == 0.0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{secs:.1}s")
    }
}

/// The agent's report and the end of its log, for a start that failed.
pub(super) fn failure_details(report: Option<&ReadyReport>, agent_log: &Path) -> String {
    let mut details = String::new();
    if let Some(report) = report {
        if !report.logs.is_empty() {
            details.push_str("\nfunction output:\n");
            let skip = report.logs.len().saturating_sub(20);
            for line in &report.logs[skip..] {
                details.push_str(&format_log_line(line));
                details.push('\n');
            }
        }
    }
    details.push_str("\nagent log:\n");
    details.push_str(&tail_of_file(agent_log, 20));
    details
}

fn format_log_line(line: &LogLine) -> String {
    let stream = match line.stream {
        faasbox_proto::LogStream::Stdout => "stdout",
        faasbox_proto::LogStream::Stderr => "stderr",
        faasbox_proto::LogStream::Function => "log",
        faasbox_proto::LogStream::Agent => "agent",
    };
    format!("  [{stream}] {}", line.line)
}

/// The last `lines` lines of a file (reading at most its last 16 KiB), indented; a note when
/// it is missing or empty.
pub(crate) fn tail_of_file(path: &Path, lines: usize) -> String {
    const MAX: u64 = 16 * 1024;
    let Ok(mut file) = std::fs::File::open(path) else {
        return "  (no log)".to_string();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > MAX {
        let _ = file.seek(SeekFrom::Start(len - MAX));
    }
    let mut bytes = Vec::new();
    if file.read_to_end(&mut bytes).is_err() {
        return "  (unreadable log)".to_string();
    }
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if all.is_empty() {
        return "  (empty)".to_string();
    }
    let skip = all.len().saturating_sub(lines);
    all[skip..]
        .iter()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_reports_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("log");
        assert_eq!(tail_of_file(&file, 3), "  (no log)");
        std::fs::write(&file, "a\nb\n\nc\nd\n").unwrap();
        assert_eq!(tail_of_file(&file, 2), "  c\n  d");
        std::fs::write(&file, "").unwrap();
        assert_eq!(tail_of_file(&file, 2), "  (empty)");
    }

    #[test]
    fn seconds_are_human() {
        assert_eq!(seconds(Duration::from_secs(120)), "120s");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5s");
    }
}
