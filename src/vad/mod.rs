//! Voice activity: Silero VAD run natively on each stream ([`silero`]), and the
//! controller (VAC, [`gate`]) that sends only speech to Whisper and marks where each
//! utterance ends.

pub mod gate;
pub mod silero;

pub use gate::{Gate, GateConfig, GateEvent};
pub use silero::{Silero, SileroError, SileroModel};

/// Silero's window at 16 kHz: one speech probability per 512 samples (32 ms).
pub const WINDOW: usize = 512;
