//! An address of "the outside world" for network tests of functions.
//!
//! pasta gives a function's network namespace the host's own address, so a function that
//! connects to it reaches itself, and the host's loopback is out of its reach by default. What
//! it can reach is any other address: [`OutsideAddress`] adds one to the host (on `lo`, from
//! 198.18.0.0/15, the range set aside for benchmarking) for as long as a test needs it.

use std::net::Ipv4Addr;
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
        let out = Command::new("ip")
            .args(["addr", "add", &format!("{ip}/32"), "dev", "lo"])
            .output()
            .expect("running `ip addr add` (package iproute2)");
        assert!(
            out.status.success(),
            "cannot add {ip} to lo: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        OutsideAddress { ip }
    }
}

impl Drop for OutsideAddress {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["addr", "del", &format!("{}/32", self.ip), "dev", "lo"])
            .output();
    }
}
