//! Exporting an instance's changes with real runc and the real agent (cmd contract): the tar
//! holds what the commands changed (whiteouts and an opaque directory included, owners as the
//! container sees them, none of the driver's mount points), and appended onto the image in a
//! real image store it gives an image whose instance sees those changes.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use faasbox_images::{ConfigChanges, ImageStore, RootfsOptions, Scope};
use faasbox_proto::InvokeStatus;

use super::agent_e2e::real_agent_fixture;
use super::fixtures::{spec, Fixture};
use faasbox_driver::{AgentClient, Driver, ImageRef, Instance, RuntimeClass};

/// Runs `commands` with the cmd contract in a new instance of `image`; returns the instance
/// id and each command's (output, error).
async fn run_commands(
    fx: &Fixture,
    runtime: RuntimeClass,
    image: &ImageRef,
    commands: &[&str],
) -> (Instance, Vec<(String, String)>) {
    let mut spec = spec(fx, runtime, false);
    spec.image = image.clone();
    spec.env = vec!["PATH=/bin".into()];
    spec.agent.contract = faasbox_proto::Contract::Cmd;
    spec.agent.command = Vec::new();
    let instance = fx.driver.start(spec).await.expect("start");
    let client = AgentClient::at(instance.endpoint.clone());
    let input = serde_json::json!({
        "commands": commands.iter().map(|c| serde_json::json!({"command": c})).collect::<Vec<_>>()
    });
    let outcome = tokio::time::timeout(
        Duration::from_secs(60),
        client.invoke(
            "export-1",
            "2099-01-01T00:00:00Z",
            Bytes::from(input.to_string()),
        ),
    )
    .await
    .expect("the agent answers")
    .expect("invoke");
    assert_eq!(outcome.status, InvokeStatus::Ok, "{outcome:?}");
    let output: serde_json::Value = serde_json::from_str(outcome.output.unwrap().get()).unwrap();
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let results = output
        .as_array()
        .expect("one result per command")
        .iter()
        .map(|r| (text(&r["Output"]), text(&r["Error"])))
        .collect();
    (instance, results)
}

/// Whether the instance's agent answers (it is not left frozen).
async fn answers(instance: &Instance) -> bool {
    let client = AgentClient::at(instance.endpoint.clone());
    matches!(
        tokio::time::timeout(Duration::from_secs(10), client.ready()).await,
        Ok(Ok(ready)) if ready.ready
    )
}

