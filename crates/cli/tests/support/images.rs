//! Function images for tests, built from Debian's busybox-static: a root filesystem tarball
//! (like `docker export`), an OCI image layout made with umoci, and a `docker save` archive
//! converted from it with skopeo.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The entrypoint of every test image: busybox httpd serving the CGI function on 8080.
pub const HTTPD: [&str; 6] = ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h"];
pub const WWW: &str = "/www";

/// The test function: one CGI script whose behaviour the `MODE` environment variable picks.
pub const TEST_FUNCTION: &str = r#"#!/bin/sh
aid="$HTTP_DIREKTIV_ACTIONID"
if [ "$REQUEST_METHOD" = DELETE ]; then
  # A call's cancel: told to the test's gate (support::gate) when there is one.
  if [ -n "$TARGET_PORT" ]; then
    gw=$(ip route | awk '/^default/ {print $3; exit}')
    wget -q -O /dev/null "http://${TARGET_HOST:-$gw}:$TARGET_PORT/seen?host=deleted&tag=$(echo "$aid" | tr -cd 'a-zA-Z0-9')"
  fi
  printf 'Content-Type: text/plain\r\n\r\n'
  exit 0
fi
input_file="$HTTP_DIREKTIV_TEMPDIR/input.json"
cat > "$input_file"
case "$MODE" in
echo)
  wget -q -O /dev/null "http://127.0.0.1:8889/log?aid=$aid&log=endpoint-get+$aid"
  wget -q -O /dev/null --post-data "endpoint-post $aid" "http://127.0.0.1:8889/log?aid=$aid"
  echo "stderr-line $aid" >&2
  httpd_pid=$(awk '{print $4}' /proc/$PPID/stat)
  echo "stdout-line $aid" > /proc/$httpd_pid/fd/1
  printf 'Content-Type: application/json\r\n\r\n'
  cat "$input_file"
  ;;
plain)
  printf 'Content-Type: application/json\r\n\r\n'
  cat "$input_file"
  ;;
kernel)
  printf 'Content-Type: application/json\r\n\r\n{"release":"%s"}' "$(uname -r)"
  ;;
headers)
  printf 'Content-Type: application/json\r\n\r\n'
  printf '{"action":"%s","tempdir":"%s","deadline":"%s","tempdir_exists":"%s"}' \
    "$aid" "$HTTP_DIREKTIV_TEMPDIR" "$HTTP_DIREKTIV_DEADLINE" "$(test -d "$HTTP_DIREKTIV_TEMPDIR" && echo yes)"
  ;;
error)
  printf 'Direktiv-ErrorCode: myapp.input\r\nDirektiv-ErrorMessage: Missing customerId property in JSON input.\r\nContent-Type: application/json\r\n\r\n{"ignored":true}'
  ;;
crash)
  printf 'Direktiv-ErrorMessage: something broke\r\nContent-Type: application/json\r\n\r\n{}'
  ;;
status500)
  printf 'Status: 500 Internal Server Error\r\nContent-Type: text/plain\r\n\r\nbad things'
  ;;
text)
  printf 'Content-Type: text/plain\r\n\r\nhello, not json'
  ;;
sleep)
  sleep 30
  printf 'Content-Type: application/json\r\n\r\n{"slept":true}'
  ;;
gate)
  # Held at the test's gate (support::gate) until released; says which instance it ran in.
  gw=$(ip route | awk '/^default/ {print $3; exit}')
  host=$(cat /proc/sys/kernel/hostname)
  tag=$(tr -cd 'a-zA-Z0-9' < "$input_file")
  passed=$(wget -q -O- "http://${TARGET_HOST:-$gw}:$TARGET_PORT/enter?host=$host&tag=$tag" 2>&1 | head -c 200 | tr -d '"\\\n')
  printf 'Content-Type: application/json\r\n\r\n{"host":"%s","tag":"%s","gate":"%s"}' "$host" "$tag" "$passed"
  ;;
sleep-if-asked)
  # Sleeps 30 s when the input mentions "sleep", else answers at once.
  grep -q sleep "$input_file" && sleep 30
  printf 'Content-Type: application/json\r\n\r\n{"slept":false}'
  ;;
fetch)
  gw=$(ip route | awk '/^default/ {print $3; exit}')
  body=$(timeout 5 wget -q -O- "http://${TARGET_HOST:-$gw}:$TARGET_PORT/hello" 2>&1 | head -c 200 | tr -d '"\\\n')
  printf 'Content-Type: application/json\r\n\r\n{"fetched":"%s"}' "$body"
  ;;
