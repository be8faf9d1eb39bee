use super::agreement::same_word;
use super::repetition::truncate_at_repetition;
use super::*;
use std::convert::Infallible;

fn words(spec: &[(f64, f64, &str)]) -> Vec<Word> {
    spec.iter()
        .map(|&(start, end, text)| Word {
            start,
            end,
            text: text.to_string(),
        })
        .collect()
}

/// A piece of speech (every sample voiced) from the voice activity controller.
fn speech(at: u64, audio: Vec<f32>, ends_utterance: bool) -> Piece {
    Piece {
        at,
        audio,
        voiced: usize::MAX,
        ends_utterance,
        onset: None,
    }
}

fn texts(words: &[Word]) -> Vec<&str> {
    words.iter().map(|w| w.text.as_str()).collect()
}

#[test]
fn commits_the_common_prefix_of_two_hypotheses() {
    let mut buffer = HypothesisBuffer::default();
    let first = buffer.agree(words(&[(0.0, 0.5, " And"), (0.5, 0.9, " so")]));
    assert!(first.is_empty(), "one hypothesis commits nothing");
    let second = buffer.agree(words(&[
        (0.0, 0.5, " And"),
        (0.5, 0.9, " so,"),
        (0.9, 1.2, " my"),
    ]));
    assert_eq!(texts(&second), vec![" And", " so,"]);
    assert_eq!(texts(buffer.pending()), vec![" my"]);
}

#[test]
fn committed_times_never_go_backwards() {
    let mut buffer = HypothesisBuffer::default();
    let hypothesis = words(&[
        (0.0, 1.5, " country"),
        (1.0, 1.3, " you"),
        (1.3, 1.2, " ask"),
    ]);
    buffer.agree(hypothesis.clone());
    let agreed = buffer.agree(hypothesis);
    let times: Vec<(f64, f64)> = agreed.iter().map(|w| (w.start, w.end)).collect();
    assert_eq!(times, vec![(0.0, 1.5), (1.5, 1.5), (1.5, 1.5)]);
}

#[test]
fn stops_at_the_first_disagreement() {
    let mut buffer = HypothesisBuffer::default();
    buffer.agree(words(&[
        (0.0, 0.5, " the"),
        (0.5, 1.0, " cat"),
        (1.0, 1.5, " sat"),
    ]));
    let agreed = buffer.agree(words(&[
        (0.0, 0.5, " the"),
        (0.5, 1.0, " hat"),
        (1.0, 1.5, " sat"),
    ]));
    assert_eq!(texts(&agreed), vec![" the"]);
}

#[test]
fn drops_words_repeated_from_the_committed_text() {
    let mut buffer = HypothesisBuffer::default();
    buffer.agree(words(&[(0.0, 0.5, " ask"), (0.5, 1.0, " not")]));
    assert_eq!(
        texts(&buffer.agree(words(&[(0.0, 0.5, " ask"), (0.5, 1.0, " not")]))),
        vec![" ask", " not"]
    );
    // The next transcription starts at the committed words again with slightly
    // different times: they must not be committed twice.
    buffer.agree(words(&[
        (0.95, 1.05, " not"),
        (1.1, 1.4, " what"),
        (1.4, 1.8, " your"),
    ]));
    let agreed = buffer.agree(words(&[
        (0.95, 1.05, " not"),
        (1.1, 1.4, " what"),
        (1.4, 1.8, " your"),
        (1.8, 2.3, " country"),
    ]));
    assert_eq!(texts(&agreed), vec![" what", " your"]);
}

fn transcript(spec: &[(f64, f64, &str)], segment_ends: &[f64]) -> Transcript {
    Transcript {
        words: words(spec),
        segment_ends: segment_ends.to_vec(),
    }
}

