//! One client streaming one file on its own WebSocket connection, as a microphone
//! would: frame k is sent when its last sample is due (timed from the stream start, so
//! pacing errors do not add up), then `{"type":"eos"}`, then every message until the
//! close. Reads wait no longer than the next frame's due time, so receiving never delays
//! sending. What goes wrong is recorded in the stream's result, not returned: one failed
//! stream does not end a round.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use super::report::{Arrival, StreamResult};
use super::stats::{stream_growth, words_in_silence};
use super::testset::{score, TestFile};
use super::words::{word_time_error, LanguageSeen, TimedWord};
use crate::audio::{self, BYTES_PER_SAMPLE, BYTES_PER_SECOND};
use crate::protocol::{ServerMessage, TaggedMessage};
use crate::wer::normalized_words;

/// How long a client waits for `done` and the close after sending `eos`.
const FLUSH_LIMIT: Duration = Duration::from_secs(120);

type Socket = WebSocket<MaybeTlsStream<TcpStream>>;

/// Streams `file` in real time on a new connection and records what comes back.
pub(super) fn stream_file(
    url: &str,
    client: usize,
    file: &TestFile,
    frame_ms: u64,
) -> StreamResult {
    let mut result = StreamResult {
        client,
        file: file.name.clone(),
        audio_seconds: file.seconds,
        speech: file.speech.clone(),
        silence_words: None,
        messages: Vec::new(),
        transcript: String::new(),
        word_errors: None,
        reference_words: None,
        first_text: None,
        eos_to_done: None,
        growth: None,
        errors: Vec::new(),
        language: None,
        words: Vec::new(),
        word_times: None,
    };
    // Recorded as the error's Display: nothing on this path adds context, so that is
    // the whole message.
    if let Err(e) = converse(url, file, frame_ms, &mut result) {
        result.errors.push(e.to_string());
    }
    let scored = score(file, &result.transcript);
    result.word_errors = scored.map(|s| s.0);
    result.reference_words = scored.map(|s| s.1);
    result.first_text = result.messages.first().map(|m| m.arrival);
    result.growth = stream_growth(&result.messages, file.seconds);
    if let Some(alignment) = &file.alignment {
        result.word_times = word_time_error(&result.words, alignment);
    }
    result.silence_words = file
        .speech
        .as_deref()
        .map(|speech| words_in_silence(&result.messages, speech));
    result
}

