//! The report: every result of a run and the conditions it was measured under, as plain
//! data. `--json` writes it as serialised here, so the names and order of the fields are
//! a file format (`testdata/report.json` is its snapshot); `Display` gives the markdown
//! ([`super::render`]). The other bench modules fill these types and depend on this one;
//! it depends on none of them.

use std::fmt;

use super::words::{LanguageSeen, TimedWord, WordTimeError};
use crate::info::Info;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

use crate::config::Scenario;

/// Everything one `reswhis bench` run measured. Serialised as is by `--json`; its
/// `Display` is the markdown report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// What was measured, where, and under which limits.
    pub meta: Meta,
    /// Full ctx (the baseline of the checks) first, then fitted ctx; empty with --no-floor.
    pub floors: Vec<FloorResult>,
    /// The rounds in the order they ran: for each frame size, each client count.
    pub rounds: Vec<RoundResult>,
    /// The largest client count whose round, and every smaller round run, kept up, at
    /// the frame size the targets are judged on (100 ms if it ran, else the first).
    pub capacity: Option<usize>,
    /// The targets of issues #5, #9 and #10 that apply, checked on the above.
    pub targets: Vec<TargetCheck>,
}

/// The conditions of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Meta {
    /// When the run ended, "YYYY-MM-DD HH:MM UTC".
    pub date: String,
    /// The command line, shell-quoted.
    pub command: String,
    /// `git rev-parse --short HEAD` of the working directory, marked when it has
    /// uncommitted changes.
    pub git_commit: Option<String>,
    /// CPUs this process may use.
    pub nproc: u32,
    /// The CPU's model name from /proc/cpuinfo.
    pub cpu_model: Option<String>,
    /// The server the rounds ran against.
    pub server: ServerUnderTest,
    /// The server's /info (of the --url server, or of the first round's child).
    pub server_info: Option<Info>,
    /// The model as named on the command line (or its default).
    pub model: String,
    /// `--min-chunk-size`, seconds.
    pub min_chunk_size: f64,
    /// `--beam-size`.
    pub beam_size: u32,
    /// `--full-audio-ctx`.
    pub full_audio_ctx: bool,
    /// whisper.cpp threads of the offline floor.
    pub floor_threads: u32,
    /// The test files' names, in test-set order (`pauses`: the recordings the streams
    /// are made of; `noise`: none).
    pub files: Vec<String>,
    /// Seconds of audio in those files (`files`: each client streams all of it).
    pub audio_seconds: f64,
    /// `--scenario`: what each client streams.
    #[serde(serialize_with = "scenario_name")]
    pub scenario: Scenario,
    /// Whether the server ran its voice activity controller: the URL's `?vac=`, else its
    /// /info, else the `--vac` given to the child; `None` when unknown.
    pub vac: Option<bool>,
    /// `--busy-cores`: processes busy-looping beside the server during the rounds.
    pub busy_cores: u32,
    /// `--query`: extra query parameters of every session.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub query: String,
    /// `--expect-language`: the language the test files are in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect_language: Option<String>,
    /// `--frame-ms`, each frame size in the order its rounds ran.
    pub frame_ms: Vec<u64>,
    /// `--latency-limit`, seconds.
    pub latency_limit: f64,
    /// `--growth-limit`, seconds.
    pub growth_limit: f64,
}

/// Which server the rounds ran against. Serialised as "child process" or the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerUnderTest {
    /// `reswhis serve` as a child process, fresh for every round.
    Child,
    /// The running server at `--url`.
    Remote(String),
}

fn scenario_name<S: Serializer>(scenario: &Scenario, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(scenario.as_str())
}

impl Serialize for ServerUnderTest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(match self {
            ServerUnderTest::Child => "child process",
            ServerUnderTest::Remote(url) => url,
        })
    }
}

/// One offline pass over the test set.
#[derive(Debug, Clone, Serialize)]
pub struct FloorResult {
    /// "full ctx" (30 s encoder window, the usual offline run) or "fitted ctx".
    pub mode: String,
    /// whisper.cpp threads.
    pub threads: u32,
    /// Seconds of audio transcribed.
    pub audio_seconds: f64,
    /// Seconds it took, warm-up excluded.
    pub wall_seconds: f64,
    /// CPU seconds (user + system) of this process over the pass, where the OS tells.
    pub cpu_seconds: Option<f64>,
    /// Real-time factor: wall / audio.
    pub rtf: f64,
    /// CPU seconds per second of audio.
    pub cpu_per_audio_second: Option<f64>,
    /// Word errors / reference words, pooled over the files with a reference.
    pub wer: Option<f64>,
    /// Each file's result, in test-set order.
    pub files: Vec<FloorFile>,
}