#[test]
fn processor_commits_text_and_finishes_with_the_rest() {
    let mut processor = OnlineProcessor::new(PolicyConfig::default());
    processor.insert_audio(&vec![0.0; 16_000]);
    let hyp = transcript(&[(0.0, 0.4, " And"), (0.4, 0.8, " so")], &[0.8]);
    let first = processor
        .process(|_, _| Ok::<_, Infallible>(Some(hyp.clone())))
        .unwrap()
        .commit();
    assert_eq!(first, None);
    processor.insert_audio(&vec![0.0; 16_000]);
    let hyp2 = transcript(
        &[(0.0, 0.4, " And"), (0.4, 0.8, " so"), (0.9, 1.5, " my")],
        &[1.5],
    );
    let second = processor
        .process(|audio, prompt| {
            assert_eq!(audio.len(), 32_000, "the whole buffer is transcribed");
            assert_eq!(prompt, "");
            Ok::<_, Infallible>(Some(hyp2.clone()))
        })
        .unwrap()
        .commit()
        .unwrap();
    assert_eq!(second.text, " And so");
    assert_eq!((second.start, second.end), (0.0, 0.8));
    let last = processor.finish().unwrap();
    assert_eq!(last.text, " my");
    assert_eq!(processor.finish(), None);
}

#[test]
fn each_utterance_is_committed_when_it_ends_on_the_stream_clock() {
    let mut processor = OnlineProcessor::new(PolicyConfig::default());
    let seen = std::cell::RefCell::new(Vec::new());
    let mut transcribe = |audio: &[f32], _: &str| {
        seen.borrow_mut().push(audio.len());
        Ok::<_, Infallible>(Some(transcript(
            &[(0.1, 0.5, " hello"), (0.5, 0.9, " there")],
            &[0.9],
        )))
    };
    // An odd length, so that no sum of seconds can land exactly on the end.
    let first = speech(16_000 / 3, vec![0.0; 20_011], true);
    let outcome = processor
        .update(vec![first], false, 16_000, &mut transcribe)
        .unwrap();
    // One transcription, and everything committed at once: nothing agreed yet, but
    // the utterance ended.
    assert_eq!(outcome.transcriptions, 1);
    assert_eq!(outcome.commits.len(), 1);
    assert_eq!(outcome.commits[0].text, " hello there");
    // The utterance's last `context_sec` (here all of it) stay as context.
    assert_eq!(processor.buffer_seconds(), 20_011.0 / 16_000.0);
    // The next utterance, 10 s into the stream, long after the end of that one: its
    // buffer holds its own audio only.
    let second = speech(160_000, vec![0.0; 17_000], true);
    let outcome = processor
        .update(vec![second], false, 16_000, &mut transcribe)
        .unwrap();
    assert_eq!(*seen.borrow(), vec![20_011, 17_000]);
    let commit = &outcome.commits[0];
    assert!((commit.start - 10.1).abs() < 1e-9, "{commit:?}");
    assert!((commit.end - 10.9).abs() < 1e-9, "{commit:?}");
    // An utterance end with nothing new only commits what is pending.
    let outcome = processor
        .update(
            vec![speech(177_000, Vec::new(), true)],
            false,
            16_000,
            &mut transcribe,
        )
        .unwrap();
    assert_eq!(outcome, UpdateOutcome::default());
    assert_eq!(seen.borrow().len(), 2);
}

