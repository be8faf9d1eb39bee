//! The worker pool: a fixed number of threads, each owning a whisper state, serving all
//! streams.
//!
//! Scheduling: a stream with enough new audio (or an utterance that ended, or its end)
//! is put on a bounded FIFO queue, at most once at a time. A worker takes it,
//! transcribes the stream's buffer, sends what was committed, and puts the stream back
//! at the end of the queue if more audio arrived meanwhile. So a stream is processed by
//! one worker at a time, streams take turns (round robin: none starves another), the
//! queue never holds more entries than there are streams, and when the pool cannot
//! keep up each update simply covers more audio: latency grows, nothing queues without
//! bound.
//!
//! Every Whisper call is bounded: it gets the threads the machine can spare at that
//! moment ([`ThreadPolicy`]) and a time budget ([`UpdateBudget`]) after which
//! whisper.cpp stops it. A call that is cut changes nothing — its audio is transcribed
//! by the stream's next update, which has more audio and so a larger budget (doubled
//! once the buffer is long), so no stream can be starved by its own cuts — except at
//! the end of an utterance or stream, where the last pass is tried a few times and then
//! the text heard by the previous call is committed.
//!
//! The pool speaks in domain events ([`StreamEvent`]); the session turns them into
//! messages for its client.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::audio::SAMPLE_RATE;
use crate::engine::{CallLanguage, CallLimits, Engine, EngineError, Transcriber};
use crate::language::Detector;
use crate::load::ThreadPolicy;
use crate::metrics::Metrics;
use crate::policy::{Commit, OnlineProcessor, Piece, PolicyConfig};

mod update;

use update::update_stream;
pub use update::{UpdateBudget, PANIC_SAMPLE, SLOW_SAMPLE};

/// What a stream's connection receives from the workers.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// Newly committed text.
    Commit(Commit),
    /// The current guess for the audio after the committed text (`?interim=1`).
    Interim(String),
    /// The language the stream was found to be in (`?language=auto`).
    Language {
        /// ISO 639-1 code.
        code: String,
        /// Whisper's probability for it, 0–1.
        probability: f32,
    },
    /// The end of the stream was processed and all its text sent: close normally.
    Done,
    /// Processing failed (the reason, for the log and the client); close with 1011.
    Failed(String),
}

/// How streams are updated.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// Seconds of new audio that make an update worth running.
    pub min_chunk_sec: f64,
    /// How committed text is agreed on and the buffer trimmed.
    pub policy: PolicyConfig,
    /// Honour [`PANIC_SAMPLE`] and [`SLOW_SAMPLE`] (tests only).
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
    fn push(&mut self, at: u64, samples: &[f32], voiced: bool, onset: Option<u64>) {
        self.samples += samples.len();
        self.next_at = self.next_at.max(at + samples.len() as u64);
        let voiced = if voiced { samples.len() } else { 0 };
        match self.pieces.last_mut() {
            Some(last)
                if !last.ends_utterance
                    && onset.is_none()
                    && last.at + last.audio.len() as u64 == at =>
            {
                last.audio.extend_from_slice(samples);
                last.voiced += voiced;
            }
            _ => self.pieces.push(Piece {
                at,
                audio: samples.to_vec(),
                voiced,
                ends_utterance: false,
                onset,
            }),
        }
    }

    fn end_utterance(&mut self) {
        match self.pieces.last_mut() {
            Some(last) => last.ends_utterance = true,
            // The worker took the audio already: an empty piece carries the mark.
            None => self.pieces.push(Piece {
                at: self.next_at,
                ends_utterance: true,
                ..Piece::default()
            }),
        }
    }
}

/// What a stream asked for (its query options).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamOptions {
    /// Send interim guesses.
    pub interim: bool,
    /// The language of the speech: the server's, a code, or detected.
    pub language: CallLanguage,
    /// English text whatever the language spoken.
    pub translate: bool,
}

