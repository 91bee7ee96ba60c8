//! Test fixtures: a busybox image layer (and the table of test images the driver resolves
//! image references through), a driver in a temporary state directory whose "agent" is the
//! fake agent, and instance specs.
//!
//! The drivers run the standard class with runc, or with crun when
//! `FAASBOX_TEST_OCI_RUNTIME=crun` is set: the whole suite runs with either
//! ([`oci_runtime_under_test`]); `crun.rs` runs the key cases with crun in any case.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faasbox_proto::AgentConfig;
use tempfile::TempDir;

use super::fake_agent;
use crate::{DriverConfig, LayerSource, RuncDriver, StartOptions};
use faasbox_driver::{ImageRef, Instance, InstanceSpec, Limits, OciRuntime, RuntimeClass};

const BUSYBOX: &str = "/bin/busybox";

/// The OCI runtime the fixtures' drivers run the standard class with:
/// `FAASBOX_TEST_OCI_RUNTIME` (`runc` or `crun`), runc when unset.
pub(crate) fn oci_runtime_under_test() -> OciRuntime {
    match std::env::var("FAASBOX_TEST_OCI_RUNTIME") {
        Ok(name) => name
            .parse()
            .unwrap_or_else(|e| panic!("FAASBOX_TEST_OCI_RUNTIME: {e}")),
        Err(_) => OciRuntime::Runc,
    }
}

/// [`DriverConfig::new`] with this build's `faasbox-oci`, which is not next to a fake agent
/// (the test executable).
pub(crate) fn driver_config(
    state_dir: impl Into<PathBuf>,
    agent: impl Into<PathBuf>,
) -> DriverConfig {
    let mut config = DriverConfig::new(state_dir, agent);
    if let Some(oci) = faasbox_test_registry::oci_binary() {
        config.libcontainer_path = oci;
    }
    config
}

/// The test images the fixtures' drivers know: manifest digests (made up) and their layer
/// directories, as the server's image store gives them.
#[derive(Default)]
pub(crate) struct TestImages(Mutex<HashMap<String, Vec<PathBuf>>>);

impl TestImages {
    /// Adds image `name` made of `layers` (bottom first); returns its reference.
    pub fn add(&self, name: &str, layers: Vec<PathBuf>) -> ImageRef {
        let image = ImageRef {
            name: name.to_string(),
            digest: format!("sha256:{:0>64}", hex_of(name)),
        };
        self.0.lock().unwrap().insert(image.digest.clone(), layers);
        image
    }
}

fn hex_of(name: &str) -> String {
    name.bytes().map(|b| format!("{b:02x}")).collect()
}

impl LayerSource for TestImages {
    fn layer_dirs(&self, image: &ImageRef) -> Result<Vec<PathBuf>, String> {
        self.0
            .lock()
            .unwrap()
            .get(&image.digest)
            .cloned()
            .ok_or_else(|| "not one of the test images".to_string())
    }
}

/// A driver in its own state directory plus a busybox layer.
pub(crate) struct Fixture {
    pub driver: RuncDriver,
    pub layer: PathBuf,
    /// What the driver resolves images through.
    pub images: Arc<TestImages>,
    /// The busybox image (of [`Fixture::layer`]).
    pub image: ImageRef,
    pub state_dir: PathBuf,
    pub agent: PathBuf,
    /// What runs the standard class.
    pub oci_runtime: OciRuntime,
    /// Keeps the directories alive for the test's duration.
    pub _tmp: TempDir,
}

/// Whatever a test leaves running (a failed assertion skips its `stop`) is removed before the
/// temporary directory goes: a runtime whose state directory vanished cannot delete its
/// containers any more. The state directory's tmpfs is unmounted too.
impl Drop for Fixture {
    fn drop(&mut self) {
        let state_dir = self.state_dir.clone();
        let agent = self.agent.clone();
        let oci_runtime = self.oci_runtime;
        // On a thread of its own: the test's runtime may be the one dropping us.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            runtime.block_on(async {
                let images = Arc::new(TestImages::default());
                let mut config = driver_config(&state_dir, &agent);
                config.oci_runtime = oci_runtime;
                let driver = RuncDriver::new(config, images)?;
                let report = faasbox_driver::Driver::cleanup_leftovers(&driver).await?;
                // And the state directory's tmpfs goes, as at a server's clean stop (not by
                // `stop_all`: a second cleanup, with its runtimes' `list`, is slow under
                // emulation in the cgroup v2 VM).
                crate::state_tmpfs::release(driver.state_dir());
                Ok::<_, faasbox_driver::DriverError>(report)
            })
        });
        match cleanup.join() {
            Ok(Ok(report)) if !report.is_empty() => {
                eprintln!("fixture cleanup removed {report}")
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => eprintln!("fixture cleanup failed: {e}"),
            Err(_) => eprintln!("fixture cleanup panicked"),
        }
    }
}

