//! The streaming policy: LocalAgreement-2, as in whisper_streaming's `OnlineASRProcessor`.
//!
//! The session's audio since the last trim is transcribed again on every update. A word
//! is committed once two consecutive transcriptions agree on it (the longest common
//! prefix of the last two hypotheses). Committed text is final. Once the buffer grows
//! past the trimming length, committed audio is cut off its front, all but a few seconds
//! kept as context; the committed text before the buffer can be given to Whisper as a
//! prompt (off by default).
//!
//! - `agreement`: which words two hypotheses agree on, and which of them were heard
//!   (and committed) before.
//! - `reheard`: committed text Whisper hears again at the start of the next pass.
//! - `repetition`: Whisper's decoding loops, cut before they can be agreed on.
//! - `padding`: the times of words Whisper placed in an utterance's padding.
//! - `silence`: pauses in a stream without the voice activity controller.
//! - this module: the audio buffer, when it is transcribed and trimmed, and utterance
//!   ends (the voice activity controller's pieces).
//!
//! Invariants: committed text is never taken back; committed word times never go
//! backwards; the buffer never holds more than [`PolicyConfig::max_buffer_sec`] of audio.

mod agreement;
mod padding;
mod reheard;
mod repetition;
mod silence;

pub use agreement::HypothesisBuffer;
use padding::PaddingMap;
pub use padding::ONSET_LAG_SEC;

use crate::audio::SAMPLE_RATE;
use crate::engine::{Transcript, Word};

/// Tuning of the policy.
#[derive(Debug, Clone)]
pub struct PolicyConfig {
    /// Trim the buffer once it holds more than this many seconds.
    pub buffer_trimming_sec: f64,
    /// Never let the buffer grow past this (Whisper sees at most 30 s at once): beyond
    /// it, the current hypothesis is committed and the buffer cut.
    pub max_buffer_sec: f64,
    /// Characters of committed text given to Whisper as a prompt.
    pub prompt_chars: usize,
    /// Seconds of committed audio kept at the front of the buffer when it is trimmed.
    pub context_sec: f64,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            buffer_trimming_sec: 6.0,
            max_buffer_sec: 28.0,
            prompt_chars: 0,
            context_sec: 3.0,
        }
    }
}

/// A word with times in seconds from the start of the stream.
pub type TimedWord = Word;

/// A piece of newly committed text.
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    /// Start of its first word, seconds on the stream's clock.
    pub start: f64,
    /// End of its last word.
    pub end: f64,
    /// The words' text, concatenated (leading space kept).
    pub text: String,
    /// The words, in order, with their times (never going backwards).
    pub words: Vec<TimedWord>,
}

impl Commit {
    fn from_words(words: &[TimedWord]) -> Option<Commit> {
        let (first, last) = (words.first()?, words.last()?);
        Some(Commit {
            start: first.start,
            end: last.end,
            text: words.iter().map(|w| w.text.as_str()).collect(),
            words: words.to_vec(),
        })
    }
}

/// A run of contiguous audio on the stream's clock, as a stream hands it over.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Piece {
    /// Stream index (in samples) of the first sample.
    pub at: u64,
    /// The samples, -1.0..1.0.
    pub audio: Vec<f32>,
    /// How many of its samples are speech (the rest: pauses inside an utterance).
    pub voiced: usize,
    /// The utterance ends with this piece: everything pending is committed after it.
    pub ends_utterance: bool,
    /// When an utterance starts with this piece: the stream index where the voice
    /// activity controller heard speech begin (the audio before it is padding).
    pub onset: Option<u64>,
}

/// What one [`OnlineProcessor::update`] did.
#[derive(Debug, Default, PartialEq)]
pub struct UpdateOutcome {
    /// Newly committed text, in order.
    pub commits: Vec<Commit>,
    /// Whisper calls made.
    pub transcriptions: usize,
    /// Whisper calls that ran out of time (their audio is transcribed next time).
    pub cuts: usize,
}

/// What one transcription of the buffer did.
#[derive(Debug, PartialEq)]
pub enum Pass {
    /// Whisper heard the buffer; this became final.
    Heard(Option<Commit>),
    /// The call ran out of time: nothing changed, the audio stays for the next one.
    Cut,
}

impl Pass {
    /// The committed text, if any.
    pub fn commit(self) -> Option<Commit> {
        match self {
            Pass::Heard(commit) => commit,
            Pass::Cut => None,
        }
    }
}

