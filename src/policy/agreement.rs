//! LocalAgreement's bookkeeping: a word is final once two consecutive hypotheses
//! agree on it, and text already committed is recognised when Whisper hears it again
//! at the start of the next buffer.

use super::repetition::truncate_at_repetition;
use super::TimedWord;

/// Words compare equal when they differ only in case, surrounding space or punctuation:
/// Whisper often re-punctuates a word as more audio arrives, which is no disagreement
/// about what was said.
pub(crate) fn same_word(a: &str, b: &str) -> bool {
    word_key(a) == word_key(b)
}

/// What [`same_word`] compares: the word's letters, digits and apostrophes in lower
/// case, or the trimmed word when it has none.
pub(crate) fn word_key(word: &str) -> String {
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

/// The hypothesis bookkeeping of LocalAgreement.
#[derive(Debug, Default)]
pub struct HypothesisBuffer {
    /// Committed words whose audio is still in the buffer (used to drop repeats).
    pub(super) committed_in_buffer: Vec<TimedWord>,
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
