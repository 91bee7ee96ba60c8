//! `faasbox`: the server and the client commands in one binary.

// Standard output is written through `output::write_out` only, which ends quietly when the
// reader is gone instead of panicking as `println!` does.
#![deny(clippy::print_stdout)]

mod cli;
mod client;
mod commands;
mod config_file;
mod output;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use cli::{Cli, Command};

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let Command::ExprWorker(args) = &cli.command {
        // A worker the server started: no runtime, no threads but its own.
        use faasbox_server::template::sandbox::worker;
        let code = worker::run(worker::WorkerArgs {
            memory: args.memory,
            cpu_time: std::time::Duration::from_millis(args.cpu_ms),
            max_output: args.max_output,
        });
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let mut config_file = None;
    if let (Command::Server(args), Some(server)) =
        (&mut cli.command, matches.subcommand_matches("server"))
    {
        match config_file::apply(args, server) {
            Ok(path) => config_file = path,
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::FAILURE;
            }
        }
    }
    // Before any thread exists: read the master key variables and drop them from the
    // environment, so no child process of the server inherits the key.
    let master_key = match &cli.command {
        Command::Server(_) | Command::Admin(cli::AdminCommand::MigrateStore { .. }) => {
            faasbox_server::config::MasterKeyEnv::take()
        }
        _ => faasbox_server::config::MasterKeyEnv::default(),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, master_key, config_file)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    cli: Cli,
    master_key: faasbox_server::config::MasterKeyEnv,
    config_file: Option<std::path::PathBuf>,
) -> anyhow::Result<bool> {
    let format = cli.output;
    let token = cli.token.clone();
    let client = || client::Client::new(&cli.url, token.clone());
    match cli.command {
        Command::Server(args) => commands::server::run(args, master_key, config_file).await?,
        Command::Ns(c) => commands::namespaces::run(&client()?, format, c).await?,
        Command::Image(c) => commands::images::run(&client()?, format, c).await?,
        Command::BaseImage(c) => commands::code::base_image(&client()?, format, c).await?,
        Command::Function(c) => commands::functions::run(&client()?, format, c).await?,
        Command::Invoke(args) => {
            return commands::invocations::invoke(&client()?, format, args).await
        }
        Command::Logs(args) => commands::logs::run(&client()?, format, args).await?,
        Command::Runs(c) => commands::runs::run(&client()?, format, c).await?,
        Command::Invocation(c) => commands::invocations::invocation(&client()?, format, c).await?,
        Command::Secret(c) => commands::secrets::run(&client()?, format, c).await?,
        Command::Service(c) => commands::services::run(&client()?, format, c).await?,
        Command::Route(c) => commands::routes::run(&client()?, format, c).await?,
        Command::Registry(c) => commands::registries::run(&client()?, format, c).await?,
        Command::Flow(c) => return commands::flows::run(&client()?, format, c).await,
        Command::Admin(cli::AdminCommand::MigrateStore {
            from,
            to,
            store_connections,
        }) => {
            commands::admin::migrate_store(format, from, to, store_connections, master_key).await?
        }
        Command::Admin(c) => commands::admin::run(&client()?, format, c).await?,
        Command::Token(c) => commands::tokens::run(&client()?, format, c).await?,
        Command::Nodes => commands::nodes::run(&client()?, format).await?,
        Command::Event(c) => commands::events::run(&client()?, format, c).await?,
        Command::Subscription(c) => commands::subscriptions::run(&client()?, format, c).await?,
        Command::ExprWorker(_) => unreachable!("handled in main before the runtime starts"),
        Command::Completions { shell } => {
            // Generated into memory first: clap_complete panics when its writer fails.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "faasbox", &mut script);
            output::write_out(&script);
        }
    }
    Ok(true)
}
