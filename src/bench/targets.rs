//! The targets, checked on a finished report. Each threshold is one constant, read by
//! both the check and its printed label, so the label states what was checked. Which
//! targets apply depends on the scenario: `files` has those of issue #5 (and, with
//! `--busy-cores 1`, the ones under load); `pauses` has its own when the server runs its
//! voice activity controller; `noise` has its own always. A target that does not apply
//! is not listed; one that applies but whose inputs were not measured is
//! [`TargetStatus::NotMeasured`], never a failure.
//!
//! Streaming figures come from the rounds at one frame size ([`judged_frame_ms`]): the
//! round with 1 (or 2) clients where a target names the count, else the round with the
//! fewest clients. The floor is the full-ctx one, and a WER is compared with the floor's
//! on the same audio: the round's streams of the files the floor transcribed.

use super::report::{FloorResult, Report, RoundResult, TargetCheck, TargetStatus};
use super::rounds::capacity;
use super::stats::aggregate_wer;
use super::table::{number, percent};
use crate::config::Scenario;

/// The frame size the targets are judged at, when it ran.
pub const TARGET_FRAME_MS: u64 = 100;

/// `files`: most mean latency, in seconds, of the 1-client round.
pub const MEAN_LATENCY_SECONDS: f64 = 1.5;
/// `files`: most WER, in percentage points, that streaming may add to the floor's.
pub const WER_POINTS_OVER_FLOOR: f64 = 2.0;
/// `files`: fewest concurrent clients that must keep up (see [`Verdict`](super::Verdict)).
pub const MIN_CLIENTS: usize = 4;
/// `files`: most server CPU per audio second, as a multiple of the full-ctx floor's.
pub const CPU_TIMES_FLOOR: f64 = 3.0;

/// `files` under load: the `--busy-cores` the targets below are set for.
pub const BUSY_TARGET_CORES: u32 = 1;
/// `files` under load: most mean latency, in seconds, of the 1-client round.
pub const BUSY_MEAN_LATENCY_SECONDS: f64 = 2.0;
/// `files` under load: most p90 latency, in seconds, of the 1-client round.
pub const BUSY_P90_SECONDS: f64 = 3.0;
/// `files` under load: most p90 latency, in seconds, of the 2-client round.
pub const BUSY_TWO_CLIENTS_P90_SECONDS: f64 = 3.5;
/// `files` under any load: the longest an update on at most 10 s of audio may take.
pub const BUSY_MAX_SHORT_UPDATE_SECONDS: f64 = 2.0;

/// `pauses`: most WER, in percentage points, that streaming may add to the floor's.
pub const PAUSES_WER_POINTS_OVER_FLOOR: f64 = 1.0;
/// `pauses`: most mean latency, in seconds, of the 1-client round.
pub const PAUSES_MEAN_LATENCY_SECONDS: f64 = 1.2;
/// `pauses`: most p90 latency, in seconds, of the 1-client round.
pub const PAUSES_P90_SECONDS: f64 = 2.5;
/// `pauses`: most server CPU seconds per audio second in the 1-client round.
pub const PAUSES_CPU_PER_AUDIO_SECOND: f64 = 0.35;
/// `pauses`: fewest concurrent clients that must keep up with p90 within
/// [`PAUSES_CAPACITY_P90_SECONDS`].
pub const PAUSES_MIN_CLIENTS: usize = 8;
/// `pauses`: most p90 latency, in seconds, of the rounds up to [`PAUSES_MIN_CLIENTS`].
pub const PAUSES_CAPACITY_P90_SECONDS: f64 = 3.0;

/// `noise`: most words committed during silence, over all rounds judged.
pub const NOISE_MAX_SILENCE_WORDS: usize = 0;
/// `noise`: most server CPU seconds per audio second in the 1-client round.
pub const NOISE_CPU_PER_AUDIO_SECOND: f64 = 0.02;

/// The frame size whose rounds the targets are judged on: [`TARGET_FRAME_MS`] if it is
/// among `frames`, else the first.
pub(super) fn judged_frame_ms(frames: &[u64]) -> u64 {
    if frames.contains(&TARGET_FRAME_MS) {
        TARGET_FRAME_MS
    } else {
        frames.first().copied().unwrap_or(TARGET_FRAME_MS)
    }
}

impl TargetStatus {
    /// `Some(within target)`, or `None` when not measured.
    fn of(met: Option<bool>) -> TargetStatus {
        match met {
            Some(true) => TargetStatus::Met,
            Some(false) => TargetStatus::Missed,
            None => TargetStatus::NotMeasured,
        }
    }
}

fn check(met: Option<bool>, target: String, measured: String) -> TargetCheck {
    TargetCheck {
        status: TargetStatus::of(met),
        target,
        measured,
    }
}