struct Stream {
    inbox: Mutex<Inbox>,
    processor: Mutex<OnlineProcessor>,
    events: Sender<StreamEvent>,
    interim: bool,
    language: CallLanguage,
    translate: bool,
    /// With `language: Detect`: what was found so far.
    detector: Mutex<Detector>,
    min_chunk_samples: usize,
    fault_injection: bool,
    /// Test hook: the next call of this stream has its budget polls slowed down (set by
    /// audio that starts with [`SLOW_SAMPLE`]).
    slow_next_call: AtomicBool,
    /// Calls of this stream cut in a row (doubles the next budget).
    cuts_in_a_row: AtomicU32,
}

impl Stream {
    fn inbox(&self) -> MutexGuard<'_, Inbox> {
        // A panic while holding the inbox lock cannot leave it inconsistent (plain
        // field writes), so a poisoned lock is still usable.
        self.inbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn send(&self, event: StreamEvent) {
        // The connection may be gone; then there is nobody to tell.
        let _ = self.events.send(event);
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

/// What every worker shares.
struct Shared {
    queue: Sender<Arc<Stream>>,
    jobs: Receiver<Arc<Stream>>,
    stop: AtomicBool,
    metrics: Arc<Metrics>,
    threads: Arc<ThreadPolicy>,
    budget: UpdateBudget,
    /// Worker threads in the pool.
    workers: usize,
}

/// The workers and the queue that feeds them.
pub struct WorkerPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    config: StreamConfig,
}

impl WorkerPool {
    /// Starts `workers` threads, each with its own whisper state, warmed up. `max_streams`
    /// bounds the queue.
    pub fn start(
        engine: &Engine,
        workers: usize,
        max_streams: usize,
        config: StreamConfig,
        metrics: Arc<Metrics>,
        threads: Arc<ThreadPolicy>,
    ) -> Result<WorkerPool, EngineError> {
        let (queue, jobs) = crossbeam_channel::bounded::<Arc<Stream>>(max_streams.max(1));
        let warm_up_audio = warm_up_audio();
        let mut states = Vec::with_capacity(workers);
        // One thread: with more, a machine busy at start-up (the moment a service starts
        // beside others) makes whisper.cpp's spinning threads wait on each other, and the
        // warm-up measured 0.71 s instead of 0.07 s, which gave every call a 5.7 s budget.
        // The fastest worker's warm-up counts: the first also pays for allocations.
        let one_thread = CallLimits {
            threads: 1,
            ..CallLimits::default()
        };
        let mut warm_up = Duration::MAX;
        for _ in 0..workers.max(1) {
            let mut transcriber = engine.transcriber()?;
            // The first run allocates whisper.cpp's buffers; do it before clients come.
            let started = Instant::now();
            transcriber.transcribe_within(&warm_up_audio, "", &one_thread)?;
            warm_up = warm_up.min(started.elapsed());
            states.push((transcriber, engine.transcriber()?));
        }
        let budget = UpdateBudget::default().at_least(warm_up, 8);
        log::debug!("warm-up call: {warm_up:?}; update budget {budget:?}");
        let shared = Arc::new(Shared {
            queue,
            jobs,
            stop: AtomicBool::new(false),
            metrics,
            threads,
            budget,
            workers: workers.max(1),
        });
        let handles = states
            .into_iter()
            .enumerate()
            .map(|(index, (transcriber, spare))| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("worker-{index}"))
                    .spawn(move || worker_loop(transcriber, spare, &shared))
                    .expect("spawning a worker thread")
            })
            .collect();
        Ok(WorkerPool {
            shared,
            workers: handles,
            config,
        })
    }

    /// Worker threads.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// The time budget of calls.
    pub fn budget(&self) -> UpdateBudget {
        self.shared.budget
    }

    /// A new stream; the receiver gets its events.
    pub fn open_stream(&self, options: StreamOptions) -> (StreamHandle, Receiver<StreamEvent>) {
        let (events, receiver) = crossbeam_channel::unbounded();
        let stream = Arc::new(Stream {
            inbox: Mutex::new(Inbox::default()),
            processor: Mutex::new(OnlineProcessor::new(self.config.policy.clone())),
            events,
            interim: options.interim,
            language: options.language,
            translate: options.translate,
            detector: Mutex::new(Detector::new()),
            min_chunk_samples: crate::audio::samples(self.config.min_chunk_sec),
            fault_injection: self.config.fault_injection,
            slow_next_call: AtomicBool::new(false),
            cuts_in_a_row: AtomicU32::new(0),
        });
        let handle = StreamHandle {
            stream,
            queue: self.shared.queue.clone(),
        };
        (handle, receiver)
    }

    /// Stops the workers once the queue is empty (streams still queued are processed
    /// first) and waits for them.
    pub fn shutdown(self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for worker in self.workers {
            let _ = worker.join();
        }
    }
}

