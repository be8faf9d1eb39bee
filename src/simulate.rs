//! `reswhis simulate FILE.wav`: the streaming policy on a file, without a server.
//!
//! Audio is fed in frames of `--frame-ms`, paced in real time unless `--fast`, through
//! the voice activity controller when `--vac` is on, and updated exactly as an idle
//! worker updates a real-time client's stream: when the worker is free it takes every
//! frame that has arrived. Each commit is printed as `emission-time from to text`
//! (seconds, milliseconds, milliseconds).
//!
//! With `--fast` the clock is virtual: a frame arrives at its audio time, and a worker
//! busy with a call is free again after the call's measured wall time. The calls made,
//! the text and the latencies are then those of real time (measured on the pauses
//! stream: 159 calls against the server's 159 and 160), in a fraction of the time, which makes
//! side-by-side comparisons of settings possible on a noisy machine.

use std::fmt;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::audio::read_wav;
use crate::config::{ServeArgs, SimulateArgs};
use crate::policy::{Commit, OnlineProcessor, Piece};
use crate::vad::{GateEvent, SileroModel, VoiceController};

/// Summary of a simulation.
#[derive(Debug, Clone)]
pub struct SimulationReport {
    /// Everything committed, joined.
    pub transcript: String,
    /// Seconds of audio in the file.
    pub audio_seconds: f64,
    /// Seconds the simulation took.
    pub wall_seconds: f64,
    /// Seconds spent in Whisper calls.
    pub transcribe_seconds: f64,
    /// Whisper calls made.
    pub updates: usize,
    /// Seconds of audio handed to Whisper, all calls together (what the encoder's
    /// work grows with; a steadier measure than CPU time on a shared machine).
    pub transcribed_seconds: f64,
    /// Emission time minus the end of the committed text, per commit.
    pub latencies: Vec<f64>,
    /// Word error rate against FILE.txt, when there is one beside the WAV file.
    pub wer: Option<f64>,
}

/// Streams `args.file` through the policy (in real time unless `--fast`), printing each
/// commit, and sums it up.
pub fn run(args: &SimulateArgs) -> anyhow::Result<SimulationReport> {
    let audio = read_wav(&args.file)?;
    let mut engine = args
        .model
        .load_engine(args.model.decode_options(ServeArgs::cores()))?;
    let silero_path = args.voice.vad_model_path(&args.model.models_dir);
    let silero = match args.voice.needs_model() {
        true => Some(SileroModel::load(&silero_path).context("the voice activity model")?),
        false => None,
    };
    if let (true, Some(model)) = (args.voice.vad, &silero) {
        engine = engine.with_vad_filter(model.clone());
    }
    let mut vac = match (args.voice.vac, &silero) {
        (true, Some(model)) => Some(VoiceController::new(
            model.clone(),
            args.voice.gate_config(),
        )),
        _ => None,
    };
    let mut transcriber = engine.transcriber().context("creating a whisper state")?;
    let config = args.policy.stream_config(engine.is_tiny(), false);
    let mut processor = OnlineProcessor::new(config.policy);
    let chunk = crate::audio::samples(config.min_chunk_sec).max(1);
    let frame = crate::audio::samples(f64::from(args.frame_ms) / 1000.0).max(1);
    let mut clock = Clock::new(args.fast);

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let started = Instant::now();
    let mut report = SimulationReport {
        transcript: String::new(),
        audio_seconds: crate::audio::seconds(audio.len()),
        wall_seconds: 0.0,
        transcribe_seconds: 0.0,
        updates: 0,
        transcribed_seconds: 0.0,
        latencies: Vec::new(),
        wer: None,
    };
    let mut fed = 0;
    let mut events = Vec::new();
    while fed <= audio.len() {
        let end_of_stream = fed == audio.len();
        // The worker takes every frame that has arrived by the time it is free, at
        // least the next one.
        let arrived = if end_of_stream {
            audio.len()
        } else {
            let due = (fed + frame).min(audio.len());
            clock.wait_until(crate::audio::seconds(due));
            let now = crate::audio::samples(clock.now()) / frame * frame;
            now.max(due).min(audio.len())
        };
        let samples = &audio[fed..arrived];
        let pieces = match &mut vac {
            Some(vac) => {
                vac.push(samples, &mut events);
                if end_of_stream {
                    vac.finish(&mut events);
                }
                pieces_of(events.drain(..))
            }
            None => vec![Piece {
                at: fed as u64,
                audio: samples.to_vec(),
                voiced: samples.len(),
                ends_utterance: false,
                onset: None,
            }],
        };
        fed = arrived;
        let begin = Instant::now();
        let mut modelled = 0.0;
        let outcome = processor.update(pieces, end_of_stream, chunk, |a, p| {
            let seconds = crate::audio::seconds(a.len());
            report.transcribed_seconds += seconds;
            modelled += MODELLED_CALL_SEC + MODELLED_SEC_PER_AUDIO_SEC * seconds;
            transcriber.transcribe(a, p).map(Some)
        })?;
        let took = begin.elapsed().as_secs_f64();
        clock.advance(if args.modelled_cost { modelled } else { took });
        report.transcribe_seconds += took;
        report.updates += outcome.transcriptions;
        if outcome.transcriptions > 0 {
            log::debug!(
                "{} transcription(s) took {took:.3} s; pending: {:?}",
                outcome.transcriptions,
                processor.pending_text()
            );
        }
        for commit in outcome.commits {
            emit(&mut out, &mut report, commit, clock.now()).context("writing to stdout")?;
        }
        if end_of_stream {
            break;
        }
    }
    report.wall_seconds = started.elapsed().as_secs_f64();
    if let Ok(reference) = std::fs::read_to_string(args.file.with_extension("txt")) {
        report.wer = Some(crate::wer::word_error_rate(&reference, &report.transcript));
    }
    Ok(report)
}