disk)
  case "$(cat "$input_file")" in
  *tempdir*) head -c 200000000 /dev/zero > "$HTTP_DIREKTIV_TEMPDIR/fill" && failed=no || failed=yes ;;
  *fill*) head -c 200000000 /dev/zero > /tmp/fill && failed=no || failed=yes ;;
  esac
  if [ -n "$failed" ]; then
    printf 'Status: 500 Internal Server Error\r\nContent-Type: text/plain\r\n\r\nwriting failed: %s' "$failed"
  else
    printf 'Content-Type: application/json\r\n\r\n{"leftover":"%s"}' "$(test -e /tmp/fill && echo yes || echo no)"
  fi
  ;;
box)
  seccomp=$(awk '/^Seccomp:/ {print $2}' /proc/self/status)
  unshare=$(unshare -U true 2>&1 | head -c 200 | tr -d '"\\\n')
  touch /.faasbox/x 2>/dev/null && control=writable || control=read-only
  uid_map=$(awk '{print $1" "$2" "$3}' /proc/self/uid_map)
  touch /tmp/made-by-function
  nnp=$(awk '/^NoNewPrivs:/ {print $2}' /proc/self/status)
  capbnd=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
  printf 'Content-Type: application/json\r\n\r\n'
  printf '{"seccomp":"%s","unshare":"%s","control":"%s","uid_map":"%s","oom":"%s","agent_oom":"%s","uid":"%s","no_new_privs":"%s","cap_bounding":"%s"}' \
    "$seccomp" "$unshare" "$control" "$uid_map" "$(cat /proc/self/oom_score_adj)" "$(cat /proc/1/oom_score_adj)" "$(id -u)" "$nnp" "$capbnd"
  ;;
oom)
  # A 400 MB buffer filled from /dev/zero: over any size's memory limit but large's. The
  # OOM killer takes dd; the call ends without an answer.
  busybox dd if=/dev/zero of=/dev/null bs=400M count=1 || exit 1
  printf 'Content-Type: application/json\r\n\r\n{"filled":true}'
  ;;
forks)
  # Starts sleepers until a fork fails (the subshell dies there), then kills them with
  # builtins only: no fork is possible before they are gone.
  list="$HTTP_DIREKTIV_TEMPDIR/forked"
  ( i=0; while [ $i -lt 5000 ]; do sleep 60 & echo $! >> "$list"; i=$((i+1)); done ) 2>/dev/null
  n=0
  while read -r pid; do kill "$pid"; n=$((n+1)); done < "$list"
  printf 'Content-Type: application/json\r\n\r\n{"started":%s}' "$n"
  ;;
spin)
  # Two busy processes for SPIN_SECONDS: they want two CPUs.
  busybox yes > /dev/null &
  a=$!
  busybox yes > /dev/null &
  b=$!
  sleep "${SPIN_SECONDS:-3}"
  kill $a $b
  printf 'Content-Type: application/json\r\n\r\n{"spun":%s}' "${SPIN_SECONDS:-3}"
  ;;
*)
  printf 'Direktiv-ErrorCode: test.mode\r\nDirektiv-ErrorMessage: unknown MODE %s\r\n\r\n' "$MODE"
  ;;
esac
"#;

/// Writes the busybox root filesystem with `script` as the CGI function into `root`.
pub fn write_rootfs(root: &Path, script: &str) {
    let mkdir = |p: &str| std::fs::create_dir_all(root.join(p)).expect("mkdir");
    mkdir("bin");
    mkdir("www/cgi-bin");
    mkdir("etc");
    mkdir("tmp");
    std::fs::copy("/bin/busybox", root.join("bin/busybox"))
        .expect("copying /bin/busybox (apt-get install busybox-static)");
    for applet in [
        "sh", "cat", "echo", "printf", "wget", "sleep", "head", "tr", "ip", "awk", "test", "ls",
        "uname", "env", "pwd", "touch", "grep", "false", "true", "timeout", "unshare", "id",
    ] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).expect("symlink");
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").expect("passwd");
    std::fs::write(root.join("etc/group"), "root:x:0:\n").expect("group");
    let cgi = root.join("www/cgi-bin/index.cgi");
    std::fs::write(&cgi, script).expect("cgi");
    run("chmod", &["0755", cgi.to_str().expect("utf8")]);
    run("chmod", &["1777", root.join("tmp").to_str().expect("utf8")]);
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The three archives of one function image.
pub struct TestImages {
    pub rootfs_tar: PathBuf,
    pub oci_dir: PathBuf,
    pub oci_tar: PathBuf,
    pub docker_tar: PathBuf,
    /// Removed with the images; none for [`shared`] ones, which stay for later processes.
    _dir: Option<tempfile::TempDir>,
}

