//! The command line: every subcommand and flag, with the help text users read.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "faasbox",
    version,
    about = "Run any OCI image as a serverless function, in one binary",
    long_about = "Run any OCI image as a serverless function, in one binary.\n\n\
        Start a server with `faasbox server`, then use the other commands to talk to it:\n\
        \n  faasbox ns create demo\
        \n  faasbox image import echo.tar --name demo/echo -n demo\
        \n  faasbox fn deploy demo/echo --image demo/echo\
        \n  faasbox invoke demo/echo --data '{\"hello\":\"world\"}'\
        \n  faasbox logs <invocation-id>\n\n\
        Client commands find the server through FAASBOX_URL (default http://127.0.0.1:8470) and\n\
        send the API token of --token or FAASBOX_TOKEN; without either, the admin token file\n\
        $FAASBOX_DATA_DIR/admin.token (default /var/lib/faasbox/admin.token) if it is readable."
)]
pub struct Cli {
    /// The server to talk to.
    #[arg(
        long,
        global = true,
        env = "FAASBOX_URL",
        default_value = "http://127.0.0.1:8470",
        help_heading = GLOBAL
    )]
    pub url: String,
    /// The API token (default: the server's admin.token file, when this user can read it).
    #[arg(
        long,
        global = true,
        env = "FAASBOX_TOKEN",
        hide_env_values = true,
        help_heading = GLOBAL
    )]
    pub token: Option<String>,
    /// How to print results: text for people; json for scripts (one JSON document, or one
    /// object per line for followed logs).
    #[arg(
        long,
        short = 'o',
        global = true,
        value_enum,
        default_value_t = OutputFormat::Text,
        help_heading = GLOBAL
    )]
    pub output: OutputFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// The help heading of the flags every command takes.
const GLOBAL: &str = "Global options";

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the faasbox server (API, function instances, image store).
    Server(ServerArgs),
    /// Create, list and delete namespaces.
    #[command(subcommand, alias = "namespace")]
    Ns(NsCommand),
    /// Import, pull, push, list, remove and prune images: a namespace's (-n) or the
    /// server-wide ones.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Make images with a language interpreter into base images for functions from code.
    #[command(
        subcommand,
        name = "base-image",
        long_about = "Base images: an image that holds a language interpreter (python3, nodejs, or \
            a POSIX shell), registered for that language. Functions from code and images with \
            dependencies are built on them; nothing faasbox-specific needs to be inside.\n\
            \n  faasbox image import python.tar --name debian/python:12 -n demo\
            \n  faasbox base-image create python3-base debian/python:12 --language python3 -n demo\
            \n  faasbox image build python3-deps --base-image python3-base --runtime-deps requirements.txt -n demo\
            \n  faasbox fn create demo/hello ./src --image python3-deps --handler hello.handle"
    )]
    BaseImage(BaseImageCommand),
    /// Deploy, update, show, list and delete functions; their revisions and rollback;
    /// create functions from code.
    #[command(subcommand, name = "fn", alias = "function")]
    Function(FnCommand),
    /// Call a function and print its JSON output; with --async, queue the call (a run) and
    /// print its id at once.
    #[command(after_help = "Examples:\n  \
        faasbox invoke demo/echo --data '{\"a\":1}'     prints the output; the call's id on stderr\n  \
        faasbox invoke demo/echo --data @input.json\n  \
        echo '{}' | faasbox invoke demo/echo --data -\n  \
        faasbox invoke demo/echo -o json              {\"invocation\": ID, \"output\": …}\n  \
        faasbox invoke demo/echo --async              prints the run id; `faasbox runs get ID` shows it\n  \
        faasbox invoke demo/echo --async --callback http://hooks.internal:8080/done\n  \
        faasbox invoke --global resize -n demo --data '{\"width\":200}'")]
    Invoke(InvokeArgs),
    /// Runs: every call of a function, with its input, output, logs, error and times. List,
    /// show, follow and cancel them.
    #[command(
        subcommand,
        alias = "run",
        long_about = "Runs: every call of a function is a run with a record (input, output, logs, \
            error, status, times, cold start). Asynchronous calls (`faasbox invoke --async`) are \
            queued runs that the server executes later, also after a restart.\n\
            \n  faasbox invoke demo/echo --data '{\"a\":1}' --async     prints the run id\
            \n  faasbox runs ls demo/echo --since 10m                  the function's runs of the last 10 minutes\
            \n  faasbox runs get <run id>                              every field of the run\
            \n  faasbox runs logs <run id> --follow                    its lines until it ends\
            \n  faasbox runs cancel <run id>                           stops a queued or running run"
    )]
    Runs(RunsCommand),
    /// Print one call's log lines, or a function's recent lines across its calls (NS/FN);
    /// --follow keeps printing.
    Logs(LogsArgs),
    /// Show one call (status, times, error), or list a namespace's recent calls (the older
    /// name of `faasbox runs get|ls`, kept for scripts).
    #[command(subcommand, hide = true, alias = "invocations")]
    Invocation(InvocationCommand),
    /// Set, list and delete a namespace's secrets (values are never shown).
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Create, list, show and remove a namespace's service instances, which functions bind
    /// with `services` (secret parameters are never shown).
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Add, list and remove container registry credentials (passwords are never shown).
    #[command(subcommand)]
    Registry(RegistryCommand),
    /// Deploy and run Direktiv workflows; list, follow and cancel their instances.
    #[command(
        subcommand,
        long_about = "Deploy and run Direktiv workflows (direktiv_api: workflow/v1); list, follow \
            and cancel their instances.\n\n\
            A flow whose action calls the namespace function `greet`:\n\
            \n  functions:\
            \n  - {id: greet, type: knative-namespace, service: greet}\
            \n  states:\
            \n  - id: hello\
            \n    type: action\
            \n    action: {function: greet, input: {name: 'jq(.name)'}}\
            \n    transform: {greeting: 'jq(.return.greeting)'}\n\
            \n  faasbox flow deploy demo/hello hello.yaml\
            \n  faasbox flow run demo/hello --data '{\"name\":\"Ada\"}' --wait\
            \n  faasbox flow logs <instance id> --follow\n\n\
            More in examples/flows/ and the README's Workflows section."
    )]
    Flow(FlowCommand),
    /// Administration: master-key rotation, moving a data directory to PostgreSQL.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Create, list and delete API tokens (needs the admin token).
    #[command(subcommand)]
    Token(TokenCommand),
    /// The servers sharing this server's store: state, last heartbeat, capacity and load
    /// (needs the admin token).
    #[command(
        long_about = "The servers sharing this server's store (several servers on one \
            PostgreSQL database form one platform; with SQLite there is one). Each server \
            beats every third of its lease (--cluster-lease-seconds, 15 s by default); one that \
            misses a whole lease is declared dead and another takes its runs and flow \
            instances over. STATE is up, left (stopped gracefully) or dead.\n\
            \n  faasbox nodes\
            \n  faasbox nodes -o json      with capacity and the lease"
    )]
    Nodes,
    /// Send CloudEvents into a namespace (they start and resume flows), list received ones.
    #[command(subcommand)]
    Event(EventCommand),
    /// Run a function for each matching CloudEvent a namespace accepts (event subscriptions).
    #[command(
        subcommand,
        long_about = "Event subscriptions: a namespace's function runs asynchronously (as a run, \
            `faasbox runs ls`) for each CloudEvent the namespace accepts from now on with the \
            type, whose source and context attributes match the patterns (`*` is any run of \
            characters). The run's input is the event's data ({} without data), its `event` the \
            event without the data; each event runs a subscription's function once, also across \
            a restart of the server.\n\
            \n  faasbox subscription create demo/on-order --function ship --type order.created \\\
            \n      --source '/shop/*' --context region=eu-*\
            \n  faasbox event send demo --type order.created --source /shop/web --context region=eu-west \\\
            \n      --data '{\"order\": 7}'      # runs ship with {\"order\": 7}\
            \n  faasbox subscription ls demo\
            \n  faasbox subscription rm demo/on-order"
    )]
    Subscription(SubscriptionCommand),
    /// Give a function or a flow a public URL: webhooks (GitHub, Slack), web actions, an API
    /// gateway. Create, update, list, show, enable, disable and remove routes.
    #[command(
        subcommand,
        long_about = "HTTP routes: a route serves a function or a flow of a namespace at \
            /ns/NAMESPACE/PATH on the server (and at PATH on its --host names), without a \
            faasbox API call: the caller needs no faasbox token unless the route says --auth \
            token. Each call is a run (`faasbox runs ls`). docs/ROUTES.md has every field.\n\
            \nA GitHub webhook, its signature checked with a namespace secret:\
            \n  faasbox secret set demo/github-hook --from-file hook-secret.txt\
            \n  faasbox route create demo/github --path /hooks/github --method POST \\\
            \n      --function on-push --auth hmac-sha256 --secret github-hook\
            \n  # GitHub: payload URL http://SERVER:8470/ns/demo/hooks/github, content type\
            \n  # application/json, the same secret\n\
            \nA form's endpoint with basic authentication and a rate limit:\
            \n  faasbox route create demo/contact --path /contact --method POST --function contact \\\
            \n      --auth basic --user alice=@alice.pw --rate 5 --burst 10\n\
            \n  faasbox route ls demo\
            \n  faasbox route disable demo/github      # answers 404 until enabled again\
            \n  faasbox route rm demo/github"
    )]
    Route(RouteCommand),
    /// Print a shell completion script (e.g. `faasbox completions bash > /etc/bash_completion.d/faasbox`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Internal: evaluates jq expressions for the server, which starts it (see the
    /// architecture document); speaks a binary protocol on stdin and stdout.
    #[command(name = "expr-worker", hide = true)]
    ExprWorker(ExprWorkerArgs),
}

