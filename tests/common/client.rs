//! Test clients: connect, stream audio (in real time or as fast as the server takes it),
//! and collect what the server sends back, typed.

use std::time::{Duration, Instant};

use reswhis::protocol::{ServerMessage, TaggedMessage};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use super::*;

pub type Client = WebSocket<MaybeTlsStream<TcpStream>>;

pub fn connect(url: &str) -> Client {
    let (socket, _) = tungstenite::connect(url).expect("WebSocket connect");
    if let MaybeTlsStream::Plain(stream) = socket.get_ref() {
        stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
    }
    socket
}

/// What a client saw in a session.
#[derive(Debug, Default, Clone)]
pub struct Received {
    /// Committed pieces: (from ms, to ms, content, seconds since the session started).
    pub committed: Vec<(u64, u64, String, f64)>,
    pub errors: Vec<String>,
    pub done: bool,
    /// Close code and reason, if the server closed.
    pub close: Option<(u16, String)>,
    pub interim: usize,
}

impl Received {
    pub fn transcript(&self) -> String {
        self.committed.iter().map(|c| c.2.as_str()).collect()
    }

    fn take(&mut self, message: Message, started: Instant) {
        match message {
            Message::Text(text) => {
                match ServerMessage::parse(text.as_str()).expect("the server sends its messages") {
                    ServerMessage::Committed {
                        from, to, content, ..
                    } => self
                        .committed
                        .push((from, to, content, started.elapsed().as_secs_f64())),
                    ServerMessage::Tagged(TaggedMessage::Done) => self.done = true,
                    ServerMessage::Tagged(TaggedMessage::Error { message }) => {
                        self.errors.push(message)
                    }
                    ServerMessage::Tagged(TaggedMessage::Interim { .. }) => self.interim += 1,
                    ServerMessage::Tagged(TaggedMessage::Language { .. }) => {}
                }
            }
            Message::Close(frame) => {
                self.close = Some(
                    frame
                        .map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or((1005, String::new())),
                );
            }
            _ => {}
        }
    }
}

/// Reads whatever arrived (non-blocking beyond the socket's short timeout).
pub fn drain(client: &mut Client, received: &mut Received, started: Instant) -> bool {
    loop {
        match client.read() {
            Ok(message) => received.take(message, started),
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return true
            }
            Err(_) => return false,
        }
    }
}

/// Streams `pcm` in frames of `frame_bytes`, paced in real time if `realtime`, then
/// sends `{"type":"eos"}` and reads until the server closes (or `limit` passes). The
/// session must stay open until then: a failed send panics.
pub fn stream_pcm(
    client: &mut Client,
    pcm: &[u8],
    frame_bytes: usize,
    realtime: bool,
    limit: Duration,
) -> Received {
    stream(client, pcm, frame_bytes, realtime, Sending::Strict, limit)
}

/// How [`stream`] treats a session that ends early.
#[derive(Clone, Copy, PartialEq)]
enum Sending {
    /// Every frame and `eos` must be sent: a failed send panics.
    Strict,
    /// Stop at the first failed send or close; send `eos` (if `eos`) only while open.
    UntilClosed { eos: bool },
}

