//! The flags of each subcommand: `serve` (the default), `simulate` and `bench`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::{
    optional_duration, positive_seconds, seconds, MAX_DEFAULT_WORKERS, MAX_THREADS_PER_CALL,
};
use super::{ModelArgs, PolicyArgs, VoiceArgs};
use crate::load::ThreadPolicy;

/// Options of `reswhis serve`, and of `reswhis` without a subcommand.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Which model, and how it decodes.
    #[command(flatten)]
    pub model: ModelArgs,
    /// When words are committed.
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Address to listen on (0.0.0.0 for every interface).
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// Port for HTTP and WebSocket (0 picks a free one).
    #[arg(long, env = "PORT", default_value_t = 8000)]
    pub port: u16,
    /// Worker threads, each with its own whisper state. [default: CPU cores / 2, at least 1]
    #[arg(long, env = "WORKERS", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub workers: Option<u32>,
    /// Voice activity.
    #[command(flatten)]
    pub voice: VoiceArgs,
    /// Most WebSocket sessions at once; more are refused with HTTP 503.
    #[arg(long, env = "MAX_SESSIONS", default_value_t = 64)]
    pub max_sessions: usize,
    /// Most open connections (sessions, idle and in-flight HTTP requests) at once; more
    /// are answered 503 and closed.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 512)]
    pub max_connections: usize,
    /// Largest WebSocket message in bytes; bigger ones close the session with 1009.
    #[arg(long, env = "MAX_MESSAGE_BYTES", default_value_t = 1 << 20)]
    pub max_message_bytes: usize,
    /// Seconds a session may send nothing before it is closed (its text flushed); 0 never.
    #[arg(long, env = "IDLE_TIMEOUT", default_value_t = 30.0, value_parser = seconds)]
    pub idle_timeout: f64,
    /// Longest session in seconds of wall-clock time; 0 is unlimited.
    #[arg(long, env = "MAX_SESSION_DURATION", default_value_t = 0.0, value_parser = seconds)]
    pub max_session_duration: f64,
    /// Seconds a connection gets to send its HTTP request (slow or half-open clients
    /// are dropped after it).
    #[arg(long, env = "HANDSHAKE_TIMEOUT", default_value_t = 10.0, value_parser = positive_seconds)]
    pub handshake_timeout: f64,
    /// Require this key on /transcribe (header `Authorization: Bearer KEY` or `?token=KEY`)
    /// and for /info's details.
    #[arg(long, env = "API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Serve the web client from this directory instead of the copy built into the binary.
    #[arg(long, env = "STATIC_DIR")]
    pub static_dir: Option<PathBuf>,
    /// Seconds Ctrl-C waits for sessions to flush their text before closing them anyway.
    #[arg(long, env = "SHUTDOWN_TIMEOUT", default_value_t = 5.0, value_parser = seconds)]
    pub shutdown_timeout: f64,
    /// Testing only: let a client provoke a worker panic (see pool::PANIC_SAMPLE).
    #[arg(long, hide = true)]
    pub fault_injection: bool,
}

impl ServeArgs {
    /// CPU cores this process may use.
    pub fn cores() -> u32 {
        std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
    }

    /// `--workers`, or one per core up to [`MAX_DEFAULT_WORKERS`].
    pub fn worker_count(&self) -> u32 {
        self.workers
            .unwrap_or_else(|| Self::cores().clamp(1, MAX_DEFAULT_WORKERS))
    }

    /// Threads per call: `--threads`, or as many free cores as there are (at most
    /// [`MAX_THREADS_PER_CALL`]), shared among the workers busy at the time.
    pub fn thread_policy(&self) -> ThreadPolicy {
        let cores = Self::cores();
        ThreadPolicy::new(cores, cores.min(MAX_THREADS_PER_CALL), self.model.threads)
    }

    /// `--idle-timeout`; `None` for 0 (never).
    pub fn idle_timeout(&self) -> Option<Duration> {
        optional_duration(self.idle_timeout)
    }

    /// `--max-session-duration`; `None` for 0 (unlimited).
    pub fn max_session_duration(&self) -> Option<Duration> {
        optional_duration(self.max_session_duration)
    }
}

