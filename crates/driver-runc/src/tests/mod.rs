//! Tests of the driver with real containers (they need root, runc and busybox-static; the
//! network and gVisor tests also pasta, slirp4netns and runsc). Without them a test fails with
//! the reason when `CI` is set and is reported `SKIPPED:` elsewhere
//! ([`faasbox_test_registry::cannot_run`]).

mod agent_e2e;
mod containers;
mod export;
mod fake_agent;
mod fixtures;
mod isolation;
mod other_runtimes;
mod runsc;
mod slirp;
mod stem;
