//! Language detection for `?language=auto`: when to ask Whisper what language a stream
//! is in, when to believe it, and when to change one's mind. Pure logic; the
//! probabilities come from [`crate::engine::Transcriber::detect_language`].
//!
//! Until a language is settled, each update asks for the language's probability on the
//! buffer it transcribed, and the next update transcribes in the language found last
//! (Whisper's own detection only before the first answer): whisper.cpp 1.8.3 detects
//! inside a call before it sets the call's audio context, so it looks only at as much
//! audio as the call before had — after a 0.8 s update, a 25 s Spanish buffer came out
//! in English. A language is settled —
//! announced to the client and used for every later update — once it is at least
//! [`SETTLE_PROBABILITY`] likely on a buffer of at least [`SETTLE_SECONDS`] of audio, or
//! at least [`FALLBACK_PROBABILITY`] likely once [`FALLBACK_SECONDS`] have passed (some
//! speech is ambiguous for a while). After that it is checked again every
//! [`RECHECK_SECONDS`] of audio — every [`UNSURE_RECHECK_SECONDS`] while it was never
//! found at [`SWITCH_PROBABILITY`] — and another language that wins twice in a row at
//! [`SWITCH_PROBABILITY`] replaces it (and is announced).

use crate::engine::CallLanguage;

/// Audio (seconds in the buffer) before a language can be settled.
///
/// Measured with `base` on 30 real clips (6 each of English, French, Spanish, Italian,
/// Russian; the first seconds of each): Whisper's top language was right for 22 of 30
/// after 1 s, 26 after 2 s, 28 after 3 s, 29 after 5 s; at a probability of 0.8 or more
/// it was right 18/18 times after 1 s, 23/24 after 2 s (Spanish taken for Arabic at
/// 0.91), 26/26 after 3 s and 27/27 after 5 s.
pub const SETTLE_SECONDS: f64 = 3.0;
/// Probability that settles a language.
pub const SETTLE_PROBABILITY: f32 = 0.8;
/// After this much audio, a less certain language is taken rather than none (the top
/// language at 0.5 or more was right 29 of 30 times after 5 s).
pub const FALLBACK_SECONDS: f64 = 6.0;
/// Probability enough after [`FALLBACK_SECONDS`].
pub const FALLBACK_PROBABILITY: f32 = 0.5;
/// Audio between checks of a settled language.
pub const RECHECK_SECONDS: f64 = 20.0;
/// Probability another language needs (twice in a row) to replace the settled one.
pub const SWITCH_PROBABILITY: f32 = 0.9;
/// Audio between checks of a language settled below [`SWITCH_PROBABILITY`] (and not
/// found at it since). A Spanish prompt ("Intentaré establecer una conexión
/// intra-Asterisk…", 17.6 s) was settled as Italian at 0.81 after 3 s and, with
/// [`RECHECK_SECONDS`] only, transcribed in Italian to its end.
pub const UNSURE_RECHECK_SECONDS: f64 = 3.0;

/// One stream's detection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Detector {
    settled: Option<String>,
    /// The settled language was found at [`SWITCH_PROBABILITY`] or more.
    sure: bool,
    /// A language that beat the settled one once.
    challenger: Option<String>,
    /// The language found last, settled or not.
    latest: Option<String>,
    /// Audio received since the stream began (or since the last check, once settled).
    audio_seconds: f64,
}

impl Detector {
    /// A detector that has settled nothing yet.
    pub fn new() -> Detector {
        Detector::default()
    }

    /// The language to transcribe the next update in.
    pub fn call_language(&self) -> CallLanguage {
        match self.settled.as_ref().or(self.latest.as_ref()) {
            Some(code) => CallLanguage::Code(code.clone()),
            None => CallLanguage::Detect,
        }
    }

    /// The settled language, if any.
    pub fn settled(&self) -> Option<&str> {
        self.settled.as_deref()
    }

    /// Audio arrived (seconds); returns whether the next update should be followed by a
    /// check of the language.
    pub fn heard(&mut self, seconds: f64) -> bool {
        self.audio_seconds += seconds;
        match self.settled {
            None => true,
            Some(_) if self.sure => self.audio_seconds >= RECHECK_SECONDS,
            Some(_) => self.audio_seconds >= UNSURE_RECHECK_SECONDS,
        }
    }

