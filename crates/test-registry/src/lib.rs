//! Test support shared by the image store's and the CLI's registry tests: a real
//! `docker-registry` (Debian's package of distribution/registry 2.x) on a free loopback port,
//! with htpasswd users or bearer-token auth. Only used as a dev-dependency. Also the small
//! network helpers the runc driver's and the CLI's tests share: [`free_port`] and
//! [`OutsideAddress`]. And the one skip policy every crate's tests follow: [`cannot_run`];
//! and where the driver crates' tests find the built agent: [`agent_binary`]. And a real
//! PostgreSQL in a temporary directory: [`postgres`].

mod outside;
pub mod postgres;
mod skip;

pub use outside::{OutsideAddress, OutsideAddress6};
pub use skip::{cannot_run, SKIP_LOG_ENV};

use std::fs;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The `service` of a token-auth registry (the `aud` its tokens must carry).
pub const TOKEN_SERVICE: &str = "faasbox-test";
/// The `issuer` of a token-auth registry (the `iss` its tokens must carry).
pub const TOKEN_ISSUER: &str = "faasbox-test-issuer";

/// A running `docker-registry`; killed on drop.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:<port>`.
    pub addr: String,
    /// Holds the config, the storage and `registry.log`.
    pub dir: tempfile::TempDir,
}

impl Registry {
    /// A registry with basic (htpasswd) auth for `users` (user, password).
    pub fn start_htpasswd(users: &[(&str, &str)]) -> Registry {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut lines = String::new();
        for (user, password) in users {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .expect("htpasswd (apt-get install apache2-utils)");
            assert!(out.status.success(), "htpasswd failed");
            lines.push_str(String::from_utf8_lossy(&out.stdout).trim());
            lines.push('\n');
        }
        let htpasswd = dir.path().join("htpasswd");
        fs::write(&htpasswd, lines).expect("writing htpasswd");
        let auth = format!(
            "auth:\n  htpasswd:\n    realm: faasbox-test\n    path: {}\n",
            htpasswd.display()
        );
        Registry::start_with(dir, &auth)
    }

    /// A registry that wants bearer tokens from `realm`, signed by the certificate in the PEM
    /// file `cert`.
    pub fn start_token(realm: &str, cert: &Path) -> Registry {
        let auth = format!(
            "auth:\n  token:\n    realm: {realm}\n    service: {TOKEN_SERVICE}\n    \
             issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
            cert.display()
        );
        Registry::start_with(tempfile::tempdir().expect("tempdir"), &auth)
    }

    /// Starts the registry on a free port; tries another port when the chosen one was taken
    /// in the meantime.
    fn start_with(dir: tempfile::TempDir, auth: &str) -> Registry {
        let storage = dir.path().join("storage");
        fs::create_dir(&storage).expect("storage dir");
        let config = dir.path().join("config.yml");
        let log_path = dir.path().join("registry.log");
        for _ in 0..3 {
            let addr = format!("127.0.0.1:{}", free_port());
            fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    \
                     rootdirectory: {}\nhttp:\n  addr: {addr}\n{auth}",
                    storage.display(),
                ),
            )
            .expect("writing the registry config");
            let log = fs::File::create(&log_path).expect("registry log");
            let mut child = Command::new("/usr/bin/docker-registry")
                .arg("serve")
                .arg(&config)
                .stdout(log.try_clone().expect("registry log"))
                .stderr(log)
                .spawn()
                .expect("/usr/bin/docker-registry (apt-get install docker-registry)");
            if wait_ready(&mut child, &addr) {
                return Registry { child, addr, dir };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "docker-registry did not start: {}",
            fs::read_to_string(&log_path).unwrap_or_default()
        );
    }

    /// What the registry logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// `127.0.0.1:<port>/<path>`.
    pub fn reference(&self, path: &str) -> String {
        format!("{}/{path}", self.addr)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The agent binary for tests that run the real one: `FAASBOX_AGENT_BINARY`, else
/// `faasbox-agent` next to the calling test executable's `deps` directory (where
/// `cargo build -p faasbox-agent` puts it). `None` when it is not built.
pub fn agent_binary() -> Option<std::path::PathBuf> {
    built_binary("FAASBOX_AGENT_BINARY", "faasbox-agent")
}

/// The `faasbox-oci` binary (`--oci-runtime libcontainer`) of this build: `FAASBOX_OCI_BINARY`
/// or next to the test executable's directory, as for [`agent_binary`].
pub fn oci_binary() -> Option<std::path::PathBuf> {
    built_binary("FAASBOX_OCI_BINARY", "faasbox-oci")
}

/// The path in the environment variable `var`, else the binary `name` next to the calling test
/// executable's `deps` directory, if it is built.
fn built_binary(var: &str, name: &str) -> Option<std::path::PathBuf> {
    if let Some(path) = std::env::var_os(var) {
        return Some(path.into());
    }
    let exe = std::env::current_exe().ok()?;
    let candidate = exe.parent()?.parent()?.join(name);
    candidate.is_file().then_some(candidate)
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Waits until the registry at `addr` answers `GET /v2/` as a registry (not some other server
/// that took the port); `false` if it exits or does not answer within 15 s.
fn wait_ready(child: &mut Child, addr: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if let Ok(mut conn) = TcpStream::connect(addr) {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
            let mut answer = String::new();
            if conn.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n").is_ok()
                && conn.read_to_string(&mut answer).is_ok()
            {
                return answer
                    .to_ascii_lowercase()
                    .contains("docker-distribution-api-version");
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
