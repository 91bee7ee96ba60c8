//! Functions from code: `faasbox base-image create|ls|get|rm`, `faasbox image build` and
//! `image builds ls|get|logs|rm`, `faasbox fn create` and `fn build-logs`. A build runs on the
//! server; the CLI follows its log by asking for the lines after the last one it printed until
//! the server says the build is done, then prints READY or fails with the reason.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context as _};
use reqwest::Method;
use serde_json::{json, Value};

use super::namespaces::text;
use super::short_digest;
use crate::cli::{BaseImageCommand, BuildArgs, BuildsCommand, CreateArgs, OutputFormat};
use crate::client::{split_function, Client};
use crate::output::{outln, print, print_json, Table};

/// How often a followed build log is asked for new lines.
const POLL: Duration = Duration::from_millis(400);

/// The most a function's source may hold, its files' bytes together, before packing.
const MAX_SOURCE_BYTES: u64 = 64 << 20;
/// The most files and directories a function's source may hold.
const MAX_SOURCE_ENTRIES: usize = 10_000;

/// `NAME` with `-n NS`, or `NS/NAME`: the namespace and the name.
fn scoped(name: &str, namespace: Option<&str>) -> anyhow::Result<(String, String)> {
    match (name.split_once('/'), namespace) {
        (Some((ns, n)), given) if !ns.is_empty() && !n.is_empty() && !n.contains('/') => {
            if given.is_some_and(|g| g != ns) {
                bail!(
                    "'{name}' names namespace '{ns}' but -n says '{}'",
                    given.unwrap_or("")
                );
            }
            Ok((ns.to_string(), n.to_string()))
        }
        (Some(_), _) => bail!("'{name}' is not NAME or NAMESPACE/NAME"),
        (None, Some(ns)) => Ok((ns.to_string(), name.to_string())),
        (None, None) => bail!("which namespace? Give -n NAMESPACE, or write NAMESPACE/{name}"),
    }
}

fn base_images_path(ns: &str) -> String {
    format!("/api/v1/namespaces/{ns}/base-images")
}

fn builds_path(ns: &str) -> String {
    format!("/api/v1/namespaces/{ns}/image-builds")
}

fn code_path(function: &str) -> anyhow::Result<String> {
    let (ns, name) = split_function(function)?;
    Ok(format!("/api/v1/namespaces/{ns}/functions/{name}/code"))
}

fn base_image_row(b: &Value) -> Vec<String> {
    vec![
        text(&b["name"]),
        text(&b["language"]),
        text(&b["image"]),
        short_digest(&b["digest"]),
        status_text(b),
    ]
}

const BASE_IMAGE_HEADER: [&str; 5] = ["NAME", "LANGUAGE", "IMAGE", "DIGEST", "STATUS"];

/// The most of a reason a table shows (the whole of it is in `get -o json` and the log).
const REASON_IN_TABLE: usize = 80;

/// The status, with the first line of the reason (shortened) when there is one.
fn status_text(view: &Value) -> String {
    let reason = view["reason"].as_str().and_then(|r| r.lines().next());
    match reason.map(str::trim).filter(|r| !r.is_empty()) {
        Some(reason) if reason.chars().count() > REASON_IN_TABLE => {
            let short: String = reason.chars().take(REASON_IN_TABLE).collect();
            format!("{} ({short}…)", text(&view["status"]))
        }
        Some(reason) => format!("{} ({reason})", text(&view["status"])),
        None => text(&view["status"]),
    }
}

/// Prints a finished build's view (in text only when it is READY: a failure's reason is the
/// error printed next), then fails unless it is READY.
fn finish(
    format: OutputFormat,
    view: &Value,
    what: &str,
    table: impl FnOnce() -> Table,
) -> anyhow::Result<()> {
    if format == OutputFormat::Json || view["status"] == "READY" {
        print(format, view, table);
    }
    fail_unless_ready(view, what)
}

