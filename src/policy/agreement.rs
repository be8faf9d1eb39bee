//! LocalAgreement's bookkeeping: a word is final once two consecutive hypotheses
//! agree on it, and text already committed is recognised when Whisper hears it again
//! at the start of the next buffer.

use super::reheard::{align_reheard, reheard_word, MAX_REHEARD_WORDS};
use super::repetition::truncate_at_repetition;
use super::TimedWord;

/// Words compare equal when they differ only in case, surrounding space or punctuation:
/// Whisper often re-punctuates a word as more audio arrives, which is no disagreement
/// about what was said.
pub(crate) fn same_word(a: &str, b: &str) -> bool {
    word_key(a) == word_key(b)
}

/// What [`same_word`] compares: the word's letters, digits and apostrophes in lower
/// case, or the trimmed word when it has none; English numbers up to twenty as digits
/// (Whisper writes the same "zero" as "0" or "zero" from one pass to the next).
pub(crate) fn word_key(word: &str) -> String {
    const NUMBERS: [&str; 21] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
        "twenty",
    ];
    let key: String = word
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '\'')
        .flat_map(char::to_lowercase)
        .collect();
    if key.is_empty() {
        return word.trim().to_string();
    }
    match NUMBERS.iter().position(|n| *n == key) {
        Some(value) => value.to_string(),
        None => key,
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
            Some(end) => {
                log::trace!("re-heard text ends before word {end}");
                hypothesis.split_off(end)
            }
            None => {
                let mut new: Vec<TimedWord> = hypothesis
                    .into_iter()
                    .filter(|w| w.start > self.last_committed_time - REHEARD_TOLERANCE_SEC)
                    .collect();
                self.drop_repeated_ngram(&mut new);
                log::trace!(
                    "re-heard text not found; {} word(s) after {:.2} s kept",
                    new.len(),
                    self.last_committed_time - REHEARD_TOLERANCE_SEC
                );
                new
            }
        };

        let agreed = match self.only_repeats_committed(&new) {
            true => 0,
            false => new
                .iter()
                .zip(&self.previous)
                .take_while(|(n, p)| same_word(&n.text, &p.text))
                .count(),
        };
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
    /// words rather than by times: timestamp tokens can be off by seconds (squeezed
    /// together at the end of a buffer, stretched over a pause), words cannot. The
    /// committed words are aligned with the start of the hypothesis (see
    /// [`align_reheard`]). `None` when the hypothesis does not repeat them, or starts
    /// repeating them more than a second after they were committed: that is new speech
    /// saying the same again (an automated prompt repeating "press zero"). Only the
    /// first repeated word's time is judged: Whisper stretched a re-heard "his power to
    /// do" after a pause to end 1.6 s late.
    fn end_of_reheard_text(&self, hypothesis: &[TimedWord]) -> Option<usize> {
        const SEARCH_PAST_COMMITTED_SEC: f64 = 1.0;
        let committed = &self.committed_in_buffer;
        let tail = &committed[committed.len().saturating_sub(MAX_REHEARD_WORDS)..];
        let reheard = align_reheard(tail, hypothesis)?;
        (hypothesis[reheard.first].start <= self.last_committed_time + SEARCH_PAST_COMMITTED_SEC)
            .then_some(reheard.end)
    }

    /// Whisper re-transcribes the end of the committed text at the start of the buffer:
    /// drop up to 5 leading words that repeat the last committed ones.
    fn drop_repeated_ngram(&self, new: &mut Vec<TimedWord>) {
        let Some(first) = new.first() else { return };
        if (first.start - self.last_committed_time).abs() >= 1.0 {
            return;
        }
        let max_n = self.committed_in_buffer.len().min(new.len()).min(5);
        if let Some(n) = (1..=max_n).find(|&n| self.says_committed_tail(&new[..n])) {
            new.drain(..n);
        }
    }

    /// Whether `words` say the last `words.len()` committed words again, as
    /// [`reheard_word`] compares them.
    fn says_committed_tail(&self, words: &[TimedWord]) -> bool {
        let committed = &self.committed_in_buffer;
        words.len() <= committed.len()
            && words
                .iter()
                .zip(&committed[committed.len() - words.len()..])
                .all(|(w, c)| reheard_word(&c.text, &w.text))
    }

    /// Whether `new` (the words after the re-heard text) is nothing but the last
    /// committed words again (as [`reheard_word`] compares them: "asked not" then "Ask
    /// not!"): Whisper, at the end of a buffer that ends in a pause,
    /// often says the phrase before it once more ("Ask not! Ask not!" over the 5 s after
    /// "ask not" without VAC, in two passes in a row, which agreed on it). Such a tail
    /// waits until the speech goes on past it; it is kept as the pending hypothesis, so
    /// a phrase really said twice comes once the next words do, or when the stream or
    /// utterance ends.
    fn only_repeats_committed(&self, new: &[TimedWord]) -> bool {
        const MAX_WORDS: usize = 4;
        !new.is_empty() && new.len() <= MAX_WORDS && self.says_committed_tail(new)
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

    fn pending_after(committed: &[(f64, &str)], heard: &[(f64, &str)]) -> Vec<String> {
        let mut buffer = HypothesisBuffer {
            previous: timed(committed),
            ..HypothesisBuffer::default()
        };
        buffer.commit_all();
        buffer.agree(timed(heard));
        buffer.pending().iter().map(|w| w.text.clone()).collect()
    }

    #[test]
    fn a_single_committed_word_is_found_again_when_whisper_moves_it_into_the_pause() {
        // "he" committed at 74.7 s; the next pass times the whole phrase 4 s earlier,
        // in the pause before it. None of it may be lost.
        let pending = pending_after(
            &[(74.7, " he")],
            &[
                (70.3, " He"),
                (70.6, " began"),
                (71.1, " a"),
                (71.3, " confused"),
                (72.3, " complaint"),
            ],
        );
        assert_eq!(pending, [" began", " a", " confused", " complaint"]);
    }

    #[test]
    fn reheard_text_is_found_with_a_word_changed_or_added() {
        // Numbers come back as digits, and one word of the committed text is heard
        // differently: still re-heard, and the new words follow it.
        let pending = pending_after(
            &[
                (24.0, " an"),
                (24.2, " operator,"),
                (25.0, " press"),
                (25.4, " zero."),
            ],
            &[
                (24.0, " For"),
                (24.1, " an"),
                (24.3, " operator"),
                (24.9, " press"),
                (25.5, " 0."),
                (30.6, " You"),
                (30.8, " are"),
            ],
        );
        assert_eq!(pending, [" You", " are"]);
        let pending = pending_after(
            &[(1.0, " the"), (1.2, " big"), (1.6, " red"), (2.0, " bus")],
            &[
                (1.9, " the"),
                (2.1, " pig"),
                (2.5, " red"),
                (2.9, " bus"),
                (3.4, " stops"),
            ],
        );
        assert_eq!(pending, [" stops"]);
    }

    #[test]
    fn new_words_that_share_one_word_with_the_committed_text_are_kept() {
        // Only "the" in common, far into the hypothesis: not re-heard text.
        let pending = pending_after(
            &[(1.0, " on"), (1.3, " the"), (1.5, " left.")],
            &[
                (2.0, " Mister"),
                (2.4, " John"),
                (2.8, " took"),
                (3.0, " the"),
                (3.2, " train"),
            ],
        );
        assert_eq!(pending, [" Mister", " John", " took", " the", " train"]);
    }

    #[test]
    fn a_word_the_pass_before_missed_does_not_hide_the_reheard_text() {
        // "was" committed without the "He" before it; the next pass hears "He was …"
        // with its times stretched back over the pause.
        let pending = pending_after(
            &[(65.0, " them."), (72.5, " was")],
            &[
                (66.4, " He"),
                (67.8, " was"),
                (69.9, " not"),
                (72.2, " an"),
                (73.4, " ill-disposed"),
                (74.0, " young"),
            ],
        );
        assert_eq!(pending, [" not", " an", " ill-disposed", " young"]);
    }

    #[test]
    fn a_tail_that_only_says_the_committed_phrase_again_waits_for_more_speech() {
        let mut buffer = HypothesisBuffer {
            previous: timed(&[(5.3, " Ask"), (7.0, " not")]),
            ..HypothesisBuffer::default()
        };
        buffer.commit_all();
        // Two passes over the pause after it hear the phrase twice: not agreed on.
        let looped = timed(&[
            (7.6, " Ask"),
            (9.0, " not!"),
            (9.0, " Ask"),
            (10.0, " not!"),
        ]);
        assert!(buffer.agree(looped.clone()).is_empty());
        assert!(buffer.agree(looped).is_empty());
        // Once speech follows, the copy is dropped and the new words agreed on.
        let next = timed(&[
            (7.6, " Ask"),
            (9.0, " not!"),
            (14.8, " What"),
            (15.1, " your"),
        ]);
        assert!(buffer.agree(next.clone()).is_empty());
        let committed: Vec<String> = buffer.agree(next).into_iter().map(|w| w.text).collect();
        assert_eq!(committed, [" What", " your"]);
    }

    #[test]
    fn the_last_committed_word_alone_does_not_end_reheard_text_too_early() {
        // "Ask what you" committed, the "can do for you." before it no longer in the
        // buffer's committed words: the first "You" is not where the re-heard text ends.
        let pending = pending_after(
            &[(19.5, " Ask"), (20.1, " what"), (20.9, " you")],
            &[
                (16.1, " You"),
                (16.5, " can"),
                (16.8, " do"),
                (17.2, " it"),
                (17.3, " for"),
                (17.5, " you."),
                (21.8, " Ask"),
                (22.0, " what"),
                (22.3, " you"),
                (22.4, " can"),
                (22.6, " do"),
            ],
        );
        assert_eq!(pending, [" can", " do"]);
    }

    #[test]
    fn numbers_compare_equal_as_digits_and_words() {
        assert!(same_word(" zero.", " 0"));
        assert!(same_word(" Two,", " 2"));
        assert!(!same_word(" to", " 2"));
        assert!(!same_word(" twenty-one", " 21"));
    }
}
