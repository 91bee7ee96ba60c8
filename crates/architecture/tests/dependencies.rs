//! Which workspace package may depend on what: the rules below, checked against the direct
//! dependencies `cargo metadata --no-deps` reports. They state today's truth exactly (an
//! allowed package that no longer has the dependency fails too), so they only tighten; when a
//! crate is split or a boundary moves, change the rule in the same commit, on purpose.

use faasbox_architecture::dependencies::{violations, OnlyIn, WorkspaceDeps};
use faasbox_architecture::workspace;

/// Only the listed packages may depend on each of these.
const ONLY_IN: &[OnlyIn] = &[
    OnlyIn {
        dependency: "axum",
        normal: &["faasbox-http"],
        // The CLI's integration tests run small HTTP receivers (a run's callback).
        dev: &["faasbox"],
        why: "only the HTTP crate knows HTTP (tests may serve HTTP)",
    },
    OnlyIn {
        dependency: "tower-http",
        normal: &["faasbox-http"],
        dev: &[],
        why: "only the HTTP crate knows HTTP",
    },
    OnlyIn {
        dependency: "http-body",
        normal: &["faasbox-http"],
        dev: &[],
        why: "only the HTTP crate knows HTTP",
    },
    OnlyIn {
        dependency: "hyper",
        normal: &["faasbox-agent", "faasbox-driver"],
        dev: &[],
        why: "plain hyper only for the agent protocol: the agent serves it, the agent client speaks it",
    },
    OnlyIn {
        dependency: "hyper-util",
        normal: &["faasbox-agent", "faasbox-driver"],
        dev: &[],
        why: "plain hyper only for the agent protocol: the agent serves it, the agent client speaks it",
    },
    OnlyIn {
        dependency: "reqwest",
        normal: &["faasbox", "faasbox-core"],
        dev: &[],
        why: "the CLI is the API's only HTTP client; the core only POSTs asynchronous runs' results to their callback URLs (runs::callback)",
    },
    OnlyIn {
        dependency: "prometheus-client",
        normal: &["faasbox-core"],
        dev: &[],
        why: "one place renders /metrics",
    },
    OnlyIn {
        dependency: "utoipa",
        normal: &[
            "faasbox-images",
            "faasbox-proto",
            "faasbox-driver",
            "faasbox-secrets",
            "faasbox-core",
            "faasbox-http",
        ],
        dev: &[],
        why: "OpenAPI schemas derived on API types; shrinks as API types leave the domain crates",
    },
    OnlyIn {
        dependency: "rusqlite",
        normal: &["faasbox-store-sqlite"],
        dev: &["faasbox", "faasbox-secrets"],
        why: "only the store knows SQL; tests may open a database to check what was stored",
    },
    OnlyIn {
        dependency: "tokio-postgres",
        normal: &["faasbox-store-postgres"],
        dev: &[],
        why: "only the store knows SQL",
    },
    OnlyIn {
        dependency: "deadpool-postgres",
        normal: &["faasbox-store-postgres"],
        dev: &[],
        why: "only the store knows SQL",
    },
    OnlyIn {
        dependency: "clap",
        normal: &["faasbox", "faasbox-oci-runtime"],
        dev: &[],
        why: "only the CLIs parse command lines (faasbox, and faasbox-oci's runc-style one)",
    },
    OnlyIn {
        dependency: "clap_complete",
        normal: &["faasbox"],
        dev: &[],
        why: "only the CLI parses command lines",
    },
    OnlyIn {
        dependency: "indicatif",
        normal: &["faasbox"],
        dev: &[],
        why: "only the CLI draws on a terminal",
    },
    OnlyIn {
        dependency: "anyhow",
        normal: &["faasbox", "faasbox-server", "faasbox-oci-runtime"],
        dev: &[],
        why: "thiserror in libraries, anyhow at the edges",
    },
    OnlyIn {
        dependency: "oci-client",
        normal: &["faasbox-images"],
        dev: &[],
        why: "only the image store speaks the registry protocol",
    },
    OnlyIn {
        dependency: "aes-gcm",
        normal: &["faasbox-secrets"],
        dev: &[],
        why: "only the secrets crate sees keys and ciphertexts",
    },
    OnlyIn {
        dependency: "jaq-core",
        normal: &["faasbox-expr"],
        dev: &[],
        why: "jq runs only behind faasbox-expr's bounds and sandbox",
    },
    OnlyIn {
        dependency: "yaml-rust2",
        normal: &["faasbox-flow"],
        dev: &[],
        why: "only the workflow parser reads YAML, within its bounds",
    },
    OnlyIn {
        dependency: "faasbox-driver-runc",
        normal: &["faasbox-server"],
        dev: &[],
        why: "the runc driver is wired in by the composition layer only",
    },
    OnlyIn {
        dependency: "faasbox-store",
        normal: &[
            "faasbox-secrets",
            "faasbox-core",
            "faasbox-http",
            "faasbox-server",
            "faasbox-store-sqlite",
            "faasbox-store-postgres",
        ],
        dev: &[],
        why: "the store is reached through the services, not from the edges",
    },
    OnlyIn {
        dependency: "faasbox-store-sqlite",
        normal: &["faasbox-server"],
        dev: &["faasbox", "faasbox-secrets", "faasbox-core"],
        why: "the SQLite backend is chosen where the server is put together (its app.rs); \
              everything else reaches the store through faasbox-store's traits; tests may \
              open a data directory or a temporary store",
    },
    OnlyIn {
        dependency: "faasbox-store-postgres",
        normal: &["faasbox-server"],
        dev: &[],
        why: "the PostgreSQL backend is chosen where the server is put together (its app.rs, \
              and migrate-store's copy); everything else reaches the store through \
              faasbox-store's traits",
    },
    OnlyIn {
        dependency: "faasbox-server",
        normal: &["faasbox"],
        dev: &[],
        why: "the server is a library the binary's `server` command runs",
    },
    OnlyIn {
        dependency: "faasbox-http",
        normal: &["faasbox-server"],
        dev: &[],
        why: "the composition crate serves the HTTP API over the core it built",
    },
    OnlyIn {
        dependency: "faasbox-test-registry",
        normal: &[],
        dev: &[
            "faasbox",
            "faasbox-agent",
            "faasbox-driver",
            "faasbox-driver-runc",
            "faasbox-images",
            "faasbox-store-postgres",
        ],
        why: "test support never ships (the PostgreSQL store's tests take a database from it)",
    },
    OnlyIn {
        dependency: "faasbox-architecture",
        normal: &[],
        dev: &[],
        why: "the architecture tests are a crate of their own, depended on by none",
    },
];

