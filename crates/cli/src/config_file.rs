//! The server's configuration file (`faasbox.toml`): any `faasbox server` flag, under the
//! flag's own name. A flag or its environment variable wins over the file; the file wins over
//! the built-in default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::parser::ValueSource;
use clap::ArgMatches;
use serde::Deserialize;

use crate::cli::{
    parse_duration, parse_flow_max_data, parse_jq_cpu_time, parse_jq_max_output, parse_jq_memory,
    parse_size, ServerArgs,
};

/// Read when it exists and no other file is named.
pub const DEFAULT_PATH: &str = "/etc/faasbox/faasbox.toml";

/// What the file may hold. Unknown keys are refused, so a typo never goes unnoticed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ServerFile {
    data_dir: Option<PathBuf>,
    store: Option<String>,
    store_connections: Option<u32>,
    listen: Option<SocketAddr>,
    agent: Option<PathBuf>,
    runc: Option<PathBuf>,
    runsc: Option<PathBuf>,
    oci_runtime: Option<String>,
    crun: Option<PathBuf>,
    faasbox_oci: Option<PathBuf>,
    network_helper: Option<String>,
    pasta: Option<PathBuf>,
    slirp4netns: Option<PathBuf>,
    ready_timeout: Option<String>,
    queue_limit: Option<usize>,
    queue_timeout: Option<String>,
    #[serde(alias = "blocking_timeout")]
    blocking_timeout: Option<String>,
    #[serde(alias = "runs_keep")]
    runs_keep: Option<u32>,
    #[serde(alias = "runs_max_age")]
    runs_max_age: Option<String>,
    allow_host_loopback: Option<bool>,
    spare_networks: Option<u32>,
    spare_containers: Option<u32>,
    build_disk: Option<SizeValue>,
    build_ca_file: Option<String>,
    log: Option<String>,
    // --- limits: uploads, memory, namespace quotas ---
    max_upload_size: Option<SizeValue>,
    max_layer_size: Option<SizeValue>,
    quota_functions: Option<u32>,
    quota_min_scale: Option<u32>,
    quota_instances: Option<u32>,
    body_budget: Option<SizeValue>,

    // Bounds of expressions and flow instances.
    jq_cpu_time: Option<String>,
    jq_memory: Option<String>,
    jq_max_output: Option<String>,
    jq_workers: Option<u16>,
    flow_max_transitions: Option<u64>,
    flow_max_data: Option<String>,

    // The web UI, as flags (`ui-session-hours`) or as the table `[ui]`.
    ui_session_hours: Option<u32>,
    ui_idle_minutes: Option<u32>,
    ui_secure_cookie: Option<bool>,
    ui: Option<UiFile>,

    // Several servers on one store, as flags (`cluster-lease-seconds`) or the table `[cluster]`.
    cluster_lease_seconds: Option<u64>,
    cluster_advertise: Option<String>,
    cluster_registry: Option<String>,
    cluster: Option<ClusterFile>,
}

/// The `[cluster]` table: several servers on one store.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterFile {
    #[serde(alias = "lease-seconds")]
    lease_seconds: Option<u64>,
    advertise: Option<String>,
    registry: Option<String>,
}

/// The `[ui]` table: the web UI's settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UiFile {
    #[serde(alias = "session-hours")]
    session_hours: Option<u32>,
    #[serde(alias = "idle-minutes")]
    idle_minutes: Option<u32>,
    #[serde(alias = "secure-cookie")]
    secure_cookie: Option<bool>,
}

/// A size in the file: "16GiB" or a number of bytes.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum SizeValue {
    Bytes(u64),
    Text(String),
}

