//! Command line and environment. Every server flag has an environment variable; the
//! names of the original Python server (MODEL, LANGUAGE, MINIMUM_CHUNK_SIZE, HOST, PORT,
//! USE_VOICE_ACTIVITY_*) keep working.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::audio::SAMPLE_RATE;
use crate::engine::{resolve_model_path, DecodeOptions, Engine, EngineError};
use crate::load::ThreadPolicy;
use crate::policy::PolicyConfig;
use crate::pool::StreamConfig;
use crate::vad::GateConfig;

/// The Silero model `./models/fetch.sh silero-vad` gets (whisper.cpp's name for it).
pub const DEFAULT_VAD_MODEL: &str = "silero-v6.2.0";

/// Default workers: one per core, up to this many (each holds a whisper state).
pub const MAX_DEFAULT_WORKERS: u32 = 8;
/// whisper.cpp gains little from more threads than this on one call.
pub const MAX_THREADS_PER_CALL: u32 = 8;

#[derive(Debug, Parser)]
#[command(
    name = "reswhis",
    version,
    about = "Remote Streaming Whisper: live speech to text over WebSocket",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Without a subcommand, reswhis runs the server.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve(ServeArgs),
    /// Run a WAV file through the streaming policy and print each commit as it happens.
    Simulate(SimulateArgs),
    /// Measure latency, accuracy and capacity of a server over WebSocket (issue #5).
    Bench(BenchArgs),
    /// Busy-loop on one CPU until killed or orphaned: the load of `bench --busy-cores`.
    #[command(hide = true)]
    Spin,
}

/// Which model and how to decode.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct ModelArgs {
    /// Model name (tiny.en, base, …, looked up as MODELS_DIR/ggml-NAME.bin) or a path to
    /// a ggml model file. MODEL_SIZE is accepted as an alias of MODEL. [default: tiny.en]
    #[arg(long, env = "MODEL")]
    pub model: Option<String>,
    /// Where model names are looked up.
    #[arg(long, env = "MODELS_DIR", default_value = "models")]
    pub models_dir: PathBuf,
    /// Language code of the speech (en, de, fr, …), or `auto` to detect it.
    #[arg(long, env = "LANGUAGE", default_value = "en")]
    pub language: String,
    /// Threads whisper.cpp uses per worker. [default: CPU cores / workers]
    #[arg(long, env = "THREADS")]
    pub threads: Option<u32>,
    /// Beam search width; 1 decodes greedily (fastest).
    #[arg(long, env = "BEAM_SIZE", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=16))]
    pub beam_size: u32,
    /// Use the GPU when built with `--features cuda`.
    #[arg(long, env = "USE_GPU", default_value_t = true, action = clap::ArgAction::Set,
          value_parser = BoolishValueParser::new())]
    pub gpu: bool,
    /// Run the encoder on the whole padded 30 s window instead of just the audio present
    /// (slower, marginally more accurate on very short buffers).
    #[arg(long, env = "FULL_AUDIO_CTX", default_value_t = false, action = clap::ArgAction::Set,
          value_parser = BoolishValueParser::new())]
    pub full_audio_ctx: bool,
}

impl ModelArgs {
    /// The model as given, with the MODEL_SIZE alias and the default applied.
    pub fn model_name(&self) -> String {
        self.model
            .clone()
            .or_else(|| std::env::var("MODEL_SIZE").ok().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| "tiny.en".to_string())
    }

    /// A short name for `/info`: `tiny.en` for `tiny.en` or `…/ggml-tiny.en.bin`.
    pub fn model_label(&self) -> String {
        let name = self.model_name();
        let file = std::path::Path::new(&name)
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or(&name)
            .to_string();
        file.strip_prefix("ggml-")
            .unwrap_or(&file)
            .strip_suffix(".bin")
            .map(str::to_string)
            .unwrap_or(file)
    }

    pub fn model_path(&self) -> PathBuf {
        resolve_model_path(&self.model_name(), &self.models_dir)
    }

