//! Registry passwords never reach the logs: every tracing event (and every
//! `log` record of the HTTP stack), at TRACE level, of pulls and pushes with
//! right and wrong passwords is captured and searched for them. A test
//! binary of its own, because it installs a global subscriber.

mod common;
mod registry_support;

use std::io::Write;
use std::sync::Mutex;

use common::app_layer;
use faasbox_images::{ImageError, PullOptions, RegistryAuth, Scope};
use registry_support::{layout, Registry, Store, ADMIN, ADMIN_PASS};

/// Everything logged in this process.
static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_appear_in_no_log_line_error_or_debug_output() {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(|| Capture)
        .with_ansi(false)
        .try_init()
        .expect("the only subscriber of this test binary");

    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let image = layout(&work.path().join("oci"), vec![app_layer("secret test")]);
    registry.skopeo_copy(&image.source(), "test/secret:latest", &[]);
    let t = Store::new();
    let admin = RegistryAuth {
        username: ADMIN.into(),
        password: ADMIN_PASS.into(),
    };
    let wrong = RegistryAuth {
        username: ADMIN.into(),
        password: "Wr0ng%pass$word*:x".into(),
    };
    let options = PullOptions::default();
    let reference = registry.reference("test/secret");

    let record = t
        .store
        .pull(&Scope::Global, &reference, &admin, &options, &|_| {})
        .await
        .unwrap();
    t.store
        .push(
            &Scope::Global,
            &record.name,
            &registry.reference("test/secret:copy"),
            &admin,
            &options,
            &|_| {},
        )
        .await
        .unwrap();
    let mut errors: Vec<ImageError> = Vec::new();
    errors.push(
        t.store
            .pull(&Scope::Global, &reference, &wrong, &options, &|_| {})
            .await
            .unwrap_err(),
    );
    errors.push(
        t.store
            .push(
                &Scope::Global,
                &record.name,
                &registry.reference("test/secret:other"),
                &wrong,
                &options,
                &|_| {},
            )
            .await
            .unwrap_err(),
    );
    let shown: Vec<String> = errors
        .iter()
        .map(|e| format!("{e} {e:?}"))
        .chain([format!("{admin:?} {wrong:?}")])
        .collect();

    let logs = String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned();
    if let Ok(path) = std::env::var("FAASBOX_DUMP_LOGS") {
        std::fs::write(path, &logs).unwrap();
    }
    assert!(logs.contains("pulling image"), "logging was captured");
    assert!(logs.len() > 1000, "TRACE level captured: {logs}");
    for secret in [ADMIN_PASS, "Wr0ng%pass$word*:x"] {
        assert!(!logs.contains(secret), "a password was logged:\n{logs}");
        for text in &shown {
            assert!(!text.contains(secret), "{text}");
        }
    }
    for e in &errors {
        assert!(matches!(e, ImageError::Unauthorized { .. }), "{e:?}");
        assert!(e.to_string().contains("user 'admin'"), "{e}");
    }
}