pub async fn base_image(
    client: &Client,
    format: OutputFormat,
    command: BaseImageCommand,
) -> anyhow::Result<()> {
    match command {
        BaseImageCommand::Create {
            name,
            reference,
            language,
            namespace,
        } => {
            let (ns, name) = scoped(&name, namespace.as_deref())?;
            let body = json!({ "name": name, "image": reference, "language": language.as_str() });
            let created: Value = client
                .json(
                    client
                        .request(Method::POST, &base_images_path(&ns))
                        .json(&body),
                )
                .await?;
            print(format, &created, || {
                Table::new(BASE_IMAGE_HEADER.to_vec()).row(base_image_row(&created))
            });
        }
        BaseImageCommand::Ls { namespace } => {
            let list: Vec<Value> = client.get(&base_images_path(&namespace)).await?;
            print(format, &list, || {
                Table::new(BASE_IMAGE_HEADER.to_vec()).rows(list.iter().map(base_image_row))
            });
        }
        BaseImageCommand::Get { name, namespace } => {
            let (ns, name) = scoped(&name, namespace.as_deref())?;
            let shown: Value = client
                .get(&format!("{}/{name}", base_images_path(&ns)))
                .await?;
            print(format, &shown, || {
                Table::new(BASE_IMAGE_HEADER.to_vec()).row(base_image_row(&shown))
            });
        }
        BaseImageCommand::Rm { name, namespace } => {
            let (ns, name) = scoped(&name, namespace.as_deref())?;
            client
                .send(client.request(Method::DELETE, &format!("{}/{name}", base_images_path(&ns))))
                .await?;
            let deleted = format!("{ns}/{name}");
            print(format, &json!({ "deleted": deleted }), || {
                Table::new(vec!["DELETED"]).row(vec![deleted.clone()])
            });
        }
    }
    Ok(())
}

const BUILD_HEADER: [&str; 6] = [
    "NAME",
    "BASE IMAGE",
    "LANGUAGE",
    "STATUS",
    "DIGEST",
    "CACHED",
];

fn build_row(b: &Value) -> Vec<String> {
    vec![
        text(&b["name"]),
        text(&b["baseImage"]),
        text(&b["language"]),
        status_text(b),
        short_digest(&b["digest"]),
        if b["cached"] == true { "yes" } else { "no" }.to_string(),
    ]
}

/// Reads `--system-packages`: one package a line, `name` or `name=version`; blank lines and
/// `#` comments skipped.
pub fn read_packages(path: &Path) -> anyhow::Result<Vec<Value>> {
    let textual = std::fs::read_to_string(path)
        .with_context(|| format!("reading --system-packages {}", path.display()))?;
    let mut packages = Vec::new();
    for (i, line) in textual.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, version) = line.split_once('=').unwrap_or((line, ""));
        let (name, version) = (name.trim(), version.trim());
        if name.is_empty() || name.contains(char::is_whitespace) {
            bail!(
                "--system-packages {} line {}: '{line}' is not `name` or `name=version`",
                path.display(),
                i + 1
            );
        }
        packages.push(json!({ "name": name, "version": version }));
    }
    Ok(packages)
}

/// `image build`: sends the build, then follows its log.
pub async fn build(client: &Client, format: OutputFormat, args: BuildArgs) -> anyhow::Result<()> {
    let (ns, name) = scoped(&args.name, args.namespace.as_deref())?;
    let mut body = json!({ "name": name, "baseImage": args.base_image });
    if let Some(path) = &args.system_packages {
        body["systemPackages"] = json!(read_packages(path)?);
    }
    if let Some(path) = &args.runtime_deps {
        let manifest = std::fs::read_to_string(path)
            .with_context(|| format!("reading --runtime-deps {}", path.display()))?;
        body["runtimeDependencies"] = json!({ "manifest": manifest });
    }
    let accepted: Value = client
        .json(client.request(Method::POST, &builds_path(&ns)).json(&body))
        .await?;
    let view_path = format!("{}/{name}", builds_path(&ns));
    if args.no_wait {
        print(format, &accepted, || {
            Table::new(BUILD_HEADER.to_vec()).row(build_row(&accepted))
        });
        return Ok(());
    }
    follow_log(client, format, &format!("{view_path}/logs"), true).await?;
    let done: Value = client.get(&view_path).await?;
    finish(
        format,
        &done,
        &format!("the build of image {ns}/{name}"),
        || Table::new(BUILD_HEADER.to_vec()).row(build_row(&done)),
    )
}

