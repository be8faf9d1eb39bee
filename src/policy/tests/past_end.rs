//! Words Whisper times past the end of its audio.

use super::super::repetition::truncate_repeats_past;
use super::*;

#[test]
fn copies_of_a_phrase_past_the_end_of_the_audio_are_cut() {
    // The last pass of pauses-2 with tiny.en q8_0: the audio ends at 201.60 s.
    let mut looped = words(&[
        (200.22, 201.0, " operator,"),
        (201.33, 201.6, " Press"),
        (201.6, 201.6, " 0."),
        (201.6, 201.6, " Press"),
        (201.6, 201.6, " 0."),
        (201.6, 201.6, " Press"),
        (201.6, 201.6, " 0."),
    ]);
    truncate_repeats_past(&mut looped, 201.6);
    assert_eq!(texts(&looped), [" operator,", " Press", " 0."]);

    // One word said again past the end.
    let mut twice = words(&[(1.0, 1.4, " Thanks."), (2.0, 2.0, " Thanks.")]);
    truncate_repeats_past(&mut twice, 2.0);
    assert_eq!(texts(&twice), [" Thanks."]);
}

/// Whether `words` come through [`truncate_repeats_past`] with audio ending at `end`
/// unchanged.
fn kept_whole(words: &[Word], end: f64) -> bool {
    let mut kept = words.to_vec();
    truncate_repeats_past(&mut kept, end);
    kept == words
}

#[test]
fn repeats_inside_the_audio_and_new_words_at_its_end_are_kept() {
    // Said twice, both within the audio.
    let spoken = words(&[
        (0.5, 0.8, " words,"),
        (0.9, 1.2, " words,"),
        (1.3, 1.6, " words."),
    ]);
    assert!(kept_whole(&spoken, 3.0));

    // A word squeezed against the end that repeats nothing (a cut-off last word).
    let squeezed = words(&[(1.0, 1.5, " ask"), (1.6, 2.0, " not"), (2.0, 2.0, " what")]);
    assert!(kept_whole(&squeezed, 2.0));

    // A repeat that starts inside the audio is speech, or the other guards' business.
    let straddling = words(&[
        (1.0, 1.3, " press"),
        (1.4, 1.6, " 0"),
        (1.8, 2.0, " press"),
        (2.0, 2.0, " 0"),
    ]);
    assert!(kept_whole(&straddling, 2.0));

    assert!(kept_whole(&[], 1.0));
}
