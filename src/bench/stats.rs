//! Statistics of the recorded arrivals: nearest-rank percentiles, growth per stream and
//! pooled, WER pooled over words, words committed during silence, and the figures of a
//! group of streams. Pure functions: no clock, no I/O. The definitions are in [the
//! module docs](super).

use super::report::{Arrival, GroupStats, Span, StreamResult, Summary};

/// Seconds by which each speech region is widened on both sides before a committed
/// message is judged to lie in silence: speech recognisers place word boundaries
/// loosely, and a message that ends just after the speech did is not a hallucination.
pub const SILENCE_MARGIN_SECONDS: f64 = 0.5;

/// Streams shorter than this are left out of the growth figure (their thirds hold a
/// message or two at most).
pub const GROWTH_MIN_STREAM_SECONDS: f64 = 10.0;

impl Summary {
    /// `None` for no values.
    pub fn of(values: &[f64]) -> Option<Summary> {
        if values.is_empty() {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(Summary {
            count: sorted.len(),
            mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
            p50: percentile(&sorted, 50.0),
            p90: percentile(&sorted, 90.0),
            max: sorted[sorted.len() - 1],
        })
    }
}

/// Nearest-rank percentile of sorted, non-empty values: the smallest value with at
/// least `p` % of the values at or below it.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// The latencies of the messages whose `to` is in the first and in the last third of
/// a stream of `seconds`.
fn thirds(messages: &[Arrival], seconds: f64) -> (Vec<f64>, Vec<f64>) {
    let third_ms = seconds * 1000.0 / 3.0;
    let pick = |keep: &dyn Fn(f64) -> bool| -> Vec<f64> {
        messages
            .iter()
            .filter(|m| keep(m.to_ms as f64))
            .map(|m| m.latency)
            .collect()
    };
    (pick(&|to| to <= third_ms), pick(&|to| to > 2.0 * third_ms))
}

/// Mean latency of the last third minus the first third of one stream; `None` for
/// streams under [`GROWTH_MIN_STREAM_SECONDS`] or without text in both thirds.
pub fn stream_growth(messages: &[Arrival], seconds: f64) -> Option<f64> {
    if seconds < GROWTH_MIN_STREAM_SECONDS {
        return None;
    }
    let (first, last) = thirds(messages, seconds);
    Some(mean(&last)? - mean(&first)?)
}

/// Words of the committed `messages` whose [from, to] does not touch any of the
/// `speech` regions widened by [`SILENCE_MARGIN_SECONDS`] on each side (closed
/// intervals: a message that only touches a widened region counts as speech). With no
/// speech regions, every committed word counts.
pub fn words_in_silence(messages: &[Arrival], speech: &[Span]) -> usize {
    let in_speech = |m: &Arrival| {
        let (from, to) = (m.from_ms as f64 / 1000.0, m.to_ms as f64 / 1000.0);
        speech.iter().any(|s| {
            from <= s.end + SILENCE_MARGIN_SECONDS && to >= s.start - SILENCE_MARGIN_SECONDS
        })
    };
    messages
        .iter()
        .filter(|m| !in_speech(m))
        .map(|m| m.words)
        .sum()
}

/// Growth over several streams: all their last-third latencies pooled, minus all their
/// first-third latencies pooled (only streams that qualify for [`stream_growth`]).
fn pooled_growth(streams: &[&StreamResult]) -> Option<f64> {
    let (mut first, mut last) = (Vec::new(), Vec::new());
    for stream in streams.iter().filter(|s| s.growth.is_some()) {
        let (f, l) = thirds(&stream.messages, stream.audio_seconds);
        first.extend(f);
        last.extend(l);
    }
    Some(mean(&last)? - mean(&first)?)
}

impl GroupStats {
    /// The figures of `streams`.
    pub(super) fn of(streams: &[&StreamResult]) -> GroupStats {
        let latencies: Vec<f64> = streams
            .iter()
            .flat_map(|s| s.messages.iter().map(|m| m.latency))
            .collect();
        let first_texts: Vec<f64> = streams.iter().filter_map(|s| s.first_text).collect();
        GroupStats {
            streams: streams.len(),
            audio_seconds: streams.iter().map(|s| s.audio_seconds).sum(),
            latency: Summary::of(&latencies),
            first_text: Summary::of(&first_texts),
            growth: pooled_growth(streams),
            worst_stream_growth: streams
                .iter()
                .filter_map(|s| s.growth)
                .max_by(f64::total_cmp),
            wer: aggregate_wer(streams.iter().map(|s| (s.word_errors, s.reference_words))),
            silence_words: streams
                .iter()
                .filter_map(|s| s.silence_words)
                .reduce(|a, b| a + b),
            errors: streams.iter().map(|s| s.errors.len()).sum(),
        }
    }
}

/// `after − before` of a reading (CPU seconds) taken twice, if both were taken.
pub(super) fn delta(before: Option<f64>, after: Option<f64>) -> Option<f64> {
    Some(after? - before?)
}

/// Total word errors / total reference words over the files that have a reference.
pub(super) fn aggregate_wer(
    scores: impl Iterator<Item = (Option<usize>, Option<usize>)>,
) -> Option<f64> {
    let (errors, words) = scores
        .filter_map(|(e, w)| Some((e?, w?)))
        .fold((0, 0), |(e, w), (e1, w1)| (e + e1, w + w1));
    (words > 0).then(|| errors as f64 / words as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::tests::arrival;

    #[test]
    fn words_in_silence_are_those_of_messages_outside_the_widened_speech() {
        let message = |from_ms, to_ms, words| Arrival {
            from_ms,
            to_ms,
            arrival: 0.0,
            latency: 0.0,
            words,
        };
        let speech = [
            Span {
                start: 1.0,
                end: 4.0,
            },
            Span {
                start: 10.0,
                end: 12.0,
            },
        ];
        let messages = [
            message(1_000, 2_000, 3),   // inside
            message(4_300, 4_500, 1),   // after the first, within 0.5 s: speech
            message(4_500, 4_600, 1),   // touches 4.5: speech
            message(4_600, 9_400, 2),   // between the widened regions: silence
            message(9_000, 9_600, 4),   // reaches into 9.5: speech
            message(0, 400, 5),         // before the first, 0.6 s away: silence
            message(12_600, 14_000, 7), // after the last: silence
            message(3_000, 11_000, 9),  // spans both: speech
        ];
        assert_eq!(words_in_silence(&messages, &speech), 2 + 5 + 7);
        // No speech at all (the noise scenario): every committed word.
        assert_eq!(words_in_silence(&messages, &[]), 32);
        assert_eq!(words_in_silence(&[], &speech), 0);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let sorted: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&sorted, 50.0), 5.0);
        assert_eq!(percentile(&sorted, 90.0), 9.0);
        assert_eq!(percentile(&sorted, 91.0), 10.0);
        assert_eq!(percentile(&sorted, 100.0), 10.0);
        assert_eq!(percentile(&sorted, 0.0), 1.0);
        assert_eq!(percentile(&[7.0], 90.0), 7.0);
        let s = Summary::of(&[3.0, 1.0, 2.0, 4.0]).unwrap();
        assert_eq!(
            (s.count, s.mean, s.p50, s.p90, s.max),
            (4, 2.5, 2.0, 4.0, 4.0)
        );
        assert!(Summary::of(&[]).is_none());
    }

    #[test]
    fn growth_compares_the_last_third_with_the_first() {
        // 30 s stream: thirds end at 10 s and 20 s.
        let steady = [
            arrival(2_000, 1.0),
            arrival(15_000, 3.0),
            arrival(29_000, 1.2),
        ];
        let g = stream_growth(&steady, 30.0).unwrap();
        assert!((g - 0.2).abs() < 1e-9, "{g}");
        let behind = [
            arrival(5_000, 1.0),
            arrival(10_000, 1.0),
            arrival(25_000, 4.0),
        ];
        assert_eq!(stream_growth(&behind, 30.0), Some(3.0));
        // Too short, or nothing in one of the thirds: no figure.
        assert_eq!(stream_growth(&steady, 9.0), None);
        assert_eq!(stream_growth(&[arrival(29_000, 1.0)], 30.0), None);
    }

    #[test]
    fn wer_is_pooled_over_words() {
        let wer =
            aggregate_wer([(Some(1), Some(10)), (Some(3), Some(30)), (None, None)].into_iter());
        assert_eq!(wer, Some(0.1));
        assert_eq!(aggregate_wer(std::iter::empty()), None);
    }
}
