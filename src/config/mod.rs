//! Command line and environment. Every server flag has an environment variable; the
//! names of the original Python server (MODEL, LANGUAGE, MINIMUM_CHUNK_SIZE, HOST, PORT,
//! USE_VOICE_ACTIVITY_*) keep working.
//!
//! - [`transcribe`]: how audio becomes text (model, streaming policy, voice activity),
//!   the flags `serve`, `simulate` and `bench` share. Each group has a `to_args` that
//!   writes it back as flags which parse to an equal value, so `bench` can start a
//!   server with exactly its own settings.
//! - [`commands`]: the flags of each subcommand.
//!
//! Invariant: every value is checked when it is parsed (ranges, probabilities, finite
//! seconds), so the rest of the program never sees an out-of-range setting.

use std::time::Duration;

use clap::{Parser, Subcommand};

pub mod commands;
pub mod transcribe;

pub use commands::{BenchArgs, Scenario, ServeArgs, SimulateArgs};
pub use transcribe::{ModelArgs, PolicyArgs, VoiceArgs};

/// The Silero model `./models/fetch.sh silero-vad` gets (whisper.cpp's name for it).
pub const DEFAULT_VAD_MODEL: &str = "silero-v6.2.0";

/// Default workers: one per core, up to this many (each holds a whisper state).
pub const MAX_DEFAULT_WORKERS: u32 = 8;
/// whisper.cpp gains little from more threads than this on one call.
pub const MAX_THREADS_PER_CALL: u32 = 8;

/// The whole command line.
#[derive(Debug, Parser)]
#[command(
    name = "reswhis",
    version,
    about = "Remote Streaming Whisper: live speech to text over WebSocket",
    long_about = None,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// The subcommand, if one was given.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Without a subcommand, reswhis runs the server.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// reswhis's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve(ServeArgs),
    /// Run a WAV file through the streaming policy and print each commit as it happens.
    Simulate(SimulateArgs),
    /// Measure latency, accuracy and capacity of a server over WebSocket.
    Bench(BenchArgs),
    /// Busy-loop on one CPU until killed or orphaned: the load of `bench --busy-cores`.
    #[command(hide = true)]
    Spin,
}

pub(crate) fn probability(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(p) if (0.05..=0.95).contains(&p) => Ok(p),
        _ => Err(format!(
            "{text:?} is not a probability between 0.05 and 0.95"
        )),
    }
}

pub(crate) fn optional_duration(seconds: f64) -> Option<Duration> {
    (seconds > 0.0).then(|| Duration::from_secs_f64(seconds))
}

pub(crate) fn seconds(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(format!("{text} must be 0 or more seconds"))
    }
}

pub(crate) fn positive_seconds(text: &str) -> Result<f64, String> {
    match seconds(text)? {
        value if value > 0.0 => Ok(value),
        _ => Err(format!("{text} must be more than 0 seconds")),
    }
}

#[cfg(test)]
mod tests;
