//! `faasbox server`: runs the server in this process.

use faasbox_server::config::MasterKeyEnv;
use faasbox_server::ServerConfig;
use tracing_subscriber::EnvFilter;

use crate::cli::ServerArgs;

pub async fn run(args: ServerArgs, master_key: MasterKeyEnv) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&args.log).unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let mut config = ServerConfig::new(args.data_dir, args.listen);
    if let Some(agent) = args.agent {
        config.agent_binary = agent;
    }
    config.runc_path = args.runc;
    config.runsc_path = args.runsc;
    config.pasta_path = args.pasta;
    config.ready_timeout = args.ready_timeout;
    config.queue_limit = args.queue_limit;
    config.queue_timeout = args.queue_timeout;
    config.master_key = master_key;
    faasbox_server::app::run(config).await
}
