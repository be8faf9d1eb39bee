//! The streaming policy: LocalAgreement-2, as in whisper_streaming's `OnlineASRProcessor`.
//!
//! The session's audio since the last trim is transcribed again on every update. A word
//! is committed once two consecutive transcriptions agree on it (the longest common
//! prefix of the last two hypotheses). Committed text is final. Once the buffer grows
//! past the trimming length, committed audio is cut off its front, all but a few seconds
//! kept as context; the committed text before the buffer can be given to Whisper as a
//! prompt (off by default).

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
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    /// Stream index (in samples) of the first sample.
    pub at: u64,
    pub audio: Vec<f32>,
    /// How many of its samples are speech (the rest: pauses inside an utterance).
    pub voiced: usize,
    /// The utterance ends with this piece: everything pending is committed after it.
    pub ends_utterance: bool,
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

/// Words compare equal when they differ only in case, surrounding space or punctuation:
/// Whisper often re-punctuates a word as more audio arrives, which is no disagreement
/// about what was said.
fn same_word(a: &str, b: &str) -> bool {
    word_key(a) == word_key(b)
}

/// What [`same_word`] compares: the word's letters, digits and apostrophes in lower
/// case, or the trimmed word when it has none.
fn word_key(word: &str) -> String {
    let key: String = word
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '\'')
        .flat_map(char::to_lowercase)
        .collect();
    if key.is_empty() {
        word.trim().to_string()
    } else {
        key
    }
}

/// A word of a new hypothesis that starts more than this before the end of the committed
/// text is taken as re-heard and dropped (whisper_streaming used 0.1 s). Whisper's
/// timestamp-token times are rough, and a tight margin drops new words whose start is
/// placed a little early ("not" after "ask"); the n-gram check below catches the
/// repeats a wider margin lets through. 0.5 s measured best on the benchmark files
/// (WER 10.8% against 12.8% with 0.1 s).
const REHEARD_TOLERANCE_SEC: f64 = 0.5;

/// How many times in a row a phrase of n words must occur to count as a decoding loop:
/// twice for three words or more, four times for one or two ("1 1 1 1", "thank you
/// thank you thank you thank you").
fn loop_repeats(n: usize) -> usize {
    if n >= 3 {
        2
    } else {
        4
    }
}

/// A hypothesis that ends with this many words or more that it already said, in the
/// same order, ends in a decoding loop.
const MIN_REPEATED_TAIL: usize = 4;

/// Whisper sometimes starts over at the end of a short buffer ("And so my fellow
/// Americans. And so my fellow Americans.") or loops on one word, and two such
/// hypotheses can agree. A decoding loop runs until the token limit, so a phrase that
/// repeats up to the end of the hypothesis is taken as one: keep its first occurrence.
/// Repeats followed by other words are speech ("words, words, words, words and …").
/// The token limit can cut a loop short of a second full round ("… probably good.
/// Thanks. Thanks. Thanks, and here's a long pause, and I think this is probably good.
/// Thanks. Thanks"), so a hypothesis that ends with [`MIN_REPEATED_TAIL`] or more words
/// it already said is cut before them too.
fn truncate_at_repetition(words: &mut Vec<TimedWord>) {
    truncate_periodic_tail(words);
    truncate_repeated_tail(words);
}

/// Cuts a tail of at least [`MIN_REPEATED_TAIL`] words that occurs earlier in `words`
/// (the longest such tail).
fn truncate_repeated_tail(words: &mut Vec<TimedWord>) {
    let keys: Vec<String> = words.iter().map(|w| word_key(&w.text)).collect();
    let n = keys.len();
    for length in (MIN_REPEATED_TAIL..=n / 2).rev() {
        let tail = &keys[n - length..];
        if (0..=n - 2 * length).any(|start| keys[start..start + length] == *tail) {
            words.truncate(n - length);
            return;
        }
    }
}

fn truncate_periodic_tail(words: &mut Vec<TimedWord>) {
    for start in 0..words.len() {
        let rest = words.len() - start;
        for n in 1..=rest / 2 {
            if rest < n * loop_repeats(n) {
                continue;
            }
            let periodic =
                (start + n..words.len()).all(|i| same_word(&words[i].text, &words[i - n].text));
            if periodic {
                words.truncate(start + n);
                return;
            }
        }
    }
}