/// An error naming `what` and the reason unless `view` is READY.
fn fail_unless_ready(view: &Value, what: &str) -> anyhow::Result<()> {
    match view["status"].as_str() {
        Some("READY") => Ok(()),
        Some("ERROR") => bail!(
            "{what} failed: {}",
            view["reason"].as_str().unwrap_or("(no reason given)")
        ),
        other => bail!(
            "{what} is {} although its log is done",
            other.unwrap_or("in no state")
        ),
    }
}

pub async fn builds(
    client: &Client,
    format: OutputFormat,
    command: BuildsCommand,
) -> anyhow::Result<()> {
    match command {
        BuildsCommand::Ls { namespace } => {
            let list: Vec<Value> = client.get(&builds_path(&namespace)).await?;
            print(format, &list, || {
                Table::new(BUILD_HEADER.to_vec()).rows(list.iter().map(build_row))
            });
        }
        BuildsCommand::Get { name, namespace } => {
            let (ns, name) = scoped(&name, namespace.as_deref())?;
            let shown: Value = client.get(&format!("{}/{name}", builds_path(&ns))).await?;
            print(format, &shown, || {
                Table::new(BUILD_HEADER.to_vec()).row(build_row(&shown))
            });
        }
        BuildsCommand::Logs {
            name,
            namespace,
            follow,
        } => {
            let (ns, name) = scoped(&name, namespace.as_deref())?;
            let path = format!("{}/{name}/logs", builds_path(&ns));
            follow_log(client, format, &path, follow).await?;
        }
        BuildsCommand::Rm { name, namespace } => {
            let (ns, name) = scoped(&name, namespace.as_deref())?;
            client
                .send(client.request(Method::DELETE, &format!("{}/{name}", builds_path(&ns))))
                .await?;
            let deleted = format!("{ns}/{name}");
            print(format, &json!({ "deleted": deleted }), || {
                Table::new(vec!["DELETED"]).row(vec![deleted.clone()])
            });
        }
    }
    Ok(())
}

/// Prints a build log (`BuildLogsView` pages at `path`): with `follow`, asks for the lines
/// after the last one printed until the server says it is done. Lines go to standard output
/// as text; with -o json, a followed log's lines go to standard error (standard output is
/// for the result), and an unfollowed one is printed as the server's page.
async fn follow_log(
    client: &Client,
    format: OutputFormat,
    path: &str,
    follow: bool,
) -> anyhow::Result<Value> {
    let mut after = 0u64;
    loop {
        let page: Value = client.get(&format!("{path}?after={after}")).await?;
        if format == OutputFormat::Json && !follow {
            print_json(&page);
            return Ok(page);
        }
        for line in page["lines"].as_array().into_iter().flatten() {
            let shown = line["text"]
                .as_str()
                .unwrap_or_default()
                .trim_end_matches('\n');
            match format {
                OutputFormat::Text => outln!("{shown}"),
                OutputFormat::Json => eprintln!("{shown}"),
            }
            if let Some(seq) = line["seq"].as_u64() {
                after = after.max(seq);
            }
        }
        if let Some(next) = page["next"].as_u64() {
            after = after.max(next);
        }
        if !follow || page["done"] == true {
            return Ok(page);
        }
        tokio::time::sleep(POLL).await;
    }
}

