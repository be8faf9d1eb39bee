//! Pauses in a stream without the voice activity controller (see `policy::silence`).

use super::*;

/// Adds a second of audio and runs a pass whose hypothesis `hear` makes from the
/// buffer's start and end (stream seconds); returns the committed text.
fn second_of_audio(
    processor: &mut OnlineProcessor,
    hear: impl Fn(f64, f64) -> Transcript,
) -> Option<Commit> {
    processor.insert_audio(&vec![0.0; SAMPLE_RATE as usize]);
    let end = processor.received_seconds();
    let start = end - processor.buffer_seconds();
    processor
        .process(|_, _| Ok::<_, Infallible>(Some(hear(start, end))))
        .unwrap()
        .commit()
}

/// Whisper as a script: the words said (stream times) whose audio the buffer holds,
/// timed from its start.
fn said<'a>(words: &'a [(f64, f64, &str)]) -> impl Fn(f64, f64) -> Transcript + 'a {
    move |start, end| {
        let heard: Vec<_> = words
            .iter()
            .filter(|w| w.0 >= start && w.1 <= end)
            .map(|&(s, e, text)| (s - start, e - start, text))
            .collect();
        transcript(&heard, &[])
    }
}

#[test]
fn silence_heard_twice_is_cut_and_the_next_words_are_not_timed_in_it() {
    let mut processor = OnlineProcessor::new(PolicyConfig::default());
    let hello = [(0.2, 0.6, " Hello"), (0.7, 1.5, " world.")];
    let text: String = (1..=3)
        .filter_map(|_| second_of_audio(&mut processor, said(&hello)))
        .map(|commit| commit.text)
        .collect();
    assert_eq!(text, " Hello world.");

    // Silence: each pass hears the committed words again, and nothing new.
    for _ in 4..=5 {
        assert_eq!(second_of_audio(&mut processor, said(&hello)), None);
        assert_eq!(processor.buffer_seconds(), processor.received_seconds());
    }
    // The pass at 6 s is the third that heard nothing new; the one at 5 s ended 3.5 s
    // after the last committed word: its audio, all but KEEP_SEC, goes.
    for _ in 6..=8 {
        assert_eq!(second_of_audio(&mut processor, said(&hello)), None);
        let kept = 1.0 + silence::KEEP_SEC;
        assert!((processor.buffer_seconds() - kept).abs() < 1e-3);
    }

    // Speech from 8.2 s; Whisper times its first word at the buffer's start (5 s),
    // in the silence two passes heard.
    let early = |start: f64, _: f64| {
        assert_eq!(start, 5.0);
        transcript(&[(0.0, 0.4, " Again"), (4.0, 4.4, " now.")], &[])
    };
    assert_eq!(second_of_audio(&mut processor, early), None);
    let commit = second_of_audio(&mut processor, early).unwrap();
    assert_eq!(commit.text, " Again now.");
    assert!(commit.start >= 8.0 - ONSET_LAG_SEC, "{commit:?}");
    assert!(commit.words[0].end <= commit.words[1].start, "{commit:?}");
}

#[test]
fn speech_from_the_voice_activity_controller_is_not_cut() {
    let mut processor = OnlineProcessor::new(PolicyConfig::default());
    let hello = [(0.2, 0.6, " Hello"), (0.7, 1.5, " world.")];
    for second in 0..6u64 {
        let piece = Piece {
            at: second * SAMPLE_RATE as u64,
            audio: vec![0.0; SAMPLE_RATE as usize],
            voiced: SAMPLE_RATE as usize,
            ends_utterance: false,
            onset: (second == 0).then_some(3_200),
        };
        let end = (second + 1) as f64;
        let start = end - processor.buffer_seconds() - 1.0;
        processor
            .update(vec![piece], false, 1, |_, _| {
                Ok::<_, Infallible>(Some(said(&hello)(start, end)))
            })
            .unwrap();
    }
    // Quiet passes at 4, 5 and 6 s: without the controller the buffer would be cut.
    assert_eq!(processor.buffer_seconds(), 6.0);
}
