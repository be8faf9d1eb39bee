//! The worker pool: a fixed number of threads, each owning a whisper state, serving all
//! streams.
//!
//! Scheduling: a stream with enough new audio (or at its end) is put on a bounded FIFO
//! queue, at most once at a time. A worker takes it, transcribes *all* audio the stream
//! received so far, sends what was committed, and puts the stream back at the end of the
//! queue if more audio arrived meanwhile. So a stream is processed by one worker at a
//! time, streams take turns (round robin: none starves another), the queue never holds
//! more entries than there are streams, and when the pool cannot keep up each update
//! simply covers more audio: latency grows, nothing queues without bound.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::audio::SAMPLE_RATE;
use crate::engine::{Engine, EngineError, Transcriber};
use crate::policy::{Commit, OnlineProcessor, Piece, PolicyConfig};
use crate::protocol::ServerMessage;

/// What a stream's connection receives from the workers.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// A message for the client.
    Message(ServerMessage),
    /// The end of stream was processed and everything was sent: close normally.
    Finished,
    /// Processing failed (the message was already sent as an error): close with 1011.
    Failed,
}

#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// Seconds of new audio that make an update worth running.
    pub min_chunk_sec: f64,
    pub policy: PolicyConfig,
    /// Honour [`PANIC_SAMPLE`] (tests only).
    pub fault_injection: bool,
}

#[derive(Debug, Default)]
struct Inbox {
    /// Audio received and not yet taken by a worker, in stream order.
    pieces: Vec<Piece>,
    /// Samples in `pieces`.
    samples: usize,
    /// Stream index after the last sample received.
    next_at: u64,
    end_of_stream: bool,
    cancelled: bool,
    /// On the queue or being processed.
    scheduled: bool,
    /// When the stream last went on the queue (for the queue-wait figures).
    queued_at: Option<Instant>,
    finished: bool,
}

impl Inbox {
    fn push(&mut self, at: u64, samples: &[f32]) {
        self.samples += samples.len();
        self.next_at = self.next_at.max(at + samples.len() as u64);
        match self.pieces.last_mut() {
            Some(last) if !last.ends_utterance && last.at + last.audio.len() as u64 == at => {
                last.audio.extend_from_slice(samples);
            }
            _ => self.pieces.push(Piece {
                at,
                audio: samples.to_vec(),
                ends_utterance: false,
            }),
        }
    }

    fn end_utterance(&mut self) {
        match self.pieces.last_mut() {
            Some(last) => last.ends_utterance = true,
            // The worker took the audio already: an empty piece carries the mark.
            None => self.pieces.push(Piece {
                at: self.next_at,
                audio: Vec::new(),
                ends_utterance: true,
            }),
        }
    }
}

/// Test hook: with `StreamConfig::fault_injection` on (the hidden `--fault-injection`
/// flag), a chunk of audio whose first sample is exactly this value makes the worker
/// panic, which proves that a panic is contained.
pub const PANIC_SAMPLE: i16 = -32_123;

struct Stream {
    inbox: Mutex<Inbox>,
    processor: Mutex<OnlineProcessor>,
    events: Sender<StreamEvent>,
    interim: bool,
    min_chunk_samples: usize,
    fault_injection: bool,
}

impl Stream {
    fn inbox(&self) -> MutexGuard<'_, Inbox> {
        // A panic while holding the inbox lock cannot leave it inconsistent (plain
        // field writes), so a poisoned lock is still usable.
        self.inbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn send(&self, message: ServerMessage) {
        // The connection may be gone; then there is nobody to tell.
        let _ = self.events.send(StreamEvent::Message(message));
    }

    fn send_commit(&self, commit: Commit) {
        self.send(ServerMessage::committed(
            commit.start,
            commit.end,
            commit.text,
        ));
    }

    /// Decides under the inbox lock whether the stream should go (back) on the queue.
    fn wants_turn(&self, inbox: &mut Inbox) -> bool {
        let ready = inbox.end_of_stream
            || inbox.samples >= self.min_chunk_samples
            || inbox.pieces.iter().any(|p| p.ends_utterance);
        if ready && !inbox.scheduled && !inbox.finished && !inbox.cancelled {
            inbox.scheduled = true;
            inbox.queued_at = Some(Instant::now());
            true
        } else {
            false
        }
    }
}

/// Counters for `/info` and the benchmark.
#[derive(Debug, Default)]
pub struct PoolStats {
    pub updates: AtomicU64,
    pub busy_workers: AtomicUsize,
    /// Wall-clock microseconds spent inside whisper.cpp, all workers together.
    pub transcribe_micros: AtomicU64,
}

pub struct WorkerPool {
    queue: Sender<Arc<Stream>>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    config: StreamConfig,
    stats: Arc<PoolStats>,
}