const CODE_HEADER: [&str; 6] = [
    "FUNCTION", "IMAGE", "LANGUAGE", "HANDLER", "STATUS", "DIGEST",
];

fn code_row(function: &str, view: &Value) -> Vec<String> {
    vec![
        function.to_string(),
        text(&view["image"]),
        text(&view["language"]),
        text(&view["handler"]),
        status_text(view),
        short_digest(&view["digest"]),
    ]
}

/// Reads a JSON Schema file given to `flag`.
fn read_schema(flag: &str, path: &Path) -> anyhow::Result<Value> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading {flag} {}", path.display()))?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("{flag} {} is not JSON (a JSON Schema)", path.display()))
}

/// `fn create`: packs the source, sends the function, follows its build.
pub async fn create(client: &Client, format: OutputFormat, args: CreateArgs) -> anyhow::Result<()> {
    use base64::Engine as _;
    let path = code_path(&args.function)?;
    let source = pack_source(&args.source)?;
    let mut body = json!({
        "image": args.image,
        "handler": args.handler,
        "source": base64::engine::general_purpose::STANDARD.encode(&source),
    });
    let mut schema = json!({});
    if let Some(file) = &args.schema_in {
        schema["in"] = read_schema("--schema-in", file)?;
    }
    if let Some(file) = &args.schema_out {
        schema["out"] = read_schema("--schema-out", file)?;
    }
    if schema.as_object().is_some_and(|o| !o.is_empty()) {
        body["schema"] = schema;
    }
    if !args.secrets.is_empty() {
        body["secrets"] = json!(args.secrets);
    }
    if !args.services.is_empty() {
        body["services"] = json!(args.services);
    }
    if let Some(timeout) = &args.timeout {
        body["timeout"] = json!(timeout);
    }
    if let Some(size) = &args.size {
        body["size"] = json!(size);
    }
    if !args.env.is_empty() {
        body["envs"] = json!(super::env_pairs(&args.env)?);
    }
    if args.no_network {
        body["network"] = json!(false);
    }
    let accepted: Value = client
        .json(client.request(Method::PUT, &path).json(&body))
        .await?;
    if args.no_wait {
        print(format, &accepted, || {
            Table::new(CODE_HEADER.to_vec()).row(code_row(&args.function, &accepted))
        });
        return Ok(());
    }
    follow_log(client, format, &format!("{path}/logs"), true).await?;
    let done: Value = client.get(&path).await?;
    finish(
        format,
        &done,
        &format!("the build of function {}", args.function),
        || Table::new(CODE_HEADER.to_vec()).row(code_row(&args.function, &done)),
    )
}

/// `fn build-logs`.
pub async fn build_logs(
    client: &Client,
    format: OutputFormat,
    function: &str,
    follow: bool,
) -> anyhow::Result<()> {
    let path = format!("{}/logs", code_path(function)?);
    follow_log(client, format, &path, follow).await?;
    Ok(())
}

/// The code view of `function` (`NS/NAME`), or None when it is not a function from code.
pub async fn code_view(client: &Client, function: &str) -> anyhow::Result<Option<Value>> {
    let response = client
        .send_raw(client.request(Method::GET, &code_path(function)?))
        .await?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !response.status().is_success() {
        return Err(crate::client::failure(response).await.into());
    }
    Ok(Some(
        response
            .json()
            .await
            .context("reading the server's answer")?,
    ))
}