#[derive(Args, Debug)]
pub struct ExprWorkerArgs {
    /// Bytes the worker may allocate beyond what it holds at start.
    #[arg(long)]
    pub memory: u64,
    /// CPU time per job, in milliseconds.
    #[arg(long)]
    pub cpu_ms: u64,
    /// The largest result, in bytes.
    #[arg(long)]
    pub max_output: usize,
}

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// A TOML file with any of these settings under the flags' names (`data-dir = "/srv/faasbox"`,
    /// `ready-timeout = "30s"`); flags and environment variables win over it.
    /// Default: /etc/faasbox/faasbox.toml when it exists.
    #[arg(long, env = "FAASBOX_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where the database, images and instance state live.
    #[arg(long, env = "FAASBOX_DATA_DIR", default_value = faasbox_server::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Where the server keeps its state: `sqlite` (the database <data-dir>/faasbox.db) or a
    /// PostgreSQL database, postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE. With PostgreSQL,
    /// give the master key from outside (FAASBOX_MASTER_KEY_FILE); images stay in the data
    /// directory. Move a data directory's state over with `faasbox admin migrate-store`.
    #[arg(
        long,
        env = "FAASBOX_STORE",
        hide_env_values = true,
        value_name = "sqlite|postgres://…",
        default_value = faasbox_server::config::STORE_SQLITE
    )]
    pub store: String,
    /// Connections to a PostgreSQL store at most, 1 to 1000 (default 16).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub store_connections: Option<u32>,
    /// Address to serve the API on.
    #[arg(long, env = "FAASBOX_LISTEN", default_value = faasbox_server::DEFAULT_LISTEN)]
    pub listen: std::net::SocketAddr,
    /// The static faasbox-agent binary (default: next to this binary).
    #[arg(long, env = "FAASBOX_AGENT")]
    pub agent: Option<PathBuf>,
    /// The runc binary.
    #[arg(long, env = "FAASBOX_RUNC", default_value = "runc")]
    pub runc: PathBuf,
    /// Which OCI runtime runs functions of the runtime class runc: runc (the default), crun
    /// (package crun: the same command line, less CPU per container start, so faster cold
    /// starts when many instances start at once) or libcontainer (faasbox-oci, built with
    /// faasbox on youki's libcontainer: less CPU per start too, nothing to install). gVisor
    /// (--runtime runsc) is not affected.
    #[arg(long, env = "FAASBOX_OCI_RUNTIME", default_value = "runc", value_parser = parse_oci_runtime)]
    pub oci_runtime: faasbox_server::config::OciRuntime,
    /// The crun binary, for --oci-runtime crun.
    #[arg(long, env = "FAASBOX_CRUN", default_value = "crun")]
    pub crun: PathBuf,
    /// The faasbox-oci binary, for --oci-runtime libcontainer (default: next to this binary).
    #[arg(long, env = "FAASBOX_OCI")]
    pub faasbox_oci: Option<PathBuf>,
    /// The runsc (gVisor) binary, for functions deployed with --runtime runsc.
    #[arg(long, env = "FAASBOX_RUNSC", default_value = "runsc")]
    pub runsc: PathBuf,
    /// What gives functions their outbound network: slirp4netns (package slirp4netns, the
    /// default: about 0.5 MiB per instance, quick to start; IPv6 through its own fd00::/64
    /// where the host has an IPv6 default route) or pasta (package passt: about 29 MiB per
    /// instance unless the host merges identical pages, slower to start when many instances
    /// start at once; choose it for the host's own IPv6 addresses and routes in functions).
    /// See the README's Performance section, "Memory".
    #[arg(long, env = "FAASBOX_NETWORK_HELPER", default_value = "slirp4netns", value_parser = parse_network_helper)]
    pub network_helper: faasbox_server::config::NetworkHelper,
    /// The pasta binary (package passt), for --network-helper pasta.
    #[arg(long, env = "FAASBOX_PASTA", default_value = "pasta")]
    pub pasta: PathBuf,
    /// The slirp4netns binary (package slirp4netns), for --network-helper slirp4netns.
    #[arg(long, env = "FAASBOX_SLIRP4NETNS", default_value = "slirp4netns")]
    pub slirp4netns: PathBuf,
    /// How long a function may take to accept calls after its instance starts.
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    pub ready_timeout: std::time::Duration,
    /// Calls that may wait for a busy function before new ones are refused.
    #[arg(long, default_value_t = 100)]
    pub queue_limit: usize,
    /// How long a call waits for a free instance.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub queue_timeout: std::time::Duration,
    /// How long a blocking invoke waits for its run; past it, the answer is 202 with the run's
    /// id (`faasbox runs get ID`) and the run goes on.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub blocking_timeout: std::time::Duration,
    /// Runs (call records with their logs) kept per namespace; older ended ones are removed.
    #[arg(long, default_value_t = 10_000)]
    pub runs_keep: u32,
    /// How long ended runs are kept (e.g. 7d, 12h).
    #[arg(long, default_value = "7d", value_parser = parse_duration)]
    pub runs_max_age: std::time::Duration,
    /// Let functions reach this host's loopback services (127.0.0.1, ::1) through their
    /// gateway address. RISK: every function can then talk to whatever listens there —
    /// databases, registries, this server's API. For development and tests only.
    #[arg(long, env = "FAASBOX_ALLOW_HOST_LOOPBACK", value_parser = clap::builder::FalseyValueParser::new())]
    pub allow_host_loopback: bool,
    /// Network namespaces with their network helper made ahead of demand, so that a cold
    /// start of a function with network does not wait for them (milliseconds with
    /// slirp4netns, tens with pasta). Each idle one holds about 0.5 MiB with slirp4netns
    /// (about 29 MiB with pasta: its buffers; less where the host runs same-page merging, see
    /// the README's Performance section); 0 makes them at each start. At most 32.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=32))]
    pub spare_networks: u32,
    /// Containers created ahead of demand per function ("stem cells"): after a start of a
    /// runc function, this many instances of exactly its spec are kept created (root
    /// filesystem, network, `runc create` done; nothing of the function run), so its next
    /// cold start only runs `runc start`. Made in the background, at most 8 times this many
    /// in all, removed after 60 s unclaimed. Each idle one holds a container's init (about
    /// 2 MiB of its own) and, with network, its network helper; 0 makes none. At most 8.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=8))]
    pub spare_containers: u32,
    /// The writable space of an image build's builder (what the packages it installs may
    /// take up). It is memory (a tmpfs) while the build runs.
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    pub build_disk: u64,
    /// The certificate bundle (PEM) pip and npm trust in image builds: by default this
    /// host's, so builds pass the TLS-inspecting proxies the host passes; `none`: the base
    /// image's own certificates only.
    #[arg(long, default_value = faasbox_server::config::DEFAULT_BUILD_CA_FILE)]
    pub build_ca_file: String,
    /// Log filter (e.g. info, debug, faasbox_core=debug for the call path, faasbox_http=debug for requests).
    #[arg(long, env = "FAASBOX_LOG", default_value = "info")]
    pub log: String,
    // --- limits: uploads, memory, namespace quotas ---
    /// The largest image archive an import accepts, and the most a registry pull downloads
    /// (its layers together, as the manifest gives them; larger: 413).
    #[arg(long, default_value = "16GiB", value_parser = parse_size)]
    pub max_upload_size: u64,
    /// The most one image layer's files may add up to, each at its apparent size (a sparse
    /// file counts at its full length).
    #[arg(long, default_value = "16GiB", value_parser = parse_size)]
    pub max_layer_size: u64,
    /// Functions one namespace may have (global services not counted).
    #[arg(long, default_value_t = 200)]
    pub quota_functions: u32,
    /// The most `scale.min` (warm instances) one namespace's functions may add up to.
    #[arg(long, default_value_t = 20)]
    pub quota_min_scale: u32,
    /// Instances one namespace's functions (and flows) may run at once.
    #[arg(long, default_value_t = 50)]
    pub quota_instances: u32,
    /// Request bodies (invoke and flow-run inputs) and the outputs of their calls held in
    /// memory at once; calls beyond it wait up to --queue-timeout, then get 503.
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    pub body_budget: u64,

    // Bounds of expressions and flow instances.
    /// CPU time one jq evaluation may use (a template's expressions together), 10ms to 10m.
    #[arg(long, default_value = "1s", value_parser = parse_jq_cpu_time)]
    pub jq_cpu_time: std::time::Duration,
    /// Memory one jq evaluation may allocate (its data included), 16MiB to 64GiB.
    #[arg(long, default_value = "512MiB", value_parser = parse_jq_memory)]
    pub jq_memory: u64,
    /// The largest result of one jq evaluation, as JSON, 1KiB to 1GiB.
    #[arg(long, default_value = "16MiB", value_parser = parse_jq_max_output)]
    pub jq_max_output: u64,
    /// jq evaluations running at once, each in a worker process (default: one per CPU, at
    /// least 2), 1 to 256.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jq_workers: Option<u16>,
    /// The most states one flow instance may run (a loop ends there), 1 to 100000000.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub flow_max_transitions: u64,
    /// The largest instance data of a flow, as JSON, 1KiB to 1GiB.
    #[arg(long, default_value = "8MiB", value_parser = parse_flow_max_data)]
    pub flow_max_data: u64,

    // The web UI (`[ui]` in the file).
    /// Hours a web UI sign-in lasts at most, however used, 1 to 720 (file: `[ui]
    /// session_hours`). Sessions are kept in the store: a restart signs nobody out.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=720))]
    pub ui_session_hours: u32,
    /// Minutes a web UI sign-in lasts unused, 1 to 1440 (file: `[ui] idle_minutes`).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=1440))]
    pub ui_idle_minutes: u32,
    /// Mark the web UI's session cookie `Secure` (sent over HTTPS only): set it when the
    /// server is reached through HTTPS (file: `[ui] secure_cookie`).
    #[arg(long, env = "FAASBOX_UI_SECURE_COOKIE", value_parser = clap::builder::FalseyValueParser::new())]
    pub ui_secure_cookie: bool,

    // Several servers on one store (`[cluster]` in the file).
    /// Seconds a server's work stays its own without a heartbeat, 3 to 3600 (file: `[cluster]
    /// lease_seconds`): a server that stops beating for this long is declared dead and another
    /// takes over its runs. Heartbeats go every third of it.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(3..=3600))]
    pub cluster_lease_seconds: u64,
    /// The URL of this server's API as the other servers and `faasbox nodes` show it (file:
    /// `[cluster] advertise`; default: http://<listen address>, the host's name for 0.0.0.0).
    #[arg(long)]
    pub cluster_advertise: Option<String>,
    /// The OCI registry that carries images between the servers of a cluster, as
    /// `http(s)://HOST[:PORT][/PATH]` (file: `[cluster] registry`): an image imported or pulled
    /// through any server is pushed there and every other server pulls it by digest. The
    /// server-wide credentials of that host (`faasbox registry add --global HOST`) are used.
    #[arg(long, env = "FAASBOX_CLUSTER_REGISTRY")]
    pub cluster_registry: Option<String>,
}

