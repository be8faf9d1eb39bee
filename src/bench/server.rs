//! The server under test: a running one at `--url`, or `reswhis serve` as a child
//! process on 127.0.0.1 port 0, fresh for each round, so its state is new and its CPU
//! time (from `/info`) is its own. The child gets the bench's model and policy flags, no
//! API key, and is killed when its [`ServerProcess`] is dropped.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};

use super::report::{ServerStats, Timing};
use crate::config::{BenchArgs, ModelArgs};
use crate::info::Info;
use crate::metrics::Percentiles;
use crate::server::Listening;
use std::net::SocketAddr;

/// A server at a URL: the WebSocket endpoint and the HTTP address for /info.
#[derive(Debug, Clone)]
pub(super) struct RemoteServer {
    /// The URL as given: clients connect to it.
    pub(super) ws_url: String,
    /// host:port
    pub(super) authority: String,
    /// The URL's query (`token=KEY`), passed on to /info.
    pub(super) query: String,
}

impl RemoteServer {
    /// Reads `ws://HOST[:PORT]/PATH[?QUERY]` (port 80 when none is given); `wss://` is
    /// refused, the client speaks plain TCP only.
    pub(super) fn parse(url: &str) -> anyhow::Result<RemoteServer> {
        let Some(rest) = url.strip_prefix("ws://") else {
            bail!("--url {url:?}: only ws:// URLs are supported");
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let authority = if authority.contains(':') {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let query = path.split_once('?').map(|(_, q)| q).unwrap_or("");
        Ok(RemoteServer {
            ws_url: url.to_string(),
            authority,
            query: query.to_string(),
        })
    }

    /// GET /info, read as the server wrote it ([`Info`]).
    pub(super) fn info(&self) -> anyhow::Result<Info> {
        let mut stream = TcpStream::connect(&self.authority)
            .with_context(|| format!("cannot reach {}", self.authority))?;
        let failed = || format!("GET /info from {} failed", self.authority);
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .with_context(failed)?;
        let path = if self.query.is_empty() {
            "/info".to_string()
        } else {
            format!("/info?{}", self.query)
        };
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.authority
        )
        .with_context(failed)?;
        let mut response = String::new();
        stream.read_to_string(&mut response).with_context(failed)?;
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body)
            .ok_or_else(|| anyhow!("malformed /info response from {}", self.authority))?;
        serde_json::from_str(body)
            .with_context(|| format!("/info from {} is not reswhis's", self.authority))
    }
}

/// The server process's CPU seconds in its /info, when it tells (it needs the API key).
pub(super) fn cpu_seconds(info: &Info) -> Option<f64> {
    info.process_cpu_seconds()
}

/// The update timings in a server's /info (`stats.update_seconds`,
/// `stats.queue_wait_seconds`, `stats.updates_cut`); `None` when /info has none of them
/// (no details, or a server from before they were counted).
pub(super) fn server_stats(info: &Info) -> Option<ServerStats> {
    let stats = &info.details.as_ref()?.stats;
    let timing = |p: &Percentiles| {
        (p.count > 0).then_some(Timing {
            count: p.count as u64,
            p50: p.p50,
            p90: p.p90,
            p99: p.p99,
            max: p.max,
        })
    };
    let parsed = ServerStats {
        update_seconds: timing(&stats.update_seconds),
        update_seconds_short_audio: timing(&stats.update_seconds_short_audio),
        queue_wait_seconds: timing(&stats.queue_wait_seconds),
        updates_cut: (stats.updates > 0).then_some(stats.updates_cut),
    };
    (parsed != ServerStats::default()).then_some(parsed)
}

/// `reswhis serve` on 127.0.0.1 port 0 as a child process; killed when dropped.
pub(super) struct ServerProcess {
    child: Child,
    /// Where it listens.
    pub(super) server: RemoteServer,
    /// The last lines of its log, for error messages.
    log: Arc<Mutex<VecDeque<String>>>,
}

