//! Loopback TCP through blocking threads instead of the async reactor (used under runsc).
//!
//! The gVisor release Debian 12 ships sometimes never reports a loopback TCP socket readable
//! (seen as the agent's connection to the function sitting in CLOSE_WAIT with the answer
//! unread). Blocking `read`/`write` calls are woken reliably, so in this mode each TCP
//! connection gets two threads that copy its bytes to and from an in-process duplex pipe, and
//! hyper speaks HTTP over the pipe.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::runtime::Handle;

const PIPE_BYTES: usize = 256 * 1024;

/// Connects to `addr` with a blocking connect and bridges the connection.
pub async fn connect(addr: SocketAddr) -> io::Result<DuplexStream> {
    let stream = tokio::task::spawn_blocking(move || TcpStream::connect(addr))
        .await
        .map_err(io::Error::other)??;
    bridge(stream)
}

/// True when something accepts connections on `addr` (a blocking connect).
pub async fn accepts(addr: SocketAddr, timeout: std::time::Duration) -> bool {
    tokio::task::spawn_blocking(move || TcpStream::connect_timeout(&addr, timeout).is_ok())
        .await
        .unwrap_or(false)
}

/// Accepts connections on `listener` in a thread of its own and hands each one, bridged, to
/// `serve` on the runtime.
pub fn serve_blocking<F>(listener: TcpListener, serve: F) -> io::Result<()>
where
    F: Fn(DuplexStream) + Send + 'static,
{
    listener.set_nonblocking(false)?;
    let runtime = Handle::current();
    std::thread::Builder::new()
        .name("log-accept".into())
        .spawn(move || {
            // `bridge` and `serve` spawn onto the runtime from this plain thread.
            let _entered = runtime.enter();
            accept_loop(&listener, &serve)
        })?;
    Ok(())
}

fn accept_loop<F: Fn(DuplexStream)>(listener: &TcpListener, serve: &F) {
    loop {
        match listener.accept() {
            Ok((stream, _)) => match bridge(stream) {
                Ok(pipe) => serve(pipe),
                Err(err) => eprintln!("faasbox-agent: bridging a connection failed: {err}"),
            },
            Err(err) => {
                eprintln!("faasbox-agent: accept failed: {err}");
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
    }
}

/// Copies between `stream` and a new duplex pipe on two threads; returns the pipe's other end.
pub fn bridge(stream: TcpStream) -> io::Result<DuplexStream> {
    stream.set_nodelay(true)?;
    let handle = Handle::current();
    let (ours, theirs) = tokio::io::duplex(PIPE_BYTES);
    let (mut pipe_read, mut pipe_write) = tokio::io::split(theirs);
    let mut from_socket = stream.try_clone()?;
    let mut to_socket = stream;
    let inbound = handle.clone();
    std::thread::Builder::new()
        .name("tcp-in".into())
        .spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match from_socket.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if inbound.block_on(pipe_write.write_all(&buf[..n])).is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = inbound.block_on(pipe_write.shutdown());
        })?;
    std::thread::Builder::new()
        .name("tcp-out".into())
        .spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match handle.block_on(pipe_read.read(&mut buf)) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if to_socket.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            // Both directions: also wakes the inbound thread should the peer keep its side open.
            let _ = to_socket.shutdown(Shutdown::Both);
        })?;
    Ok(ours)
}
