//! The workspace's one policy for a test that cannot do what it says on this machine (not
//! root, a tool missing): under `CI` it fails with the reason, elsewhere it is reported as
//! skipped — never passed silently.

use std::io::Write as _;
use std::path::Path;

/// The environment variable naming a file to which every skip appends one line;
/// `scripts/test.sh` sets it to count the skipped tests.
pub const SKIP_LOG_ENV: &str = "FAASBOX_SKIP_LOG";

/// A test that cannot run here: panics with `reason` when `CI` is set (a CI run must not pass
/// without it); otherwise prints `SKIPPED: <reason>` to stderr and appends that line to the
/// file named by [`SKIP_LOG_ENV`], if set. The caller returns right after.
pub fn cannot_run(reason: &str) {
    let thread = std::thread::current();
    let log = std::env::var_os(SKIP_LOG_ENV);
    let ci = std::env::var_os("CI").is_some();
    if let Err(message) = skip(
        ci,
        log.as_deref().map(Path::new),
        thread.name().unwrap_or("a test"),
        reason,
    ) {
        panic!("{message}");
    }
}

/// [`cannot_run`] with its inputs explicit: `Err` is the failure to panic with.
fn skip(ci: bool, log: Option<&Path>, test: &str, reason: &str) -> Result<(), String> {
    if ci {
        return Err(format!(
            "this test cannot run here (CI is set, so it fails instead of skipping): {reason}"
        ));
    }
    eprintln!("SKIPPED: {reason}");
    let Some(log) = log else { return Ok(()) };
    let line = format!("SKIPPED: {test}: {}\n", reason.replace('\n', " "));
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .and_then(|mut file| file.write_all(line.as_bytes()))
        .map_err(|e| {
            format!(
                "cannot record the skip in {} ({SKIP_LOG_ENV}; unset it or make the file \
                 writable): {e}",
                log.display()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::skip;

    #[test]
    fn under_ci_a_skip_is_a_failure_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("skipped");
        let err = skip(true, Some(&log), "t", "needs root").unwrap_err();
        assert!(err.contains("needs root"), "{err}");
        assert!(!log.exists(), "a CI failure is not counted as a skip");
    }

    #[test]
    fn elsewhere_each_skip_appends_one_line_with_test_and_reason() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("skipped");
        skip(false, Some(&log), "a::b", "no runsc\n(install it)").unwrap();
        skip(false, Some(&log), "a::c", "no pasta").unwrap();
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "SKIPPED: a::b: no runsc (install it)\nSKIPPED: a::c: no pasta\n"
        );
        skip(false, None, "a::d", "not logged").unwrap();
    }

    #[test]
    fn an_unwritable_log_fails_rather_than_losing_the_skip() {
        let dir = tempfile::tempdir().unwrap();
        let err = skip(false, Some(dir.path()), "t", "r").unwrap_err();
        assert!(err.contains("FAASBOX_SKIP_LOG"), "{err}");
    }
}