/// Tries of the last pass of an utterance or stream. On a long buffer, with the budget
/// doubled after each cut (up to 16 times), five tries give a call 31 times its budget
/// in all: `base` on a 29 s buffer (whole French clip sent at once) took 5.8 s against a
/// first budget of 4 s on a quiet machine, and its text was lost with one try; while a
/// build ran beside it, three tries (7 times) still lost it. On a short buffer the
/// budget stays the same: the tries outlast a moment of contention.
pub const FINAL_TRIES: usize = 5;

/// An utterance that starts at most this long after the audio of the one before
/// (pause beyond the voice activity controller's padding) is transcribed with the end of
/// the one before still in the buffer, the gap filled with silence. Whisper hears a short
/// utterance alone badly: jfk.wav's "ask not", after "my fellow Americans" and a 1.3 s
/// pause, came out as "S-0" when heard alone and as "ask not" with the context. After a
/// longer pause the context costs more than it gives: with 1 s, the benchmark's pauses
/// stream (pauses of 2–8 s) got phrases twice at the seams ("left. left.") and its WER
/// went from 9.4 % to 11.4 %.
pub const MAX_CONTEXT_GAP_SEC: f64 = 0.5;

/// Speech after a new utterance's start from which the context before it is dropped if
/// Whisper heard nothing new: with the end of the utterance before still in the buffer,
/// Whisper sometimes transcribes that end again and stops there. A quiet Spanish reader
/// (MLS, after the Asterisk prompt "… de número."; `bench/lang-audio/es/es-long.wav`)
/// got no text for a 14 s utterance that way. Shorter utterances, where the context
/// helps most (see [`MAX_CONTEXT_GAP_SEC`]), keep it.
pub const CONTEXT_RETRY_SPEECH_SEC: f64 = 2.0;

/// One stream's state: the audio buffer and the agreement between hypotheses.
#[derive(Debug)]
pub struct OnlineProcessor {
    config: PolicyConfig,
    /// Audio not yet trimmed away; `audio[0]` has stream index `buffer_start`. Kept in
    /// samples, not seconds: the buffer is emptied at every utterance's end, and a sum
    /// of seconds could leave a sample behind (which then stretched the next
    /// utterance's buffer over the silence before it).
    audio: Vec<f32>,
    buffer_start: u64,
    hypotheses: HypothesisBuffer,
    /// Everything committed so far (kept for the prompt; trimmed to what it needs).
    committed: Vec<TimedWord>,
    /// Total audio received, in samples: the stream index of the next sample.
    received: u64,
    /// Samples inserted since the last transcription.
    unprocessed: usize,
    /// Of those, samples of speech.
    unprocessed_voiced: usize,
    /// Where the current utterance starts (stream index) while the end of the one
    /// before is still in the buffer as context, and how much speech it has had.
    utterance: Option<(u64, usize)>,
    /// An utterance ended and the next has not started yet.
    between_utterances: bool,
    /// The current utterance's first sample and where its speech begins (stream
    /// indices), when the voice activity controller said so; without it, where the
    /// silence heard by the last pass that heard nothing new begins and ends.
    onset: Option<(u64, u64)>,
    /// How the last hypothesis's words in the padding are retimed for the client.
    padding_map: Option<PaddingMap>,
    /// End of the last word sent to the client.
    output_end: f64,
    /// The stream comes through the voice activity controller (it marked an onset or
    /// an utterance's end); otherwise the policy finds pauses itself (see [`silence`]).
    voice_controlled: bool,
}

impl OnlineProcessor {
    /// An empty stream.
    pub fn new(config: PolicyConfig) -> Self {
        OnlineProcessor {
            config,
            audio: Vec::new(),
            buffer_start: 0,
            hypotheses: HypothesisBuffer::default(),
            committed: Vec::new(),
            received: 0,
            unprocessed: 0,
            unprocessed_voiced: 0,
            utterance: None,
            between_utterances: false,
            onset: None,
            padding_map: None,
            output_end: 0.0,
            voice_controlled: false,
        }
    }

    /// Appends audio that follows the last sample received (all of it speech).
    pub fn insert_audio(&mut self, samples: &[f32]) {
        self.insert(samples, samples.len());
    }

    fn insert(&mut self, samples: &[f32], voiced: usize) {
        self.audio.extend_from_slice(samples);
        self.received += samples.len() as u64;
        self.unprocessed += samples.len();
        self.unprocessed_voiced += voiced.min(samples.len());
        if let Some((_, speech)) = &mut self.utterance {
            *speech += voiced.min(samples.len());
        }
    }

