//! The voice activity controller's state machine: speech probabilities in, utterances
//! out. Pure logic; the probabilities come from [`super::Silero`].
//!
//! Invariants:
//! * audio is forwarded in stream order and never twice; the first sample of each
//!   [`GateEvent::Audio`] carries its index on the stream's clock, so text keeps the
//!   stream's timestamps however much silence was left out;
//! * within an utterance the audio is contiguous (short pauses are forwarded);
//!   between utterances there is a gap, always preceded by [`GateEvent::EndOfUtterance`];
//! * while nobody speaks nothing is forwarded: silence costs one Silero window per
//!   32 ms and no Whisper call.
//!
//! Start and end follow Silero's own `VADIterator` (hysteresis between `threshold` and
//! `threshold − 0.15`, an end confirmed after `min_silence`), with audio from before the
//! detected start kept as padding, because Silero's probability rises a window or two
//! after a word's onset. A start is confirmed only once `min_speech` of windows at or
//! above the threshold came before a silent one: on pink noise at −50 dBFS Silero gives
//! an odd single window above 0.5, and Whisper, handed such noise as an utterance,
//! answers "Thank you. Thank you." (measured on the benchmark's pause scenario).

use std::collections::VecDeque;

use super::WINDOW;

/// Tuning of the controller. Times are in samples at 16 kHz.
#[derive(Debug, Clone, PartialEq)]
pub struct GateConfig {
    /// A window at or above this probability is speech (starts an utterance).
    pub threshold: f32,
    /// Below this a window is silence; between the two it continues what was.
    pub neg_threshold: f32,
    /// Silence that ends an utterance (its text is then committed at once).
    pub min_silence: usize,
    /// Audio before the detected start of speech that is forwarded with it.
    pub pad_before: usize,
    /// Speech (windows at or above `threshold`) that confirms a start.
    pub min_speech: usize,
}

impl GateConfig {
    /// Silero's threshold and hysteresis, with `min_silence_ms` to end an utterance.
    pub fn with_silence_ms(min_silence_ms: u32) -> GateConfig {
        GateConfig {
            min_silence: ms_to_samples(min_silence_ms),
            ..GateConfig::default()
        }
    }
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            threshold: 0.5,
            neg_threshold: 0.35,
            min_silence: ms_to_samples(500),
            pad_before: ms_to_samples(1000),
            min_speech: 4 * WINDOW,
        }
    }
}

fn ms_to_samples(ms: u32) -> usize {
    ms as usize * crate::audio::SAMPLE_RATE as usize / 1000
}

/// What the controller tells the stream.
#[derive(Debug, Clone, PartialEq)]
pub enum GateEvent {
    /// Voiced audio (or a short pause inside an utterance); `at` is the stream index of
    /// its first sample; `voiced` tells whether it holds speech (false for the windows of
    /// a pause, which need no transcription of their own).
    Audio {
        /// Stream index of the first sample.
        at: u64,
        /// The audio, 16 kHz mono.
        samples: Vec<f32>,
        /// Whether it holds speech.
        voiced: bool,
        /// On the first audio of an utterance: the stream index of the first window
        /// Silero heard as speech (what comes before it is padding).
        onset: Option<u64>,
    },
    /// The utterance ended: everything pending can be committed.
    EndOfUtterance,
}

/// Where the controller is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Silence,
    /// Speech may have started: the windows since the first one at or above the
    /// threshold are held back (in the preroll) until `voiced` reaches `min_speech`.
    Onset {
        voiced: usize,
        held: usize,
    },
    /// In an utterance; since when (stream index) the audio has been silent, if it is.
    Speech {
        silent_since: Option<u64>,
    },
}

/// One stream's controller.
#[derive(Debug)]
pub struct Gate {
    config: GateConfig,
    /// Recent audio while not in speech: up to `pad_before` samples, plus the windows of
    /// an onset; it ends at `clock`.
    preroll: VecDeque<f32>,
    state: State,
    /// Stream index of the next sample.
    clock: u64,
}

impl Gate {
    /// A controller in silence.
    pub fn new(config: GateConfig) -> Gate {
        Gate {
            preroll: VecDeque::with_capacity(config.pad_before + config.min_speech + WINDOW),
            config,
            state: State::Silence,
            clock: 0,
        }
    }

    /// True inside an utterance.
    pub fn in_speech(&self) -> bool {
        matches!(self.state, State::Speech { .. })
    }

