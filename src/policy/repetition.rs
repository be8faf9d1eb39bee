//! Decoding loops: Whisper sometimes repeats a phrase until its token limit. Two such
//! hypotheses can agree, so the loop is cut before agreement is looked for.

use super::agreement::{same_word, word_key};
use super::TimedWord;

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
pub(crate) fn truncate_at_repetition(words: &mut Vec<TimedWord>) {
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

/// Longest phrase [`truncate_repeats_past`] looks for.
const MAX_PAST_END_PHRASE: usize = 4;

/// Cuts copies of the phrase before them that Whisper timed at or past `end`, the end
/// of its audio: nothing was said there, so they are a loop that ran into the
/// encoder's slack, too short for [`truncate_at_repetition`] ("… operator, Press 0.
/// Press 0. Press 0.", the last five words at the very end of a stream's last buffer;
/// tiny.en `q8_0` on the benchmark's pauses stream). The engine clamps such words to
/// the end, so their start is `end`.
pub(crate) fn truncate_repeats_past(words: &mut Vec<TimedWord>, end: f64) {
    const AT_END_SEC: f64 = 0.005;
    'cut: loop {
        let n = words.len();
        for len in 1..=MAX_PAST_END_PHRASE.min(n / 2) {
            let (before, copy) = (&words[n - 2 * len..n - len], &words[n - len..]);
            let past_end = copy.iter().all(|w| w.start >= end - AT_END_SEC);
            if past_end
                && before
                    .iter()
                    .zip(copy)
                    .all(|(a, b)| same_word(&a.text, &b.text))
            {
                words.truncate(n - len);
                continue 'cut;
            }
        }
        return;
    }
}
