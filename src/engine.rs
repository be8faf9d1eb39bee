//! The Whisper engine: one shared model, one decoding state per worker.
//!
//! This is the only module that talks to whisper.cpp (through `whisper-rs`). It turns an
//! audio buffer into timestamped words, which is all the streaming policy needs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
};

use crate::audio::SAMPLE_RATE;
use crate::vad::filter::{FilterConfig, Filtered};
use crate::vad::{Silero, SileroModel};

/// One recognised word, with times in seconds relative to the start of the audio that
/// was transcribed. `text` keeps Whisper's leading space (" hello"), so concatenating
/// words gives the transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct Word {
    pub start: f64,
    pub end: f64,
    pub text: String,
}

/// The result of transcribing one buffer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transcript {
    pub words: Vec<Word>,
    /// End time (seconds) of every segment Whisper produced, in order.
    pub segment_ends: Vec<f64>,
}

impl Transcript {
    pub fn text(&self) -> String {
        self.words.iter().map(|w| w.text.as_str()).collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "model file {path} not found; get it with `./models/fetch.sh {name}` \
         (or pass --model with the path of a ggml Whisper model)"
    )]
    ModelMissing { path: PathBuf, name: String },
    #[error(
        "model file {path} could not be loaded by whisper.cpp (corrupt, truncated or not a \
         ggml Whisper model); delete it and run `./models/fetch.sh {name}` again"
    )]
    ModelInvalid { path: PathBuf, name: String },
    #[error("language {0:?} is not one Whisper knows (use a code such as en, de, fr, or auto)")]
    UnknownLanguage(String),
    #[error("language {language:?} needs a multilingual model, but {model} is English-only")]
    EnglishOnlyModel { language: String, model: String },
    #[error("whisper.cpp failed: {0}")]
    Whisper(#[from] whisper_rs::WhisperError),
}

/// How to decode; the same for every worker.
#[derive(Debug, Clone)]
pub struct DecodeOptions {
    /// A language code, or `None` to detect it.
    pub language: Option<String>,
    /// 1 means greedy decoding.
    pub beam_size: u32,
    pub threads: u32,
    /// Run the encoder on just the audio present instead of the padded 30 s window.
    pub fit_audio_ctx: bool,
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
    /// Silero, when each transcription is VAD-filtered (`--vad`).
    vad_filter: Option<Arc<SileroModel>>,
}

impl Engine {
    /// Loads a ggml model. `name` is only used in error messages.
    pub fn load(
        path: &Path,
        name: &str,
        use_gpu: bool,
        options: DecodeOptions,
    ) -> Result<Engine, EngineError> {
        whisper_rs::install_logging_hooks();
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
        let params = WhisperContextParameters {
            use_gpu,
            ..WhisperContextParameters::default()
        };
        let context = WhisperContext::new_with_params(path, params).map_err(|_| {
            EngineError::ModelInvalid {
                path: path.to_path_buf(),
                name: name.to_string(),
            }
        })?;
        let multilingual = context.is_multilingual();
        if let Some(language) = &options.language {
            if whisper_rs::get_lang_id(language).is_none() {
                return Err(EngineError::UnknownLanguage(language.clone()));
            }
            if !multilingual && language != "en" {
                return Err(EngineError::EnglishOnlyModel {
                    language: language.clone(),
                    model: path.display().to_string(),
                });
            }
        }
        Ok(Engine {
            context: Arc::new(context),
            options,
            model_path: path.to_path_buf(),
            multilingual,
            vad_filter: None,
        })
    }

    /// Filters every transcription with this Silero model (`--vad`).
    pub fn with_vad_filter(mut self, model: Arc<SileroModel>) -> Engine {
        self.vad_filter = Some(model);
        self
    }

    pub fn model_path(&self) -> &Path {
        &self.model_path
    }

    pub fn is_multilingual(&self) -> bool {
        self.multilingual
    }

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
        let Some(silero) = &mut self.vad_filter else {
            return self.transcribe_all(audio, prompt);
        };
        let filtered = Filtered::detect(silero, audio, &FilterConfig::default());
        if filtered.is_empty() {
            return Ok(Transcript::default());
        }
        let mut transcript = self.transcribe_all(&filtered.audio, prompt)?;
        for word in &mut transcript.words {
            word.start = filtered.original_seconds(word.start);
            word.end = filtered.original_seconds(word.end);
        }
        for end in &mut transcript.segment_ends {
            *end = filtered.original_seconds(*end);
        }
        Ok(transcript)
    }

    /// Transcribes all of `audio`.
    fn transcribe_all(&mut self, audio: &[f32], prompt: &str) -> Result<Transcript, EngineError> {
        if audio.is_empty() {
            return Ok(Transcript::default());
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
        params.set_n_threads(self.options.threads as i32);
        params.set_language(self.options.language.as_deref());
        params.set_translate(false);
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
        let duration = audio.len() as f64 / SAMPLE_RATE as f64;
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
        self.state.full(params, audio)?;
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
        Ok(transcript)
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

/// Removes what Whisper writes for sounds that are not speech — `[BLANK_AUDIO]`,
/// `[ Silence ]`, `(upbeat music)`, `*cough*`, `♪` — so that they are never committed as
/// text. Such an annotation is enclosed in brackets, parentheses or asterisks, and may
/// span several words; one left open at the end of the hypothesis runs to its end (the
/// token limit cut it). Words that are only music notes go too.
pub fn drop_annotations(words: &mut Vec<Word>) {
    let mut closer: Option<char> = None;
    words.retain(|word| {
        let mut inside_any = closer.is_some();
        let mut outside_text = false;
        for c in word.text.chars() {
            match closer {
                Some(close) if c == close => {
                    closer = None;
                    inside_any = true;
                }
                Some(_) => {}
                None => match c {
                    '[' => closer = Some(']'),
                    '(' => closer = Some(')'),
                    '*' => closer = Some('*'),
                    '♪' | '♫' | '♬' | '♩' => inside_any = true,
                    c if c.is_alphanumeric() => outside_text = true,
                    _ => {}
                },
            }
            if closer.is_some() {
                inside_any = true;
            }
        }
        // A word keeps its place when it has speech outside any annotation
        // ("word(s)" is rare; "music)" after "(upbeat" is not speech).
        outside_text || !inside_any
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(texts: &[&str]) -> Vec<Word> {
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| Word {
                start: i as f64,
                end: i as f64 + 0.5,
                text: t.to_string(),
            })
            .collect()
    }

    fn kept(texts: &[&str]) -> String {
        let mut w = words(texts);
        drop_annotations(&mut w);
        w.iter().map(|w| w.text.as_str()).collect()
    }

    #[test]
    fn non_speech_annotations_are_dropped() {
        assert_eq!(kept(&[" [BLANK_AUDIO]"]), "");
        assert_eq!(kept(&[" [", " Silence", " ]"]), "");
        assert_eq!(kept(&[" (music)", " Hello", " there."]), " Hello there.");
        assert_eq!(kept(&[" [MUSIC]"]), "");
        assert_eq!(kept(&[" *cough*", " so"]), " so");
        assert_eq!(kept(&[" (upbeat", " music)"]), "");
        assert_eq!(kept(&[" ♪", " ♪"]), "");
        assert_eq!(kept(&[" And", " so", " [", "inaud"]), " And so");
        assert_eq!(
            kept(&[" I", " said", " *", "sigh", "*", " yes"]),
            " I said yes"
        );
    }

    #[test]
    fn speech_with_punctuation_is_kept() {
        let speech = [" Ask", " not,", " what's", " 1-2-3", " done."];
        assert_eq!(kept(&speech), speech.concat());
    }

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
