//! What a call returns: timestamped words, and where Whisper's segments end.

/// One recognised word, with times in seconds relative to the start of the audio that
/// was transcribed. `text` keeps Whisper's leading space (" hello"), so concatenating
/// words gives the transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct Word {
    /// Start, in seconds.
    pub start: f64,
    /// End, in seconds.
    pub end: f64,
    /// The word as Whisper wrote it, leading space included.
    pub text: String,
}

/// The result of transcribing one buffer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transcript {
    /// The words, in order.
    pub words: Vec<Word>,
    /// End time (seconds) of every segment Whisper produced, in order.
    pub segment_ends: Vec<f64>,
}

impl Transcript {
    /// The words joined: the transcript's text.
    pub fn text(&self) -> String {
        self.words.iter().map(|w| w.text.as_str()).collect()
    }
}
