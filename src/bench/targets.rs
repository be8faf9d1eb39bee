//! The targets of issue #5, checked on a finished report. Each threshold is one constant,
//! read by both the check and its printed label, so the label states what was checked.
//! Streaming figures come from the round with the fewest clients (1 unless --clients says
//! otherwise); the floor is the full-ctx one. A target whose inputs were not measured is
//! [`TargetStatus::NotMeasured`], never a failure.

use super::render::{number, percent};
use super::report::{Report, TargetCheck, TargetStatus};

/// Most mean latency, in seconds, of the 1-client round.
pub const MEAN_LATENCY_SECONDS: f64 = 1.5;
/// Most WER, in percentage points, that streaming may add to the full-ctx floor's.
pub const WER_POINTS_OVER_FLOOR: f64 = 2.0;
/// Fewest concurrent clients that must keep up (see [`Verdict`](super::Verdict)).
pub const MIN_CLIENTS: usize = 4;
/// Most server CPU per audio second, as a multiple of the full-ctx floor's.
pub const CPU_TIMES_FLOOR: f64 = 3.0;

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

/// Checks the targets on the floors, rounds and capacity of `report`.
pub(super) fn check_targets(report: &Report) -> Vec<TargetCheck> {
    let smallest = report.rounds.iter().min_by_key(|r| r.clients);
    let single = report.rounds.iter().find(|r| r.clients == 1);
    let floor = report.floors.first();
    let fitted = report.floors.get(1);
    let mut checks = Vec::new();

    let mean = single.and_then(|r| r.overall.latency).map(|l| l.mean);
    checks.push(check(
        mean.map(|m| m <= MEAN_LATENCY_SECONDS),
        format!("mean latency with 1 client ≤ {MEAN_LATENCY_SECONDS} s"),
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
            (Some(s), Some(f)) => Some(s <= f + WER_POINTS_OVER_FLOOR / 100.0),
            _ => None,
        },
        format!("WER ≤ floor WER + {WER_POINTS_OVER_FLOOR} points"),
        format!(
            "{} streaming ({} client(s)) vs {} floor (full ctx)",
            percent(wers.0),
            smallest.map_or(0, |r| r.clients),
            percent(wers.1)
        ),
    ));

    let (latency_limit, growth_limit) = (report.meta.latency_limit, report.meta.growth_limit);
    let tried = report.rounds.iter().map(|r| r.clients).max().unwrap_or(0);
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
    let floor_cpu = floor.and_then(|f| f.cpu_per_audio_second);
    let fitted_cpu = fitted.and_then(|f| f.cpu_per_audio_second);
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