/// One file of an offline pass.
#[derive(Debug, Clone, Serialize)]
pub struct FloorFile {
    /// The test file's name (its stem).
    pub file: String,
    /// Seconds of audio in the file.
    pub audio_seconds: f64,
    /// Seconds its transcription took.
    pub wall_seconds: f64,
    /// Word errors of the transcript against the reference, if the file has one.
    pub word_errors: Option<usize>,
    /// Words in the reference, if the file has one.
    pub reference_words: Option<usize>,
    /// What whisper.cpp made of the whole file.
    pub transcript: String,
}

/// One round: N clients, each streaming every file (`files`) or its own stream.
#[derive(Debug, Clone, Serialize)]
pub struct RoundResult {
    /// Concurrent clients.
    pub clients: usize,
    /// Milliseconds of audio per WebSocket message.
    pub frame_ms: u64,
    /// Seconds from the first client's start to the last one's end.
    pub wall_seconds: f64,
    /// Server CPU seconds (user + system) over the round, from /info.
    pub server_cpu_seconds: Option<f64>,
    /// Server CPU seconds per second of audio streamed.
    pub cpu_per_audio_second: Option<f64>,
    /// The update timings of the server's /info after the round, when it reports them.
    pub server_stats: Option<ServerStats>,
    /// The figures over all streams of the round.
    pub overall: GroupStats,
    /// The figures of each client, client 1 first.
    pub per_client: Vec<GroupStats>,
    /// Whether the round kept up; in the JSON, `pass` and `verdict` (see [`Verdict`]).
    #[serde(flatten)]
    pub verdict: Verdict,
    /// /info at the start of the round.
    #[serde(skip)]
    pub server_info: Option<Info>,
    /// Every stream, client by client, each client's in the order it sent them.
    pub streams: Vec<StreamResult>,
}

/// What a server's /info says of its updates (`stats.*`), since it started: for a
/// child server, the round. Each part is `None` when /info lacks it (older servers).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerStats {
    /// Seconds each update (one transcription and its commit) took.
    pub update_seconds: Option<Timing>,
    /// The same, for updates on at most 10 s of audio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_seconds_short_audio: Option<Timing>,
    /// Seconds a stream with new audio waited for a worker.
    pub queue_wait_seconds: Option<Timing>,
    /// Updates cut short by a time budget.
    pub updates_cut: Option<u64>,
}

/// A distribution as the server reports it; a figure it leaves out (or null, as for
/// no values) is `None`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// How many values.
    #[serde(default)]
    pub count: u64,
    /// Median.
    #[serde(default)]
    pub p50: Option<f64>,
    /// 90th percentile.
    #[serde(default)]
    pub p90: Option<f64>,
    /// 99th percentile.
    #[serde(default)]
    pub p99: Option<f64>,
    /// The largest value.
    #[serde(default)]
    pub max: Option<f64>,
}

/// Whether a round kept up: p90 latency within `--latency-limit`, growth within
/// `--growth-limit`, no errors, and some text (except where no one speaks). Displays
/// as "ok" or as its reasons joined by ", ".
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Within every limit.
    KeepsUp,
    /// Outside one or more limits; never empty.
    Fails(Vec<Shortfall>),
}

/// One reason a round does not keep up.
#[derive(Debug, Clone, PartialEq)]
pub enum Shortfall {
    /// Streams recorded this many errors.
    Errors(usize),
    /// No stream got a committed message (not a shortfall where no one speaks).
    NoText,
    /// The p90 latency is over the limit.
    Latency {
        /// The round's p90 latency, seconds.
        p90: f64,
        /// `--latency-limit`, seconds.
        limit: f64,
    },
    /// The pooled growth is over the limit.
    Growth {
        /// The round's pooled growth, seconds.
        growth: f64,
        /// `--growth-limit`, seconds.
        limit: f64,
    },
}

