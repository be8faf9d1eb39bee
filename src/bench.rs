//! `reswhis bench`: measures a server over the real WebSocket protocol (issue #5).
//!
//! How it works, in order:
//!
//! 1. **Test set.** Every `*.wav` in `--audio` with a same-named `.txt` reference (or the
//!    `--files` given).
//! 2. **Floor.** whisper.cpp transcribes each file once, offline, in this process, with
//!    the same model and threads as a server worker: once with the full 30 s encoder
//!    window (the usual offline baseline) and once with the window fitted to the audio.
//! 3. **Rounds.** For each client count N (`--clients 1,2,4`, or `--max-search`): a fresh
//!    server (this executable, `serve`, as a child process, so its CPU time is its own)
//!    and N client threads. Each client streams every file, in a rotated order, in real
//!    time, one connection per file: 100 ms frames, `{"type":"eos"}`, then it waits for
//!    `done` and the close.
//! 4. **Report.** Latency, time to first text, latency growth, WER and server CPU per
//!    audio second, per client and per round; the target checks as PASS/FAIL lines.
//!
//! With `--url` the rounds share the running server (no fresh state, and its CPU time
//! counts whatever else it serves); the model flags then only set up the floor. The
//! fitted-ctx floor equals the full-ctx one for files of 30 s and more.
//!
//! Definitions (also printed with every report):
//! - *stream start*: the moment the first sample of a file is "captured". Frame k is sent
//!   when its last sample is due, as a microphone client would, so the frame length is
//!   part of the latency.
//! - *latency* of a committed message: its arrival − (stream start + `to`/1000).
//! - *first text*: stream start → arrival of the stream's first committed message.
//! - *growth*: over the streams of at least [`GROWTH_MIN_STREAM_SECONDS`], the mean
//!   latency of messages whose `to` falls in the last third of their file minus the mean
//!   of those in the first third. A server that keeps up has about 0; one that falls
//!   behind builds a backlog and the number grows with the stream.
//! - *percentiles*: nearest rank (p90 is the smallest value with ≥ 90 % of values ≤ it).

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use crate::audio::{read_wav, to_pcm_bytes, SAMPLE_RATE};
use crate::config::{BenchArgs, ModelArgs, ServeArgs};
use crate::wer::word_errors;

/// Streams shorter than this are left out of the growth figure (their thirds hold a
/// message or two at most).
pub const GROWTH_MIN_STREAM_SECONDS: f64 = 10.0;
/// Client counts `--max-search` tries, in order, until one fails.
const SEARCH_STEPS: &[usize] = &[1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128];
/// How long a client waits for `done` and the close after sending `eos`.
const FLUSH_LIMIT: Duration = Duration::from_secs(120);
/// Bytes per second of s16le mono audio.
const BYTES_PER_SECOND: f64 = SAMPLE_RATE as f64 * 2.0;

type BoxError = Box<dyn std::error::Error>;

/// Runs the whole benchmark and prints (and writes) the report.
pub fn run(args: &BenchArgs) -> Result<(), BoxError> {
    let files = load_test_set(args)?;
    let audio_seconds: f64 = files.iter().map(|f| f.seconds).sum();
    eprintln!(
        "bench: {} file(s), {:.1} s of audio",
        files.len(),
        audio_seconds
    );
    let remote_info = match &args.url {
        Some(url) => Some(RemoteServer::parse(url)?.info()?),
        None => None,
    };
    let threads = floor_threads(args, remote_info.as_ref());
    let floors = if args.no_floor {
        Vec::new()
    } else {
        [false, true]
            .into_iter()
            .map(|fit| run_floor(args, &files, threads, fit))
            .collect::<Result<Vec<_>, _>>()?
    };

    let files = Arc::new(files);
    let mut rounds = Vec::new();
    let counts: Vec<usize> = if args.max_search {
        SEARCH_STEPS
            .iter()
            .copied()
            .filter(|&n| n <= args.max_clients.max(1))
            .collect()
    } else {
        args.clients.iter().map(|&n| n as usize).collect()
    };
    for clients in counts {
        let round = match run_round(args, &files, clients) {
            Ok(round) => round,
            // Keep what was measured so far.
            Err(e) if !rounds.is_empty() => {
                eprintln!("bench: the round with {clients} client(s) could not run: {e}");
                break;
            }
            Err(e) => return Err(e),
        };
        eprintln!("bench: {}", round_line(&round));
        let failed = !round.pass;
        rounds.push(round);
        if args.max_search && failed {
            break;
        }
    }

    let server_info = remote_info.or_else(|| rounds.first().and_then(|r| r.server_info.clone()));
    let server_threads = server_info
        .as_ref()
        .and_then(|i| i["threads_per_worker"].as_u64());
    if server_threads.is_some_and(|t| t != u64::from(threads)) && !floors.is_empty() {
        eprintln!(
            "bench: warning: the floor used {threads} thread(s), the server {} per worker \
             (pass --threads to make them equal)",
            server_threads.unwrap_or(0)
        );
    }
    let report = Report {
        meta: Meta::collect(args, &files, server_info, threads),
        floors,
        capacity: capacity(&rounds),
        targets: Vec::new(),
        rounds,
    };
    let report = Report {
        targets: check_targets(&report, args),
        ..report
    };
    let markdown = render_markdown(&report, args);
    println!("{markdown}");
    if let Some(path) = &args.output {
        append_markdown(path, &markdown)?;
        eprintln!("bench: report appended to {}", path.display());
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
        eprintln!("bench: JSON written to {}", path.display());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The test set

/// One test file, ready to send.
struct TestFile {
    name: String,
    seconds: f64,
    samples: Vec<f32>,
    pcm: Vec<u8>,
    reference: Option<String>,
}

fn load_test_set(args: &BenchArgs) -> Result<Vec<TestFile>, BoxError> {
    let paths: Vec<PathBuf> = if args.files.is_empty() {
        let entries = std::fs::read_dir(&args.audio).map_err(|e| {
            format!(
                "cannot read {}: {e} (run bench/fetch-audio.sh, or pass --files)",
                args.audio.display()
            )
        })?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "wav"))
            .filter(|p| {
                let has_text = p.with_extension("txt").is_file();
                if !has_text {
                    eprintln!("bench: skipping {} (no .txt reference)", p.display());
                }
                has_text
            })
            .collect();
        paths.sort();
        paths
    } else {
        args.files.clone()
    };
    if paths.is_empty() {
        return Err(format!("no test audio in {}", args.audio.display()).into());
    }
    paths
        .iter()
        .map(|path| {
            let samples = read_wav(path)?;
            let reference = std::fs::read_to_string(path.with_extension("txt"))
                .ok()
                .map(|t| t.trim().to_string());
            if reference.is_none() {
                eprintln!("bench: {} has no .txt reference; no WER", path.display());
            }
            Ok(TestFile {
                name: path.file_stem().map_or_else(
                    || path.display().to_string(),
                    |s| s.to_string_lossy().into(),
                ),
                seconds: samples.len() as f64 / SAMPLE_RATE as f64,
                pcm: to_pcm_bytes(&samples),
                samples,
                reference,
            })
        })
        .collect()
}

/// Word errors and reference words of a transcript, if the file has a reference.
fn score(file: &TestFile, transcript: &str) -> Option<(usize, usize)> {
    file.reference
        .as_deref()
        .map(|r| word_errors(r, transcript))
}

// ---------------------------------------------------------------------------------------
// The offline floor

