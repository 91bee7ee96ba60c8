//! A bare TCP relay for the throughput benchmark: one hop between a client and the function
//! that parses nothing, copying bytes each way with one blocking thread per direction.
//!
//! It is the cheapest a forwarding hop can be on these cores (no HTTP, no routing, no
//! records), so its calls per second against the direct calls' bound what any platform that
//! forwards a call (faasbox makes two hops: server and agent) can reach on the same machine.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;

/// A relay inside a network namespace that takes a set number of connections, each relayed
/// to `upstream` until either side closes.
pub struct TcpRelay {
    /// Where clients connect (in the relay's network namespace).
    pub addr: SocketAddr,
    /// Accepts the connections, then hands back their pumps.
    acceptor: JoinHandle<Vec<JoinHandle<()>>>,
}

impl TcpRelay {
    /// Starts a relay in the network namespace of `netns_pid` that accepts `connections`
    /// connections on a port of 127.0.0.1 and relays each to `upstream`.
    pub fn start(netns_pid: i32, upstream: SocketAddr, connections: usize) -> TcpRelay {
        let netns =
            std::fs::File::open(format!("/proc/{netns_pid}/ns/net")).expect("the instance's netns");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let acceptor = std::thread::spawn(move || {
            // Threads spawned from here inherit this thread's network namespace.
            nix::sched::setns(&netns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            let listener = TcpListener::bind("127.0.0.1:0").expect("the relay's port");
            ready_tx
                .send(listener.local_addr().expect("the relay's address"))
                .expect("the relay's starter");
            let mut pumps = Vec::new();
            for _ in 0..connections {
                let (client, _) = listener.accept().expect("a client of the relay");
                let function = TcpStream::connect(upstream).expect("the relay's upstream");
                for stream in [&client, &function] {
                    stream.set_nodelay(true).expect("nodelay");
                }
                let (client_in, function_out) = (
                    client.try_clone().expect("clone"),
                    function.try_clone().expect("clone"),
                );
                pumps.push(std::thread::spawn(move || pump(client_in, function_out)));
                pumps.push(std::thread::spawn(move || pump(function, client)));
            }
            pumps
        });
        let addr = ready_rx.recv().expect("the relay started");
        TcpRelay { addr, acceptor }
    }

    /// Waits until every relayed connection has closed (the clients closed theirs first).
    pub fn join(self) {
        for pump in self.acceptor.join().expect("the relay's acceptor") {
            pump.join().expect("a relay pump");
        }
    }
}

/// Copies `from` to `to` until `from` ends or either fails, then shuts both down, so that the
/// other direction's pump and both ends see the close.
fn pump(mut from: TcpStream, mut to: TcpStream) {
    let mut buffer = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buffer[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
