//! Commands on an existing container: start, kill, delete, pause, resume.

use std::path::Path;

use anyhow::Context;
use libcontainer::container::Container;
use libcontainer::signal::Signal;

/// The container `id` in `root`; an error saying it does not exist (the driver reads that
/// phrase as "gone", as with runc) when it has no state.
pub(crate) fn load(root: &Path, id: &str) -> anyhow::Result<Container> {
    let dir = crate::container_id::container_dir(root, id)?;
    if !dir.join("state.json").is_file() {
        // What a create killed before libcontainer wrote the state left (its spec copy, an
        // empty container directory) goes now: nothing else would ever find it (spec_copy).
        if let Err(e) = crate::spec_copy::remove_leftovers(root, id) {
            eprintln!("faasbox-oci: {e:#}");
        }
        anyhow::bail!("container {id} does not exist");
    }
    let mut container =
        Container::load(dir).with_context(|| format!("cannot read the state of {id}"))?;
    container
        .refresh_status()
        .with_context(|| format!("cannot read the status of {id}"))?;
    Ok(container)
}

pub(crate) fn start(root: &Path, id: &str) -> anyhow::Result<()> {
    load(root, id)?
        .start()
        .with_context(|| format!("cannot start {id}"))
}

pub(crate) fn kill(root: &Path, id: &str, signal: &str, all: bool) -> anyhow::Result<()> {
    let signal = parse_signal(signal)?;
    load(root, id)?
        .kill(signal, all)
        .with_context(|| format!("cannot signal {id}"))
}

/// Deletes the container, and what a killed create of it left (spec_copy).
pub(crate) fn delete(root: &Path, id: &str, force: bool) -> anyhow::Result<()> {
    crate::spec_copy::remove_leftovers(root, id)?;
    load(root, id)?
        .delete(force)
        .with_context(|| format!("cannot delete {id}"))
}

pub(crate) fn pause(root: &Path, id: &str) -> anyhow::Result<()> {
    load(root, id)?
        .pause()
        .with_context(|| format!("cannot pause {id}"))
}

pub(crate) fn resume(root: &Path, id: &str) -> anyhow::Result<()> {
    load(root, id)?
        .resume()
        .with_context(|| format!("cannot resume {id}"))
}

/// `KILL`, `SIGKILL` or `9`.
fn parse_signal(text: &str) -> anyhow::Result<Signal> {
    match text.parse::<i32>() {
        Ok(number) => Signal::try_from(number).map_err(|e| anyhow::anyhow!("{e}")),
        Err(_) => Signal::try_from(text).map_err(|e| anyhow::anyhow!("{e}")),
    }
    .with_context(|| format!("unknown signal {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_and_number() {
        let kill = format!("{:?}", parse_signal("9").unwrap());
        assert!(kill.contains("SIGKILL"), "{kill}");
        assert_eq!(format!("{:?}", parse_signal("KILL").unwrap()), kill);
        assert_eq!(format!("{:?}", parse_signal("SIGKILL").unwrap()), kill);
        assert!(parse_signal("NOPE")
            .unwrap_err()
            .to_string()
            .contains("unknown signal"));
    }
}
