//! The workspace's architecture invariants, checked by tests rather than stated in prose only.
//!
//! This crate is never a dependency of another: its tests (`tests/dependencies.rs`,
//! `tests/module_cycles.rs`) read the workspace as it is and fail when a boundary is crossed.
//! The library holds what they share: the workspace's packages as `cargo metadata` reports
//! them ([`workspace`]), the check of dependency rules ([`dependencies`]), the module graph of
//! a crate read from its source with `syn` ([`modules`]), and the cycle finder ([`graph`]).
//! The rules themselves (which crate may depend on what, the cycles known today) are tables in
//! the test files, so changing a boundary is a one-line change next to its check.

pub mod dependencies;
pub mod graph;
pub mod modules;
pub mod workspace;
