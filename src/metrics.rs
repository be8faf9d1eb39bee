//! What the server counts: one [`Metrics`] per server, shared by the acceptor, the
//! sessions and the worker pool, read by `/info` (recent percentiles) and `/metrics`
//! (Prometheus text format).
//!
//! Invariants: every field only grows (counters, histogram buckets) or is a gauge set
//! by its single owner; recording never blocks for long (atomics, or a mutex held for a
//! push); the recent windows keep the last [`RECENT`] values, so `/info` percentiles
//! describe the last few minutes, not the server's whole life.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Values kept for the `/info` percentiles.
pub const RECENT: usize = 1024;

/// Bucket bounds (seconds) of the timing histograms: 10 ms to 60 s.
const TIME_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0,
];

/// A Prometheus histogram with fixed bounds, plus the last [`RECENT`] values.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Per bucket (not cumulative); the last one is +Inf.
    counts: Vec<AtomicU64>,
    sum_micros: AtomicU64,
    recent: Mutex<VecDeque<f64>>,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            recent: Mutex::new(VecDeque::with_capacity(RECENT)),
        }
    }

    /// Records one value, in seconds.
    pub fn observe(&self, seconds: f64) {
        let seconds = seconds.max(0.0);
        let bucket = self.bounds.partition_point(|&b| b < seconds);
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back(seconds);
    }

    /// Records a duration.
    pub fn observe_duration(&self, duration: Duration) {
        self.observe(duration.as_secs_f64());
    }

    /// Values recorded since start.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Percentiles of the recent values.
    pub fn recent(&self) -> Percentiles {
        let mut values: Vec<f64> = self
            .recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect();
        values.sort_by(f64::total_cmp);
        let rank = |p: f64| -> Option<f64> {
            let index = ((p * values.len() as f64).ceil() as usize).clamp(1, values.len().max(1));
            values.get(index - 1).copied()
        };
        Percentiles {
            count: values.len(),
            p50: rank(0.5),
            p90: rank(0.9),
            p99: rank(0.99),
            max: values.last().copied(),
        }
    }

    fn render(&self, out: &mut String, name: &str, help: &str, labels: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, count) in self.counts.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            let le = self
                .bounds
                .get(i)
                .map_or_else(|| "+Inf".to_string(), |b| b.to_string());
            let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{le}\"}} {cumulative}");
        }
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", labels.trim_end_matches(','))
        };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {cumulative}");
    }
}

/// Nearest-rank percentiles of recent values (`None` when there are none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// How many values the percentiles are taken over.
    pub count: usize,
    /// Median.
    pub p50: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// Largest.
    pub max: Option<f64>,
}

/// Everything the server counts.
#[derive(Debug)]
pub struct Metrics {
    /// WebSocket sessions now open.
    pub sessions_active: AtomicUsize,
    /// Sessions started since the server did.
    pub sessions_total: AtomicU64,
    /// Samples of audio received from clients.
    pub audio_samples: AtomicU64,
    /// Whisper calls.
    pub updates: AtomicU64,
    /// Whisper calls stopped by their time budget (see `pool`).
    pub updates_cut: AtomicU64,
    /// Workers inside a Whisper call now.
    pub busy_workers: AtomicUsize,
    /// Wall-clock microseconds spent in Whisper calls, all workers together.
    pub transcribe_micros: AtomicU64,
    /// Duration of each Whisper call.
    pub update_duration: Histogram,
    /// Duration of each call on at most [`SHORT_AUDIO_SEC`] of audio (in `/info` only):
    /// the calls that should never take long (issue #10: at most 2 s, even on a busy machine).
    pub update_duration_short: Histogram,
    /// Time each stream waited on the queue for a worker.
    pub queue_wait: Histogram,
    /// Seconds of audio each Whisper call transcribed.
    pub update_audio: Histogram,
    /// From the arrival of the audio that ends a committed piece of text to its sending.
    pub commit_latency: Histogram,
    /// Sessions closed, by WebSocket close code.
    closes: Mutex<BTreeMap<u16, u64>>,
    /// Recent queue waits with their time, for readiness ("is it keeping up now?").
    waits: Mutex<VecDeque<(Instant, f64)>>,
}