    /// Stream index of the next sample.
    pub fn clock(&self) -> u64 {
        self.clock
    }

    /// Takes one window of audio (normally [`WINDOW`] samples; the last one of a stream
    /// may be shorter) and its speech probability.
    pub fn push(&mut self, window: &[f32], probability: f32, events: &mut Vec<GateEvent>) {
        let at = self.clock;
        self.clock += window.len() as u64;
        let voiced = probability >= self.config.threshold;
        let silent = probability < self.config.neg_threshold;
        self.state = match self.state {
            // Silence, or an onset that was only a blip.
            State::Silence | State::Onset { .. } if silent => {
                self.hold(window, 0);
                State::Silence
            }
            State::Silence if !voiced => {
                self.hold(window, 0);
                State::Silence
            }
            State::Silence => self.onset(window, voiced, 0, 0),
            State::Onset { voiced: n, held } => self.onset(window, voiced, n, held),
            State::Speech { silent_since } => {
                events.push(GateEvent::Audio {
                    at,
                    samples: window.to_vec(),
                    voiced: !silent,
                    onset: None,
                });
                let silent_since = match (voiced, silent) {
                    (true, _) => None,
                    (_, true) => Some(silent_since.unwrap_or(at)),
                    _ => silent_since,
                };
                match silent_since {
                    Some(since) if self.clock - since >= self.config.min_silence as u64 => {
                        events.push(GateEvent::EndOfUtterance);
                        State::Silence
                    }
                    _ => State::Speech { silent_since },
                }
            }
        };
        if let State::Onset { voiced, held } = self.state {
            if voiced >= self.config.min_speech {
                // Confirmed: the padding and the onset go out as the utterance's start.
                let samples: Vec<f32> = self.preroll.drain(..).collect();
                let start = self.clock - samples.len() as u64;
                events.push(GateEvent::Audio {
                    at: start,
                    samples,
                    voiced: true,
                    onset: Some(self.clock - held as u64),
                });
                self.state = State::Speech { silent_since: None };
            }
        }
    }

    /// Another window of a possible start of speech.
    fn onset(&mut self, window: &[f32], voiced: bool, so_far: usize, held: usize) -> State {
        let held = held + window.len();
        self.hold(window, held);
        State::Onset {
            voiced: so_far + if voiced { window.len() } else { 0 },
            held,
        }
    }

