//! The builds of functions from code running in the background, by namespace, kind and name
//! (see `crate::code`). On their own so the server's state holds them without the rest of
//! `code`.

use std::collections::HashMap;
use std::sync::Mutex;

use faasbox_store::CodeKind;
use tokio::task::JoinHandle;

/// The build tasks running, by namespace, kind and name: a new build of the same record
/// stops the old one first, and a deletion stops it.
#[derive(Default)]
pub struct Builds {
    running: Mutex<HashMap<String, JoinHandle<()>>>,
}

fn build_key(namespace: &str, kind: CodeKind, name: &str) -> String {
    format!("{namespace}\n{}\n{name}", kind.as_str())
}

impl Builds {
    /// Stops the build of the record, if one runs, and waits until it is gone.
    pub async fn stop(&self, namespace: &str, kind: CodeKind, name: &str) {
        let handle = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&build_key(namespace, kind, name));
        if let Some(handle) = handle {
            handle.abort();
            let _ = handle.await;
        }
    }

    /// Stops every build of `namespace` and waits until they are gone.
    pub async fn stop_namespace(&self, namespace: &str) {
        let prefix = format!("{namespace}\n");
        let handles: Vec<JoinHandle<()>> = {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            let keys: Vec<String> = running
                .keys()
                .filter(|k| k.starts_with(&prefix))
                .cloned()
                .collect();
            keys.iter().filter_map(|k| running.remove(k)).collect()
        };
        for handle in handles {
            handle.abort();
            let _ = handle.await;
        }
    }

    /// Runs `work` as the record's build task.
    pub(crate) fn start(
        &self,
        namespace: &str,
        kind: CodeKind,
        name: &str,
        work: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.retain(|_, handle| !handle.is_finished());
        let previous = running.insert(build_key(namespace, kind, name), tokio::spawn(work));
        if let Some(previous) = previous {
            previous.abort();
        }
    }
}