impl ServerProcess {
    /// Starts the server with the bench's model, policy and worker flags, room for
    /// `clients` sessions (64 at least) and no session time limit, and waits until it
    /// logs its address (up to 5 minutes: it loads the model first).
    pub(super) fn start(args: &BenchArgs, clients: usize) -> anyhow::Result<ServerProcess> {
        let exe = server_executable().context("cannot find this executable to start the server")?;
        // The model as resolved here (MODEL_SIZE alias, default), so the server's
        // command line names the model it loads.
        let model = ModelArgs {
            model: Some(args.model.model_name()),
            ..args.model.clone()
        };
        let mut command = Command::new(&exe);
        command
            .arg("serve")
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(model.to_args())
            .args(args.policy.to_args())
            .args(args.voice.to_args())
            .args(["--max-sessions", &clients.max(64).to_string()])
            .args(["--max-session-duration", "0"]);
        if let Some(workers) = args.workers {
            command.args(["--workers", &workers.to_string()]);
        }
        let mut child = command
            .env("RUST_LOG", "info,whisper_rs=warn")
            .env_remove("API_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {} serve", exe.display()))?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let log = Arc::new(Mutex::new(VecDeque::new()));
        {
            let log = Arc::clone(&log);
            std::thread::spawn(move || read_server_log(stderr, &log));
        }
        // The server's one line on stdout: {"listening":"127.0.0.1:PORT"}.
        let (address_tx, address_rx) = crossbeam_channel::bounded(1);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(address) = Listening::parse(&line) {
                    let _ = address_tx.try_send(address);
                }
            }
        });
        let address: SocketAddr = match address_rx.recv_timeout(Duration::from_secs(300)) {
            Ok(address) => address,
            Err(_) => {
                let _ = child.kill();
                let log: Vec<String> = log.lock().unwrap().iter().cloned().collect();
                bail!("the server did not start:\n{}", log.join("\n"));
            }
        };
        Ok(ServerProcess {
            child,
            server: RemoteServer::parse(&format!("ws://{address}/transcribe"))?,
            log,
        })
    }

    /// The last 10 lines of the server's log.
    pub(super) fn log_tail(&self) -> String {
        let log = self.log.lock().unwrap();
        let skip = log.len().saturating_sub(10);
        log.iter()
            .skip(skip)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// This executable. Linux names a binary that was rebuilt while it ran "PATH (deleted)";
/// the new one at PATH will do.
pub(super) fn server_executable() -> std::io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    match exe.to_str().and_then(|p| p.strip_suffix(" (deleted)")) {
        Some(path) => Ok(PathBuf::from(path)),
        None => Ok(exe),
    }
}

/// Keeps the server's last log lines and passes on its warnings and errors.
fn read_server_log(stderr: impl Read, log: &Mutex<VecDeque<String>>) {
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        if line.contains(" WARN ") || line.contains(" ERROR ") {
            eprintln!("[server] {line}");
        }
        let mut log = log.lock().unwrap();
        if log.len() == 200 {
            log.pop_front();
        }
        log.push_back(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Percentiles;

    #[test]
    fn urls() {
        let remote = RemoteServer::parse("ws://example.org:8000/transcribe?token=k").unwrap();
        assert_eq!(remote.authority, "example.org:8000");
        assert_eq!(remote.query, "token=k");
        assert_eq!(
            RemoteServer::parse("ws://h/transcribe").unwrap().authority,
            "h:80"
        );
        assert!(RemoteServer::parse("wss://h/transcribe").is_err());
    }

    #[test]
    fn update_timings_are_read_when_present() {
        let mut info = Info::example(true);
        let details = info.details.as_mut().unwrap();
        details.stats.update_seconds = Percentiles {
            count: 40,
            p50: Some(0.25),
            p90: Some(0.5),
            p99: Some(0.75),
            max: Some(1.5),
        };
        details.stats.updates_cut = 3;
        let stats = server_stats(&info).unwrap();
        let update = stats.update_seconds.unwrap();
        assert_eq!(
            (update.count, update.p90, update.max),
            (40, Some(0.5), Some(1.5))
        );
        // No call waited in the queue: nothing to report.
        assert_eq!(stats.queue_wait_seconds, None);
        assert_eq!(stats.updates_cut, Some(3));
        // An older server reports none of them (it reads back with zero counts), and
        // /info without the details (no API key) tells nothing.
        let old: Info = serde_json::from_str(
            r#"{"backend":"whisper.cpp","model_size":"tiny.en","language":"en",
            "sampling_rate":16000,"minimum_chunk_size":1.0,"voice_activity_controller":false,
            "use_voice_activity_detection":false,"version":"0.1.0","auth_required":false,
            "workers":1,"stats":{"process_cpu_seconds":2.5}}"#,
        )
        .unwrap();
        assert_eq!(server_stats(&old), None);
        assert_eq!(server_stats(&Info::example(false)), None);
    }
}
