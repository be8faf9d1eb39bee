//! Pauses in a stream without the voice activity controller: the silence Whisper heard.
//!
//! Without the controller nobody says where speech starts, and Whisper times the first
//! word of speech that follows a pause early, into the pause ("Had he" timed at 116.2 s,
//! said at 119.4 s: the buffer started at 116.2 s in noise). A pass that heard nothing
//! new (no word committed, none pending) shows that the buffer's audio up to its end
//! held no new speech; the words of the next speech are not timed before that end,
//! less [`ONSET_LAG_SEC`](super::ONSET_LAG_SEC), by the map that moves words out of the
//! controller's padding (`policy::padding`; like it, only when a word of the hypothesis
//! starts after that end to map onto). Only the times sent to the client change;
//! agreement and trimming keep Whisper's own.
//!
//! Measured on the benchmark's pauses stream (tiny.en, real time, one client, VAC off):
//! words timed into the silence 17 → 7 and 12 → 4, max latency 5.15 → 3.09 s and 6.36 →
//! 4.41 s (two pairs of runs, back to back). On the four pauses
//! streams with the modelled clock the text is the same (WER 8.95 %) and the mean
//! latency 1.21 → 1.12 s.
//!
//! Tried and left out: cutting the silence two passes heard off the buffer. It saved a
//! fifth of the audio transcribed and gained 0.15 WER points on those four streams, but
//! a short utterance heard without the speech before it came out badly: jfk.wav with
//! pauses, "ask not" after 4 s heard as "S not. S not." (WER 4.5 → 13.6 %). Keeping
//! the context and taking only the silence out of the middle of the buffer was worse
//! (10.65 % against 8.95 %: Whisper made up words in the shortened pause).

use super::OnlineProcessor;

impl OnlineProcessor {
    /// The last pass heard nothing new: speech that follows starts after its audio.
    pub(super) fn heard_silence(&mut self) {
        let last_committed = self.committed.last().map_or(0.0, |w| w.end.max(0.0));
        let silence_start = crate::audio::samples(last_committed) as u64;
        let end = self.buffer_start + self.audio.len() as u64;
        self.onset = Some((silence_start.max(self.buffer_start), end));
    }
}
