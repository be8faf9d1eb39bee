//! `GET /info`: what a server says about itself, as one typed document that the server
//! writes and the benchmark (and anyone else) reads back.
//!
//! The original server's keys come first and keep their names (`backend`, `model_size`,
//! `language`, `sampling_rate`, `minimum_chunk_size`, `voice_activity_controller`,
//! `use_voice_activity_detection`); everything under [`Details`] is only given to a
//! client with the API key (or by a server without one), flattened into the same object.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::metrics::Percentiles;

/// The whole `/info` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Info {
    /// Always "whisper.cpp".
    pub backend: String,
    /// The model's short name ("tiny.en").
    pub model_size: String,
    /// The default language (`--language`), or "auto".
    pub language: String,
    /// Samples per second clients must send (16000).
    pub sampling_rate: u32,
    /// `--min-chunk-size`, seconds.
    pub minimum_chunk_size: f64,
    /// `--vac`: the voice activity controller's default.
    pub voice_activity_controller: bool,
    /// `--vad`: the VAD filter.
    pub use_voice_activity_detection: bool,
    /// reswhis's version.
    pub version: String,
    /// Whether `/transcribe` needs the API key.
    pub auth_required: bool,
    /// The languages the model knows.
    #[serde(default)]
    pub languages: Vec<Language>,
    /// Whether `?language=auto` works (multilingual model).
    #[serde(default)]
    pub language_detection: bool,
    /// Whether `?task=translate` works (multilingual model).
    #[serde(default)]
    pub translation: bool,
    /// Only with the API key.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Details>,
}

/// A language the model knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Language {
    /// Its code ("de").
    pub code: String,
    /// Its English name ("german").
    pub name: String,
}

/// What `/info` adds for a client with the API key. Only `workers` is required when it
/// is read back: a server of an older version (without the other fields) still gives
/// its details, with defaults for what it does not tell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Details {
    /// whisper.cpp's version.
    #[serde(default)]
    pub whisper_cpp_version: String,
    /// Worker threads.
    pub workers: usize,
    /// The most threads one Whisper call uses.
    #[serde(default)]
    pub threads_per_worker: u32,
    /// Whether the threads follow the machine's load (no `--threads`).
    #[serde(default)]
    pub threads_adaptive: bool,
    /// Cores other processes kept busy lately, as the server sees them.
    #[serde(default)]
    pub other_processes_cpu_cores: f64,
    /// The time budget of Whisper calls.
    #[serde(default)]
    pub update_budget_sec: Budget,
    /// Whether the GPU is used.
    #[serde(default)]
    pub gpu: bool,
    /// What the model runs on: the GPU's name, or the CPU's.
    #[serde(default)]
    pub device: String,
    /// The type the model's matrices are computed in ("q8_0", "f16"; see `--weights`).
    #[serde(default)]
    pub weights: String,
    /// `--beam-size`.
    #[serde(default)]
    pub beam_size: u32,
    /// `--buffer-trimming-sec`.
    #[serde(default)]
    pub buffer_trimming_sec: f64,
    /// `--trim-context-sec`.
    #[serde(default)]
    pub trim_context_sec: f64,
    /// The Silero model and the controller's settings.
    #[serde(default)]
    pub voice_activity: VoiceActivity,
    /// WebSocket sessions open now.
    #[serde(default)]
    pub active_sessions: usize,
    /// Connections of any kind open now.
    #[serde(default)]
    pub open_connections: usize,
    /// Seconds since the server started.
    #[serde(default)]
    pub uptime_sec: f64,
    /// How to ask for interim results.
    #[serde(default)]
    pub interim_results: String,
    /// The limits in force.
    #[serde(default)]
    pub limits: Limits,
    /// What the server counted.
    #[serde(default)]
    pub stats: Stats,
}

/// `base + per_audio_second × seconds of audio`, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Budget {
    /// Seconds every call may take.
    pub base: f64,
    /// Seconds more per second of audio in the buffer.
    pub per_audio_second: f64,
}

/// The voice activity settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VoiceActivity {
    /// The Silero model loaded ("silero-v6.2.0"), if any.
    pub model: Option<String>,
    /// How a client chooses.
    pub vac_per_connection: String,
    /// `--vac-min-silence-ms`.
    pub vac_min_silence_ms: u32,
    /// `--vac-threshold`.
    pub vac_threshold: f32,
    /// `--vac-padding-ms`.
    pub vac_padding_ms: u32,
}

/// The limits in force.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// `--max-sessions`.
    pub max_sessions: usize,
    /// `--max-connections`.
    pub max_connections: usize,
    /// `--max-message-bytes`.
    pub max_message_bytes: usize,
    /// `--idle-timeout` (0: none).
    pub idle_timeout_sec: f64,
    /// `--max-session-duration` (0: unlimited).
    pub max_session_duration_sec: f64,
    /// `--handshake-timeout`.
    pub handshake_timeout_sec: f64,
}

/// Counters since start, and percentiles of the last calls.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    /// Sessions started.
    pub sessions: u64,
    /// Seconds of audio received.
    pub audio_seconds: f64,
    /// Whisper calls.
    pub updates: u64,
    /// Whisper calls stopped by their time budget.
    pub updates_cut: u64,
    /// Workers inside a call now.
    pub busy_workers: usize,
    /// Wall seconds spent in Whisper calls, all workers together.
    pub transcribe_seconds: f64,
    /// Duration of the last calls.
    pub update_seconds: Percentiles,
    /// Duration of the last calls on at most 10 s of audio.
    pub update_seconds_short_audio: Percentiles,
    /// Time the last streams with new audio waited for a worker.
    pub queue_wait_seconds: Percentiles,
    /// Audio per call.
    pub update_audio_seconds: Percentiles,
    /// From the audio ending a committed piece of text arriving to its sending.
    pub commit_latency_seconds: Percentiles,
    /// Sessions closed, by close code.
    #[serde(deserialize_with = "close_codes")]
    pub closes: BTreeMap<u16, u64>,
    /// CPU seconds of the server process, where the platform tells.
    pub process_cpu_seconds: Option<f64>,
}

