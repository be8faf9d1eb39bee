//! The Whisper engine: one shared model, one decoding state per worker.
//!
//! This is the only module that talks to whisper.cpp (through `whisper-rs`). It turns an
//! audio buffer into timestamped words, which is all the streaming policy needs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperState};

mod annotations;
pub mod guards;
mod logging;
mod transcript;
pub mod weights;

pub use annotations::drop_annotations;

use crate::vad::filter::{FilterConfig, Filtered};
use crate::vad::{Silero, SileroModel};
use guards::{Deadline, LoopGuard};
pub use transcript::{Transcript, Word};
pub use weights::Weights;

/// Why a model cannot be loaded or run.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // the fields are named in each variant's doc and message
pub enum EngineError {
    /// No model file where the name or path points.
    #[error(
        "model file {path} not found; get it with `./models/fetch.sh {name}` \
         (or pass --model with the path of a ggml Whisper model)"
    )]
    ModelMissing { path: PathBuf, name: String },
    /// The file exists but whisper.cpp cannot load it.
    #[error(
        "model file {path} could not be loaded by whisper.cpp (corrupt, truncated or not a \
         ggml Whisper model); delete it and run `./models/fetch.sh {name}` again"
    )]
    ModelInvalid { path: PathBuf, name: String },
    /// The language code is not one of Whisper's.
    #[error("language {0:?} is not one Whisper knows (use a code such as en, de, fr, or auto)")]
    UnknownLanguage(String),
    /// A language other than English was asked of an English-only model.
    #[error("language {language:?} needs a multilingual model, but {model} is English-only")]
    EnglishOnlyModel { language: String, model: String },
    /// whisper.cpp reported an error.
    #[error("whisper.cpp failed: {0}")]
    Whisper(#[from] whisper_rs::WhisperError),
}

/// The language one call transcribes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CallLanguage {
    /// The engine's (`--language`).
    #[default]
    Default,
    /// This code.
    Code(String),
    /// Whisper detects it.
    Detect,
}

/// How one call runs.
#[derive(Debug, Clone, Default)]
pub struct CallLimits {
    /// whisper.cpp threads; 0 for the engine's setting.
    pub threads: u32,
    /// Stop the call once it has run this long (see [`guards`]).
    pub budget: Option<Duration>,
    /// Testing only: slow every poll of the budget down by this much.
    pub slow_polls: Option<Duration>,
    /// The language of the speech.
    pub language: CallLanguage,
    /// English text whatever the language spoken (multilingual models only).
    pub translate: bool,
}

/// How to decode; the same for every worker.
#[derive(Debug, Clone)]
pub struct DecodeOptions {
    /// A language code, or `None` to detect it.
    pub language: Option<String>,
    /// 1 means greedy decoding.
    pub beam_size: u32,
    /// Threads whisper.cpp uses for one call.
    pub threads: u32,
    /// Run the encoder on just the audio present instead of the padded 30 s window.
    pub fit_audio_ctx: bool,
}

/// The description of the device whisper.cpp computes on, and whether it is a GPU: with
/// the GPU, the first GPU ggml registered (whisper.cpp's default `gpu_device` 0); else,
/// or when there is none (a CUDA build on a machine without a GPU falls back to the
/// CPU), the CPU.
fn compute_device(use_gpu: bool) -> (String, bool) {
    use whisper_rs::whisper_rs_sys as sys;
    let wanted: &[sys::ggml_backend_dev_type] = if use_gpu {
        &[
            sys::ggml_backend_dev_type_GGML_BACKEND_DEVICE_TYPE_GPU,
            sys::ggml_backend_dev_type_GGML_BACKEND_DEVICE_TYPE_IGPU,
        ]
    } else {
        &[]
    };
    let mut cpu = None;
    // SAFETY: ggml's device registry is built on first use and lives as long as the
    // process; device handles and their descriptions (NUL-terminated) are owned by it.
    unsafe {
        for index in 0..sys::ggml_backend_dev_count() {
            let device = sys::ggml_backend_dev_get(index);
            let kind = sys::ggml_backend_dev_type(device);
            let text = sys::ggml_backend_dev_description(device);
            if device.is_null() || text.is_null() {
                continue;
            }
            let description = std::ffi::CStr::from_ptr(text)
                .to_string_lossy()
                .trim()
                .to_string();
            if wanted.contains(&kind) {
                return (description, true);
            }
            if kind == sys::ggml_backend_dev_type_GGML_BACKEND_DEVICE_TYPE_CPU && cpu.is_none() {
                cpu = Some(description);
            }
        }
    }
    let cpu = cpu
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "CPU".into());
    (cpu, false)
}

