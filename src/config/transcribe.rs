//! How audio becomes text: which model and how it decodes ([`ModelArgs`]), when words
//! are committed ([`PolicyArgs`]) and which audio is speech ([`VoiceArgs`]). `serve`,
//! `simulate` and `bench` share these flags.

use std::path::{Path, PathBuf};

use clap::builder::BoolishValueParser;
use clap::Args;

use super::{positive_seconds, probability, seconds, DEFAULT_VAD_MODEL};
use crate::audio::SAMPLE_RATE;
use crate::engine::{resolve_model_path, DecodeOptions, Engine, EngineError, Weights};
use crate::policy::PolicyConfig;
use crate::pool::StreamConfig;
use crate::vad::GateConfig;

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
    /// Use the GPU when built with `--features cuda` (or `metal`); false runs on the CPU.
    #[arg(long, env = "USE_GPU", default_value_t = true, action = clap::ArgAction::Set,
          value_parser = BoolishValueParser::new())]
    pub gpu: bool,
    /// Run the encoder on the whole padded 30 s window instead of just the audio present
    /// (slower, marginally more accurate on very short buffers).
    #[arg(long, env = "FULL_AUDIO_CTX", default_value_t = false, action = clap::ArgAction::Set,
          value_parser = BoolishValueParser::new())]
    pub full_audio_ctx: bool,
    /// Weights to compute with: `q8_0` quantises the model's matrices to 8 bits as it
    /// loads (on a CPU 10–25 % faster calls at the same accuracy, measured with
    /// tiny.en), `file` keeps the file's (f16 in the standard files), `auto` is `q8_0`
    /// on a CPU and `file` on a GPU.
    #[arg(long, env = "WEIGHTS", value_enum, default_value_t = Weights::Auto)]
    pub weights: Weights,
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

    /// The model file: the path given, or MODELS_DIR/ggml-NAME.bin.
    pub fn model_path(&self) -> PathBuf {
        resolve_model_path(&self.model_name(), &self.models_dir)
    }

    /// Whether the GPU is asked for and the build has one (`--features cuda` or
    /// `metal`). The engine falls back to the CPU when no GPU is found.
    pub fn use_gpu(&self) -> bool {
        cfg!(any(feature = "cuda", feature = "metal")) && self.gpu
    }

    /// Loads the model with these decoding options.
    pub fn load_engine(&self, options: DecodeOptions) -> Result<Engine, EngineError> {
        Engine::load(
            &self.model_path(),
            &self.model_name(),
            self.use_gpu(),
            self.weights,
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
            weights,
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
            "--weights".to_string(),
            weights.to_string(),
        ]);
        args
    }

    /// Decoding options for calls of `threads` threads (`--threads` wins when set).
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
    /// Seconds of new audio that trigger an update [default: 0.75 with a tiny model,
    /// 1.0 with a larger one]. LocalAgreement commits a word once two updates agree on
    /// it, so words wait about 1.5 times this on average (measured, tiny.en, pauses
    /// scenario, 1 client: 1.0 s gave a mean latency of 1.55 s, 0.75 s 1.18 s, 0.5 s
    /// 1.00 s at 0.386 → 0.60 CPU-s per audio second). With `base`, whose calls take
    /// 0.4–0.65 s on the benchmark machine, 1.0 s gave better text in three of four
    /// languages (Spanish 17.2 → 16.2 %, French 13.8 → 10.7 %, Russian 12.5 → 9.8 %;
    /// Italian 8.8 → 9.1 %) at 15–25 % less CPU and 0.2–0.35 s more latency.
    #[arg(long, env = "MINIMUM_CHUNK_SIZE", value_parser = positive_seconds)]
    pub min_chunk_size: Option<f64>,
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
            ("--min-chunk-size", min_chunk_size.map(|s| s.to_string())),
            (
                "--buffer-trimming-sec",
                Some(buffer_trimming_sec.to_string()),
            ),
            ("--prompt-chars", Some(prompt_chars.to_string())),
            ("--trim-context-sec", Some(trim_context_sec.to_string())),
        ]
        .into_iter()
        .filter_map(|(flag, value)| Some([flag.to_string(), value?]))
        .flatten()
        .collect()
    }

    /// `--min-chunk-size`, or its default for the model (see there).
    pub fn min_chunk_sec(&self, tiny_model: bool) -> f64 {
        self.min_chunk_size
            .unwrap_or(if tiny_model { 0.75 } else { 1.0 })
    }

    /// The pool's settings for each stream of a model (`tiny_model`: see
    /// [`Engine::is_tiny`](crate::engine::Engine::is_tiny)).
    pub fn stream_config(&self, tiny_model: bool, fault_injection: bool) -> StreamConfig {
        StreamConfig {
            min_chunk_sec: self.min_chunk_sec(tiny_model),
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
    /// Measured on the benchmark's 17 evaluation files (tiny.en, `simulate --fast`):
    /// 500 gave a streaming WER of 8.2 % against 8.8 % with 700.
    #[arg(long, env = "VAC_MIN_SILENCE_MS", default_value_t = 500,
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
