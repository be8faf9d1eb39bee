//! The Silero VAD model as `./models/fetch.sh silero-vad` leaves it (downloaded, or built
//! by this crate's converter from PyPI's silero-vad 6.2.3): whisper.cpp loads it and
//! computes the probabilities it should, and reswhis's native forward pass matches
//! Silero's ONNX model window by window.

mod common;

use std::path::PathBuf;

use common::{manifest_dir, repository_model};
use reswhis::vad::{Silero, SileroModel, WINDOW};
use whisper_rs::{WhisperVadContext, WhisperVadContextParams};

fn vad_model() -> PathBuf {
    repository_model("silero-v6.2.0")
}

fn jfk() -> Vec<f32> {
    reswhis::audio::read_wav(&manifest_dir().join("../shared/audio/jfk.wav")).unwrap()
}

fn reference(name: &str) -> Vec<f32> {
    std::fs::read_to_string(manifest_dir().join("tests/data").join(name))
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect()
}

fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn whisper_cpp_loads_the_model_and_agrees_with_its_reference() {
    let mut params = WhisperVadContextParams::new();
    params.set_n_threads(1);
    let path = vad_model();
    let mut context = WhisperVadContext::new(path.to_str().unwrap(), params)
        .unwrap_or_else(|e| panic!("whisper.cpp cannot load {}: {e}", path.display()));
    context.detect_speech(&jfk()).unwrap();
    let expected = reference("jfk-silero-whispercpp.txt");
    let difference = max_difference(context.probabilities(), &expected);
    println!("whisper.cpp vs its reference: max |Δp| {difference:.2e}");
    assert!(difference < 2e-3, "max |Δp| {difference}");
}

#[test]
fn native_silero_matches_the_onnx_model_window_by_window() {
    let model = SileroModel::load(&vad_model()).unwrap();
    let audio = jfk();
    let expected = reference("jfk-silero-onnx.txt");
    let mut silero = Silero::new(model);
    let whole: Vec<f32> = audio
        .chunks(WINDOW)
        .map(|w| silero.probability(w))
        .collect();
    let difference = max_difference(&whole, &expected);
    println!("native vs onnxruntime: max |Δp| {difference:.2e}");
    assert!(difference < 3e-3, "max |Δp| {difference}");
    let speech = whole.iter().filter(|&&p| p >= 0.5).count();
    assert_eq!(speech, expected.iter().filter(|&&p| p >= 0.5).count());

    // A stream keeps its state: after a reset, the same audio gives the same values.
    silero.reset();
    let again: Vec<f32> = audio
        .chunks(WINDOW)
        .map(|w| silero.probability(w))
        .collect();
    assert_eq!(again, whole);
}
