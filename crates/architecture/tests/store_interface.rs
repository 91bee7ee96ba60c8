//! "Only the store backends know SQL": the store interface depends on no database library,
//! checked on the workspace's resolved dependency graph (`cargo tree`, normal dependencies).

use std::process::Command;

/// Database libraries and drivers a store backend would bring in.
const DATABASE_CRATES: [&str; 7] = [
    "rusqlite",
    "libsqlite3-sys",
    "sqlx",
    "postgres",
    "tokio-postgres",
    "diesel",
    "sea-orm",
];

/// The crates `package` depends on (transitively, normal dependencies), by name.
fn dependencies(package: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(&cargo)
        .args(["tree", "--offline", "--edges", "normal", "--prefix", "none"])
        .args(["--format", "{p}", "--package", package])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("running `{cargo} tree`: {e}"));
    assert!(
        output.status.success(),
        "`cargo tree -p {package}` failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

fn database_crates(package: &str) -> Vec<String> {
    dependencies(package)
        .into_iter()
        .filter(|name| DATABASE_CRATES.contains(&name.as_str()))
        .collect()
}

#[test]
fn the_store_interface_depends_on_no_database_library() {
    assert_eq!(database_crates("faasbox-store"), Vec::<String>::new());
    // The check sees a database library where there is one.
    assert!(database_crates("faasbox-store-sqlite").contains(&"rusqlite".to_string()));
}
