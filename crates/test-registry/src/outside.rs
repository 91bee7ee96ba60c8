//! An address of "the outside world" for network tests of functions.
//!
//! pasta gives a function's network namespace the host's own address, so a function that
//! connects to it reaches itself, and the host's loopback is out of its reach by default. What
//! it can reach is any other address: [`OutsideAddress`] adds one to the host (on `lo`, from
//! 198.18.0.0/15, the range set aside for benchmarking) for as long as a test needs it;
//! [`OutsideAddress6`] the same for IPv6 (from fdfb::/16, outside slirp4netns' fd00::/64).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::Command;
use std::sync::atomic::{AtomicU16, Ordering};

/// A host address that is not a loopback address; removed again on drop. Needs root.
pub struct OutsideAddress {
    /// The address, on the loopback interface `lo` but outside 127.0.0.0/8.
    pub ip: Ipv4Addr,
}

impl OutsideAddress {
    /// Adds a fresh 198.18.x.y/32 to `lo` (distinct per process and call).
    pub fn add() -> OutsideAddress {
        static NEXT: AtomicU16 = AtomicU16::new(0);
        let n = (std::process::id() as u16).wrapping_mul(31) ^ NEXT.fetch_add(1, Ordering::SeqCst);
        let ip = Ipv4Addr::new(198, 18, (n >> 8) as u8, (n & 0xff).max(1) as u8);
        change_lo("add", &format!("{ip}/32"));
        OutsideAddress { ip }
    }
}

impl Drop for OutsideAddress {
    fn drop(&mut self) {
        change_lo("del", &format!("{}/32", self.ip));
    }
}

/// A host IPv6 address that is not `::1` (nor in slirp4netns' fd00::/64); removed again on
/// drop. Needs root.
pub struct OutsideAddress6 {
    /// The address, on the loopback interface `lo`.
    pub ip: Ipv6Addr,
}

impl OutsideAddress6 {
    /// Adds a fresh fdfb::/16 address to `lo` (distinct per process and call).
    pub fn add() -> OutsideAddress6 {
        static NEXT: AtomicU16 = AtomicU16::new(1);
        let ip = Ipv6Addr::new(
            0xfdfb,
            0,
            0,
            0,
            0,
            0,
            std::process::id() as u16,
            NEXT.fetch_add(1, Ordering::SeqCst),
        );
        change_lo("add", &format!("{ip}/128"));
        OutsideAddress6 { ip }
    }
}

impl Drop for OutsideAddress6 {
    fn drop(&mut self) {
        change_lo("del", &format!("{}/128", self.ip));
    }
}

/// `ip addr add|del CIDR dev lo` (IPv6 without a duplicate address check, so it is usable at
/// once). Adding must work; a failed delete (the address already gone) is ignored.
fn change_lo(action: &str, cidr: &str) {
    let mut args = vec!["addr", action, cidr, "dev", "lo"];
    if action == "add" && cidr.contains(':') {
        args.push("nodad");
    }
    let out = Command::new("ip")
        .args(&args)
        .output()
        .expect("running `ip addr` (package iproute2)");
    assert!(
        action != "add" || out.status.success(),
        "cannot add {cidr} to lo: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
