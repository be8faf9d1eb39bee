//! reswhis — Remote Streaming Whisper.
//!
//! The binary (`src/main.rs`) is a thin command-line front; everything lives here so
//! integration tests, benchmarks and the tools share one implementation.

pub mod convert;
