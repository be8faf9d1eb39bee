//! What the server takes from its command line, converted once at start: the limits as
//! durations, the sessions' defaults, and the part of `/info` that never changes.

use std::path::PathBuf;
use std::time::Duration;

use crate::audio::SAMPLE_RATE;
use crate::config::ServeArgs;
use crate::engine::Engine;
use crate::info::{self, Info};
use crate::load::ThreadPolicy;
use crate::pool::UpdateBudget;
use crate::session::SessionLimits;
use crate::vad::{GateConfig, SileroModel};

/// The server's settings.
pub(super) struct ServerConfig {
    /// `host:port` to listen on.
    pub bind: String,
    /// Sessions at once.
    pub max_sessions: usize,
    /// Connections at once.
    pub max_connections: usize,
    /// The key clients must present, if any.
    pub api_key: Option<String>,
    /// Serve the web client from here instead of the built-in copy.
    pub static_dir: Option<PathBuf>,
    /// How long a connection may take to send its request head.
    pub handshake_timeout: Duration,
    /// How long sessions get to flush at shutdown.
    pub shutdown_timeout: Duration,
    /// What every session is held to.
    pub session: SessionLimits,
    /// The voice activity controller's default, and its settings.
    pub vac: bool,
    /// How the controller segments speech.
    pub gate: GateConfig,
    /// `/info` at start: [`info::Details`] holds the settings; its counters are filled in
    /// per request.
    pub info: Info,
}

impl ServerConfig {
    /// Converts `args`; the engine, the workers' budget and threads and the Silero model
    /// (if loaded) describe what was started.
    pub fn new(
        args: &ServeArgs,
        engine: &Engine,
        workers: usize,
        budget: UpdateBudget,
        threads: &ThreadPolicy,
        silero: Option<&SileroModel>,
    ) -> ServerConfig {
        let multilingual = engine.is_multilingual();
        let info = Info {
            backend: "whisper.cpp".into(),
            model_size: args.model.model_label(),
            language: args.model.language.clone(),
            sampling_rate: SAMPLE_RATE,
            minimum_chunk_size: args.policy.min_chunk_sec(engine.is_tiny()),
            voice_activity_controller: args.voice.vac,
            use_voice_activity_detection: args.voice.vad,
            version: env!("CARGO_PKG_VERSION").into(),
            auth_required: args.api_key.is_some(),
            languages: engine
                .language_names()
                .into_iter()
                .map(|(code, name)| info::Language {
                    code: code.into(),
                    name: name.into(),
                })
                .collect(),
            language_detection: multilingual,
            translation: multilingual,
            details: Some(info::Details {
                whisper_cpp_version: whisper_rs::get_whisper_version().into(),
                workers,
                threads_per_worker: threads.max_threads(),
                threads_adaptive: threads.adaptive(),
                other_processes_cpu_cores: 0.0,
                update_budget_sec: info::Budget {
                    base: budget.base.as_secs_f64(),
                    per_audio_second: budget.per_audio_second.as_secs_f64(),
                },
                gpu: engine.on_gpu(),
                device: engine.device().into(),
                weights: engine.weights().into(),
                beam_size: args.model.beam_size,
                buffer_trimming_sec: args.policy.buffer_trimming_sec,
                trim_context_sec: args.policy.trim_context_sec,
                voice_activity: info::VoiceActivity {
                    model: silero.map(|m| {
                        let [major, minor, patch] = m.version;
                        format!("silero-v{major}.{minor}.{patch}")
                    }),
                    vac_per_connection: "?vac=1 or ?vac=0".into(),
                    vac_min_silence_ms: args.voice.vac_min_silence_ms,
                    vac_threshold: args.voice.vac_threshold,
                    vac_padding_ms: args.voice.vac_padding_ms,
                },
                active_sessions: 0,
                open_connections: 0,
                uptime_sec: 0.0,
                interim_results: "opt-in: /transcribe?interim=1".into(),
                limits: info::Limits {
                    max_sessions: args.max_sessions,
                    max_connections: args.max_connections,
                    max_message_bytes: args.max_message_bytes,
                    idle_timeout_sec: args.idle_timeout,
                    max_session_duration_sec: args.max_session_duration,
                    handshake_timeout_sec: args.handshake_timeout,
                },
                stats: info::Stats::default(),
            }),
        };
        ServerConfig {
            bind: format!("{}:{}", args.host, args.port),
            max_sessions: args.max_sessions,
            max_connections: args.max_connections,
            api_key: args.api_key.clone(),
            static_dir: args.static_dir.clone(),
            handshake_timeout: Duration::from_secs_f64(args.handshake_timeout),
            shutdown_timeout: Duration::from_secs_f64(args.shutdown_timeout),
            session: SessionLimits {
                max_message_bytes: args.max_message_bytes,
                idle_timeout: args.idle_timeout(),
                max_duration: args.max_session_duration(),
                shutdown_grace: Duration::from_secs_f64(args.shutdown_timeout),
            },
            vac: args.voice.vac,
            gate: args.voice.gate_config(),
            info,
        }
    }

    /// The model's short name.
    pub fn model_name(&self) -> &str {
        &self.info.model_size
    }

    /// Whether the GPU is used.
    pub fn gpu(&self) -> bool {
        self.info.details.as_ref().is_some_and(|d| d.gpu)
    }
}