/// Calls on this much audio or less are "short" (`stats.update_seconds_short_audio`).
pub const SHORT_AUDIO_SEC: f64 = 10.0;

/// Bounds of the audio-length histogram (seconds of audio per call).
const AUDIO_BUCKETS: &[f64] = &[0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0, 30.0];

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            sessions_active: AtomicUsize::new(0),
            sessions_total: AtomicU64::new(0),
            audio_samples: AtomicU64::new(0),
            updates: AtomicU64::new(0),
            updates_cut: AtomicU64::new(0),
            busy_workers: AtomicUsize::new(0),
            transcribe_micros: AtomicU64::new(0),
            update_duration: Histogram::new(TIME_BUCKETS),
            update_duration_short: Histogram::new(TIME_BUCKETS),
            queue_wait: Histogram::new(TIME_BUCKETS),
            update_audio: Histogram::new(AUDIO_BUCKETS),
            commit_latency: Histogram::new(TIME_BUCKETS),
            closes: Mutex::new(BTreeMap::new()),
            waits: Mutex::new(VecDeque::new()),
        }
    }
}

impl Metrics {
    /// A stream waited `wait` on the queue for a worker.
    pub fn queued(&self, wait: Duration) {
        self.queue_wait.observe_duration(wait);
        let mut waits = self.waits.lock().unwrap_or_else(|e| e.into_inner());
        if waits.len() == RECENT {
            waits.pop_front();
        }
        waits.push_back((Instant::now(), wait.as_secs_f64()));
    }

    /// The 90th percentile of the queue waits of the last `window`, if there were any.
    pub fn queue_wait_p90_within(&self, window: Duration) -> Option<f64> {
        let waits = self.waits.lock().unwrap_or_else(|e| e.into_inner());
        let mut recent: Vec<f64> = waits
            .iter()
            .filter(|(at, _)| at.elapsed() <= window)
            .map(|&(_, w)| w)
            .collect();
        if recent.is_empty() {
            return None;
        }
        recent.sort_by(f64::total_cmp);
        let index = ((0.9 * recent.len() as f64).ceil() as usize).clamp(1, recent.len());
        Some(recent[index - 1])
    }

    /// A session closed with `code`.
    pub fn closed(&self, code: u16) {
        *self
            .closes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(code)
            .or_default() += 1;
    }

    /// Sessions closed so far, by close code.
    pub fn closes(&self) -> BTreeMap<u16, u64> {
        self.closes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The Prometheus text exposition (format 0.0.4) of everything counted, plus
    /// `extra` lines rendered by the caller (gauges it owns).
    pub fn render_prometheus(&self, build: &BuildInfo) -> String {
        let mut out = String::new();
        let mut scalar = |name: &str, kind: &str, help: &str, value: f64| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {value}");
        };
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
        scalar(
            "reswhis_sessions_active",
            "gauge",
            "WebSocket sessions open now.",
            self.sessions_active.load(Ordering::Relaxed) as f64,
        );
        scalar(
            "reswhis_sessions_total",
            "counter",
            "WebSocket sessions started.",
            load(&self.sessions_total),
        );
        scalar(
            "reswhis_audio_seconds_total",
            "counter",
            "Seconds of audio received from clients.",
            load(&self.audio_samples) / crate::audio::SAMPLE_RATE as f64,
        );
        scalar(
            "reswhis_updates_total",
            "counter",
            "Whisper calls (transcriptions of a stream's buffer).",
            load(&self.updates),
        );
        scalar(
            "reswhis_updates_cut_total",
            "counter",
            "Whisper calls stopped by their time budget.",
            load(&self.updates_cut),
        );
        scalar(
            "reswhis_busy_workers",
            "gauge",
            "Workers inside a Whisper call now.",
            self.busy_workers.load(Ordering::Relaxed) as f64,
        );
        self.update_duration.render(
            &mut out,
            "reswhis_update_duration_seconds",
            "Wall time of each Whisper call.",
            "",
        );
        self.queue_wait.render(
            &mut out,
            "reswhis_queue_wait_seconds",
            "Time a stream with new audio waited for a worker.",
            "",
        );
        self.commit_latency.render(
            &mut out,
            "reswhis_commit_latency_seconds",
            "From the arrival of the audio ending a committed piece of text to its sending.",
            "",
        );
        let _ = writeln!(
            out,
            "# HELP reswhis_closes_total Sessions closed, by WebSocket close code."
        );
        let _ = writeln!(out, "# TYPE reswhis_closes_total counter");
        for (code, count) in self.closes() {
            let _ = writeln!(out, "reswhis_closes_total{{code=\"{code}\"}} {count}");
        }
        let _ = writeln!(
            out,
            "# HELP reswhis_build_info The running build; always 1."
        );
        let _ = writeln!(out, "# TYPE reswhis_build_info gauge");
        let _ = writeln!(
            out,
            "reswhis_build_info{{version=\"{}\",whisper_cpp=\"{}\",model=\"{}\",gpu=\"{}\"}} 1",
            escape(&build.version),
            escape(&build.whisper_cpp),
            escape(&build.model),
            build.gpu
        );
        out
    }
}