pub fn parse_size(text: &str) -> Result<u64, String> {
    faasbox_server::model::parse_size(text)
}

pub fn parse_jq_cpu_time(text: &str) -> Result<std::time::Duration, String> {
    let d = parse_duration(text)?;
    let (min, max) = (
        std::time::Duration::from_millis(10),
        std::time::Duration::from_secs(600),
    );
    if d < min || d > max {
        return Err(format!("{text} is outside 10ms to 10m"));
    }
    Ok(d)
}

fn parse_size_within(text: &str, min: u64, max: u64, range: &str) -> Result<u64, String> {
    let n = faasbox_server::model::parse_size(text)?;
    if n < min || n > max {
        return Err(format!("{text} is outside {range}"));
    }
    Ok(n)
}

pub fn parse_jq_memory(text: &str) -> Result<u64, String> {
    parse_size_within(text, 16 << 20, 64 << 30, "16MiB to 64GiB")
}

pub fn parse_jq_max_output(text: &str) -> Result<u64, String> {
    parse_size_within(text, 1 << 10, 1 << 30, "1KiB to 1GiB")
}

pub fn parse_flow_max_data(text: &str) -> Result<u64, String> {
    parse_size_within(text, 1 << 10, 1 << 30, "1KiB to 1GiB")
}

pub fn parse_network_helper(text: &str) -> Result<faasbox_server::config::NetworkHelper, String> {
    text.parse()
        .map_err(|e: faasbox_server::config::UnknownNetworkHelper| e.to_string())
}

pub fn parse_oci_runtime(text: &str) -> Result<faasbox_server::config::OciRuntime, String> {
    text.parse()
        .map_err(|e: faasbox_server::config::UnknownOciRuntime| e.to_string())
}

pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    faasbox_server::model::parse_duration(text)
}

/// The function sizes `--size` takes.
const SIZES: [&str; 3] = ["small", "medium", "large"];
/// The OCI runtimes `--runtime` takes.
const RUNTIMES: [&str; 2] = ["runc", "runsc"];

/// A duration flag, checked here and sent as written (so errors name the flag, not the JSON
/// the CLI builds from it).
fn duration_text(text: &str) -> Result<String, String> {
    parse_duration(text).map(|_| text.to_string())
}

/// A size flag ("64MiB"), checked here and sent as written.
fn size_text(text: &str) -> Result<String, String> {
    faasbox_server::model::parse_size(text).map(|_| text.to_string())
}

/// A command line, checked to split like a shell splits it, sent as written.
fn command_text(text: &str) -> Result<String, String> {
    match faasbox_server::model::split_command(text) {
        Ok(words) if words.is_empty() => Err("the command line is empty".to_string()),
        Ok(_) => Ok(text.to_string()),
        Err(e) => Err(e),
    }
}

#[derive(Subcommand)]
pub enum NsCommand {
    /// Create a namespace.
    Create { name: String },
    /// List namespaces.
    Ls,
    /// Delete a namespace with its functions and invocations.
    Rm { name: String },
}