/// What the checks read: the rounds at the judged frame size and the floors.
struct Judged<'a> {
    report: &'a Report,
    rounds: Vec<&'a RoundResult>,
    floor: Option<&'a FloorResult>,
    fitted: Option<&'a FloorResult>,
}

impl<'a> Judged<'a> {
    fn of(report: &'a Report) -> Judged<'a> {
        let frame = judged_frame_ms(&report.meta.frame_ms);
        Judged {
            report,
            rounds: report
                .rounds
                .iter()
                .filter(|r| r.frame_ms == frame)
                .collect(),
            floor: report.floors.first(),
            fitted: report.floors.get(1),
        }
    }

    fn with_clients(&self, clients: usize) -> Option<&'a RoundResult> {
        self.rounds.iter().copied().find(|r| r.clients == clients)
    }

    fn smallest(&self) -> Option<&'a RoundResult> {
        self.rounds.iter().copied().min_by_key(|r| r.clients)
    }

    /// The most clients of a round run.
    fn tried(&self) -> usize {
        self.rounds.iter().map(|r| r.clients).max().unwrap_or(0)
    }
}

impl Report {
    /// The report with what follows from its rounds: the capacity (judged at the frame
    /// size [`judged_frame_ms`] picks) and the targets.
    pub(super) fn judged(mut self) -> Report {
        self.capacity = capacity(&self.rounds, judged_frame_ms(&self.meta.frame_ms));
        self.targets = check_targets(&self);
        self
    }
}

/// Checks the targets that apply to the scenario of `report`.
pub(super) fn check_targets(report: &Report) -> Vec<TargetCheck> {
    let judged = Judged::of(report);
    let meta = &report.meta;
    match meta.scenario {
        Scenario::Files => {
            let mut checks = files_targets(&judged);
            if meta.busy_cores == BUSY_TARGET_CORES {
                checks.extend(busy_targets(&judged));
            }
            if meta.busy_cores > 0 {
                checks.extend(short_updates(&judged, meta.busy_cores));
            }
            checks
        }
        Scenario::Pauses if meta.vac == Some(true) => pauses_targets(&judged),
        Scenario::Pauses => Vec::new(),
        Scenario::Noise => noise_targets(&judged),
    }
}

/// Issue #5's targets, on the test files.
fn files_targets(judged: &Judged) -> Vec<TargetCheck> {
    let report = judged.report;
    let smallest = judged.smallest();
    let mut checks = vec![
        mean_latency(judged.with_clients(1), 1, MEAN_LATENCY_SECONDS, ""),
        wer_over_floor(smallest, judged.floor, WER_POINTS_OVER_FLOOR),
    ];

    let (latency_limit, growth_limit) = (report.meta.latency_limit, report.meta.growth_limit);
    let tried = judged.tried();
    let kept_up = report.capacity.unwrap_or(0);
    let measured = kept_up >= MIN_CLIENTS || tried >= MIN_CLIENTS;
    checks.push(check(
        measured.then_some(kept_up >= MIN_CLIENTS),
        format!(
            "≥ {MIN_CLIENTS} clients with p90 ≤ {latency_limit} s (and growth ≤ {growth_limit} s, \
             no errors)"
        ),
        if measured {
            format!("largest passing client count {kept_up}")
        } else {
            format!("not measured: largest round {tried} (use --max-search)")
        },
    ));

    let cpu = smallest.and_then(|r| r.cpu_per_audio_second);
    let floor_cpu = judged.floor.and_then(|f| f.cpu_per_audio_second);
    let fitted_cpu = judged.fitted.and_then(|f| f.cpu_per_audio_second);
    let ratio = |f: Option<f64>| Some(cpu? / f?);
    checks.push(check(
        ratio(floor_cpu).map(|r| r <= CPU_TIMES_FLOOR),
        format!("streaming server CPU per audio second ≤ {CPU_TIMES_FLOOR} × floor"),
        format!(
            "{} vs {} floor (full ctx): {}× ({}× the fitted-ctx floor)",
            number(cpu, 3),
            number(floor_cpu, 3),
            number(ratio(floor_cpu), 2),
            number(ratio(fitted_cpu), 2)
        ),
    ));
    checks
}

/// The targets of the test files with [`BUSY_TARGET_CORES`] busy-looping beside the server.
fn busy_targets(judged: &Judged) -> Vec<TargetCheck> {
    let under_load = format!(" with {BUSY_TARGET_CORES} busy core(s)");
    vec![
        mean_latency(
            judged.with_clients(1),
            1,
            BUSY_MEAN_LATENCY_SECONDS,
            &under_load,
        ),
        p90_latency(judged.with_clients(1), 1, BUSY_P90_SECONDS, &under_load),
        p90_latency(
            judged.with_clients(2),
            2,
            BUSY_TWO_CLIENTS_P90_SECONDS,
            &under_load,
        ),
    ]
}

