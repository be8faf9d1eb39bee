//! Two hooks into whisper.cpp's decoding that keep one call from holding a worker:
//!
//! * [`Deadline`], its abort callback: whisper.cpp polls it after the encoder and after
//!   every decoder step, and stops the call once the time budget is spent (the call
//!   then fails with whisper.cpp's code -6, -8 or -9 and the state stays usable); and
//!   its encoder-begin callback: whisper.cpp cannot stop an encoder pass once begun, and
//!   a call whose first window ends before its audio does runs a second one, so a
//!   second pass that would not end within the budget (by the first pass's duration) is
//!   not begun — with two busy cores and two clients such passes overran a 2 s budget
//!   by 0.43 s. The call then returns what its first window gave (Whisper ended that
//!   window early: what follows is mostly the silence at the buffer's end), and the
//!   stream's next update hears the rest;
//! * [`LoopGuard`], its logits filter: before each token it looks at the tokens decoded
//!   so far, and once they end in a phrase said three times over ("and so and so and
//!   so", "Thank you. Thank you. Thank you."), it leaves end-of-text as the only choice,
//!   so the loop stops at once instead of running to the token limit.
//!
//! Both are plain C callbacks with a pointer to their data, which the caller keeps
//! alive (and unmoved) until `full` returns. whisper-rs's closure-based
//! `set_abort_callback_safe` is not used: in 0.16 it hands whisper.cpp a pointer of the
//! wrong type, so a closure that captures anything reads garbage.

use std::ffi::c_void;
use std::os::raw::c_int;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use whisper_rs::{FullParams, WhisperSysContext, WhisperSysState, WhisperTokenData};

/// The end of a call's time budget.
#[derive(Debug)]
pub struct Deadline {
    began: Instant,
    at: Instant,
    /// Testing only: each poll waits this long first, so that a call runs out of time.
    slow_polls: Option<Duration>,
    expired: AtomicBool,
    /// When the first encoder pass began (µs after `began`, plus one; 0: not yet).
    encoder_began: AtomicU64,
    /// How long the first encoder pass took (µs; 0: not known yet).
    encoder_took: AtomicU64,
    /// A later encoder pass was not begun.
    skipped: AtomicBool,
}

impl Deadline {
    /// A deadline `budget` from now. `slow_polls` makes every poll wait first (tests only).
    pub fn new(budget: Duration, slow_polls: Option<Duration>) -> Deadline {
        let began = Instant::now();
        Deadline {
            began,
            at: began + budget,
            slow_polls,
            expired: AtomicBool::new(false),
            encoder_began: AtomicU64::new(0),
            encoder_took: AtomicU64::new(0),
            skipped: AtomicBool::new(false),
        }
    }

    /// Whether a later encoder pass was not begun (the call's text ends early).
    #[cfg(test)]
    fn skipped_a_pass(&self) -> bool {
        self.skipped.load(Ordering::Relaxed)
    }

    fn micros_since_start(&self) -> u64 {
        self.began.elapsed().as_micros() as u64
    }

    /// Whether an encoder pass may begin now: always the first; a later one only if
    /// it can end in time, taking as long as the first did.
    fn encoder_may_begin(&self) -> bool {
        let now = self.micros_since_start();
        let took = self.encoder_took.load(Ordering::Relaxed);
        if self.encoder_began.load(Ordering::Relaxed) == 0 {
            self.encoder_began.store(now + 1, Ordering::Relaxed);
            return true;
        }
        let budget = self.at.duration_since(self.began).as_micros() as u64;
        let fits = now + took <= budget;
        if fits {
            log::debug!("a second encoder pass begins ({} ms in)", now / 1000);
        } else {
            self.skipped.store(true, Ordering::Relaxed);
            log::debug!(
                "a second encoder pass would end past the budget ({} ms in, the first took \
                 {} ms): not begun",
                now / 1000,
                took / 1000
            );
        }
        fits
    }

    /// A poll: the first after the first encoder pass began is at that pass's end.
    fn polled(&self) {
        let began = self.encoder_began.load(Ordering::Relaxed);
        if began != 0 && self.encoder_took.load(Ordering::Relaxed) == 0 {
            let took = self.micros_since_start().saturating_sub(began - 1).max(1);
            self.encoder_took.store(took, Ordering::Relaxed);
        }
    }

    /// Whether whisper.cpp was told to stop.
    pub fn expired(&self) -> bool {
        self.expired.load(Ordering::Relaxed)
    }

    /// Installs the callback. `self` must outlive the `full` call made with `params`.
    pub fn install(&self, params: &mut FullParams) {
        // SAFETY: the callback only reads a `Deadline`, which the caller keeps alive and
        // in place for as long as whisper.cpp may call it (during `full`).
        unsafe {
            params.set_abort_callback(Some(abort_when_expired));
            params.set_abort_callback_user_data(self as *const Deadline as *mut c_void);
            params.set_start_encoder_callback(Some(encoder_may_begin));
            params.set_start_encoder_callback_user_data(self as *const Deadline as *mut c_void);
        }
    }
}

unsafe extern "C" fn encoder_may_begin(
    _ctx: *mut WhisperSysContext,
    _state: *mut WhisperSysState,
    data: *mut c_void,
) -> bool {
    // SAFETY: `install` passed a pointer to a live `Deadline`.
    let deadline = unsafe { &*(data as *const Deadline) };
    deadline.encoder_may_begin()
}

unsafe extern "C" fn abort_when_expired(data: *mut c_void) -> bool {
    // SAFETY: `install` passed a pointer to a live `Deadline`.
    let deadline = unsafe { &*(data as *const Deadline) };
    deadline.polled();
    if let Some(wait) = deadline.slow_polls {
        std::thread::sleep(wait);
    }
    let expired = Instant::now() >= deadline.at;
    if expired {
        deadline.expired.store(true, Ordering::Relaxed);
    }
    expired
}

