//! Pauses in a stream without the voice activity controller (see `policy::silence`).

use super::*;

const HELLO: [(f64, f64, &str); 2] = [(0.2, 0.6, " Hello"), (0.7, 1.5, " world.")];

/// Whisper as a script: the words said (stream times) whose audio the buffer holds,
/// timed from its start.
fn said(words: &[(f64, f64, &str)], start: f64, end: f64) -> Transcript {
    let heard: Vec<_> = words
        .iter()
        .filter(|w| w.0 >= start && w.1 <= end)
        .map(|&(s, e, text)| (s - start, e - start, text))
        .collect();
    transcript(&heard, &[])
}

/// After "Hello world." and a pause, "Again now." said from 8.2 s, but Whisper times
/// "Again" right after "world.", at 2 s.
fn early_again(start: f64, end: f64) -> Transcript {
    let mut heard = said(&HELLO, start, end);
    if end > 8.6 {
        heard
            .words
            .extend(said(&[(2.0, 2.4, " Again"), (8.6, 9.0, " now.")], start, end).words);
    }
    heard
}

/// Streams ten seconds, a second at a time, through `update` (without the controller
/// unless `onset` marks the first piece), Whisper heard as `early_again`.
fn stream(onset: Option<u64>) -> Vec<Commit> {
    let mut processor = OnlineProcessor::new(PolicyConfig::default());
    let mut commits = Vec::new();
    for second in 0..10u64 {
        let piece = Piece {
            at: second * SAMPLE_RATE as u64,
            audio: vec![0.0; SAMPLE_RATE as usize],
            voiced: SAMPLE_RATE as usize,
            ends_utterance: false,
            onset: onset.filter(|_| second == 0),
        };
        let end = (second + 1) as f64;
        let start = end - processor.buffer_seconds() - 1.0;
        let outcome = processor
            .update(vec![piece], false, 1, |_, _| {
                Ok::<_, Infallible>(Some(early_again(start, end)))
            })
            .unwrap();
        commits.extend(outcome.commits);
    }
    commits
}

#[test]
fn words_after_a_pause_are_not_timed_in_the_silence_heard() {
    let commits = stream(None);
    let text: String = commits.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(text, " Hello world. Again now.");
    let again = commits.iter().flat_map(|c| &c.words).nth(2).unwrap();
    // The pass over 0..8 s heard nothing new.
    assert!(again.start >= 8.0 - ONSET_LAG_SEC, "{again:?}");
    assert!(again.end <= 8.6, "{again:?}");
}

#[test]
fn the_voice_activity_controller_alone_says_where_speech_starts() {
    let commits = stream(Some(3_200));
    let again = commits.iter().flat_map(|c| &c.words).nth(2).unwrap();
    assert_eq!(again.text, " Again");
    assert_eq!(again.start, 2.0, "{again:?}");
}
