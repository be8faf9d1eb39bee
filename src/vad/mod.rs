//! Voice activity: Silero VAD run natively on each stream, and the controller (VAC)
//! that sends only speech to Whisper.

pub mod gate;

pub use gate::{Gate, GateConfig, GateEvent};

/// Silero's window at 16 kHz: one speech probability per 512 samples (32 ms).
pub const WINDOW: usize = 512;