impl WorkerPool {
    /// Starts `workers` threads. `max_streams` bounds the queue.
    pub fn start(
        engine: &Engine,
        workers: usize,
        max_streams: usize,
        config: StreamConfig,
    ) -> Result<WorkerPool, EngineError> {
        let (queue, jobs) = crossbeam_channel::bounded::<Arc<Stream>>(max_streams.max(1));
        let stats = Arc::new(PoolStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::with_capacity(workers);
        let warm_up_audio = warm_up_audio();
        for index in 0..workers.max(1) {
            let mut transcriber = engine.transcriber()?;
            // The first run allocates whisper.cpp's buffers; do it before clients come.
            transcriber.transcribe(&warm_up_audio, "")?;
            let fresh = engine.transcriber()?;
            let jobs = jobs.clone();
            let queue = queue.clone();
            let stats = Arc::clone(&stats);
            let stop = Arc::clone(&stop);
            let handle = std::thread::Builder::new()
                .name(format!("worker-{index}"))
                .spawn(move || worker_loop(transcriber, fresh, jobs, queue, stats, stop))
                .expect("spawning a worker thread");
            handles.push(handle);
        }
        Ok(WorkerPool {
            queue,
            stop,
            workers: handles,
            config,
            stats,
        })
    }

    pub fn stats(&self) -> &PoolStats {
        &self.stats
    }

    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// A new stream; the receiver gets its events.
    pub fn open_stream(&self, interim: bool) -> (StreamHandle, Receiver<StreamEvent>) {
        let (events, receiver) = crossbeam_channel::unbounded();
        let stream = Arc::new(Stream {
            inbox: Mutex::new(Inbox::default()),
            processor: Mutex::new(OnlineProcessor::new(self.config.policy.clone())),
            events,
            interim,
            min_chunk_samples: (self.config.min_chunk_sec * SAMPLE_RATE as f64) as usize,
            fault_injection: self.config.fault_injection,
        });
        let handle = StreamHandle {
            stream,
            queue: self.queue.clone(),
        };
        (handle, receiver)
    }

    /// Stops the workers once the queue is empty (streams still queued are processed
    /// first) and waits for them.
    pub fn shutdown(self) {
        self.stop.store(true, Ordering::SeqCst);
        for worker in self.workers {
            let _ = worker.join();
        }
    }
}

/// One second of faint noise: enough to run the encoder and decoder once.
fn warm_up_audio() -> Vec<f32> {
    let mut seed = 0x2545_f491_u32;
    (0..SAMPLE_RATE)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            (seed as f32 / u32::MAX as f32 - 0.5) * 0.002
        })
        .collect()
}

/// The connection's side of a stream.
pub struct StreamHandle {
    stream: Arc<Stream>,
    queue: Sender<Arc<Stream>>,
}

impl StreamHandle {
    /// Adds audio that follows what was received before.
    pub fn push_audio(&self, samples: &[f32]) {
        let at = self.stream.inbox().next_at;
        self.push_audio_at(at, samples);
    }

    /// Adds audio whose first sample has stream index `at` (past the audio received so
    /// far: the voice activity controller leaves silence out).
    pub fn push_audio_at(&self, at: u64, samples: &[f32]) {
        self.update_inbox(|inbox| inbox.push(at, samples));
    }

    /// The utterance whose audio was pushed last has ended: it is transcribed and all of
    /// its text committed without waiting for more audio.
    pub fn end_utterance(&self) {
        self.update_inbox(Inbox::end_utterance);
    }

    fn update_inbox(&self, change: impl FnOnce(&mut Inbox)) {
        let mut inbox = self.stream.inbox();
        if inbox.end_of_stream || inbox.cancelled {
            return;
        }
        change(&mut inbox);
        let schedule = self.stream.wants_turn(&mut inbox);
        drop(inbox);
        if schedule {
            self.enqueue();
        }
    }

    /// Seconds of audio waiting for a worker.
    pub fn backlog_seconds(&self) -> f64 {
        self.stream.inbox().samples as f64 / SAMPLE_RATE as f64
    }

    /// No more audio: the rest is transcribed, then `Finished` arrives.
    pub fn end_of_stream(&self) {
        let mut inbox = self.stream.inbox();
        if inbox.end_of_stream || inbox.finished {
            return;
        }
        inbox.end_of_stream = true;
        let schedule = self.stream.wants_turn(&mut inbox);
        drop(inbox);
        if schedule {
            self.enqueue();
        }
    }

    /// The client is gone: drop the stream's pending work.
    pub fn cancel(&self) {
        let mut inbox = self.stream.inbox();
        inbox.cancelled = true;
        inbox.pieces = Vec::new();
        inbox.samples = 0;
    }