impl fmt::Display for SimulationReport {
    /// The summary line `reswhis simulate` prints last, and the WER when there is one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mean_latency = self.latencies.iter().sum::<f64>() / self.latencies.len().max(1) as f64;
        write!(
            f,
            "audio {:.1} s, wall {:.1} s, {} updates on {:.1} s of audio, transcribe {:.2} s \
             (RTF {:.3}), mean latency {:.2} s",
            self.audio_seconds,
            self.wall_seconds,
            self.updates,
            self.transcribed_seconds,
            self.transcribe_seconds,
            self.transcribe_seconds / self.audio_seconds.max(1e-9),
            mean_latency,
        )?;
        if let Some(wer) = self.wer {
            write!(
                f,
                "\nWER {:.1}% against the reference beside the file",
                wer * 100.0
            )?;
        }
        Ok(())
    }
}

/// The controller's output as the pieces a worker takes from a stream's inbox.
fn pieces_of(events: impl Iterator<Item = GateEvent>) -> Vec<Piece> {
    let mut pieces: Vec<Piece> = Vec::new();
    for event in events {
        match event {
            GateEvent::Audio {
                at,
                samples,
                voiced,
                onset,
            } => pieces.push(Piece {
                at,
                voiced: if voiced { samples.len() } else { 0 },
                audio: samples,
                ends_utterance: false,
                onset,
            }),
            GateEvent::EndOfUtterance => match pieces.last_mut() {
                Some(last) => last.ends_utterance = true,
                None => pieces.push(Piece {
                    ends_utterance: true,
                    ..Piece::default()
                }),
            },
        }
    }
    pieces
}

/// `--modelled-cost`: a call's fixed part and its part per second of audio (tiny.en,
/// q8_0, two threads: the pauses stream's 252 calls on 1870 s of audio took 63 s).
const MODELLED_CALL_SEC: f64 = 0.03;
const MODELLED_SEC_PER_AUDIO_SEC: f64 = 0.03;

/// The simulation's time: the wall clock, or a virtual one (see the module docs).
enum Clock {
    Real(Instant),
    Virtual(f64),
}

impl Clock {
    fn new(fast: bool) -> Self {
        match fast {
            true => Clock::Virtual(0.0),
            false => Clock::Real(Instant::now()),
        }
    }

    /// Seconds since the stream began.
    fn now(&self) -> f64 {
        match self {
            Clock::Real(started) => started.elapsed().as_secs_f64(),
            Clock::Virtual(now) => *now,
        }
    }

    /// Waits until `seconds` since the stream began (nothing to do if that has passed).
    fn wait_until(&mut self, seconds: f64) {
        match self {
            Clock::Real(started) => {
                if let Some(wait) = Duration::from_secs_f64(seconds).checked_sub(started.elapsed())
                {
                    std::thread::sleep(wait);
                }
            }
            Clock::Virtual(now) => *now = now.max(seconds),
        }
    }

    /// A call took `seconds` of wall time (the real clock moved by itself).
    fn advance(&mut self, seconds: f64) {
        if let Clock::Virtual(now) = self {
            *now += seconds;
        }
    }
}

fn emit(
    out: &mut impl Write,
    report: &mut SimulationReport,
    commit: Commit,
    now: f64,
) -> std::io::Result<()> {
    report.latencies.push(now - commit.end);
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
