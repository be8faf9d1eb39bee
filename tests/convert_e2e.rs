//! End to end: a converted model (by default `models/ggml-tiny.en.bin`, as
//! `./models/fetch.sh tiny.en` leaves it; or the file named by `RESWHIS_TEST_MODEL`)
//! loads in whisper.cpp and transcribes `shared/audio/jfk.wav` word for word with greedy
//! decoding.

use std::path::{Path, PathBuf};

use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn model_path() -> PathBuf {
    let path = match std::env::var_os("RESWHIS_TEST_MODEL") {
        Some(p) => PathBuf::from(p),
        None => manifest_dir().join("models/ggml-tiny.en.bin"),
    };
    assert!(
        path.is_file(),
        "model {} not found: run `./models/fetch.sh tiny.en` from the repository root \
         (or set RESWHIS_TEST_MODEL to a whisper.cpp ggml model)",
        path.display()
    );
    path
}

#[test]
fn converted_model_transcribes_jfk_exactly() {
    let model = model_path();
    let audio_dir = manifest_dir().join("../shared/audio");
    let reference = std::fs::read_to_string(audio_dir.join("jfk.txt")).expect("reading jfk.txt");

    let mut reader = hound::WavReader::open(audio_dir.join("jfk.wav")).expect("opening jfk.wav");
    let spec = reader.spec();
    assert_eq!(
        (spec.sample_rate, spec.channels),
        (16_000, 1),
        "jfk.wav format"
    );
    let samples: Vec<f32> = reader
        .samples::<i16>()
        .map(|s| s.expect("reading jfk.wav") as f32 / 32768.0)
        .collect();

    let ctx = WhisperContext::new_with_params(
        model.to_str().expect("UTF-8 model path"),
        WhisperContextParameters::default(),
    )
    .unwrap_or_else(|e| panic!("whisper.cpp failed to load {}: {e}", model.display()));
    let mut state = ctx.create_state().expect("creating whisper state");
    let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
    params.set_language(Some("en"));
    params.set_print_special(false);
    params.set_print_progress(false);
    params.set_print_realtime(false);
    params.set_print_timestamps(false);
    state.full(params, &samples).expect("transcribing");

    let transcript: String = state
        .as_iter()
        .map(|segment| segment.to_str_lossy().expect("segment text").into_owned())
        .collect();
    println!("transcript: {}", transcript.trim());

    assert_eq!(
        reswhis::wer::word_error_rate(&reference, &transcript),
        0.0,
        "\nreference:  {reference}\ntranscript: {transcript}"
    );
}
