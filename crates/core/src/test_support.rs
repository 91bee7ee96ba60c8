//! What the server's fast unit tests share (invoker, flow runner, event dispatcher): a server
//! state over the fake driver and a SQLite store in a temporary directory, with function
//! `ns/fn` deployed from a one-file image, and helpers that deploy, run and read flows the
//! way the API does. No root, no containers.
//!
//! The state is built in one place ([`open`]); tests read and write the store only through
//! the `faasbox_store` traits, called by trait name, so they hold whatever the store behind
//! `AppState` is.

#![cfg(test)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use faasbox_driver::fake::{FakeBehaviour, FakeDriver, FakeReply};
use faasbox_images::{ImageStore, RootfsOptions, Scope};
use faasbox_secrets::{KeySource, Vault};
use faasbox_store::{FlowInstanceRecord, FlowStore, NamespaceStore};
use faasbox_store_sqlite::SqliteStore;
use serde_json::Value;
use tempfile::TempDir;
use tokio::task::JoinHandle;

use crate::config::{ServerConfig, DEFAULT_LISTEN};
use crate::deployments::Deployment;
use crate::image_pin::PullPolicy;
use crate::model::FunctionSpec;
use crate::state::AppState;

/// The bound of every wait for an event (generous: the machine may be busy).
pub const WAIT: Duration = Duration::from_secs(30);

/// The namespace everything is in.
pub const NS: &str = "ns";

/// A server state with the fake driver, function `ns/fn` deployed, and (made with
/// [`flow_harness`]) the flow runner and the event dispatcher running.
pub struct Harness {
    pub state: Arc<AppState>,
    pub driver: Arc<FakeDriver>,
    /// The image digest `ns/fn` runs (kept for a restart on the same data directory).
    pub digest: String,
    /// The dispatcher's and scheduler's tasks, aborted with the harness.
    tasks: Vec<JoinHandle<()>>,
    dir: Arc<TempDir>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A harness whose stand-ins answer `reply`, with `ns/fn` deployed as `spec`.
pub async fn harness(reply: FakeReply, spec: Value) -> Harness {
    harness_on(
        FakeDriver::new(FakeBehaviour::replying(reply)).unwrap(),
        spec,
    )
    .await
}

/// A harness on `driver` (e.g. one whose agents are reached over TCP).
pub async fn harness_on(driver: FakeDriver, spec: Value) -> Harness {
    open(
        Arc::new(tempfile::tempdir().unwrap()),
        driver,
        spec,
        None,
        false,
    )
    .await
}

/// A harness for flows: `ns/fn` (a call timeout of 30 s, one instance taking 20 calls at
/// once), the flow runner installed and the event dispatcher and scheduler running.
pub async fn flow_harness(reply: FakeReply) -> Harness {
    open(
        Arc::new(tempfile::tempdir().unwrap()),
        FakeDriver::new(FakeBehaviour::replying(reply)).unwrap(),
        flow_fn_spec(),
        None,
        true,
    )
    .await
}

fn flow_fn_spec() -> Value {
    serde_json::json!({
        "image": "hello", "timeout": "30s", "network": false,
        "scale": {"max": 1, "concurrency": 20}
    })
}

impl Harness {
    /// Stops this server the way a SIGTERM does (its instances stop without recording an
    /// end, so running flow instances stay `running`), then starts a new one on the same data
    /// directory with `driver`, as `faasbox_server::app::start` does: `ns/fn` back in service, the flow
    /// runner installed, the dispatcher running, interrupted calls marked crashed. Resuming
    /// instances is left to the test.
    pub async fn restart(mut self, driver: FakeDriver) -> Harness {
        for task in self.tasks.drain(..) {
            task.abort();
        }
        self.state.flow_runs.shut_down();
        for pool in self.state.deployments.all_pools() {
            pool.retire();
        }
        faasbox_driver::Driver::stop_all(&*self.driver)
            .await
            .unwrap();
        let (dir, digest) = (self.dir.clone(), self.digest.clone());
        drop(self);
        let h = open(dir, driver, flow_fn_spec(), Some(digest), true).await;
        let now = crate::clock::now_rfc3339();
        faasbox_store::InvocationStore::fail_interrupted_invocations(
            &*h.state.store,
            &faasbox_store::Interruption {
                ended: &now,
                node: h.state.node.as_str(),
                cause: "the server stopped",
            },
        )
        .await
        .unwrap();
        h
    }
}

/// Builds a server state on `dir` (the one place that opens the store): function `ns/fn`
/// deployed as `spec` from `digest`, or from a new one-file image when `None`; with `flows`,
/// the flow runner installed and the dispatcher and scheduler running.
async fn open(
    dir: Arc<TempDir>,
    driver: FakeDriver,
    spec: Value,
    digest: Option<String>,
    flows: bool,
) -> Harness {
    let config = ServerConfig::new(dir.path().join("data"), DEFAULT_LISTEN.parse().unwrap());
    std::fs::create_dir_all(&config.data_dir).unwrap();
    let store: Arc<dyn faasbox_store::Store> =
        Arc::new(SqliteStore::open(&config.database_path()).unwrap());
    let key_source = KeySource::DefaultFile(dir.path().join("master.key"));
    let vault = Arc::new(Vault::open(&key_source, store.clone()).await.unwrap());
    let images = Arc::new(ImageStore::open(config.images_dir()).unwrap());
    let driver = Arc::new(driver);
    let dyn_driver: Arc<dyn faasbox_driver::Driver> = driver.clone();
    let node = crate::cluster::NodeId::load_or_create(&config.data_dir).unwrap();
    let mut state = AppState::new(config, store, images, dyn_driver, vault, key_source, node);
    // Flows' jq expressions run on blocking threads here: a test binary is no expr worker.
    state.evaluator = faasbox_expr::sandbox::Evaluator::in_process();
    let state = Arc::new(state);
    if NamespaceStore::namespace(&*state.store, NS)
        .await
        .unwrap()
        .is_none()
    {
        NamespaceStore::create_namespace(&*state.store, NS, &crate::clock::now_rfc3339())
            .await
            .unwrap();
    }
    let digest = match digest {
        Some(digest) => digest,
        None => import_image(dir.path(), &state.images),
    };
    let spec: FunctionSpec = serde_json::from_value(spec).unwrap();
    state.deployments.activate(
        NS,
        "fn",
        Deployment {
            spec,
            digest: Some(digest.clone()),
            revision: Some(1),
            pull: PullPolicy::Never,
        },
    );
    let mut tasks = Vec::new();
    if flows {
        crate::flows::events::install(&state).await.unwrap();
        tasks = crate::events::spawn(&state);
    }
    Harness {
        state,
        driver,
        digest,
        tasks,
        dir,
    }
}

/// Imports a root filesystem tarball with one file as image `hello` of `ns` (the fake driver
/// never looks inside); its digest.
fn import_image(dir: &Path, images: &ImageStore) -> String {
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    std::fs::write(rootfs.join("hello.txt"), "hello\n").unwrap();
    let archive = dir.join("rootfs.tar");
    let status = std::process::Command::new("tar")
        .arg("-cf")
        .arg(&archive)
        .arg("-C")
        .arg(&rootfs)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success(), "tar failed");
    images
        .import_archive(
            &Scope::Namespace(NS.into()),
            &archive,
            "hello",
            &RootfsOptions {
                cmd: vec!["/hello".into()],
                ..RootfsOptions::default()
            },
        )
        .unwrap()
        .digest
}