/// Bumped whenever [`build_image`]'s recipe changes, so that [`shared`] builds anew.
const RECIPE: &str = "umoci-1";

/// [`build`] of `script`, made once per content and kept for later test processes, in the
/// target directory's `tmp/faasbox-test-images/<digest>`. For images a test process holds in
/// a `static` until it exits: a static is never dropped, so an image of its own would leave
/// its temporary directory behind, one for every process (nextest runs each test in one).
/// Two images of the same content share the digest: a test needing a distinct image builds
/// its own with [`build`].
pub fn shared(script: &str) -> TestImages {
    let root = std::path::Path::new(option_env!("CARGO_TARGET_TMPDIR").unwrap_or("/tmp"))
        .join("faasbox-test-images");
    std::fs::create_dir_all(&root).expect("creating the shared test images' directory");
    let staging = tempfile::tempdir_in(&root).expect("tempdir");
    write_rootfs(&staging.path().join("content"), script);
    let key = tree_digest(&staging.path().join("content"));
    let done = root.join(&key);
    if !done.join("docker.tar").exists() {
        let built = build_image_in(
            staging.path(),
            |dir| write_rootfs(dir, script),
            &HTTPD,
            &[WWW],
            &["FROM_IMAGE=yes"],
        );
        drop(built);
        for scratch in ["content", "rootfs", "bundle"] {
            let _ = std::fs::remove_dir_all(staging.path().join(scratch));
        }
        // Atomic: another process that built the same meanwhile wins, and ours goes.
        let _ = std::fs::rename(staging.path(), &done);
    }
    TestImages {
        rootfs_tar: done.join("rootfs.tar"),
        oci_dir: done.join("oci"),
        oci_tar: done.join("oci.tar"),
        docker_tar: done.join("docker.tar"),
        _dir: None,
    }
}

/// A digest of the tree at `dir` (names, kinds, modes, contents, link targets) and of
/// [`RECIPE`].
fn tree_digest(dir: &Path) -> String {
    use sha2::{Digest, Sha256};
    use std::os::unix::fs::PermissionsExt;
    fn walk(dir: &Path, base: &Path, hash: &mut Sha256) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("reading the image's tree")
            .flatten()
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).expect("stat");
            let name = path.strip_prefix(base).expect("below the base");
            hash.update(name.as_os_str().as_encoded_bytes());
            hash.update(meta.permissions().mode().to_le_bytes());
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).expect("readlink");
                hash.update(target.as_os_str().as_encoded_bytes());
            } else if meta.is_dir() {
                walk(&path, base, hash);
            } else {
                hash.update(std::fs::read(&path).expect("reading a file of the image"));
            }
            hash.update([0u8]);
        }
    }
    let mut hash = Sha256::new();
    hash.update(RECIPE.as_bytes());
    hash.update(HTTPD.join(" ").as_bytes());
    walk(dir, dir, &mut hash);
    hex::encode(hash.finalize())
}

/// Builds the test function image in every format.
pub fn build(script: &str) -> TestImages {
    build_image(
        |root| write_rootfs(root, script),
        &HTTPD,
        &[WWW],
        &["FROM_IMAGE=yes"],
    )
}

/// Builds an image in every format from the root filesystem `write_root` fills (an empty
/// directory it is given), with `entrypoint`, `cmd` and `env` in its configuration.
pub fn build_image(
    write_root: impl FnOnce(&Path),
    entrypoint: &[&str],
    cmd: &[&str],
    env: &[&str],
) -> TestImages {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut images = build_image_in(dir.path(), write_root, entrypoint, cmd, env);
    images._dir = Some(dir);
    images
}

