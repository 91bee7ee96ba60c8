//! Importing images through the API: every archive format runs, malicious archives are
//! refused and write nothing, a root filesystem with device nodes in /dev (as debootstrap
//! makes) imports without them and runs, and the image's user is looked up in the image.

mod support;

use std::path::Path;

use serde_json::{json, Value};
use support::images;
use support::{json as parse, Server};

#[tokio::test]
async fn every_archive_format_imports_and_runs() {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let built = images::build(images::TEST_FUNCTION);
    let entrypoint = serde_json::to_string(&images::HTTPD).unwrap();
    let cmd = serde_json::to_string(&[images::WWW]).unwrap();
    type Import<'a> = (&'a str, &'a Path, Vec<(&'a str, &'a str)>);
    let imports: Vec<Import> = vec![
        ("from/docker:latest", &built.docker_tar, vec![]),
        ("from/oci:latest", &built.oci_tar, vec![]),
        (
            "from/rootfs:latest",
            &built.rootfs_tar,
            vec![
                ("entrypoint", &entrypoint),
                ("cmd", &cmd),
                ("env", r#"["FROM_IMAGE=rootfs"]"#),
            ],
        ),
    ];
    for (name, archive, query) in &imports {
        let r = server.import(archive, name, query).await;
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, 201, "{name}: {body}");
        assert_eq!(body["name"], *name);
        assert!(body["digest"].as_str().unwrap().starts_with("sha256:"));
        assert_eq!(body["config"]["entrypoint"], json!(images::HTTPD));
    }
    // The OCI layout directory, through the CLI (which packs it).
    server.cli_ok(&[
        "image",
        "import",
        built.oci_dir.to_str().unwrap(),
        "--name",
        "from/oci-dir",
    ]);
    let list = server.get_json("/api/v1/images").await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    for name in [
        "from/docker:latest",
        "from/oci:latest",
        "from/rootfs:latest",
        "from/oci-dir:latest",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    // Docker archive and OCI layout hold the same layer: stored once.
    let layer_of = |name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == name)
            .unwrap()["layers"][0]["diff_id"]
            .clone()
    };
    assert_eq!(layer_of("from/docker:latest"), layer_of("from/oci:latest"));
    let layer_dirs = std::fs::read_dir(server.data_dir.join("images/layers"))
        .unwrap()
        .count();
    assert!(
        layer_dirs <= 2,
        "{layer_dirs} layer directories for two distinct layers"
    );
    for (i, (name, _, _)) in imports.iter().enumerate() {
        let fname = format!("f{i}");
        server
            .deploy(
                "demo",
                &fname,
                json!({"image": name, "envs": {"MODE": "echo"}}),
            )
            .await;
        let (status, _, body) = server.invoke("demo", &fname, r#"{"via":"import"}"#).await;
        assert_eq!(status, 200, "{name}: {}", String::from_utf8_lossy(&body));
        assert_eq!(parse(&body), json!({"via": "import"}));
    }
}

/// One raw tar entry: name, kind, link target, data.
type Entry<'a> = (&'a str, tar::EntryType, &'a str, &'a [u8]);