/// Fills the settings of `args` that neither a flag nor an environment variable gave from the
/// configuration file: `--config` (or `FAASBOX_CONFIG`), else [`DEFAULT_PATH`] when it
/// exists. Returns the file read, if any.
pub fn apply(args: &mut ServerArgs, matches: &ArgMatches) -> anyhow::Result<Option<PathBuf>> {
    let path = match &args.config {
        Some(path) => path.clone(),
        None if Path::new(DEFAULT_PATH).exists() => PathBuf::from(DEFAULT_PATH),
        None => return Ok(None),
    };
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read the configuration file {} (fix the path given by --config or FAASBOX_CONFIG)",
            path.display()
        )
    })?;
    let file: ServerFile = toml::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}: {}\nkeys are the names of `faasbox server` flags: data-dir, store, store-connections, listen, agent, \
             runc, runsc, oci-runtime, crun, faasbox-oci, network-helper, pasta, slirp4netns, ready-timeout, queue-limit, queue-timeout, blocking-timeout, \
             runs-keep, runs-max-age, allow-host-loopback, spare-networks, spare-containers, log, max-upload-size, max-layer-size, quota-functions, quota-min-scale, \
             quota-instances, body-budget, jq-cpu-time, jq-memory, jq-max-output, jq-workers, \
             flow-max-transitions, flow-max-data, ui-session-hours, ui-idle-minutes, \
             ui-secure-cookie, cluster-lease-seconds, cluster-advertise, cluster-registry; the \
             table [ui] takes session_hours, idle_minutes, secure_cookie; the table [cluster] \
             takes lease_seconds, advertise, registry",
            path.display(),
            e.to_string().trim_end()
        )
    })?;
    merge(args, matches, file, &path)?;
    Ok(Some(path))
}

