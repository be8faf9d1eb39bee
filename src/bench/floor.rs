//! The offline floor: whisper.cpp transcribes each file once, whole, in this process,
//! with the server's model and whisper.cpp threads per worker, once with the full 30 s
//! encoder window and once with it fitted to the audio. In the `pauses` and `noise`
//! scenarios the "files" are the streams of clients 1 and 2 (see [`super::workload`]). The CPU and WER targets compare
//! the streaming server with it. A warm-up run before the clock starts keeps the first
//! run's allocations out of the numbers.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

use super::report::{FloorFile, FloorResult};
use super::stats::{aggregate_wer, delta};
use super::testset::{score, TestFile};
use crate::audio;
use crate::config::{BenchArgs, ServeArgs};
use crate::info::Info;

/// whisper.cpp threads of one server worker: --threads, else what the remote server
/// reports, else the server's own default (cores / workers).
pub(super) fn floor_threads(args: &BenchArgs, remote_info: Option<&Info>) -> u32 {
    let remote = remote_info
        .and_then(|i| i.details.as_ref())
        .map(|d| d.threads_per_worker);
    let workers = args
        .workers
        .unwrap_or_else(|| (ServeArgs::cores() / 2).max(1));
    let local = (ServeArgs::cores() / workers).max(1);
    args.model.threads.or(remote).unwrap_or(local)
}

/// Transcribes every file once, whole (whisper.cpp seeks through audio over 30 s itself):
/// the test files, or the scenario streams of [`Workload::floor_set`](super::workload::Workload::floor_set).
pub(super) fn run_floor(
    args: &BenchArgs,
    files: &[Arc<TestFile>],
    threads: u32,
    fit_audio_ctx: bool,
) -> anyhow::Result<FloorResult> {
    let mode = if fit_audio_ctx {
        "fitted ctx"
    } else {
        "full ctx"
    };
    eprintln!("bench: offline floor ({mode}, {threads} thread(s))…");
    measure(args, files, threads, fit_audio_ctx, mode)
        .with_context(|| format!("offline floor ({mode})"))
}

fn measure(
    args: &BenchArgs,
    files: &[Arc<TestFile>],
    threads: u32,
    fit_audio_ctx: bool,
    mode: &str,
) -> anyhow::Result<FloorResult> {
    let mut options = args.model.decode_options(threads);
    options.threads = threads;
    options.fit_audio_ctx = fit_audio_ctx;
    let engine = args.model.load_engine(options)?;
    let mut transcriber = engine.transcriber()?;
    // The first run allocates buffers; keep that out of the numbers.
    let warm_up = &files[0].samples[..files[0].samples.len().min(audio::samples(2.0))];
    transcriber
        .transcribe(warm_up, "")
        .with_context(|| format!("warming up on {}", files[0].name))?;

    let cpu_before = crate::cpu::process_cpu_seconds();
    let started = Instant::now();
    let mut results = Vec::new();
    for file in files {
        let begin = Instant::now();
        let transcript = transcriber
            .transcribe(&file.samples, "")
            .with_context(|| format!("transcribing {}", file.name))?
            .text();
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
