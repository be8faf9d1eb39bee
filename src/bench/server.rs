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

    /// GET /info as JSON.
    pub(super) fn info(&self) -> anyhow::Result<serde_json::Value> {
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
            .with_context(|| format!("/info from {} is not JSON", self.authority))
    }
}

/// The server process's CPU seconds in its /info, when it tells (it needs the API key).
pub(super) fn cpu_seconds(info: &serde_json::Value) -> Option<f64> {
    info["stats"]["process_cpu_seconds"].as_f64()
}

/// The update timings in a server's /info (`stats.update_seconds`,
/// `stats.queue_wait_seconds`, `stats.updates_cut`), each read on its own so that one
/// missing or malformed leaves the others; `None` when /info has none of them.
pub(super) fn server_stats(info: &serde_json::Value) -> Option<ServerStats> {
    let stats = &info["stats"];
    let timing = |key: &str| serde_json::from_value::<Timing>(stats.get(key)?.clone()).ok();
    let parsed = ServerStats {
        update_seconds: timing("update_seconds"),
        queue_wait_seconds: timing("queue_wait_seconds"),
        updates_cut: stats["updates_cut"].as_u64(),
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
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {} serve", exe.display()))?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let (address_tx, address_rx) = crossbeam_channel::bounded(1);
        {
            let log = Arc::clone(&log);
            std::thread::spawn(move || read_server_log(stderr, &log, address_tx));
        }
        let address: String = match address_rx.recv_timeout(Duration::from_secs(300)) {
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

/// Keeps the server's last log lines, passes on its warnings and errors, and sends the
/// address from "listening on http://ADDR".
fn read_server_log(
    stderr: impl Read,
    log: &Mutex<VecDeque<String>>,
    address: crossbeam_channel::Sender<String>,
) {
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        if let Some(rest) = line.split("listening on http://").nth(1) {
            let _ = address.try_send(rest.split_whitespace().next().unwrap_or("").into());
        }
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
        let info = serde_json::json!({"stats": {
            "process_cpu_seconds": 2.5,
            "update_seconds": {"count": 40, "p50": 0.25, "p90": 0.5, "p99": 0.75, "max": 1.5},
            "queue_wait_seconds": {"count": 0, "p50": null, "p90": null, "p99": null,
                                   "max": null},
            "updates_cut": 3,
        }});
        let stats = server_stats(&info).unwrap();
        let update = stats.update_seconds.unwrap();
        assert_eq!(
            (update.count, update.p90, update.max),
            (40, Some(0.5), Some(1.5))
        );
        assert_eq!(stats.queue_wait_seconds.unwrap().max, None);
        assert_eq!(stats.updates_cut, Some(3));
        // Today's servers report none of them; a malformed one is left out alone.
        let old = serde_json::json!({"stats": {"process_cpu_seconds": 2.5}});
        assert_eq!(server_stats(&old), None);
        assert_eq!(server_stats(&serde_json::json!({})), None);
        let odd = serde_json::json!({"stats": {"update_seconds": "fast", "updates_cut": 0}});
        let stats = server_stats(&odd).unwrap();
        assert_eq!((stats.update_seconds, stats.updates_cut), (None, Some(0)));
    }
}