    /// What Whisper found on a buffer of `buffer_seconds`: the most likely language and
    /// its probability. Returns the language to announce, if it is newly settled or
    /// changed.
    pub fn observe(&mut self, code: &str, probability: f32, buffer_seconds: f64) -> Option<String> {
        self.latest = Some(code.to_string());
        match &self.settled {
            None => {
                let sure = probability >= SETTLE_PROBABILITY && buffer_seconds >= SETTLE_SECONDS;
                let late =
                    self.audio_seconds >= FALLBACK_SECONDS && probability >= FALLBACK_PROBABILITY;
                if sure || late {
                    self.settled = Some(code.to_string());
                    self.sure = probability >= SWITCH_PROBABILITY;
                    self.audio_seconds = 0.0;
                    return Some(code.to_string());
                }
                None
            }
            Some(settled) => {
                self.audio_seconds = 0.0;
                if code == settled || probability < SWITCH_PROBABILITY {
                    self.sure |= code == settled && probability >= SWITCH_PROBABILITY;
                    self.challenger = None;
                    return None;
                }
                if self.challenger.as_deref() == Some(code) {
                    self.settled = Some(code.to_string());
                    self.sure = true;
                    self.challenger = None;
                    return Some(code.to_string());
                }
                self.challenger = Some(code.to_string());
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settles_on_a_sure_language_once_enough_audio_was_heard() {
        let mut d = Detector::new();
        assert!(d.heard(1.0));
        assert_eq!(d.call_language(), CallLanguage::Detect);
        assert_eq!(d.observe("de", 0.95, 2.0), None, "too little audio");
        // Not settled, but the next update is transcribed in the language found.
        assert_eq!(d.call_language(), CallLanguage::Code("de".into()));
        assert!(d.heard(1.0));
        assert_eq!(d.observe("de", 0.7, 3.0), None, "not sure enough");
        assert!(d.heard(1.0));
        assert_eq!(d.observe("de", 0.93, 3.5), Some("de".into()));
        assert_eq!(d.call_language(), CallLanguage::Code("de".into()));
        assert!(!d.heard(5.0), "no check until RECHECK_SECONDS");
    }

    #[test]
    fn falls_back_to_a_likely_language_after_a_while() {
        let mut d = Detector::new();
        d.heard(FALLBACK_SECONDS - 1.0);
        assert_eq!(d.observe("it", 0.6, 5.0), None);
        d.heard(1.0);
        assert_eq!(d.observe("it", 0.6, 6.0), Some("it".into()));
        let mut d = Detector::new();
        d.heard(FALLBACK_SECONDS);
        assert_eq!(d.observe("it", 0.3, 7.0), None, "too unsure even late");
    }

    #[test]
    fn switches_only_when_another_language_wins_twice() {
        let mut d = Detector::new();
        d.heard(3.0);
        assert_eq!(d.observe("en", 0.99, 3.0), Some("en".into()));
        assert!(d.heard(RECHECK_SECONDS));
        assert_eq!(d.observe("fr", 0.95, 6.0), None, "once is not enough");
        assert!(d.heard(RECHECK_SECONDS));
        assert_eq!(d.observe("en", 0.9, 6.0), None, "back to the settled one");
        d.heard(RECHECK_SECONDS);
        assert_eq!(d.observe("fr", 0.95, 6.0), None);
        d.heard(RECHECK_SECONDS);
        assert_eq!(
            d.observe("fr", 0.85, 6.0),
            None,
            "not sure enough to switch"
        );
        d.heard(RECHECK_SECONDS);
        assert_eq!(d.observe("fr", 0.95, 6.0), None);
        d.heard(RECHECK_SECONDS);
        assert_eq!(d.observe("fr", 0.97, 6.0), Some("fr".into()));
        assert_eq!(d.settled(), Some("fr"));
    }

    #[test]
    fn an_unsure_language_is_checked_again_soon() {
        let mut d = Detector::new();
        d.heard(3.0);
        assert_eq!(d.observe("it", 0.81, 3.0), Some("it".into()));
        assert!(!d.heard(UNSURE_RECHECK_SECONDS - 1.0));
        assert!(
            d.heard(1.0),
            "settled below SWITCH_PROBABILITY: checked again soon"
        );
        assert_eq!(d.observe("es", 0.92, 6.0), None);
        assert!(d.heard(UNSURE_RECHECK_SECONDS));
        assert_eq!(d.observe("es", 0.95, 9.0), Some("es".into()));
        // Switched at SWITCH_PROBABILITY: sure now.
        assert!(!d.heard(UNSURE_RECHECK_SECONDS));
        // A language settled unsure and then found sure is checked as rarely as any.
        let mut d = Detector::new();
        d.heard(3.0);
        d.observe("it", 0.81, 3.0);
        d.heard(UNSURE_RECHECK_SECONDS);
        assert_eq!(d.observe("it", 0.97, 6.0), None);
        assert!(!d.heard(UNSURE_RECHECK_SECONDS));
        assert!(d.heard(RECHECK_SECONDS));
    }
}