    /// Appends audio whose first sample has stream index `at`. Audio left out before it
    /// (silence the voice activity controller did not forward) becomes silence in the
    /// buffer when the gap is short, so the buffer's times stay the stream's and the end
    /// of the last utterance stays as context; after a longer gap the buffer starts
    /// afresh at `at`.
    pub fn insert_audio_at(&mut self, at: u64, samples: &[f32], voiced: usize) {
        if at > self.received {
            let gap = at - self.received;
            if self.audio.is_empty() || gap > crate::audio::samples(MAX_CONTEXT_GAP_SEC) as u64 {
                self.cut_samples(self.audio.len());
                self.buffer_start = at;
                self.received = at;
            } else {
                self.insert(&vec![0.0; gap as usize], 0);
            }
        }
        if std::mem::take(&mut self.between_utterances) && !self.audio.is_empty() {
            // The voice activity controller's padding may cover the whole pause.
            self.utterance = Some((at.max(self.buffer_start), 0));
        }
        // Audio the buffer already has (never sent twice by the session) is dropped.
        let overlap = (self.received.saturating_sub(at) as usize).min(samples.len());
        self.insert(&samples[overlap..], voiced.saturating_sub(overlap));
    }

    /// Whether speech arrived since the last transcription: a pause (or the silence
    /// that ends an utterance) alone is not worth a Whisper call, since the hypothesis
    /// already covers everything said.
    pub fn has_unprocessed_speech(&self) -> bool {
        self.unprocessed_voiced > 0
    }

    /// Samples that arrived since the last transcription.
    pub fn unprocessed_samples(&self) -> usize {
        self.unprocessed
    }

    /// Stream time of the buffer's first sample, in seconds.
    fn buffer_offset(&self) -> f64 {
        self.buffer_start as f64 / SAMPLE_RATE as f64
    }

    /// Seconds of audio in the buffer.
    pub fn buffer_seconds(&self) -> f64 {
        crate::audio::seconds(self.audio.len())
    }

    /// Seconds of audio received since the stream began.
    pub fn received_seconds(&self) -> f64 {
        self.received as f64 / SAMPLE_RATE as f64
    }

    /// The uncommitted hypothesis as text.
    pub fn pending_text(&self) -> String {
        self.hypotheses
            .pending()
            .iter()
            .map(|w| w.text.as_str())
            .collect()
    }

    /// Up to `prompt_chars` of committed text that lies before the buffer.
    fn prompt(&self) -> String {
        let before_buffer = self
            .committed
            .iter()
            .rposition(|w| w.end <= self.buffer_offset())
            .map_or(0, |i| i + 1);
        let mut chars = 0;
        let mut start = before_buffer;
        while start > 0 && chars < self.config.prompt_chars {
            start -= 1;
            chars += self.committed[start].text.len();
        }
        self.committed[start..before_buffer]
            .iter()
            .map(|w| w.text.as_str())
            .collect()
    }

    /// Takes a stream's new audio and runs what it calls for: each utterance that ended
    /// is transcribed (unless nothing arrived since the last time) and committed in
    /// full; so is everything at the end of the stream; otherwise the buffer is
    /// transcribed once at least `min_samples` arrived since the last time.
    /// `transcribe` returns `None` when its call ran out of time: a regular update then
    /// changes nothing (the next one covers the audio), and an utterance's last update
    /// commits the hypothesis heard before.
    pub fn update<E>(
        &mut self,
        pieces: Vec<Piece>,
        end_of_stream: bool,
        min_samples: usize,
        mut transcribe: impl FnMut(&[f32], &str) -> Result<Option<Transcript>, E>,
    ) -> Result<UpdateOutcome, E> {
        let mut outcome = UpdateOutcome::default();
        for piece in pieces {
            self.voice_controlled |= piece.onset.is_some() || piece.ends_utterance;
            self.insert_audio_at(piece.at, &piece.audio, piece.voiced);
            if let Some(onset) = piece.onset {
                self.onset = Some((piece.at.max(self.buffer_start), onset));
                // The padding before the onset is not new speech: a pass over it and the
                // 128 ms that confirmed the onset hears nothing worth agreeing on (tiny.en
                // answered "Thank you. Thank you." to the benchmark's pauses stream).
                self.unprocessed =
                    (self.received.saturating_sub(onset) as usize).min(self.unprocessed);
            }
            if piece.ends_utterance {
                self.finalize(&mut transcribe, &mut outcome)?;
            }
        }
        if end_of_stream {
            self.finalize(&mut transcribe, &mut outcome)?;
        } else if self.unprocessed >= min_samples.max(1) && self.has_unprocessed_speech() {
            self.process_into(&mut transcribe, &mut outcome)?;
        }
        Ok(outcome)
    }