/// `None` when this machine cannot run containers (not root, or no runc or busybox), after
/// [`faasbox_test_registry::cannot_run`] has failed the test under `CI` or reported it skipped.
pub(crate) fn fixture() -> Option<Fixture> {
    fixture_with_agent(std::env::current_exe().ok()?)
}

pub(crate) fn fixture_with_agent(agent: PathBuf) -> Option<Fixture> {
    fixture_configured(agent, |_| {})
}

pub(crate) fn fixture_configured(
    agent: PathBuf,
    configure: impl FnOnce(&mut DriverConfig),
) -> Option<Fixture> {
    if !nix::unistd::geteuid().is_root() {
        faasbox_test_registry::cannot_run("container tests need root");
        return None;
    }
    if !Path::new(BUSYBOX).exists() {
        faasbox_test_registry::cannot_run(&format!(
            "{BUSYBOX} is missing (install the package busybox-static)"
        ));
        return None;
    }
    let tmp = tempfile::Builder::new()
        .prefix("fbxt")
        .tempdir()
        .expect("temp dir");
    // 0711: container root of a user namespace must pass through it (whatever the umask).
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o711))
        .expect("chmod temp dir");
    let layer = busybox_layer(&tmp.path().join("layers"));
    let state_dir = tmp.path().join("run");
    let mut config = driver_config(&state_dir, &agent);
    config.start_timeout = Duration::from_secs(30);
    config.oci_runtime = oci_runtime_under_test();
    configure(&mut config);
    let images = Arc::new(TestImages::default());
    let image = images.add("busybox", vec![layer.clone()]);
    let oci_runtime = config.oci_runtime;
    let driver = match RuncDriver::new(config, images.clone()) {
        Ok(driver) => driver,
        Err(e) => {
            faasbox_test_registry::cannot_run(&format!("the driver cannot start here: {e}"));
            return None;
        }
    };
    Some(Fixture {
        driver,
        layer,
        images,
        image,
        state_dir,
        agent,
        oci_runtime,
        _tmp: tmp,
    })
}

/// A second driver on the same state directory (what a restarted server makes).
pub(crate) fn reopen(fixture: &Fixture, start_timeout: Duration) -> RuncDriver {
    reopen_with(
        fixture,
        start_timeout,
        faasbox_driver::NetworkHelper::default(),
    )
}

/// [`reopen`] with the network helper `helper`.
pub(crate) fn reopen_with(
    fixture: &Fixture,
    start_timeout: Duration,
    helper: faasbox_driver::NetworkHelper,
) -> RuncDriver {
    let mut config = driver_config(&fixture.state_dir, &fixture.agent);
    config.start_timeout = start_timeout;
    config.network_helper = helper;
    config.oci_runtime = fixture.oci_runtime;
    RuncDriver::new(config, fixture.images.clone()).expect("driver on the same state dir")
}

