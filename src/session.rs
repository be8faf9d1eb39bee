//! One client's WebSocket session, run on that client's own thread.
//!
//! The thread reads frames with a short timeout and, between reads, forwards what the
//! workers committed. Audio goes to the worker pool through the stream's inbox; text
//! comes back through the stream's event channel. The session ends when the client ends
//! the stream (`{"type":"eos"}` or an empty binary frame), closes, misbehaves, goes
//! idle, runs out of time, or the server shuts down; in every case but a vanished
//! client, the text not yet sent is flushed first.

use std::collections::VecDeque;
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

use crate::audio::PcmDecoder;
use crate::audio::SAMPLE_RATE;
use crate::handshake::Upgrade;
use crate::http::is_timeout;
use crate::metrics::Metrics;
use crate::pool::{StreamEvent, StreamHandle};
use crate::protocol::{ClientMessage, ServerMessage};
use crate::vad::{GateEvent, VoiceController};

/// How long a read waits before the thread checks for results to send.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// A client that does not read what we send for this long is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Audio waiting for a worker beyond which we stop reading from the client (TCP then
/// pushes back on it) until the pool catches up.
const MAX_BACKLOG_SECONDS: f64 = 60.0;
/// Longest wait for the final text after the end of a stream (a safety net: a worker
/// finishes any stream's last update far sooner, even when the pool is overloaded).
const FINAL_TEXT_LIMIT: Duration = Duration::from_secs(600);
/// How long the closing handshake may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Arrival times kept for the commit-latency figure (at 100 ms frames, over 6 minutes).
const ARRIVALS_KEPT: usize = 4096;

/// What a session needs from the server.
pub struct SessionLimits {
    /// Largest WebSocket message; bigger ones close the session with 1009.
    pub max_message_bytes: usize,
    /// How long a session may send nothing.
    pub idle_timeout: Option<Duration>,
    /// Longest session, wall-clock.
    pub max_duration: Option<Duration>,
    /// Once the server shuts down: how long to wait for the final text.
    pub shutdown_grace: Duration,
}

/// Something that tells the session the server is stopping.
pub trait ShutdownSignal {
    /// True once the server has begun to stop.
    fn is_shutting_down(&self) -> bool;
}

/// Why the session is wrapping up; decides the close frame.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ending {
    /// The client ended the stream.
    Requested,
    Idle,
    TooLong,
    Shutdown,
}

impl Ending {
    fn close_frame(self, idle: Option<Duration>) -> (CloseCode, String) {
        match self {
            Ending::Requested => (CloseCode::Normal, "done".into()),
            Ending::Idle => (
                CloseCode::Policy,
                format!(
                    "idle timeout: no data for {} s",
                    idle.map_or(0, |d| d.as_secs())
                ),
            ),
            Ending::TooLong => (CloseCode::Policy, "maximum session duration reached".into()),
            Ending::Shutdown => (CloseCode::Away, "server shutting down".into()),
        }
    }
}

/// The stream a session feeds and listens to.
pub struct SessionParts {
    /// Feeds the worker pool.
    pub handle: StreamHandle,
    /// What the pool says back: commits, errors, the end.
    pub events: Receiver<StreamEvent>,
    /// The voice activity controller, when the session uses one.
    pub vac: Option<VoiceController>,
    /// Send each committed message's words (`?words=1`).
    pub words: bool,
}

/// What a session shares with the server.
pub struct SessionEnv<'a> {
    /// What every session is held to.
    pub limits: &'a SessionLimits,
    /// Tells the session when the server stops.
    pub shutdown: &'a dyn ShutdownSignal,
    /// Where the session's counts go.
    pub metrics: &'a Metrics,
}