/// Sends the frames (paced in real time if `realtime`) and `eos` as `sending` says,
/// then reads until the server closes or `limit` passes.
fn stream(
    client: &mut Client,
    pcm: &[u8],
    frame_bytes: usize,
    realtime: bool,
    sending: Sending,
    limit: Duration,
) -> Received {
    let started = Instant::now();
    let mut received = Received::default();
    let mut sent = 0usize;
    for frame in pcm.chunks(frame_bytes) {
        let result = client.send(Message::binary(frame.to_vec()));
        if sending == Sending::Strict {
            result.expect("sending audio");
        } else if received.close.is_some() || result.is_err() {
            break;
        }
        sent += frame.len();
        if realtime {
            wait_until_due(client, &mut received, started, sent);
        }
    }
    match sending {
        Sending::Strict => {
            client
                .send(Message::text(r#"{"type":"eos"}"#))
                .expect("sending eos");
        }
        Sending::UntilClosed { eos: true } if received.close.is_none() => {
            let _ = client.send(Message::text(r#"{"type":"eos"}"#));
        }
        Sending::UntilClosed { .. } => {}
    }
    finish(client, &mut received, started, limit);
    received
}

/// Real-time pacing: reads what arrives until the audio in `sent_bytes` (s16le, 16 kHz)
/// is due. Returns false if the connection ended meanwhile.
pub fn wait_until_due(
    client: &mut Client,
    received: &mut Received,
    started: Instant,
    sent_bytes: usize,
) -> bool {
    let due = Duration::from_secs_f64(sent_bytes as f64 / SECOND as f64);
    while started.elapsed() < due {
        if !drain(client, received, started) {
            return false;
        }
    }
    true
}

/// Reads until the connection closes or `limit` passes.
pub fn finish(client: &mut Client, received: &mut Received, started: Instant, limit: Duration) {
    while started.elapsed() < limit {
        if !drain(client, received, started) {
            break;
        }
    }
}

/// Like [`connect`], with extra request headers (`Authorization`, say).
pub fn connect_with(url: &str, headers: &[(&str, &str)]) -> Client {
    use tungstenite::client::IntoClientRequest;
    let mut request = url.into_client_request().expect("WebSocket URL");
    for (name, value) in headers {
        request.headers_mut().insert(
            tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    let (socket, _) = tungstenite::connect(request).expect("WebSocket connect");
    if let MaybeTlsStream::Plain(stream) = socket.get_ref() {
        stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
    }
    socket
}

/// `count` clients streaming jfk.wav in real time, each on its own thread until the server
/// closes (with `eos` at the end if the session is still open); what each received.
pub fn jfk_streams(
    server: &TestServer,
    count: usize,
    eos: bool,
    limit: Duration,
) -> Vec<std::thread::JoinHandle<Received>> {
    let (pcm, _) = jfk();
    (0..count)
        .map(|_| {
            let url = server.url("/transcribe");
            let pcm = pcm.clone();
            std::thread::spawn(move || {
                let mut client = connect(&url);
                stream_until_closed(&mut client, &pcm, FRAME_100MS, true, eos, limit)
            })
        })
        .collect()
}

/// Streams `pcm` in real time until the first text is committed (a worker commits only
/// when a second pass agrees with the first, so audio sent all at once would commit
/// nothing before its end); returns the bytes sent.
pub fn stream_until_first_commit(
    client: &mut Client,
    pcm: &[u8],
    received: &mut Received,
    started: Instant,
) -> usize {
    let mut sent = 0usize;
    for frame in pcm.chunks(FRAME_100MS) {
        if !received.committed.is_empty() {
            break;
        }
        client.send(Message::binary(frame.to_vec())).unwrap();
        sent += frame.len();
        wait_until_due(client, received, started, sent);
    }
    println!(
        "first commit after {:.1} s of audio: {:?}",
        sent as f64 / SECOND as f64,
        received.committed
    );
    sent
}

/// Closes the client's socket with a TCP reset (SO_LINGER 0), as a vanished client.
#[cfg(unix)]
pub fn reset(client: Client) {
    if let MaybeTlsStream::Plain(stream) = client.get_ref() {
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: setsockopt on a socket we own, with a correctly sized `linger`.
        let rc = unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(stream),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                &linger as *const libc::linger as *const libc::c_void,
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "setsockopt(SO_LINGER)");
    }
    drop(client);
}

/// Client-side clean close; reads until the server's close arrives.
pub fn close(mut client: Client) {
    let _ = client.close(None);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        match client.read() {
            Ok(_) => continue,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => break,
        }
    }
}

/// Like [`stream_pcm`], but the server may end the session meanwhile (a limit, a
/// shutdown): sending stops at the first failure or close, `eos` is sent only if `eos`
/// and the session is still open; then reads until the server closes or `limit` passes.
pub fn stream_until_closed(
    client: &mut Client,
    pcm: &[u8],
    frame_bytes: usize,
    realtime: bool,
    eos: bool,
    limit: Duration,
) -> Received {
    let sending = Sending::UntilClosed { eos };
    stream(client, pcm, frame_bytes, realtime, sending, limit)
}