/// An image layer with busybox and a symlink for each applet in `/bin`, a CGI echo function
/// for busybox httpd in `/www`, and the usual top-level directories.
pub(crate) fn busybox_layer(dir: &Path) -> PathBuf {
    let layer = dir.join("busybox");
    let bin = layer.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(BUSYBOX, bin.join("busybox")).unwrap();
    let list = std::process::Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let applet = applet.trim();
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        let _ = std::os::unix::fs::symlink("busybox", bin.join(applet));
    }
    for sub in [
        "etc",
        "root",
        "proc",
        "sys",
        "dev",
        "www/cgi-bin",
        "usr/bin",
    ] {
        std::fs::create_dir_all(layer.join(sub)).unwrap();
    }
    let tmp = layer.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::write(layer.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(layer.join("etc/group"), "root:x:0:\n").unwrap();
    // A Direktiv HTTP function: busybox httpd runs this for `POST /` (index.cgi).
    let cgi = layer.join("www/cgi-bin/index.cgi");
    std::fs::write(
        &cgi,
        "#!/bin/sh\nbody=$(cat)\nprintf 'Content-Type: application/json\\r\\n\\r\\n'\nprintf '%s' \"$body\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&cgi, std::fs::Permissions::from_mode(0o755)).unwrap();
    layer
}

/// A spec for the busybox layer.
pub(crate) fn spec(fixture: &Fixture, runtime: RuntimeClass, network: bool) -> InstanceSpec {
    InstanceSpec {
        function: "test/echo".into(),
        image: fixture.image.clone(),
        env: fake_agent::env(),
        // From JSON, so fields the protocol gains later take their defaults.
        agent: serde_json::from_value::<AgentConfig>(serde_json::json!({
            "contract": "http",
            "command": ["/bin/httpd", "-f", "-p", "8080"],
            "ready_timeout_ms": 20_000,
            "function": "test/echo",
        }))
        .expect("agent config"),
        limits: Limits {
            memory_bytes: 256 << 20,
            cpu_millis: 1000,
            pids: 256,
        },
        runtime,
        network,
        disk_bytes: 64 << 20,
        scratch: Vec::new(),
    }
}

/// Start options that run the fake agent and wait for its readiness.
pub(crate) fn with_fake_agent() -> StartOptions {
    StartOptions {
        args: Some(fake_agent::args()),
        wait_ready: true,
    }
}

/// Start options that run `args` instead of the agent and do not wait.
pub(crate) fn running(args: &[&str]) -> StartOptions {
    StartOptions {
        args: Some(args.iter().map(|a| a.to_string()).collect()),
        wait_ready: false,
    }
}

impl Fixture {
    /// Starts an instance of class `class` (with network or not) whose container process
    /// sleeps, not waiting for an agent (there is none).
    pub(crate) async fn start_sleeping(&self, class: RuntimeClass, network: bool) -> Instance {
        self.driver
            .start_with(spec(self, class, network), running(&["/bin/sleep", "1000"]))
            .await
            .expect("start")
    }
}

/// True when runsc is installed (tests of the gVisor variant are skipped otherwise).
pub(crate) fn runsc_available() -> bool {
    let found = crate::command_available("runsc");
    if !found {
        faasbox_test_registry::cannot_run("runsc is not installed (install the package runsc)");
    }
    found
}

/// True when slirp4netns, the default network helper, is installed (tests that start
/// instances with network are skipped otherwise).
pub(crate) fn network_available() -> bool {
    let found = crate::command_available("slirp4netns");
    if !found {
        faasbox_test_registry::cannot_run(
            "slirp4netns is not installed (install the package slirp4netns)",
        );
    }
    found
}

/// A fixture whose driver connects namespaces with pasta (chosen explicitly: slirp4netns is the
/// default), the host's loopback reachable when `host_loopback`; `None` (after
/// [`faasbox_test_registry::cannot_run`]) where containers or pasta are not available.
pub(crate) fn pasta_fixture(host_loopback: bool) -> Option<Fixture> {
    if !pasta_available() {
        return None;
    }
    fixture_configured(std::env::current_exe().ok()?, |config| {
        config.network_helper = faasbox_driver::NetworkHelper::Pasta;
        config.allow_host_loopback = host_loopback;
    })
}

/// True when pasta is installed.
pub(crate) fn pasta_available() -> bool {
    let found = crate::command_available("pasta");
    if !found {
        faasbox_test_registry::cannot_run("pasta is not installed (install the package passt)");
    }
    found
}

/// True when `dir` is the mount point of the driver's state tmpfs.
pub(crate) fn state_tmpfs_mounted(dir: &Path) -> bool {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dir = dir.canonicalize().unwrap();
    table.lines().any(|line| {
        line.contains(" - tmpfs faasbox-state ")
            && line.split(' ').nth(4) == Some(dir.to_str().unwrap())
    })
}