/// The hypothesis bookkeeping of LocalAgreement.
#[derive(Debug, Default)]
pub struct HypothesisBuffer {
    /// Committed words whose audio is still in the buffer (used to drop repeats).
    committed_in_buffer: Vec<TimedWord>,
    /// The previous hypothesis, minus what was committed from it.
    previous: Vec<TimedWord>,
    last_committed_time: f64,
}

impl HypothesisBuffer {
    /// Takes a new hypothesis (times relative to the stream) and returns the words that
    /// it and the previous one agree on, in order.
    pub fn agree(&mut self, mut hypothesis: Vec<TimedWord>) -> Vec<TimedWord> {
        truncate_at_repetition(&mut hypothesis);
        let mut new: Vec<TimedWord> = match self.end_of_reheard_text(&hypothesis) {
            Some(end) => hypothesis.split_off(end),
            None => {
                let mut new: Vec<TimedWord> = hypothesis
                    .into_iter()
                    .filter(|w| w.start > self.last_committed_time - REHEARD_TOLERANCE_SEC)
                    .collect();
                self.drop_repeated_ngram(&mut new);
                new
            }
        };

        let agreed = new
            .iter()
            .zip(&self.previous)
            .take_while(|(n, p)| same_word(&n.text, &p.text))
            .count();
        let mut committed: Vec<TimedWord> = new.drain(..agreed).collect();
        self.keep_in_order(&mut committed);
        if let Some(last) = committed.last() {
            self.last_committed_time = last.end;
        }
        self.previous = new;
        self.committed_in_buffer.extend(committed.iter().cloned());
        committed
    }

    /// Where the committed text still in the buffer ends in `hypothesis`, found by its
    /// last few words rather than by times: timestamp tokens can be off by seconds
    /// (squeezed together at the end of a buffer, say), words cannot. `None` when the
    /// hypothesis does not repeat them near where they were heard.
    fn end_of_reheard_text(&self, hypothesis: &[TimedWord]) -> Option<usize> {
        const TAIL_WORDS: usize = 3;
        const SEARCH_PAST_COMMITTED_SEC: f64 = 1.0;
        let tail_len = self.committed_in_buffer.len().min(TAIL_WORDS);
        if tail_len == 0 {
            return None;
        }
        let tail = &self.committed_in_buffer[self.committed_in_buffer.len() - tail_len..];
        (tail_len..=hypothesis.len())
            .rev()
            .filter(|&end| {
                hypothesis[end - tail_len].start
                    <= self.last_committed_time + SEARCH_PAST_COMMITTED_SEC
            })
            .find(|&end| {
                tail.iter()
                    .zip(&hypothesis[end - tail_len..end])
                    .all(|(c, h)| same_word(&c.text, &h.text))
            })
    }

    /// Whisper re-transcribes the end of the committed text at the start of the buffer:
    /// drop up to 5 leading words that repeat the last committed ones.
    fn drop_repeated_ngram(&self, new: &mut Vec<TimedWord>) {
        let Some(first) = new.first() else { return };
        if (first.start - self.last_committed_time).abs() >= 1.0 {
            return;
        }
        let max_n = self.committed_in_buffer.len().min(new.len()).min(5);
        for n in 1..=max_n {
            let tail = &self.committed_in_buffer[self.committed_in_buffer.len() - n..];
            if tail
                .iter()
                .zip(&new[..n])
                .all(|(c, w)| same_word(&c.text, &w.text))
            {
                new.drain(..n);
                return;
            }
        }
    }

    /// Timestamp-token times are rough and a word can seem to start before the previous
    /// one ended; committed text promises clients times that never go backwards.
    fn keep_in_order(&self, words: &mut [TimedWord]) {
        let mut floor = self.last_committed_time;
        for word in words {
            word.start = word.start.max(floor);
            word.end = word.end.max(word.start);
            floor = word.end;
        }
    }

    /// Forgets committed words that ended before `time` (their audio was trimmed).
    pub fn forget_before(&mut self, time: f64) {
        self.committed_in_buffer.retain(|w| w.end > time);
    }

    /// The uncommitted hypothesis.
    pub fn pending(&self) -> &[TimedWord] {
        &self.previous
    }

    /// Commits everything pending (end of stream, or a forced cut).
    pub fn commit_all(&mut self) -> Vec<TimedWord> {
        let mut words = std::mem::take(&mut self.previous);
        self.keep_in_order(&mut words);
        if let Some(last) = words.last() {
            self.last_committed_time = last.end;
        }
        self.committed_in_buffer.extend(words.iter().cloned());
        words
    }
}

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
}