/// Writes a tar whose entries are given raw.
fn evil_tar(path: &Path, entries: &[Entry]) {
    let file = std::fs::File::create(path).unwrap();
    let mut builder = tar::Builder::new(file);
    for (name, kind, link, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(*kind);
        header.set_mode(0o755);
        header.set_size(data.len() as u64);
        if kind.is_block_special() || kind.is_character_special() {
            header.set_device_major(8).unwrap();
            header.set_device_minor(0).unwrap();
        }
        // Write the raw name bytes so `..` and absolute paths survive.
        let raw = header.as_old_mut();
        raw.name = [0; 100];
        raw.name[..name.len()].copy_from_slice(name.as_bytes());
        if !link.is_empty() {
            raw.linkname = [0; 100];
            raw.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_cksum();
        builder.append(&header, *data).unwrap();
    }
    builder.finish().unwrap();
}

#[tokio::test]
async fn malicious_archives_are_refused_and_write_nothing() {
    let server = Server::start().await;
    let scratch = tempfile::tempdir().unwrap();
    let outside = scratch.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let outside_str = outside.to_str().unwrap().to_string();
    let escape_via_symlink = outside_str.clone();
    use tar::EntryType::{Block, Char, Directory, Link, Regular, Symlink};
    type Case<'a> = (&'a str, Vec<Entry<'a>>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "dotdot",
            vec![
                ("bin/", Directory, "", b""),
                ("../../../../../../tmp/faasbox-evil", Regular, "", b"x"),
            ],
            "escapes",
        ),
        (
            "symlink",
            vec![
                ("evil", Symlink, &escape_via_symlink, b""),
                ("evil/planted", Regular, "", b"x"),
            ],
            "symlink",
        ),
        (
            "dotdot-symlink",
            vec![
                ("up", Symlink, "../../../../../..", b""),
                ("up/tmp/faasbox-evil2", Regular, "", b"x"),
            ],
            "symlink",
        ),
        (
            "hardlink",
            vec![("passwd", Link, "../../../../etc/passwd", b"")],
            "escapes",
        ),
        (
            "chardev",
            vec![("usr/", Directory, "", b""), ("usr/evil", Char, "", b"")],
            "device",
        ),
        ("blockdev", vec![("sda", Block, "", b"")], "device"),
    ];
    let layers_before = std::fs::read_dir(server.data_dir.join("images/layers"))
        .map(|d| d.count())
        .unwrap_or(0);
    for (name, entries, needle) in &cases {
        let archive = scratch.path().join(format!("{name}.tar"));
        evil_tar(&archive, entries);
        let r = server
            .import(
                &archive,
                &format!("evil/{name}"),
                &[("entrypoint", r#"["/bin/sh"]"#)],
            )
            .await;
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, 400, "{name}: {body}");
        let message = body["error"]["message"].as_str().unwrap().to_lowercase();
        assert!(message.contains(needle), "{name}: {message}");
    }
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "something was written outside"
    );
    assert!(!Path::new("/tmp/faasbox-evil").exists() && !Path::new("/tmp/faasbox-evil2").exists());
    assert!(!Path::new("/etc/passwd.faasbox").exists());
    let list = server.get_json("/api/v1/images").await;
    assert_eq!(
        list.as_array().unwrap().len(),
        0,
        "nothing recorded: {list}"
    );
    let layers_after = std::fs::read_dir(server.data_dir.join("images/layers"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(layers_before, layers_after, "no layer stored");
    let tmp = server.data_dir.join("images/tmp");
    assert_eq!(
        std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0),
        0,
        "scratch left in {}",
        tmp.display()
    );
}