/// Reads the `closes` map. Its keys are JSON strings ("1000"), and the details are
/// flattened into `/info`, so serde hands them over as strings that a plain `u16` key
/// refuses — which would silently drop all the details.
fn close_codes<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<u16, u64>, D::Error> {
    let by_text = BTreeMap::<String, u64>::deserialize(deserializer)?;
    by_text
        .into_iter()
        .map(|(code, count)| Ok((code.parse().map_err(serde::de::Error::custom)?, count)))
        .collect()
}

impl Info {
    /// The server process's CPU seconds, when `/info` has the details.
    pub fn process_cpu_seconds(&self) -> Option<f64> {
        self.details.as_ref()?.stats.process_cpu_seconds
    }
}

#[cfg(test)]
impl Info {
    /// A filled-in document for tests, with or without the details.
    pub(crate) fn example(details: bool) -> Info {
        Info {
            backend: "whisper.cpp".into(),
            model_size: "tiny.en".into(),
            language: "en".into(),
            sampling_rate: 16_000,
            minimum_chunk_size: 0.75,
            voice_activity_controller: true,
            use_voice_activity_detection: false,
            version: "0.1.0".into(),
            auth_required: false,
            languages: vec![Language {
                code: "en".into(),
                name: "english".into(),
            }],
            language_detection: false,
            translation: false,
            details: details.then(|| Details {
                whisper_cpp_version: "1.8.3".into(),
                workers: 2,
                threads_per_worker: 2,
                threads_adaptive: true,
                other_processes_cpu_cores: 0.1,
                update_budget_sec: Budget {
                    base: 1.0,
                    per_audio_second: 0.1,
                },
                gpu: false,
                device: "CPU".into(),
                weights: "q8_0".into(),
                beam_size: 1,
                buffer_trimming_sec: 6.0,
                trim_context_sec: 3.0,
                voice_activity: VoiceActivity {
                    model: Some("silero-v6.2.0".into()),
                    vac_per_connection: "?vac=1 or ?vac=0".into(),
                    vac_min_silence_ms: 700,
                    vac_threshold: 0.5,
                    vac_padding_ms: 1000,
                },
                active_sessions: 1,
                open_connections: 2,
                uptime_sec: 3.5,
                interim_results: "opt-in: /transcribe?interim=1".into(),
                limits: Limits {
                    max_sessions: 64,
                    max_connections: 512,
                    max_message_bytes: 1 << 20,
                    idle_timeout_sec: 30.0,
                    max_session_duration_sec: 0.0,
                    handshake_timeout_sec: 10.0,
                },
                stats: Stats {
                    sessions: 3,
                    audio_seconds: 33.0,
                    updates: 40,
                    updates_cut: 0,
                    busy_workers: 0,
                    transcribe_seconds: 9.5,
                    update_seconds: Percentiles::default(),
                    update_seconds_short_audio: Percentiles::default(),
                    queue_wait_seconds: Percentiles::default(),
                    update_audio_seconds: Percentiles::default(),
                    commit_latency_seconds: Percentiles::default(),
                    closes: BTreeMap::from([(1000, 3)]),
                    process_cpu_seconds: Some(12.0),
                },
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_reads_back_with_and_without_details() {
        for details in [false, true] {
            let info = Info::example(details);
            let json = serde_json::to_string(&info).unwrap();
            let back: Info = serde_json::from_str(&json).unwrap();
            assert_eq!(back, info, "{json}");
        }
        let full = serde_json::to_value(Info::example(true)).unwrap();
        // Flat, as the original server's /info was.
        assert_eq!(full["workers"], 2);
        assert_eq!(full["stats"]["closes"]["1000"], 3);
        assert_eq!(Info::example(true).process_cpu_seconds(), Some(12.0));
        assert_eq!(Info::example(false).process_cpu_seconds(), None);
    }

    #[test]
    fn an_older_servers_info_still_reads() {
        // reswhis before voice activity and languages.
        let old = r#"{"backend":"whisper.cpp","model_size":"tiny.en","language":"en",
            "sampling_rate":16000,"minimum_chunk_size":1.0,"voice_activity_controller":false,
            "use_voice_activity_detection":false,"version":"0.1.0","auth_required":false,
            "workers":1,"threads_per_worker":2,"gpu":false,"beam_size":1,
            "stats":{"updates":5,"busy_workers":0,"transcribe_seconds":1.5,
                     "process_cpu_seconds":2.5}}"#;
        let info: Info = serde_json::from_str(old).unwrap();
        let details = info.details.as_ref().expect("details");
        assert_eq!((details.workers, details.threads_per_worker), (1, 2));
        assert_eq!(info.process_cpu_seconds(), Some(2.5));
        assert!(info.languages.is_empty());
        // Without the key: no details.
        let basic: Info =
            serde_json::from_str(&serde_json::to_string(&Info::example(false)).unwrap()).unwrap();
        assert_eq!(basic.details, None);
    }
}