/// Each of these packages depends on no workspace package but the listed ones.
const WORKSPACE_DEPS: &[WorkspaceDeps] = &[
    WorkspaceDeps {
        package: "faasbox-agent",
        normal: &["faasbox-proto"],
        dev: &["faasbox-test-registry"],
        why: "the agent depends on the protocol crate alone",
    },
    WorkspaceDeps {
        package: "faasbox-echo-function",
        normal: &[],
        dev: &[],
        why: "the benchmarks' function is a std-only program, measured as any user's function",
    },
    WorkspaceDeps {
        package: "faasbox-proto",
        normal: &[],
        dev: &[],
        why: "the protocol is a leaf: both sides depend on it, it on neither",
    },
    WorkspaceDeps {
        package: "faasbox-expr",
        normal: &[],
        dev: &[],
        why: "expressions are a leaf shared by the server and the workflow engine",
    },
    WorkspaceDeps {
        package: "faasbox-events",
        normal: &[],
        dev: &[],
        why: "events and schedules are pure functions",
    },
    WorkspaceDeps {
        package: "faasbox-flow",
        normal: &["faasbox-events", "faasbox-expr", "faasbox-proto"],
        dev: &[],
        why: "the workflow engine reaches the platform through its Effects trait only",
    },
    WorkspaceDeps {
        package: "faasbox-images",
        normal: &[],
        dev: &["faasbox-test-registry"],
        why: "the image store knows nothing of functions",
    },
    WorkspaceDeps {
        package: "faasbox-secrets",
        normal: &["faasbox-store"],
        dev: &["faasbox-store-sqlite"],
        why: "the vault needs the store's traits for its ciphertexts, nothing else; its tests \
              run it on a real SQLite store",
    },
    WorkspaceDeps {
        package: "faasbox-driver",
        normal: &["faasbox-proto"],
        dev: &["faasbox-test-registry"],
        why: "the driver interface knows the agent protocol, nothing of runc, images or the server",
    },
    WorkspaceDeps {
        package: "faasbox-driver-runc",
        normal: &["faasbox-driver", "faasbox-proto"],
        dev: &["faasbox-images", "faasbox-test-registry"],
        why: "the runc driver implements the interface; it gets image layers through \
              LayerSource (its export test appends the exported layer with a real image store)",
    },
    WorkspaceDeps {
        package: "faasbox-core",
        normal: &[
            "faasbox-driver",
            "faasbox-events",
            "faasbox-expr",
            "faasbox-flow",
            "faasbox-images",
            "faasbox-proto",
            "faasbox-secrets",
            "faasbox-store",
        ],
        dev: &["faasbox-driver", "faasbox-store-sqlite"],
        why: "the core reaches the store and the driver through their interfaces; its fast \
              tests run on the fake driver and a temporary SQLite store",
    },
    WorkspaceDeps {
        package: "faasbox-http",
        normal: &[
            "faasbox-core",
            "faasbox-events",
            "faasbox-flow",
            "faasbox-images",
            "faasbox-proto",
            "faasbox-secrets",
            "faasbox-store",
        ],
        dev: &[],
        why: "the HTTP layer maps requests onto the core; it chooses no store and no driver",
    },
    WorkspaceDeps {
        package: "faasbox-test-registry",
        normal: &[],
        dev: &[],
        why: "test support depends on nothing of faasbox",
    },
];

#[test]
fn dependencies() {
    let packages = workspace::packages().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        packages.iter().any(|p| p.name == "faasbox-server"),
        "cargo metadata listed no faasbox-server: is the manifest path right? {:?}",
        packages.iter().map(|p| &p.name).collect::<Vec<_>>()
    );
    let found = violations(&packages, ONLY_IN, WORKSPACE_DEPS);
    assert!(
        found.is_empty(),
        "{} dependency rule(s) broken (rules: crates/architecture/tests/dependencies.rs):\n  {}",
        found.len(),
        found.join("\n  ")
    );
}
