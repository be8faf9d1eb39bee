//! `reswhis simulate FILE.wav`: the streaming policy on a file, without a server.
//!
//! Audio is fed in chunks of `--min-chunk-size` seconds, paced in real time unless
//! `--fast`, exactly as a worker would see it from a real-time client. Each commit is
//! printed as `emission-time from to text` (seconds, seconds, milliseconds).

use std::io::Write;
use std::time::{Duration, Instant};

use crate::audio::{read_wav, SAMPLE_RATE};
use crate::config::{ServeArgs, SimulateArgs};
use crate::policy::{Commit, OnlineProcessor};

/// Summary of a simulation.
#[derive(Debug, Clone)]
pub struct SimulationReport {
    pub transcript: String,
    pub audio_seconds: f64,
    pub wall_seconds: f64,
    pub transcribe_seconds: f64,
    pub updates: usize,
    /// Emission time minus the end of the committed text, per commit (real time only).
    pub latencies: Vec<f64>,
}

pub fn run(args: &SimulateArgs) -> Result<SimulationReport, Box<dyn std::error::Error>> {
    let audio = read_wav(&args.file)?;
    let engine = args
        .model
        .load_engine(args.model.decode_options(ServeArgs::cores()))?;
    let mut transcriber = engine.transcriber()?;
    let config = args.policy.stream_config(false);
    let mut processor = OnlineProcessor::new(config.policy);
    let chunk = ((config.min_chunk_sec * SAMPLE_RATE as f64) as usize).max(1);

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let started = Instant::now();
    let mut report = SimulationReport {
        transcript: String::new(),
        audio_seconds: audio.len() as f64 / SAMPLE_RATE as f64,
        wall_seconds: 0.0,
        transcribe_seconds: 0.0,
        updates: 0,
        latencies: Vec::new(),
    };
    let mut fed = 0;
    while fed < audio.len() {
        // Everything that has "arrived" by now, at least one chunk.
        let arrived = if args.fast {
            (fed + chunk).min(audio.len())
        } else {
            let due = fed + chunk;
            let due_at = Duration::from_secs_f64(due.min(audio.len()) as f64 / SAMPLE_RATE as f64);
            if let Some(wait) = due_at.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
            let now = (started.elapsed().as_secs_f64() * SAMPLE_RATE as f64) as usize;
            now.max(due).min(audio.len())
        };
        processor.insert_audio(&audio[fed..arrived]);
        fed = arrived;
        let begin = Instant::now();
        let commit = processor.process(|a, p| transcriber.transcribe(a, p))?;
        report.transcribe_seconds += begin.elapsed().as_secs_f64();
        log::debug!(
            "update over {:.1} s of audio took {:.3} s; pending: {:?}",
            processor.buffer_seconds(),
            begin.elapsed().as_secs_f64(),
            processor.pending_text()
        );
        report.updates += 1;
        emit(&mut out, &mut report, commit, started, args.fast)?;
    }
    let last = processor.finish();
    emit(&mut out, &mut report, last, started, args.fast)?;
    report.wall_seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn emit(
    out: &mut impl Write,
    report: &mut SimulationReport,
    commit: Option<Commit>,
    started: Instant,
    fast: bool,
) -> std::io::Result<()> {
    let Some(commit) = commit else { return Ok(()) };
    let now = started.elapsed().as_secs_f64();
    if !fast {
        report.latencies.push(now - commit.end);
    }
    report.transcript.push_str(&commit.text);
    writeln!(
        out,
        "{:8.3} {:7.0} {:7.0} {}",
        now,
        commit.start * 1000.0,
        commit.end * 1000.0,
        commit.text.trim_start()
    )
}