/// Options of `reswhis simulate`.
#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    /// A 16 kHz WAV file.
    pub file: PathBuf,
    /// Which model, and how it decodes.
    #[command(flatten)]
    pub model: ModelArgs,
    /// When words are committed.
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Voice activity.
    #[command(flatten)]
    pub voice: VoiceArgs,
    /// Feed the audio as fast as possible instead of in real time: the clock is then a
    /// virtual one (audio time plus the time the Whisper calls took), so latencies and
    /// the calls made are those of a real-time client on an otherwise idle worker.
    #[arg(long)]
    pub fast: bool,
    /// With `--fast`, advance the virtual clock by a fixed cost per call (30 ms plus 30 ms
    /// per second of audio, about tiny.en's on two cores) instead of the measured time:
    /// two runs then make the same calls, so changes to the policy compare side by side
    /// on a noisy machine.
    #[arg(long, requires = "fast")]
    pub modelled_cost: bool,
    /// Milliseconds of audio per frame, as a client sends them (bench and the web page
    /// send 100 ms).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub frame_ms: u32,
}

/// Options of `reswhis bench` (see [`crate::bench`] for what it measures).
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Benchmark a running server (ws://HOST:PORT/transcribe[?token=KEY]) instead of
    /// starting one. The model flags then only describe the offline floor.
    #[arg(long)]
    pub url: Option<String>,
    /// Concurrent clients; a list (1,2,4) runs one round per count, each against a fresh
    /// server.
    #[arg(long, value_delimiter = ',', default_value = "1",
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub clients: Vec<u32>,
    /// Find the largest client count that keeps up: try 1,2,3,4,6,8,12,… until a round
    /// fails (p90 latency over --latency-limit, growth over --growth-limit, or errors).
    /// Starts at the smallest --clients count (so `--clients 8` starts at 8).
    #[arg(long)]
    pub max_search: bool,
    /// Largest client count --max-search tries.
    #[arg(long, default_value_t = 64)]
    pub max_clients: usize,
    /// Directory of test audio: every *.wav with a same-named .txt reference.
    #[arg(long, default_value = "bench/audio")]
    pub audio: PathBuf,
    /// These WAV files instead of --audio (a NAME.txt next to each is the reference).
    #[arg(long, value_delimiter = ',')]
    pub files: Vec<PathBuf>,
    /// What each client streams.
    #[arg(long, value_enum, default_value_t = Scenario::Files)]
    pub scenario: Scenario,
    /// Extra query parameters for every session, e.g. `language=auto&words=1`.
    #[arg(long, default_value = "")]
    pub query: String,
    /// The language the test files are in: scores the `language` messages of
    /// `--query language=auto` (found or not, and when).
    #[arg(long)]
    pub expect_language: Option<String>,
    /// Audio per WebSocket message, in milliseconds; a list (20,100,250) runs the rounds
    /// once per frame size.
    #[arg(long, value_delimiter = ',', default_value = "100",
          value_parser = clap::value_parser!(u64).range(10..=5000))]
    pub frame_ms: Vec<u64>,
    /// Processes that busy-loop on the CPU beside the server during the rounds (started
    /// after the floor), as other programs on the machine would.
    #[arg(long, default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=1024))]
    pub busy_cores: u32,
    /// Most p90 latency (seconds) a passing round may have.
    #[arg(long, default_value_t = 3.0)]
    pub latency_limit: f64,
    /// Most latency growth (seconds, last third − first third) a passing round may have.
    #[arg(long, default_value_t = 1.0)]
    pub growth_limit: f64,
    /// Append the report, as a markdown section, to this file.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Write all results (every stream and message) as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Skip the offline floor (and the checks that need it).
    #[arg(long)]
    pub no_floor: bool,
    /// Print a line for every stream as it ends.
    #[arg(long, short)]
    pub verbose: bool,
    /// The server's model and the offline floor's.
    #[command(flatten)]
    pub model: ModelArgs,
    /// The server's streaming policy.
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// The server's voice activity settings.
    #[command(flatten)]
    pub voice: VoiceArgs,
    /// Server worker threads. [default: CPU cores / 2, at least 1]
    #[arg(long, env = "WORKERS", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub workers: Option<u32>,
}

/// What the clients of `reswhis bench` stream (see [`crate::bench`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Every test file, each on its own connection (client c starts at file c).
    Files,
    /// One long stream per client: the recordings under 30 s, rotated by client, joined
    /// with 2–8 s pauses over a low noise floor.
    Pauses,
    /// One stream per client of 60 s of room noise (a cough, a click), nobody speaking.
    Noise,
}

impl Scenario {
    /// The name on the command line: "files", "pauses" or "noise".
    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::Files => "files",
            Scenario::Pauses => "pauses",
            Scenario::Noise => "noise",
        }
    }
}