    /// The last pass of an utterance (or stream) has no next update to cover its audio:
    /// a cut one is tried again, up to [`FINAL_TRIES`] times in all (on a long buffer
    /// the pool doubles a stream's time budget after each cut), before the text heard
    /// by the previous pass is committed.
    fn finalize<E>(
        &mut self,
        transcribe: &mut impl FnMut(&[f32], &str) -> Result<Option<Transcript>, E>,
        outcome: &mut UpdateOutcome,
    ) -> Result<(), E> {
        for _ in 0..FINAL_TRIES {
            if !self.has_unprocessed_speech() {
                break;
            }
            self.process_into(transcribe, outcome)?;
        }
        outcome.commits.extend(self.finish());
        Ok(())
    }

    fn process_into<E>(
        &mut self,
        transcribe: &mut impl FnMut(&[f32], &str) -> Result<Option<Transcript>, E>,
        outcome: &mut UpdateOutcome,
    ) -> Result<(), E> {
        let mut calls = 0;
        let pass = self.process(|audio, prompt| {
            calls += 1;
            transcribe(audio, prompt)
        });
        outcome.transcriptions += calls;
        match pass? {
            Pass::Heard(commit) => outcome.commits.extend(commit),
            Pass::Cut => outcome.cuts += 1,
        }
        Ok(())
    }

    /// Transcribes the whole buffer and returns what became final. `transcribe` is the
    /// engine (audio, prompt) → words relative to the audio; it is called a second time
    /// when the context before the utterance hid it (see [`CONTEXT_RETRY_SPEECH_SEC`]).
    pub fn process<E>(
        &mut self,
        mut transcribe: impl FnMut(&[f32], &str) -> Result<Option<Transcript>, E>,
    ) -> Result<Pass, E> {
        if self.audio.is_empty() {
            return Ok(Pass::Heard(None));
        }
        let prompt = self.prompt();
        let Some(mut transcript) = transcribe(&self.audio, &prompt)? else {
            return Ok(Pass::Cut);
        };
        if let Some(start) = self.context_hid_utterance(&transcript) {
            log::debug!(
                "nothing heard after the context; transcribing the utterance alone from {:.2} s",
                start as f64 / SAMPLE_RATE as f64
            );
            self.cut_samples((start - self.buffer_start) as usize);
            self.utterance = None;
            let prompt = self.prompt();
            let Some(alone) = transcribe(&self.audio, &prompt)? else {
                return Ok(Pass::Cut);
            };
            transcript = alone;
        }
        self.unprocessed = 0;
        self.unprocessed_voiced = 0;
        let offset = self.buffer_offset();
        log::trace!("prompt: {prompt:?}");
        log::trace!(
            "hypothesis at {offset:.2} s: {:?}",
            transcript
                .words
                .iter()
                .map(|w| format!("{}@{:.2}", w.text, w.start + offset))
                .collect::<Vec<_>>()
        );
        let mut hypothesis: Vec<Word> = transcript
            .words
            .iter()
            .map(|w| Word {
                start: w.start + offset,
                end: w.end + offset,
                text: w.text.clone(),
            })
            .collect();
        repetition::truncate_repeats_past(&mut hypothesis, offset + self.buffer_seconds());
        self.padding_map = self
            .onset
            .and_then(|(start, onset)| PaddingMap::new(start, onset, &hypothesis));
        let mut newly = self.hypotheses.agree(hypothesis);
        self.committed.extend(newly.iter().cloned());
        if !self.voice_controlled && newly.is_empty() && self.hypotheses.pending().is_empty() {
            self.heard_silence();
        }

        if self.buffer_seconds() > self.config.buffer_trimming_sec {
            if transcript.words.is_empty() && self.hypotheses.pending().is_empty() {
                // Nothing said in the whole buffer (silence, noise): keep just its end,
                // or a stream of silence re-encodes up to 28 s on every update.
                let end = self.buffer_offset() + self.buffer_seconds();
                self.cut_at(end - self.config.context_sec);
            } else {
                self.trim_keeping_context(&transcript.segment_ends);
            }
        }
        if self.buffer_seconds() > self.config.max_buffer_sec {
            // Nothing agreed for too long: take the current guess rather than let the
            // buffer outgrow Whisper's window.
            let forced = self.hypotheses.commit_all();
            self.committed.extend(forced.iter().cloned());
            newly.extend(forced);
            let cut = self.committed.last().map_or(0.0, |w| w.end).max(
                self.buffer_offset() + self.buffer_seconds() - self.config.max_buffer_sec / 2.0,
            );
            self.cut_at(cut);
        }
        self.forget_old_committed();
        Ok(Pass::Heard(self.output(&newly)))
    }

