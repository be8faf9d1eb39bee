//! Shared by the integration tests: start the real `reswhis` binary on an ephemeral
//! port with the real tiny.en model, talk to it over real sockets.
#![allow(dead_code, unused_imports)]

mod checks;
mod client;

pub use checks::*;
pub use client::*;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Bytes of one second of 16 kHz s16le audio.
pub const SECOND: usize = reswhis::audio::BYTES_PER_SECOND;
/// Bytes of 100 ms: the frame most clients send.
pub const FRAME_100MS: usize = SECOND / 10;

/// Held for the whole of a test: the tests of one file take turns, so that one server
/// at a time loads the machine (each test file is its own process).
pub fn serial() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where `nginx` is installed, if it is (PATH, then the usual sbin directories).
pub fn nginx_binary() -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join("nginx"))
        .find(|path| path.is_file())
}

/// A new, empty directory under the system's temporary directory, named after `prefix`,
/// this process and the time (the caller removes it).
pub fn unique_temp_dir(prefix: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let dir = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn shared_audio(name: &str) -> PathBuf {
    manifest_dir().join("../shared/audio").join(name)
}

/// The model the tests use: `RESWHIS_TEST_MODEL` or `models/ggml-tiny.en.bin`.
pub fn model_path() -> PathBuf {
    match std::env::var_os("RESWHIS_TEST_MODEL") {
        Some(path) => existing_model(PathBuf::from(path), "tiny.en"),
        None => repository_model("tiny.en"),
    }
}

/// `models/ggml-NAME.bin` of the repository, which must be there (`silero-v6.2.0` is
/// fetched as `silero-vad`).
pub fn repository_model(name: &str) -> PathBuf {
    existing_model(manifest_dir().join(format!("models/ggml-{name}.bin")), name)
}

fn existing_model(path: PathBuf, name: &str) -> PathBuf {
    let fetch = if name.starts_with("silero") {
        "silero-vad"
    } else {
        name
    };
    assert!(
        path.is_file(),
        "model {} not found: run `./models/fetch.sh {fetch}` from the repository root \
         (scripts/test-deps.sh does)",
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
    /// Starts `reswhis` with tiny.en (unless `extra` names a `--model`) on port 0 plus
    /// `extra` arguments, and waits until it listens.
    pub fn start(extra: &[&str]) -> TestServer {
        Self::start_on(0, extra)
    }

    /// Like [`TestServer::start`], on `port`.
    pub fn start_on(port: u16, extra: &[&str]) -> TestServer {
        let mut command = Command::new(env!("CARGO_BIN_EXE_reswhis"));
        if !extra.contains(&"--model") {
            command.arg("--model").arg(model_path());
        }
        let mut child = command
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(extra)
            .env("RUST_LOG", "info,whisper_rs=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting reswhis");
        let stderr = child.stderr.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        // The server says where it listens in one JSON line on stdout.
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = reswhis::server::Listening::parse(&line) {
                    let _ = addr_tx.send(addr);
                }
            }
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("server did not start; log:\n{}", log.lock().unwrap()));
        TestServer { child, addr, log }
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

/// Sessions open now, from `/info`.
pub fn active_sessions(server: &TestServer) -> u64 {
    get_json(server.addr, "/info", &[])["active_sessions"]
        .as_u64()
        .expect("active_sessions in /info")
}

/// Gives a session that ends (idle, too long, oversize frame…) up to 120 s to flush its
/// text (the grace after an ending is the larger of this and 30 s): on a loaded machine
/// 30 s may not be enough to transcribe the rest.
pub const FLUSH_GRACE: [&str; 2] = ["--shutdown-timeout", "120"];

/// Starts the server with `extra` and the long flush grace.
pub fn start_with_flush_grace(extra: &[&str]) -> TestServer {
    let mut args = FLUSH_GRACE.to_vec();
    args.extend_from_slice(extra);
    TestServer::start(&args)
}

/// The server's `/info`.
pub fn info(server: &TestServer) -> serde_json::Value {
    get_json(server.addr, "/info", &[])
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
