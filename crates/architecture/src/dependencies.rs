//! Rules over the workspace's direct dependencies and their check.
//!
//! Two kinds of rule: [`OnlyIn`] (only these packages may depend on a package, e.g. axum) and
//! [`WorkspaceDeps`] (a package depends on no workspace package but these, e.g. the agent on
//! the protocol alone). A rule states today's truth exactly: a package it allows that no
//! longer has the dependency is reported too, so the allowed lists only shrink as the
//! boundaries tighten, and a rule naming a package the workspace does not have is an error.

use std::collections::BTreeSet;

use crate::workspace::{DependencyKind, Package};

/// Only the listed packages may depend on `dependency`.
#[derive(Clone, Copy, Debug)]
pub struct OnlyIn {
    /// The depended-on package (a crates.io crate or a workspace package).
    pub dependency: &'static str,
    /// Packages that may have it in `[dependencies]` or `[build-dependencies]` (and so also
    /// in `[dev-dependencies]`, e.g. with a test feature turned on).
    pub normal: &'static [&'static str],
    /// Packages that may have it in `[dev-dependencies]` only.
    pub dev: &'static [&'static str],
    /// The invariant this rule keeps, for the failure message.
    pub why: &'static str,
}

/// `package` depends on no workspace package but the listed ones.
#[derive(Clone, Copy, Debug)]
pub struct WorkspaceDeps {
    /// The package the rule is about.
    pub package: &'static str,
    /// Workspace packages it may have in `[dependencies]` or `[build-dependencies]`.
    pub normal: &'static [&'static str],
    /// Workspace packages it may have in `[dev-dependencies]` (besides the normal ones).
    pub dev: &'static [&'static str],
    /// The invariant this rule keeps, for the failure message.
    pub why: &'static str,
}

/// Every way the packages break the rules, one message each, naming the package, the
/// dependency and the rule; empty when they keep them all.
pub fn violations(packages: &[Package], only_in: &[OnlyIn], own: &[WorkspaceDeps]) -> Vec<String> {
    let names: BTreeSet<&str> = packages.iter().map(|p| p.name.as_str()).collect();
    let mut found = Vec::new();
    for rule in only_in {
        let label = format!("rule OnlyIn {:?} ({})", rule.dependency, rule.why);
        for allowed in rule.normal.iter().chain(rule.dev) {
            if !names.contains(allowed) {
                found.push(format!(
                    "{label} names package {allowed:?}, which is not in the workspace: fix the rule's list"
                ));
            }
        }
        for package in packages {
            let (normal, dev) = kinds_of(package, rule.dependency);
            let may_normal = rule.normal.contains(&package.name.as_str());
            let may_dev = may_normal || rule.dev.contains(&package.name.as_str());
            if normal && !may_normal {
                found.push(format!(
                    "{} depends on {} but may not: {label}; only {:?} may (move the code that needs it there, or change the rule on purpose)",
                    package.name, rule.dependency, rule.normal
                ));
            }
            if dev && !normal && !may_dev {
                found.push(format!(
                    "{} has {} as a dev-dependency but may not: {label}; only {:?} may",
                    package.name,
                    rule.dependency,
                    rule.normal.iter().chain(rule.dev).collect::<Vec<_>>()
                ));
            }
            if may_normal && !normal {
                found.push(format!(
                    "{} no longer depends on {}: remove it from the `normal` list of {label}",
                    package.name, rule.dependency
                ));
            } else if rule.dev.contains(&package.name.as_str()) && !dev {
                found.push(format!(
                    "{} no longer has {} as a dev-dependency: remove it from the `dev` list of {label}",
                    package.name, rule.dependency
                ));
            }
        }
    }
    for rule in own {
        let label = format!("rule WorkspaceDeps {:?} ({})", rule.package, rule.why);
        for named in std::iter::once(&rule.package)
            .chain(rule.normal)
            .chain(rule.dev)
        {
            if !names.contains(named) {
                found.push(format!(
                    "{label} names package {named:?}, which is not in the workspace: fix the rule"
                ));
            }
        }
        let Some(package) = packages.iter().find(|p| p.name == rule.package) else {
            continue;
        };
        for other in packages.iter().filter(|p| p.name != package.name) {
            let (normal, dev) = kinds_of(package, &other.name);
            let may_normal = rule.normal.contains(&other.name.as_str());
            let may_dev = may_normal || rule.dev.contains(&other.name.as_str());
            if normal && !may_normal {
                found.push(format!(
                    "{} depends on workspace package {} but may not: {label}; it may depend on {:?} only",
                    package.name, other.name, rule.normal
                ));
            }
            if dev && !normal && !may_dev {
                found.push(format!(
                    "{} has workspace package {} as a dev-dependency but may not: {label}; its dev-dependencies may be {:?} only",
                    package.name,
                    other.name,
                    rule.normal.iter().chain(rule.dev).collect::<Vec<_>>()
                ));
            }
            if may_normal && !normal {
                found.push(format!(
                    "{} no longer depends on {}: remove it from the `normal` list of {label}",
                    package.name, other.name
                ));
            } else if rule.dev.contains(&other.name.as_str()) && !dev {
                found.push(format!(
                    "{} no longer has {} as a dev-dependency: remove it from the `dev` list of {label}",
                    package.name, other.name
                ));
            }
        }
    }
    found
}