/// The protocol: frames paced in real time, `eos`, then everything until the close.
fn converse(
    url: &str,
    file: &TestFile,
    frame_ms: u64,
    result: &mut StreamResult,
) -> anyhow::Result<()> {
    let (socket, _) = tungstenite::connect(url)?;
    let mut listener = Listener {
        socket,
        start: Instant::now(),
        done_at: None,
        closed: false,
        close_frame: None,
    };
    // 32 bytes per ms: a frame always holds whole samples.
    let frame_bytes = BYTES_PER_SECOND * frame_ms as usize / 1000;
    let mut sent = 0;
    for frame in file.pcm.chunks(frame_bytes) {
        // A microphone client sends a frame once its last sample has been captured.
        sent += frame.len();
        let due = listener.start + Duration::from_secs_f64(audio::seconds(sent / BYTES_PER_SAMPLE));
        listener.listen_until(due, result)?;
        if listener.closed {
            bail!("the server closed the connection before the end of the audio");
        }
        listener.socket.send(Message::binary(frame.to_vec()))?;
    }
    listener.socket.send(Message::text(r#"{"type":"eos"}"#))?;
    let eos_at = listener.start.elapsed().as_secs_f64();
    listener.listen_until(Instant::now() + FLUSH_LIMIT, result)?;
    result.eos_to_done = listener.done_at.map(|t| t - eos_at);
    match (listener.done_at, listener.closed) {
        (Some(_), true) => Ok(()),
        (None, true) => bail!(
            "the connection closed ({}) without `done`",
            listener.close_frame.as_deref().unwrap_or("no close frame")
        ),
        (_, false) => bail!("no close within {} s of eos", FLUSH_LIMIT.as_secs()),
    }
}

/// The receiving side of one connection.
struct Listener {
    socket: Socket,
    /// Stream start: when the first sample was "captured".
    start: Instant,
    /// Seconds from stream start to `done`.
    done_at: Option<f64>,
    closed: bool,
    /// The server's close code and reason.
    close_frame: Option<String>,
}

impl Listener {
    /// Records every message that arrives before `deadline`, or until the connection
    /// closes.
    fn listen_until(&mut self, deadline: Instant, result: &mut StreamResult) -> anyhow::Result<()> {
        while !self.closed {
            let wait = deadline.saturating_duration_since(Instant::now());
            if wait.is_zero() {
                return Ok(());
            }
            if let MaybeTlsStream::Plain(stream) = self.socket.get_ref() {
                stream.set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
            }
            match self.socket.read() {
                Ok(message) => self.take(message, result)?,
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    self.closed = true
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn take(&mut self, message: Message, result: &mut StreamResult) -> anyhow::Result<()> {
        let arrival = self.start.elapsed().as_secs_f64();
        match message {
            Message::Text(text) => match ServerMessage::parse(text.as_str())
                .with_context(|| format!("not a server message: {}", text.as_str()))?
            {
                ServerMessage::Committed {
                    from,
                    to,
                    content,
                    words,
                } => {
                    result.messages.push(Arrival {
                        from_ms: from,
                        to_ms: to,
                        arrival,
                        latency: arrival - to as f64 / 1000.0,
                        words: normalized_words(&content).len(),
                    });
                    result.transcript.push_str(&content);
                    result
                        .words
                        .extend(words.unwrap_or_default().into_iter().map(|w| TimedWord {
                            word: w.word,
                            start: w.start as f64 / 1000.0,
                            end: w.end as f64 / 1000.0,
                        }));
                }
                ServerMessage::Tagged(TaggedMessage::Done) => self.done_at = Some(arrival),
                ServerMessage::Tagged(TaggedMessage::Error { message }) => {
                    result.errors.push(format!("server: {message}"))
                }
                ServerMessage::Tagged(TaggedMessage::Language {
                    language,
                    probability,
                }) => match &mut result.language {
                    Some(seen) => seen.announcements += 1,
                    None => {
                        result.language = Some(LanguageSeen {
                            code: language,
                            probability,
                            arrival,
                            announcements: 1,
                        })
                    }
                },
                ServerMessage::Tagged(TaggedMessage::Interim { .. }) => {}
            },
            Message::Close(Some(frame)) => {
                let code = u16::from(frame.code);
                self.close_frame = Some(format!("{code} {}", frame.reason));
                if code != 1000 {
                    result
                        .errors
                        .push(format!("closed with {code} {}", frame.reason));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::report::Span;

    /// A stand-in server that commits every frame's audio at once: what the client
    /// measures is then only its own pacing and the loopback, so latency ≈ 0.
    fn instant_server() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut socket = tungstenite::accept(stream).unwrap();
            let mut received_ms = 0;
            loop {
                match socket.read() {
                    Ok(Message::Binary(audio)) => {
                        let from = received_ms;
                        received_ms += audio.len() as u64 * 1000 / BYTES_PER_SECOND as u64;
                        let text =
                            format!(r#"{{"from":{from},"to":{received_ms},"content":" w"}}"#);
                        socket.send(Message::text(text)).unwrap();
                    }
                    Ok(Message::Text(_)) => {
                        socket.send(Message::text(r#"{"type":"done"}"#)).unwrap();
                        socket.close(None).unwrap();
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        });
        format!("ws://{address}/transcribe")
    }

    #[test]
    fn the_client_paces_in_real_time_and_measures_latency() {
        let samples = vec![0.0f32; audio::samples(1.0)];
        // Speech in the first 0.15 s only: widened, it ends at 0.65 s.
        let speech = vec![Span {
            start: 0.0,
            end: 0.15,
        }];
        let file = TestFile::new(
            "silence".into(),
            samples,
            Some("w w w w w w w w w w".into()),
            Some(speech),
        );
        let started = Instant::now();
        let result = stream_file(&instant_server(), 1, &file, 100);
        assert!(started.elapsed() >= Duration::from_secs(1), "not real time");
        assert!(result.errors.is_empty(), "{:?}", result.errors);
        assert_eq!(result.messages.len(), 10);
        assert_eq!(result.word_errors, Some(0));
        for m in &result.messages {
            // Frame k is sent when its last sample is due, so `to` = send time.
            assert!(m.latency > -0.002 && m.latency < 0.3, "{m:?}");
        }
        let first = result.first_text.unwrap();
        assert!((0.09..0.5).contains(&first), "first text {first}");
        assert!(result.eos_to_done.unwrap() < 0.3);
        // The messages from 0.7 s on ([0.7, 0.8], …, [0.9, 1.0]) lie in silence.
        assert!(result.messages.iter().all(|m| m.words == 1));
        assert_eq!(result.silence_words, Some(3));
    }
}
