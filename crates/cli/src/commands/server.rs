//! `faasbox server`: runs the server in this process.

use std::path::PathBuf;

use faasbox_server::config::MasterKeyEnv;
use faasbox_server::ServerConfig;
use tracing_subscriber::EnvFilter;

use crate::cli::ServerArgs;

/// Runs the server with `args` (already merged with `config_file`, named in the log).
pub async fn run(
    args: ServerArgs,
    master_key: MasterKeyEnv,
    config_file: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&args.log).unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if let Some(path) = config_file {
        tracing::info!("configuration read from {}", path.display());
    }
    let mut config = ServerConfig::new(args.data_dir, args.listen);
    config.store = args.store;
    config.store_connections = args.store_connections.map(|n| n as usize);
    if let Some(agent) = args.agent {
        config.agent_binary = agent;
    }
    config.runc_path = args.runc;
    config.oci_runtime = args.oci_runtime;
    config.crun_path = args.crun;
    if let Some(oci) = args.faasbox_oci {
        config.libcontainer_path = oci;
    }
    config.runsc_path = args.runsc;
    config.network_helper = args.network_helper;
    config.pasta_path = args.pasta;
    config.slirp4netns_path = args.slirp4netns;
    config.ready_timeout = args.ready_timeout;
    config.queue_limit = args.queue_limit;
    config.queue_timeout = args.queue_timeout;
    config.blocking_timeout = args.blocking_timeout;
    config.runs_keep = args.runs_keep;
    config.runs_max_age = args.runs_max_age;
    config.allow_host_loopback = args.allow_host_loopback;
    config.spare_networks = args.spare_networks as usize;
    config.spare_containers = args.spare_containers as usize;
    config.build_disk_bytes = args.build_disk;
    config.build_ca_file = build_ca_file(&args.build_ca_file)?;
    config.master_key = master_key;
    config.limits.max_upload_bytes = args.max_upload_size;
    config.limits.max_layer_bytes = args.max_layer_size;
    config.limits.body_budget_bytes = args.body_budget;
    config.limits.quotas = faasbox_server::quota::Quotas {
        max_functions: args.quota_functions,
        max_min_scale: args.quota_min_scale,
        max_instances: args.quota_instances,
    };
    config.expr_limits = faasbox_server::template::sandbox::Limits {
        cpu_time: args.jq_cpu_time,
        memory: args.jq_memory,
        max_output: usize::try_from(args.jq_max_output).unwrap_or(usize::MAX),
        workers: args.jq_workers.map_or_else(
            faasbox_server::template::sandbox::default_workers,
            usize::from,
        ),
    };
    config.flow_limits = faasbox_flow_limits(args.flow_max_transitions, args.flow_max_data);
    config.ui = faasbox_server::config::UiSettings {
        session_hours: args.ui_session_hours,
        idle_minutes: args.ui_idle_minutes,
        secure_cookie: args.ui_secure_cookie,
    };
    config.cluster = faasbox_server::cluster::ClusterSettings {
        lease: std::time::Duration::from_secs(args.cluster_lease_seconds),
        advertise: args.cluster_advertise,
        registry: args.cluster_registry,
    };
    faasbox_server::app::run(config).await
}

fn faasbox_flow_limits(max_transitions: u64, max_data: u64) -> faasbox_server::FlowLimits {
    faasbox_server::FlowLimits {
        max_transitions,
        max_data: usize::try_from(max_data).unwrap_or(usize::MAX),
    }
}

/// `--build-ca-file`: `none`, the default bundle (skipped when this host has none), or a file
/// that must exist.
fn build_ca_file(value: &str) -> anyhow::Result<Option<PathBuf>> {
    let path = PathBuf::from(value);
    if value == "none" {
        Ok(None)
    } else if path.is_file() {
        Ok(Some(path))
    } else if value == faasbox_server::config::DEFAULT_BUILD_CA_FILE {
        Ok(None)
    } else {
        anyhow::bail!(
            "--build-ca-file {value}: no such file; name a PEM certificate bundle, or `none` \
             for the base images' own certificates"
        )
    }
}