/// Whether `package` has `dependency` as a normal (or build) dependency, and as a dev one.
fn kinds_of(package: &Package, dependency: &str) -> (bool, bool) {
    let mut normal = false;
    let mut dev = false;
    for dep in package.dependencies.iter().filter(|d| d.name == dependency) {
        match dep.kind {
            DependencyKind::Normal | DependencyKind::Build => normal = true,
            DependencyKind::Dev => dev = true,
        }
    }
    (normal, dev)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::Dependency;

    fn package(name: &str, deps: &[(&str, DependencyKind)]) -> Package {
        Package {
            name: name.to_owned(),
            dependencies: deps
                .iter()
                .map(|(n, kind)| Dependency {
                    name: (*n).to_owned(),
                    kind: *kind,
                })
                .collect(),
            targets: Vec::new(),
        }
    }

    fn sample() -> Vec<Package> {
        vec![
            package("web", &[("axum", DependencyKind::Normal)]),
            package("core", &[("serde", DependencyKind::Normal)]),
            package(
                "cli",
                &[
                    ("axum", DependencyKind::Dev),
                    ("web", DependencyKind::Normal),
                ],
            ),
        ]
    }

    const AXUM_IN_WEB: OnlyIn = OnlyIn {
        dependency: "axum",
        normal: &["web"],
        dev: &["cli"],
        why: "only web knows HTTP",
    };

    #[test]
    fn packages_that_keep_the_rules_give_no_violation() {
        let rules = [WorkspaceDeps {
            package: "cli",
            normal: &["web"],
            dev: &[],
            why: "the CLI sits on top",
        }];
        assert_eq!(
            violations(&sample(), &[AXUM_IN_WEB], &rules),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_forbidden_dependency_is_named_with_its_package_and_rule() {
        let mut packages = sample();
        packages[1].dependencies.push(Dependency {
            name: "axum".into(),
            kind: DependencyKind::Normal,
        });
        let found = violations(&packages, &[AXUM_IN_WEB], &[]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("core depends on axum but may not"),
            "{found:?}"
        );
        assert!(found[0].contains("only web knows HTTP"), "{found:?}");
    }

    #[test]
    fn an_allowed_package_without_the_dependency_is_a_stale_rule() {
        let rule = OnlyIn {
            normal: &["web", "core"],
            ..AXUM_IN_WEB
        };
        let found = violations(&sample(), &[rule], &[]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("core no longer depends on axum"),
            "{found:?}"
        );
    }

    #[test]
    fn a_workspace_dependency_outside_the_list_is_a_violation() {
        let rules = [WorkspaceDeps {
            package: "cli",
            normal: &[],
            dev: &[],
            why: "the CLI stands alone",
        }];
        let found = violations(&sample(), &[], &rules);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("cli depends on workspace package web"),
            "{found:?}"
        );
    }

    #[test]
    fn a_rule_naming_an_unknown_package_is_an_error() {
        let rule = OnlyIn {
            dev: &["nonesuch"],
            ..AXUM_IN_WEB
        };
        let found = violations(&sample(), &[rule], &[]);
        assert!(
            found
                .iter()
                .any(|f| f.contains("\"nonesuch\", which is not in the workspace")),
            "{found:?}"
        );
    }
}
