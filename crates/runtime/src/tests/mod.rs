//! Tests of the driver with real containers (they need root, runc and busybox-static; the
//! network and gVisor tests also pasta and runsc, and skip with a notice without them).

mod agent_e2e;
mod containers;
mod fake_agent;
mod fixtures;
mod isolation;
mod runsc;