/// Switches the checked request to WebSocket (`leftover`: bytes read after the request
/// head) and runs the session to its end.
pub fn run(
    mut stream: TcpStream,
    upgrade: &Upgrade,
    leftover: Vec<u8>,
    parts: SessionParts,
    env: &SessionEnv,
) {
    if upgrade.switch(&mut stream).is_err()
        || stream.set_read_timeout(Some(POLL_INTERVAL)).is_err()
        || stream.set_write_timeout(Some(WRITE_TIMEOUT)).is_err()
    {
        return;
    }
    let _ = stream.set_nodelay(true);
    let limits = env.limits;
    let config = WebSocketConfig::default()
        .max_message_size(Some(limits.max_message_bytes))
        .max_frame_size(Some(limits.max_message_bytes));
    let socket = WebSocket::from_partially_read(stream, leftover, Role::Server, Some(config));
    let mut session = Session {
        socket,
        handle: parts.handle,
        events: parts.events,
        decoder: PcmDecoder::new(),
        limits,
        started: Instant::now(),
        last_data: Instant::now(),
        ending: None,
        failure: None,
        samples: Vec::new(),
        vac: parts.vac,
        words: parts.words,
        voiced: Vec::new(),
        metrics: env.metrics,
        received: 0,
        arrivals: VecDeque::new(),
        client_close: None,
    };
    session.run(env.shutdown);
}

struct Session<'a> {
    socket: WebSocket<TcpStream>,
    handle: StreamHandle,
    events: Receiver<StreamEvent>,
    decoder: PcmDecoder,
    limits: &'a SessionLimits,
    started: Instant,
    last_data: Instant,
    /// Set once the stream was ended; we then wait for the final text.
    ending: Option<(Ending, Instant)>,
    /// A client error that ends the session once its text is flushed.
    failure: Option<(CloseCode, String)>,
    samples: Vec<f32>,
    /// The voice activity controller, when the session uses one: only speech reaches
    /// the workers, and each utterance is committed when it ends.
    vac: Option<VoiceController>,
    /// Send words with their times.
    words: bool,
    /// What the controller forwards (reused between frames).
    voiced: Vec<GateEvent>,
    metrics: &'a Metrics,
    /// Samples received.
    received: u64,
    /// (samples received by then, when): when the audio arrived, for the latency of
    /// the text that ends in it. At most [`ARRIVALS_KEPT`], oldest first.
    arrivals: VecDeque<(u64, Instant)>,
    /// The close code of a client that closed the connection itself.
    client_close: Option<u16>,
}

impl Step {
    fn is_abandon(&self) -> bool {
        matches!(self, Step::Abandon)
    }
}

/// What the read loop decided.
enum Step {
    Continue,
    /// Close the connection with this frame (after sending anything pending).
    Close(CloseCode, String),
    /// The connection is gone or unusable: stop at once.
    Abandon,
}