#[derive(Debug, Clone, Serialize)]
pub struct FloorResult {
    /// "full ctx" (30 s encoder window, the usual offline run) or "fitted ctx".
    pub mode: String,
    pub threads: u32,
    pub audio_seconds: f64,
    pub wall_seconds: f64,
    pub cpu_seconds: Option<f64>,
    /// Real-time factor: wall / audio.
    pub rtf: f64,
    pub cpu_per_audio_second: Option<f64>,
    pub wer: Option<f64>,
    pub files: Vec<FloorFile>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FloorFile {
    pub file: String,
    pub audio_seconds: f64,
    pub wall_seconds: f64,
    pub word_errors: Option<usize>,
    pub reference_words: Option<usize>,
    pub transcript: String,
}

/// whisper.cpp threads of one server worker: --threads, else what the remote server
/// reports, else the server's own default (cores / workers).
fn floor_threads(args: &BenchArgs, remote_info: Option<&serde_json::Value>) -> u32 {
    let remote = remote_info
        .and_then(|i| i["threads_per_worker"].as_u64())
        .map(|t| t as u32);
    let workers = args
        .workers
        .unwrap_or_else(|| (ServeArgs::cores() / 2).max(1));
    let local = (ServeArgs::cores() / workers).max(1);
    args.model.threads.or(remote).unwrap_or(local)
}

/// Transcribes every file once, whole (whisper.cpp seeks through audio over 30 s itself).
fn run_floor(
    args: &BenchArgs,
    files: &[TestFile],
    threads: u32,
    fit_audio_ctx: bool,
) -> Result<FloorResult, BoxError> {
    let mode = if fit_audio_ctx {
        "fitted ctx"
    } else {
        "full ctx"
    };
    eprintln!("bench: offline floor ({mode}, {threads} thread(s))…");
    let mut options = args.model.decode_options(threads);
    options.threads = threads;
    options.fit_audio_ctx = fit_audio_ctx;
    let engine = args.model.load_engine(options)?;
    let mut transcriber = engine.transcriber()?;
    // The first run allocates buffers; keep that out of the numbers.
    let warm_up = &files[0].samples[..files[0].samples.len().min(SAMPLE_RATE as usize * 2)];
    transcriber.transcribe(warm_up, "")?;

    let cpu_before = crate::cpu::process_cpu_seconds();
    let started = Instant::now();
    let mut results = Vec::new();
    for file in files {
        let begin = Instant::now();
        let transcript = transcriber.transcribe(&file.samples, "")?.text();
        let scored = score(file, &transcript);
        results.push(FloorFile {
            file: file.name.clone(),
            audio_seconds: file.seconds,
            wall_seconds: begin.elapsed().as_secs_f64(),
            word_errors: scored.map(|s| s.0),
            reference_words: scored.map(|s| s.1),
            transcript,
        });
    }
    let wall_seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = delta(cpu_before, crate::cpu::process_cpu_seconds());
    let audio_seconds: f64 = files.iter().map(|f| f.seconds).sum();
    Ok(FloorResult {
        mode: mode.into(),
        threads,
        audio_seconds,
        wall_seconds,
        cpu_seconds,
        rtf: wall_seconds / audio_seconds,
        cpu_per_audio_second: cpu_seconds.map(|c| c / audio_seconds),
        wer: aggregate_wer(results.iter().map(|r| (r.word_errors, r.reference_words))),
        files: results,
    })
}

fn delta(before: Option<f64>, after: Option<f64>) -> Option<f64> {
    Some(after? - before?)
}

/// Total word errors / total reference words over the files that have a reference.
fn aggregate_wer(scores: impl Iterator<Item = (Option<usize>, Option<usize>)>) -> Option<f64> {
    let (errors, words) = scores
        .filter_map(|(e, w)| Some((e?, w?)))
        .fold((0, 0), |(e, w), (e1, w1)| (e + e1, w + w1));
    (words > 0).then(|| errors as f64 / words as f64)
}

// ---------------------------------------------------------------------------------------
// The server under test

/// A server at a URL: the WebSocket endpoint and the HTTP address for /info.
#[derive(Debug, Clone)]
struct RemoteServer {
    ws_url: String,
    /// host:port
    authority: String,
    /// The URL's query (`token=KEY`), passed on to /info.
    query: String,
}

impl RemoteServer {
    fn parse(url: &str) -> Result<RemoteServer, BoxError> {
        let rest = url
            .strip_prefix("ws://")
            .ok_or_else(|| format!("--url {url:?}: only ws:// URLs are supported"))?;
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
    fn info(&self) -> Result<serde_json::Value, BoxError> {
        let mut stream = TcpStream::connect(&self.authority)
            .map_err(|e| format!("cannot reach {}: {e}", self.authority))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let path = if self.query.is_empty() {
            "/info".to_string()
        } else {
            format!("/info?{}", self.query)
        };
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.authority
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body)
            .ok_or("malformed /info response")?;
        Ok(serde_json::from_str(body)?)
    }

