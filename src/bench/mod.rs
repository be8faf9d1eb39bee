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
//!
//! Code: the report types (`report`, the `--json` format) are plain data that the other
//! modules fill: `testset` loads the audio, `floor` measures the offline floor, `rounds`
//! runs `client` streams against a `server`, `stats` computes the figures, `targets`
//! checks them, `meta` reads the machine and commit, and `render` writes the markdown.
//! The imports form no cycle: `report` uses no other bench module, and no library module
//! outside `bench` uses it (`bench` uses `config`, not the other way round).

// Every public item of the bench is documented (the report types are a file format).
#![warn(missing_docs)]

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use crate::config::BenchArgs;

mod client;
mod floor;
mod meta;
mod render;
mod report;
mod rounds;
mod server;
mod stats;
mod targets;
#[cfg(test)]
mod tests;
mod testset;

pub use report::{
    Arrival, FloorFile, FloorResult, GroupStats, Meta, Report, RoundResult, ServerUnderTest,
    Shortfall, StreamResult, Summary, TargetCheck, TargetStatus, Verdict,
};
pub use stats::{percentile, stream_growth, GROWTH_MIN_STREAM_SECONDS};

use floor::{floor_threads, run_floor};
use render::RoundLine;
use rounds::{capacity, client_counts, run_round};
use server::RemoteServer;
use targets::check_targets;
use testset::load_test_set;

/// Runs the whole benchmark and prints (and writes) the report. Errors carry context;
/// print them with [`error_line`].
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
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
    for clients in client_counts(args) {
        let round = run_round(args, &files, clients)
            .with_context(|| format!("the round with {clients} client(s) could not run"));
        let round = match round {
            Ok(round) => round,
            // Keep what was measured so far.
            Err(e) if !rounds.is_empty() => {
                eprintln!("bench: {}", error_line(&e));
                break;
            }
            Err(e) => return Err(e),
        };
        eprintln!("bench: {}", RoundLine(&round));
        let failed = !round.verdict.keeps_up();
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
        targets: check_targets(&report),
        ..report
    };
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

/// `error` and its causes on one line, "context: cause: …". A cause whose text the line
/// already holds is left out: many errors (WavError, EngineError, tungstenite's) print
/// their source in their own message, and anyhow's `{:#}` would repeat it.
pub fn error_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
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
