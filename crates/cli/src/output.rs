//! Printing results: aligned tables for people, JSON for scripts, and every write to standard
//! output through [`write_out`], so a reader that goes away (`faasbox … | head`) ends the
//! command quietly instead of a panic.

use std::io::Write as _;

use serde::Serialize;

use crate::cli::OutputFormat;

/// Prints a line to standard output through [`write_out`] (use it instead of `println!`).
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::write_out(format!("{}\n", format_args!($($arg)*)).as_bytes())
    };
}
pub(crate) use outln;

/// Writes `bytes` to standard output and flushes. A closed pipe (the reader is gone, as with
/// `| head`) ends the program at once with status 0, as other command-line tools do: there is
/// no one left to tell. Any other write error ends it with a message and status 1.
pub fn write_out(bytes: &[u8]) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: writing to standard output: {e}");
        std::process::exit(1);
    }
}

/// Prints a JSON value, pretty, on its own line.
pub fn print_json<T: Serialize + ?Sized>(value: &T) {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    outln!("{text}");
}

/// Prints one page of log lines (`page["logs"]`) and returns them: in JSON the whole page as
/// one document, or with `follow` each line as a JSON object of its own (a stream has no end
/// to close a document with); in text each line as `text` renders it.
pub fn print_log_page(
    format: OutputFormat,
    follow: bool,
    page: &serde_json::Value,
    text: impl Fn(&serde_json::Value) -> String,
) -> Vec<serde_json::Value> {
    let lines = page["logs"].as_array().cloned().unwrap_or_default();
    match format {
        OutputFormat::Json if !follow => print_json(page),
        OutputFormat::Json => lines.iter().for_each(|line| outln!("{line}")),
        OutputFormat::Text => lines.iter().for_each(|line| outln!("{}", text(line))),
    }
    lines
}

/// Prints `value` as JSON, or the table built from it.
pub fn print<T: Serialize>(format: OutputFormat, value: &T, table: impl FnOnce() -> Table) {
    match format {
        OutputFormat::Json => print_json(value),
        OutputFormat::Text => write_out(table().render().as_bytes()),
    }
}

pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: Vec<&'static str>) -> Self {
        Table {
            header,
            rows: Vec::new(),
        }
    }

    pub fn row(mut self, cells: Vec<String>) -> Self {
        self.rows.push(cells);
        self
    }

    pub fn rows(mut self, rows: impl IntoIterator<Item = Vec<String>>) -> Self {
        self.rows.extend(rows);
        self
    }

    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.len()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if i < widths.len() {
                    widths[i] = widths[i].max(cell.chars().count());
                }
            }
        }
        let mut out = String::new();
        let line = |cells: Vec<&str>, out: &mut String| {
            let last = cells.len().saturating_sub(1);
            for (i, cell) in cells.iter().enumerate() {
                out.push_str(cell);
                if i < last {
                    let pad = widths[i] + 2 - cell.chars().count();
                    out.push_str(&" ".repeat(pad));
                }
            }
            out.push('\n');
        };
        line(self.header.clone(), &mut out);
        for row in &self.rows {
            line(row.iter().map(String::as_str).collect(), &mut out);
        }
        out
    }
}

/// Bytes as people read them (1.5 MiB).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let t = Table::new(vec!["NAME", "SIZE"])
            .row(vec!["a".into(), "1".into()])
            .row(vec!["longer".into(), "2".into()]);
        assert_eq!(t.render(), "NAME    SIZE\na       1\nlonger  2\n");
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(12), "12 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(5 * 1024 * 1024), "5.0 MiB");
    }
}
