//! No module imports form a cycle inside any crate: every library and binary of the workspace
//! is read with `syn` (see `faasbox_architecture::modules`) and the references between sibling
//! modules, at every level, must form no cycle, except the ones listed in `KNOWN_CYCLES`.
//! That list is asserted exactly: a new cycle fails, and so does a listed one that is gone
//! (remove it from the list), so the list can only shrink.

use faasbox_architecture::modules::{Cycle, ModuleGraph};
use faasbox_architecture::workspace;

/// Cycles that exist today: (crate, the modules' parent, the modules in the cycle, sorted).
/// The crate is the package's name (or `package/target` for a package with several
/// libraries and binaries). Empty: no crate has a module cycle, and a new one fails.
const KNOWN_CYCLES: &[(&str, &str, &[&str])] = &[];

#[test]
fn module_cycles() {
    let root = workspace::root();
    let packages = workspace::packages().unwrap_or_else(|e| panic!("{e}"));
    let mut found: Vec<(String, Cycle)> = Vec::new();
    for package in &packages {
        let shipped: Vec<_> = package.targets.iter().filter(|t| t.ships()).collect();
        assert!(
            !shipped.is_empty(),
            "{} has neither a library nor a binary: nothing to read",
            package.name
        );
        for target in &shipped {
            let name = if shipped.len() > 1 {
                format!("{}/{}", package.name, target.name)
            } else {
                package.name.clone()
            };
            let graph = ModuleGraph::read(&target.src_path, &root)
                .unwrap_or_else(|e| panic!("cannot read the modules of {name}: {e}"));
            found.extend(graph.cycles().into_iter().map(|c| (name.clone(), c)));
        }
    }

    let is_known = |(name, cycle): &(String, Cycle)| {
        KNOWN_CYCLES.iter().any(|(k, parent, modules)| {
            k == name && *parent == cycle.parent && *modules == cycle.modules
        })
    };
    let new: Vec<String> = found
        .iter()
        .filter(|c| !is_known(c))
        .map(|(name, cycle)| {
            format!(
                "{name}: {} {{{}}}, through:\n      {}",
                cycle.parent,
                cycle.modules.join(", "),
                cycle.edges.join("\n      ")
            )
        })
        .collect();
    let gone: Vec<String> = KNOWN_CYCLES
        .iter()
        .filter(|(k, parent, modules)| {
            !found
                .iter()
                .any(|(name, c)| name == k && c.parent == *parent && c.modules == *modules)
        })
        .map(|(k, parent, modules)| format!("{k}: {parent} {{{}}}", modules.join(", ")))
        .collect();
    let mut problems = String::new();
    if !new.is_empty() {
        problems.push_str(&format!(
            "new module cycles (break them: move what both sides need into a module of its own, \
             or pass it in; a cycle that only changed shape replaces its old KNOWN_CYCLES entry):\n  {}\n",
            new.join("\n  ")
        ));
    }
    if !gone.is_empty() {
        problems.push_str(&format!(
            "cycles in KNOWN_CYCLES that are gone (well done: remove them from KNOWN_CYCLES in \
             crates/architecture/tests/module_cycles.rs):\n  {}\n",
            gone.join("\n  ")
        ));
    }
    assert!(problems.is_empty(), "{problems}");
}