impl OnlineProcessor {
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
    }

    /// Appends audio whose first sample has stream index `at`. Audio left out before it
    /// (silence the voice activity controller did not forward) is skipped when the buffer
    /// is empty, which it is after every utterance; inside an utterance a gap is filled
    /// with silence, so the buffer's times stay the stream's.
    pub fn insert_audio_at(&mut self, at: u64, samples: &[f32], voiced: usize) {
        if at > self.received {
            let gap = at - self.received;
            debug_assert!(
                self.audio.is_empty() || gap < SAMPLE_RATE as u64,
                "gap {gap} in speech"
            );
            if self.audio.is_empty() {
                self.buffer_start = at;
                self.received = at;
            } else {
                self.insert(&vec![0.0; gap as usize], 0);
            }
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
        self.audio.len() as f64 / SAMPLE_RATE as f64
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
            self.insert_audio_at(piece.at, &piece.audio, piece.voiced);
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

    fn finalize<E>(
        &mut self,
        transcribe: &mut impl FnMut(&[f32], &str) -> Result<Option<Transcript>, E>,
        outcome: &mut UpdateOutcome,
    ) -> Result<(), E> {
        if self.has_unprocessed_speech() {
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
        outcome.transcriptions += 1;
        match self.process(transcribe)? {
            Pass::Heard(commit) => outcome.commits.extend(commit),
            Pass::Cut => outcome.cuts += 1,
        }
        Ok(())
    }

    /// Transcribes the whole buffer and returns what became final. `transcribe` is the
    /// engine (audio, prompt) → words relative to the audio.
    pub fn process<E>(
        &mut self,
        transcribe: impl FnOnce(&[f32], &str) -> Result<Option<Transcript>, E>,
    ) -> Result<Pass, E> {
        if self.audio.is_empty() {
            return Ok(Pass::Heard(None));
        }
        let prompt = self.prompt();
        let Some(transcript) = transcribe(&self.audio, &prompt)? else {
            return Ok(Pass::Cut);
        };
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
        let hypothesis = transcript
            .words
            .iter()
            .map(|w| Word {
                start: w.start + offset,
                end: w.end + offset,
                text: w.text.clone(),
            })
            .collect();
        let mut newly = self.hypotheses.agree(hypothesis);
        self.committed.extend(newly.iter().cloned());

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
        Ok(Pass::Heard(Commit::from_words(&newly)))
    }

    /// End of stream: everything pending becomes final.
    pub fn finish(&mut self) -> Option<Commit> {
        let words = self.hypotheses.commit_all();
        self.committed.extend(words.iter().cloned());
        self.cut_samples(self.audio.len());
        Commit::from_words(&words)
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
        self.cut_samples((seconds * SAMPLE_RATE as f64) as usize);
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
mod tests {
    use super::*;
    use std::convert::Infallible;

    fn words(spec: &[(f64, f64, &str)]) -> Vec<Word> {
        spec.iter()
            .map(|&(start, end, text)| Word {
                start,
                end,
                text: text.to_string(),
            })
            .collect()
    }

    fn texts(words: &[Word]) -> Vec<&str> {
        words.iter().map(|w| w.text.as_str()).collect()
    }

    #[test]
    fn commits_the_common_prefix_of_two_hypotheses() {
        let mut buffer = HypothesisBuffer::default();
        let first = buffer.agree(words(&[(0.0, 0.5, " And"), (0.5, 0.9, " so")]));
        assert!(first.is_empty(), "one hypothesis commits nothing");
        let second = buffer.agree(words(&[
            (0.0, 0.5, " And"),
            (0.5, 0.9, " so,"),
            (0.9, 1.2, " my"),
        ]));
        assert_eq!(texts(&second), vec![" And", " so,"]);
        assert_eq!(texts(buffer.pending()), vec![" my"]);
    }

    #[test]
    fn committed_times_never_go_backwards() {
        let mut buffer = HypothesisBuffer::default();
        let hypothesis = words(&[
            (0.0, 1.5, " country"),
            (1.0, 1.3, " you"),
            (1.3, 1.2, " ask"),
        ]);
        buffer.agree(hypothesis.clone());
        let agreed = buffer.agree(hypothesis);
        let times: Vec<(f64, f64)> = agreed.iter().map(|w| (w.start, w.end)).collect();
        assert_eq!(times, vec![(0.0, 1.5), (1.5, 1.5), (1.5, 1.5)]);
    }

    #[test]
    fn stops_at_the_first_disagreement() {
        let mut buffer = HypothesisBuffer::default();
        buffer.agree(words(&[
            (0.0, 0.5, " the"),
            (0.5, 1.0, " cat"),
            (1.0, 1.5, " sat"),
        ]));
        let agreed = buffer.agree(words(&[
            (0.0, 0.5, " the"),
            (0.5, 1.0, " hat"),
            (1.0, 1.5, " sat"),
        ]));
        assert_eq!(texts(&agreed), vec![" the"]);
    }

    #[test]
    fn drops_words_repeated_from_the_committed_text() {
        let mut buffer = HypothesisBuffer::default();
        buffer.agree(words(&[(0.0, 0.5, " ask"), (0.5, 1.0, " not")]));
        assert_eq!(
            texts(&buffer.agree(words(&[(0.0, 0.5, " ask"), (0.5, 1.0, " not")]))),
            vec![" ask", " not"]
        );
        // The next transcription starts at the committed words again with slightly
        // different times: they must not be committed twice.
        buffer.agree(words(&[
            (0.95, 1.05, " not"),
            (1.1, 1.4, " what"),
            (1.4, 1.8, " your"),
        ]));
        let agreed = buffer.agree(words(&[
            (0.95, 1.05, " not"),
            (1.1, 1.4, " what"),
            (1.4, 1.8, " your"),
            (1.8, 2.3, " country"),
        ]));
        assert_eq!(texts(&agreed), vec![" what", " your"]);
    }

    fn transcript(spec: &[(f64, f64, &str)], segment_ends: &[f64]) -> Transcript {
        Transcript {
            words: words(spec),
            segment_ends: segment_ends.to_vec(),
        }
    }

    #[test]
    fn processor_commits_text_and_finishes_with_the_rest() {
        let mut processor = OnlineProcessor::new(PolicyConfig::default());
        processor.insert_audio(&vec![0.0; 16_000]);
        let hyp = transcript(&[(0.0, 0.4, " And"), (0.4, 0.8, " so")], &[0.8]);
        let first = processor
            .process(|_, _| Ok::<_, Infallible>(Some(hyp.clone())))
            .unwrap()
            .commit();
        assert_eq!(first, None);
        processor.insert_audio(&vec![0.0; 16_000]);
        let hyp2 = transcript(
            &[(0.0, 0.4, " And"), (0.4, 0.8, " so"), (0.9, 1.5, " my")],
            &[1.5],
        );
        let second = processor
            .process(|audio, prompt| {
                assert_eq!(audio.len(), 32_000, "the whole buffer is transcribed");
                assert_eq!(prompt, "");
                Ok::<_, Infallible>(Some(hyp2.clone()))
            })
            .unwrap()
            .commit()
            .unwrap();
        assert_eq!(second.text, " And so");
        assert_eq!((second.start, second.end), (0.0, 0.8));
        let last = processor.finish().unwrap();
        assert_eq!(last.text, " my");
        assert_eq!(processor.finish(), None);
    }

    #[test]
    fn each_utterance_is_committed_when_it_ends_on_the_stream_clock() {
        let mut processor = OnlineProcessor::new(PolicyConfig::default());
        let seen = std::cell::RefCell::new(Vec::new());
        let mut transcribe = |audio: &[f32], _: &str| {
            seen.borrow_mut().push(audio.len());
            Ok::<_, Infallible>(Some(transcript(
                &[(0.1, 0.5, " hello"), (0.5, 0.9, " there")],
                &[0.9],
            )))
        };
        // An odd length, so that no sum of seconds can land exactly on the end.
        let first = Piece {
            at: 16_000 / 3,
            audio: vec![0.0; 20_011],
            voiced: usize::MAX,
            ends_utterance: true,
        };
        let outcome = processor
            .update(vec![first], false, 16_000, &mut transcribe)
            .unwrap();
        // One transcription, and everything committed at once: nothing agreed yet, but
        // the utterance ended.
        assert_eq!(outcome.transcriptions, 1);
        assert_eq!(outcome.commits.len(), 1);
        assert_eq!(outcome.commits[0].text, " hello there");
        assert_eq!(
            processor.buffer_seconds(),
            0.0,
            "the buffer is empty after it"
        );
        // The next utterance, 10 s into the stream: its buffer holds its own audio only.
        let second = Piece {
            at: 160_000,
            audio: vec![0.0; 17_000],
            voiced: usize::MAX,
            ends_utterance: true,
        };
        let outcome = processor
            .update(vec![second], false, 16_000, &mut transcribe)
            .unwrap();
        assert_eq!(*seen.borrow(), vec![20_011, 17_000]);
        let commit = &outcome.commits[0];
        assert!((commit.start - 10.1).abs() < 1e-9, "{commit:?}");
        assert!((commit.end - 10.9).abs() < 1e-9, "{commit:?}");
        // An utterance end with nothing new only commits what is pending.
        let outcome = processor
            .update(
                vec![Piece {
                    at: 177_000,
                    audio: Vec::new(),
                    voiced: usize::MAX,
                    ends_utterance: true,
                }],
                false,
                16_000,
                &mut transcribe,
            )
            .unwrap();
        assert_eq!(outcome, UpdateOutcome::default());
        assert_eq!(seen.borrow().len(), 2);
    }

    #[test]
    fn pauses_alone_call_for_no_transcription() {
        let mut processor = OnlineProcessor::new(PolicyConfig::default());
        let calls = std::cell::Cell::new(0);
        let mut transcribe = |_: &[f32], _: &str| {
            calls.set(calls.get() + 1);
            Ok::<_, Infallible>(Some(transcript(&[(0.1, 0.6, " yes")], &[0.6])))
        };
        let piece = |at: u64, voiced, ends_utterance| Piece {
            at,
            audio: vec![0.0; 16_000],
            voiced,
            ends_utterance,
        };
        processor
            .update(
                vec![piece(0, 16_000, false)],
                false,
                16_000,
                &mut transcribe,
            )
            .unwrap();
        assert_eq!(calls.get(), 1);
        // A second of pause inside the utterance: nothing new was said.
        processor
            .update(
                vec![piece(16_000, 0, false)],
                false,
                16_000,
                &mut transcribe,
            )
            .unwrap();
        assert_eq!(calls.get(), 1);
        // The utterance ends in silence: what was heard is committed without a call.
        let outcome = processor
            .update(vec![piece(32_000, 0, true)], false, 16_000, &mut transcribe)
            .unwrap();
        assert_eq!(calls.get(), 1);
        assert_eq!(outcome.commits[0].text, " yes");
        // Speech, then the end: one more call.
        processor
            .update(
                vec![piece(64_000, 8_000, true)],
                false,
                16_000,
                &mut transcribe,
            )
            .unwrap();
        assert_eq!(calls.get(), 2);
    }

    #[test]
    fn a_buffer_of_silence_does_not_grow() {
        let mut processor = OnlineProcessor::new(PolicyConfig::default());
        for _ in 0..30 {
            processor.insert_audio(&vec![0.0; 16_000]);
            processor
                .process(|_, _| Ok::<_, Infallible>(Some(Transcript::default())))
                .unwrap();
            assert!(processor.buffer_seconds() <= 6.0 + 1e-9);
        }
        // Thirty seconds in, the buffer holds only the last few of them.
        assert!(
            processor.buffer_offset() >= 24.0,
            "{}",
            processor.buffer_offset()
        );
    }

    #[test]
    fn a_cut_transcription_loses_nothing() {
        let mut processor = OnlineProcessor::new(PolicyConfig::default());
        let heard = transcript(&[(0.0, 0.4, " And"), (0.4, 0.8, " so")], &[0.8]);
        let piece = |at: u64, ends_utterance| Piece {
            at,
            audio: vec![0.0; 16_000],
            voiced: 16_000,
            ends_utterance,
        };
        let ok = |_: &[f32], _: &str| Ok::<_, Infallible>(Some(heard.clone()));
        let cut = |_: &[f32], _: &str| Ok::<_, Infallible>(None);
        processor
            .update(vec![piece(0, false)], false, 16_000, ok)
            .unwrap();
        // Cut: nothing changes, and the audio is still waiting to be transcribed.
        let outcome = processor
            .update(vec![piece(16_000, false)], false, 16_000, cut)
            .unwrap();
        assert_eq!((outcome.transcriptions, outcome.cuts), (1, 1));
        assert!(outcome.commits.is_empty());
        assert_eq!(processor.unprocessed_samples(), 16_000);
        assert_eq!(processor.buffer_seconds(), 2.0);
        // The utterance ends and its last call is cut too: what was heard is committed.
        let outcome = processor
            .update(vec![piece(32_000, true)], false, 16_000, cut)
            .unwrap();
        assert_eq!(outcome.cuts, 1);
        assert_eq!(outcome.commits.len(), 1);
        assert_eq!(outcome.commits[0].text, " And so");
    }

    #[test]
    fn trims_at_a_completed_segment_and_prompts_with_what_came_before() {
        let config = PolicyConfig {
            buffer_trimming_sec: 2.0,
            prompt_chars: 200,
            context_sec: 1.0,
            ..PolicyConfig::default()
        };
        let mut processor = OnlineProcessor::new(config);
        processor.insert_audio(&vec![0.0; 3 * 16_000]);
        let hyp = transcript(
            &[
                (0.0, 0.5, " One."),
                (1.0, 1.5, " Two"),
                (1.5, 2.5, " three"),
            ],
            &[0.6, 2.5],
        );
        for _ in 0..2 {
            processor
                .process(|_, _| Ok::<_, Infallible>(Some(hyp.clone())))
                .unwrap();
        }
        // Everything agreed is committed; the buffer was cut at the first segment's end.
        assert!((processor.buffer_offset() - 0.6).abs() < 1e-3);
        assert_eq!(
            processor.audio.len(),
            3 * 16_000 - (0.6 * 16_000.0) as usize
        );
        let mut seen_prompt = String::new();
        processor
            .process(|audio, prompt| {
                seen_prompt = prompt.to_string();
                assert_eq!(audio.len(), 38_400);
                Ok::<_, Infallible>(Some(Transcript::default()))
            })
            .unwrap();
        assert_eq!(seen_prompt, " One.");
    }

    #[test]
    fn trimming_keeps_some_committed_audio_as_context() {
        let config = PolicyConfig {
            buffer_trimming_sec: 4.0,
            context_sec: 2.0,
            ..PolicyConfig::default()
        };
        let mut processor = OnlineProcessor::new(config);
        processor.insert_audio(&vec![0.0; 8 * 16_000]);
        // One long segment: the cut falls between words, 2 s before the committed end.
        let spoken: Vec<(f64, f64, &str)> = (0..8)
            .map(|i| {
                (
                    i as f64,
                    i as f64 + 0.8,
                    [" a", " b", " c", " d", " e", " f", " g", " h"][i],
                )
            })
            .collect();
        let hyp = transcript(&spoken, &[7.8]);
        for _ in 0..2 {
            processor
                .process(|_, _| Ok::<_, Infallible>(Some(hyp.clone())))
                .unwrap();
        }
        // All eight words agreed and ended at 7.8 s; the last word ending by 5.8 s is " f".
        assert!(
            (processor.buffer_offset() - 5.8).abs() < 1e-3,
            "{}",
            processor.buffer_offset()
        );
        assert_eq!(processor.hypotheses.committed_in_buffer.len(), 2);
    }

    #[test]
    fn reheard_words_are_found_by_text_when_their_times_are_off() {
        let mut buffer = HypothesisBuffer::default();
        let heard = words(&[(4.0, 4.5, " in"), (4.5, 5.0, " his"), (5.0, 6.0, " power")]);
        buffer.agree(heard.clone());
        buffer.agree(heard);
        // The next transcription squeezes every time together, well before 6.0 s.
        let squeezed = words(&[
            (4.2, 4.3, " in"),
            (4.3, 4.4, " his"),
            (4.4, 4.5, " power"),
            (4.5, 4.6, " to"),
            (4.6, 4.7, " do"),
        ]);
        buffer.agree(squeezed.clone());
        assert_eq!(texts(buffer.pending()), vec![" to", " do"]);
        assert_eq!(texts(&buffer.agree(squeezed)), vec![" to", " do"]);
    }

    #[test]
    fn the_buffer_never_outgrows_the_limit() {
        let config = PolicyConfig {
            buffer_trimming_sec: 5.0,
            max_buffer_sec: 10.0,
            prompt_chars: 200,
            ..PolicyConfig::default()
        };
        let mut processor = OnlineProcessor::new(config);
        let mut counter = 0;
        for _ in 0..30 {
            processor.insert_audio(&vec![0.0; 16_000]);
            counter += 1;
            // A hypothesis that changes every time never agrees.
            let hyp = transcript(&[(0.0, 0.5, &format!(" w{counter}"))], &[0.5]);
            processor
                .process(|_, _| Ok::<_, Infallible>(Some(hyp.clone())))
                .unwrap();
            assert!(processor.buffer_seconds() <= 10.0 + 1e-9);
        }
        assert!((processor.received_seconds() - 30.0).abs() < 1e-9);
    }

    #[test]
    fn a_phrase_repeated_in_a_loop_is_cut() {
        let mut looped = words(&[
            (0.0, 0.3, " And"),
            (0.3, 0.5, " so"),
            (0.5, 0.7, " my"),
            (0.7, 1.0, " fellow"),
            (1.0, 1.5, " Americans."),
            (1.6, 1.8, " And"),
            (1.8, 2.0, " so"),
            (2.0, 2.2, " my"),
            (2.2, 2.5, " fellow"),
            (2.5, 3.0, " Americans."),
        ]);
        truncate_at_repetition(&mut looped);
        assert_eq!(
            texts(&looped),
            vec![" And", " so", " my", " fellow", " Americans."]
        );

        // Short repeats are speech ("no, no"), and so are phrases that recur later.
        let speech = words(&[
            (0.0, 0.2, " no,"),
            (0.2, 0.4, " no"),
            (0.4, 0.6, " what"),
            (0.6, 0.8, " you"),
            (0.8, 1.0, " can"),
            (1.0, 1.2, " do"),
            (1.2, 1.4, " and"),
            (1.4, 1.6, " what"),
            (1.6, 1.8, " you"),
            (1.8, 2.0, " can"),
        ]);
        let mut kept = speech.clone();
        truncate_at_repetition(&mut kept);
        assert_eq!(kept, speech);

        let mut ones = words(&[
            (0.0, 0.2, " 1"),
            (0.2, 0.4, " 1"),
            (0.4, 0.6, " 1"),
            (0.6, 0.8, " 1"),
            (0.8, 1.0, " 1"),
        ]);
        truncate_at_repetition(&mut ones);
        assert_eq!(texts(&ones), vec![" 1"]);

        // A loop cut off by the token limit mid-phrase is still a loop.
        let mut cut_off = words(&[
            (0.0, 0.2, " thank"),
            (0.2, 0.4, " you"),
            (0.4, 0.6, " so"),
            (0.6, 0.8, " much"),
            (0.8, 1.0, " thank"),
            (1.0, 1.2, " you"),
            (1.2, 1.4, " so"),
            (1.4, 1.6, " much"),
            (1.6, 1.8, " thank"),
        ]);
        truncate_at_repetition(&mut cut_off);
        assert_eq!(texts(&cut_off), vec![" thank", " you", " so", " much"]);

        // A loop the token limit cut short of a second round.
        let mut cut_short = words(&[
            (0.0, 0.2, " I"),
            (0.2, 0.4, " think"),
            (0.4, 0.6, " it's"),
            (0.6, 0.8, " good."),
            (0.8, 1.0, " Thanks."),
            (1.0, 1.2, " And"),
            (1.2, 1.4, " I"),
            (1.4, 1.6, " think"),
            (1.6, 1.8, " it's"),
            (1.8, 2.0, " good"),
        ]);
        truncate_at_repetition(&mut cut_short);
        assert_eq!(
            texts(&cut_short),
            vec![" I", " think", " it's", " good.", " Thanks.", " And"]
        );

        // Repeats that speech moves on from are kept.
        let said = words(&[
            (0.0, 0.2, " words"),
            (0.2, 0.4, " words"),
            (0.4, 0.6, " words"),
            (0.6, 0.8, " words"),
            (0.8, 1.0, " and"),
            (1.0, 1.2, " that's"),
            (1.2, 1.4, " all"),
        ]);
        let mut kept = said.clone();
        truncate_at_repetition(&mut kept);
        assert_eq!(kept, said);
    }

    #[test]
    fn word_comparison_ignores_case_and_punctuation() {
        assert!(same_word(" so,", " So"));
        assert!(same_word(" don't", " Don't."));
        assert!(!same_word(" cat", " hat"));
        assert!(same_word(" -", "-"));
    }
}