/// Deploys flow `ns/path` as `PUT …/flows/{path}` does.
pub async fn deploy_flow(h: &Harness, path: &str, source: &str) {
    if let Err(e) = crate::flows::deployment::deploy(&h.state, NS, path, source.to_string()).await {
        panic!("flow {path} was not deployed: {e:?}");
    }
}

/// Deletes flow `ns/path` as `DELETE …/flows/{path}` does.
pub async fn delete_flow(h: &Harness, path: &str) {
    crate::flows::deployment::remove(&h.state, NS, path)
        .await
        .unwrap();
}

/// Starts an instance of `ns/path` with `input` as `POST …/flows/{path}/run` does; its id.
pub async fn run_flow(h: &Harness, path: &str, input: Value) -> String {
    let id = crate::flows::runner::create(
        &h.state,
        NS,
        path,
        input,
        crate::flows::runner::StartedBy::Api,
    )
    .await
    .unwrap();
    drop(crate::flows::runner::spawn(&h.state, id.clone()));
    id
}

/// The stored instance `id`.
pub async fn instance(h: &Harness, id: &str) -> FlowInstanceRecord {
    FlowStore::instance(&*h.state.store, id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("instance {id} does not exist"))
}

/// Waits until instance `id` has status `status` (panics after [`WAIT`] with what it has).
pub async fn wait_status(h: &Harness, id: &str, status: &str) -> FlowInstanceRecord {
    wait_for(&format!("instance {id} {status}"), move || async move {
        let record = instance(h, id).await;
        if record.status == status {
            Ok(record)
        } else {
            Err(format!("{record:?}"))
        }
    })
    .await
}

/// Waits until instance `id` ended (complete, failed or cancelled).
pub async fn wait_ended(h: &Harness, id: &str) -> FlowInstanceRecord {
    wait_for(&format!("instance {id} to end"), move || async move {
        let record = instance(h, id).await;
        if matches!(record.status.as_str(), "running" | "waiting") {
            Err(format!("{record:?}"))
        } else {
            Ok(record)
        }
    })
    .await
}

/// Polls `probe` every 10 ms until it gives a value; panics with `what` and what `probe` last
/// saw instead after [`WAIT`].
pub async fn wait_for<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let last = match probe().await {
            Ok(value) => return value,
            Err(last) => last,
        };
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited {WAIT:?} for {what}, in vain; last seen: {last}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The instance's output as JSON (panics if it has none).
pub fn output(record: &FlowInstanceRecord) -> Value {
    let text = record
        .output
        .as_deref()
        .unwrap_or_else(|| panic!("instance has no output: {record:?}"));
    serde_json::from_str(text).unwrap()
}

/// The messages of the instance's log, in order.
pub async fn log_lines(h: &Harness, id: &str) -> Vec<String> {
    FlowStore::instance_logs(&*h.state.store, id, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.message)
        .collect()
}