/// [`build_image`] into the directory `dir` (kept).
fn build_image_in(
    dir: &Path,
    write_root: impl FnOnce(&Path),
    entrypoint: &[&str],
    cmd: &[&str],
    env: &[&str],
) -> TestImages {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(&root).expect("mkdir rootfs");
    write_root(&root);
    let rootfs_tar = tar_rootfs(&root, &dir.join("rootfs.tar"));

    // An OCI layout made by umoci: one layer holding the root filesystem.
    let oci_dir = dir.join("oci");
    let image = format!("{}:latest", oci_dir.display());
    let bundle = dir.join("bundle");
    run("umoci", &["init", "--layout", oci_dir.to_str().unwrap()]);
    run("umoci", &["new", "--image", &image]);
    run(
        "umoci",
        &["unpack", "--image", &image, bundle.to_str().unwrap()],
    );
    run(
        "tar",
        &[
            "-C",
            bundle.join("rootfs").to_str().unwrap(),
            "-xf",
            rootfs_tar.to_str().unwrap(),
        ],
    );
    run(
        "umoci",
        &["repack", "--image", &image, bundle.to_str().unwrap()],
    );
    let mut config = vec!["config".to_string(), "--image".into(), image.clone()];
    for part in entrypoint {
        config.push("--config.entrypoint".into());
        config.push(part.to_string());
    }
    for part in cmd {
        config.push("--config.cmd".into());
        config.push(part.to_string());
    }
    for var in env {
        config.push("--config.env".into());
        config.push(var.to_string());
    }
    run(
        "umoci",
        &config.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    run("umoci", &["gc", "--layout", oci_dir.to_str().unwrap()]);

    let oci_tar = dir.join("oci.tar");
    run(
        "tar",
        &[
            "-C",
            oci_dir.to_str().unwrap(),
            "-cf",
            oci_tar.to_str().unwrap(),
            ".",
        ],
    );

    let docker_tar = dir.join("docker.tar");
    run(
        "skopeo",
        &[
            "copy",
            "--quiet",
            &format!("oci:{image}"),
            &format!(
                "docker-archive:{}:test/function:latest",
                docker_tar.display()
            ),
        ],
    );
    TestImages {
        rootfs_tar,
        oci_dir,
        oci_tar,
        docker_tar,
        _dir: None,
    }
}

/// The query for importing the rootfs tarball with httpd as its entrypoint.
pub fn rootfs_query() -> Vec<(&'static str, String)> {
    vec![
        ("entrypoint", serde_json::to_string(&HTTPD).expect("json")),
        ("cmd", serde_json::to_string(&[WWW]).expect("json")),
    ]
}

/// A Direktiv isolate (file contract): the entrypoint runs once per call on /direktiv-data.
pub const ISOLATE: &str = r#"#!/bin/sh
d=/direktiv-data
case "$MODE" in
echo)
  cat $d/data.in > $d/data.out
  echo "stdout $(cat $d/data.in)"
  echo "stderr $(cat $d/data.in)" >&2
  echo "log-file line" > $d/log.log
  echo "error-file line" > $d/error.log
  ;;
error)
  echo '{"errorCode":"isolate.bad","errorMessage":"bad input"}' > $d/error.json
  echo '{"ignored":1}' > $d/data.out
  ;;
crash)
  echo '{"errorMessage":"no code given"}' > $d/error.json
  ;;
text)
  printf 'plain text' > $d/data.out
  ;;
sleep)
  sleep 30
  ;;
fill)
  head -c 3000000 /dev/zero > $d/big
  echo '{}' > $d/data.out
  ;;
filltmp)
  head -c 100000000 /dev/zero > /tmp/fill
  echo '{}' > $d/data.out
  ;;
leak)
  if [ -e $d/marker ]; then echo '{"leaked":true}' > $d/data.out; else echo '{"leaked":false}' > $d/data.out; fi
  touch $d/marker /tmp/marker-in-tmp
  ;;
esac
"#;

/// An OpenWhisk docker action in shell: the last stdout line is the result.
pub const OPENWHISK_ACTION: &str = r#"#!/bin/sh
# The input is argv[1] when small enough, and always standard input.
input="$1"
[ -n "$input" ] || input=$(cat)
echo "log line for $input" | head -c 200
echo
echo "stderr line" >&2
echo "$input"
"#;

/// Builds a root filesystem tarball of busybox plus `files` (path, content, mode).
pub fn rootfs_tar_with(files: &[(&str, &str, u32)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("rootfs");
    write_rootfs(&root, "#!/bin/sh\n");
    for (path, content, mode) in files {
        let target = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::write(&target, content).expect("write");
        run(
            "chmod",
            &[&format!("{mode:o}"), target.to_str().expect("utf8")],
        );
    }
    let tar = tar_rootfs(&root, &dir.path().join("rootfs.tar"));
    (dir, tar)
}

/// Packs `root` into the tarball `out` (numeric owners, like `docker export`); returns `out`.
fn tar_rootfs(root: &Path, out: &Path) -> PathBuf {
    let (root, out_str) = (root.to_str().expect("utf8"), out.to_str().expect("utf8"));
    run("tar", &["-C", root, "--numeric-owner", "-cf", out_str, "."]);
    out.to_path_buf()
}
