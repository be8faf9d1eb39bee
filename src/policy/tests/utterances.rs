//! Utterances from the voice activity controller: context across them, a context that
//! hides one, and the times of words placed in their padding.

use super::*;

#[test]
fn an_utterance_soon_after_the_last_is_heard_with_its_end_as_context() {
    let mut processor = OnlineProcessor::new(PolicyConfig::default());
    let seen = std::cell::RefCell::new(Vec::new());
    let mut transcribe = |audio: &[f32], _: &str| {
        seen.borrow_mut().push(audio.to_vec());
        Ok::<_, Infallible>(Some(transcript(&[(0.1, 0.5, " hello")], &[0.5])))
    };
    let utterance = |at: u64, seconds: usize| speech(at, vec![0.5; seconds * 16_000], true);
    processor
        .update(vec![utterance(0, 1)], false, 16_000, &mut transcribe)
        .unwrap();
    // 0.5 s later: the first second, 0.5 s of silence and the new audio, on the
    // stream's clock.
    processor
        .update(vec![utterance(24_000, 1)], false, 16_000, &mut transcribe)
        .unwrap();
    let second = seen.borrow()[1].clone();
    assert_eq!(second.len(), 40_000);
    assert!(second[..16_000].iter().all(|&s| s == 0.5));
    assert!(second[16_000..24_000].iter().all(|&s| s == 0.0));
    // Much later: heard alone.
    processor
        .update(vec![utterance(400_000, 1)], false, 16_000, &mut transcribe)
        .unwrap();
    assert_eq!(seen.borrow()[2].len(), 16_000);
}

#[test]
fn an_utterance_hidden_by_its_context_is_heard_alone() {
    let mut processor = OnlineProcessor::new(PolicyConfig::default());
    let seen = std::cell::RefCell::new(Vec::new());
    // Whisper hears only the context (the first second) whatever follows it, unless
    // the buffer starts with the new utterance.
    let mut transcribe = |audio: &[f32], _: &str| {
        seen.borrow_mut().push(audio.len());
        let words = if audio[0] == 0.5 {
            transcript(&[(0.1, 0.9, " before")], &[0.9])
        } else {
            transcript(&[(0.2, 0.6, " after"), (0.6, 1.9, " that")], &[1.9])
        };
        Ok::<_, Infallible>(Some(words))
    };
    let first = speech(0, vec![0.5; 16_000], true);
    let outcome = processor
        .update(vec![first], false, 16_000, &mut transcribe)
        .unwrap();
    assert_eq!(outcome.commits[0].text, " before");
    // The next utterance follows at once (the controller's padding covered the pause).
    let short =
        |at: u64, samples: usize, ends_utterance| speech(at, vec![0.25; samples], ends_utterance);
    // 1.5 s of it: too short to doubt the context; nothing new heard yet.
    let outcome = processor
        .update(
            vec![short(16_000, 24_000, false)],
            false,
            16_000,
            &mut transcribe,
        )
        .unwrap();
    assert_eq!((outcome.transcriptions, outcome.commits.len()), (1, 0));
    assert_eq!(*seen.borrow(), vec![16_000, 40_000]);
    // Past 2 s of speech with still nothing heard after the context: the same update
    // transcribes the utterance alone, and its words are on the stream's clock.
    let outcome = processor
        .update(
            vec![short(40_000, 16_000, true)],
            false,
            16_000,
            &mut transcribe,
        )
        .unwrap();
    assert_eq!(*seen.borrow(), vec![16_000, 40_000, 56_000, 40_000]);
    assert_eq!(outcome.transcriptions, 2);
    let commit = &outcome.commits[0];
    assert_eq!(commit.text, " after that");
    assert!((commit.start - 1.2).abs() < 1e-9, "{commit:?}");
}

#[test]
fn words_timed_into_the_padding_are_moved_after_the_onset() {
    let mut processor = OnlineProcessor::new(PolicyConfig::default());
    let mut transcribe = |_: &[f32], _: &str| {
        Ok::<_, Infallible>(Some(transcript(
            &[(0.1, 0.4, " this"), (0.5, 0.8, " is"), (1.5, 1.9, " fine")],
            &[1.9],
        )))
    };
    // Speech heard from 11.0 s; the utterance's audio (with its padding) from 10.0 s.
    let piece = Piece {
        at: 160_000,
        audio: vec![0.0; 48_000],
        voiced: usize::MAX,
        ends_utterance: true,
        onset: Some(176_000),
    };
    let outcome = processor
        .update(vec![piece], false, 16_000, &mut transcribe)
        .unwrap();
    let times: Vec<(f64, f64)> = outcome.commits[0]
        .words
        .iter()
        .map(|w| (w.start, w.end))
        .collect();
    // From 10.85 s (the onset less Silero's lag) to 11.5 s, where " fine" starts.
    let scale = (11.5 - 10.85) / (11.5 - 10.1);
    let at = |t: f64| 10.85 + (t - 10.1) * scale;
    let expected = [(10.85, at(10.4)), (at(10.5), at(10.8)), (11.5, 11.9)];
    for (got, want) in times.iter().zip(expected) {
        assert!(
            (got.0 - want.0).abs() < 1e-9 && (got.1 - want.1).abs() < 1e-9,
            "{times:?}"
        );
    }
    // Without an onset (no voice activity controller) the times are Whisper's.
    let mut processor = OnlineProcessor::new(PolicyConfig::default());
    processor.insert_audio(&vec![0.0; 48_000]);
    processor.process(&mut transcribe).unwrap();
    let commit = processor.finish().unwrap();
    assert_eq!((commit.words[0].start, commit.words[1].start), (0.1, 0.5));
}

#[test]
fn an_utterance_is_first_transcribed_once_it_has_had_the_interval_of_speech() {
    let mut processor = OnlineProcessor::new(PolicyConfig::default());
    // The controller's first piece: 1 s of padding and 0.128 s of speech from 1.0 s.
    let onset = Piece {
        onset: Some(16_000),
        ..speech(0, vec![0.5; 18_048], false)
    };
    let mut feed = |piece| {
        let silent = |_: &[f32], _: &str| Ok::<_, Infallible>(Some(Transcript::default()));
        processor
            .update(vec![piece], false, 12_000, silent)
            .unwrap()
    };
    let outcome = feed(onset);
    assert_eq!(outcome.transcriptions, 0, "the padding is not new speech");
    let outcome = feed(speech(18_048, vec![0.5; 6_400], false));
    assert_eq!(outcome.transcriptions, 0, "0.53 s of speech");
    let outcome = feed(speech(24_448, vec![0.5; 3_600], false));
    assert_eq!(
        outcome.transcriptions, 1,
        "0.75 s of speech: one interval of 12 000 samples"
    );
}