#[derive(Subcommand)]
pub enum ImageCommand {
    /// Import an image: a `docker save` archive, an OCI image layout (directory or tar), or a
    /// plain root filesystem tarball (give it --entrypoint/--cmd, like `docker import --change`).
    /// With -n it goes into that namespace's images; without, into the server-wide images
    /// (admin token).
    #[command(after_help = "Examples:\n  \
        faasbox image import echo.docker.tar --name demo/echo -n demo\n  \
        faasbox image import ./oci-layout-dir --name demo/echo:v2 -n demo\n  \
        faasbox image import rootfs.tar --name demo/raw -n demo --entrypoint '/bin/server --port 8080'\n  \
        faasbox image import base.tar --name base/python       server-wide (admin token)")]
    Import(ImportArgs),
    /// List images: a namespace's, the server-wide ones (--global), or without either every
    /// table the token sees (a NAMESPACE column says which).
    Ls {
        /// The namespace whose images to list.
        #[arg(conflicts_with = "global")]
        namespace: Option<String>,
        /// The server-wide images.
        #[arg(long)]
        global: bool,
    },
    /// Remove an image name; layers no other image uses are deleted. An image a function's
    /// revision uses is refused unless --force (those functions fail at their next start).
    Rm {
        name: String,
        /// The namespace whose image it is (without: a server-wide image, admin token).
        #[arg(long, short = 'n')]
        namespace: Option<String>,
        /// Remove it although functions use it, and say which will fail.
        #[arg(long)]
        force: bool,
    },
    /// Remove the images no function revision or flow uses, and the layers only they had;
    /// prints what it removed and the space freed.
    Prune {
        /// The namespace whose images to prune (without: the server-wide ones, admin token).
        #[arg(long, short = 'n')]
        namespace: Option<String>,
    },
    /// Pull an image from a registry. With -n into that namespace's images, with the
    /// namespace's registry credentials, then the global ones; without, into the server-wide
    /// images with the global credentials (admin token).
    #[command(after_help = "Examples:\n  \
        faasbox image pull registry.example.com/demo/echo:1 -n demo\n  \
        faasbox image pull 127.0.0.1:5000/tools/resize:1       server-wide (admin token)")]
    Pull {
        /// The image reference, e.g. 127.0.0.1:5000/demo/echo:latest.
        reference: String,
        #[arg(long, short = 'n')]
        namespace: Option<String>,
    },
    /// Push an image to a registry: one of the namespace's images with -n (its credentials,
    /// then the global ones), else a server-wide image (admin token).
    #[command(after_help = "Examples:\n  \
        faasbox image push demo/echo:latest registry.example.com/demo/echo:v2 -n demo")]
    Push {
        /// The image name or digest.
        name: String,
        /// The registry reference to push to, e.g. 127.0.0.1:5000/demo/echo:latest.
        target: String,
        #[arg(long, short = 'n')]
        namespace: Option<String>,
    },
    /// Build an image with dependencies from a base image: the system packages installed
    /// with the base's package manager (apt or apk), the runtime dependencies with pip or npm,
    /// inside a faasbox container; the changes become one more layer. The build log is
    /// printed as it grows; the exit status is non-zero when the build fails. The same base
    /// and the same dependency files reuse the layer built before. Building an existing name
    /// again rebuilds it.
    #[command(after_help = "Examples:\n  \
        faasbox image build python3-deps --base-image python3-base --runtime-deps requirements.txt -n demo\n  \
        faasbox image build node-deps --base-image node-base --runtime-deps package.json -n demo\n  \
        faasbox image build tools --base-image python3-base --system-packages packages.txt -n demo\n  \
        (packages.txt: one package a line, `curl` or `curl=7.88.1-10`)\n\n\
        The built image is also one of the namespace's images (`faasbox image ls demo`); see\n\
        the builds with `faasbox image builds ls demo`.")]
    Build(Box<BuildArgs>),
    /// List, show, print the logs of and delete image builds (`image build` makes them).
    #[command(subcommand)]
    Builds(BuildsCommand),
}

#[derive(Args)]
pub struct BuildArgs {
    /// The name of the image to build (NAME with -n, or NAMESPACE/NAME).
    pub name: String,
    /// The namespace whose image it is (instead of writing NAMESPACE/NAME).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// The base image to build on (see `faasbox base-image ls`).
    #[arg(long, value_name = "BASE_IMAGE")]
    pub base_image: String,
    /// A file naming system packages, one a line: `name` or `name=version` (blank lines and
    /// lines starting with # are skipped).
    #[arg(long, value_name = "FILE")]
    pub system_packages: Option<PathBuf>,
    /// The runtime dependencies: a requirements.txt (python3) or package.json (nodejs), sent
    /// as it is.
    #[arg(long, value_name = "FILE")]
    pub runtime_deps: Option<PathBuf>,
    /// Return once the build is accepted instead of following its log
    /// (`faasbox image builds logs NAME -n NS -f` follows it later).
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Subcommand)]
pub enum BuildsCommand {
    /// List a namespace's image builds.
    Ls { namespace: String },
    /// Show one build: base image, dependencies, status and reason, digest.
    Get {
        /// NAME with -n, or NAMESPACE/NAME.
        name: String,
        /// The namespace (instead of writing NAMESPACE/NAME).
        #[arg(long, short = 'n')]
        namespace: Option<String>,
    },
    /// Print a build's log; --follow prints new lines until it is done.
    Logs {
        /// NAME with -n, or NAMESPACE/NAME.
        name: String,
        /// The namespace (instead of writing NAMESPACE/NAME).
        #[arg(long, short = 'n')]
        namespace: Option<String>,
        /// Keep printing new lines until the build is done.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Delete a build (the record and its log).
    Rm {
        /// NAME with -n, or NAMESPACE/NAME.
        name: String,
        /// The namespace (instead of writing NAMESPACE/NAME).
        #[arg(long, short = 'n')]
        namespace: Option<String>,
    },
}

/// The languages of base images and functions from code.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LanguageArg {
    /// Python 3: the handler is `module.function` (default function `handle`).
    Python3,
    /// Node.js: the handler is a module whose `module.exports` is the function (or
    /// `module.name` for one of its exports).
    Nodejs,
    /// A POSIX shell script: the payload on stdin, the JSON result on stdout.
    Shell,
}

impl LanguageArg {
    pub fn as_str(self) -> &'static str {
        match self {
            LanguageArg::Python3 => "python3",
            LanguageArg::Nodejs => "nodejs",
            LanguageArg::Shell => "shell",
        }
    }
}

#[derive(Subcommand)]
pub enum BaseImageCommand {
    /// Register an image as a base image for a language. REF is one of the namespace's
    /// images (`faasbox image ls NS`) or a registry reference, pulled as `image pull` does.
    #[command(after_help = "Examples:\n  \
        faasbox base-image create python3-base debian/python:12 --language python3 -n demo\n  \
        faasbox base-image create node-base registry.example.com/library/node:20 --language nodejs -n demo")]
    Create {
        /// The base image's name (NAME with -n, or NAMESPACE/NAME).
        name: String,
        /// The image: a name in the namespace's images or a registry reference.
        reference: String,
        /// The language its interpreter runs.
        #[arg(long, value_enum)]
        language: LanguageArg,
        /// The namespace (instead of writing NAMESPACE/NAME).
        #[arg(long, short = 'n')]
        namespace: Option<String>,
    },
    /// List a namespace's base images.
    Ls { namespace: String },
    /// Show one base image.
    Get {
        /// NAME with -n, or NAMESPACE/NAME.
        name: String,
        /// The namespace (instead of writing NAMESPACE/NAME).
        #[arg(long, short = 'n')]
        namespace: Option<String>,
    },
    /// Delete a base image (the image itself stays in the namespace's images).
    Rm {
        /// NAME with -n, or NAMESPACE/NAME.
        name: String,
        /// The namespace (instead of writing NAMESPACE/NAME).
        #[arg(long, short = 'n')]
        namespace: Option<String>,
    },
}

#[derive(Args)]
pub struct ImportArgs {
    /// The archive file or OCI layout directory.
    pub file: PathBuf,
    /// The reference to store it under, e.g. demo/echo:latest.
    #[arg(long)]
    pub name: String,
    /// The namespace whose images it joins (without: the server-wide images, admin token).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// Root filesystem tarballs: the entrypoint, as a command line or a JSON array.
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Root filesystem tarballs: the default arguments, as a command line or a JSON array.
    #[arg(long)]
    pub cmd: Option<String>,
    /// Root filesystem tarballs: an environment variable (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Root filesystem tarballs: the working directory.
    #[arg(long)]
    pub workdir: Option<String>,
    /// Root filesystem tarballs: the user (uid[:gid] or name).
    #[arg(long)]
    pub user: Option<String>,
}