/// Resolves `--model`: a path to a file, or a name such as `tiny.en` looked up as
/// `<models_dir>/ggml-<name>.bin`.
pub fn resolve_model_path(model: &str, models_dir: &Path) -> PathBuf {
    let as_path = Path::new(model);
    if model.ends_with(".bin") || as_path.components().count() > 1 || as_path.is_file() {
        as_path.to_path_buf()
    } else {
        models_dir.join(format!("ggml-{model}.bin"))
    }
}

/// The loaded model, shared by all workers.
pub struct Engine {
    context: Arc<WhisperContext>,
    options: DecodeOptions,
    model_path: PathBuf,
    multilingual: bool,
    /// What the model runs on, as ggml describes it.
    device: String,
    /// Whether that is a GPU.
    on_gpu: bool,
    /// The type the model's matrices are in ("q8_0", "f16").
    weights: String,
    /// Silero, when each transcription is VAD-filtered (`--vad`).
    vad_filter: Option<Arc<SileroModel>>,
}

impl Engine {
    /// Loads a ggml model. `name` is only used in error messages.
    pub fn load(
        path: &Path,
        name: &str,
        use_gpu: bool,
        weights: Weights,
        options: DecodeOptions,
    ) -> Result<Engine, EngineError> {
        logging::install();
        if !path.is_file() {
            return Err(EngineError::ModelMissing {
                path: path.to_path_buf(),
                name: name.to_string(),
            });
        }
        // Word times come from whisper.cpp's timestamp tokens, not its DTW alignment:
        // in whisper.cpp 1.8.3 DTW aborts the process (WHISPER_ASSERT in its median
        // filter) when a decoding window advances by less than ~0.16 s, which audio
        // from any client can cause. Measured on the benchmark files, DTW gained 0.3
        // WER points and cost 25% more CPU.
        let (device, on_gpu) = compute_device(use_gpu);
        let (context, weights) =
            weights::load(path, use_gpu, weights, on_gpu).ok_or_else(|| {
                EngineError::ModelInvalid {
                    path: path.to_path_buf(),
                    name: name.to_string(),
                }
            })?;
        let multilingual = context.is_multilingual();
        if let Some(language) = &options.language {
            check_language(language, multilingual, &path.display().to_string())?;
        }
        Ok(Engine {
            context: Arc::new(context),
            options,
            model_path: path.to_path_buf(),
            multilingual,
            device,
            on_gpu,
            weights,
            vad_filter: None,
        })
    }

    /// The device the model runs on: the GPU's name ("NVIDIA H100 80GB HBM3") when the
    /// GPU is used, else the CPU's ("AMD EPYC 7B13"), as ggml's device registry gives it.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// The type the model's matrices are computed in: "q8_0" when quantised as it
    /// loaded (see [`weights`]), else the file's ("f16" for the standard files).
    pub fn weights(&self) -> &str {
        &self.weights
    }

    /// Whether the model runs on a GPU (asked for, built with it, and one was found).
    pub fn on_gpu(&self) -> bool {
        self.on_gpu
    }

    /// Filters every transcription with this Silero model (`--vad`).
    pub fn with_vad_filter(mut self, model: Arc<SileroModel>) -> Engine {
        self.vad_filter = Some(model);
        self
    }

    /// The model file loaded.
    pub fn model_path(&self) -> &Path {
        &self.model_path
    }

