//! Pauses in a stream without the voice activity controller: the silence Whisper heard.
//!
//! Without the controller the buffer holds whatever the microphone sent. After a pause
//! it held the end of the utterance before (kept as context by trimming), seconds of
//! room noise, then the new speech; every pass re-encoded the pause, and tiny.en
//! garbled the first words after it ("had he married a more amiable woman" heard as
//! "old, exposed. ill disposed." after "… is to be ill disposed" and a 6 s pause).
//! Two passes in a row that heard nothing new (no word committed, none pending) show
//! that the audio up to the end of the first held no speech: the buffer is cut there,
//! keeping its last [`KEEP_SEC`]. And the words of the next speech are not timed
//! before the end of the latest pass that heard nothing new, by the map that moves
//! words out of the controller's padding (`policy::padding`; Whisper puts the first word of a buffer
//! that starts in noise at the buffer's start: "Had he" timed at 116.2 s, said at
//! 119.4 s).
//!
//! Invariants: a cut lies at least [`KEEP_SEC`] before the end of audio that two passes
//! heard as silence, and at least [`GAP_SEC`] after the end of the last committed word,
//! so committed words are never cut in two and never heard again without their anchor.

use super::OnlineProcessor;
use crate::audio::SAMPLE_RATE;

/// Seconds of heard silence kept in front of the buffer: Whisper hears speech that
/// follows less noise badly ("amiable himself" heard before "he might even have been
/// made amiable himself"). Pauses-1..4 without VAC, modelled clock (`simulate --fast
/// --modelled-cost --vac false`), WER 8.95 % before this module; with [`GAP_SEC`] at
/// 0.5 s, keeping 0.5 s gave 11.07 %, 2 s 9.38 %, 3 s 9.92 %.
pub(super) const KEEP_SEC: f64 = 2.0;

/// The last committed word ends at least this long before a cut (its times are rough):
/// with 2 s kept, 0.5 s gave 9.38 %, 1.5 s 9.03 % (8.80 % with the retiming).
pub(super) const GAP_SEC: f64 = 1.5;

/// Passes that heard nothing new, one after the other.
#[derive(Debug, Default)]
pub(super) struct QuietPasses {
    /// End of the buffer (stream seconds) at the last pass, when it heard nothing new.
    until: Option<f64>,
}

impl QuietPasses {
    /// Records a pass over a buffer that ends at `end` (stream seconds); `quiet`: it
    /// heard nothing new. Returns where the buffer may be cut (stream seconds), given
    /// the end of the last committed word.
    pub(super) fn pass(&mut self, quiet: bool, end: f64, last_committed: f64) -> Option<f64> {
        if !quiet {
            self.until = None;
            return None;
        }
        let silent_until = self.until.replace(end)?;
        let cut = silent_until - KEEP_SEC;
        (cut >= last_committed + GAP_SEC).then_some(cut)
    }

    /// The stream starts again (an utterance ended, or the buffer was emptied).
    pub(super) fn reset(&mut self) {
        self.until = None;
    }
}

impl OnlineProcessor {
    /// Without the voice activity controller: after a pass that heard nothing new, the
    /// words of the next speech are not timed before the end of its audio, and after
    /// two such passes the silence they heard is cut off the buffer (see the module's doc).
    pub(super) fn cut_heard_silence(&mut self, quiet: bool) {
        let end = self.buffer_start + self.audio.len() as u64;
        let last_committed = self.committed.last().map_or(f64::NEG_INFINITY, |w| w.end);
        if quiet {
            let silence_start = crate::audio::samples(last_committed.max(0.0)) as u64;
            self.onset = Some((silence_start.max(self.buffer_start), end));
        }
        let end_sec = end as f64 / SAMPLE_RATE as f64;
        if let Some(cut) = self.quiet_passes.pass(quiet, end_sec, last_committed) {
            if cut > self.buffer_offset() {
                log::debug!("two passes heard nothing new: buffer cut at {cut:.2} s");
                self.cut_at(cut);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_quiet_pass_cuts_nothing() {
        let mut quiet = QuietPasses::default();
        assert_eq!(quiet.pass(true, 20.0, 5.0), None);
    }

    #[test]
    fn two_quiet_passes_cut_before_the_end_of_the_first() {
        let mut quiet = QuietPasses::default();
        assert_eq!(quiet.pass(true, 20.0, 5.0), None);
        assert_eq!(quiet.pass(true, 20.8, 5.0), Some(20.0 - KEEP_SEC));
        // A third one moves the cut on with the silence.
        assert_eq!(quiet.pass(true, 21.6, 5.0), Some(20.8 - KEEP_SEC));
    }

    #[test]
    fn a_pass_that_heard_something_starts_over() {
        let mut quiet = QuietPasses::default();
        quiet.pass(true, 20.0, 5.0);
        assert_eq!(quiet.pass(false, 20.8, 5.0), None);
        assert_eq!(quiet.pass(true, 21.6, 5.0), None);
        assert_eq!(quiet.pass(true, 22.4, 5.0), Some(21.6 - KEEP_SEC));
        quiet.reset();
        assert_eq!(quiet.pass(true, 23.2, 5.0), None);
    }

    #[test]
    fn no_cut_close_after_the_last_committed_word() {
        let mut quiet = QuietPasses::default();
        quiet.pass(true, 10.0, 7.0);
        // 10 - KEEP_SEC = 8.0 lies within GAP_SEC of 7.0.
        assert_eq!(quiet.pass(true, 10.8, 7.0), None);
        // 10.8 - KEEP_SEC = 8.8 does not.
        assert_eq!(quiet.pass(true, 11.6, 7.0), Some(10.8 - KEEP_SEC));
    }
}