#[test]
fn pauses_alone_call_for_no_transcription() {
    let mut processor = OnlineProcessor::new(PolicyConfig::default());
    let calls = std::cell::Cell::new(0);
    let mut transcribe = |_: &[f32], _: &str| {
        calls.set(calls.get() + 1);
        Ok::<_, Infallible>(Some(transcript(&[(0.1, 0.6, " yes")], &[0.6])))
    };
    let piece = |at: u64, voiced, ends_utterance| Piece {
        at,
        audio: vec![0.0; 16_000],
        voiced,
        ends_utterance,
        onset: None,
    };
    processor
        .update(
            vec![piece(0, 16_000, false)],
            false,
            16_000,
            &mut transcribe,
        )
        .unwrap();
    assert_eq!(calls.get(), 1);
    // A second of pause inside the utterance: nothing new was said.
    processor
        .update(
            vec![piece(16_000, 0, false)],
            false,
            16_000,
            &mut transcribe,
        )
        .unwrap();
    assert_eq!(calls.get(), 1);
    // The utterance ends in silence: what was heard is committed without a call.
    let outcome = processor
        .update(vec![piece(32_000, 0, true)], false, 16_000, &mut transcribe)
        .unwrap();
    assert_eq!(calls.get(), 1);
    assert_eq!(outcome.commits[0].text, " yes");
    // Speech, then the end: one more call.
    processor
        .update(
            vec![piece(64_000, 8_000, true)],
            false,
            16_000,
            &mut transcribe,
        )
        .unwrap();
    assert_eq!(calls.get(), 2);
}

#[test]
fn a_buffer_of_silence_does_not_grow() {
    let mut processor = OnlineProcessor::new(PolicyConfig::default());
    for _ in 0..30 {
        processor.insert_audio(&vec![0.0; 16_000]);
        processor
            .process(|_, _| Ok::<_, Infallible>(Some(Transcript::default())))
            .unwrap();
        assert!(processor.buffer_seconds() <= 6.0 + 1e-9);
    }
    // Thirty seconds in, the buffer holds only the last few of them.
    assert!(
        processor.buffer_offset() >= 24.0,
        "{}",
        processor.buffer_offset()
    );
}

#[test]
fn a_cut_transcription_loses_nothing() {
    let mut processor = OnlineProcessor::new(PolicyConfig::default());
    let heard = transcript(&[(0.0, 0.4, " And"), (0.4, 0.8, " so")], &[0.8]);
    let piece = |at: u64, ends_utterance| Piece {
        at,
        audio: vec![0.0; 16_000],
        voiced: 16_000,
        ends_utterance,
        onset: None,
    };
    let ok = |_: &[f32], _: &str| Ok::<_, Infallible>(Some(heard.clone()));
    let cut = |_: &[f32], _: &str| Ok::<_, Infallible>(None);
    processor
        .update(vec![piece(0, false)], false, 16_000, ok)
        .unwrap();
    // Cut: nothing changes, and the audio is still waiting to be transcribed.
    let outcome = processor
        .update(vec![piece(16_000, false)], false, 16_000, cut)
        .unwrap();
    assert_eq!((outcome.transcriptions, outcome.cuts), (1, 1));
    assert!(outcome.commits.is_empty());
    assert_eq!(processor.unprocessed_samples(), 16_000);
    assert_eq!(processor.buffer_seconds(), 2.0);
    // The utterance ends and its last call is cut every time it is tried: what was
    // heard is committed.
    let outcome = processor
        .update(vec![piece(32_000, true)], false, 16_000, cut)
        .unwrap();
    assert_eq!(outcome.cuts, FINAL_TRIES);
    assert_eq!(outcome.commits.len(), 1);
    assert_eq!(outcome.commits[0].text, " And so");
    // The next utterance's last call is cut once: tried again, all of it is heard.
    let tries = std::cell::Cell::new(0);
    let cut_once = |_: &[f32], _: &str| {
        tries.set(tries.get() + 1);
        let words = [(3.1, 3.5, " my"), (3.5, 3.9, " fellow")];
        Ok::<_, Infallible>((tries.get() > 1).then(|| transcript(&words, &[3.9])))
    };
    let outcome = processor
        .update(vec![piece(48_000, true)], false, 16_000, cut_once)
        .unwrap();
    assert_eq!((outcome.transcriptions, outcome.cuts), (2, 1));
    assert_eq!(outcome.commits[0].text, " my fellow");
}