    /// The language codes the model knows ("en" alone for an English-only model).
    pub fn languages(&self) -> Vec<&'static str> {
        self.language_names()
            .into_iter()
            .map(|(code, _)| code)
            .collect()
    }

    /// The languages the model knows: (code, English name), e.g. ("de", "german").
    pub fn language_names(&self) -> Vec<(&'static str, &'static str)> {
        let count = if self.multilingual {
            language_count(&self.context)
        } else {
            1
        };
        (0..count)
            .filter_map(|id| {
                Some((
                    whisper_rs::get_lang_str(id)?,
                    whisper_rs::get_lang_str_full(id)?,
                ))
            })
            .collect()
    }

    /// Whether `language` (a code) can be transcribed with this model.
    pub fn check_language(&self, language: &str) -> Result<(), EngineError> {
        check_language(
            language,
            self.multilingual,
            &self.model_path.display().to_string(),
        )?;
        if !self.languages().contains(&language) {
            return Err(EngineError::UnknownLanguage(language.to_string()));
        }
        Ok(())
    }

    /// Whether the model is multilingual (can detect languages and translate).
    pub fn is_multilingual(&self) -> bool {
        self.multilingual
    }

    /// Whether the model is a tiny one (an encoder of 4 layers): the one model whose
    /// calls are short enough on a CPU for the shortest default update interval.
    pub fn is_tiny(&self) -> bool {
        self.context.model_n_audio_layer() <= 4
    }

    /// The decoding options every call starts from.
    pub fn options(&self) -> &DecodeOptions {
        &self.options
    }

    /// A decoder with its own state; each worker owns one.
    pub fn transcriber(&self) -> Result<Transcriber, EngineError> {
        let state = self.context.create_state()?;
        Ok(Transcriber {
            context: Arc::clone(&self.context),
            state,
            options: self.options.clone(),
            vad_filter: self.vad_filter.clone().map(Silero::new),
        })
    }
}

/// One decoding state (a few tens of MB for tiny). Not shared between threads.
pub struct Transcriber {
    context: Arc<WhisperContext>,
    state: WhisperState,
    options: DecodeOptions,
    vad_filter: Option<Silero>,
}

/// Languages a multilingual model has tokens for: its vocabulary is 51765 text and
/// special tokens, one more task token, then one per language (99 before large-v3,
/// 100 since).
fn language_count(context: &WhisperContext) -> i32 {
    (context.n_vocab() - 51_765 - 1).clamp(0, whisper_rs::get_lang_max_id() + 1)
}

fn check_language(language: &str, multilingual: bool, model: &str) -> Result<(), EngineError> {
    if whisper_rs::get_lang_id(language).is_none() {
        return Err(EngineError::UnknownLanguage(language.to_string()));
    }
    if !multilingual && language != "en" {
        return Err(EngineError::EnglishOnlyModel {
            language: language.to_string(),
            model: model.to_string(),
        });
    }
    Ok(())
}

/// whisper.cpp's return code when it could not allocate a state's KV cache; it has then
/// freed the state.
const KV_CACHE_FAILED: i32 = -7;

/// Segments above this no-speech probability are dropped.
const NO_SPEECH_THRESHOLD: f32 = 0.9;

/// A tight cap on tokens per second of audio stops the loops ("and so and so and so …")
/// that Whisper falls into on short or cut-off audio; real speech stays far below it.
const MAX_TOKENS_PER_SECOND: f64 = 6.0;

/// Encoder frames per second of audio (1500 frames for the 30 s window).
const AUDIO_CTX_PER_SECOND: f64 = 50.0;
/// Encoder window of every Whisper model, in frames.
const FULL_AUDIO_CTX: i32 = 1500;

impl Transcriber {
    /// Transcribes `audio` (16 kHz mono, -1..1), conditioned on `prompt` (the text that
    /// came before it).
    pub fn transcribe(&mut self, audio: &[f32], prompt: &str) -> Result<Transcript, EngineError> {
        let limits = CallLimits::default();
        let transcript = self.transcribe_within(audio, prompt, &limits)?;
        Ok(transcript.expect("a call without a budget is never cut"))
    }

