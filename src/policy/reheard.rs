//! Re-heard text: the committed words still in the buffer that Whisper transcribes
//! again at the start of the next pass. Found by the words, not their times, since
//! Whisper's times move by seconds from one pass to the next around a pause.

use super::agreement::word_key;
use super::TimedWord;

/// Whether `heard` can be `committed` heard again: the same word, one letter added,
/// dropped or changed in a word of four letters or more, or an inflection ("-s",
/// "-es", "-d", "-ed") added to a word of three letters or more. The same audio heard
/// with other context comes back with another ending now and then ("American." then "Americans", "asked"
/// then "ask" in jfk.wav once the next utterance followed), and a committed word not
/// recognised is committed twice.
pub(super) fn reheard_word(committed: &str, heard: &str) -> bool {
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

/// Most committed words (the last ones) aligned with a hypothesis.
pub(super) const MAX_REHEARD_WORDS: usize = 12;

/// How the committed text is heard again at the start of a hypothesis, as
/// [`align_reheard`] finds it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Reheard {
    /// The hypothesis's words up to here repeat committed text.
    pub end: usize,
    /// Index of the first hypothesis word that repeats a committed one.
    pub first: usize,
}

/// Score of a word heard again, and cost of one changed, left out or added; a word
/// added before the first one heard again costs a quarter (see [`align_reheard`]).
const HEARD: i32 = 4;
const CHANGED: i32 = 4;
const ADDED_BEFORE: i32 = 1;

/// One cell of [`align_reheard`]'s table: the best alignment of a prefix of the
/// committed words with a prefix of the hypothesis.
#[derive(Debug, Clone, Copy, Default)]
struct Cell {
    /// Words heard again, less words changed, left out or added (see [`HEARD`]).
    score: i32,
    /// Words heard again.
    heard: usize,
    /// The first hypothesis word heard again (when `heard > 0`).
    first: usize,
    /// The last committed word is among them.
    last: bool,
}

impl Cell {
    fn better(self, other: Cell) -> Cell {
        match (other.score, other.heard) > (self.score, self.heard) {
            true => other,
            false => self,
        }
    }

    fn cost(self, cost: i32) -> Cell {
        Cell {
            score: self.score - cost,
            ..self
        }
    }
}

/// The committed text `committed` heard again at the start of `hypothesis`: the end
/// that best aligns `hypothesis[..end]` with the end of `committed`, a word heard again
/// (see [`reheard_word`]) counting for it, each word changed, left out or added against
/// it. Leading committed words may go unheard at no cost (the buffer may start inside
/// them), and a word added before the first one heard again costs a quarter: it is one
/// the pass before missed ("He" before a committed "was"), or committed text whose
/// times fell before the buffer's ("You can do it for you." before a committed "Ask
/// what you", where the last "you" alone matched the first "You" when it cost half),
/// dropped all the same. The
/// alignment must gain more than it loses and hear two committed words or the last
/// one; the earliest best end wins.
///
/// A search for the last few committed words alone missed re-heard text whenever one
/// of them came back changed ("press zero." as "press 0." and "zero", the last one made
/// up) or was the only one ("he" before "he began a confused complaint", re-timed 4 s
/// earlier into the pause before it): the words after it were then judged by their
/// times, which Whisper stretches over pauses, and were dropped or committed twice.
pub(super) fn align_reheard(committed: &[TimedWord], hypothesis: &[TimedWord]) -> Option<Reheard> {
    if committed.is_empty() || hypothesis.is_empty() {
        return None;
    }
    let width = hypothesis.len() + 1;
    // Row i: committed[..i] against every prefix of the hypothesis (row i - 1 is all
    // that row i needs).
    let mut row: Vec<Cell> = (0..width)
        .map(|j| Cell {
            score: -(j as i32) * ADDED_BEFORE,
            ..Cell::default()
        })
        .collect();
    for (i, word) in committed.iter().enumerate() {
        let mut next = vec![Cell::default(); width];
        for j in 1..width {
            let before = row[j - 1];
            let diagonal = match reheard_word(&word.text, &hypothesis[j - 1].text) {
                true => Cell {
                    score: before.score + HEARD,
                    heard: before.heard + 1,
                    first: if before.heard == 0 {
                        j - 1
                    } else {
                        before.first
                    },
                    last: i + 1 == committed.len(),
                },
                false => before.cost(CHANGED),
            };
            let added = match next[j - 1].heard {
                0 => ADDED_BEFORE,
                _ => CHANGED,
            };
            next[j] = diagonal
                .better(row[j].cost(CHANGED))
                .better(next[j - 1].cost(added));
        }
        row = next;
    }
    let needed = committed.len().min(2);
    let (end, best) = row
        .iter()
        .enumerate()
        .filter(|(_, cell)| cell.score > 0 && (cell.heard >= needed || cell.last))
        .max_by_key(|(end, cell)| (cell.score, std::cmp::Reverse(*end)))?;
    Some(Reheard {
        end,
        first: best.first,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
