//! `state` and `list`: what runc prints, for the fields the driver reads (`id`, `status`,
//! `pid`).

use std::path::Path;

use libcontainer::container::{Container, ContainerStatus};
use serde_json::json;

pub(crate) fn state(root: &Path, id: &str) -> anyhow::Result<()> {
    let container = crate::control::load(root, id)?;
    println!("{}", serde_json::to_string_pretty(&describe(&container))?);
    Ok(())
}

/// Every container directory in `root` (a spec copy being written, `.bundle-<id>`, and
/// anything that is not a container are skipped); `[]` when there is none. What killed
/// creates left is removed first (spec_copy): the driver lists at its start and stop.
pub(crate) fn list(root: &Path) -> anyhow::Result<()> {
    if let Err(e) = crate::spec_copy::sweep(root, crate::spec_copy::SWEEP_AFTER) {
        eprintln!("faasbox-oci: {e:#}");
    }
    let mut entries = Vec::new();
    let dir = match std::fs::read_dir(root) {
        Ok(dir) => dir,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("[]");
            return Ok(());
        }
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("cannot read {}", root.display())))
        }
    };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if let Ok(container) = crate::control::load(root, &name) {
            entries.push(describe(&container));
        }
    }
    println!("{}", serde_json::Value::Array(entries));
    Ok(())
}

fn describe(container: &Container) -> serde_json::Value {
    let status = container.status();
    let pid = match status {
        ContainerStatus::Stopped => 0,
        _ => container.pid().map(|p| p.as_raw()).unwrap_or(0),
    };
    json!({
        "ociVersion": "1.0.2",
        "id": container.id(),
        "status": status_name(status),
        "pid": pid,
        "bundle": container.bundle(),
    })
}

/// The OCI state's status names (runc's).
fn status_name(status: ContainerStatus) -> &'static str {
    match status {
        ContainerStatus::Creating => "creating",
        ContainerStatus::Created => "created",
        ContainerStatus::Running => "running",
        ContainerStatus::Stopped => "stopped",
        ContainerStatus::Paused => "paused",
    }
}