    /// Like [`Transcriber::transcribe`], within `limits`; `None` when the call ran out
    /// of its time budget (the state stays usable).
    pub fn transcribe_within(
        &mut self,
        audio: &[f32],
        prompt: &str,
        limits: &CallLimits,
    ) -> Result<Option<Transcript>, EngineError> {
        let Some(silero) = &mut self.vad_filter else {
            return self.transcribe_all(audio, prompt, limits);
        };
        let filtered = Filtered::detect(silero, audio, &FilterConfig::default());
        if filtered.is_empty() {
            return Ok(Some(Transcript::default()));
        }
        let Some(mut transcript) = self.transcribe_all(&filtered.audio, prompt, limits)? else {
            return Ok(None);
        };
        for word in &mut transcript.words {
            word.start = filtered.original_seconds(word.start);
            word.end = filtered.original_seconds(word.end);
        }
        for end in &mut transcript.segment_ends {
            *end = filtered.original_seconds(*end);
        }
        Ok(Some(transcript))
    }

    /// Transcribes all of `audio`.
    fn transcribe_all(
        &mut self,
        audio: &[f32],
        prompt: &str,
        limits: &CallLimits,
    ) -> Result<Option<Transcript>, EngineError> {
        if audio.is_empty() {
            return Ok(Some(Transcript::default()));
        }
        let strategy = if self.options.beam_size > 1 {
            SamplingStrategy::BeamSearch {
                beam_size: self.options.beam_size as i32,
                patience: -1.0,
            }
        } else {
            SamplingStrategy::Greedy { best_of: 1 }
        };
        let mut params = FullParams::new(strategy);
        let threads = match limits.threads {
            0 => self.options.threads,
            n => n,
        };
        params.set_n_threads(threads as i32);
        let language = match &limits.language {
            CallLanguage::Default => self.options.language.as_deref(),
            CallLanguage::Code(code) => Some(code.as_str()),
            CallLanguage::Detect => None,
        };
        params.set_language(language);
        params.set_translate(limits.translate);
        params.set_no_context(true);
        params.set_token_timestamps(true);
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        params.set_suppress_blank(true);
        // Non-speech tokens ("[", "(", "♪", "*", …) are not decoded at all; the
        // annotations they would have opened are dropped by `drop_annotations` when
        // whisper.cpp spells them with other tokens.
        params.set_suppress_nst(true);
        // Temperature fallback re-decodes a window up to five times; in streaming the next
        // update sees the audio again anyway, so one pass is the better trade.
        params.set_temperature_inc(0.0);
        let duration = crate::audio::seconds(audio.len());
        if self.options.fit_audio_ctx && duration < 30.0 {
            // whisper.cpp needs a little slack past the audio for its timestamp tokens.
            let frames = ((duration + 1.0) * AUDIO_CTX_PER_SECOND).ceil() as i32;
            params.set_audio_ctx(frames.clamp(64, FULL_AUDIO_CTX));
        }
        params.set_max_tokens((duration * MAX_TOKENS_PER_SECOND) as i32 + 16);
        let prompt_tokens = if prompt.trim().is_empty() {
            Vec::new()
        } else {
            self.context.tokenize(prompt, 224).unwrap_or_default()
        };
        if !prompt_tokens.is_empty() {
            params.set_tokens(&prompt_tokens);
        }
        let loops = LoopGuard::new(self.context.token_eot(), self.context.n_vocab() as usize);
        loops.install(&mut params);
        let deadline = limits
            .budget
            .map(|budget| Deadline::new(budget, limits.slow_polls));
        if let Some(deadline) = &deadline {
            deadline.install(&mut params);
        }
        match self.state.full(params, audio) {
            Ok(()) => {}
            Err(_) if deadline.as_ref().is_some_and(Deadline::expired) => return Ok(None),
            Err(whisper_rs::WhisperError::GenericError(KV_CACHE_FAILED)) => {
                // whisper.cpp freed the state itself: replace it without dropping it.
                let fresh = self.context.create_state()?;
                std::mem::forget(std::mem::replace(&mut self.state, fresh));
                return Err(whisper_rs::WhisperError::GenericError(KV_CACHE_FAILED).into());
            }
            Err(e) => return Err(e.into()),
        }
        if loops.fired() {
            log::debug!("a decoding loop was stopped");
        }
        let mut transcript = self.collect_words();
        drop_annotations(&mut transcript.words);
        // Times can overshoot the audio a little (timestamp tokens, the encoder's slack).
        for word in &mut transcript.words {
            word.end = word.end.min(duration);
            word.start = word.start.min(word.end);
        }
        for end in &mut transcript.segment_ends {
            *end = end.min(duration);
        }
        Ok(Some(transcript))
    }

