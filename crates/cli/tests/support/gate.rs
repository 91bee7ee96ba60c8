//! A gate on the host's loopback for functions in `gate` mode: each call's request is held
//! until the test releases it, so a test sees exactly how many calls are running, in which
//! instance (its hostname) and in what order they arrived — no timing involved.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

/// One call that reached the gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    /// The instance's hostname (one per instance).
    pub host: String,
    /// The call's input, letters and digits only.
    pub tag: String,
}

#[derive(Default)]
struct State {
    arrivals: Vec<Arrival>,
    held: VecDeque<(Arrival, oneshot::Sender<()>)>,
    open: bool,
}

/// The gate: a loopback HTTP server whose `GET /enter?host=H&tag=T` answers only when released;
/// `GET /seen?host=H&tag=T` is recorded as an arrival too but answered at once.
pub struct Gate {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

fn query_value(target: &str, key: &str) -> String {
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or_default();
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.to_string())
        .unwrap_or_default()
}

impl Gate {
    pub async fn start() -> Gate {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the gate");
        let port = listener.local_addr().expect("gate address").port();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16384 {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).to_string();
                    let target = head.split(' ').nth(1).unwrap_or_default();
                    let arrival = Arrival {
                        host: query_value(target, "host"),
                        tag: query_value(target, "tag"),
                    };
                    let (tx, rx) = oneshot::channel();
                    let wait = {
                        let mut state = state.lock().unwrap();
                        state.arrivals.push(arrival.clone());
                        if state.open || target.starts_with("/seen") {
                            None
                        } else {
                            state.held.push_back((arrival, tx));
                            Some(rx)
                        }
                    };
                    if let Some(rx) = wait {
                        let _ = rx.await;
                    }
                    let _ = socket
                        .write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\npassed")
                        .await;
                });
            }
        });
        Gate { port, state }
    }

    /// The calls held at the gate now, oldest first.
    pub fn held(&self) -> Vec<Arrival> {
        let state = self.state.lock().unwrap();
        state.held.iter().map(|(a, _)| a.clone()).collect()
    }

    /// Every call that reached the gate, in order of arrival.
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.state.lock().unwrap().arrivals.clone()
    }

    /// Lets the `n` oldest held calls through.
    pub fn release(&self, n: usize) {
        let mut state = self.state.lock().unwrap();
        for _ in 0..n {
            let (_, tx) = state
                .held
                .pop_front()
                .expect("fewer calls held than released");
            let _ = tx.send(());
        }
    }

    /// Lets the held call with input `tag` through.
    pub fn release_tag(&self, tag: &str) {
        let mut state = self.state.lock().unwrap();
        let at = state
            .held
            .iter()
            .position(|(a, _)| a.tag == tag)
            .unwrap_or_else(|| panic!("no call {tag} is held"));
        if let Some((_, tx)) = state.held.remove(at) {
            let _ = tx.send(());
        }
    }

    /// Lets every held call through, and every later one pass at once.
    pub fn open(&self) {
        let mut state = self.state.lock().unwrap();
        state.open = true;
        for (_, tx) in state.held.drain(..) {
            let _ = tx.send(());
        }
    }

    /// Waits (up to `within`) until exactly `n` calls are held, and returns them.
    pub async fn wait_held(&self, n: usize, within: Duration) -> Vec<Arrival> {
        super::wait_until(within, &format!("{n} calls held at the gate"), || {
            self.held().len() == n
        })
        .await;
        self.held()
    }
}