#[tokio::test]
async fn garbage_and_empty_uploads_are_clear_errors() {
    let server = Server::start().await;
    let scratch = tempfile::tempdir().unwrap();
    let garbage = scratch.path().join("garbage.bin");
    std::fs::write(&garbage, b"this is not an archive at all").unwrap();
    let r = server.import(&garbage, "x/garbage", &[]).await;
    assert_eq!(r.status(), 400);
    let empty = scratch.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    let r = server.import(&empty, "x/empty", &[]).await;
    assert_eq!(r.status(), 400);
    let r = server.import(&garbage, "Bad Name!", &[]).await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        server
            .get_json("/api/v1/images")
            .await
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

/// A root filesystem tarball as debootstrap or mmdebstrap leave it: the busybox function plus
/// device nodes in `/dev` (and a hard link to one), built with the `tar` crate.
fn rootfs_with_dev(dir: &Path, extra: &[(&str, tar::EntryType, u32, u32)]) -> std::path::PathBuf {
    const SCRIPT: &str = "#!/bin/sh\ncat > /dev/null\nprintf 'Content-Type: application/json\\r\\n\\r\\n'\nprintf '{\"null\":\"%s\"}' \"$(test -c /dev/null && echo char)\"\n";
    let root = dir.join("rootfs");
    images::write_rootfs(&root, SCRIPT);
    let path = dir.join("debootstrap.tar");
    let mut builder = tar::Builder::new(std::fs::File::create(&path).unwrap());
    builder.follow_symlinks(false);
    builder.append_dir_all(".", &root).unwrap();
    let mut dev = tar::Header::new_gnu();
    dev.set_entry_type(tar::EntryType::Directory);
    dev.set_mode(0o755);
    dev.set_size(0);
    builder.append_data(&mut dev, "./dev/", &[][..]).unwrap();
    let nodes = [
        ("./dev/null", tar::EntryType::Char, 1, 3),
        ("./dev/zero", tar::EntryType::Char, 1, 5),
        ("./dev/console", tar::EntryType::Char, 5, 1),
        ("./dev/loop0", tar::EntryType::Block, 7, 0),
    ];
    for (name, kind, major, minor) in nodes.iter().chain(extra) {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(*kind);
        header.set_mode(0o666);
        header.set_size(0);
        header.set_device_major(*major).unwrap();
        header.set_device_minor(*minor).unwrap();
        builder.append_data(&mut header, name, &[][..]).unwrap();
    }
    let mut link = tar::Header::new_gnu();
    link.set_entry_type(tar::EntryType::Link);
    link.set_mode(0o666);
    link.set_size(0);
    builder
        .append_link(&mut link, "./dev/null-too", "./dev/null")
        .unwrap();
    builder.finish().unwrap();
    path
}

#[tokio::test]
async fn a_debootstrap_rootfs_imports_without_its_dev_nodes_and_runs() {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let dir = tempfile::tempdir().unwrap();
    let tar = rootfs_with_dev(dir.path(), &[]);

    // The CLI says what it skipped; the answer holds the note.
    let out = server.cli(&[
        "image",
        "import",
        tar.to_str().unwrap(),
        "--name",
        "demo/deb",
        "-n",
        "demo",
        "--entrypoint",
        "/bin/busybox httpd -f -p 8080 -h /www",
        "-o",
        "json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("note: skipped 5 device nodes under /dev"),
        "{stderr}"
    );
    let answer = parse(&out.stdout);
    let notes = answer["notes"].as_array().expect("notes in the answer");
    assert_eq!(notes.len(), 1, "{answer}");
    assert!(
        notes[0]
            .as_str()
            .unwrap()
            .contains("the runtime provides /dev"),
        "{answer}"
    );
    // A listing is the stored record: no notes.
    let list = server.get_json("/api/v1/namespaces/demo/images").await;
    assert!(list[0].get("notes").is_none(), "{list}");

    // It runs, with the runtime's /dev/null.
    server
        .deploy("demo", "deb", json!({"image": "demo/deb"}))
        .await;
    let (status, _, body) = server.invoke("demo", "deb", "{}").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(parse(&body), json!({"null": "char"}));

    // A device node outside /dev is still refused, by name.
    let dir = tempfile::tempdir().unwrap();
    let tar = rootfs_with_dev(dir.path(), &[("./usr/sda", tar::EntryType::Block, 8, 0)]);
    let r = server
        .import(&tar, "demo/bad", &[("entrypoint", r#"["/bin/sh"]"#)])
        .await;
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("'usr/sda' outside /dev"), "{message}");
}

/// A CGI function that answers the uid and gid it runs as.
const WHO_AM_I: &str = "#!/bin/sh\nprintf 'Content-Type: application/json\\r\\n\\r\\n{\"uid\":%s,\"gid\":%s}' \"$(id -u)\" \"$(id -g)\"\n";

/// The image's user (`user` of a root filesystem import) runs the function: a name is looked up
/// in the image's own /etc/passwd and /etc/group (read from its layers in the image store, not
/// the host's files), and a name the image lacks fails the call with the reason.
#[tokio::test]
async fn the_images_user_is_looked_up_in_the_image() {
    let server = Server::start().await;
    server.create_namespace("demo").await;
    let (_dir, tar) = images::rootfs_tar_with(&[
        ("www/cgi-bin/index.cgi", WHO_AM_I, 0o755),
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nweb:x:4033:4044::/:/bin/sh\n",
            0o644,
        ),
        ("etc/group", "root:x:0:\nstaff:x:4050:\n", 0o644),
    ]);
    let query = images::rootfs_query();
    let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for (name, user) in [
        ("user/web", "web"),
        ("user/mixed", "web:staff"),
        ("user/ghost", "ghost"),
    ] {
        let mut query = query.clone();
        query.push(("user", user));
        let r = server.import(&tar, name, &query).await;
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
        let function = name.trim_start_matches("user/");
        server
            .deploy("demo", function, json!({"image": name}))
            .await;
    }
    for (function, expected) in [
        ("web", json!({"uid": 4033, "gid": 4044})),
        ("mixed", json!({"uid": 4033, "gid": 4050})),
    ] {
        let (status, _, body) = server.invoke("demo", function, "{}").await;
        assert_eq!(
            status,
            200,
            "{function}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(parse(&body), expected, "{function}");
    }
    let (status, _, body) = server.invoke("demo", "ghost", "{}").await;
    let text = String::from_utf8_lossy(&body);
    assert_ne!(status, 200, "{text}");
    assert!(
        text.contains("the image's user 'ghost' is not in its /etc/passwd"),
        "{status}: {text}"
    );
}