    /// Whether the GPU is used: asked for, and built with `--features cuda`.
    pub fn use_gpu(&self) -> bool {
        cfg!(feature = "cuda") && self.gpu
    }

    /// Loads the model with these decoding options.
    pub fn load_engine(&self, options: DecodeOptions) -> Result<Engine, EngineError> {
        Engine::load(
            &self.model_path(),
            &self.model_name(),
            self.use_gpu(),
            options,
        )
    }

    /// These settings as command-line flags that parse back to an equal `ModelArgs`
    /// (`--threads` and `--model` only when set), to hand them to a child `reswhis`.
    /// The path of `--models-dir` is passed as UTF-8 (lossily, if it is not).
    pub fn to_args(&self) -> Vec<String> {
        // Destructured without `..`: a new field does not compile until it is passed on.
        let ModelArgs {
            model,
            models_dir,
            language,
            threads,
            beam_size,
            gpu,
            full_audio_ctx,
        } = self;
        let mut args = Vec::new();
        if let Some(model) = model {
            args.extend(["--model".to_string(), model.clone()]);
        }
        args.extend([
            "--models-dir".to_string(),
            models_dir.to_string_lossy().into_owned(),
            "--language".to_string(),
            language.clone(),
        ]);
        if let Some(threads) = threads {
            args.extend(["--threads".to_string(), threads.to_string()]);
        }
        args.extend([
            "--beam-size".to_string(),
            beam_size.to_string(),
            "--gpu".to_string(),
            gpu.to_string(),
            "--full-audio-ctx".to_string(),
            full_audio_ctx.to_string(),
        ]);
        args
    }

    pub fn decode_options(&self, threads: u32) -> DecodeOptions {
        DecodeOptions {
            language: match self.language.as_str() {
                "auto" | "" => None,
                code => Some(code.to_string()),
            },
            beam_size: self.beam_size,
            threads: self.threads.unwrap_or(threads).max(1),
            fit_audio_ctx: !self.full_audio_ctx,
        }
    }
}

/// The streaming policy.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct PolicyArgs {
    /// Seconds of new audio that trigger an update. LocalAgreement commits a word once
    /// two updates agree on it, so words wait about 1.5 times this on average
    /// (measured, pauses scenario, 1 client: 1.0 s gave a mean latency of 1.55 s, 0.75 s
    /// 1.18 s, 0.5 s 1.00 s at 0.386 → 0.60 CPU-s per audio second).
    #[arg(long, env = "MINIMUM_CHUNK_SIZE", default_value_t = 0.75,
          value_parser = positive_seconds)]
    pub min_chunk_size: f64,
    /// Trim committed audio off the buffer once it is longer than this (seconds).
    /// Shorter buffers cost less to transcribe again on every update (whisper_streaming
    /// used 15; measured on the benchmark files, 6 s keeps the accuracy at 60% of the CPU).
    #[arg(long, env = "BUFFER_TRIMMING_SEC", default_value_t = 6.0,
          value_parser = positive_seconds)]
    pub buffer_trimming_sec: f64,
    /// Characters of committed text given to Whisper as a prompt for the audio after
    /// it (whisper_streaming used 200). Off by default: with small models the prompt
    /// often makes Whisper skip or invent words (measured: tiny.en WER 14.6% with 200,
    /// 10.5% without, on the benchmark's long files).
    #[arg(long, env = "PROMPT_CHARS", default_value_t = 0)]
    pub prompt_chars: usize,
    /// Seconds of already committed audio kept at the start of the buffer when it is
    /// trimmed, so Whisper never starts cold in the middle of speech.
    #[arg(long, env = "TRIM_CONTEXT_SEC", default_value_t = 3.0,
          value_parser = seconds)]
    pub trim_context_sec: f64,
}

