//! Two hooks into whisper.cpp's decoding that keep one call from holding a worker:
//!
//! * [`Deadline`], its abort callback: whisper.cpp polls it after the encoder and after
//!   every decoder step, and stops the call once the time budget is spent (the call
//!   then fails with whisper.cpp's code -6, -8 or -9 and the state stays usable);
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
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use whisper_rs::{FullParams, WhisperSysContext, WhisperSysState, WhisperTokenData};

/// The end of a call's time budget.
#[derive(Debug)]
pub struct Deadline {
    at: Instant,
    /// Testing only: each poll waits this long first, so that a call runs out of time.
    slow_polls: Option<Duration>,
    expired: AtomicBool,
}

impl Deadline {
    /// A deadline `budget` from now. `slow_polls` makes every poll wait first (tests only).
    pub fn new(budget: Duration, slow_polls: Option<Duration>) -> Deadline {
        Deadline {
            at: Instant::now() + budget,
            slow_polls,
            expired: AtomicBool::new(false),
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
        }
    }
}

unsafe extern "C" fn abort_when_expired(data: *mut c_void) -> bool {
    // SAFETY: `install` passed a pointer to a live `Deadline`.
    let deadline = unsafe { &*(data as *const Deadline) };
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
}