/// name → (type, uid, gid, contents) of each entry of a tar.
fn entries(tar: &Path) -> BTreeMap<String, (tar::EntryType, u64, u64, Vec<u8>)> {
    let mut archive = tar::Archive::new(std::fs::File::open(tar).unwrap());
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let h = e.header().clone();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            let name = String::from_utf8(e.path_bytes().into_owned()).unwrap();
            (
                name,
                (h.entry_type(), h.uid().unwrap(), h.gid().unwrap(), data),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_changes_become_an_image_layer() {
    exported_changes_round_trip(RuntimeClass::Standard).await;
}

/// gVisor writes through the host's overlay too (no user namespace: owners as they are).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_changes_of_a_runsc_instance() {
    if !super::fixtures::runsc_available() {
        return;
    }
    exported_changes_round_trip(RuntimeClass::Sandboxed).await;
}

async fn exported_changes_round_trip(runtime: RuntimeClass) {
    let Some(fx) = real_agent_fixture() else {
        return;
    };
    if fx.driver.id_map().is_none() {
        eprintln!(
            "note: no user namespace here ({:?}); owners are not mapped",
            fx.driver.user_namespace_problem()
        );
    }
    // The busybox layer with a few files of its own, imported into a real image store.
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = fx.layer.parent().unwrap().join("base");
    std::fs::create_dir_all(&rootfs).unwrap();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", fx.layer.display()))
        .arg(&rootfs)
        .status()
        .unwrap();
    assert!(status.success());
    for (path, text) in [
        ("data/keep.txt", "kept\n"),
        ("data/gone.txt", "to be deleted\n"),
        ("opaque/old.txt", "old\n"),
        ("opaque/sub/older.txt", "older\n"),
    ] {
        let file = rootfs.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    }
    let base_tar = tmp.path().join("base.tar");
    let status = std::process::Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&base_tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    let store = ImageStore::open(tmp.path().join("store")).unwrap();
    let base = store
        .import_archive(&Scope::Global, &base_tar, "base", &RootfsOptions::default())
        .unwrap();
    let base_ref = fx.images.add("base", store.layer_dirs(&base.layers));

    let (instance, results) = run_commands(
        &fx,
        runtime,
        &base_ref,
        &[
            "sh -c 'echo created > /created.txt'",
            "sh -c 'echo changed > /data/keep.txt'",
            "rm /data/gone.txt",
            "sh -c 'rm -rf /opaque && mkdir /opaque && echo fresh > /opaque/new.txt'",
            "sh -c 'echo mine > /owned.txt && chown 1000:1000 /owned.txt'",
            "ln -s /created.txt /link",
            "sh -c 'mkdir -p /cache && echo skip > /cache/x'",
        ],
    )
    .await;
    for (i, (_, error)) in results.iter().enumerate() {
        assert_eq!(error, "", "command {i}: {results:?}");
    }

    let layer = tmp.path().join("changes.tar");
    let exported = fx
        .driver
        .export_changes(&instance.id, &layer, &["/cache".to_string()])
        .await
        .expect("export");
    assert!(
        answers(&instance).await,
        "the instance runs on after the export"
    );
    fx.driver.stop(&instance.id).await.unwrap();
    assert_eq!(exported.bytes, std::fs::metadata(&layer).unwrap().len());
    let found = entries(&layer);
    assert_eq!(exported.entries, found.len() as u64);
    let names: Vec<&str> = found.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "created.txt",
            "data/",
            "data/.wh.gone.txt",
            "data/keep.txt",
            "link",
            "opaque/",
            "opaque/.wh..wh..opq",
            "opaque/new.txt",
            "owned.txt",
        ],
        "everything else is the driver's (mount points) or excluded"
    );
    let regular = tar::EntryType::Regular;
    assert_eq!(found["created.txt"], (regular, 0, 0, b"created\n".to_vec()));
    assert_eq!(
        found["data/keep.txt"],
        (regular, 0, 0, b"changed\n".to_vec())
    );
    assert_eq!(
        found["owned.txt"],
        (regular, 1000, 1000, b"mine\n".to_vec())
    );
    assert_eq!(found["data/.wh.gone.txt"].0, regular);
    assert_eq!(found["opaque/.wh..wh..opq"].0, regular);
    assert_eq!(found["link"].0, tar::EntryType::Symlink);

    // Appended onto the base image, the changes are the new image's.
    let built = store
        .append_layer(
            &Scope::Global,
            &base.digest,
            &layer,
            "built",
            &ConfigChanges::default(),
        )
        .expect("append the exported layer");
    assert_eq!(built.layers.len(), 2);
    let built_ref = fx.images.add("built", store.layer_dirs(&built.layers));
    let (instance, results) = run_commands(
        &fx,
        runtime,
        &built_ref,
        &[
            "cat /created.txt",
            "cat /data/keep.txt",
            "ls /data",
            "ls -R /opaque",
            "stat -c %u:%g /owned.txt",
            "readlink /link",
            "ls /cache",
        ],
    )
    .await;
    fx.driver.stop(&instance.id).await.unwrap();
    let outputs: Vec<&str> = results.iter().map(|(o, _)| o.trim()).collect();
    assert_eq!(outputs[0], "created", "{results:?}");
    assert_eq!(outputs[1], "changed", "{results:?}");
    assert_eq!(
        outputs[2], "keep.txt",
        "the deleted file is gone: {results:?}"
    );
    assert_eq!(
        outputs[3], "/opaque:\nnew.txt",
        "the old contents are gone: {results:?}"
    );
    assert_eq!(outputs[4], "1000:1000", "{results:?}");
    assert_eq!(outputs[5], "/created.txt", "{results:?}");
    assert_ne!(
        results[6].1, "",
        "the excluded directory is not in the image: {results:?}"
    );
}

/// An id of another driver, or of no instance, is refused with a clear error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exporting_an_unknown_instance_fails() {
    let Some(fx) = super::fixtures::fixture() else {
        return;
    };
    let dest = fx.state_dir.join("x.tar");
    let err = fx
        .driver
        .export_changes("../../etc", &dest, &[])
        .await
        .unwrap_err();
    assert!(
        matches!(err, faasbox_driver::DriverError::InvalidId(_)),
        "{err}"
    );
    let id = format!("{}-0123456789ab", fx.driver.prefix());
    let err = fx.driver.export_changes(&id, &dest, &[]).await.unwrap_err();
    assert!(err.to_string().contains("is it running"), "{err}");
    assert!(!dest.exists());
}

/// Files count at their apparent size, hard links once per name: a sparse file or many links
/// past the instance's disk stop the export with the reason (the tar would be that large).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_past_the_disk_size_fails() {
    let Some(fx) = real_agent_fixture() else {
        return;
    };
    let fx_image = fx.image.clone();
    let cases: [&[&str]; 2] = [
        &["truncate -s 1G /sparse"],
        // 20 MiB under four names: 80 MiB in the tar.
        &[
            "dd if=/dev/zero of=/data bs=1M count=20",
            "ln /data /link1",
            "ln /data /link2",
            "ln /data /link3",
        ],
    ];
    for commands in cases {
        let (instance, results) =
            run_commands(&fx, RuntimeClass::Standard, &fx_image, commands).await;
        let id = instance.id.clone();
        assert!(results.iter().all(|(_, e)| e.is_empty()), "{results:?}");
        let dest = fx.state_dir.join("big.tar");
        let err = fx
            .driver
            .export_changes(&id, &dest, &[])
            .await
            .expect_err("more than the 64 MiB disk");
        assert!(!dest.exists(), "a failed export leaves no tar");
        assert!(
            answers(&instance).await,
            "the instance runs on after the export"
        );
        fx.driver.stop(&id).await.unwrap();
        assert!(
            err.to_string().contains("more than the instance's disk"),
            "{err}"
        );
    }
}
