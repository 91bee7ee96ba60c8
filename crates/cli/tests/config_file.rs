//! `faasbox server --config FILE`: a real server takes its settings from a TOML file, flags
//! and their environment variables win over it, and a bad file stops the start before
//! anything is created.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{free_port, FAASBOX};

#[tokio::test]
async fn the_server_runs_with_the_settings_of_its_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("from-file");
    let (file_port, flag_port) = (free_port(), free_port());
    let config = dir.path().join("faasbox.toml");
    std::fs::write(
        &config,
        format!(
            "# faasbox server settings\ndata-dir = \"{}\"\nlisten = \"127.0.0.1:{file_port}\"\n\
             queue-limit = 5\nlog = \"info\"\n",
            data_dir.display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("server.log")).unwrap();

    // The file gives the data dir; the flag's listen address wins over the file's.
    let mut child = Command::new(FAASBOX)
        .args(["server", "--listen", &format!("127.0.0.1:{flag_port}")])
        .env("FAASBOX_CONFIG", &config)
        .env_remove("FAASBOX_DATA_DIR")
        .env_remove("FAASBOX_LISTEN")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let healthy = answers_health(&http, flag_port).await;
    let server_log = || std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(
        healthy,
        "server did not answer on the flag's address:\n{}",
        server_log()
    );
    assert!(status.success(), "{}", server_log());
    assert!(
        data_dir.join("admin.token").exists(),
        "the data dir of the file was used"
    );
    assert!(
        server_log().contains(&format!("configuration read from {}", config.display())),
        "{}",
        server_log()
    );
}

#[tokio::test]
async fn environment_variables_win_over_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let (file_dir, env_dir) = (dir.path().join("from-file"), dir.path().join("from-env"));
    let (file_port, env_port) = (free_port(), free_port());
    let config = dir.path().join("faasbox.toml");
    std::fs::write(
        &config,
        format!(
            "data-dir = \"{}\"\nlisten = \"127.0.0.1:{file_port}\"\n",
            file_dir.display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
    let mut child = Command::new(FAASBOX)
        .arg("server")
        .env("FAASBOX_CONFIG", &config)
        .env("FAASBOX_DATA_DIR", &env_dir)
        .env("FAASBOX_LISTEN", format!("127.0.0.1:{env_port}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let healthy = answers_health(&http, env_port).await;
    let file_port_answers = http
        .get(format!("http://127.0.0.1:{file_port}/api/v1/health"))
        .send()
        .await
        .is_ok();
    let server_log = || std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(
        healthy,
        "server did not answer on FAASBOX_LISTEN's address:\n{}",
        server_log()
    );
    assert!(status.success(), "{}", server_log());
    assert!(!file_port_answers, "the file's listen address was used");
    assert!(
        env_dir.join("admin.token").exists(),
        "FAASBOX_DATA_DIR's directory was not used"
    );
    assert!(!file_dir.exists(), "the file's data dir was used");
}

#[test]
fn a_bad_config_file_stops_the_start_with_where_and_what() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("never");
    let config = dir.path().join("faasbox.toml");
    std::fs::write(
        &config,
        format!("data-dir = \"{}\"\nqueue_limit = 5\n", data_dir.display()),
    )
    .unwrap();
    let out = Command::new(FAASBOX)
        .args(["server", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("unknown field `queue_limit`"), "{stderr}");
    assert!(stderr.contains("line 2"), "{stderr}");
    assert!(stderr.contains("queue-limit"), "the fix is named: {stderr}");
    assert!(!data_dir.exists(), "nothing was created");
}

#[test]
fn an_unknown_network_helper_stops_the_start_and_names_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("never");
    let config = dir.path().join("faasbox.toml");
    std::fs::write(
        &config,
        format!(
            "data-dir = \"{}\"\nnetwork-helper = \"slirp\"\n",
            data_dir.display()
        ),
    )
    .unwrap();
    let from_file = Command::new(FAASBOX)
        .args(["server", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let from_flag = Command::new(FAASBOX)
        .args(["server", "--network-helper", "vpnkit", "--data-dir"])
        .arg(&data_dir)
        .output()
        .unwrap();
    for (out, given) in [(from_file, "slirp"), (from_flag, "vpnkit")] {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(stderr.contains(given), "{stderr}");
        assert!(
            stderr.contains("pasta") && stderr.contains("slirp4netns"),
            "the fix is named: {stderr}"
        );
    }
    assert!(!data_dir.exists(), "nothing was created");
}

/// Whether a server answers `GET /api/v1/health` on 127.0.0.1:`port` within 30 s.
async fn answers_health(http: &reqwest::Client, port: u16) -> bool {
    let health = format!("http://127.0.0.1:{port}/api/v1/health");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if matches!(http.get(&health).send().await, Ok(r) if r.status().is_success()) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[test]
fn an_unknown_oci_runtime_stops_the_start_and_names_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("never");
    let config = dir.path().join("faasbox.toml");
    std::fs::write(
        &config,
        format!(
            "data-dir = \"{}\"\noci-runtime = \"youki\"\n",
            data_dir.display()
        ),
    )
    .unwrap();
    let from_file = Command::new(FAASBOX)
        .args(["server", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let from_flag = Command::new(FAASBOX)
        .args(["server", "--oci-runtime", "kata", "--data-dir"])
        .arg(&data_dir)
        .output()
        .unwrap();
    for (out, given) in [(from_file, "youki"), (from_flag, "kata")] {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(stderr.contains(given), "{stderr}");
        assert!(
            stderr.contains("runc") && stderr.contains("crun"),
            "the fix is named: {stderr}"
        );
    }
    assert!(!data_dir.exists(), "nothing was created");
}
