//! Word times and detected languages (issue #12): what `?words=1` and `?language=auto`
//! give a stream, scored against a forced alignment (`NAME.words.tsv` beside a test
//! file: `start<TAB>end<TAB>word` per line, seconds) and the language expected
//! (`--expect-language`).
//!
//! Word times are scored on the words the transcript and the alignment share: the two
//! word sequences (normalised as for WER) are aligned by a longest common subsequence,
//! and each matched pair gives the difference of start times and of end times.

use std::fmt;

use serde::Serialize;

use super::report::{Report, Summary};
use crate::wer::normalized_words;

/// A word with its time, seconds from the stream's first sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimedWord {
    /// The word as written.
    pub word: String,
    /// Its start.
    pub start: f64,
    /// Its end.
    pub end: f64,
}

/// How far the words' times are from the alignment's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WordTimeError {
    /// Words found in both.
    pub matched: usize,
    /// Words in the alignment.
    pub reference_words: usize,
    /// |start − reference start|, seconds.
    pub start: Summary,
    /// |end − reference end|, seconds.
    pub end: Summary,
}

/// The first `language` message of a stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LanguageSeen {
    /// The language announced.
    pub code: String,
    /// Its probability.
    pub probability: f32,
    /// Seconds from stream start to the message.
    pub arrival: f64,
    /// Announcements in all (more than one: the server changed its mind).
    pub announcements: usize,
}

/// The report's section on languages and word times, when the streams have any: per
/// round, the languages announced (scored against `--expect-language`) and the word
/// times against the forced alignments.
pub(super) struct WordsSection<'a>(pub(super) &'a Report);

impl fmt::Display for WordsSection<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let report = self.0;
        let streams = || report.rounds.iter().flat_map(|r| &r.streams);
        let any_language = streams().any(|s| s.language.is_some());
        let any_times = streams().any(|s| s.word_times.is_some());
        if !any_language && !any_times {
            return Ok(());
        }
        writeln!(
            f,
            "### Languages and word times
"
        )?;
        for round in &report.rounds {
            let label = format!("{} client(s), {} ms frames", round.clients, round.frame_ms);
            if any_language {
                let seen: Vec<&LanguageSeen> = round
                    .streams
                    .iter()
                    .filter_map(|s| s.language.as_ref())
                    .collect();
                let expected = report.meta.expect_language.as_deref();
                let right = seen
                    .iter()
                    .filter(|l| Some(l.code.as_str()) == expected)
                    .count();
                let times: Vec<f64> = seen.iter().map(|l| l.arrival).collect();
                let when = Summary::of(&times).map_or("–".into(), |t| {
                    format!("median {:.1} s, max {:.1} s", t.p50, t.max)
                });
                let found: Vec<String> = seen
                    .iter()
                    .map(|l| format!("{} ({:.2})", l.code, l.probability))
                    .collect();
                writeln!(
                    f,
                    "- {label}: language announced in {}/{} stream(s) [{}]{}; after {when} from                      stream start",
                    seen.len(),
                    round.streams.len(),
                    found.join(", "),
                    expected.map_or(String::new(), |e| format!(", {right} of them `{e}`")),
                )?;
            }
            let errors: Vec<&WordTimeError> = round
                .streams
                .iter()
                .filter_map(|s| s.word_times.as_ref())
                .collect();
            if !errors.is_empty() {
                let matched: usize = errors.iter().map(|e| e.matched).sum();
                let total: usize = errors.iter().map(|e| e.reference_words).sum();
                let pooled = |pick: fn(&WordTimeError) -> &Summary| {
                    let mean = errors
                        .iter()
                        .map(|e| pick(e).mean * e.matched as f64)
                        .sum::<f64>()
                        / matched.max(1) as f64;
                    let max = errors.iter().map(|e| pick(e).max).fold(0.0, f64::max);
                    (mean, max)
                };
                let (start_mean, start_max) = pooled(|e| &e.start);
                let (end_mean, end_max) = pooled(|e| &e.end);
                writeln!(
                    f,
                    "- {label}: word times against the forced alignment, {matched} of {total}                      words matched: |start error| mean {start_mean:.3} s (max {start_max:.2}),                      |end error| mean {end_mean:.3} s (max {end_max:.2}); medians per stream: {}",
                    errors
                        .iter()
                        .map(|e| format!("{:.3}/{:.3} s", e.start.p50, e.end.p50))
                        .collect::<Vec<_>>()
                        .join(", ")
                )?;
            }
        }
        writeln!(f)
    }
}

