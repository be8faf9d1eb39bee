//! reswhis — Remote Streaming Whisper.
//!
//! The binary (`src/main.rs`) is a thin command-line front; everything lives here so
//! integration tests, benchmarks and the tools share one implementation.
//!
//! Data flow: [`http`] accepts a connection → [`session`] runs the client's WebSocket
//! on its own thread and decodes its audio ([`audio`], [`protocol`]) → [`pool`] hands
//! the stream to a worker → [`policy`] (LocalAgreement) decides, from [`engine`]'s
//! transcriptions, which words are final → the session sends them back.

pub mod audio;
pub mod bench;
pub mod config;
pub mod convert;
pub mod cpu;
pub mod engine;
pub mod handshake;
pub mod http;
pub mod language;
pub mod load;
pub mod metrics;
pub mod policy;
pub mod pool;
pub mod protocol;
pub mod scenario;
pub mod server;
pub mod session;
pub mod simulate;
pub mod vad;
pub mod wer;
