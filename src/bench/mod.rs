//! `reswhis bench`: measures a server over the real WebSocket protocol (issues #5, #9,
//! #10).
//!
//! How it works, in order:
//!
//! 1. **Audio.** `--scenario files` (the default): every `*.wav` in `--audio` with a
//!    same-named `.txt` reference (or the `--files` given). `pauses`: one long stream per
//!    client, the recordings under 30 s joined with 2–8 s pauses over pink noise at
//!    -50 dBFS, rotated and seeded per client. `noise`: one stream per client of 60 s of
//!    room noise (a cough, a click) where nobody speaks. The `workload` module has the details.
//! 2. **Floor.** whisper.cpp transcribes each file once, offline, in this process, with
//!    the same model and threads as a server worker: once with the full 30 s encoder
//!    window (the usual offline baseline) and once with the window fitted to the audio.
//!    In the scenarios the files are the streams of clients 1 and 2.
//! 3. **Load.** `--busy-cores N` starts N processes that busy-loop on the CPU; they run
//!    through the rounds and are killed when the bench ends or fails.
//! 4. **Rounds.** For each frame size (`--frame-ms 20,100`), for each client count N
//!    (`--clients 1,2,4`, or `--max-search`, which starts again at each frame size): a
//!    fresh server (this executable, `serve`, as a child process, so its CPU time is its
//!    own) and N client threads. Each client streams its files (`files`: every file, in
//!    a rotated order; the scenarios: its own stream) in real time, one connection per
//!    file: frames of `--frame-ms`, `{"type":"eos"}`, then it waits for `done` and the
//!    close. After the round the server's /info gives its CPU time and, when it reports
//!    them, its update timings.
//! 5. **Report.** Latency, time to first text, latency growth, WER, words committed
//!    during silence and server CPU per audio second, per client and per round; the
//!    target checks that apply to the scenario as PASS/FAIL lines.
//!
//! With `--url` the rounds share the running server (no fresh state, and its CPU time
//! and update timings count whatever else it serves); the model flags then only set up
//! the floor. The fitted-ctx floor equals the full-ctx one for files of 30 s and more.
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
//! - *words in silence* (scenarios only): the words of committed messages whose
//!   [from, to] overlaps no speech region widened by [`SILENCE_MARGIN_SECONDS`] on each
//!   side; in `noise`, every committed word ([`words_in_silence`]).
//! - *percentiles*: nearest rank (p90 is the smallest value with ≥ 90 % of values ≤ it).
//!
//! Code: the report types (`report`, the `--json` format) are plain data that the other
//! modules fill: `workload` makes the audio (from `testset`'s files), `floor` measures
//! the offline floor, `busy` runs the other load, `rounds` runs `client` streams against
//! a `server`, `stats` computes the figures, `targets` checks them, `meta` reads the
//! machine and commit, and `render` (with `table`) writes the markdown. The imports form
//! no cycle: `report` uses no other bench module (only `config`'s [`Scenario`]), and no
//! library module outside `bench` uses it (`bench` uses `config`, not the other way
//! round).
//!
//! [`Scenario`]: crate::config::Scenario

// Every public item of the bench is documented (the report types are a file format).
#![warn(missing_docs)]

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::config::{BenchArgs, Scenario};

mod busy;
mod client;
mod floor;
mod meta;
mod progress;
mod render;
mod report;
mod rounds;
#[cfg(test)]
mod scenario_tests;
mod server;
mod stats;
mod table;
mod targets;
#[cfg(test)]
mod tests;
mod testset;
mod words;
mod workload;

pub use busy::spin;
pub use report::{
    Arrival, FloorFile, FloorResult, GroupStats, Meta, Report, RoundResult, ServerStats,
    ServerUnderTest, Shortfall, Span, StreamResult, Summary, TargetCheck, TargetStatus, Timing,
    Verdict,
};
pub use stats::{
    percentile, stream_growth, words_in_silence, GROWTH_MIN_STREAM_SECONDS, SILENCE_MARGIN_SECONDS,
};
pub use targets::TARGET_FRAME_MS;
pub use workload::{
    FLOOR_VARIANTS, MAX_VARIANTS, NOISE_STREAM_SECONDS, PAUSES_MAX_RECORDING_SECONDS,
};

use busy::BusyProcesses;
use floor::{floor_threads, run_floor};
use rounds::run_rounds;
use server::RemoteServer;
use workload::Workload;

/// Runs the whole benchmark and prints (and writes) the report. Errors carry context;
/// print them with [`crate::error_line`].
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let mut workload = Workload::load(args)?;
    let recordings = workload.recordings();
    let audio_seconds: f64 = recordings.iter().map(|f| f.seconds).sum();
    match args.scenario {
        Scenario::Files => eprintln!(
            "bench: {} file(s), {audio_seconds:.1} s of audio",
            recordings.len()
        ),
        Scenario::Pauses => eprintln!(
            "bench: scenario pauses: {} recording(s), {audio_seconds:.1} s of speech per stream",
            recordings.len()
        ),
        Scenario::Noise => {
            eprintln!("bench: scenario noise: {NOISE_STREAM_SECONDS} s of room noise per stream")
        }
    }
    let remote_info = match &args.url {
        Some(url) => Some(RemoteServer::parse(url)?.info()?),
        None => None,
    };
    let threads = floor_threads(args, remote_info.as_ref());
    let floors = if args.no_floor {
        Vec::new()
    } else {
        let files = workload.floor_set();
        [false, true]
            .into_iter()
            .map(|fit| run_floor(args, &files, threads, fit))
            .collect::<Result<Vec<_>, _>>()?
    };

    // Dropped when this function returns, whether the rounds ran or failed.
    let mut busy = BusyProcesses::spinners(args.busy_cores)
        .context("cannot start the --busy-cores processes")?;
    if busy.count() > 0 {
        eprintln!("bench: {} busy-looping process(es) started", busy.count());
    }
    let rounds = run_rounds(args, &mut workload)?;
    let exited = busy.exited();
    if exited > 0 {
        eprintln!(
            "bench: warning: {exited} of the --busy-cores processes exited during the rounds"
        );
    }
    drop(busy);

    let server_info = remote_info.or_else(|| rounds.first().and_then(|r| r.server_info.clone()));
    let server_threads = server_info
        .as_ref()
        .and_then(|i| i.details.as_ref())
        .map(|d| u64::from(d.threads_per_worker));
    if server_threads.is_some_and(|t| t != u64::from(threads)) && !floors.is_empty() {
        eprintln!(
            "bench: warning: the floor used {threads} thread(s), the server {} per worker \
             (pass --threads to make them equal)",
            server_threads.unwrap_or(0)
        );
    }
    let report = Report {
        meta: Meta::collect(args, workload.recordings(), server_info, threads),
        floors,
        capacity: None,
        targets: Vec::new(),
        rounds,
    }
    .judged();
    let markdown = report.to_string();
    println!("{markdown}");
    if let Some(path) = &args.output {
        append_markdown(path, &markdown)
            .with_context(|| format!("cannot append the report to {}", path.display()))?;
        eprintln!("bench: report appended to {}", path.display());
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("bench: JSON written to {}", path.display());
    }
    Ok(())
}

/// Appends `markdown` to the file at `path`, after a blank line if it is not empty.
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