    /// Newly committed words as the client gets them: words timed into the padding
    /// moved after the onset (see [`padding`]), times never going back. Only the output
    /// is retimed: agreement and trimming keep Whisper's own times, which stay
    /// consistent from one pass to the next.
    fn output(&mut self, words: &[Word]) -> Option<Commit> {
        let mut words = words.to_vec();
        for word in &mut words {
            if let Some(map) = &self.padding_map {
                map.retime(word);
            }
            word.start = word.start.max(self.output_end);
            word.end = word.end.max(word.start);
            self.output_end = word.end;
        }
        Commit::from_words(&words)
    }

    /// The start of the current utterance (stream index) when the buffer holds context
    /// before it, the utterance has had [`CONTEXT_RETRY_SPEECH_SEC`] of speech, and
    /// `transcript` has no word starting in it: Whisper stopped in the context.
    fn context_hid_utterance(&self, transcript: &Transcript) -> Option<u64> {
        /// Whisper's word times are rough: a word heard up to this far before the
        /// utterance's start (its padding included) may be the utterance's first.
        const SLACK_SEC: f64 = 0.2;
        let (start, speech) = self.utterance?;
        if start <= self.buffer_start || speech < crate::audio::samples(CONTEXT_RETRY_SPEECH_SEC) {
            return None;
        }
        let start_sec = (start - self.buffer_start) as f64 / SAMPLE_RATE as f64;
        let heard = transcript
            .words
            .iter()
            .any(|w| w.start >= start_sec - SLACK_SEC);
        (!heard).then_some(start)
    }

    /// End of an utterance (or of the stream): everything pending becomes final. The
    /// last `context_sec` of the utterance stay in the buffer as context for the next
    /// one (see [`MAX_CONTEXT_GAP_SEC`]).
    pub fn finish(&mut self) -> Option<Commit> {
        let words = self.hypotheses.commit_all();
        self.committed.extend(words.iter().cloned());
        self.trim_keeping_context(&[]);
        // What is left is context: nothing in it waits for a transcription.
        self.unprocessed = 0;
        self.unprocessed_voiced = 0;
        self.utterance = None;
        self.between_utterances = true;
        let commit = self.output(&words);
        self.onset = None;
        self.padding_map = None;
        commit
    }

    /// Cuts committed audio off the front of the buffer, keeping the last
    /// `context_sec` of it: Whisper transcribes a buffer that starts mid-speech or holds
    /// only a word or two badly (it invents and repeats), and the kept context is
    /// re-heard and dropped again by the hypothesis buffer. The cut is at the end of a
    /// completed segment when one lies in the last few seconds before that limit, or
    /// else at the end of a committed word.
    fn trim_keeping_context(&mut self, segment_ends: &[f64]) {
        const PREFER_SEGMENT_WITHIN_SEC: f64 = 3.0;
        let Some(last_committed) = self.committed.last().map(|w| w.end) else {
            return;
        };
        let limit = last_committed - self.config.context_sec;
        // Committed times never go backwards: the latest word ending by `limit` is the
        // first one found from the end.
        let word_cut = self
            .committed
            .iter()
            .rev()
            .map(|w| w.end)
            .find(|&end| end <= limit)
            .unwrap_or(f64::NEG_INFINITY);
        let segment_cut = segment_ends
            .iter()
            .map(|end| end + self.buffer_offset())
            .filter(|&end| end <= limit)
            .fold(f64::NEG_INFINITY, f64::max);
        let cut = if segment_cut >= word_cut - PREFER_SEGMENT_WITHIN_SEC {
            segment_cut
        } else {
            word_cut
        };
        if cut > self.buffer_offset() {
            self.cut_at(cut);
        }
    }

    fn cut_at(&mut self, time: f64) {
        let seconds = (time - self.buffer_offset()).max(0.0);
        self.cut_samples(crate::audio::samples(seconds));
    }

    /// Cuts `samples` (at most all) off the front of the buffer.
    fn cut_samples(&mut self, samples: usize) {
        let samples = samples.min(self.audio.len());
        self.audio.drain(..samples);
        self.buffer_start += samples as u64;
        self.hypotheses.forget_before(self.buffer_offset());
    }

    /// Keeps the committed history no longer than the prompt needs.
    fn forget_old_committed(&mut self) {
        const KEEP: usize = 200;
        if self.committed.len() > 2 * KEEP {
            self.committed.drain(..self.committed.len() - KEEP);
        }
    }
}

#[cfg(test)]
mod tests;