impl Verdict {
    /// True for [`Verdict::KeepsUp`].
    pub fn keeps_up(&self) -> bool {
        matches!(self, Verdict::KeepsUp)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::KeepsUp => f.write_str("ok"),
            Verdict::Fails(reasons) => {
                for (i, reason) in reasons.iter().enumerate() {
                    let separator = if i == 0 { "" } else { ", " };
                    write!(f, "{separator}{reason}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Shortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shortfall::Errors(n) => write!(f, "{n} error(s)"),
            Shortfall::NoText => f.write_str("no text"),
            Shortfall::Latency { p90, limit } => write!(f, "p90 {p90:.2} s > {limit} s"),
            Shortfall::Growth { growth, limit } => write!(f, "growth {growth:.2} s > {limit} s"),
        }
    }
}

impl Serialize for Verdict {
    /// Two fields, flattened into the round: `pass` (keeps up) and `verdict` (Display).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut fields = serializer.serialize_struct("Verdict", 2)?;
        fields.serialize_field("pass", &self.keeps_up())?;
        fields.serialize_field("verdict", &self.to_string())?;
        fields.end()
    }
}

/// One file (or scenario stream) streamed on one connection.
#[derive(Debug, Clone, Serialize)]
pub struct StreamResult {
    /// The client that streamed it, from 1.
    pub client: usize,
    /// The test file's name (its stem), or the scenario stream's ("pauses-3").
    pub file: String,
    /// Seconds of audio in the file.
    pub audio_seconds: f64,
    /// Where speech lies in a scenario stream (none in `noise`); `None` for test files.
    pub speech: Option<Vec<Span>>,
    /// Words committed during silence (see [`words_in_silence`](super::words_in_silence));
    /// `None` where `speech` is.
    pub silence_words: Option<usize>,
    /// The committed messages, in arrival order.
    pub messages: Vec<Arrival>,
    /// The messages' text, concatenated.
    pub transcript: String,
    /// Word errors of the transcript against the reference, if the file has one.
    pub word_errors: Option<usize>,
    /// Words in the reference, if the file has one.
    pub reference_words: Option<usize>,
    /// Stream start → first committed message.
    pub first_text: Option<f64>,
    /// `eos` sent → `done` received.
    pub eos_to_done: Option<f64>,
    /// Mean latency of the last third minus the first third (see the module docs).
    pub growth: Option<f64>,
    /// What went wrong: the connection's error, server `error` messages, abnormal closes.
    pub errors: Vec<String>,
    /// The first `language` message (`--query language=auto`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<LanguageSeen>,
    /// The committed words with their times (`--query words=1`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub words: Vec<TimedWord>,
    /// Their times against the file's forced alignment, when both exist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub word_times: Option<WordTimeError>,
}

/// One committed message as the client saw it.
#[derive(Debug, Clone, Serialize)]
pub struct Arrival {
    /// Start of the message's audio, ms from the stream's first sample (server time).
    pub from_ms: u64,
    /// End of the message's audio, ms from the stream's first sample (server time).
    pub to_ms: u64,
    /// Seconds from stream start.
    pub arrival: f64,
    /// arrival − to/1000.
    pub latency: f64,
    /// Words in its text, as WER counts them (reswhis::wer normalisation).
    pub words: usize,
}

/// A stretch of a stream, in seconds from its first sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Span {
    /// Where it starts.
    pub start: f64,
    /// Where it ends.
    pub end: f64,
}

/// The numbers for a group of streams (one client, or a whole round).
#[derive(Debug, Clone, Serialize)]
pub struct GroupStats {
    /// Streams in the group.
    pub streams: usize,
    /// Seconds of audio they streamed.
    pub audio_seconds: f64,
    /// The latencies of all their committed messages, pooled.
    pub latency: Option<Summary>,
    /// Their times to first text.
    pub first_text: Option<Summary>,
    /// Growth pooled over the group's streams: all their last-third latencies minus all
    /// their first-third ones (streams of at least [`GROWTH_MIN_STREAM_SECONDS`](super::GROWTH_MIN_STREAM_SECONDS)).
    pub growth: Option<f64>,
    /// The largest single-stream growth, for information.
    pub worst_stream_growth: Option<f64>,
    /// Word errors / reference words, pooled over the streams with a reference.
    pub wer: Option<f64>,
    /// Words committed during silence, summed over the streams that measure it.
    pub silence_words: Option<usize>,
    /// Errors recorded by all the streams.
    pub errors: usize,
}

/// Count, mean, median, 90th percentile and maximum of some values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// How many values.
    pub count: usize,
    /// Their arithmetic mean.
    pub mean: f64,
    /// Nearest-rank median.
    pub p50: f64,
    /// Nearest-rank 90th percentile.
    pub p90: f64,
    /// The largest value.
    pub max: f64,
}

/// One target: whether it was met, what it is, and what was measured.
#[derive(Debug, Clone, Serialize)]
pub struct TargetCheck {
    /// The outcome.
    pub status: TargetStatus,
    /// The target, with its threshold.
    pub target: String,
    /// The figures it was checked on.
    pub measured: String,
}

/// The outcome of one target check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetStatus {
    /// Measured and within the target: "PASS".
    Met,
    /// Measured and outside the target: "FAIL".
    Missed,
    /// The figures it needs were not measured: "N/A".
    NotMeasured,
}

impl fmt::Display for TargetStatus {
    /// "PASS", "FAIL" or "N/A"; honours width and alignment (`{:<4}`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            TargetStatus::Met => "PASS",
            TargetStatus::Missed => "FAIL",
            TargetStatus::NotMeasured => "N/A",
        })
    }
}

impl Serialize for TargetStatus {
    /// As its Display string: the JSON holds "PASS", "FAIL" or "N/A".
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}