impl PolicyArgs {
    /// These settings as command-line flags that parse back to an equal `PolicyArgs`,
    /// to hand them to a child `reswhis`. An `f64` is written in its shortest form that
    /// reads back as the same value.
    pub fn to_args(&self) -> Vec<String> {
        // Destructured without `..`: a new field does not compile until it is passed on.
        let PolicyArgs {
            min_chunk_size,
            buffer_trimming_sec,
            prompt_chars,
            trim_context_sec,
        } = self;
        [
            ("--min-chunk-size", min_chunk_size.to_string()),
            ("--buffer-trimming-sec", buffer_trimming_sec.to_string()),
            ("--prompt-chars", prompt_chars.to_string()),
            ("--trim-context-sec", trim_context_sec.to_string()),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_string(), value])
        .collect()
    }

    pub fn stream_config(&self, fault_injection: bool) -> StreamConfig {
        StreamConfig {
            min_chunk_sec: self.min_chunk_size,
            policy: PolicyConfig {
                buffer_trimming_sec: self.buffer_trimming_sec,
                prompt_chars: self.prompt_chars,
                context_sec: self.trim_context_sec,
                ..PolicyConfig::default()
            },
            fault_injection,
        }
    }
}

/// Voice activity: the controller (VAC) and the filter (VAD), both Silero.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct VoiceArgs {
    /// Voice activity controller: only speech is transcribed, and each utterance is
    /// committed as soon as it ends (a pause of --vac-min-silence-ms). Clients can
    /// choose per connection with `?vac=1` or `?vac=0`.
    #[arg(long = "vac", env = "USE_VOICE_ACTIVITY_CONTROLLER", default_value_t = true,
          action = clap::ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub vac: bool,
    /// Voice activity detection: each transcription skips the audio Silero finds no
    /// speech in (faster-whisper's `vad_filter`, as the original server used it).
    #[arg(long = "vad", env = "USE_VOICE_ACTIVITY_DETECTION", default_value_t = false,
          action = clap::ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub vad: bool,
    /// Silero VAD model: a name looked up as MODELS_DIR/ggml-NAME.bin, or a path.
    #[arg(long, env = "VAD_MODEL", default_value = DEFAULT_VAD_MODEL)]
    pub vad_model: String,
    /// Milliseconds of silence that end an utterance (its text is then committed).
    #[arg(long, env = "VAC_MIN_SILENCE_MS", default_value_t = 700,
          value_parser = clap::value_parser!(u32).range(100..=10_000))]
    pub vac_min_silence_ms: u32,
    /// Speech probability (0–1) from which Silero's window counts as speech.
    #[arg(long, env = "VAC_THRESHOLD", default_value_t = 0.5, value_parser = probability)]
    pub vac_threshold: f32,
    /// Milliseconds of audio before the detected start of speech that are transcribed
    /// with it (Silero notices speech a little after it starts).
    #[arg(long, env = "VAC_PADDING_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(0..=2_000))]
    pub vac_padding_ms: u32,
}

impl VoiceArgs {
    /// The flags that reproduce these settings on another reswhis command line.
    pub fn to_args(&self) -> Vec<String> {
        // Destructured without `..`: a new field does not compile until it is passed on.
        let VoiceArgs {
            vac,
            vad,
            vad_model,
            vac_min_silence_ms,
            vac_threshold,
            vac_padding_ms,
        } = self;
        [
            ("--vac", vac.to_string()),
            ("--vad", vad.to_string()),
            ("--vad-model", vad_model.clone()),
            ("--vac-min-silence-ms", vac_min_silence_ms.to_string()),
            ("--vac-threshold", vac_threshold.to_string()),
            ("--vac-padding-ms", vac_padding_ms.to_string()),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_string(), value])
        .collect()
    }

    /// Where the Silero model is.
    pub fn vad_model_path(&self, models_dir: &Path) -> PathBuf {
        resolve_model_path(&self.vad_model, models_dir)
    }

    /// Whether the Silero model must be loaded at start-up.
    pub fn needs_model(&self) -> bool {
        self.vac || self.vad
    }

    /// The controller's settings.
    pub fn gate_config(&self) -> GateConfig {
        let samples = |ms: u32| (ms as usize) * SAMPLE_RATE as usize / 1000;
        GateConfig {
            threshold: self.vac_threshold,
            neg_threshold: (self.vac_threshold - 0.15).max(0.01),
            min_silence: samples(self.vac_min_silence_ms),
            pad_before: samples(self.vac_padding_ms),
            ..GateConfig::default()
        }
    }
}