/// Reads an alignment file (`start<TAB>end<TAB>word`); `None` if it has no valid line.
pub fn parse_alignment(text: &str) -> Option<Vec<TimedWord>> {
    let words: Vec<TimedWord> = text
        .lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let start = fields.next()?.trim().parse().ok()?;
            let end = fields.next()?.trim().parse().ok()?;
            let word = fields.next()?.trim().to_string();
            (!word.is_empty()).then_some(TimedWord { word, start, end })
        })
        .collect();
    (!words.is_empty()).then_some(words)
}

/// One word per normalised token, keeping its time (a written word can normalise to
/// several, "4-2" to one, "uh" to none).
fn normalise(words: &[TimedWord]) -> Vec<(String, f64, f64)> {
    words
        .iter()
        .flat_map(|w| {
            normalized_words(&w.word)
                .into_iter()
                .map(move |n| (n, w.start, w.end))
        })
        .collect()
}

/// Scores `words` against `reference`; `None` when no word matches.
pub fn word_time_error(words: &[TimedWord], reference: &[TimedWord]) -> Option<WordTimeError> {
    let hyp = normalise(words);
    let reference = normalise(reference);
    // Longest common subsequence, then the pairs along it.
    let (n, m) = (hyp.len(), reference.len());
    let mut table = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            table[i][j] = if hyp[i].0 == reference[j].0 {
                table[i + 1][j + 1] + 1
            } else {
                table[i + 1][j].max(table[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let (mut starts, mut ends) = (Vec::new(), Vec::new());
    while i < n && j < m {
        if hyp[i].0 == reference[j].0 {
            starts.push((hyp[i].1 - reference[j].1).abs());
            ends.push((hyp[i].2 - reference[j].2).abs());
            i += 1;
            j += 1;
        } else if table[i + 1][j] >= table[i][j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    Some(WordTimeError {
        matched: starts.len(),
        reference_words: m,
        start: Summary::of(&starts)?,
        end: Summary::of(&ends)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(word: &str, start: f64, end: f64) -> TimedWord {
        TimedWord {
            word: word.into(),
            start,
            end,
        }
    }

    #[test]
    fn alignments_parse_from_tab_separated_lines() {
        let text = "1.05\t1.2\tthis\n1.2\t1.34\tis\nbad line\n";
        assert_eq!(
            parse_alignment(text),
            Some(vec![word("this", 1.05, 1.2), word("is", 1.2, 1.34)])
        );
        assert_eq!(parse_alignment("nothing here"), None);
    }

    #[test]
    fn matched_words_are_scored_on_their_times() {
        let reference = [
            word("this", 1.0, 1.2),
            word("is", 1.2, 1.3),
            word("the", 1.3, 1.4),
            word("corpus", 1.4, 2.0),
        ];
        // "This" 0.1 s early, "is" missing, "a" inserted, "corpus." 0.3 s late at the end.
        let heard = [
            word(" This", 0.9, 1.2),
            word(" a", 1.2, 1.3),
            word(" the", 1.3, 1.4),
            word(" corpus.", 1.4, 2.3),
        ];
        let error = word_time_error(&heard, &reference).unwrap();
        assert_eq!((error.matched, error.reference_words), (3, 4));
        assert!((error.start.max - 0.1).abs() < 1e-9);
        assert!((error.end.max - 0.3).abs() < 1e-9);
        assert!((error.start.mean - 0.1 / 3.0).abs() < 1e-9);
        assert_eq!(word_time_error(&[word("x", 0.0, 1.0)], &reference), None);
    }
}