#[derive(Subcommand)]
pub enum FnCommand {
    /// Create (or replace) a function from code: SRC, a file or a directory, is packed as a
    /// tar.gz and built onto --image (an image build's name or a base image's name) by the
    /// server, which checks the handler at build time. The build log is printed as it grows;
    /// the command ends with READY, or fails with the reason.
    #[command(after_help = "Examples:\n  \
        faasbox fn create demo/hello ./src --image python3-base --handler hello.handle\n  \
        faasbox fn create demo/greet greet.js --image node-base --handler greet\n  \
        faasbox fn create demo/fetch ./src --image python3-deps --handler main.handle \\\n      \
        --secret api-token --schema-in in.json --timeout 1m\n\n\
        Python: `hello.handle` is function handle of hello.py, called as handle(context, payload).\n\
        Node.js: `greet` is greet.js, whose module.exports = (context, payload) => … (async allowed).\n\
        Shell: `run.sh` gets the payload on stdin and prints the JSON result on stdout.\n\
        The result is the call's output; ValueError/TypeError (Node.js: TypeError) is an InputError,\n\
        any other exception a FunctionError. Show it with `faasbox fn get demo/hello`.")]
    Create(Box<CreateArgs>),
    /// Print the build log of a function from code; --follow prints new lines until it is done.
    BuildLogs {
        /// NAMESPACE/NAME of the function.
        function: String,
        /// Keep printing new lines until the build is done.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Deploy (create or replace) a function: the whole spec, with its image (a name from
    /// `faasbox image ls`, or a registry reference, pulled as --pull says) pinned to a digest;
    /// over an existing function it prints which fields changed.
    #[command(after_help = "Examples:\n  \
        faasbox fn deploy demo/echo --image demo/echo --env MODE=echo --timeout 30s\n  \
        faasbox fn deploy demo/sh --image demo/tools --cmd /usr/share/direktiv/direktiv-cmd\n  \
        faasbox fn deploy demo/act --image demo/tools --contract openwhisk --code ./action.sh\n  \
        faasbox fn deploy demo/api --image registry.example.com/team/api:1 --pull always\n  \
        faasbox fn deploy demo/getter --image demo/request --secret token --input @template.json\n  \
        (template.json: {\"auth\": \"bearer jq(.secrets.token)\", \"data\": \"jq(.input)\"})")]
    Deploy(Box<DeployArgs>),
    /// Change only the given settings of a function (a new revision; the image stays pinned
    /// unless --image or --pull is given).
    #[command(after_help = "Examples:\n  \
        faasbox fn update demo/echo --env MODE=plain --timeout 1m\n  \
        faasbox fn update demo/echo --unset-env MODE --max-scale 3\n  \
        faasbox fn update demo/echo --pull always          resolve the image's tag again")]
    Update(Box<UpdateArgs>),
    /// List a function's revisions (NAMESPACE/NAME, or --global NAME).
    History {
        function: String,
        #[arg(long)]
        global: bool,
    },
    /// Make an earlier revision current again (default: the one before the current); calls in
    /// flight finish on the old instances.
    Rollback {
        function: String,
        #[arg(long)]
        global: bool,
        /// The revision to go back to (see `fn history`).
        #[arg(long, value_name = "REVISION")]
        to: Option<u32>,
    },
    /// List a namespace's functions, or the global services with --global.
    Ls {
        #[arg(required_unless_present = "global")]
        namespace: Option<String>,
        #[arg(long, conflicts_with = "namespace")]
        global: bool,
    },
    /// List a function's running instances: id, revision, when started, calls served, busy or
    /// idle (NAMESPACE/NAME).
    Instances { function: String },
    /// Show a function's spec, revision, image digest and state, and instances (NAMESPACE/NAME,
    /// or --global NAME); for a function from code also its build under `code`: handler,
    /// language, the built image's digest, status and reason.
    Get {
        function: String,
        #[arg(long)]
        global: bool,
    },
    /// Delete a function; its instances stop (NAMESPACE/NAME, or --global NAME).
    Rm {
        function: String,
        #[arg(long)]
        global: bool,
    },
}

/// When a deploy pulls the image.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PullPolicyArg {
    /// Pull at every deploy (default for references with a registry host).
    Always,
    /// Pull only if the image is not local (default for local names).
    Missing,
    /// Never pull.
    Never,
}

impl PullPolicyArg {
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicyArg::Always => "always",
            PullPolicyArg::Missing => "missing",
            PullPolicyArg::Never => "never",
        }
    }
}

#[derive(Args)]
pub struct DeployArgs {
    /// NAMESPACE/NAME of the function, or NAME with --global.
    pub function: String,
    /// Deploy a global service (admin token): one function every namespace can call with
    /// `faasbox invoke --global NAME --namespace NS`; its image pulls may use the
    /// global-private registries.
    #[arg(long)]
    pub global: bool,
    /// The image to run: a name in the namespace's images or the server-wide ones (see
    /// `faasbox image ls`), or a registry reference. It is pinned to its digest now.
    #[arg(long)]
    pub image: String,
    /// When to pull the image: always (default for references naming a registry host, so a
    /// moved tag is picked up), missing, or never.
    #[arg(long, value_enum)]
    pub pull: Option<PullPolicyArg>,
    /// How faasbox talks to the function: http (Direktiv functions: a server on port 8080),
    /// cmd (Direktiv generic containers: the input's commands run in the image), file
    /// (Direktiv isolates: /direktiv-data/data.in → entrypoint → data.out) or openwhisk
    /// (docker actions: /action/exec prints its JSON result as the last line).
    #[arg(long, default_value = "http", value_parser = ["http", "cmd", "file", "openwhisk"])]
    pub contract: String,
    /// openwhisk: the action's code, a script or binary (sent as text) or a .zip with an `exec`
    /// at its root (sent as base64 with binary: true). Without it the image's /action/exec runs.
    #[arg(long, value_name = "FILE")]
    pub code: Option<std::path::PathBuf>,
    /// openwhisk: the entry point name passed to /init.
    #[arg(long)]
    pub main: Option<String>,
    /// The size of an instance's writable space (e.g. 256MiB; default 64MiB): everything it
    /// writes (root filesystem, /tmp, the file contract's /direktiv-data). It is memory (a
    /// tmpfs), counted on top of --size's.
    #[arg(long, value_parser = size_text)]
    pub disk: Option<String>,
    /// Replace the image's entrypoint and cmd (a command line, split like a shell splits it).
    #[arg(long, value_parser = command_text)]
    pub cmd: Option<String>,
    /// An environment variable for the function (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// small (256 MiB, 0.5 CPU), medium (512 MiB, 1 CPU) or large (1 GiB, 2 CPUs).
    #[arg(long, default_value = "small", value_parser = SIZES)]
    pub size: String,
    /// Per-call timeout, e.g. 30s or 5m; a new instance must also become ready within it.
    #[arg(long, default_value = "30s", value_parser = duration_text)]
    pub timeout: String,
    /// Instances kept warm when idle.
    #[arg(long, default_value_t = 0)]
    pub min_scale: u32,
    /// Instances at most.
    #[arg(long, default_value_t = 5)]
    pub max_scale: u32,
    /// Calls one instance takes at once.
    #[arg(long, default_value_t = 1)]
    pub concurrency: u32,
    /// Idle instances above --min-scale stop after this long.
    #[arg(long, default_value = "5m", value_parser = duration_text)]
    pub idle_timeout: String,
    /// OCI runtime: runc, or runsc for gVisor isolation.
    #[arg(long, default_value = "runc", value_parser = RUNTIMES)]
    pub runtime: String,
    /// No outbound network for the function.
    #[arg(long)]
    pub no_network: bool,
    /// A namespace secret the --input template may use as `.secrets.NAME` (repeatable); its
    /// value is masked in the function's logs and errors.
    #[arg(long = "secret", value_name = "NAME")]
    pub secrets: Vec<String>,
    /// A JSON template (or @FILE) the call's input is built from, e.g.
    /// '{"auth": "bearer jq(.secrets.token)", "data": "jq(.input)"}'.
    #[arg(long, value_name = "JSON")]
    pub input: Option<String>,
}

