//! `faasbox-oci`: the part of runc's command line that the runc driver uses (`create`, `run
//! --detach`, `start`, `state`, `kill`, `delete`, `list`, `pause`, `resume`), implemented on
//! youki's `libcontainer` instead of executing runc. The driver runs it for `--oci-runtime
//! libcontainer`: a container start then runs no Go runtime (runc starts Go twice per
//! container: `runc create`, and its init re-executing the runc binary); a create, start and
//! delete of the driver's own spec took 13 ms of CPU through libcontainer against runc's 31
//! (README, "Performance", round 10). The state of each container lives in `<root>/<id>/`
//! (libcontainer's layout).

mod bundle;
mod container_id;
mod control;
mod inspect;
mod spec_copy;
mod swap_limit;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// An OCI runtime with runc's command line (the subset faasbox's driver uses), on youki's
/// libcontainer.
#[derive(Debug, Parser)]
#[command(name = "faasbox-oci", version)]
struct Cli {
    /// The directory holding the containers' state (one directory per container).
    #[arg(long, default_value = "/run/faasbox-oci")]
    root: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Creates a container from a bundle and leaves its process waiting for `start`.
    Create(bundle::CreateArgs),
    /// Creates and starts a container (only detached: the command returns once it runs).
    Run {
        /// Return once the container's process runs (the only way this runtime runs one).
        #[arg(long, short = 'd')]
        detach: bool,
        #[command(flatten)]
        create: bundle::CreateArgs,
    },
    /// Lets the process of a created container run.
    Start {
        /// The container's id.
        id: String,
    },
    /// Prints the container's state as JSON (status, pid of its init).
    State {
        /// The container's id.
        id: String,
    },
    /// Sends a signal (a name like KILL or TERM, or a number) to the container's init.
    Kill {
        /// Send it to every process of the container.
        #[arg(long, short = 'a')]
        all: bool,
        /// The container's id.
        id: String,
        /// The signal (default TERM).
        #[arg(default_value = "TERM")]
        signal: String,
    },
    /// Removes a stopped container (with --force, kills it first).
    Delete {
        /// Kill a running container first.
        #[arg(long, short = 'f')]
        force: bool,
        /// The container's id.
        id: String,
    },
    /// Lists the containers in the root.
    List {
        /// `json` (the only format).
        #[arg(long, short = 'f', default_value = "json")]
        format: String,
    },
    /// Freezes every process of the container.
    Pause {
        /// The container's id.
        id: String,
    },
    /// Thaws the processes of a paused container.
    Resume {
        /// The container's id.
        id: String,
    },
}

fn main() -> ExitCode {
    // libcontainer reports through `tracing`: its errors go to stderr, which the driver
    // keeps in the instance's log and quotes when a start fails.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FAASBOX_OCI_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .without_time()
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("faasbox-oci: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let root = cli.root;
    match cli.command {
        Command::Create(args) => bundle::create(&root, &args).map(drop),
        Command::Run { detach, create } => {
            anyhow::ensure!(
                detach,
                "only `run --detach` is supported: this runtime never waits for the container"
            );
            bundle::create(&root, &create)?.start()?;
            Ok(())
        }
        Command::Start { id } => control::start(&root, &id),
        Command::State { id } => inspect::state(&root, &id),
        Command::Kill { all, id, signal } => control::kill(&root, &id, &signal, all),
        Command::Delete { force, id } => control::delete(&root, &id, force),
        Command::List { format } => {
            anyhow::ensure!(format == "json", "unknown format {format:?}: use json");
            inspect::list(&root)
        }
        Command::Pause { id } => control::pause(&root, &id),
        Command::Resume { id } => control::resume(&root, &id),
    }
}
