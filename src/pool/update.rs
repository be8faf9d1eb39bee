//! One update of a stream: the limits of its Whisper call (threads, time budget), the
//! call, what it commits, and language detection on the way. The test hooks that
//! provoke a panic or a cut live here too.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Shared, Stream, StreamEvent};
use crate::engine::{CallLanguage, CallLimits, EngineError, Transcriber};
use crate::policy::Piece;

/// The time a Whisper call may run before it is stopped: `base` plus
/// `per_audio_second` for each second in the buffer. On more than
/// [`SHORT_AUDIO_SEC`](crate::metrics::SHORT_AUDIO_SEC) of audio it is doubled for every
/// call of the same stream cut in a row (at most 16 times the first budget), so that a
/// stream whose calls are slow still gets through; on less it never grows, so no call on
/// a short buffer holds a worker past its first budget (2 s on 10 s of audio): a cut
/// stream's buffer grows with the next updates until it is long enough to double.
///
/// Measured on the 2-core benchmark machine, tiny.en, one thread: calls on 2–10 s of
/// audio take 0.1–0.5 s quiet and under 1 s with both cores busy elsewhere, so the
/// defaults (1 s + 0.1 s per audio second: 2 s for 10 s of audio) cut only the
/// pathological ones. A slower machine or model raises `base` from the warm-up call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpdateBudget {
    /// What every call may take.
    pub base: Duration,
    /// What it may take more per second of audio in the buffer.
    pub per_audio_second: Duration,
}

impl Default for UpdateBudget {
    fn default() -> Self {
        UpdateBudget {
            base: Duration::from_secs(1),
            per_audio_second: Duration::from_millis(100),
        }
    }
}

impl UpdateBudget {
    /// The budget of a call on `audio_seconds` of audio after `cuts_in_a_row` cuts.
    pub fn for_call(&self, audio_seconds: f64, cuts_in_a_row: u32) -> Duration {
        let first = self.base + self.per_audio_second.mul_f64(audio_seconds.max(0.0));
        if audio_seconds <= crate::metrics::SHORT_AUDIO_SEC {
            return first;
        }
        first * (1 << cuts_in_a_row.min(4))
    }

    /// At least `times` the duration of a call measured at start-up, so that a machine
    /// (or model) slower than the benchmark machine does not see its ordinary calls cut.
    pub(super) fn at_least(self, warm_up: Duration, times: u32) -> UpdateBudget {
        UpdateBudget {
            base: self.base.max(warm_up * times),
            ..self
        }
    }
}

/// Test hook: with `StreamConfig::fault_injection` on (the hidden `--fault-injection`
/// flag), a chunk of audio whose first sample is exactly this value makes the worker
/// panic, which proves that a panic is contained.
pub const PANIC_SAMPLE: i16 = -32_123;

/// Test hook, as [`PANIC_SAMPLE`]: after audio that starts with this sample, the
/// stream's next Whisper call (a stream with voice activity control makes none until an
/// utterance has had some speech) has every poll of its time budget slowed down, so
/// that whisper.cpp stops it.
pub const SLOW_SAMPLE: i16 = -32_111;

/// How long each budget poll of a [`SLOW_SAMPLE`] update waits.
const SLOW_POLL: Duration = Duration::from_millis(300);

/// Asks Whisper the language of the buffer just transcribed, and announces it when the
/// stream's detector settles on it (or changes its mind).
fn detect_language(stream: &Stream, transcriber: &mut Transcriber, seconds: f64, threads: u32) {
    match transcriber.detect_language(threads) {
        Ok((code, probability)) => {
            log::debug!("language on {seconds:.1} s: {code} ({probability:.2})");
            let mut detector = stream.detector.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(code) = detector.observe(&code, probability, seconds) {
                stream.send(StreamEvent::Language { code, probability });
            }
        }
        Err(e) => log::warn!("language detection failed: {e}"),
    }
}