fn merge(
    args: &mut ServerArgs,
    matches: &ArgMatches,
    file: ServerFile,
    path: &Path,
) -> anyhow::Result<()> {
    let unset = |id: &str| {
        !matches!(
            matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    };
    let duration = |key: &str, text: &str| {
        parse_duration(text).or_else(|e| bail!("{}: {key}: {e}", path.display()))
    };
    merge_bounds(args, &unset, &file, path)?;
    if let Some(v) = file.data_dir.filter(|_| unset("data_dir")) {
        args.data_dir = v;
    }
    if let Some(v) = file.store.filter(|_| unset("store")) {
        args.store = v;
    }
    if let Some(v) = file
        .store_connections
        .filter(|_| unset("store_connections"))
    {
        if !(1..=1000).contains(&v) {
            bail!(
                "{}: store-connections is {v}: it must be 1 to 1000",
                path.display()
            );
        }
        args.store_connections = Some(v);
    }
    if let Some(v) = file.listen.filter(|_| unset("listen")) {
        args.listen = v;
    }
    if let Some(v) = file.agent.filter(|_| unset("agent")) {
        args.agent = Some(v);
    }
    if let Some(v) = file.runc.filter(|_| unset("runc")) {
        args.runc = v;
    }
    if let Some(v) = file.runsc.filter(|_| unset("runsc")) {
        args.runsc = v;
    }
    if let Some(v) = file.oci_runtime.filter(|_| unset("oci_runtime")) {
        args.oci_runtime = crate::cli::parse_oci_runtime(&v)
            .map_err(|e| anyhow::anyhow!("{}: oci-runtime: {e}", path.display()))?;
    }
    if let Some(v) = file.crun.filter(|_| unset("crun")) {
        args.crun = v;
    }
    if let Some(v) = file.faasbox_oci.filter(|_| unset("faasbox_oci")) {
        args.faasbox_oci = Some(v);
    }
    if let Some(v) = file.network_helper.filter(|_| unset("network_helper")) {
        args.network_helper = crate::cli::parse_network_helper(&v)
            .map_err(|e| anyhow::anyhow!("{}: network-helper: {e}", path.display()))?;
    }
    if let Some(v) = file.pasta.filter(|_| unset("pasta")) {
        args.pasta = v;
    }
    if let Some(v) = file.slirp4netns.filter(|_| unset("slirp4netns")) {
        args.slirp4netns = v;
    }
    if let Some(v) = file.ready_timeout.filter(|_| unset("ready_timeout")) {
        args.ready_timeout = duration("ready-timeout", &v)?;
    }
    if let Some(v) = file.queue_limit.filter(|_| unset("queue_limit")) {
        args.queue_limit = v;
    }
    if let Some(v) = file.queue_timeout.filter(|_| unset("queue_timeout")) {
        args.queue_timeout = duration("queue-timeout", &v)?;
    }
    if let Some(v) = file.blocking_timeout.filter(|_| unset("blocking_timeout")) {
        args.blocking_timeout = duration("blocking-timeout", &v)?;
    }
    if let Some(v) = file.runs_keep.filter(|_| unset("runs_keep")) {
        args.runs_keep = v;
    }
    if let Some(v) = file.runs_max_age.filter(|_| unset("runs_max_age")) {
        args.runs_max_age = duration("runs-max-age", &v)?;
    }
    if let Some(v) = file
        .allow_host_loopback
        .filter(|_| unset("allow_host_loopback"))
    {
        args.allow_host_loopback = v;
    }
    if let Some(v) = file.spare_networks.filter(|_| unset("spare_networks")) {
        if v > 32 {
            anyhow::bail!(
                "{}: spare-networks = {v} is more than 32 (each idle one holds about 29 MiB)",
                path.display()
            );
        }
        args.spare_networks = v;
    }
    if let Some(v) = file.spare_containers.filter(|_| unset("spare_containers")) {
        if v > 8 {
            anyhow::bail!(
                "{}: spare-containers = {v} is more than 8 (per function; each idle one holds \
                 a container's init and, with network, its network helper)",
                path.display()
            );
        }
        args.spare_containers = v;
    }
    if let Some(v) = file.log.filter(|_| unset("log")) {
        args.log = v;
    }
    let size = |key: &str, value: SizeValue| match value {
        SizeValue::Bytes(n) => Ok(n),
        SizeValue::Text(t) => parse_size(&t).or_else(|e| bail!("{}: {key}: {e}", path.display())),
    };
    if let Some(v) = file.max_upload_size.filter(|_| unset("max_upload_size")) {
        args.max_upload_size = size("max-upload-size", v)?;
    }
    if let Some(v) = file.max_layer_size.filter(|_| unset("max_layer_size")) {
        args.max_layer_size = size("max-layer-size", v)?;
    }
    if let Some(v) = file.build_disk.filter(|_| unset("build_disk")) {
        args.build_disk = size("build-disk", v)?;
    }
    if let Some(v) = file.build_ca_file.filter(|_| unset("build_ca_file")) {
        args.build_ca_file = v;
    }
    if let Some(v) = file.body_budget.filter(|_| unset("body_budget")) {
        args.body_budget = size("body-budget", v)?;
    }
    if let Some(v) = file.quota_functions.filter(|_| unset("quota_functions")) {
        args.quota_functions = v;
    }
    if let Some(v) = file.quota_min_scale.filter(|_| unset("quota_min_scale")) {
        args.quota_min_scale = v;
    }
    if let Some(v) = file.quota_instances.filter(|_| unset("quota_instances")) {
        args.quota_instances = v;
    }
    Ok(())
}

/// The bounds of expressions and flow instances, checked like their flags.
fn merge_bounds(
    args: &mut ServerArgs,
    unset: &dyn Fn(&str) -> bool,
    file: &ServerFile,
    path: &Path,
) -> anyhow::Result<()> {
    let value = |key: &str, text: &str, parse: fn(&str) -> Result<u64, String>| {
        parse(text).or_else(|e| bail!("{}: {key}: {e}", path.display()))
    };
    if let Some(v) = file.jq_cpu_time.as_deref().filter(|_| unset("jq_cpu_time")) {
        args.jq_cpu_time =
            parse_jq_cpu_time(v).or_else(|e| bail!("{}: jq-cpu-time: {e}", path.display()))?;
    }
    if let Some(v) = file.jq_memory.as_deref().filter(|_| unset("jq_memory")) {
        args.jq_memory = value("jq-memory", v, parse_jq_memory)?;
    }
    if let Some(v) = file
        .jq_max_output
        .as_deref()
        .filter(|_| unset("jq_max_output"))
    {
        args.jq_max_output = value("jq-max-output", v, parse_jq_max_output)?;
    }
    if let Some(v) = file.jq_workers.filter(|_| unset("jq_workers")) {
        if !(1..=256).contains(&v) {
            bail!("{}: jq-workers: {v} is outside 1 to 256", path.display());
        }
        args.jq_workers = Some(v);
    }
    if let Some(v) = file
        .flow_max_transitions
        .filter(|_| unset("flow_max_transitions"))
    {
        if !(1..=100_000_000).contains(&v) {
            bail!(
                "{}: flow-max-transitions: {v} is outside 1 to 100000000",
                path.display()
            );
        }
        args.flow_max_transitions = v;
    }
    if let Some(v) = file
        .flow_max_data
        .as_deref()
        .filter(|_| unset("flow_max_data"))
    {
        args.flow_max_data = value("flow-max-data", v, parse_flow_max_data)?;
    }
    merge_ui(args, unset, file, path)?;
    merge_cluster(args, unset, file, path)
}

/// The cluster settings, from `[cluster]` or the flags' names (not both).
fn merge_cluster(
    args: &mut ServerArgs,
    unset: &dyn Fn(&str) -> bool,
    file: &ServerFile,
    path: &Path,
) -> anyhow::Result<()> {
    let table = file.cluster.as_ref();
    let both = |key: &str| {
        anyhow::anyhow!(
            "{}: cluster-{} and [cluster] {} are both set: keep one",
            path.display(),
            key.replace('_', "-"),
            key
        )
    };
    let lease = match (
        file.cluster_lease_seconds,
        table.and_then(|t| t.lease_seconds),
    ) {
        (Some(_), Some(_)) => return Err(both("lease_seconds")),
        (a, b) => a.or(b),
    };
    if let Some(v) = lease.filter(|_| unset("cluster_lease_seconds")) {
        if !(3..=3600).contains(&v) {
            bail!(
                "{}: [cluster] lease_seconds: {v} is outside 3 to 3600 (seconds a server's work \
                 stays its own without a heartbeat)",
                path.display()
            );
        }
        args.cluster_lease_seconds = v;
    }
    let advertise = match (
        file.cluster_advertise.clone(),
        table.and_then(|t| t.advertise.clone()),
    ) {
        (Some(_), Some(_)) => return Err(both("advertise")),
        (a, b) => a.or(b),
    };
    if let Some(v) = advertise.filter(|_| unset("cluster_advertise")) {
        args.cluster_advertise = Some(v);
    }
    let registry = match (
        file.cluster_registry.clone(),
        table.and_then(|t| t.registry.clone()),
    ) {
        (Some(_), Some(_)) => return Err(both("registry")),
        (a, b) => a.or(b),
    };
    if let Some(v) = registry.filter(|_| unset("cluster_registry")) {
        args.cluster_registry = Some(v);
    }
    Ok(())
}

/// The web UI's settings, from `[ui]` or the flags' names (not both), checked like the flags.
fn merge_ui(
    args: &mut ServerArgs,
    unset: &dyn Fn(&str) -> bool,
    file: &ServerFile,
    path: &Path,
) -> anyhow::Result<()> {
    let table = file.ui.as_ref();
    let pick = |flat: Option<u32>, inner: Option<u32>, key: &str| match (flat, inner) {
        (Some(_), Some(_)) => bail!(
            "{}: ui-{} and [ui] {} are both set: keep one",
            path.display(),
            key.replace('_', "-"),
            key
        ),
        (a, b) => Ok(a.or(b)),
    };
    let bounded = |v: u32, max: u32, key: &str, what: &str| {
        if (1..=max).contains(&v) {
            Ok(v)
        } else {
            bail!(
                "{}: [ui] {key}: {v} is outside 1 to {max} ({what})",
                path.display()
            )
        }
    };
    let hours = pick(
        file.ui_session_hours,
        table.and_then(|t| t.session_hours),
        "session_hours",
    )?;
    if let Some(v) = hours.filter(|_| unset("ui_session_hours")) {
        args.ui_session_hours = bounded(v, 720, "session_hours", "hours a sign-in lasts")?;
    }
    let idle = pick(
        file.ui_idle_minutes,
        table.and_then(|t| t.idle_minutes),
        "idle_minutes",
    )?;
    if let Some(v) = idle.filter(|_| unset("ui_idle_minutes")) {
        args.ui_idle_minutes = bounded(v, 1440, "idle_minutes", "minutes a sign-in lasts unused")?;
    }
    let secure = file
        .ui_secure_cookie
        .or(table.and_then(|t| t.secure_cookie));
    if let Some(v) = secure.filter(|_| unset("ui_secure_cookie")) {
        args.ui_secure_cookie = v;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches};

    use super::*;
    use crate::cli::{Cli, Command};

    /// Parses `faasbox server <flags>` and applies `toml` as its configuration file.
    fn server_args(flags: &[&str], toml: &str) -> anyhow::Result<ServerArgs> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("faasbox.toml");
        std::fs::write(&path, toml).unwrap();
        let config = format!("--config={}", path.display());
        let argv = ["faasbox", "server", config.as_str()]
            .into_iter()
            .chain(flags.iter().copied());
        let matches = Cli::command().try_get_matches_from(argv).unwrap();
        let Command::Server(mut args) = Cli::from_arg_matches(&matches).unwrap().command else {
            panic!("not the server command");
        };
        let server = matches.subcommand_matches("server").unwrap();
        assert_eq!(apply(&mut args, server)?, Some(path));
        Ok(args)
    }

    #[test]
    fn runs_settings_come_from_the_file_under_either_spelling() {
        let args = server_args(
            &["--runs-keep", "5"],
            "blocking-timeout = \"90s\"\nruns_keep = 3\nruns_max_age = \"2d\"\n",
        )
        .unwrap();
        assert_eq!(args.blocking_timeout, std::time::Duration::from_secs(90));
        assert_eq!(args.runs_keep, 5, "the flag wins over the file");
        assert_eq!(args.runs_max_age, std::time::Duration::from_secs(2 * 86400));
        let defaults = server_args(&[], "").unwrap();
        assert_eq!(
            defaults.blocking_timeout,
            std::time::Duration::from_secs(60)
        );
        assert_eq!(defaults.runs_keep, 10_000);
        assert_eq!(
            defaults.runs_max_age,
            std::time::Duration::from_secs(7 * 86400)
        );
    }

    #[test]
    fn the_file_fills_what_no_flag_gave_and_flags_win() {
        let args = server_args(
            &["--queue-limit", "7"],
            "data-dir = \"/srv/faasbox\"\nlisten = \"0.0.0.0:9000\"\nready-timeout = \"30s\"\n\
             queue-limit = 3\nqueue-timeout = \"5m\"\nlog = \"debug\"\nagent = \"/opt/agent\"\n",
        )
        .unwrap();
        assert_eq!(args.data_dir, PathBuf::from("/srv/faasbox"));
        assert_eq!(args.listen, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(args.ready_timeout, std::time::Duration::from_secs(30));
        assert_eq!(args.queue_timeout, std::time::Duration::from_secs(300));
        assert_eq!(args.queue_limit, 7, "the flag wins over the file");
        assert_eq!(args.log, "debug");
        assert_eq!(args.agent, Some(PathBuf::from("/opt/agent")));
        assert_eq!(args.runc, PathBuf::from("runc"), "the default stays");
        assert!(!args.allow_host_loopback, "host loopback is off by default");

        let args = server_args(&[], "allow-host-loopback = true\n").unwrap();
        assert!(args.allow_host_loopback);
        let err = server_args(&[], "allow-host-loopback = \"yes\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("allow-host-loopback"), "{err}");
    }

    #[test]
    fn spare_containers_are_one_by_default_and_bounded() {
        assert_eq!(server_args(&[], "").unwrap().spare_containers, 1);
        assert_eq!(
            server_args(&[], "spare-containers = 0\n")
                .unwrap()
                .spare_containers,
            0
        );
        assert_eq!(
            server_args(&["--spare-containers", "3"], "spare-containers = 0\n")
                .unwrap()
                .spare_containers,
            3,
            "the flag wins over the file"
        );
        let err = server_args(&[], "spare-containers = 9\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("spare-containers = 9"), "{err}");
        let flag = Cli::command()
            .try_get_matches_from(["faasbox", "server", "--spare-containers", "9"])
            .unwrap_err()
            .to_string();
        assert!(flag.contains("0..=8"), "{flag}");
    }

    #[test]
    fn spare_networks_are_two_by_default_and_bounded() {
        assert_eq!(server_args(&[], "").unwrap().spare_networks, 2);
        assert_eq!(
            server_args(&[], "spare-networks = 0\n")
                .unwrap()
                .spare_networks,
            0
        );
        assert_eq!(
            server_args(&["--spare-networks", "5"], "spare-networks = 0\n")
                .unwrap()
                .spare_networks,
            5,
            "the flag wins over the file"
        );
        let err = server_args(&[], "spare-networks = 33\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("spare-networks = 33"), "{err}");
        let flag = Cli::command()
            .try_get_matches_from(["faasbox", "server", "--spare-networks", "33"])
            .unwrap_err()
            .to_string();
        assert!(flag.contains("0..=32"), "{flag}");
    }

    #[test]
    fn the_oci_runtime_is_runc_by_default_and_crun_on_request() {
        use faasbox_server::config::OciRuntime;
        let defaults = server_args(&[], "").unwrap();
        assert_eq!(defaults.oci_runtime, OciRuntime::Runc);
        assert_eq!(defaults.crun, PathBuf::from("crun"));
        let args = server_args(&[], "oci-runtime = \"crun\"\ncrun = \"/opt/crun\"\n").unwrap();
        assert_eq!(args.oci_runtime, OciRuntime::Crun);
        assert_eq!(args.crun, PathBuf::from("/opt/crun"));
        let args = server_args(&["--oci-runtime", "runc"], "oci-runtime = \"crun\"\n").unwrap();
        assert_eq!(
            args.oci_runtime,
            OciRuntime::Runc,
            "the flag wins over the file"
        );
        let err = server_args(&[], "oci-runtime = \"youki\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("oci-runtime") && err.contains("youki") && err.contains("crun"),
            "{err}"
        );
    }

    #[test]
    fn libcontainer_and_its_binary_come_from_the_file() {
        use faasbox_server::config::OciRuntime;
        assert_eq!(server_args(&[], "").unwrap().faasbox_oci, None);
        let args = server_args(
            &[],
            "oci-runtime = \"libcontainer\"\nfaasbox-oci = \"/opt/faasbox-oci\"\n",
        )
        .unwrap();
        assert_eq!(args.oci_runtime, OciRuntime::Libcontainer);
        assert_eq!(args.faasbox_oci, Some(PathBuf::from("/opt/faasbox-oci")));
        let args = server_args(
            &["--faasbox-oci", "/usr/lib/faasbox-oci"],
            "faasbox-oci = \"/opt/faasbox-oci\"\n",
        )
        .unwrap();
        assert_eq!(
            args.faasbox_oci,
            Some(PathBuf::from("/usr/lib/faasbox-oci")),
            "the flag wins over the file"
        );
    }

    #[test]
    fn the_network_helper_is_slirp4netns_by_default_and_pasta_on_request() {
        use faasbox_server::config::NetworkHelper;
        let defaults = server_args(&[], "").unwrap();
        assert_eq!(defaults.network_helper, NetworkHelper::Slirp4netns);
        assert_eq!(defaults.slirp4netns, PathBuf::from("slirp4netns"));
        assert_eq!(defaults.pasta, PathBuf::from("pasta"));
        let args =
            server_args(&[], "network-helper = \"pasta\"\npasta = \"/opt/pasta\"\n").unwrap();
        assert_eq!(args.network_helper, NetworkHelper::Pasta);
        assert_eq!(args.pasta, PathBuf::from("/opt/pasta"));
        let args = server_args(
            &["--network-helper", "slirp4netns"],
            "network-helper = \"pasta\"\n",
        )
        .unwrap();
        assert_eq!(
            args.network_helper,
            NetworkHelper::Slirp4netns,
            "the flag wins over the file"
        );
        let err = server_args(&[], "network-helper = \"slirp\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("network-helper") && err.contains("slirp4netns"),
            "{err}"
        );
    }

    #[test]
    fn the_store_comes_from_the_file_and_its_connections_are_bounded() {
        let defaults = server_args(&[], "").unwrap();
        assert_eq!(defaults.store, "sqlite");
        assert_eq!(defaults.store_connections, None);
        let args = server_args(
            &[],
            "store = \"postgres://faasbox@db:5432/faasbox\"\nstore-connections = 8\n",
        )
        .unwrap();
        assert_eq!(args.store, "postgres://faasbox@db:5432/faasbox");
        assert_eq!(args.store_connections, Some(8));
        let args = server_args(&["--store", "sqlite"], "store = \"postgres://h/d\"\n").unwrap();
        assert_eq!(args.store, "sqlite", "the flag wins over the file");
        let err = server_args(&[], "store-connections = 0\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("store-connections is 0"), "{err}");
    }

    #[test]
    fn ui_settings_come_from_the_ui_table_or_the_flags_names_bounded() {
        let defaults = server_args(&[], "").unwrap();
        assert_eq!(
            (
                defaults.ui_session_hours,
                defaults.ui_idle_minutes,
                defaults.ui_secure_cookie
            ),
            (8, 60, false)
        );
        let args = server_args(
            &["--ui-idle-minutes", "5"],
            "log = \"info\"\n[ui]\nsession_hours = 2\nidle_minutes = 30\nsecure_cookie = true\n",
        )
        .unwrap();
        assert_eq!(args.ui_session_hours, 2);
        assert_eq!(args.ui_idle_minutes, 5, "the flag wins over the file");
        assert!(args.ui_secure_cookie);
        let args = server_args(&[], "ui-session-hours = 3\n").unwrap();
        assert_eq!(args.ui_session_hours, 3);
        for (toml, named) in [
            ("[ui]\nsession_hours = 0\n", "session_hours"),
            ("[ui]\nidle_minutes = 1441\n", "idle_minutes"),
            ("ui-idle-minutes = 5\n[ui]\nidle_minutes = 6\n", "keep one"),
            ("[ui]\nidle = 5\n", "idle"),
        ] {
            let err = format!("{:#}", server_args(&[], toml).unwrap_err());
            assert!(err.contains(named), "{toml}: {err}");
        }
    }

    #[test]
    fn cluster_settings_come_from_the_cluster_table_or_the_flags_names() {
        let defaults = server_args(&[], "").unwrap();
        assert_eq!(defaults.cluster_lease_seconds, 15);
        assert_eq!(defaults.cluster_advertise, None);
        let args = server_args(
            &["--cluster-lease-seconds", "4"],
            "[cluster]\nlease_seconds = 30\nadvertise = \"http://10.0.0.5:8470\"\n",
        )
        .unwrap();
        assert_eq!(args.cluster_lease_seconds, 4, "the flag wins over the file");
        assert_eq!(
            args.cluster_advertise.as_deref(),
            Some("http://10.0.0.5:8470")
        );
        let args = server_args(&[], "cluster-lease-seconds = 9\n").unwrap();
        assert_eq!(args.cluster_lease_seconds, 9);
        let args = server_args(
            &[],
            "[cluster]\nregistry = \"http://10.0.0.9:5000/faasbox\"\n",
        )
        .unwrap();
        assert_eq!(
            args.cluster_registry.as_deref(),
            Some("http://10.0.0.9:5000/faasbox")
        );
        for (toml, named) in [
            (
                "[cluster]\nlease_seconds = 2\n",
                "lease_seconds: 2 is outside 3",
            ),
            (
                "cluster-lease-seconds = 5\n[cluster]\nlease_seconds = 6\n",
                "keep one",
            ),
            ("[cluster]\nlease = 5\n", "lease"),
        ] {
            let err = format!("{:#}", server_args(&[], toml).unwrap_err());
            assert!(err.contains(named), "{toml}: {err}");
        }
    }

    #[test]
    fn limits_take_sizes_as_text_or_bytes() {
        let args = server_args(
            &["--max-layer-size", "1GiB"],
            "max-upload-size = \"2GiB\"\nmax-layer-size = 5\nbody-budget = \"512MiB\"\n",
        )
        .unwrap();
        assert_eq!(args.max_upload_size, 2 << 30);
        assert_eq!(args.body_budget, 512 << 20);
        assert_eq!(args.max_layer_size, 1 << 30, "the flag wins over the file");
        let args = server_args(
            &[],
            "quota-functions = 3\nquota-min-scale = 0\nquota-instances = 7\n",
        )
        .unwrap();
        assert_eq!(
            (
                args.quota_functions,
                args.quota_min_scale,
                args.quota_instances
            ),
            (3, 0, 7)
        );
        let err = server_args(&[], "max-upload-size = \"lots\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("max-upload-size"), "{err}");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_with_where_and_what() {
        let err = server_args(&[], "data_dir = \"/x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `data_dir`"), "{err}");
        assert!(err.contains("line 1"), "{err}");
        assert!(
            err.contains("data-dir"),
            "the message lists the keys: {err}"
        );

        let err = server_args(&[], "ready-timeout = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("ready-timeout"), "{err}");

        let err = server_args(&[], "listen = \"nowhere\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("listen"), "{err}");
    }

    #[test]
    fn bounds_of_expressions_and_flows_come_from_the_file_within_their_ranges() {
        let args = server_args(
            &["--jq-workers", "3"],
            "jq-cpu-time = \"250ms\"\njq-memory = \"64MiB\"\njq-max-output = \"1MiB\"\n\
             jq-workers = 8\nflow-max-transitions = 500\nflow-max-data = \"2MiB\"\n",
        )
        .unwrap();
        assert_eq!(args.jq_cpu_time, std::time::Duration::from_millis(250));
        assert_eq!(args.jq_memory, 64 << 20);
        assert_eq!(args.jq_max_output, 1 << 20);
        assert_eq!(args.jq_workers, Some(3), "the flag wins over the file");
        assert_eq!(args.flow_max_transitions, 500);
        assert_eq!(args.flow_max_data, 2 << 20);
        // The defaults, without a file.
        let args = server_args(&[], "").unwrap();
        assert_eq!(args.jq_cpu_time, std::time::Duration::from_secs(1));
        assert_eq!(args.jq_memory, 512 << 20);
        assert_eq!(args.flow_max_transitions, 10_000);
        assert_eq!(args.flow_max_data, 8 << 20);
        for (bad, key) in [
            ("jq-cpu-time = \"1h\"", "jq-cpu-time"),
            ("jq-memory = \"1MiB\"", "jq-memory"),
            ("jq-max-output = \"2GiB\"", "jq-max-output"),
            ("jq-workers = 0", "jq-workers"),
            ("flow-max-transitions = 0", "flow-max-transitions"),
            ("flow-max-data = \"12\"", "flow-max-data"),
        ] {
            let err = server_args(&[], bad).unwrap_err().to_string();
            assert!(err.contains(key) && err.contains("outside"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_named_file_that_is_missing_is_an_error() {
        let matches = Cli::command()
            .try_get_matches_from(["faasbox", "server", "--config", "/nonexistent/faasbox.toml"])
            .unwrap();
        let Command::Server(mut args) = Cli::from_arg_matches(&matches).unwrap().command else {
            panic!("not the server command");
        };
        let server = matches.subcommand_matches("server").unwrap();
        let err = apply(&mut args, server).unwrap_err();
        assert!(
            format!("{err:#}").contains("/nonexistent/faasbox.toml"),
            "{err:#}"
        );
    }
}