    pub fn has_ended(&self) -> bool {
        let inbox = self.stream.inbox();
        inbox.end_of_stream || inbox.finished
    }

    fn enqueue(&self) {
        if self.queue.send(Arc::clone(&self.stream)).is_err() {
            // The pool is shutting down.
            self.stream.inbox().scheduled = false;
        }
    }
}

impl Drop for StreamHandle {
    fn drop(&mut self) {
        self.cancel();
    }
}

fn worker_loop(
    mut transcriber: Transcriber,
    mut spare: Transcriber,
    jobs: Receiver<Arc<Stream>>,
    queue: Sender<Arc<Stream>>,
    stats: Arc<PoolStats>,
    stop: Arc<AtomicBool>,
) {
    loop {
        let stream = match jobs.recv_timeout(Duration::from_millis(100)) {
            Ok(stream) => stream,
            Err(_) if stop.load(Ordering::SeqCst) => return,
            Err(_) => continue,
        };
        let (pieces, end_of_stream, cancelled, queued_at) = {
            let mut inbox = stream.inbox();
            inbox.samples = 0;
            (
                std::mem::take(&mut inbox.pieces),
                inbox.end_of_stream,
                inbox.cancelled,
                inbox.queued_at.take(),
            )
        };
        if cancelled {
            let mut inbox = stream.inbox();
            inbox.scheduled = false;
            inbox.finished = true;
            continue;
        }
        stats.busy_workers.fetch_add(1, Ordering::Relaxed);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let queue_wait = queued_at.map_or(Duration::ZERO, |t| t.elapsed());
            update_stream(
                &stream,
                &mut transcriber,
                pieces,
                end_of_stream,
                queue_wait,
                &stats,
            )
        }));
        stats.busy_workers.fetch_sub(1, Ordering::Relaxed);
        let failed = match outcome {
            Ok(Ok(())) => false,
            Ok(Err(error)) => {
                log::error!("transcription failed: {error}");
                stream.send(ServerMessage::error(format!(
                    "transcription failed: {error}"
                )));
                true
            }
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                log::error!("worker panicked while processing a stream: {what}");
                stream.send(ServerMessage::error(
                    "internal error while transcribing this stream; it was stopped, \
                     text already sent is final",
                ));
                // The whisper state may be mid-computation: use a fresh one.
                std::mem::swap(&mut transcriber, &mut spare);
                true
            }
        };
        let requeue = {
            let mut inbox = stream.inbox();
            inbox.scheduled = false;
            if failed || end_of_stream {
                inbox.finished = true;
                inbox.pieces = Vec::new();
                inbox.samples = 0;
            }
            stream.wants_turn(&mut inbox)
        };
        if failed {
            let _ = stream.events.send(StreamEvent::Failed);
        } else if end_of_stream {
            let _ = stream.events.send(StreamEvent::Finished);
        }
        if requeue && queue.send(Arc::clone(&stream)).is_err() {
            stream.inbox().scheduled = false;
        }
    }
}

fn update_stream(
    stream: &Stream,
    transcriber: &mut Transcriber,
    pieces: Vec<Piece>,
    end_of_stream: bool,
    queue_wait: Duration,
    stats: &PoolStats,
) -> Result<(), EngineError> {
    let panic_requested = stream.fault_injection
        && pieces.first().and_then(|p| p.audio.first())
            == Some(&crate::audio::sample_to_f32(PANIC_SAMPLE));
    if panic_requested {
        panic!("fault injection: panic requested by the client's audio");
    }
    let mut processor = stream.processor.lock().unwrap_or_else(|e| e.into_inner());
    let transcribe = |audio: &[f32], prompt: &str| {
        let started = Instant::now();
        let transcript = transcriber.transcribe(audio, prompt);
        let elapsed = started.elapsed();
        log::debug!(
            "update: {:.0} ms on {:.1} s of audio, queued {:.0} ms",
            elapsed.as_secs_f64() * 1000.0,
            audio.len() as f64 / SAMPLE_RATE as f64,
            queue_wait.as_secs_f64() * 1000.0
        );
        stats
            .transcribe_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
        stats.updates.fetch_add(1, Ordering::Relaxed);
        transcript
    };
    let outcome = processor.update(pieces, end_of_stream, stream.min_chunk_samples, transcribe)?;
    let changed = outcome.transcriptions > 0 || !outcome.commits.is_empty();
    for commit in outcome.commits {
        stream.send_commit(commit);
    }
    if end_of_stream {
        stream.send(ServerMessage::done());
    } else if stream.interim && changed {
        stream.send(ServerMessage::interim(processor.pending_text()));
    }
    Ok(())
}