pub(super) fn update_stream(
    stream: &Stream,
    transcriber: &mut Transcriber,
    pieces: Vec<Piece>,
    end_of_stream: bool,
    shared: &Shared,
) -> Result<(), EngineError> {
    let first_sample = pieces.first().and_then(|p| p.audio.first()).copied();
    let injected =
        |magic| stream.fault_injection && first_sample == Some(crate::audio::sample_to_f32(magic));
    if injected(PANIC_SAMPLE) {
        panic!("fault injection: panic requested by the client's audio");
    }
    if injected(SLOW_SAMPLE) {
        stream.slow_next_call.store(true, Ordering::Relaxed);
    }
    let metrics = &shared.metrics;
    let detecting = stream.language == CallLanguage::Detect;
    let new_audio: usize = pieces.iter().map(|p| p.audio.len()).sum();
    let mut check_language = detecting
        && stream
            .detector
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .heard(crate::audio::seconds(new_audio));
    let mut processor = stream.processor.lock().unwrap_or_else(|e| e.into_inner());
    let transcribe = |audio: &[f32], prompt: &str| {
        let audio_seconds = crate::audio::seconds(audio.len());
        let cuts = stream.cuts_in_a_row.load(Ordering::Relaxed);
        let language = match detecting {
            true => stream
                .detector
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .call_language(),
            false => stream.language.clone(),
        };
        let limits = CallLimits {
            threads: shared.threads.threads(crate::load::contenders(
                metrics.busy_workers.load(Ordering::Relaxed),
                metrics.sessions_active.load(Ordering::Relaxed),
                shared.workers,
            )),
            budget: Some(shared.budget.for_call(audio_seconds, cuts)),
            slow_polls: stream
                .slow_next_call
                .swap(false, Ordering::Relaxed)
                .then_some(SLOW_POLL),
            language,
            translate: stream.translate,
        };
        let started = Instant::now();
        let heard = transcriber.transcribe_within(audio, prompt, &limits);
        let elapsed = started.elapsed();
        metrics.update_duration.observe_duration(elapsed);
        if audio_seconds <= crate::metrics::SHORT_AUDIO_SEC {
            metrics.update_duration_short.observe_duration(elapsed);
        }
        metrics.update_audio.observe(audio_seconds);
        metrics.updates.fetch_add(1, Ordering::Relaxed);
        metrics
            .transcribe_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
        match &heard {
            Ok(None) => {
                metrics.updates_cut.fetch_add(1, Ordering::Relaxed);
                stream.cuts_in_a_row.fetch_add(1, Ordering::Relaxed);
                log::info!(
                    "update cut after {:.0} ms on {audio_seconds:.1} s of audio (budget {:?}, \
                     {} thread(s)); the next update covers its audio",
                    elapsed.as_secs_f64() * 1000.0,
                    limits.budget.unwrap_or_default(),
                    limits.threads
                );
            }
            Ok(Some(_)) => stream.cuts_in_a_row.store(0, Ordering::Relaxed),
            Err(_) => {}
        }
        log::debug!(
            "update: {:.0} ms on {audio_seconds:.1} s of audio, {} thread(s)",
            elapsed.as_secs_f64() * 1000.0,
            limits.threads
        );
        if check_language && matches!(heard, Ok(Some(_))) {
            check_language = false;
            detect_language(stream, transcriber, audio_seconds, limits.threads);
        }
        heard
    };
    let outcome = processor.update(pieces, end_of_stream, stream.min_chunk_samples, transcribe)?;
    let changed = outcome.transcriptions > outcome.cuts || !outcome.commits.is_empty();
    for commit in outcome.commits {
        stream.send(StreamEvent::Commit(commit));
    }
    if stream.interim && changed && !end_of_stream {
        stream.send(StreamEvent::Interim(processor.pending_text()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_grow_with_the_audio_and_double_after_each_cut_of_a_long_buffer() {
        let budget = UpdateBudget::default();
        assert_eq!(budget.for_call(10.0, 0), Duration::from_secs(2));
        assert_eq!(budget.for_call(0.0, 0), Duration::from_secs(1));
        // On a short buffer a budget never grows: no call on it can hold a worker long.
        assert_eq!(budget.for_call(10.0, 3), Duration::from_secs(2));
        assert_eq!(budget.for_call(20.0, 1), Duration::from_secs(6));
        assert_eq!(budget.for_call(20.0, 9), Duration::from_secs(48));
        let slow = budget.at_least(Duration::from_millis(400), 8);
        assert_eq!(slow.for_call(0.0, 0), Duration::from_millis(3200));
        assert_eq!(budget.at_least(Duration::from_millis(50), 8), budget);
    }
}