#[derive(Args)]
pub struct CreateArgs {
    /// NAMESPACE/NAME of the function.
    pub function: String,
    /// The code: a file, or a directory (everything under it is sent; regular files and
    /// directories only).
    pub source: PathBuf,
    /// The image to build on: an image build's name (`faasbox image build`) or a base image's
    /// name (`faasbox base-image create`).
    #[arg(long)]
    pub image: String,
    /// The handler: python3 `module.function` (e.g. hello.handle; `hello` alone means
    /// hello.handle), nodejs the module whose export is the function (e.g. index, or
    /// index.name for a named export), shell the script (e.g. run.sh).
    #[arg(long)]
    pub handler: String,
    /// A JSON Schema file the input must match (else the call is refused as an InputError).
    #[arg(long, value_name = "FILE")]
    pub schema_in: Option<PathBuf>,
    /// A JSON Schema file the output must match.
    #[arg(long, value_name = "FILE")]
    pub schema_out: Option<PathBuf>,
    /// A namespace secret merged into the handler's context.secrets (repeatable).
    #[arg(long = "secret", value_name = "NAME")]
    pub secrets: Vec<String>,
    /// A service bound into the handler's context.serviceBindings (repeatable).
    #[arg(long = "service", value_name = "NAME")]
    pub services: Vec<String>,
    /// Per-call timeout, e.g. 30s or 5m.
    #[arg(long, value_parser = duration_text)]
    pub timeout: Option<String>,
    /// small (256 MiB, 0.5 CPU), medium (512 MiB, 1 CPU) or large (1 GiB, 2 CPUs).
    #[arg(long, value_parser = SIZES)]
    pub size: Option<String>,
    /// An environment variable for the function (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// No outbound network for the function.
    #[arg(long)]
    pub no_network: bool,
    /// Return once the build is accepted instead of following its log
    /// (`faasbox fn build-logs NS/NAME -f` follows it later).
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Args)]
pub struct UpdateArgs {
    /// NAMESPACE/NAME of the function, or NAME with --global.
    pub function: String,
    #[arg(long)]
    pub global: bool,
    /// Another image (pinned to its digest now).
    #[arg(long)]
    pub image: Option<String>,
    /// Resolve and pull the image again: always, missing or never.
    #[arg(long, value_enum)]
    pub pull: Option<PullPolicyArg>,
    /// Set an environment variable (repeatable); the others stay.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Remove an environment variable (repeatable).
    #[arg(long = "unset-env", value_name = "KEY")]
    pub unset_env: Vec<String>,
    /// Per-call timeout, e.g. 30s or 5m.
    #[arg(long, value_parser = duration_text)]
    pub timeout: Option<String>,
    /// small, medium or large.
    #[arg(long, value_parser = SIZES)]
    pub size: Option<String>,
    /// Replace the image's entrypoint and cmd (a command line).
    #[arg(long, value_parser = command_text)]
    pub cmd: Option<String>,
    /// Instances kept warm when idle.
    #[arg(long)]
    pub min_scale: Option<u32>,
    /// Instances at most.
    #[arg(long)]
    pub max_scale: Option<u32>,
    /// Calls one instance takes at once.
    #[arg(long)]
    pub concurrency: Option<u32>,
    /// Idle instances above --min-scale stop after this long.
    #[arg(long, value_parser = duration_text)]
    pub idle_timeout: Option<String>,
    /// OCI runtime: runc, or runsc for gVisor isolation.
    #[arg(long, value_parser = RUNTIMES)]
    pub runtime: Option<String>,
    /// Outbound network on (true) or off (false).
    #[arg(long, value_name = "BOOL")]
    pub network: Option<bool>,
    /// The namespace secrets the input template may use (repeatable; replaces the list).
    #[arg(long = "secret", value_name = "NAME")]
    pub secrets: Vec<String>,
    /// A new input template (JSON, or @FILE).
    #[arg(long, value_name = "JSON")]
    pub input: Option<String>,
}

#[derive(Args)]
pub struct InvokeArgs {
    /// NAMESPACE/NAME of the function, or NAME of a global service with --global.
    pub function: String,
    /// Call a global service on behalf of --namespace (the call and its logs are that
    /// namespace's).
    #[arg(long, requires = "namespace")]
    pub global: bool,
    /// With --global: the namespace the call belongs to.
    #[arg(long, short = 'n', requires = "global")]
    pub namespace: Option<String>,
    /// The input JSON; `@FILE` reads a file, `-` reads standard input. Default: {}.
    #[arg(long, short = 'd')]
    pub data: Option<String>,
    /// Do not wait: the server stores the call as a queued run and answers its id at once
    /// (`faasbox runs get ID` shows it, `faasbox runs logs ID -f` follows it).
    #[arg(long = "async")]
    pub run_async: bool,
    /// With --async: an http:// URL the server POSTs the run's result to when it ends
    /// (`{"id", "status", "duration_ms", "output", "error", …}`), retried with backoff. The
    /// server sends no TLS: it refuses https:// (put a TLS-terminating proxy in between).
    #[arg(long, value_name = "URL", requires = "run_async", value_parser = callback_url)]
    pub callback: Option<String>,
}

/// `--callback`: an absolute http(s) URL.
fn callback_url(text: &str) -> Result<String, String> {
    let lower = text.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') => Ok(text.to_string()),
        _ => Err(format!(
            "'{text}' is not an http(s) URL (for example http://hooks.internal:8080/done)"
        )),
    }
}

#[derive(Subcommand)]
pub enum RunsCommand {
    /// List a namespace's or a function's runs, newest first.
    #[command(after_help = "Examples:\n  \
        faasbox runs ls demo                          the namespace's newest 20 runs\n  \
        faasbox runs ls demo/echo --since 10m         the function's runs of the last 10 minutes\n  \
        faasbox runs ls demo --status failed --since 2026-01-31T00:00:00Z\n  \
        faasbox runs ls demo/echo --status queued -o json")]
    Ls(RunsLsArgs),
    /// Show every field of one run: status, times, input, output, error, cold start, phases.
    #[command(after_help = "Examples:\n  \
        faasbox runs get 3f2a…            the run, for people\n  \
        faasbox runs get 3f2a… -o json    the run record as the API gives it")]
    Get {
        /// The run's id (printed by `faasbox invoke`, and in the Faasbox-Invocation-Id header).
        run: String,
    },
    /// Print a run's log lines (stdout, stderr and the log endpoint, in order); --follow
    /// prints new lines as they come, until the run ends.
    #[command(after_help = "Examples:\n  \
        faasbox runs logs 3f2a…               the lines so far\n  \
        faasbox runs logs 3f2a… --follow      and then new ones (asked for every 500 ms) until it ends\n  \
        faasbox runs logs 3f2a… -f -o json    one JSON object per line")]
    Logs {
        /// The run's id.
        run: String,
        /// Keep printing new lines until the run ends.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Cancel a queued run (it never starts) or a running one (the function gets its cancel).
    #[command(after_help = "Examples:\n  \
        faasbox runs cancel 3f2a…         prints the run's status afterwards (cancelled, or how it ended)")]
    Cancel {
        /// The run's id.
        run: String,
    },
}

#[derive(Args)]
pub struct RunsLsArgs {
    /// NAMESPACE for all its runs, or NAMESPACE/FUNCTION for one function's.
    #[arg(value_name = "NAMESPACE[/FUNCTION]")]
    pub target: String,
    /// Only runs accepted since then: a duration back from now (30s, 10m, 2h, 7d) or an
    /// RFC 3339 time (2026-01-31T12:00:00Z).
    #[arg(long, value_name = "DURATION|TIME", value_parser = since_time)]
    pub since: Option<String>,
    /// Only runs with this status.
    #[arg(long, value_parser = RUN_STATUSES)]
    pub status: Option<String>,
    /// How many runs at most (the newest).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub limit: u32,
}

/// The statuses a run can have.
pub const RUN_STATUSES: [&str; 7] = [
    "queued",
    "running",
    "succeeded",
    "failed",
    "crashed",
    "timeout",
    "cancelled",
];

/// `--since`: a duration back from now or an RFC 3339 time, as the RFC 3339 time to send.
pub fn since_time(text: &str) -> Result<String, String> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(at) = time::OffsetDateTime::parse(text, &Rfc3339) {
        return at.format(&Rfc3339).map_err(|e| e.to_string());
    }
    let back = parse_duration(text).map_err(|_| {
        format!("'{text}' is neither a duration (10m, 2h, 7d) nor an RFC 3339 time (2026-01-31T12:00:00Z)")
    })?;
    let back = time::Duration::try_from(back).map_err(|e| e.to_string())?;
    let at = time::OffsetDateTime::now_utc()
        .checked_sub(back)
        .ok_or_else(|| format!("{text} ago is before any time there is"))?;
    at.format(&Rfc3339).map_err(|e| e.to_string())
}

#[derive(Args)]
#[command(after_help = "Examples:\n  \
    faasbox logs 3f2a…            one call's lines (the id `faasbox invoke` printed)\n  \
    faasbox logs 3f2a… --follow   a running call's lines, once it ends\n  \
    faasbox logs demo/echo        the function's newest 100 lines, each with its call's id\n  \
    faasbox logs demo/echo -f     then its lines as its calls print them, with their run ids, until Ctrl-C")]
pub struct LogsArgs {
    /// An invocation id (printed by `faasbox invoke` on standard error, and in the
    /// Faasbox-Invocation-Id header), or NAMESPACE/FUNCTION for the function's recent lines.
    #[arg(value_name = "INVOCATION|NAMESPACE/FUNCTION")]
    pub target: String,
    /// Keep going: for a call, wait until it ends (its lines are stored then) and print them;
    /// for a function, print its lines as its calls print them (a live stream from the server)
    /// until interrupted. With -o json, followed lines of a function are one JSON object per
    /// line.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// For a function: how many of its newest lines to print first (1-1000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,
}

