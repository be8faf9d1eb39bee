//! reswhis — Remote Streaming Whisper.
//!
//! The binary (`src/main.rs`) is a thin command-line front; everything lives here so
//! integration tests, benchmarks and the tools share one implementation.
//!
//! Data flow: [`server`] accepts a connection and [`http`] reads its request; plain
//! requests get their answer there ([`info`], [`metrics`], the web client), and
//! `/transcribe` passes [`handshake`] → [`session`] runs the client's WebSocket on its
//! own thread and decodes its audio ([`audio`], [`protocol`]); with the voice activity
//! controller on, [`vad`] keeps only speech → [`pool`] hands the stream to a worker,
//! which sizes the call by [`load`] → [`policy`] (LocalAgreement) decides, from
//! [`engine`]'s transcriptions, which words are final, and [`language`] which language
//! the stream is in → the session sends them back.
//!
//! Tools: [`config`] (the command line), [`simulate`] (a file through the policy,
//! without a server), [`bench`](mod@bench) (a server measured over the wire, with [`scenario`]
//! streams and [`wer`]), [`convert`] (model converters to whisper.cpp's format),
//! [`cpu`] (process CPU time).
//!
//! Dependencies point one way: the tools use the server's modules, never the reverse;
//! `server` is the only module that knows all the others.

#![warn(missing_docs)]

pub mod audio;
pub mod bench;
pub mod config;
pub mod convert;
pub mod cpu;
pub mod engine;
pub mod handshake;
pub mod http;
pub mod info;
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

/// `error` and its causes on one line, "context: cause: …". A cause whose text the line
/// already holds is left out: many errors (WavError, EngineError, tungstenite's) print
/// their source in their own message, and anyhow's `{:#}` would repeat it.
pub fn error_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}
