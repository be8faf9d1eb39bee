//! The targets of issue #5, checked on a finished report. Streaming figures come from the
//! round with the fewest clients, the floor is the full-ctx one; a target whose inputs
//! were not measured is N/A, not FAIL.

use serde::Serialize;

use super::render::{number, percent};
use super::report::Report;
use crate::config::BenchArgs;

#[derive(Debug, Clone, Serialize)]
pub struct TargetCheck {
    pub status: &'static str,
    pub target: String,
    pub measured: String,
}

fn check(ok: Option<bool>, target: String, measured: String) -> TargetCheck {
    let status = match ok {
        Some(true) => "PASS",
        Some(false) => "FAIL",
        None => "N/A",
    };
    TargetCheck {
        status,
        target,
        measured,
    }
}

/// The targets of issue #5. Streaming numbers come from the round with the fewest
/// clients (1 unless --clients says otherwise); the floor is the full-ctx one.
pub(super) fn check_targets(report: &Report, args: &BenchArgs) -> Vec<TargetCheck> {
    let smallest = report.rounds.iter().min_by_key(|r| r.clients);
    let single = report.rounds.iter().find(|r| r.clients == 1);
    let floor = report.floors.first();
    let fitted = report.floors.get(1);
    let mut checks = Vec::new();

    let mean = single.and_then(|r| r.overall.latency).map(|l| l.mean);
    checks.push(check(
        mean.map(|m| m <= 1.5),
        "mean latency with 1 client ≤ 1.5 s".into(),
        match mean {
            Some(m) => format!("{m:.2} s"),
            None => "no 1-client round".into(),
        },
    ));

    let wers = (
        smallest.and_then(|r| r.overall.wer),
        floor.and_then(|f| f.wer),
    );
    checks.push(check(
        match wers {
            (Some(s), Some(f)) => Some(s <= f + 0.02),
            _ => None,
        },
        "WER ≤ floor WER + 2 points".into(),
        format!(
            "{} streaming ({} client(s)) vs {} floor (full ctx)",
            percent(wers.0),
            smallest.map_or(0, |r| r.clients),
            percent(wers.1)
        ),
    ));

    let tried = report.rounds.iter().map(|r| r.clients).max().unwrap_or(0);
    let kept_up = report.capacity.unwrap_or(0);
    checks.push(check(
        (kept_up >= 4 || tried >= 4).then_some(kept_up >= 4),
        format!(
            "≥ 4 clients with p90 ≤ {} s (and growth ≤ {} s, no errors)",
            args.latency_limit, args.growth_limit
        ),
        if tried < 4 && kept_up < 4 {
            format!("not measured: largest round {tried} (use --max-search)")
        } else {
            format!("largest passing client count {kept_up}")
        },
    ));

    let cpu = smallest.and_then(|r| r.cpu_per_audio_second);
    let floor_cpu = floor.and_then(|f| f.cpu_per_audio_second);
    let fitted_cpu = fitted.and_then(|f| f.cpu_per_audio_second);
    let ratio = |f: Option<f64>| Some(cpu? / f?);
    checks.push(check(
        ratio(floor_cpu).map(|r| r <= 3.0),
        "streaming server CPU per audio second ≤ 3 × floor".into(),
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