#[derive(Subcommand)]
pub enum InvocationCommand {
    /// Show one call.
    Get { invocation: String },
    /// List a namespace's recent calls, newest first.
    Ls {
        namespace: String,
        /// Only calls of this function.
        #[arg(long)]
        function: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

#[derive(Subcommand)]
pub enum SecretCommand {
    /// Create or replace a secret. The value comes from --value, --from-file, or standard
    /// input (one trailing newline removed, so `echo TOKEN | faasbox secret set demo/token`
    /// stores TOKEN).
    #[command(after_help = "Examples:\n  \
        echo \"$TOKEN\" | faasbox secret set demo/token       from standard input\n  \
        faasbox secret set demo/cert --from-file ./cert.pem")]
    Set(SecretSetArgs),
    /// List a namespace's secrets: names and times, never values.
    Ls { namespace: String },
    /// Delete a secret.
    Rm {
        /// NAMESPACE/NAME of the secret.
        secret: String,
    },
}

#[derive(Subcommand)]
pub enum ServiceCommand {
    /// Create or replace a service instance (all its parameters). A function gets it when
    /// its spec's `services` names it: a code function in `context.serviceBindings.NAME`,
    /// others as `.services.NAME` in their `input` template.
    #[command(after_help = "Examples:\n  \
        faasbox service create demo/db --param host=db.local --secret-param password=\"$PW\"\n  \
        (a --secret-param value is visible in the shell history and process list)")]
    Create {
        /// NAMESPACE/NAME of the service.
        service: String,
        /// A non-secret parameter KEY=VALUE (repeatable).
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// A secret parameter KEY=VALUE (repeatable): stored encrypted, never shown, masked in
        /// calls' logs and errors.
        #[arg(long = "secret-param", value_name = "KEY=VALUE")]
        secret_params: Vec<String>,
    },
    /// List a namespace's services: parameters, and secret parameters by key only.
    Ls { namespace: String },
    /// Show a service (secret parameters by key only).
    Get {
        /// NAMESPACE/NAME of the service.
        service: String,
    },
    /// Delete a service.
    Rm {
        /// NAMESPACE/NAME of the service.
        service: String,
    },
}

#[derive(Subcommand)]
pub enum RouteCommand {
    /// Create (or replace) a route: --path and --function or --flow, the rest optional.
    #[command(after_help = "Examples:\n  \
        faasbox route create demo/github --path /hooks/github --method POST --function on-push \\\n      \
        --auth hmac-sha256 --secret github-hook\n  \
        faasbox route create demo/orders --path '/orders/{id}' --method GET --function orders \\\n      \
        --auth api-key --key ci=@ci.key --cors-origin https://shop.example.com\n  \
        faasbox route create demo/site --path '/*' --host www.example.com --function site --raw-response\n\
        Passwords and keys: NAME=VALUE, or NAME=@FILE to keep them out of the shell history.")]
    Create {
        /// NAMESPACE/NAME of the route.
        route: String,
        #[command(flatten)]
        spec: RouteArgs,
    },
    /// Change some of a route's settings (the flags given; the rest stays). Any --auth,
    /// --user, --key, --secret, --header, --prefix or --query replaces the whole
    /// authentication and needs --auth.
    Update {
        /// NAMESPACE/NAME of the route.
        route: String,
        #[command(flatten)]
        spec: RouteArgs,
    },
    /// List a namespace's routes.
    Ls { namespace: String },
    /// Show a route and its URLs (users and keys by name only).
    Get {
        /// NAMESPACE/NAME of the route.
        route: String,
    },
    /// Delete a route: it is not served from now on.
    Rm {
        /// NAMESPACE/NAME of the route.
        route: String,
    },
    /// Serve a disabled route again.
    Enable {
        /// NAMESPACE/NAME of the route.
        route: String,
    },
    /// Stop serving a route (it answers 404 as if absent) and keep it.
    Disable {
        /// NAMESPACE/NAME of the route.
        route: String,
    },
}

/// A route's settings as flags (`route create` and `route update`).
#[derive(Args, Debug, Default)]
pub struct RouteArgs {
    /// The path below /ns/NAMESPACE: literal segments, parameters `{id}`, a final `*` for a
    /// prefix (e.g. /hooks/github, '/orders/{id}', '/static/*').
    #[arg(long)]
    pub path: Option<String>,
    /// The function it calls.
    #[arg(long, conflicts_with = "flow")]
    pub function: Option<String>,
    /// The flow it starts and waits for (its path, e.g. hooks/push).
    #[arg(long)]
    pub flow: Option<String>,
    /// A method it answers (repeatable; default every method).
    #[arg(long = "method", value_name = "METHOD")]
    pub methods: Vec<String>,
    /// A host name that also serves it at PATH itself (repeatable).
    #[arg(long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,
    /// Who may call it: none (public, the default), token, basic, api-key, hmac-sha256, slack.
    #[arg(long, value_name = "KIND")]
    pub auth: Option<String>,
    /// hmac-sha256, slack: the namespace secret that signs (`faasbox secret set NS/NAME`).
    #[arg(long)]
    pub secret: Option<String>,
    /// api-key: the key's header (default X-API-Key); hmac-sha256: the signature's header
    /// (default X-Hub-Signature-256).
    #[arg(long)]
    pub header: Option<String>,
    /// hmac-sha256: what comes before the hex signature (default sha256=).
    #[arg(long)]
    pub prefix: Option<String>,
    /// api-key: take the key from this query parameter instead of a header.
    #[arg(long)]
    pub query: Option<String>,
    /// basic: a user NAME=PASSWORD or NAME=@FILE (repeatable; passwords of 8 bytes or more).
    #[arg(long = "user", value_name = "NAME=PASSWORD")]
    pub users: Vec<String>,
    /// api-key: a key NAME=KEY or NAME=@FILE (repeatable; keys of 16 bytes or more).
    #[arg(long = "key", value_name = "NAME=KEY")]
    pub keys: Vec<String>,
    /// CORS: an allowed origin, e.g. https://app.example.com, or * (repeatable).
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub cors_origins: Vec<String>,
    /// CORS: an allowed method (repeatable; default the route's methods).
    #[arg(long = "cors-method", value_name = "METHOD")]
    pub cors_methods: Vec<String>,
    /// CORS: an allowed request header (repeatable).
    #[arg(long = "cors-header", value_name = "HEADER")]
    pub cors_headers: Vec<String>,
    /// The function's output {statusCode, headers, body, isBase64Encoded} is the answer.
    #[arg(long)]
    pub raw_response: bool,
    /// The largest request body, e.g. 1MiB (default and at most the server's input bound, 64 MiB).
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub max_body: Option<u64>,
    /// Requests per second per client address (a token bucket; 429 beyond it).
    #[arg(long, value_name = "PER_SECOND")]
    pub rate: Option<f64>,
    /// The bucket's size: how many requests may come at once (default the rate, rounded up).
    #[arg(long, value_name = "N")]
    pub burst: Option<u32>,
    /// How long a call may take before the caller gets 202 with the run id, e.g. 30s
    /// (default the server's --blocking-timeout).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<std::time::Duration>,
}