/// One second of faint noise: enough to run the encoder and decoder once.
fn warm_up_audio() -> Vec<f32> {
    let mut noise = crate::scenario::Noise::new(0x2545_f491);
    (0..SAMPLE_RATE).map(|_| noise.white() * 0.001).collect()
}

/// The connection's side of a stream.
pub struct StreamHandle {
    stream: Arc<Stream>,
    queue: Sender<Arc<Stream>>,
}

impl StreamHandle {
    /// Adds audio that follows what was received before (all of it counted as speech).
    pub fn push_audio(&self, samples: &[f32]) {
        let at = self.stream.inbox().next_at;
        self.push_audio_at(at, samples, true, None);
    }

    /// Adds audio whose first sample has stream index `at` (past the audio received so
    /// far: the voice activity controller leaves silence out). `voiced`: whether it
    /// holds speech, or is a pause inside an utterance; `onset`: where speech begins
    /// when this audio starts an utterance.
    pub fn push_audio_at(&self, at: u64, samples: &[f32], voiced: bool, onset: Option<u64>) {
        self.update_inbox(|inbox| inbox.push(at, samples, voiced, onset));
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
        crate::audio::seconds(self.stream.inbox().samples)
    }

    /// No more audio: the rest is transcribed, then `Done` arrives.
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

    /// Whether the stream was ended (or is done).
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

fn worker_loop(mut transcriber: Transcriber, mut spare: Transcriber, shared: &Shared) {
    loop {
        let stream = match shared.jobs.recv_timeout(Duration::from_millis(100)) {
            Ok(stream) => stream,
            Err(_) if shared.stop.load(Ordering::SeqCst) => return,
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
        if let Some(queued_at) = queued_at {
            shared.metrics.queued(queued_at.elapsed());
        }
        shared.metrics.busy_workers.fetch_add(1, Ordering::Relaxed);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            update_stream(&stream, &mut transcriber, pieces, end_of_stream, shared)
        }));
        shared.metrics.busy_workers.fetch_sub(1, Ordering::Relaxed);
        let failure = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(error)) => {
                log::error!("transcription failed: {error}");
                Some(format!("transcription failed: {error}"))
            }
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                log::error!("worker panicked while processing a stream: {what}");
                // The whisper state may be mid-computation: use a fresh one.
                std::mem::swap(&mut transcriber, &mut spare);
                Some("internal error while transcribing this stream".to_string())
            }
        };
        let requeue = {
            let mut inbox = stream.inbox();
            inbox.scheduled = false;
            if failure.is_some() || end_of_stream {
                inbox.finished = true;
                inbox.pieces = Vec::new();
                inbox.samples = 0;
            }
            stream.wants_turn(&mut inbox)
        };
        if let Some(reason) = failure {
            stream.send(StreamEvent::Failed(reason));
        } else if end_of_stream {
            stream.send(StreamEvent::Done);
        }
        if requeue && shared.queue.send(Arc::clone(&stream)).is_err() {
            stream.inbox().scheduled = false;
        }
    }
}