#[test]
fn trims_at_a_completed_segment_and_prompts_with_what_came_before() {
    let config = PolicyConfig {
        buffer_trimming_sec: 2.0,
        prompt_chars: 200,
        context_sec: 1.0,
        ..PolicyConfig::default()
    };
    let mut processor = OnlineProcessor::new(config);
    processor.insert_audio(&vec![0.0; 3 * 16_000]);
    let hyp = transcript(
        &[
            (0.0, 0.5, " One."),
            (1.0, 1.5, " Two"),
            (1.5, 2.5, " three"),
        ],
        &[0.6, 2.5],
    );
    for _ in 0..2 {
        processor
            .process(|_, _| Ok::<_, Infallible>(Some(hyp.clone())))
            .unwrap();
    }
    // Everything agreed is committed; the buffer was cut at the first segment's end.
    assert!((processor.buffer_offset() - 0.6).abs() < 1e-3);
    assert_eq!(
        processor.audio.len(),
        3 * 16_000 - (0.6 * 16_000.0) as usize
    );
    let mut seen_prompt = String::new();
    processor
        .process(|audio, prompt| {
            seen_prompt = prompt.to_string();
            assert_eq!(audio.len(), 38_400);
            Ok::<_, Infallible>(Some(Transcript::default()))
        })
        .unwrap();
    assert_eq!(seen_prompt, " One.");
}

#[test]
fn trimming_keeps_some_committed_audio_as_context() {
    let config = PolicyConfig {
        buffer_trimming_sec: 4.0,
        context_sec: 2.0,
        ..PolicyConfig::default()
    };
    let mut processor = OnlineProcessor::new(config);
    processor.insert_audio(&vec![0.0; 8 * 16_000]);
    // One long segment: the cut falls between words, 2 s before the committed end.
    let spoken: Vec<(f64, f64, &str)> = (0..8)
        .map(|i| {
            (
                i as f64,
                i as f64 + 0.8,
                [" a", " b", " c", " d", " e", " f", " g", " h"][i],
            )
        })
        .collect();
    let hyp = transcript(&spoken, &[7.8]);
    for _ in 0..2 {
        processor
            .process(|_, _| Ok::<_, Infallible>(Some(hyp.clone())))
            .unwrap();
    }
    // All eight words agreed and ended at 7.8 s; the last word ending by 5.8 s is " f".
    assert!(
        (processor.buffer_offset() - 5.8).abs() < 1e-3,
        "{}",
        processor.buffer_offset()
    );
    assert_eq!(processor.hypotheses.committed_in_buffer.len(), 2);
}

#[test]
fn reheard_words_are_found_by_text_when_their_times_are_off() {
    let mut buffer = HypothesisBuffer::default();
    let heard = words(&[(4.0, 4.5, " in"), (4.5, 5.0, " his"), (5.0, 6.0, " power")]);
    buffer.agree(heard.clone());
    buffer.agree(heard);
    // The next transcription squeezes every time together, well before 6.0 s.
    let squeezed = words(&[
        (4.2, 4.3, " in"),
        (4.3, 4.4, " his"),
        (4.4, 4.5, " power"),
        (4.5, 4.6, " to"),
        (4.6, 4.7, " do"),
    ]);
    buffer.agree(squeezed.clone());
    assert_eq!(texts(buffer.pending()), vec![" to", " do"]);
    assert_eq!(texts(&buffer.agree(squeezed)), vec![" to", " do"]);
}

#[test]
fn the_buffer_never_outgrows_the_limit() {
    let config = PolicyConfig {
        buffer_trimming_sec: 5.0,
        max_buffer_sec: 10.0,
        prompt_chars: 200,
        ..PolicyConfig::default()
    };
    let mut processor = OnlineProcessor::new(config);
    let mut counter = 0;
    for _ in 0..30 {
        processor.insert_audio(&vec![0.0; 16_000]);
        counter += 1;
        // A hypothesis that changes every time never agrees.
        let hyp = transcript(&[(0.0, 0.5, &format!(" w{counter}"))], &[0.5]);
        processor
            .process(|_, _| Ok::<_, Infallible>(Some(hyp.clone())))
            .unwrap();
        assert!(processor.buffer_seconds() <= 10.0 + 1e-9);
    }
    assert!((processor.received_seconds() - 30.0).abs() < 1e-9);
}