#[derive(Args)]
pub struct SecretSetArgs {
    /// NAMESPACE/NAME of the secret.
    pub secret: String,
    /// The value (visible in the shell history and process list; prefer standard input).
    #[arg(long, conflicts_with = "from_file")]
    pub value: Option<String>,
    /// Read the value from this file, byte for byte.
    #[arg(long, value_name = "PATH")]
    pub from_file: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum FlowCommand {
    /// Deploy (create or replace) a flow from a workflow/v1 YAML file; an invalid flow is
    /// refused with every problem and its line and column.
    Deploy {
        /// NAMESPACE/PATH of the flow (the path may hold '/').
        flow: String,
        /// The YAML file.
        file: PathBuf,
    },
    /// Start an instance; prints its id, or with --wait its output.
    #[command(after_help = "Examples:\n  \
        faasbox flow run demo/hello --data '{\"name\":\"Ada\"}'          prints the instance id\n  \
        faasbox flow run demo/hello --data @input.json --wait      prints the output\n  \
        faasbox flow run demo/hello -o json                        {\"instance\": ID, \"status\": \"running\"}")]
    Run {
        /// NAMESPACE/PATH of the flow.
        flow: String,
        /// The input JSON; `@FILE` reads a file, `-` reads standard input. Default: {}.
        #[arg(long, short = 'd')]
        data: Option<String>,
        /// Wait for the instance to end and print its output.
        #[arg(long)]
        wait: bool,
    },
    /// List a namespace's flows.
    Ls { namespace: String },
    /// Print a flow's YAML.
    Get {
        /// NAMESPACE/PATH of the flow.
        flow: String,
    },
    /// Delete a flow.
    Rm {
        /// NAMESPACE/PATH of the flow.
        flow: String,
    },
    /// List a namespace's instances, newest first.
    Instances {
        namespace: String,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Show one instance: status, output or error, the states it finished.
    Instance { id: String },
    /// Print an instance's logs; --follow prints new lines until it ends.
    Logs {
        id: String,
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Cancel a running or waiting instance (its running calls get their cancel).
    Cancel { id: String },
}

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Generate a new master key and re-wrap every data key with it, without downtime.
    RotateMasterKey,
    /// Move a stopped server's state from its data directory (SQLite) into an empty PostgreSQL
    /// database. Runs here, on the data directory itself (no server, no API token).
    #[command(
        name = "migrate-store",
        long_about = "Move a stopped server's state from its data directory's SQLite database \
            into an empty PostgreSQL database, in one transaction: every table is copied, the \
            rows counted on both sides, and every secret and registry credential decrypted \
            through PostgreSQL with the data directory's master key (or FAASBOX_MASTER_KEY_FILE \
            / FAASBOX_MASTER_KEY when the server got its key that way). Refused while a server \
            runs on the directory, and into a database that holds faasbox data already. \
            Image contents stay in the data directory's image store: start the PostgreSQL \
            server on that data directory (or copy its images/ along).",
        after_help = "Example:\n  \
            systemctl stop faasbox\n  \
            faasbox admin migrate-store --from sqlite:/var/lib/faasbox --to postgres://faasbox@db/faasbox\n  \
            FAASBOX_MASTER_KEY_FILE=/var/lib/faasbox/keys/master.key \\\n    \
            faasbox server --data-dir /var/lib/faasbox --store postgres://faasbox@db/faasbox"
    )]
    MigrateStore {
        /// The data directory to move: sqlite:DIR.
        #[arg(long, value_name = "sqlite:DIR")]
        from: String,
        /// The PostgreSQL database to move into (empty):
        /// postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE.
        #[arg(long, value_name = "postgres://…")]
        to: String,
        /// Connections to PostgreSQL at most.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1000))]
        store_connections: u32,
    },
}

#[derive(Subcommand)]
pub enum RegistryCommand {
    /// Store credentials for a registry: `registry add demo URL …` for a namespace,
    /// `registry add --global URL …` for every namespace (--global-private: global services).
    #[command(after_help = "Examples:\n  \
        faasbox registry add demo https://ghcr.io -u robot --password-stdin < pw.txt\n  \
        faasbox registry add --global quay.io -u me --password-stdin < pw.txt    admin token")]
    Add(RegistryAddArgs),
    /// List a namespace's registries, or the global ones with --global.
    Ls {
        namespace: Option<String>,
        #[command(flatten)]
        scope: GlobalScope,
    },
    /// Remove a registry: `registry rm demo URL` or `registry rm --global URL`.
    Rm {
        /// [NAMESPACE] URL
        #[arg(num_args = 1..=2, required = true, value_name = "NAMESPACE URL")]
        target: Vec<String>,
        #[command(flatten)]
        scope: GlobalScope,
    },
}

#[derive(Args)]
pub struct RegistryAddArgs {
    /// [NAMESPACE] URL (no namespace with --global or --global-private).
    #[arg(num_args = 1..=2, required = true, value_name = "NAMESPACE URL")]
    pub target: Vec<String>,
    #[arg(long, short = 'u')]
    pub username: String,
    /// The password (visible in the shell history and process list; prefer --password-stdin).
    #[arg(long, conflicts_with = "password_stdin")]
    pub password: Option<String>,
    /// Read the password from standard input (one trailing newline removed).
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub scope: GlobalScope,
}

#[derive(Args)]
pub struct GlobalScope {
    /// The global registries (used by every namespace's functions).
    #[arg(long, conflicts_with = "global_private")]
    pub global: bool,
    /// The global-private registries (used by global services only).
    #[arg(long)]
    pub global_private: bool,
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it (it is shown only this once).
    #[command(after_help = "Examples:\n  \
        export FAASBOX_TOKEN=$(faasbox token create --namespace demo --role invoke --name ci)\n  \
        faasbox token create                        another server-wide admin token")]
    Create {
        /// The namespace the token is limited to; without it, a server-wide admin token.
        #[arg(long, short = 'n')]
        namespace: Option<String>,
        /// admin: everything in the namespace; invoke: call functions, read calls and logs.
        #[arg(long, default_value = "admin", value_parser = ["admin", "invoke"])]
        role: String,
        /// A name to recognise it by in `token ls`.
        #[arg(long)]
        name: Option<String>,
    },
    /// List tokens (ids, names, namespaces, roles; never the tokens).
    Ls,
    /// Delete a token by its id.
    Rm { id: String },
}

#[derive(Subcommand)]
pub enum EventCommand {
    /// Send one CloudEvent to a namespace: `event send demo --type order.created --source
    /// /shop --data '{"id": 7}'`. Its id is generated unless given.
    #[command(after_help = "Examples:\n  \
        faasbox event send demo --type order.created --source /shop/web --data '{\"order\": 7}'\n  \
        faasbox event send demo --type approval.given --context orderid=7\n  \
        faasbox event send demo --structured --file event.json")]
    Send(EventSendArgs),
    /// List the latest events a namespace received.
    Ls {
        namespace: String,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

#[derive(Subcommand)]
pub enum SubscriptionCommand {
    /// Create or replace subscription NS/NAME: run --function for each matching event.
    #[command(after_help = "Examples:\n  \
        faasbox subscription create demo/on-order --function ship --type order.created\n  \
        faasbox subscription create demo/eu-orders --function ship --type order.created --source '/shop/*' --context region=eu-*")]
    Create(SubscriptionCreateArgs),
    /// Show subscription NS/NAME.
    Get { subscription: String },
    /// List a namespace's subscriptions.
    Ls { namespace: String },
    /// Delete subscription NS/NAME: no event runs its function from now on.
    Rm { subscription: String },
}

#[derive(Args)]
pub struct SubscriptionCreateArgs {
    /// NS/NAME of the subscription.
    pub subscription: String,
    /// The namespace's function to run for each matching event (it must exist).
    #[arg(long, value_name = "FN")]
    pub function: String,
    /// The event type, matched exactly.
    #[arg(long = "type", value_name = "TYPE")]
    pub event_type: String,
    /// A pattern the event's source must match (`*` is any run of characters).
    #[arg(long, value_name = "PATTERN")]
    pub source: Option<String>,
    /// NAME=PATTERN: the event's attribute NAME (an extension, or subject, id, …) must exist
    /// and match PATTERN (repeatable).
    #[arg(long = "context", value_name = "NAME=PATTERN")]
    pub context: Vec<String>,
}

#[derive(Args)]
pub struct EventSendArgs {
    pub namespace: String,
    /// The event type (what flows listen for).
    #[arg(long = "type", value_name = "TYPE")]
    pub event_type: Option<String>,
    /// The event source (a URI reference).
    #[arg(long, default_value = "faasbox-cli")]
    pub source: String,
    /// The event id (default: a new UUID). Sending an id again from the same source is a no-op.
    #[arg(long)]
    pub id: Option<String>,
    /// The data, as JSON.
    #[arg(long, conflicts_with = "file")]
    pub data: Option<String>,
    /// Read the data (JSON unless --content-type says otherwise) from this file; with
    /// --structured, the file is a whole CloudEvent in JSON.
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// The data's content type.
    #[arg(long, default_value = "application/json")]
    pub content_type: String,
    /// An extension attribute NAME=VALUE (repeatable), matched by flows' `context` filters.
    #[arg(long = "context", value_name = "NAME=VALUE")]
    pub context: Vec<String>,
    /// Send the event in structured mode (one JSON document) instead of binary mode (headers).
    #[arg(long)]
    pub structured: bool,
}
