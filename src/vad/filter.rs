//! The VAD filter (`--vad`): what faster-whisper's `vad_filter` does to each
//! transcription, as the original server used it. Silero runs over the whole buffer
//! (fresh state each time); stretches of two seconds or more without speech are cut
//! out; Whisper transcribes what is left; word times are mapped back to the buffer's.
//!
//! Segmenting follows Silero's `get_speech_timestamps` with faster-whisper's defaults
//! (threshold 0.5, end below 0.35, speech ≥ 250 ms, silence ≥ 2000 ms to split, 400 ms
//! of padding, shared when two segments are closer than twice that).

use std::ops::Range;

use super::{Silero, WINDOW};

/// Segmenting parameters, in samples.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterConfig {
    /// Probability from which a window counts as speech.
    pub threshold: f32,
    /// Probability below which speech counts as over.
    pub neg_threshold: f32,
    /// Shortest speech kept, in samples.
    pub min_speech: usize,
    /// Silence, in samples, that ends a stretch of speech.
    pub min_silence: usize,
    /// Samples kept around each stretch of speech.
    pub pad: usize,
}

impl Default for FilterConfig {
    fn default() -> Self {
        FilterConfig {
            threshold: 0.5,
            neg_threshold: 0.35,
            min_speech: 4_000,
            min_silence: 32_000,
            pad: 6_400,
        }
    }
}

/// Speech segments (sample ranges, padded) from one probability per window.
pub fn speech_segments(
    probabilities: &[f32],
    length: usize,
    c: &FilterConfig,
) -> Vec<Range<usize>> {
    let mut speeches: Vec<Range<usize>> = Vec::new();
    let mut start: Option<usize> = None;
    let mut silent_since: Option<usize> = None;
    for (i, &p) in probabilities.iter().enumerate() {
        let at = i * WINDOW;
        if p >= c.threshold {
            silent_since = None;
            if start.is_none() {
                start = Some(at);
            }
            continue;
        }
        let Some(begin) = start else { continue };
        if p < c.neg_threshold {
            let since = *silent_since.get_or_insert(at);
            if at - since >= c.min_silence {
                if since - begin > c.min_speech {
                    speeches.push(begin..since);
                }
                start = None;
                silent_since = None;
            }
        }
    }
    if let Some(begin) = start {
        if length.saturating_sub(begin) > c.min_speech {
            speeches.push(begin..length);
        }
    }
    // Padding: a gap shorter than two pads is shared half and half.
    for i in 0..speeches.len() {
        if i == 0 {
            speeches[0].start = speeches[0].start.saturating_sub(c.pad);
        }
        if i + 1 < speeches.len() {
            let gap = speeches[i + 1].start.saturating_sub(speeches[i].end);
            let share = if gap < 2 * c.pad { gap / 2 } else { c.pad };
            speeches[i].end += share;
            speeches[i + 1].start -= share;
        } else {
            speeches[i].end = (speeches[i].end + c.pad).min(length);
        }
    }
    speeches
}

/// A buffer with its non-speech cut out, and the way back to the buffer's times.
#[derive(Debug, Clone, PartialEq)]
pub struct Filtered {
    /// The speech, joined.
    pub audio: Vec<f32>,
    /// (start in `audio`, start in the original, length), in samples, in order.
    chunks: Vec<(usize, usize, usize)>,
}

impl Filtered {
    /// Keeps `segments` of `audio`.
    pub fn new(audio: &[f32], segments: &[Range<usize>]) -> Filtered {
        let mut kept = Vec::new();
        let mut chunks = Vec::new();
        for segment in segments {
            let range = segment.start.min(audio.len())..segment.end.min(audio.len());
            chunks.push((kept.len(), range.start, range.len()));
            kept.extend_from_slice(&audio[range]);
        }
        Filtered {
            audio: kept,
            chunks,
        }
    }