/// What `reswhis_build_info` reports.
#[derive(Debug, Clone)]
pub struct BuildInfo {
    /// reswhis's version.
    pub version: String,
    /// The whisper.cpp version linked in.
    pub whisper_cpp: String,
    /// The model's name (e.g. `tiny.en`).
    pub model: String,
    /// Whether the GPU is used.
    pub gpu: bool,
}

/// A label value as the text format wants it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_count_into_buckets_and_keep_recent_values() {
        let h = Histogram::new(&[0.1, 1.0]);
        for v in [0.05, 0.1, 0.5, 2.0, 3.0] {
            h.observe(v);
        }
        assert_eq!(h.count(), 5);
        let mut out = String::new();
        h.render(&mut out, "x_seconds", "help", "");
        assert!(out.contains("x_seconds_bucket{le=\"0.1\"} 2\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"1\"} 3\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"+Inf\"} 5\n"), "{out}");
        assert!(out.contains("x_seconds_count 5\n"), "{out}");
        assert!(out.contains("x_seconds_sum 5.65\n"), "{out}");
        let p = h.recent();
        assert_eq!((p.count, p.p50, p.max), (5, Some(0.5), Some(3.0)));
        assert_eq!(p.p90, Some(3.0));
        assert_eq!(Histogram::new(&[1.0]).recent(), Percentiles::default());
    }

    #[test]
    fn the_recent_window_forgets_old_values() {
        let h = Histogram::new(&[1.0]);
        for _ in 0..RECENT {
            h.observe(10.0);
        }
        for _ in 0..RECENT {
            h.observe(0.5);
        }
        assert_eq!(h.recent().max, Some(0.5));
        assert_eq!(h.count(), 2 * RECENT as u64);
    }

    #[test]
    fn prometheus_text_names_every_family() {
        let m = Metrics::default();
        m.closed(1000);
        m.closed(1000);
        m.closed(1001);
        m.update_duration.observe(0.2);
        let text = m.render_prometheus(&BuildInfo {
            version: "1.0".into(),
            whisper_cpp: "1.8.3".into(),
            model: "tiny\"en".into(),
            gpu: false,
        });
        for family in [
            "reswhis_sessions_active",
            "reswhis_sessions_total",
            "reswhis_audio_seconds_total",
            "reswhis_updates_total",
            "reswhis_update_duration_seconds_bucket",
            "reswhis_queue_wait_seconds_count",
            "reswhis_commit_latency_seconds_sum",
            "reswhis_busy_workers",
        ] {
            assert!(text.contains(family), "{family} missing:\n{text}");
        }
        assert!(
            text.contains("reswhis_closes_total{code=\"1000\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("model=\"tiny\\\"en\""), "{text}");
    }

    #[test]
    fn readiness_looks_at_recent_queue_waits_only() {
        let m = Metrics::default();
        assert_eq!(m.queue_wait_p90_within(Duration::from_secs(30)), None);
        for ms in [10, 20, 30, 40, 50, 60, 70, 80, 90, 3000] {
            m.queued(Duration::from_millis(ms));
        }
        assert_eq!(m.queue_wait_p90_within(Duration::from_secs(30)), Some(0.09));
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(m.queue_wait_p90_within(Duration::from_millis(10)), None);
        assert_eq!(m.queue_wait.count(), 10);
    }
}