/// `src` (a file, or a directory's contents) as a tar.gz: regular files and directories only,
/// paths relative to `src` (a file: its name), sorted, owner 0:0, modification time 0, modes
/// kept. Refused when it holds anything else or is over the bounds.
pub fn pack_source(src: &Path) -> anyhow::Result<Vec<u8>> {
    let meta = std::fs::symlink_metadata(src)
        .with_context(|| format!("cannot read the source {}", src.display()))?;
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(encoder);
    let mut packed = Packed::default();
    if meta.is_dir() {
        pack_dir(&mut tar, src, Path::new(""), &mut packed)?;
    } else if meta.is_file() {
        let name = src
            .file_name()
            .with_context(|| format!("{} has no file name", src.display()))?;
        pack_file(&mut tar, src, Path::new(name), &meta, &mut packed)?;
    } else {
        bail!(
            "the source {} is neither a file nor a directory (a symbolic link? give its target)",
            src.display()
        );
    }
    if packed.files == 0 {
        bail!("the source {} holds no files", src.display());
    }
    let encoder = tar.into_inner().context("packing the source")?;
    encoder.finish().context("compressing the source")
}

#[derive(Default)]
struct Packed {
    files: usize,
    entries: usize,
    bytes: u64,
}

fn header(meta: &std::fs::Metadata, kind: tar::EntryType, size: u64) -> tar::Header {
    use std::os::unix::fs::PermissionsExt as _;
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(meta.permissions().mode() & 0o777);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header
}

fn count(packed: &mut Packed, path: &Path) -> anyhow::Result<()> {
    packed.entries += 1;
    if packed.entries > MAX_SOURCE_ENTRIES {
        bail!(
            "the source has more than {MAX_SOURCE_ENTRIES} files and directories (at {}); send \
             only the code, and install dependencies with `faasbox image build --runtime-deps`",
            path.display()
        );
    }
    Ok(())
}

fn pack_dir<W: std::io::Write>(
    tar: &mut tar::Builder<W>,
    dir: &Path,
    relative: &Path,
    packed: &mut Packed,
) -> anyhow::Result<()> {
    let mut entries: Vec<std::fs::DirEntry> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("reading {}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let inside = relative.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        if meta.is_dir() {
            count(packed, &path)?;
            let mut header = header(&meta, tar::EntryType::Directory, 0);
            tar.append_data(&mut header, &inside, std::io::empty())
                .with_context(|| format!("packing {}", path.display()))?;
            pack_dir(tar, &path, &inside, packed)?;
        } else if meta.is_file() {
            pack_file(tar, &path, &inside, &meta, packed)?;
        } else {
            bail!(
                "{} is not a regular file or directory (a symbolic link, socket or device); \
                 the source may hold only files and directories",
                path.display()
            );
        }
    }
    Ok(())
}