/// No update on at most 10 s of audio longer than [`BUSY_MAX_SHORT_UPDATE_SECONDS`],
/// over the rounds judged, with `busy_cores` busy-looping; `None` when the server does
/// not report those updates (an older server).
fn short_updates(judged: &Judged, busy_cores: u32) -> Option<TargetCheck> {
    let longest = judged
        .rounds
        .iter()
        .filter_map(|r| {
            r.server_stats
                .as_ref()?
                .update_seconds_short_audio
                .as_ref()?
                .max
        })
        .reduce(f64::max)?;
    Some(check(
        Some(longest <= BUSY_MAX_SHORT_UPDATE_SECONDS),
        format!(
            "no update on ≤ 10 s of audio longer than {BUSY_MAX_SHORT_UPDATE_SECONDS} s with \
             {busy_cores} busy core(s)"
        ),
        format!("longest {} s", number(Some(longest), 2)),
    ))
}

/// The targets of speech with pauses, for a server with its voice activity controller.
fn pauses_targets(judged: &Judged) -> Vec<TargetCheck> {
    let single = judged.with_clients(1);
    vec![
        wer_over_floor(
            judged.smallest(),
            judged.floor,
            PAUSES_WER_POINTS_OVER_FLOOR,
        ),
        mean_latency(single, 1, PAUSES_MEAN_LATENCY_SECONDS, ""),
        p90_latency(single, 1, PAUSES_P90_SECONDS, ""),
        cpu_per_audio_second(single, PAUSES_CPU_PER_AUDIO_SECOND),
        pauses_capacity(judged),
    ]
}

/// The targets of a room where nobody speaks.
// The words' threshold is 0 today, which makes `≤` an `==`; it stays `≤` if raised.
#[allow(clippy::absurd_extreme_comparisons)]
fn noise_targets(judged: &Judged) -> Vec<TargetCheck> {
    let rounds = &judged.rounds;
    let words: Option<usize> = rounds
        .iter()
        .filter_map(|r| r.overall.silence_words)
        .reduce(|a, b| a + b);
    vec![
        check(
            words.map(|w| w <= NOISE_MAX_SILENCE_WORDS),
            format!("words committed during silence ≤ {NOISE_MAX_SILENCE_WORDS}, all rounds"),
            match words {
                Some(w) => format!("{w} word(s) in {} round(s)", rounds.len()),
                None => "no round".into(),
            },
        ),
        cpu_per_audio_second(judged.with_clients(1), NOISE_CPU_PER_AUDIO_SECOND),
    ]
}

/// Mean latency of `round` (the `clients`-client round) within `limit` seconds.
fn mean_latency(
    round: Option<&RoundResult>,
    clients: usize,
    limit: f64,
    condition: &str,
) -> TargetCheck {
    let mean = round.and_then(|r| r.overall.latency).map(|l| l.mean);
    check(
        mean.map(|m| m <= limit),
        format!(
            "mean latency with {clients} client{} ≤ {limit} s{condition}",
            plural(clients)
        ),
        match mean {
            Some(m) => format!("{m:.2} s"),
            None => format!("no {clients}-client round"),
        },
    )
}

/// p90 latency of `round` (the `clients`-client round) within `limit` seconds.
fn p90_latency(
    round: Option<&RoundResult>,
    clients: usize,
    limit: f64,
    condition: &str,
) -> TargetCheck {
    let p90 = round.and_then(|r| r.overall.latency).map(|l| l.p90);
    check(
        p90.map(|p| p <= limit),
        format!(
            "p90 latency with {clients} client{} ≤ {limit} s{condition}",
            plural(clients)
        ),
        match p90 {
            Some(p) => format!("{p:.2} s"),
            None => format!("no {clients}-client round"),
        },
    )
}

fn plural_f(count: f64) -> &'static str {
    if count == 1.0 {
        ""
    } else {
        "s"
    }
}

fn plural(count: usize) -> &'static str {
    if count == 1 {
        ""
    } else {
        "s"
    }
}

/// Server CPU per audio second of the 1-client `round` within `limit`.
fn cpu_per_audio_second(round: Option<&RoundResult>, limit: f64) -> TargetCheck {
    let cpu = round.and_then(|r| r.cpu_per_audio_second);
    check(
        cpu.map(|c| c <= limit),
        format!("server CPU per audio second with 1 client ≤ {limit}"),
        match (round, cpu) {
            (None, _) => "no 1-client round".into(),
            (Some(_), None) => "not reported by the server".into(),
            (Some(_), Some(c)) => format!("{c:.3}"),
        },
    )
}