#[test]
fn a_phrase_repeated_in_a_loop_is_cut() {
    let mut looped = words(&[
        (0.0, 0.3, " And"),
        (0.3, 0.5, " so"),
        (0.5, 0.7, " my"),
        (0.7, 1.0, " fellow"),
        (1.0, 1.5, " Americans."),
        (1.6, 1.8, " And"),
        (1.8, 2.0, " so"),
        (2.0, 2.2, " my"),
        (2.2, 2.5, " fellow"),
        (2.5, 3.0, " Americans."),
    ]);
    truncate_at_repetition(&mut looped);
    assert_eq!(
        texts(&looped),
        vec![" And", " so", " my", " fellow", " Americans."]
    );

    // Short repeats are speech ("no, no"), and so are phrases that recur later.
    let speech = words(&[
        (0.0, 0.2, " no,"),
        (0.2, 0.4, " no"),
        (0.4, 0.6, " what"),
        (0.6, 0.8, " you"),
        (0.8, 1.0, " can"),
        (1.0, 1.2, " do"),
        (1.2, 1.4, " and"),
        (1.4, 1.6, " what"),
        (1.6, 1.8, " you"),
        (1.8, 2.0, " can"),
    ]);
    let mut kept = speech.clone();
    truncate_at_repetition(&mut kept);
    assert_eq!(kept, speech);

    let mut ones = words(&[
        (0.0, 0.2, " 1"),
        (0.2, 0.4, " 1"),
        (0.4, 0.6, " 1"),
        (0.6, 0.8, " 1"),
        (0.8, 1.0, " 1"),
    ]);
    truncate_at_repetition(&mut ones);
    assert_eq!(texts(&ones), vec![" 1"]);

    // A loop cut off by the token limit mid-phrase is still a loop.
    let mut cut_off = words(&[
        (0.0, 0.2, " thank"),
        (0.2, 0.4, " you"),
        (0.4, 0.6, " so"),
        (0.6, 0.8, " much"),
        (0.8, 1.0, " thank"),
        (1.0, 1.2, " you"),
        (1.2, 1.4, " so"),
        (1.4, 1.6, " much"),
        (1.6, 1.8, " thank"),
    ]);
    truncate_at_repetition(&mut cut_off);
    assert_eq!(texts(&cut_off), vec![" thank", " you", " so", " much"]);

    // A loop the token limit cut short of a second round.
    let mut cut_short = words(&[
        (0.0, 0.2, " I"),
        (0.2, 0.4, " think"),
        (0.4, 0.6, " it's"),
        (0.6, 0.8, " good."),
        (0.8, 1.0, " Thanks."),
        (1.0, 1.2, " And"),
        (1.2, 1.4, " I"),
        (1.4, 1.6, " think"),
        (1.6, 1.8, " it's"),
        (1.8, 2.0, " good"),
    ]);
    truncate_at_repetition(&mut cut_short);
    assert_eq!(
        texts(&cut_short),
        vec![" I", " think", " it's", " good.", " Thanks.", " And"]
    );

    // Repeats that speech moves on from are kept.
    let said = words(&[
        (0.0, 0.2, " words"),
        (0.2, 0.4, " words"),
        (0.4, 0.6, " words"),
        (0.6, 0.8, " words"),
        (0.8, 1.0, " and"),
        (1.0, 1.2, " that's"),
        (1.2, 1.4, " all"),
    ]);
    let mut kept = said.clone();
    truncate_at_repetition(&mut kept);
    assert_eq!(kept, said);
}

#[test]
fn word_comparison_ignores_case_and_punctuation() {
    assert!(same_word(" so,", " So"));
    assert!(same_word(" don't", " Don't."));
    assert!(!same_word(" cat", " hat"));
    assert!(same_word(" -", "-"));
}

mod past_end;
mod pauses;
mod utterances;