fn probability(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(p) if (0.05..=0.95).contains(&p) => Ok(p),
        _ => Err(format!(
            "{text:?} is not a probability between 0.05 and 0.95"
        )),
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub model: ModelArgs,
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
    pub fn cores() -> u32 {
        std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
    }

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

    pub fn idle_timeout(&self) -> Option<Duration> {
        optional_duration(self.idle_timeout)
    }

    pub fn max_session_duration(&self) -> Option<Duration> {
        optional_duration(self.max_session_duration)
    }
}

#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    /// A 16 kHz WAV file.
    pub file: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub voice: VoiceArgs,
    /// Feed the audio as fast as possible instead of in real time.
    #[arg(long)]
    pub fast: bool,
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
    /// Replaces --clients.
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
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,
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

fn optional_duration(seconds: f64) -> Option<Duration> {
    (seconds > 0.0).then(|| Duration::from_secs_f64(seconds))
}

fn seconds(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(format!("{text} must be 0 or more seconds"))
    }
}

fn positive_seconds(text: &str) -> Result<f64, String> {
    match seconds(text)? {
        value if value > 0.0 => Ok(value),
        _ => Err(format!("{text} must be more than 0 seconds")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    fn serve_args(flags: &[String]) -> ServeArgs {
        let argv = ["reswhis", "serve"].map(String::from).into_iter();
        match Cli::try_parse_from(argv.chain(flags.iter().cloned())) {
            Ok(Cli {
                command: Some(Command::Serve(args)),
                ..
            }) => args,
            other => panic!("{flags:?}: {other:?}"),
        }
    }

    #[test]
    fn model_and_policy_flags_round_trip() {
        let flags = "--model /m/ggml-base.bin --models-dir /data/modèles --language de \
                     --threads 3 --beam-size 5 --gpu false --full-audio-ctx true \
                     --min-chunk-size 0.35 --buffer-trimming-sec 9.125 --prompt-chars 120 \
                     --trim-context-sec 0.1 --vac false --vad true --vad-model /v.bin \
                     --vac-min-silence-ms 750 --vac-threshold 0.45 --vac-padding-ms 120";
        let given = serve_args(
            &flags
                .split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>(),
        );
        let defaults = serve_args(&[]);
        // Every field is set to something other than its default, so a field that
        // to_args leaves out cannot come back equal by chance.
        let ModelArgs {
            model,
            models_dir,
            language,
            threads,
            beam_size,
            gpu,
            full_audio_ctx,
        } = &given.model;
        assert_ne!(*model, defaults.model.model);
        assert_ne!(*models_dir, defaults.model.models_dir);
        assert_ne!(*language, defaults.model.language);
        assert_ne!(*threads, defaults.model.threads);
        assert_ne!(*beam_size, defaults.model.beam_size);
        assert_ne!(*gpu, defaults.model.gpu);
        assert_ne!(*full_audio_ctx, defaults.model.full_audio_ctx);
        let PolicyArgs {
            min_chunk_size,
            buffer_trimming_sec,
            prompt_chars,
            trim_context_sec,
        } = &given.policy;
        assert_ne!(*min_chunk_size, defaults.policy.min_chunk_size);
        assert_ne!(*buffer_trimming_sec, defaults.policy.buffer_trimming_sec);
        assert_ne!(*prompt_chars, defaults.policy.prompt_chars);
        assert_ne!(*trim_context_sec, defaults.policy.trim_context_sec);
        let VoiceArgs {
            vac,
            vad,
            vad_model,
            vac_min_silence_ms,
            vac_threshold,
            vac_padding_ms,
        } = &given.voice;
        assert_ne!(*vac, defaults.voice.vac);
        assert_ne!(*vad, defaults.voice.vad);
        assert_ne!(*vad_model, defaults.voice.vad_model);
        assert_ne!(*vac_min_silence_ms, defaults.voice.vac_min_silence_ms);
        assert_ne!(*vac_threshold, defaults.voice.vac_threshold);
        assert_ne!(*vac_padding_ms, defaults.voice.vac_padding_ms);

        for args in [given, defaults] {
            let flags = [
                args.model.to_args(),
                args.policy.to_args(),
                args.voice.to_args(),
            ]
            .concat();
            let again = serve_args(&flags);
            assert_eq!(again.model, args.model, "{flags:?}");
            assert_eq!(again.policy, args.policy, "{flags:?}");
            assert_eq!(again.voice, args.voice, "{flags:?}");
        }
    }

    #[test]
    fn flags_parse_and_default() {
        let cli =
            Cli::try_parse_from(["reswhis", "--port", "0", "--min-chunk-size", "0.5"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.serve.port, 0);
        assert_eq!(cli.serve.policy.min_chunk_size, 0.5);
        assert_eq!(cli.serve.policy.buffer_trimming_sec, 6.0);
        let sim = Cli::try_parse_from(["reswhis", "simulate", "a.wav", "--fast"]).unwrap();
        assert!(matches!(sim.command, Some(Command::Simulate(ref s)) if s.fast));
        assert!(Cli::try_parse_from(["reswhis", "--min-chunk-size", "0"]).is_err());
        assert!(Cli::try_parse_from(["reswhis", "--vad", "maybe"]).is_err());
        let vad = Cli::try_parse_from(["reswhis", "--vad", "True"]).unwrap();
        assert!(vad.serve.voice.vad);
        assert!(vad.serve.voice.vac, "VAC is on by default");
        assert!(Cli::try_parse_from(["reswhis", "--vac-threshold", "1.5"]).is_err());
        let vac =
            Cli::try_parse_from(["reswhis", "--vac", "on", "--vac-min-silence-ms", "800"]).unwrap();
        assert!(vac.serve.voice.vac);
        assert_eq!(vac.serve.voice.gate_config().min_silence, 12_800);
        assert_eq!(
            vac.serve.voice.vad_model_path(Path::new("models")),
            PathBuf::from("models/ggml-silero-v6.2.0.bin")
        );
        let path = Cli::try_parse_from(["reswhis", "--model", "/m/ggml-base.en.bin"]).unwrap();
        assert_eq!(path.serve.model.model_label(), "base.en");
        let custom = Cli::try_parse_from(["reswhis", "--model", "my.bin"]).unwrap();
        assert_eq!(custom.serve.model.model_label(), "my");
    }

    #[test]
    fn bench_scenarios_frames_and_load_parse() {
        let bench =
            |flags: &[&str]| match Cli::try_parse_from(["reswhis", "bench"].iter().chain(flags)) {
                Ok(Cli {
                    command: Some(Command::Bench(args)),
                    ..
                }) => Ok(args),
                Ok(other) => panic!("{other:?}"),
                Err(e) => Err(e),
            };
        let defaults = bench(&[]).unwrap();
        assert_eq!(
            (defaults.scenario, defaults.frame_ms, defaults.busy_cores),
            (Scenario::Files, vec![100], 0)
        );
        let args = bench(&[
            "--scenario",
            "pauses",
            "--frame-ms",
            "20,100,1000",
            "--busy-cores",
            "2",
        ])
        .unwrap();
        assert_eq!(args.scenario.as_str(), "pauses");
        assert_eq!(args.frame_ms, [20, 100, 1000]);
        assert_eq!(args.busy_cores, 2);
        assert!(bench(&["--scenario", "speech"]).is_err());
        assert!(bench(&["--frame-ms", "100,5"]).is_err());
        // The spinner of --busy-cores is a subcommand, but not one to offer.
        let spin = Cli::try_parse_from(["reswhis", "spin"]).unwrap();
        assert!(matches!(spin.command, Some(Command::Spin)));
        use clap::CommandFactory;
        let help = Cli::command().render_help().to_string();
        assert!(help.contains("bench") && !help.contains("spin"), "{help}");
    }
}