/// Streaming WER of `round` within `points` of the floor's, on the same audio.
fn wer_over_floor(
    round: Option<&RoundResult>,
    floor: Option<&FloorResult>,
    points: f64,
) -> TargetCheck {
    let same = round.zip(floor).map(|(r, f)| same_audio_wers(r, f));
    let streaming = match same {
        Some(same) => same.streaming,
        None => round.and_then(|r| r.overall.wer),
    };
    let floor_wer = same.and_then(|s| s.floor);
    let mut measured = format!(
        "{} streaming ({} client(s)) vs {} floor (full ctx)",
        percent(streaming),
        round.map_or(0, |r| r.clients),
        percent(floor_wer)
    );
    if let (Some(same), Some(floor)) = (same, floor) {
        if same.left_out > 0 {
            let names: Vec<&str> = floor.files.iter().map(|f| f.file.as_str()).collect();
            measured.push_str(&format!(", on the streams of {}", names.join(", ")));
        }
    }
    check(
        match (streaming, floor_wer) {
            (Some(s), Some(f)) => Some(s <= f + points / 100.0),
            _ => None,
        },
        format!("WER ≤ floor WER + {points} point{}", plural_f(points)),
        measured,
    )
}

/// Streaming and floor WER over the same audio.
#[derive(Debug, Clone, Copy)]
struct SameAudio {
    /// Pooled over the round's streams of files the floor transcribed.
    streaming: Option<f64>,
    /// Pooled over the floor's files that the round streamed.
    floor: Option<f64>,
    /// Streams of the round left out: the floor did not transcribe their file.
    left_out: usize,
}

fn same_audio_wers(round: &RoundResult, floor: &FloorResult) -> SameAudio {
    let in_floor = |name: &str| floor.files.iter().any(|f| f.file == name);
    let streams: Vec<_> = round.streams.iter().filter(|s| in_floor(&s.file)).collect();
    let streamed = |name: &str| streams.iter().any(|s| s.file == name);
    SameAudio {
        streaming: aggregate_wer(streams.iter().map(|s| (s.word_errors, s.reference_words))),
        floor: aggregate_wer(
            floor
                .files
                .iter()
                .filter(|f| streamed(&f.file))
                .map(|f| (f.word_errors, f.reference_words)),
        ),
        left_out: round.streams.len() - streams.len(),
    }
}

/// [`PAUSES_MIN_CLIENTS`] clients keep up with p90 within [`PAUSES_CAPACITY_P90_SECONDS`]:
/// every round up to there kept up and had that p90. Judged once it is decided: a round
/// of that many clients (or more) ran, or a smaller one fell short (as `--max-search`
/// ends).
fn pauses_capacity(judged: &Judged) -> TargetCheck {
    let meta = &judged.report.meta;
    let mut rounds = judged.rounds.clone();
    rounds.sort_by_key(|r| r.clients);
    let passes = |r: &RoundResult| {
        r.verdict.keeps_up()
            && r.overall
                .latency
                .is_some_and(|l| l.p90 <= PAUSES_CAPACITY_P90_SECONDS)
    };
    let kept_up = rounds
        .iter()
        .take_while(|r| passes(r))
        .map(|r| r.clients)
        .last()
        .unwrap_or(0);
    let tried = judged.tried();
    let decided = tried >= PAUSES_MIN_CLIENTS || rounds.iter().any(|r| !passes(r));
    check(
        decided.then_some(kept_up >= PAUSES_MIN_CLIENTS),
        format!(
            "≥ {PAUSES_MIN_CLIENTS} clients with p90 ≤ {PAUSES_CAPACITY_P90_SECONDS} s (and \
             growth ≤ {} s, no errors)",
            meta.growth_limit
        ),
        if decided {
            format!("largest passing client count {kept_up}")
        } else {
            format!("not measured: largest round {tried} (use --max-search)")
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_print_as_before_and_pad() {
        let printed: Vec<String> = [Some(true), Some(false), None]
            .map(|met| format!("[{:<4}]", TargetStatus::of(met)))
            .into();
        assert_eq!(printed, ["[PASS]", "[FAIL]", "[N/A ]"]);
        let json = serde_json::to_string(&TargetStatus::NotMeasured).unwrap();
        assert_eq!(json, r#""N/A""#);
    }

    #[test]
    fn the_judged_frame_is_100_ms_when_it_ran() {
        assert_eq!(judged_frame_ms(&[20, 100, 250]), 100);
        assert_eq!(judged_frame_ms(&[250, 20]), 250);
        assert_eq!(judged_frame_ms(&[]), TARGET_FRAME_MS);
    }

    #[test]
    fn thresholds_print_as_they_always_have() {
        // The labels are part of the report; the WER margin was the literal 0.02.
        assert_eq!(WER_POINTS_OVER_FLOOR / 100.0, 0.02);
        assert_eq!(
            format!(
                "{MEAN_LATENCY_SECONDS} {WER_POINTS_OVER_FLOOR} {MIN_CLIENTS} {CPU_TIMES_FLOOR}"
            ),
            "1.5 2 4 3"
        );
    }
}