    /// Runs Silero over `audio` (from a fresh state) and keeps its speech.
    pub fn detect(silero: &mut Silero, audio: &[f32], config: &FilterConfig) -> Filtered {
        silero.reset();
        let probabilities: Vec<f32> = audio
            .chunks(WINDOW)
            .map(|w| silero.probability(w))
            .collect();
        Filtered::new(audio, &speech_segments(&probabilities, audio.len(), config))
    }

    /// Whether nothing was kept.
    pub fn is_empty(&self) -> bool {
        self.audio.is_empty()
    }

    /// Maps a time in seconds in the filtered audio to the original audio.
    pub fn original_seconds(&self, seconds: f64) -> f64 {
        let rate = crate::audio::SAMPLE_RATE as f64;
        let sample = (seconds.max(0.0) * rate) as usize;
        let chunk = self
            .chunks
            .iter()
            .rev()
            .find(|(start, _, _)| *start <= sample)
            .or(self.chunks.first());
        match chunk {
            Some(&(start, original, length)) => {
                (original + (sample - start).min(length)) as f64 / rate
            }
            None => seconds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: usize = WINDOW;

    fn config() -> FilterConfig {
        FilterConfig {
            threshold: 0.5,
            neg_threshold: 0.35,
            min_speech: 2 * W,
            min_silence: 4 * W,
            pad: W,
        }
    }

    #[test]
    fn segments_with_padding() {
        // Speech in windows 2..6 and 20..25, silence elsewhere.
        let mut p = vec![0.0; 30];
        p[2..6].fill(0.9);
        p[20..25].fill(0.9);
        let segments = speech_segments(&p, 30 * W, &config());
        assert_eq!(segments, vec![W..7 * W, 19 * W..26 * W]);
    }

    #[test]
    fn short_pauses_and_blips() {
        let mut p = vec![0.0; 30];
        p[2..6].fill(0.9);
        p[8..12].fill(0.9); // a 2-window pause: one segment
        p[20] = 0.9; // a blip shorter than min_speech: dropped
        let segments = speech_segments(&p, 30 * W, &config());
        assert_eq!(segments, vec![W..13 * W]);
        // Speech to the end of the buffer.
        let mut p = vec![0.0; 10];
        p[5..].fill(0.9);
        assert_eq!(speech_segments(&p, 10 * W, &config()), vec![4 * W..10 * W]);
        assert!(speech_segments(&[0.1; 40], 40 * W, &config()).is_empty());
    }

    #[test]
    fn close_segments_share_the_padding() {
        let mut p = vec![0.0; 20];
        p[2..6].fill(0.9);
        p[7] = 0.3; // silence runs on from window 6 ...
        p[11..15].fill(0.9); // ... 5 windows: a split, gap 6..11
        let c = FilterConfig {
            pad: 3 * W,
            ..config()
        };
        let segments = speech_segments(&p, 20 * W, &c);
        // The gap (6..11, 5 windows) is less than two pads: 2.5 windows each side.
        assert_eq!(segments[0].end, 6 * W + 5 * W / 2);
        assert_eq!(segments[1].start, segments[0].end);
    }

    #[test]
    fn times_map_back_to_the_original() {
        let audio: Vec<f32> = (0..100).map(|i| i as f32).collect();
        let f = Filtered::new(&audio, &[10..30, 60..80]);
        assert_eq!(f.audio.len(), 40);
        assert_eq!(f.audio[20], 60.0);
        let rate = crate::audio::SAMPLE_RATE as f64;
        let at = |sample: usize| f.original_seconds(sample as f64 / rate) * rate;
        assert!((at(0) - 10.0).abs() < 1e-6);
        assert!((at(5) - 15.0).abs() < 1e-6);
        assert!((at(25) - 65.0).abs() < 1e-6);
        assert!((at(40) - 80.0).abs() < 1e-6);
        assert!(
            (at(100) - 80.0).abs() < 1e-6,
            "past the end: the last chunk's end"
        );
    }
}
