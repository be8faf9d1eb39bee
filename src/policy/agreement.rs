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

/// Whether `heard` can be `committed` heard again: the same word, one letter added,
/// dropped or changed in a word of four letters or more, or an inflection ("-s",
/// "-es", "-d", "-ed") added to a word of three letters or more. The same audio heard with other context
/// comes back with another ending now and then ("American." then "Americans", "asked"
/// then "ask" in jfk.wav once the next utterance followed), and a committed word not
/// recognised is committed twice.
fn reheard_word(committed: &str, heard: &str) -> bool {
    let (a, b) = (word_key(committed), word_key(heard));
    if a == b {
        return true;
    }
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let ending: String = long.get(short.len()..).unwrap_or_default().iter().collect();
    if short.len() >= 3 && long.starts_with(&short) && ["s", "es", "d", "ed"].contains(&&*ending) {
        return true;
    }
    if short.len() < 4 || long.len() - short.len() > 1 {
        return false;
    }
    // One edit at most: skip the common prefix and suffix, at most one character left.
    let prefix = short.iter().zip(&long).take_while(|(x, y)| x == y).count();
    let suffix = short[prefix..]
        .iter()
        .rev()
        .zip(long[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    long.len() - prefix - suffix <= 1
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
    /// (squeezed together at the end of a buffer, say), words cannot. The last committed
    /// word may be one Whisper made up at the end of an utterance ("ask not to", the
    /// "to" never said), so the three words before it are looked for too. `None` when
    /// the hypothesis does not repeat them near where they were heard.
    fn end_of_reheard_text(&self, hypothesis: &[TimedWord]) -> Option<usize> {
        const TAIL_WORDS: usize = 3;
        let committed = self.committed_in_buffer.len();
        let tail_len = committed.min(TAIL_WORDS);
        if tail_len == 0 {
            return None;
        }
        self.find_tail(
            hypothesis,
            &self.committed_in_buffer[committed - tail_len..],
        )
        .or_else(|| {
            let before_last = committed.checked_sub(TAIL_WORDS + 1)?;
            let tail = &self.committed_in_buffer[before_last..committed - 1];
            self.find_tail(hypothesis, tail)
        })
    }

    /// The end of the last place in `hypothesis` that repeats `tail`, starting no more
    /// than a second after the committed text ends.
    fn find_tail(&self, hypothesis: &[TimedWord], tail: &[TimedWord]) -> Option<usize> {
        const SEARCH_PAST_COMMITTED_SEC: f64 = 1.0;
        let tail_len = tail.len();
        (tail_len..=hypothesis.len())
            .rev()
            .filter(|&end| {
                hypothesis[end - tail_len].start
                    <= self.last_committed_time + SEARCH_PAST_COMMITTED_SEC
            })
            .find(|&end| {
                tail.iter()
                    .zip(&hypothesis[end - tail_len..end])
                    .all(|(c, h)| reheard_word(&c.text, &h.text))
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
                .all(|(c, w)| reheard_word(&c.text, &w.text))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn timed(words: &[(f64, &str)]) -> Vec<TimedWord> {
        words
            .iter()
            .map(|&(start, text)| TimedWord {
                start,
                end: start + 0.3,
                text: text.into(),
            })
            .collect()
    }

    #[test]
    fn a_made_up_last_word_does_not_hide_the_reheard_text() {
        let mut buffer = HypothesisBuffer::default();
        // An utterance ended with a word never said: " to".
        let said = timed(&[
            (1.0, " fellow"),
            (1.5, " Americans"),
            (3.3, " ask"),
            (3.8, " not"),
        ]);
        buffer.previous = [said.clone(), timed(&[(4.2, " to")])].concat();
        buffer.commit_all();
        // The next utterance, heard with that one as context, times placed late.
        let next = timed(&[
            (1.0, " fellow"),
            (1.5, " Americans"),
            (4.3, " ask"),
            (4.6, " not"),
            (5.4, " what"),
            (5.6, " your"),
        ]);
        buffer.agree(next);
        let pending: Vec<&str> = buffer.pending().iter().map(|w| w.text.as_str()).collect();
        assert_eq!(pending, [" what", " your"]);
    }

    #[test]
    fn a_reheard_word_may_differ_by_one_letter_in_a_long_word() {
        assert!(reheard_word(" American.", " Americans"));
        assert!(reheard_word(" fellow", " Fellow,"));
        assert!(reheard_word(" colour", " color"));
        assert!(!reheard_word(" their", " there"));
        assert!(reheard_word(" asked", " Ask"));
        assert!(!reheard_word(" to", " too"));
        assert!(!reheard_word(" can", " candle"));
        assert!(!reheard_word(" not", " now"));
        assert!(reheard_word(" country", " county."));
        assert!(!reheard_word(" country", " count"));
    }
}
