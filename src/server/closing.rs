//! Closing a refused connection without losing the answer.
//!
//! Closing a socket while the peer's bytes are still unread makes the kernel send a reset
//! instead of a FIN (RFC 2525, 2.17), and the reset can throw away a response still
//! queued for sending: a client that sent its request before reading our 503 then reads
//! nothing at all. Measured here with 2 busy cores: 2 of 800 refused requests got an
//! empty reply (and CI's `/health` beyond `--max-connections` once read nothing).
//!
//! So a refused connection is closed the way HTTP servers do a "lingering close": shut
//! down our half (the FIN follows the answer), read and discard what the peer still
//! sends until it closes its half or [`GRACE`] ends, then close.
//!
//! Invariants: handing a socket over never blocks (the acceptor must not wait on a
//! client); one thread does every lingering close; it holds at most [`MAX_LINGERING`]
//! sockets (beyond that the oldest is closed outright) and none longer than [`GRACE`].

use std::io::{ErrorKind, Read};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

/// The longest a refused client is given to read the answer and close.
pub const GRACE: Duration = Duration::from_secs(2);
/// The most refused sockets kept open at once (a flood costs at most this many fds).
pub const MAX_LINGERING: usize = 256;
/// How often the lingering sockets are drained.
const TICK: Duration = Duration::from_millis(20);

/// Hands answered connections to the thread that closes them gracefully.
pub struct Closer {
    sender: Sender<TcpStream>,
}

impl Closer {
    /// Starts the closing thread; it ends once the `Closer` is dropped and its sockets
    /// are closed.
    pub fn start() -> std::io::Result<Closer> {
        let (sender, receiver) = crossbeam_channel::bounded(MAX_LINGERING);
        std::thread::Builder::new()
            .name("closer".into())
            .spawn(move || linger(receiver))?;
        Ok(Closer { sender })
    }

    /// Closes `stream` once the peer has read what was written to it; returns at once.
    pub fn close(&self, stream: TcpStream) {
        let _ = stream.shutdown(Shutdown::Write);
        if stream.set_nonblocking(true).is_err() {
            return;
        }
        // In a flood (the channel full) the socket is dropped, so closed outright: its FIN
        // is already on its way.
        let _ = self.sender.try_send(stream);
    }
}

/// Drains what each socket's peer still sends until it closes or its grace ends.
fn linger(receiver: Receiver<TcpStream>) {
    let mut lingering: Vec<(TcpStream, Instant)> = Vec::new();
    loop {
        let received = if lingering.is_empty() {
            receiver.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            receiver.recv_timeout(TICK)
        };
        match received {
            Ok(stream) => {
                if lingering.len() == MAX_LINGERING {
                    lingering.remove(0);
                }
                lingering.push((stream, Instant::now() + GRACE));
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) if lingering.is_empty() => return,
            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(TICK),
        }
        let now = Instant::now();
        lingering.retain_mut(|(stream, deadline)| now < *deadline && !drained(stream));
    }
}

/// Reads and discards what is readable; true once the peer has closed (or failed).
fn drained(stream: &mut TcpStream) -> bool {
    let mut sink = [0u8; 4096];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    /// A peer that sends more than is read still gets the answer, then a clean EOF.
    #[test]
    fn a_refused_peer_reads_the_answer_then_eof() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let closer = Closer::start().unwrap();
        for _ in 0..20 {
            let mut client = TcpStream::connect(addr).unwrap();
            client.write_all(&[b'x'; 30_000]).unwrap_or(());
            let (mut server, _) = listener.accept().unwrap();
            server.write_all(b"refused").unwrap();
            closer.close(server);
            client.write_all(&[b'y'; 10_000]).unwrap();
            client
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut answer = Vec::new();
            client.read_to_end(&mut answer).unwrap();
            assert_eq!(answer, b"refused");
        }
    }

    /// A peer that never closes is let go after the grace.
    #[test]
    fn a_silent_peer_is_closed_after_the_grace() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let closer = Closer::start().unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let start = Instant::now();
        closer.close(server);
        client
            .set_read_timeout(Some(GRACE + Duration::from_secs(5)))
            .unwrap();
        let mut answer = Vec::new();
        // Our FIN arrives at once (EOF); the socket itself is closed by the grace.
        client.read_to_end(&mut answer).unwrap();
        assert!(answer.is_empty());
        assert!(start.elapsed() < GRACE + Duration::from_secs(1));
        std::thread::sleep(GRACE + Duration::from_millis(200));
        // Writing to a fully closed socket is answered by a reset.
        let _ = client.write_all(b"late");
        std::thread::sleep(Duration::from_millis(100));
        let failed = (0..10).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            client.write_all(b"late").is_err()
        });
        assert!(failed, "the refused socket is still open after the grace");
    }
}
