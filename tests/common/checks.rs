//! What the tests assert of a session's text: the library's WER (one normaliser for
//! everything), jfk.wav's text and ending, and how the session closed.

use std::time::Duration;

use super::*;

/// Word error rate against a reference, after normalisation.
pub fn wer(reference: &str, hypothesis: &str) -> f64 {
    reswhis::wer::word_error_rate(reference, hypothesis)
}

/// What a session sent all of jfk.wav must get back, at least: its text within
/// `max_wer` of `reference`, and `done`.
pub fn assert_jfk_text(label: &str, received: &Received, reference: &str, max_wer: f64) {
    let transcript = received.transcript();
    let error = wer(reference, &transcript);
    println!("[{label}] WER {error:.3}: {transcript:?}");
    assert!(
        error <= max_wer,
        "[{label}] WER {error:.3} > {max_wer}: {received:?}"
    );
    assert!(received.done, "[{label}] no done message: {received:?}");
}

/// jfk's last words ("… for your country") end `text`: nothing was lost at the end.
pub fn assert_jfk_ending(label: &str, text: &str) {
    let words = reswhis::wer::normalized_words(text);
    assert!(
        words.ends_with(&["your".to_string(), "country".to_string()]),
        "[{label}] the last words are missing: {text:?}"
    );
}

/// The server closed the session normally (1000).
pub fn assert_closed_normally(label: &str, received: &Received) {
    assert_eq!(
        received.close.as_ref().map(|c| c.0),
        Some(1000),
        "[{label}] close: {received:?}"
    );
}

/// A session sent all of jfk.wav got its text (WER < 0.2), `done` and close 1000.
pub fn assert_jfk(received: &Received, reference: &str, what: &str) {
    assert_jfk_text(what, received, reference, 0.2);
    assert_closed_normally(what, received);
}

/// Streams jfk (as fast as possible), ends it, checks the text.
pub fn serve_jfk_correctly(server: &TestServer, what: &str) {
    let (pcm, reference) = jfk();
    let mut client = connect(&server.url("/transcribe"));
    let limit = Duration::from_secs(240);
    let received = stream_pcm(&mut client, &pcm, FRAME_100MS, false, limit);
    assert_jfk(&received, &reference, what);
}

/// The words of `text`, normalised as WER compares them.
pub fn words(text: &str) -> Vec<String> {
    reswhis::wer::normalized_words(text)
}

/// The transcript starts with `head` (compared word by word, normalised).
pub fn starts_with_words(text: &str, head: &str) -> bool {
    words(text).starts_with(&words(head))
}

/// The transcript ends with `tail` (compared word by word, normalised).
pub fn ends_with_words(text: &str, tail: &str) -> bool {
    words(text).ends_with(&words(tail))
}

/// The transcript contains `phrase` (compared word by word, normalised).
pub fn contains_words(text: &str, phrase: &str) -> bool {
    let (text, phrase) = (words(text), words(phrase));
    text.windows(phrase.len()).any(|w| w == phrase.as_slice())
}
