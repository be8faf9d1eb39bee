//! The times of words Whisper placed in the padding before an utterance.
//!
//! Whisper times the first words of a buffer early, into the padding the voice activity
//! controller sends before the onset it detected (by 0.4–1 s on the forced-aligned
//! recordings: "this is the acoustic corpus" placed from 0.09 s, said from 1.05 s). A
//! [`PaddingMap`] moves the words that start in the padding, keeping their order and
//! proportions, between the onset (less Silero's lag) and the first word that starts
//! after it. Invariant: the map is monotonic, and a retimed word never starts before
//! the onset less [`ONSET_LAG_SEC`] nor ends after that next word's start.

use crate::audio::SAMPLE_RATE;
use crate::engine::Word;

/// Silero hears speech this long after it begins (measured on the two recordings with a
/// forced alignment: 0.05 s and 0.13 s after the first word's start).
pub const ONSET_LAG_SEC: f64 = 0.15;

/// Moves times in `from..to` to `onset..to`, in proportion; applies to words starting
/// in `start..onset` (seconds on the stream's clock).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct PaddingMap {
    start: f64,
    onset: f64,
    from: f64,
    to: f64,
}

impl PaddingMap {
    /// The map for an utterance whose audio starts at stream index `start` and whose
    /// speech at `onset`, from the words of the latest hypothesis (stream times); none
    /// when no word starts in the padding.
    pub(super) fn new(start: u64, onset: u64, hypothesis: &[Word]) -> Option<PaddingMap> {
        let start = start as f64 / SAMPLE_RATE as f64;
        let onset = onset as f64 / SAMPLE_RATE as f64 - ONSET_LAG_SEC;
        let first = hypothesis
            .iter()
            .position(|w| w.start >= start && w.start < onset)?;
        let to = match hypothesis[first..].iter().find(|w| w.start >= onset) {
            Some(next) => next.start,
            None => hypothesis.last()?.end,
        };
        (to > onset).then_some(PaddingMap {
            start,
            onset,
            from: hypothesis[first].start,
            to,
        })
    }

    /// Moves `word` if it starts in the padding.
    pub(super) fn retime(&self, word: &mut Word) {
        if word.start >= self.start && word.start < self.onset {
            word.start = self.apply(word.start).max(self.onset);
            word.end = self.apply(word.end.min(self.to)).max(word.start);
        }
    }

    fn apply(&self, time: f64) -> f64 {
        self.onset + (time - self.from) * (self.to - self.onset) / (self.to - self.from)
    }
}