/// Stops a decoding loop as soon as it shows.
#[derive(Debug)]
pub struct LoopGuard {
    eot: i32,
    n_vocab: usize,
    fired: AtomicBool,
}

impl LoopGuard {
    /// A guard for a vocabulary of `n_vocab` tokens whose end-of-text token is `eot`.
    pub fn new(eot: i32, n_vocab: usize) -> LoopGuard {
        LoopGuard {
            eot,
            n_vocab,
            fired: AtomicBool::new(false),
        }
    }

    /// Whether a loop was stopped.
    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::Relaxed)
    }

    /// Installs the filter. `self` must outlive the `full` call made with `params`.
    pub fn install(&self, params: &mut FullParams) {
        // SAFETY: the filter reads the `LoopGuard` (atomics only: with several decoders
        // whisper.cpp calls it from several threads) and writes the logits array
        // whisper.cpp hands it, within its length `n_vocab`.
        unsafe {
            params.set_filter_logits_callback(Some(stop_loops));
            params.set_filter_logits_callback_user_data(self as *const LoopGuard as *mut c_void);
        }
    }
}

unsafe extern "C" fn stop_loops(
    _context: *mut WhisperSysContext,
    _state: *mut WhisperSysState,
    tokens: *const WhisperTokenData,
    n_tokens: c_int,
    logits: *mut f32,
    data: *mut c_void,
) {
    if tokens.is_null() || logits.is_null() || n_tokens <= 0 {
        return;
    }
    // SAFETY: whisper.cpp passes `n_tokens` token records and `n_vocab` logits; `data`
    // is the `LoopGuard` that `install` registered.
    let (guard, tokens) = unsafe {
        (
            &*(data as *const LoopGuard),
            std::slice::from_raw_parts(tokens, n_tokens as usize),
        )
    };
    let text: Vec<i32> = tokens
        .iter()
        .map(|t| t.id)
        .filter(|&id| id < guard.eot)
        .collect();
    if !ends_in_loop(&text) {
        return;
    }
    guard.fired.store(true, Ordering::Relaxed);
    // SAFETY: see above.
    let logits = unsafe { std::slice::from_raw_parts_mut(logits, guard.n_vocab) };
    for (id, logit) in logits.iter_mut().enumerate() {
        if id as i32 != guard.eot {
            *logit = f32::NEG_INFINITY;
        }
    }
}

/// Longest phrase, in tokens, looked for as a loop.
const MAX_PERIOD: usize = 16;

/// Whether `tokens` end with a phrase repeated back to back: three times over for a
/// phrase of three tokens or more, five times for two, nine times for one ("1 1 1 …").
/// Speech repeats less than that ("no, no, no", "words, words, words").
pub fn ends_in_loop(tokens: &[i32]) -> bool {
    (1..=MAX_PERIOD).any(|period| {
        let repeats = match period {
            1 => 9,
            2 => 5,
            _ => 3,
        };
        let span = period * repeats;
        span <= tokens.len() && {
            let tail = &tokens[tokens.len() - span..];
            (period..span).all(|i| tail[i] == tail[i - period])
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loops_are_phrases_said_over_and_over() {
        // "Thank you." three times: [Thank, you, .] × 3.
        assert!(ends_in_loop(&[5, 1, 2, 3, 1, 2, 3, 1, 2, 3]));
        assert!(!ends_in_loop(&[5, 1, 2, 3, 1, 2, 3]));
        // "and so" five times, but not four.
        assert!(ends_in_loop(&[7, 8, 7, 8, 7, 8, 7, 8, 7, 8]));
        assert!(!ends_in_loop(&[7, 8, 7, 8, 7, 8, 7, 8]));
        // One token nine times.
        assert!(ends_in_loop(&[4; 9]));
        assert!(!ends_in_loop(&[4; 8]));
        // A repeat the speech moved on from is not a loop (any more).
        assert!(!ends_in_loop(&[1, 2, 3, 1, 2, 3, 1, 2, 3, 9]));
        assert!(!ends_in_loop(&[]));
    }

    #[test]
    fn a_deadline_expires() {
        let deadline = Deadline::new(Duration::ZERO, None);
        // SAFETY: a live Deadline, as whisper.cpp would be given.
        let expired = unsafe { abort_when_expired(&deadline as *const Deadline as *mut c_void) };
        assert!(expired && deadline.expired());
        let later = Deadline::new(Duration::from_secs(60), None);
        // SAFETY: as above.
        assert!(!unsafe { abort_when_expired(&later as *const Deadline as *mut c_void) });
        assert!(!later.expired());
    }

    #[test]
    fn a_second_encoder_pass_begins_only_if_it_can_end_in_time() {
        // A 10 s budget; the first pass "took" 4 s (set directly: no sleeping in tests).
        let deadline = Deadline::new(Duration::from_secs(10), None);
        assert!(deadline.encoder_may_begin(), "the first pass always begins");
        deadline.polled();
        assert!(deadline.encoder_took.load(Ordering::Relaxed) > 0);
        deadline.encoder_took.store(4_000_000, Ordering::Relaxed);
        assert!(deadline.encoder_may_begin(), "0 s + 4 s fits in 10 s");
        assert!(!deadline.expired());
        deadline.encoder_took.store(11_000_000, Ordering::Relaxed);
        assert!(!deadline.skipped_a_pass());
        assert!(!deadline.encoder_may_begin(), "0 s + 11 s does not");
        assert!(deadline.skipped_a_pass() && !deadline.expired());
    }
}