    /// The server process's CPU seconds, when /info tells (it needs the API key).
    fn cpu_seconds(&self) -> Option<f64> {
        self.info().ok()?["stats"]["process_cpu_seconds"].as_f64()
    }
}

/// `reswhis serve` on 127.0.0.1 port 0 as a child process; killed when dropped.
struct ServerProcess {
    child: Child,
    server: RemoteServer,
    /// The last lines of its log, for error messages.
    log: Arc<Mutex<VecDeque<String>>>,
}

impl ServerProcess {
    fn start(args: &BenchArgs, clients: usize) -> Result<ServerProcess, BoxError> {
        let exe = server_executable()?;
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
            .map_err(|e| format!("cannot start {} serve: {e}", exe.display()))?;
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
                return Err(format!("the server did not start:\n{}", log.join("\n")).into());
            }
        };
        Ok(ServerProcess {
            child,
            server: RemoteServer::parse(&format!("ws://{address}/transcribe"))?,
            log,
        })
    }

    fn log_tail(&self) -> String {
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
fn server_executable() -> std::io::Result<PathBuf> {
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

// ---------------------------------------------------------------------------------------
// One client streaming one file

/// One committed message as the client saw it.
#[derive(Debug, Clone, Serialize)]
pub struct Arrival {
    pub from_ms: u64,
    pub to_ms: u64,
    /// Seconds from stream start.
    pub arrival: f64,
    /// arrival − to/1000.
    pub latency: f64,
}

/// One file streamed on one connection.
#[derive(Debug, Clone, Serialize)]
pub struct StreamResult {
    pub client: usize,
    pub file: String,
    pub audio_seconds: f64,
    pub messages: Vec<Arrival>,
    pub transcript: String,
    pub word_errors: Option<usize>,
    pub reference_words: Option<usize>,
    /// Stream start → first committed message.
    pub first_text: Option<f64>,
    /// `eos` sent → `done` received.
    pub eos_to_done: Option<f64>,
    /// Mean latency of the last third minus the first third (see the module docs).
    pub growth: Option<f64>,
    pub errors: Vec<String>,
}

type Socket = WebSocket<MaybeTlsStream<TcpStream>>;

/// Streams `file` in real time on a new connection and records what comes back.
fn stream_file(url: &str, client: usize, file: &TestFile, frame_ms: u64) -> StreamResult {
    let mut result = StreamResult {
        client,
        file: file.name.clone(),
        audio_seconds: file.seconds,
        messages: Vec::new(),
        transcript: String::new(),
        word_errors: None,
        reference_words: None,
        first_text: None,
        eos_to_done: None,
        growth: None,
        errors: Vec::new(),
    };
    if let Err(e) = converse(url, file, frame_ms, &mut result) {
        result.errors.push(e.to_string());
    }
    let scored = score(file, &result.transcript);
    result.word_errors = scored.map(|s| s.0);
    result.reference_words = scored.map(|s| s.1);
    result.first_text = result.messages.first().map(|m| m.arrival);
    result.growth = stream_growth(&result.messages, file.seconds);
    result
}

/// The protocol: frames paced in real time, `eos`, then everything until the close.
fn converse(
    url: &str,
    file: &TestFile,
    frame_ms: u64,
    result: &mut StreamResult,
) -> Result<(), BoxError> {
    let (socket, _) = tungstenite::connect(url)?;
    let mut listener = Listener {
        socket,
        start: Instant::now(),
        done_at: None,
        closed: false,
        close_frame: None,
    };
    let frame_bytes = (SAMPLE_RATE as u64 * frame_ms / 1000) as usize * 2;
    let mut sent = 0;
    for frame in file.pcm.chunks(frame_bytes) {
        // A microphone client sends a frame once its last sample has been captured.
        sent += frame.len();
        let due = listener.start + Duration::from_secs_f64(sent as f64 / BYTES_PER_SECOND);
        listener.listen_until(due, result)?;
        if listener.closed {
            return Err("the server closed the connection before the end of the audio".into());
        }
        listener.socket.send(Message::binary(frame.to_vec()))?;
    }
    listener.socket.send(Message::text(r#"{"type":"eos"}"#))?;
    let eos_at = listener.start.elapsed().as_secs_f64();
    listener.listen_until(Instant::now() + FLUSH_LIMIT, result)?;
    result.eos_to_done = listener.done_at.map(|t| t - eos_at);
    match (listener.done_at, listener.closed) {
        (Some(_), true) => Ok(()),
        (None, true) => Err(format!(
            "the connection closed ({}) without `done`",
            listener.close_frame.as_deref().unwrap_or("no close frame")
        )
        .into()),
        (_, false) => Err(format!("no close within {} s of eos", FLUSH_LIMIT.as_secs()).into()),
    }
}

/// The receiving side of one connection.
struct Listener {
    socket: Socket,
    /// Stream start: when the first sample was "captured".
    start: Instant,
    /// Seconds from stream start to `done`.
    done_at: Option<f64>,
    closed: bool,
    /// The server's close code and reason.
    close_frame: Option<String>,
}

impl Listener {
    /// Records every message that arrives before `deadline`, or until the connection
    /// closes.
    fn listen_until(
        &mut self,
        deadline: Instant,
        result: &mut StreamResult,
    ) -> Result<(), BoxError> {
        while !self.closed {
            let wait = deadline.saturating_duration_since(Instant::now());
            if wait.is_zero() {
                return Ok(());
            }
            if let MaybeTlsStream::Plain(stream) = self.socket.get_ref() {
                stream.set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
            }
            match self.socket.read() {
                Ok(message) => self.take(message, result)?,
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    self.closed = true
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn take(&mut self, message: Message, result: &mut StreamResult) -> Result<(), BoxError> {
        let arrival = self.start.elapsed().as_secs_f64();
        match message {
            Message::Text(text) => {
                let value: serde_json::Value = serde_json::from_str(text.as_str())?;
                match value["type"].as_str() {
                    None => {
                        let to_ms = value["to"].as_u64().ok_or("message without `to`")?;
                        result.messages.push(Arrival {
                            from_ms: value["from"].as_u64().unwrap_or(0),
                            to_ms,
                            arrival,
                            latency: arrival - to_ms as f64 / 1000.0,
                        });
                        result
                            .transcript
                            .push_str(value["content"].as_str().unwrap_or(""));
                    }
                    Some("done") => self.done_at = Some(arrival),
                    Some("error") => result.errors.push(format!(
                        "server: {}",
                        value["message"].as_str().unwrap_or("?")
                    )),
                    Some(_) => {}
                }
            }
            Message::Close(Some(frame)) => {
                let code = u16::from(frame.code);
                self.close_frame = Some(format!("{code} {}", frame.reason));
                if code != 1000 {
                    result
                        .errors
                        .push(format!("closed with {code} {}", frame.reason));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Statistics

/// Count, mean, median, 90th percentile and maximum of some values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub count: usize,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub max: f64,
}

impl Summary {
    /// `None` for no values.
    pub fn of(values: &[f64]) -> Option<Summary> {
        if values.is_empty() {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(Summary {
            count: sorted.len(),
            mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
            p50: percentile(&sorted, 50.0),
            p90: percentile(&sorted, 90.0),
            max: sorted[sorted.len() - 1],
        })
    }
}

/// Nearest-rank percentile of sorted, non-empty values: the smallest value with at
/// least `p` % of the values at or below it.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// The latencies of the messages whose `to` is in the first and in the last third of
/// a stream of `seconds`.
fn thirds(messages: &[Arrival], seconds: f64) -> (Vec<f64>, Vec<f64>) {
    let third_ms = seconds * 1000.0 / 3.0;
    let pick = |keep: &dyn Fn(f64) -> bool| -> Vec<f64> {
        messages
            .iter()
            .filter(|m| keep(m.to_ms as f64))
            .map(|m| m.latency)
            .collect()
    };
    (pick(&|to| to <= third_ms), pick(&|to| to > 2.0 * third_ms))
}

/// Mean latency of the last third minus the first third of one stream; `None` for
/// streams under [`GROWTH_MIN_STREAM_SECONDS`] or without text in both thirds.
pub fn stream_growth(messages: &[Arrival], seconds: f64) -> Option<f64> {
    if seconds < GROWTH_MIN_STREAM_SECONDS {
        return None;
    }
    let (first, last) = thirds(messages, seconds);
    Some(mean(&last)? - mean(&first)?)
}

/// Growth over several streams: all their last-third latencies pooled, minus all their
/// first-third latencies pooled (only streams that qualify for [`stream_growth`]).
fn pooled_growth(streams: &[&StreamResult]) -> Option<f64> {
    let (mut first, mut last) = (Vec::new(), Vec::new());
    for stream in streams.iter().filter(|s| s.growth.is_some()) {
        let (f, l) = thirds(&stream.messages, stream.audio_seconds);
        first.extend(f);
        last.extend(l);
    }
    Some(mean(&last)? - mean(&first)?)
}

/// The numbers for a group of streams (one client, or a whole round).
#[derive(Debug, Clone, Serialize)]
pub struct GroupStats {
    pub streams: usize,
    pub audio_seconds: f64,
    pub latency: Option<Summary>,
    pub first_text: Option<Summary>,
    /// Pooled growth, see [`pooled_growth`].
    pub growth: Option<f64>,
    /// The largest single-stream growth, for information.
    pub worst_stream_growth: Option<f64>,
    pub wer: Option<f64>,
    pub errors: usize,
}

impl GroupStats {
    fn of(streams: &[&StreamResult]) -> GroupStats {
        let latencies: Vec<f64> = streams
            .iter()
            .flat_map(|s| s.messages.iter().map(|m| m.latency))
            .collect();
        let first_texts: Vec<f64> = streams.iter().filter_map(|s| s.first_text).collect();
        GroupStats {
            streams: streams.len(),
            audio_seconds: streams.iter().map(|s| s.audio_seconds).sum(),
            latency: Summary::of(&latencies),
            first_text: Summary::of(&first_texts),
            growth: pooled_growth(streams),
            worst_stream_growth: streams
                .iter()
                .filter_map(|s| s.growth)
                .max_by(f64::total_cmp),
            wer: aggregate_wer(streams.iter().map(|s| (s.word_errors, s.reference_words))),
            errors: streams.iter().map(|s| s.errors.len()).sum(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Rounds

#[derive(Debug, Clone, Serialize)]
pub struct RoundResult {
    pub clients: usize,
    pub wall_seconds: f64,
    /// Server CPU seconds (user + system) over the round, from /info.
    pub server_cpu_seconds: Option<f64>,
    pub cpu_per_audio_second: Option<f64>,
    pub overall: GroupStats,
    pub per_client: Vec<GroupStats>,
    /// p90 within the limit, no growth over the limit, no errors.
    pub pass: bool,
    /// Why it failed, or "ok".
    pub verdict: String,
    /// /info at the start of the round.
    #[serde(skip)]
    pub server_info: Option<serde_json::Value>,
    pub streams: Vec<StreamResult>,
}

/// N clients against a fresh server (or the --url one).
fn run_round(
    args: &BenchArgs,
    files: &Arc<Vec<TestFile>>,
    clients: usize,
) -> Result<RoundResult, BoxError> {
    let process = match args.url {
        Some(_) => None,
        None => Some(ServerProcess::start(args, clients)?),
    };
    let server = match (&process, &args.url) {
        (Some(process), _) => process.server.clone(),
        (None, Some(url)) => RemoteServer::parse(url)?,
        (None, None) => unreachable!("either a child server or --url"),
    };
    let audio: f64 = files.iter().map(|f| f.seconds).sum();
    eprintln!(
        "bench: {clients} client(s) × {} file(s) on {} (about {:.0} s)…",
        files.len(),
        server.authority,
        audio + files.len() as f64 * 0.5
    );
    let server_info = server.info().ok();
    let cpu_before = server_info
        .as_ref()
        .and_then(|i| i["stats"]["process_cpu_seconds"].as_f64());
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|client| {
            let files = Arc::clone(files);
            let url = server.ws_url.clone();
            let (frame_ms, verbose) = (args.frame_ms, args.verbose);
            // Spread the clients' start over a second so their updates are not in step.
            let delay = Duration::from_secs_f64(client as f64 / clients as f64);
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                // Client c starts at file c, so clients send different audio at once.
                (0..files.len())
                    .map(|i| {
                        let file = &files[(client + i) % files.len()];
                        let stream = stream_file(&url, client + 1, file, frame_ms);
                        if verbose || !stream.errors.is_empty() {
                            eprintln!("bench:   {}", stream_line(&stream));
                        }
                        stream
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let streams: Vec<StreamResult> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("client thread panicked"))
        .collect();
    let wall_seconds = started.elapsed().as_secs_f64();
    let server_cpu_seconds = delta(cpu_before, server.cpu_seconds());
    if let Some(process) = &process {
        if streams.iter().any(|s| !s.errors.is_empty()) {
            eprintln!("bench: server log tail:\n{}", process.log_tail());
        }
    }

    let all: Vec<&StreamResult> = streams.iter().collect();
    let overall = GroupStats::of(&all);
    let per_client = (1..=clients)
        .map(|c| {
            let mine: Vec<&StreamResult> = streams.iter().filter(|s| s.client == c).collect();
            GroupStats::of(&mine)
        })
        .collect();
    let verdict = verdict(&overall, args.latency_limit, args.growth_limit);
    Ok(RoundResult {
        clients,
        wall_seconds,
        server_cpu_seconds,
        cpu_per_audio_second: server_cpu_seconds.map(|c| c / overall.audio_seconds),
        overall,
        per_client,
        pass: verdict == "ok",
        verdict,
        server_info,
        streams,
    })
}

/// "ok", or the reasons a round does not keep up.
fn verdict(stats: &GroupStats, latency_limit: f64, growth_limit: f64) -> String {
    let mut reasons = Vec::new();
    if stats.errors > 0 {
        reasons.push(format!("{} error(s)", stats.errors));
    }
    match stats.latency {
        None => reasons.push("no text".to_string()),
        Some(l) if l.p90 > latency_limit => {
            reasons.push(format!("p90 {:.2} s > {latency_limit} s", l.p90))
        }
        Some(_) => {}
    }
    if let Some(g) = stats.growth.filter(|&g| g > growth_limit) {
        reasons.push(format!("growth {g:.2} s > {growth_limit} s"));
    }
    if reasons.is_empty() {
        "ok".into()
    } else {
        reasons.join(", ")
    }
}

/// The largest client count whose round passed, if every smaller round run passed too.
fn capacity(rounds: &[RoundResult]) -> Option<usize> {
    let mut sorted: Vec<&RoundResult> = rounds.iter().collect();
    sorted.sort_by_key(|r| r.clients);
    sorted
        .iter()
        .take_while(|r| r.pass)
        .map(|r| r.clients)
        .last()
}

// ---------------------------------------------------------------------------------------
// The report

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub meta: Meta,
    /// Full ctx (the baseline of the checks) first, then fitted ctx; empty with --no-floor.
    pub floors: Vec<FloorResult>,
    pub rounds: Vec<RoundResult>,
    /// The largest client count that kept up (see [`capacity`]).
    pub capacity: Option<usize>,
    pub targets: Vec<TargetCheck>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Meta {
    pub date: String,
    pub command: String,
    pub git_commit: Option<String>,
    pub nproc: u32,
    pub cpu_model: Option<String>,
    /// "child process" or the --url.
    pub server: String,
    /// The server's /info (of the --url server, or of the first round's child).
    pub server_info: Option<serde_json::Value>,
    pub model: String,
    pub min_chunk_size: f64,
    pub beam_size: u32,
    pub full_audio_ctx: bool,
    pub floor_threads: u32,
    pub files: Vec<String>,
    pub audio_seconds: f64,
    pub frame_ms: u64,
    pub latency_limit: f64,
    pub growth_limit: f64,
}

impl Meta {
    fn collect(
        args: &BenchArgs,
        files: &[TestFile],
        server_info: Option<serde_json::Value>,
        floor_threads: u32,
    ) -> Meta {
        let command: Vec<String> = std::env::args().map(|a| shell_quote(&a)).collect();
        let git = |args: &[&str]| {
            Command::new("git")
                .args(args)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        };
        let git_commit = git(&["rev-parse", "--short", "HEAD"]).map(|commit| {
            match git(&["status", "--porcelain", "--untracked-files=no"]) {
                Some(changes) if !changes.is_empty() => format!("{commit} (uncommitted changes)"),
                _ => commit,
            }
        });
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            });
        Meta {
            date: utc_now(),
            command: command.join(" "),
            git_commit,
            nproc: ServeArgs::cores(),
            cpu_model,
            server: args.url.clone().unwrap_or_else(|| "child process".into()),
            server_info,
            model: args.model.model_name(),
            min_chunk_size: args.policy.min_chunk_size,
            beam_size: args.model.beam_size,
            full_audio_ctx: args.model.full_audio_ctx,
            floor_threads,
            files: files.iter().map(|f| f.name.clone()).collect(),
            audio_seconds: files.iter().map(|f| f.seconds).sum(),
            frame_ms: args.frame_ms,
            latency_limit: args.latency_limit,
            growth_limit: args.growth_limit,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetCheck {
    pub status: &'static str,
    pub target: String,
    pub measured: String,
}

fn check(ok: Option<bool>, target: String, measured: String) -> TargetCheck {
    let status = match ok {
        Some(true) => "PASS",
        Some(false) => "FAIL",
        None => "N/A",
    };
    TargetCheck {
        status,
        target,
        measured,
    }
}

/// The targets of issue #5. Streaming numbers come from the round with the fewest
/// clients (1 unless --clients says otherwise); the floor is the full-ctx one.
fn check_targets(report: &Report, args: &BenchArgs) -> Vec<TargetCheck> {
    let smallest = report.rounds.iter().min_by_key(|r| r.clients);
    let single = report.rounds.iter().find(|r| r.clients == 1);
    let floor = report.floors.first();
    let fitted = report.floors.get(1);
    let mut checks = Vec::new();

    let mean = single.and_then(|r| r.overall.latency).map(|l| l.mean);
    checks.push(check(
        mean.map(|m| m <= 1.5),
        "mean latency with 1 client ≤ 1.5 s".into(),
        match mean {
            Some(m) => format!("{m:.2} s"),
            None => "no 1-client round".into(),
        },
    ));

    let wers = (
        smallest.and_then(|r| r.overall.wer),
        floor.and_then(|f| f.wer),
    );
    checks.push(check(
        match wers {
            (Some(s), Some(f)) => Some(s <= f + 0.02),
            _ => None,
        },
        "WER ≤ floor WER + 2 points".into(),
        format!(
            "{} streaming ({} client(s)) vs {} floor (full ctx)",
            percent(wers.0),
            smallest.map_or(0, |r| r.clients),
            percent(wers.1)
        ),
    ));

    let tried = report.rounds.iter().map(|r| r.clients).max().unwrap_or(0);
    let kept_up = report.capacity.unwrap_or(0);
    checks.push(check(
        (kept_up >= 4 || tried >= 4).then_some(kept_up >= 4),
        format!(
            "≥ 4 clients with p90 ≤ {} s (and growth ≤ {} s, no errors)",
            args.latency_limit, args.growth_limit
        ),
        if tried < 4 && kept_up < 4 {
            format!("not measured: largest round {tried} (use --max-search)")
        } else {
            format!("largest passing client count {kept_up}")
        },
    ));

    let cpu = smallest.and_then(|r| r.cpu_per_audio_second);
    let floor_cpu = floor.and_then(|f| f.cpu_per_audio_second);
    let fitted_cpu = fitted.and_then(|f| f.cpu_per_audio_second);
    let ratio = |f: Option<f64>| Some(cpu? / f?);
    checks.push(check(
        ratio(floor_cpu).map(|r| r <= 3.0),
        "streaming server CPU per audio second ≤ 3 × floor".into(),
        format!(
            "{} vs {} floor (full ctx): {}× ({}× the fitted-ctx floor)",
            number(cpu, 3),
            number(floor_cpu, 3),
            number(ratio(floor_cpu), 2),
            number(ratio(fitted_cpu), 2)
        ),
    ));
    checks
}

fn number(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "–".into(), |v| format!("{v:.decimals$}"))
}

fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "–".into(), |v| format!("{:.1} %", v * 100.0))
}

/// One line per stream, for --verbose and errors.
fn stream_line(s: &StreamResult) -> String {
    let latency = Summary::of(&s.messages.iter().map(|m| m.latency).collect::<Vec<_>>());
    let mut line = format!(
        "client {} {} ({:.1} s): {} msgs, latency mean {} p90 {} max {} s, first text {} s, \
         growth {} s, eos→done {} s, WER {}",
        s.client,
        s.file,
        s.audio_seconds,
        s.messages.len(),
        number(latency.map(|l| l.mean), 2),
        number(latency.map(|l| l.p90), 2),
        number(latency.map(|l| l.max), 2),
        number(s.first_text, 2),
        number(s.growth, 2),
        number(s.eos_to_done, 2),
        percent(
            s.word_errors
                .zip(s.reference_words)
                .map(|(e, w)| e as f64 / w.max(1) as f64)
        ),
    );
    if !s.errors.is_empty() {
        let _ = write!(line, "; ERRORS: {}", s.errors.join("; "));
    }
    line
}

fn round_line(r: &RoundResult) -> String {
    let l = r.overall.latency;
    format!(
        "{} client(s): latency mean {} p90 {} max {} s, growth {} s, WER {}, server CPU {} s/audio s → {}",
        r.clients,
        number(l.map(|l| l.mean), 2),
        number(l.map(|l| l.p90), 2),
        number(l.map(|l| l.max), 2),
        number(r.overall.growth, 2),
        percent(r.overall.wer),
        number(r.cpu_per_audio_second, 3),
        r.verdict
    )
}

/// A markdown table with padded columns (readable as plain text too). The first column
/// and, with `text_last`, the last are left-aligned; the others hold numbers.
fn table(header: &[&str], rows: &[Vec<String>], text_last: bool) -> String {
    let left = |c: usize| c == 0 || (text_last && c == header.len() - 1);
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .chain([header[c].chars().count(), 3])
                .max()
                .unwrap_or(3)
        })
        .collect();
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                if left(c) {
                    format!("{cell:<w$}", w = widths[c])
                } else {
                    format!("{cell:>w$}", w = widths[c])
                }
            })
            .collect();
        format!("| {} |\n", padded.join(" | "))
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    let rule: Vec<String> = widths
        .iter()
        .enumerate()
        .map(|(c, &w)| {
            if left(c) {
                format!(":{}", "-".repeat(w - 1))
            } else {
                format!("{}:", "-".repeat(w - 1))
            }
        })
        .collect();
    out.push_str(&format!("| {} |\n", rule.join(" | ")));
    for row in rows {
        out.push_str(&line(row.clone()));
    }
    out
}

fn latency_cells(summary: Option<Summary>) -> Vec<String> {
    let field = |f: fn(&Summary) -> f64| number(summary.as_ref().map(f), 2);
    vec![
        summary.map_or(0, |s| s.count).to_string(),
        field(|s| s.mean),
        field(|s| s.p50),
        field(|s| s.p90),
        field(|s| s.max),
    ]
}

fn render_markdown(report: &Report, args: &BenchArgs) -> String {
    let meta = &report.meta;
    let info = meta.server_info.as_ref();
    let info_field = |key: &str| {
        info.and_then(|i| i.get(key))
            .map_or_else(|| "?".to_string(), |v| v.to_string())
    };
    let mut out = String::new();
    let _ = writeln!(out, "## reswhis bench, {}\n", meta.date);
    let _ = writeln!(out, "- Command: `{}`", meta.command);
    let _ = writeln!(
        out,
        "- Commit: {}",
        meta.git_commit.as_deref().unwrap_or("unknown")
    );
    let _ = writeln!(
        out,
        "- Machine: {} CPU(s) (nproc), {}",
        meta.nproc,
        meta.cpu_model.as_deref().unwrap_or("unknown CPU")
    );
    let _ = writeln!(
        out,
        "- Server: {} — model {}, {} worker(s) × {} thread(s), min chunk {} s, buffer trimmed \
         past {} s keeping {} s of context, beam {}, {} audio ctx",
        if args.url.is_some() {
            format!("{} (as running)", meta.server)
        } else {
            "`reswhis serve` as a child process, fresh for every round".to_string()
        },
        info.and_then(|i| i["model_size"].as_str())
            .unwrap_or(&meta.model),
        info_field("workers"),
        info_field("threads_per_worker"),
        info_field("minimum_chunk_size"),
        info_field("buffer_trimming_sec"),
        info_field("trim_context_sec"),
        info_field("beam_size"),
        if meta.full_audio_ctx {
            "full"
        } else {
            "fitted"
        },
    );
    let _ = writeln!(
        out,
        "- Audio: {} file(s), {:.1} s; each client streams every file (client c starts at \
         file c), in real time, {} ms frames, a new connection per file",
        meta.files.len(),
        meta.audio_seconds,
        meta.frame_ms
    );
    let _ = writeln!(
        out,
        "- Definitions: *latency* = arrival of a committed message − (stream start + its \
         `to`), where stream start is the capture of the first sample (a frame is sent when \
         its last sample is due); *first text* = stream start → first committed message; \
         *growth* = mean latency of messages ending in the last third of their file − in the \
         first third, over files ≥ {GROWTH_MIN_STREAM_SECONDS} s, pooled; percentiles are \
         nearest-rank; WER = word errors / reference words over all streams (reswhis::wer \
         normalisation); server CPU = user + system seconds of the server process over the \
         round (/info), per second of audio streamed.\n"
    );

    if !report.floors.is_empty() {
        let _ = writeln!(
            out,
            "### Offline floor (whisper.cpp, each file once, whole, {} thread(s), in the bench process)\n",
            meta.floor_threads
        );
        let rows: Vec<Vec<String>> = report
            .floors
            .iter()
            .map(|f| {
                vec![
                    f.mode.clone(),
                    format!("{:.3}", f.rtf),
                    number(f.cpu_per_audio_second, 3),
                    percent(f.wer),
                ]
            })
            .collect();
        out.push_str(&table(
            &["mode", "RTF", "CPU s / audio s", "WER"],
            &rows,
            false,
        ));
        out.push('\n');
    }

    let _ = writeln!(out, "### Streaming (latencies in seconds)\n");
    let rows: Vec<Vec<String>> = report
        .rounds
        .iter()
        .map(|r| {
            let mut row = vec![r.clients.to_string(), r.overall.streams.to_string()];
            row.extend(latency_cells(r.overall.latency));
            row.extend([
                number(r.overall.first_text.map(|f| f.mean), 2),
                number(r.overall.growth, 2),
                percent(r.overall.wer),
                number(r.cpu_per_audio_second, 3),
                r.verdict.clone(),
            ]);
            row
        })
        .collect();
    out.push_str(&table(
        &[
            "clients",
            "streams",
            "msgs",
            "mean",
            "p50",
            "p90",
            "max",
            "first text",
            "growth",
            "WER",
            "server CPU s / audio s",
            "keeps up",
        ],
        &rows,
        true,
    ));
    let _ = writeln!(out, "\nPer client:\n");
    let rows: Vec<Vec<String>> = report
        .rounds
        .iter()
        .flat_map(|r| {
            r.per_client.iter().enumerate().map(move |(c, g)| {
                let mut row = vec![r.clients.to_string(), (c + 1).to_string()];
                row.extend(latency_cells(g.latency));
                row.extend([
                    number(g.first_text.map(|f| f.mean), 2),
                    number(g.growth, 2),
                    percent(g.wer),
                    g.errors.to_string(),
                ]);
                row
            })
        })
        .collect();
    out.push_str(&table(
        &[
            "clients",
            "client",
            "msgs",
            "mean",
            "p50",
            "p90",
            "max",
            "first text",
            "growth",
            "WER",
            "errors",
        ],
        &rows,
        false,
    ));

    let _ = writeln!(out, "\n### Targets\n");
    let tried: Vec<String> = report
        .rounds
        .iter()
        .map(|r| r.clients.to_string())
        .collect();
    let _ = writeln!(
        out,
        "Capacity (largest client count with p90 ≤ {} s, growth ≤ {} s, no errors): {} (rounds run: {})\n",
        meta.latency_limit,
        meta.growth_limit,
        report
            .capacity
            .map_or_else(|| "none".to_string(), |c| c.to_string()),
        tried.join(", ")
    );
    for t in &report.targets {
        let _ = writeln!(out, "    {:<4}  {}: {}", t.status, t.target, t.measured);
    }
    out
}

fn append_markdown(path: &Path, markdown: &str) -> std::io::Result<()> {
    let exists = path.metadata().is_ok_and(|m| m.len() > 0);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    if exists {
        file.write_all(b"\n")?;
    }
    file.write_all(markdown.as_bytes())
}

fn shell_quote(arg: &str) -> String {
    let plain = arg
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
    if plain && !arg.is_empty() {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// "YYYY-MM-DD HH:MM UTC" without a date library.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60
    )
}

/// Days since 1970-01-01 to (year, month, day); H. Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrival(to_ms: u64, latency: f64) -> Arrival {
        Arrival {
            from_ms: to_ms.saturating_sub(500),
            to_ms,
            arrival: to_ms as f64 / 1000.0 + latency,
            latency,
        }
    }

    #[test]
    fn nearest_rank_percentiles() {
        let sorted: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&sorted, 50.0), 5.0);
        assert_eq!(percentile(&sorted, 90.0), 9.0);
        assert_eq!(percentile(&sorted, 91.0), 10.0);
        assert_eq!(percentile(&sorted, 100.0), 10.0);
        assert_eq!(percentile(&sorted, 0.0), 1.0);
        assert_eq!(percentile(&[7.0], 90.0), 7.0);
        let s = Summary::of(&[3.0, 1.0, 2.0, 4.0]).unwrap();
        assert_eq!(
            (s.count, s.mean, s.p50, s.p90, s.max),
            (4, 2.5, 2.0, 4.0, 4.0)
        );
        assert!(Summary::of(&[]).is_none());
    }

    #[test]
    fn growth_compares_the_last_third_with_the_first() {
        // 30 s stream: thirds end at 10 s and 20 s.
        let steady = [
            arrival(2_000, 1.0),
            arrival(15_000, 3.0),
            arrival(29_000, 1.2),
        ];
        let g = stream_growth(&steady, 30.0).unwrap();
        assert!((g - 0.2).abs() < 1e-9, "{g}");
        let behind = [
            arrival(5_000, 1.0),
            arrival(10_000, 1.0),
            arrival(25_000, 4.0),
        ];
        assert_eq!(stream_growth(&behind, 30.0), Some(3.0));
        // Too short, or nothing in one of the thirds: no figure.
        assert_eq!(stream_growth(&steady, 9.0), None);
        assert_eq!(stream_growth(&[arrival(29_000, 1.0)], 30.0), None);
    }

    #[test]
    fn rounds_pass_only_within_the_limits() {
        let stats = |p90: f64, growth: Option<f64>, errors: usize| GroupStats {
            streams: 1,
            audio_seconds: 10.0,
            latency: Some(Summary {
                count: 3,
                mean: 1.0,
                p50: 1.0,
                p90,
                max: p90,
            }),
            first_text: None,
            growth,
            worst_stream_growth: growth,
            wer: None,
            errors,
        };
        assert_eq!(verdict(&stats(2.9, Some(0.5), 0), 3.0, 1.0), "ok");
        assert_eq!(verdict(&stats(2.9, None, 0), 3.0, 1.0), "ok");
        assert!(verdict(&stats(3.1, None, 0), 3.0, 1.0).contains("p90"));
        assert!(verdict(&stats(1.0, Some(1.5), 0), 3.0, 1.0).contains("growth"));
        assert!(verdict(&stats(1.0, None, 2), 3.0, 1.0).contains("2 error(s)"));
    }

    #[test]
    fn wer_is_pooled_over_words() {
        let wer =
            aggregate_wer([(Some(1), Some(10)), (Some(3), Some(30)), (None, None)].into_iter());
        assert_eq!(wer, Some(0.1));
        assert_eq!(aggregate_wer(std::iter::empty()), None);
    }

    /// A stand-in server that commits every frame's audio at once: what the client
    /// measures is then only its own pacing and the loopback, so latency ≈ 0.
    fn instant_server() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut socket = tungstenite::accept(stream).unwrap();
            let mut received_ms = 0;
            loop {
                match socket.read() {
                    Ok(Message::Binary(audio)) => {
                        let from = received_ms;
                        received_ms += audio.len() as u64 * 1000 / BYTES_PER_SECOND as u64;
                        let text =
                            format!(r#"{{"from":{from},"to":{received_ms},"content":" w"}}"#);
                        socket.send(Message::text(text)).unwrap();
                    }
                    Ok(Message::Text(_)) => {
                        socket.send(Message::text(r#"{"type":"done"}"#)).unwrap();
                        socket.close(None).unwrap();
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        });
        format!("ws://{address}/transcribe")
    }

    #[test]
    fn the_client_paces_in_real_time_and_measures_latency() {
        let samples = vec![0.0f32; SAMPLE_RATE as usize]; // 1 s
        let file = TestFile {
            name: "silence".into(),
            seconds: 1.0,
            pcm: to_pcm_bytes(&samples),
            samples,
            reference: Some("w w w w w w w w w w".into()),
        };
        let started = Instant::now();
        let result = stream_file(&instant_server(), 1, &file, 100);
        assert!(started.elapsed() >= Duration::from_secs(1), "not real time");
        assert!(result.errors.is_empty(), "{:?}", result.errors);
        assert_eq!(result.messages.len(), 10);
        assert_eq!(result.word_errors, Some(0));
        for m in &result.messages {
            // Frame k is sent when its last sample is due, so `to` = send time.
            assert!(m.latency > -0.002 && m.latency < 0.3, "{m:?}");
        }
        let first = result.first_text.unwrap();
        assert!((0.09..0.5).contains(&first), "first text {first}");
        assert!(result.eos_to_done.unwrap() < 0.3);
    }

    /// One stream as `stream_file` records it: `messages` are (to ms, latency s).
    fn synthetic_stream(
        client: usize,
        file: &str,
        audio_seconds: f64,
        messages: &[(u64, f64)],
        scored: Option<(usize, usize)>,
        errors: &[&str],
    ) -> StreamResult {
        let messages: Vec<Arrival> = messages.iter().map(|&(to, l)| arrival(to, l)).collect();
        StreamResult {
            client,
            file: file.into(),
            audio_seconds,
            transcript: " w".repeat(messages.len()),
            word_errors: scored.map(|s| s.0),
            reference_words: scored.map(|s| s.1),
            first_text: messages.first().map(|m| m.arrival),
            eos_to_done: Some(0.25),
            growth: stream_growth(&messages, audio_seconds),
            errors: errors.iter().map(|e| e.to_string()).collect(),
            messages,
        }
    }

    /// A round as `run_round` builds it from its streams.
    fn synthetic_round(
        clients: usize,
        server_cpu_seconds: Option<f64>,
        streams: Vec<StreamResult>,
    ) -> RoundResult {
        let all: Vec<&StreamResult> = streams.iter().collect();
        let overall = GroupStats::of(&all);
        let per_client = (1..=clients)
            .map(|c| GroupStats::of(&streams.iter().filter(|s| s.client == c).collect::<Vec<_>>()))
            .collect();
        let verdict = verdict(&overall, 3.0, 1.0);
        RoundResult {
            clients,
            wall_seconds: 43.5 + clients as f64,
            server_cpu_seconds,
            cpu_per_audio_second: server_cpu_seconds.map(|c| c / overall.audio_seconds),
            overall,
            per_client,
            pass: verdict == "ok",
            verdict,
            server_info: None,
            streams,
        }
    }

    fn bench_args(extra: &[&str]) -> BenchArgs {
        use clap::Parser;
        let argv = ["reswhis", "bench"].iter().chain(extra);
        match crate::config::Cli::try_parse_from(argv).unwrap().command {
            Some(crate::config::Command::Bench(args)) => args,
            _ => unreachable!("bench args"),
        }
    }

    /// A fixed report: two floors, a passing 1-client round and a failing 2-client one
    /// (an error, and latency that grows), and the targets checked on them.
    fn synthetic_report(args: &BenchArgs, second_round_clients: usize) -> Report {
        let floor = |mode: &str, wall: f64, cpu: Option<f64>, errors: (usize, usize)| FloorResult {
            mode: mode.into(),
            threads: 4,
            audio_seconds: 42.5,
            wall_seconds: wall,
            cpu_seconds: cpu,
            rtf: wall / 42.5,
            cpu_per_audio_second: cpu.map(|c| c / 42.5),
            wer: aggregate_wer(
                [(Some(errors.0), Some(80)), (Some(errors.1), Some(30))].into_iter(),
            ),
            files: vec![
                FloorFile {
                    file: "a".into(),
                    audio_seconds: 30.0,
                    wall_seconds: wall * 0.7,
                    word_errors: Some(errors.0),
                    reference_words: Some(80),
                    transcript: "the a file".into(),
                },
                FloorFile {
                    file: "b".into(),
                    audio_seconds: 12.5,
                    wall_seconds: wall * 0.3,
                    word_errors: Some(errors.1),
                    reference_words: Some(30),
                    transcript: "the b file".into(),
                },
            ],
        };
        let floors = vec![
            floor("full ctx", 2.125, Some(8.5), (6, 2)),
            floor("fitted ctx", 1.0625, Some(4.25), (7, 2)),
        ];
        let a_steady = [
            (1_500, 1.25),
            (9_000, 1.0),
            (16_000, 1.5),
            (25_000, 1.125),
            (29_500, 1.375),
        ];
        let b_steady = [(2_000, 1.0), (7_000, 1.25), (12_000, 1.5)];
        let a_behind = [(2_000, 1.5), (12_000, 3.25), (26_000, 5.5)];
        let rounds = vec![
            synthetic_round(
                1,
                Some(12.75),
                vec![
                    synthetic_stream(1, "a", 30.0, &a_steady, Some((8, 80)), &[]),
                    synthetic_stream(1, "b", 12.5, &b_steady, Some((3, 30)), &[]),
                ],
            ),
            synthetic_round(
                second_round_clients,
                None,
                vec![
                    synthetic_stream(1, "a", 30.0, &a_behind, Some((12, 80)), &[]),
                    synthetic_stream(1, "b", 12.5, &b_steady, Some((3, 30)), &[]),
                    synthetic_stream(
                        2,
                        "b",
                        12.5,
                        &[],
                        Some((30, 30)),
                        &["closed with 1011 worker failed"],
                    ),
                    synthetic_stream(2, "a", 30.0, &a_steady, None, &[]),
                ],
            ),
        ];
        let meta = Meta {
            date: "2026-03-01 12:34 UTC".into(),
            command: "reswhis bench --clients 1,2 --files 'a b.wav'".into(),
            git_commit: Some("abc1234 (uncommitted changes)".into()),
            nproc: 16,
            cpu_model: Some("Test CPU @ 3.00GHz".into()),
            server: args.url.clone().unwrap_or_else(|| "child process".into()),
            server_info: Some(serde_json::json!({
                "model_size": "tiny.en",
                "workers": 2,
                "threads_per_worker": 4,
                "minimum_chunk_size": 1.0,
                "buffer_trimming_sec": 6.0,
                "trim_context_sec": 3.0,
                "beam_size": 1,
                "stats": {"process_cpu_seconds": 1.5},
            })),
            model: "tiny.en".into(),
            min_chunk_size: 1.0,
            beam_size: 1,
            full_audio_ctx: false,
            floor_threads: 4,
            files: vec!["a".into(), "b".into()],
            audio_seconds: 42.5,
            frame_ms: 100,
            latency_limit: args.latency_limit,
            growth_limit: args.growth_limit,
        };
        let report = Report {
            meta,
            floors,
            capacity: capacity(&rounds),
            targets: Vec::new(),
            rounds,
        };
        Report {
            targets: check_targets(&report, args),
            ..report
        }
    }

    /// The report of [`synthetic_report`] as `render_markdown` wrote it before the
    /// report was split into tables: any change to this text is a change to the output.
    const MARKDOWN_SNAPSHOT: &str = r#"## reswhis bench, 2026-03-01 12:34 UTC

- Command: `reswhis bench --clients 1,2 --files 'a b.wav'`
- Commit: abc1234 (uncommitted changes)
- Machine: 16 CPU(s) (nproc), Test CPU @ 3.00GHz
- Server: `reswhis serve` as a child process, fresh for every round — model tiny.en, 2 worker(s) × 4 thread(s), min chunk 1.0 s, buffer trimmed past 6.0 s keeping 3.0 s of context, beam 1, fitted audio ctx
- Audio: 2 file(s), 42.5 s; each client streams every file (client c starts at file c), in real time, 100 ms frames, a new connection per file
- Definitions: *latency* = arrival of a committed message − (stream start + its `to`), where stream start is the capture of the first sample (a frame is sent when its last sample is due); *first text* = stream start → first committed message; *growth* = mean latency of messages ending in the last third of their file − in the first third, over files ≥ 10 s, pooled; percentiles are nearest-rank; WER = word errors / reference words over all streams (reswhis::wer normalisation); server CPU = user + system seconds of the server process over the round (/info), per second of audio streamed.

### Offline floor (whisper.cpp, each file once, whole, 4 thread(s), in the bench process)

| mode       |   RTF | CPU s / audio s |   WER |
| :--------- | ----: | --------------: | ----: |
| full ctx   | 0.050 |           0.200 | 7.3 % |
| fitted ctx | 0.025 |           0.100 | 8.2 % |

### Streaming (latencies in seconds)

| clients | streams | msgs | mean |  p50 |  p90 |  max | first text | growth |    WER | server CPU s / audio s | keeps up                                          |
| :------ | ------: | ---: | ---: | ---: | ---: | ---: | ---------: | -----: | -----: | ---------------------: | :------------------------------------------------ |
| 1       |       2 |    8 | 1.25 | 1.25 | 1.50 | 1.50 |       2.88 |   0.25 | 10.0 % |                  0.300 | ok                                                |
| 2       |       4 |   11 | 1.84 | 1.38 | 3.25 | 5.50 |       3.08 |   1.19 | 32.1 % |                      – | 1 error(s), p90 3.25 s > 3 s, growth 1.19 s > 1 s |

Per client:

| clients | client | msgs | mean |  p50 |  p90 |  max | first text | growth |     WER | errors |
| :------ | -----: | ---: | ---: | ---: | ---: | ---: | ---------: | -----: | ------: | -----: |
| 1       |      1 |    8 | 1.25 | 1.25 | 1.50 | 1.50 |       2.88 |   0.25 |  10.0 % |      0 |
| 2       |      1 |    6 | 2.33 | 1.50 | 5.50 | 5.50 |       3.25 |   2.25 |  13.6 % |      0 |
| 2       |      2 |    5 | 1.25 | 1.25 | 1.50 | 1.50 |       2.75 |   0.12 | 100.0 % |      1 |

### Targets

Capacity (largest client count with p90 ≤ 3 s, growth ≤ 1 s, no errors): 1 (rounds run: 1, 2)

    PASS  mean latency with 1 client ≤ 1.5 s: 1.25 s
    FAIL  WER ≤ floor WER + 2 points: 10.0 % streaming (1 client(s)) vs 7.3 % floor (full ctx)
    N/A   ≥ 4 clients with p90 ≤ 3 s (and growth ≤ 1 s, no errors): not measured: largest round 2 (use --max-search)
    PASS  streaming server CPU per audio second ≤ 3 × floor: 0.300 vs 0.200 floor (full ctx): 1.50× (3.00× the fitted-ctx floor)
"#;

    /// Like [`MARKDOWN_SNAPSHOT`], for a --url server, no floor and a 4-client round.
    const REMOTE_MARKDOWN_SNAPSHOT: &str = r#"## reswhis bench, 2026-03-01 12:34 UTC

- Command: `reswhis bench --clients 1,2 --files 'a b.wav'`
- Commit: unknown
- Machine: 16 CPU(s) (nproc), unknown CPU
- Server: ws://10.0.0.7:8000/transcribe?token=k (as running) — model tiny.en, ? worker(s) × ? thread(s), min chunk ? s, buffer trimmed past ? s keeping ? s of context, beam ?, full audio ctx
- Audio: 2 file(s), 42.5 s; each client streams every file (client c starts at file c), in real time, 100 ms frames, a new connection per file
- Definitions: *latency* = arrival of a committed message − (stream start + its `to`), where stream start is the capture of the first sample (a frame is sent when its last sample is due); *first text* = stream start → first committed message; *growth* = mean latency of messages ending in the last third of their file − in the first third, over files ≥ 10 s, pooled; percentiles are nearest-rank; WER = word errors / reference words over all streams (reswhis::wer normalisation); server CPU = user + system seconds of the server process over the round (/info), per second of audio streamed.

### Streaming (latencies in seconds)

| clients | streams | msgs | mean |  p50 |  p90 |  max | first text | growth |    WER | server CPU s / audio s | keeps up                                          |
| :------ | ------: | ---: | ---: | ---: | ---: | ---: | ---------: | -----: | -----: | ---------------------: | :------------------------------------------------ |
| 1       |       2 |    8 | 1.25 | 1.25 | 1.50 | 1.50 |       2.88 |   0.25 | 10.0 % |                  0.300 | ok                                                |
| 4       |       4 |   11 | 1.84 | 1.38 | 3.25 | 5.50 |       3.08 |   1.19 | 32.1 % |                      – | 1 error(s), p90 3.25 s > 3 s, growth 1.19 s > 1 s |

Per client:

| clients | client | msgs | mean |  p50 |  p90 |  max | first text | growth |     WER | errors |
| :------ | -----: | ---: | ---: | ---: | ---: | ---: | ---------: | -----: | ------: | -----: |
| 1       |      1 |    8 | 1.25 | 1.25 | 1.50 | 1.50 |       2.88 |   0.25 |  10.0 % |      0 |
| 4       |      1 |    6 | 2.33 | 1.50 | 5.50 | 5.50 |       3.25 |   2.25 |  13.6 % |      0 |
| 4       |      2 |    5 | 1.25 | 1.25 | 1.50 | 1.50 |       2.75 |   0.12 | 100.0 % |      1 |
| 4       |      3 |    0 |    – |    – |    – |    – |          – |      – |       – |      0 |
| 4       |      4 |    0 |    – |    – |    – |    – |          – |      – |       – |      0 |

### Targets

Capacity (largest client count with p90 ≤ 2.5 s, growth ≤ 0.5 s, no errors): 1 (rounds run: 1, 4)

    PASS  mean latency with 1 client ≤ 1.5 s: 1.25 s
    N/A   WER ≤ floor WER + 2 points: 10.0 % streaming (1 client(s)) vs – floor (full ctx)
    FAIL  ≥ 4 clients with p90 ≤ 2.5 s (and growth ≤ 0.5 s, no errors): largest passing client count 1
    N/A   streaming server CPU per audio second ≤ 3 × floor: 0.300 vs – floor (full ctx): –× (–× the fitted-ctx floor)
"#;

    fn remote_report(args: &BenchArgs) -> Report {
        let mut report = synthetic_report(args, 4);
        report.floors.clear();
        report.meta.full_audio_ctx = true;
        report.meta.git_commit = None;
        report.meta.cpu_model = None;
        report.meta.server_info = None;
        Report {
            targets: check_targets(&report, args),
            ..report
        }
    }

    #[test]
    fn the_markdown_report_matches_its_snapshot() {
        let args = bench_args(&[]);
        let markdown = render_markdown(&synthetic_report(&args, 2), &args);
        assert_eq!(markdown, MARKDOWN_SNAPSHOT, "\n{markdown}");
        let args = bench_args(&[
            "--url",
            "ws://10.0.0.7:8000/transcribe?token=k",
            "--latency-limit",
            "2.5",
            "--growth-limit",
            "0.5",
        ]);
        let markdown = render_markdown(&remote_report(&args), &args);
        assert_eq!(markdown, REMOTE_MARKDOWN_SNAPSHOT, "\n{markdown}");
    }

    /// `--json` writes `to_string_pretty` of the report: the text, not just the value,
    /// is compared, so field names, their order and every number stay as they were.
    #[test]
    fn the_json_report_matches_its_snapshot() {
        let report = synthetic_report(&bench_args(&[]), 2);
        let json = serde_json::to_string_pretty(&report).unwrap();
        assert_eq!(json, include_str!("bench/testdata/report.json"));
        let value = serde_json::to_value(&report).unwrap();
        let snapshot: serde_json::Value =
            serde_json::from_str(include_str!("bench/testdata/report.json")).unwrap();
        assert_eq!(value, snapshot);
    }

    #[test]
    fn dates_and_urls() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_513), (2026, 3, 1));
        let remote = RemoteServer::parse("ws://example.org:8000/transcribe?token=k").unwrap();
        assert_eq!(remote.authority, "example.org:8000");
        assert_eq!(remote.query, "token=k");
        assert_eq!(
            RemoteServer::parse("ws://h/transcribe").unwrap().authority,
            "h:80"
        );
        assert!(RemoteServer::parse("wss://h/transcribe").is_err());
        assert_eq!(shell_quote("--files"), "--files");
        assert_eq!(shell_quote("a b"), "'a b'");
    }
}
