//! Shared by the integration tests: start the real `reswhis` binary on an ephemeral
//! port with the real tiny.en model, talk to it over real sockets.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

pub fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn shared_audio(name: &str) -> PathBuf {
    manifest_dir().join("../shared/audio").join(name)
}

/// The model the tests use: `RESWHIS_TEST_MODEL` or `models/ggml-tiny.en.bin`.
pub fn model_path() -> PathBuf {
    let path = std::env::var_os("RESWHIS_TEST_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join("models/ggml-tiny.en.bin"));
    assert!(
        path.is_file(),
        "model {} not found: run `./models/fetch.sh tiny.en` from the repository root",
        path.display()
    );
    path
}

/// jfk.wav as s16le bytes, and its reference text.
pub fn jfk() -> (Vec<u8>, String) {
    let samples = reswhis::audio::read_wav(&shared_audio("jfk.wav")).expect("reading jfk.wav");
    let text = std::fs::read_to_string(shared_audio("jfk.txt")).expect("reading jfk.txt");
    (
        reswhis::audio::to_pcm_bytes(&samples),
        text.trim().to_string(),
    )
}

/// A running server process; killed when dropped.
pub struct TestServer {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<String>>,
}

impl TestServer {
    /// Starts `reswhis` with tiny.en on port 0 plus `extra` arguments, and waits until
    /// it listens.
    pub fn start(extra: &[&str]) -> TestServer {
        Self::start_on(0, extra)
    }

    /// Like [`TestServer::start`], on `port`.
    pub fn start_on(port: u16, extra: &[&str]) -> TestServer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_reswhis"))
            .arg("--model")
            .arg(model_path())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(extra)
            .env("RUST_LOG", "info,whisper_rs=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting reswhis");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(rest) = line.split("listening on http://").nth(1) {
                        let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                        let _ = addr_tx.send(addr);
                    }
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("server did not start; log:\n{}", log.lock().unwrap()));
        TestServer {
            child,
            addr: addr.parse().expect("listening address"),
            log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends SIGINT (as Ctrl-C does) and waits for the exit status.
    #[cfg(unix)]
    pub fn interrupt_and_wait(&mut self, limit: Duration) -> (Option<i32>, Duration) {
        self.signal_and_wait(libc::SIGINT, limit)
    }

    /// Sends `signal` to the server.
    #[cfg(unix)]
    pub fn signal(&self, signal: i32) {
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// Sends `signal` and waits (up to `limit`) for the exit status.
    #[cfg(unix)]
    pub fn signal_and_wait(&mut self, signal: i32, limit: Duration) -> (Option<i32>, Duration) {
        let started = Instant::now();
        self.signal(signal);
        self.wait_for_exit(started, limit)
    }

    /// Waits until the server exits or `limit` has passed since `started`.
    pub fn wait_for_exit(&mut self, started: Instant, limit: Duration) -> (Option<i32>, Duration) {
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status.code(), started.elapsed());
            }
            if started.elapsed() > limit {
                return (None, started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A plain HTTP GET; returns (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.addr, path, &[])
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn http_get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connecting");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

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
                let value: serde_json::Value =
                    serde_json::from_str(text.as_str()).expect("server sends JSON");
                match value.get("type").and_then(|t| t.as_str()) {
                    None => self.committed.push((
                        value["from"].as_u64().expect("from"),
                        value["to"].as_u64().expect("to"),
                        value["content"].as_str().expect("content").to_string(),
                        started.elapsed().as_secs_f64(),
                    )),
                    Some("done") => self.done = true,
                    Some("error") => self.errors.push(value["message"].as_str().unwrap().into()),
                    Some("interim") => self.interim += 1,
                    Some(other) => panic!("unexpected message type {other}"),
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
/// sends `{"type":"eos"}` and reads until the server closes (or `limit` passes).
pub fn stream_pcm(
    client: &mut Client,
    pcm: &[u8],
    frame_bytes: usize,
    realtime: bool,
    limit: Duration,
) -> Received {
    let started = Instant::now();
    let mut received = Received::default();
    let mut sent = 0usize;
    for frame in pcm.chunks(frame_bytes) {
        client
            .send(Message::binary(frame.to_vec()))
            .expect("sending audio");
        sent += frame.len();
        if realtime {
            wait_until_due(client, &mut received, started, sent);
        }
    }
    client
        .send(Message::text(r#"{"type":"eos"}"#))
        .expect("sending eos");
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
    let due = Duration::from_secs_f64(sent_bytes as f64 / 32_000.0);
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

/// Word error rate against a reference, after normalisation.
pub fn wer(reference: &str, hypothesis: &str) -> f64 {
    reswhis::wer::word_error_rate(reference, hypothesis)
}

// ---- Added for the reliability, soak and nginx tests (issue #6). ----

/// Sends a WebSocket upgrade request for `path` (with `headers`) over a raw socket and
/// returns the status and the response head (plus the body, unless it is a 101).
pub fn ws_upgrade_raw(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connecting");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let head_done = response.windows(4).any(|w| w == b"\r\n\r\n");
        if head_done && response.starts_with(b"HTTP/1.1 101") {
            break;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => response.extend_from_slice(&chunk[..n]),
        }
    }
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, response)
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

/// GET `path` and parse the body as JSON.
pub fn get_json(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> serde_json::Value {
    let (status, body) = http_get(addr, path, headers);
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

/// Polls `condition` every 50 ms until it holds (true) or `limit` passes (false).
pub fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    loop {
        if condition() {
            return true;
        }
        if started.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Resident memory of a process in KiB (`VmRSS` in /proc/PID/status).
pub fn vm_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("reading /proc/PID/status")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS in /proc/PID/status")
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
    let started = Instant::now();
    let mut received = Received::default();
    let mut sent = 0usize;
    for frame in pcm.chunks(frame_bytes) {
        if received.close.is_some() || client.send(Message::binary(frame.to_vec())).is_err() {
            break;
        }
        sent += frame.len();
        if realtime {
            wait_until_due(client, &mut received, started, sent);
        }
    }
    if eos && received.close.is_none() {
        let _ = client.send(Message::text(r#"{"type":"eos"}"#));
    }
    finish(client, &mut received, started, limit);
    received
}