fn pack_file<W: std::io::Write>(
    tar: &mut tar::Builder<W>,
    path: &Path,
    inside: &Path,
    meta: &std::fs::Metadata,
    packed: &mut Packed,
) -> anyhow::Result<()> {
    count(packed, path)?;
    packed.files += 1;
    packed.bytes += meta.len();
    if packed.bytes > MAX_SOURCE_BYTES {
        bail!(
            "the source is over {} (at {}); send only the code, and install dependencies with \
             `faasbox image build --runtime-deps`",
            crate::output::human_size(MAX_SOURCE_BYTES),
            path.display()
        );
    }
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut header = header(meta, tar::EntryType::Regular, meta.len());
    tar.append_data(&mut header, inside, file)
        .with_context(|| format!("packing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unpack(bytes: &[u8]) -> Vec<(String, u32, u64, Vec<u8>)> {
        use std::io::Read as _;
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
        let mut found = Vec::new();
        for entry in archive.entries().expect("entries") {
            let mut entry = entry.expect("entry");
            let name = entry.path().expect("path").display().to_string();
            let mode = entry.header().mode().expect("mode");
            let mtime = entry.header().mtime().expect("mtime");
            let mut content = Vec::new();
            entry.read_to_end(&mut content).expect("content");
            found.push((name, mode, mtime, content));
        }
        found
    }

    #[test]
    fn a_directory_is_packed_sorted_with_modes_and_no_times() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("main.py"), "import lib\n").expect("write");
        std::fs::create_dir(dir.path().join("lib")).expect("mkdir");
        std::fs::write(dir.path().join("lib/__init__.py"), "X = 1\n").expect("write");
        std::fs::write(dir.path().join("a.sh"), "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(
            dir.path().join("a.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .expect("chmod");
        let entries = unpack(&pack_source(dir.path()).expect("packed"));
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names, ["a.sh", "lib", "lib/__init__.py", "main.py"]);
        assert_eq!(entries[0].1 & 0o777, 0o755);
        assert!(entries.iter().all(|e| e.2 == 0), "mtime 0 everywhere");
        assert_eq!(entries[3].3, b"import lib\n");
        // The same tree gives the same bytes.
        assert_eq!(
            pack_source(dir.path()).expect("packed"),
            pack_source(dir.path()).expect("packed")
        );
    }

    #[test]
    fn a_file_is_packed_under_its_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("greet.js");
        std::fs::write(&file, "module.exports = (c, p) => p;\n").expect("write");
        let entries = unpack(&pack_source(&file).expect("packed"));
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].0, "greet.js");
    }

    #[test]
    fn symlinks_and_empty_sources_are_refused_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let error = pack_source(dir.path()).expect_err("empty");
        assert!(error.to_string().contains("holds no files"), "{error}");
        std::fs::write(dir.path().join("main.py"), "").expect("write");
        std::os::unix::fs::symlink("main.py", dir.path().join("link.py")).expect("symlink");
        let error = pack_source(dir.path()).expect_err("symlink");
        assert!(error.to_string().contains("link.py"), "{error}");
        let error = pack_source(&dir.path().join("missing")).expect_err("missing");
        assert!(error.to_string().contains("missing"), "{error:#}");
    }

    #[test]
    fn a_source_over_the_bound_is_refused_before_it_is_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("main.py"), "").expect("write");
        // Sparse: counted at its length, as the server counts it, without writing 64 MiB.
        let big = std::fs::File::create(dir.path().join("weights.bin")).expect("create");
        big.set_len(MAX_SOURCE_BYTES + 1).expect("set_len");
        let error = pack_source(dir.path()).expect_err("over the bound");
        let text = error.to_string();
        assert!(
            text.contains("weights.bin") && text.contains("64.0 MiB"),
            "{text}"
        );
    }

    #[test]
    fn package_lines_are_name_or_name_equals_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("packages.txt");
        std::fs::write(&file, "# tools\ncurl\n\njq=1.6-2.1\n").expect("write");
        assert_eq!(
            read_packages(&file).expect("read"),
            vec![
                json!({"name": "curl", "version": ""}),
                json!({"name": "jq", "version": "1.6-2.1"})
            ]
        );
        std::fs::write(&file, "curl wget\n").expect("write");
        let error = read_packages(&file).expect_err("two names on a line");
        assert!(error.to_string().contains("line 1"), "{error}");
    }

    #[test]
    fn tables_show_the_first_line_of_a_reason_shortened() {
        let view = json!({"status": "ERROR", "reason": "SyntaxError: expected ':'\n  File x"});
        assert_eq!(status_text(&view), "ERROR (SyntaxError: expected ':')");
        let long = "x".repeat(200);
        let shown = status_text(&json!({"status": "ERROR", "reason": long}));
        assert_eq!(shown, format!("ERROR ({}…)", "x".repeat(REASON_IN_TABLE)));
        assert_eq!(
            status_text(&json!({"status": "READY", "reason": ""})),
            "READY"
        );
    }

    #[test]
    fn names_take_a_namespace_from_the_flag_or_the_name() {
        assert_eq!(
            scoped("demo/py", None).expect("scoped"),
            ("demo".into(), "py".into())
        );
        assert_eq!(
            scoped("py", Some("demo")).expect("scoped"),
            ("demo".into(), "py".into())
        );
        assert!(scoped("py", None).is_err());
        assert!(scoped("demo/py", Some("other")).is_err());
    }
}