    /// Keeps `window` in the preroll: `pad_before` samples, plus the `held` ones of an
    /// onset.
    fn hold(&mut self, window: &[f32], held: usize) {
        self.preroll.extend(window);
        let keep = self.config.pad_before + held;
        let excess = self.preroll.len().saturating_sub(keep);
        self.preroll.drain(..excess);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: usize = WINDOW;

    fn config() -> GateConfig {
        GateConfig {
            threshold: 0.5,
            neg_threshold: 0.35,
            min_silence: 4 * W,
            pad_before: 2 * W,
            min_speech: W,
        }
    }

    /// Feeds one window per probability; each window's samples hold its index.
    fn run(gate: &mut Gate, probabilities: &[f32]) -> Vec<GateEvent> {
        let mut events = Vec::new();
        for &p in probabilities {
            let index = (gate.clock() / W as u64) as f32;
            gate.push(&[index; W], p, &mut events);
        }
        events
    }

    /// (at in windows, length in windows) of each audio event, and "end" markers.
    fn shape(events: &[GateEvent]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                GateEvent::Audio { at, samples, .. } => {
                    assert_eq!(samples[0], (*at / W as u64) as f32, "samples match `at`");
                    format!("{}+{}", at / W as u64, samples.len() / W)
                }
                GateEvent::EndOfUtterance => "end".into(),
            })
            .collect()
    }

    #[test]
    fn silence_forwards_nothing() {
        let mut gate = Gate::new(config());
        assert!(run(&mut gate, &[0.1; 100]).is_empty());
        assert!(run(&mut gate, &[0.49; 10]).is_empty());
        assert_eq!(gate.clock(), 110 * W as u64);
        assert!(!gate.in_speech());
    }

    #[test]
    fn speech_starts_with_padding_and_ends_after_the_silence() {
        let mut gate = Gate::new(config());
        let events = run(
            &mut gate,
            &[0.0, 0.0, 0.0, 0.9, 0.8, 0.1, 0.1, 0.1, 0.1, 0.0, 0.0],
        );
        // Starts at window 3 with two windows of padding (1 and 2); the silence from
        // window 5 lasts four windows (5..8), so the utterance ends after window 8.
        assert_eq!(
            shape(&events),
            vec!["1+3", "4+1", "5+1", "6+1", "7+1", "8+1", "end"]
        );
        assert!(!gate.in_speech());
    }

    #[test]
    fn a_short_pause_does_not_end_the_utterance() {
        let mut gate = Gate::new(config());
        let events = run(&mut gate, &[0.9, 0.1, 0.1, 0.1, 0.9, 0.1, 0.1, 0.1]);
        assert!(!events.contains(&GateEvent::EndOfUtterance), "{events:?}");
        assert!(gate.in_speech());
        // Every window was forwarded once, in order, without gaps.
        let mut next = 0;
        for e in &events {
            if let GateEvent::Audio { at, samples, .. } = e {
                assert_eq!(*at, next);
                next += samples.len() as u64;
            }
        }
        assert_eq!(next, 8 * W as u64);
    }

    #[test]
    fn hysteresis_between_the_thresholds() {
        let mut gate = Gate::new(config());
        // 0.4 neither starts speech nor ends it; it does not reset a silence either.
        assert!(run(&mut gate, &[0.4; 5]).is_empty());
        // Speech from window 5; silence from window 11 (0.2), counted on through 0.4s.
        let events = run(&mut gate, &[0.6, 0.4, 0.4, 0.4, 0.4, 0.4, 0.2, 0.4, 0.4]);
        assert_eq!(shape(&events[..1]), vec!["3+3"]);
        assert!(!events.contains(&GateEvent::EndOfUtterance));
        let events = run(&mut gate, &[0.4]);
        assert_eq!(shape(&events), vec!["14+1", "end"]);
    }

    #[test]
    fn a_second_utterance_keeps_the_stream_clock() {
        let mut gate = Gate::new(config());
        let mut probabilities = vec![0.9, 0.9];
        probabilities.extend([0.0; 20]);
        probabilities.extend([0.9]);
        let events = run(&mut gate, &probabilities);
        let last = events.last().unwrap();
        // Window 22 with windows 20 and 21 as padding.
        assert_eq!(shape(std::slice::from_ref(last)), vec!["20+3"]);
        assert_eq!(
            events
                .iter()
                .filter(|e| **e == GateEvent::EndOfUtterance)
                .count(),
            1
        );
    }

    #[test]
    fn a_start_needs_enough_speech() {
        let mut gate = Gate::new(GateConfig {
            min_speech: 3 * W,
            ..config()
        });
        // A blip: one window above the threshold, then silence.
        assert!(run(&mut gate, &[0.0, 0.0, 0.9, 0.2, 0.0, 0.0]).is_empty());
        assert!(!gate.in_speech());
        // Speech from window 7: three windows at or above it (one in between does not
        // break the onset); once confirmed, at window 10, the start goes out with its
        // two windows of padding (5 and 6).
        let events = run(&mut gate, &[0.0, 0.9, 0.4, 0.9, 0.9, 0.9]);
        assert_eq!(shape(&events), vec!["5+6", "11+1"]);
        // The start carries where speech began (window 7); later audio does not.
        let onsets: Vec<Option<u64>> = events
            .iter()
            .map(|e| match e {
                GateEvent::Audio { onset, .. } => *onset,
                GateEvent::EndOfUtterance => None,
            })
            .collect();
        assert_eq!(onsets, vec![Some(7 * W as u64), None]);
        assert!(gate.in_speech());
        assert_eq!(shape(&run(&mut gate, &[0.9])), vec!["12+1"]);
    }

    #[test]
    fn a_short_last_window_is_forwarded_in_speech() {
        let mut gate = Gate::new(config());
        let mut events = Vec::new();
        gate.push(&[0.0; W], 0.9, &mut events);
        gate.push(&[0.0; 100], 0.9, &mut events);
        assert_eq!(gate.clock(), W as u64 + 100);
        let forwarded: usize = events
            .iter()
            .map(|e| match e {
                GateEvent::Audio { samples, .. } => samples.len(),
                GateEvent::EndOfUtterance => 0,
            })
            .sum();
        assert_eq!(forwarded, W + 100);
    }
}
