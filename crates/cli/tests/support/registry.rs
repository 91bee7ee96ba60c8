//! A real `docker-registry` (Debian's package) on loopback with htpasswd auth, and a helper
//! that fills it with the test function through `faasbox image push`.

use std::fs;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::Server;

/// A running `docker-registry` with basic auth for one user; killed on drop.
pub struct Registry {
    child: Child,
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    pub fn start(user: &str, password: &str) -> Registry {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = Command::new("htpasswd")
            .args(["-Bbn", user, password])
            .output()
            .expect("htpasswd (apt-get install apache2-utils)");
        assert!(out.status.success(), "htpasswd failed");
        let htpasswd = dir.path().join("htpasswd");
        fs::write(&htpasswd, &out.stdout).expect("writing htpasswd");
        let storage = dir.path().join("storage");
        fs::create_dir(&storage).expect("storage dir");
        let config = dir.path().join("config.yml");
        let log_path = dir.path().join("registry.log");
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let addr = format!("127.0.0.1:{port}");
            fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    \
                     rootdirectory: {}\nhttp:\n  addr: {addr}\nauth:\n  htpasswd:\n    \
                     realm: faasbox-test\n    path: {}\n",
                    storage.display(),
                    htpasswd.display()
                ),
            )
            .expect("writing the registry config");
            let log = fs::File::create(&log_path).expect("registry log");
            let mut child = Command::new("/usr/bin/docker-registry")
                .arg("serve")
                .arg(&config)
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("/usr/bin/docker-registry (apt-get install docker-registry)");
            if wait_ready(&mut child, &addr) {
                return Registry {
                    child,
                    addr,
                    _dir: dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "docker-registry did not start: {}",
            fs::read_to_string(&log_path).unwrap_or_default()
        );
    }

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

/// Whether the registry answers `GET /v2/` within 15 s.
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

/// A registry (user `user`, `password`) holding the image of `oci_tar` as `path`, pushed by
/// `faasbox image push` from a server that imported it; returns the registry and the reference.
pub async fn with_image(
    user: &str,
    password: &str,
    oci_tar: &Path,
    path: &str,
) -> (Registry, String) {
    let registry = Registry::start(user, password);
    let reference = registry.reference(path);
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let r = server.import(oci_tar, "local/function:latest", &[]).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    server.cli_ok(&[
        "registry",
        "add",
        "demo",
        &registry.addr,
        "-u",
        user,
        "--password",
        password,
    ]);
    let out = server.cli_ok(&[
        "image",
        "push",
        "local/function:latest",
        &reference,
        "-n",
        "demo",
    ]);
    assert!(out.contains("sha256:"), "{out}");
    assert!(!out.contains(password), "{out}");
    (registry, reference)
}