    /// The language of the audio the last call transcribed, with its probability, as
    /// Whisper's language token sees it (an extra encoder pass and one decoder step).
    pub fn detect_language(&mut self, threads: u32) -> Result<(String, f32), EngineError> {
        let threads = if threads == 0 {
            self.options.threads
        } else {
            threads
        };
        let (_, probabilities) = self.state.lang_detect(0, threads as usize)?;
        // whisper.cpp scores all 100 languages it knows; a model with fewer has no
        // token for the last ones (their scores are other tokens').
        let known = language_count(&self.context) as usize;
        let (id, probability) = probabilities
            .iter()
            .take(known)
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(id, p)| (id as i32, *p))
            .unwrap_or((0, 0.0));
        let code = whisper_rs::get_lang_str(id).unwrap_or("en").to_string();
        Ok((code, probability))
    }

    /// Groups tokens into words: a token whose text starts with a space begins a word;
    /// others (word pieces, punctuation) extend the current one.
    fn collect_words(&self) -> Transcript {
        let eot = self.context.token_eot();
        let mut transcript = Transcript::default();
        for segment in self.state.as_iter() {
            // As whisper_streaming does: a segment Whisper itself thinks is not speech
            // is noise made into words ("Thank you.", loops over silence).
            if segment.no_speech_probability() > NO_SPEECH_THRESHOLD {
                log::trace!(
                    "dropped a non-speech segment ({:.2}): {:?}",
                    segment.no_speech_probability(),
                    segment.to_str_lossy().unwrap_or_default()
                );
                continue;
            }
            let mut current: Option<(f64, f64, Vec<u8>)> = None;
            for index in 0..segment.n_tokens() {
                let Some(token) = segment.get_token(index) else {
                    continue;
                };
                if token.token_id() >= eot {
                    continue; // special and timestamp tokens
                }
                let Ok(bytes) = token.to_bytes() else {
                    continue;
                };
                let data = token.token_data();
                let (t0, t1) = (data.t0 as f64 / 100.0, data.t1 as f64 / 100.0);
                let starts_word = bytes.first() == Some(&b' ');
                match &mut current {
                    Some((_, end, text)) if !starts_word => {
                        text.extend_from_slice(bytes);
                        *end = end.max(t1);
                    }
                    _ => {
                        if let Some(word) = current.take() {
                            push_word(&mut transcript.words, word);
                        }
                        current = Some((t0, t1.max(t0), bytes.to_vec()));
                    }
                }
            }
            if let Some(word) = current.take() {
                push_word(&mut transcript.words, word);
            }
            transcript
                .segment_ends
                .push(segment.end_timestamp() as f64 / 100.0);
        }
        transcript
    }
}

fn push_word(words: &mut Vec<Word>, (start, end, bytes): (f64, f64, Vec<u8>)) {
    let text = String::from_utf8_lossy(&bytes).into_owned();
    if text.trim().is_empty() {
        return;
    }
    words.push(Word { start, end, text });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_resolve_into_the_models_dir() {
        let dir = Path::new("models");
        assert_eq!(
            resolve_model_path("tiny.en", dir),
            PathBuf::from("models/ggml-tiny.en.bin")
        );
        assert_eq!(
            resolve_model_path("/opt/w/ggml-base.bin", dir),
            PathBuf::from("/opt/w/ggml-base.bin")
        );
        assert_eq!(
            resolve_model_path("custom.bin", dir),
            PathBuf::from("custom.bin")
        );
    }
}