impl Session<'_> {
    fn run(&mut self, shutdown: &dyn ShutdownSignal) {
        loop {
            let step = match self.forward_events() {
                Step::Continue => self.read_once(shutdown),
                other => other,
            };
            match step {
                Step::Continue => continue,
                Step::Close(code, reason) => {
                    self.close(code, reason);
                    return;
                }
                Step::Abandon => {
                    self.handle.cancel();
                    // The client's own close code, or 1006: the connection just ended.
                    self.metrics.closed(self.client_close.unwrap_or(1006));
                    return;
                }
            }
        }
    }

    /// Sends what the workers produced. Ends the session once the stream is finished.
    fn forward_events(&mut self) -> Step {
        let mut sent = false;
        while let Ok(event) = self.events.try_recv() {
            let message = match event {
                StreamEvent::Commit(commit) => {
                    self.record_latency(commit.end);
                    let message = ServerMessage::committed(commit.start, commit.end, commit.text);
                    match self.words {
                        true => message.with_words(
                            commit
                                .words
                                .iter()
                                .map(|w| (w.text.as_str(), w.start, w.end)),
                        ),
                        false => message,
                    }
                }
                StreamEvent::Interim(text) => ServerMessage::interim(text),
                StreamEvent::Language { code, probability } => {
                    ServerMessage::language(&code, probability)
                }
                StreamEvent::Done => {
                    if self.send_now(&ServerMessage::done()).is_abandon() {
                        return Step::Abandon;
                    }
                    let (code, reason) = self.close_frame();
                    return Step::Close(code, reason);
                }
                StreamEvent::Failed(reason) => {
                    let message = format!("{reason}; it was stopped, text already sent is final");
                    let _ = self.send_now(&ServerMessage::error(message));
                    return Step::Close(CloseCode::Error, "internal error".into());
                }
            };
            if self.queue(&message).is_err() {
                return Step::Abandon;
            }
            sent = true;
        }
        if sent && self.socket.flush().is_err() {
            return Step::Abandon;
        }
        Step::Continue
    }

    /// Records how long after its audio arrived the text ending at `end` (seconds on
    /// the stream's clock) goes out.
    fn record_latency(&mut self, end: f64) {
        let sample = (end * SAMPLE_RATE as f64) as u64;
        while self.arrivals.len() > 1 && self.arrivals[1].0 <= sample {
            self.arrivals.pop_front();
        }
        if let Some(&(received, at)) = self.arrivals.iter().find(|(r, _)| *r >= sample) {
            debug_assert!(received >= sample);
            self.metrics.commit_latency.observe_duration(at.elapsed());
        }
    }

    fn close_frame(&self) -> (CloseCode, String) {
        if let Some(failure) = &self.failure {
            return failure.clone();
        }
        self.ending
            .map_or(Ending::Requested, |(e, _)| e)
            .close_frame(self.limits.idle_timeout)
    }

    fn queue(&mut self, message: &ServerMessage) -> tungstenite::Result<()> {
        self.socket.write(Message::text(message.to_json()))
    }

    fn send_now(&mut self, message: &ServerMessage) -> Step {
        match self.queue(message).and_then(|_| self.socket.flush()) {
            Ok(()) => Step::Continue,
            Err(_) => Step::Abandon,
        }
    }

    /// Starts wrapping up: the rest of the audio is transcribed and sent.
    fn begin_ending(&mut self, why: Ending) {
        if self.ending.is_none() {
            self.ending = Some((why, Instant::now()));
            if let Some(vac) = &mut self.vac {
                vac.finish(&mut self.voiced);
                self.forward_voiced();
            }
            self.handle.end_of_stream();
        }
    }

    /// Passes audio on to the workers, through the controller when there is one.
    fn push_samples(&mut self) {
        match &mut self.vac {
            Some(vac) => {
                vac.push(&self.samples, &mut self.voiced);
                self.forward_voiced();
            }
            None => self.handle.push_audio(&self.samples),
        }
    }

    fn forward_voiced(&mut self) {
        for event in self.voiced.drain(..) {
            match event {
                GateEvent::Audio {
                    at,
                    samples,
                    voiced,
                    onset,
                } => self.handle.push_audio_at(at, &samples, voiced, onset),
                GateEvent::EndOfUtterance => self.handle.end_utterance(),
            }
        }
    }

    fn read_once(&mut self, shutdown: &dyn ShutdownSignal) -> Step {
        if let Some(step) = self.check_clocks(shutdown) {
            return step;
        }
        if self.failure.is_some() {
            // The connection can no longer be read; wait for the final text.
            std::thread::sleep(POLL_INTERVAL);
            return Step::Continue;
        }
        // A client far ahead of the pool waits (TCP pushes back) instead of queueing
        // audio without bound.
        if self.ending.is_none() && self.handle.backlog_seconds() > MAX_BACKLOG_SECONDS {
            std::thread::sleep(POLL_INTERVAL);
            return Step::Continue;
        }
        match self.socket.read() {
            Ok(Message::Binary(bytes)) => self.on_audio(&bytes),
            Ok(Message::Text(text)) => self.on_text(text.as_str()),
            Ok(Message::Close(frame)) => {
                self.client_close = Some(frame.map_or(1005, |f| u16::from(f.code)));
                // The client left without ending the stream: drop its work.
                self.handle.cancel();
                let _ = self.socket.flush();
                Step::Abandon
            }
            Ok(_) => Step::Continue, // ping/pong are answered by tungstenite
            Err(tungstenite::Error::Io(e)) if is_timeout(&e) => Step::Continue,
            Err(tungstenite::Error::Capacity(e)) => {
                let message = format!(
                    "{e}: send audio in frames of at most {} bytes",
                    self.limits.max_message_bytes
                );
                self.fail(CloseCode::Size, message)
            }
            Err(tungstenite::Error::Protocol(e)) => self.fail(
                CloseCode::Protocol,
                format!("WebSocket protocol error: {e}"),
            ),
            Err(tungstenite::Error::Utf8(_)) => self.fail(
                CloseCode::Invalid,
                "text frame is not valid UTF-8".to_string(),
            ),
            Err(_) => Step::Abandon,
        }
    }

    /// Idle, session length and shutdown.
    fn check_clocks(&mut self, shutdown: &dyn ShutdownSignal) -> Option<Step> {
        let now = Instant::now();
        if let Some((why, since)) = self.ending {
            // A client that ended its stream waits for the rest however busy the
            // workers are; only a shutdown (or a stuck worker) cuts it short.
            let grace = match why {
                Ending::Shutdown => self.limits.shutdown_grace,
                _ => FINAL_TEXT_LIMIT,
            };
            if now.duration_since(since) > grace {
                // The workers are too far behind to finish this stream in time.
                let _ = self.send_now(&ServerMessage::error(
                    "the final text was not ready in time; the transcript may be incomplete",
                ));
                let code = if why == Ending::Shutdown {
                    CloseCode::Away
                } else {
                    CloseCode::Again
                };
                return Some(Step::Close(code, "final text not ready in time".into()));
            }
            if shutdown.is_shutting_down() && why != Ending::Shutdown {
                self.ending = Some((Ending::Shutdown, since));
            }
            return None;
        }
        if shutdown.is_shutting_down() {
            self.begin_ending(Ending::Shutdown);
        } else if self
            .limits
            .idle_timeout
            .is_some_and(|idle| now.duration_since(self.last_data) > idle)
        {
            let message = format!(
                "no data for {} s: ending the session (text so far follows)",
                self.limits.idle_timeout.unwrap_or_default().as_secs()
            );
            if let Step::Abandon = self.send_now(&ServerMessage::error(message)) {
                return Some(Step::Abandon);
            }
            self.begin_ending(Ending::Idle);
        } else if self
            .limits
            .max_duration
            .is_some_and(|max| now.duration_since(self.started) > max)
        {
            if let Step::Abandon = self.send_now(&ServerMessage::error(
                "maximum session duration reached: ending the session (text so far follows)",
            )) {
                return Some(Step::Abandon);
            }
            self.begin_ending(Ending::TooLong);
        }
        None
    }

    fn on_audio(&mut self, bytes: &[u8]) -> Step {
        self.last_data = Instant::now();
        if bytes.is_empty() {
            // The original protocol's end of stream.
            self.begin_ending(Ending::Requested);
            return Step::Continue;
        }
        if self.ending.is_some() {
            return self.send_now(&ServerMessage::error(
                "audio after the end of the stream was ignored",
            ));
        }
        self.samples.clear();
        self.decoder.decode(bytes, &mut self.samples);
        self.received += self.samples.len() as u64;
        self.metrics
            .audio_samples
            .fetch_add(self.samples.len() as u64, Ordering::Relaxed);
        if self.arrivals.len() == ARRIVALS_KEPT {
            self.arrivals.pop_front();
        }
        self.arrivals.push_back((self.received, Instant::now()));
        self.push_samples();
        Step::Continue
    }

    fn on_text(&mut self, text: &str) -> Step {
        self.last_data = Instant::now();
        match ClientMessage::parse(text) {
            Ok(ClientMessage::EndOfStream) => {
                self.begin_ending(Ending::Requested);
                Step::Continue
            }
            Err(error) => self.send_now(&ServerMessage::error(error.to_string())),
        }
    }

    /// A fatal client error: say why, transcribe and send what was received before it,
    /// then close with `code`.
    fn fail(&mut self, code: CloseCode, message: String) -> Step {
        log::info!("ending a session: {message}");
        let step = self.send_now(&ServerMessage::error(message.clone()));
        let mut reason = message;
        truncate_at_char_boundary(&mut reason, 120);
        self.failure = Some((code, reason));
        self.begin_ending(Ending::Requested);
        step
    }

    /// Sends the close frame and waits (briefly) for the client's.
    fn close(&mut self, code: CloseCode, reason: String) {
        self.handle.cancel();
        self.metrics.closed(u16::from(code));
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        if self.socket.close(Some(frame)).is_err() {
            return;
        }
        let deadline = Instant::now() + CLOSE_TIMEOUT;
        while Instant::now() < deadline {
            match self.socket.read() {
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e)) if is_timeout(&e) => {
                    let _ = self.socket.flush();
                }
                Err(_) => break,
            }
        }
    }
}

/// Close reasons must fit in a control frame (123 bytes).
fn truncate_at_char_boundary(text: &mut String, max: usize) {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_fit_a_control_frame() {
        let mut reason = "é".repeat(100);
        truncate_at_char_boundary(&mut reason, 120);
        assert_eq!(reason.len(), 120);
        let mut short = "ok".to_string();
        truncate_at_char_boundary(&mut short, 120);
        assert_eq!(short, "ok");
    }
}
