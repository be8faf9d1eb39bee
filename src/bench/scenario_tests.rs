//! Tests of the report of the `pauses` and `noise` scenarios, of several frame sizes,
//! of the server's update timings and of `--busy-cores`: a snapshot of a synthetic
//! `pauses` report, and the target checks of each scenario. The builders are those of
//! [`super::tests`].

use super::report::{
    FloorFile, FloorResult, Report, RoundResult, ServerStats, Span, StreamResult, TargetStatus,
    Timing,
};
use super::stats::{aggregate_wer, words_in_silence};

use super::tests::{bench_args, synthetic_report, synthetic_round, synthetic_stream};
use crate::config::Scenario;

/// Speech of the synthetic `pauses` streams: 1–10 s and 15–30 s of a 32 s stream.
const SPEECH: [Span; 2] = [
    Span {
        start: 1.0,
        end: 10.0,
    },
    Span {
        start: 15.0,
        end: 30.0,
    },
];

/// A `pauses` stream: `messages` are (to ms, latency s), each covering the 500 ms before
/// its `to` with one word; one at 13 s lies in silence.
fn pauses_stream(client: usize, messages: &[(u64, f64)], scored: (usize, usize)) -> StreamResult {
    let name = format!("pauses-{client}");
    let mut stream = synthetic_stream(client, &name, 32.0, messages, Some(scored), &[]);
    stream.silence_words = Some(words_in_silence(&stream.messages, &SPEECH));
    stream.speech = Some(SPEECH.to_vec());
    stream
}

fn floor(mode: &str, cpu: f64, errors: [usize; 2]) -> FloorResult {
    let file = |v: usize, errors: usize| FloorFile {
        file: format!("pauses-{v}"),
        audio_seconds: 32.0,
        wall_seconds: 1.0,
        word_errors: Some(errors),
        reference_words: Some(100),
        transcript: "words".into(),
    };
    let files = vec![file(1, errors[0]), file(2, errors[1])];
    FloorResult {
        mode: mode.into(),
        threads: 2,
        audio_seconds: 64.0,
        wall_seconds: 2.0,
        cpu_seconds: Some(cpu * 64.0),
        rtf: 2.0 / 64.0,
        cpu_per_audio_second: Some(cpu),
        wer: aggregate_wer(files.iter().map(|f| (f.word_errors, f.reference_words))),
        files,
    }
}

fn update_stats(max: f64, cut: u64) -> ServerStats {
    ServerStats {
        update_seconds: Some(Timing {
            count: 40,
            p50: Some(0.25),
            p90: Some(0.5),
            p99: Some(max * 0.9),
            max: Some(max),
        }),
        update_seconds_short_audio: None,
        queue_wait_seconds: None,
        updates_cut: Some(cut),
    }
}

/// A round of `pauses` streams at `frame_ms`, with the server's update timings.
fn pauses_round(
    frame_ms: u64,
    streams: Vec<StreamResult>,
    cpu: f64,
    stats: Option<ServerStats>,
) -> RoundResult {
    let clients = streams.len();
    let audio: f64 = streams.iter().map(|s| s.audio_seconds).sum();
    let mut round = synthetic_round(clients, Some(cpu * audio), streams);
    round.frame_ms = frame_ms;
    round.server_stats = stats;
    round
}

/// A fixed `pauses` report with VAC, two frame sizes (100 ms judged), two busy cores and
/// the server's update timings on two of its three rounds.
fn pauses_report() -> Report {
    let args = bench_args(&["--scenario", "pauses", "--vac", "true", "--busy-cores", "2"]);
    let mut report = synthetic_report(&args, 2);
    report.meta.frame_ms = vec![250, 100];
    report.floors = vec![
        floor("full ctx", 0.125, [5, 7]),
        floor("fitted ctx", 0.0625, [6, 7]),
    ];
    let quick = [(2_000, 0.75), (6_000, 1.0), (13_000, 0.5), (20_000, 1.25)];
    let slow = [(2_000, 1.5), (9_000, 2.0), (22_000, 2.5), (29_000, 3.0)];
    report.rounds = vec![
        pauses_round(
            250,
            vec![pauses_stream(1, &slow, (8, 100))],
            0.25,
            Some(update_stats(0.5, 0)),
        ),
        pauses_round(
            100,
            vec![pauses_stream(1, &quick, (5, 100))],
            0.3125,
            Some(update_stats(0.75, 0)),
        ),
        pauses_round(
            100,
            vec![
                pauses_stream(1, &quick, (5, 100)),
                pauses_stream(2, &slow, (9, 100)),
            ],
            0.25,
            None,
        ),
    ];
    report.judged()
}

/// The markdown of [`pauses_report`]: the scenario's audio line, the load line, the VAC
/// note, the extra definitions, the floor on the streams of clients 1 and 2, the frame,
/// words-in-silence and update columns, the capacity per frame size and the targets of
/// `pauses`.
const PAUSES_MARKDOWN_SNAPSHOT: &str = r#"## reswhis bench, 2026-03-01 12:34 UTC

- Command: `reswhis bench --clients 1,2 --files 'a b.wav'`
- Commit: abc1234 (uncommitted changes)
- Machine: 16 CPU(s) (nproc), Test CPU @ 3.00GHz
- Server: `reswhis serve` as a child process, fresh for every round — model tiny.en (q8_0 weights), 2 worker(s) × 4 thread(s), min chunk 1.0 s, buffer trimmed past 6.0 s keeping 3.0 s of context, beam 1, fitted audio ctx, voice activity controller (VAC) on
- Audio: scenario `pauses`: the 2 recording(s) under 30 s with a reference, 42.5 s of speech; client c streams them all as one stream, starting at recording c, joined with 2–8 s pauses (seeded by c) over pink noise at -50 dBFS throughout, in real time, 250, 100 ms frames, on one connection
- Load: 2 process(es) busy-looping on the CPU (`reswhis spin`) beside the server during the rounds (not during the floor)
- Definitions: *latency* = arrival of a committed message − (stream start + its `to`), where stream start is the capture of the first sample (a frame is sent when its last sample is due); *first text* = stream start → first committed message; *growth* = mean latency of messages ending in the last third of their file − in the first third, over files ≥ 10 s, pooled; percentiles are nearest-rank; WER = word errors / reference words over all streams (reswhis::wer normalisation); server CPU = user + system seconds of the server process over the round (/info), per second of audio streamed. *Words in silence* = words of the committed messages whose [from, to] overlaps no recording widened by 0.5 s on each side (in `noise`, every committed word). *Max update* = the longest update (one transcription and what it commits) and *updates cut* = updates cut short by the server's time budget, from the server's /info after the round.

### Offline floor (whisper.cpp, the streams pauses-1, pauses-2 once each, whole, 4 thread(s), in the bench process)

| mode       |   RTF | CPU s / audio s |   WER |
| :--------- | ----: | --------------: | ----: |
| full ctx   | 0.031 |           0.125 | 6.0 % |
| fitted ctx | 0.031 |           0.062 | 6.5 % |

### Streaming (latencies in seconds)

| frame  | clients | streams | msgs | mean |  p50 |  p90 |  max | first text | growth |   WER | words in silence | server CPU s / audio s | max update s | updates cut | keeps up |
| :----- | ------: | ------: | ---: | ---: | ---: | ---: | ---: | ---------: | -----: | ----: | ---------------: | ---------------------: | -----------: | ----------: | :------- |
| 250 ms |       1 |       1 |    4 | 2.25 | 2.00 | 3.00 | 3.00 |       3.50 |   1.00 | 8.0 % |                0 |                  0.250 |         0.50 |           0 | ok       |
| 100 ms |       1 |       1 |    4 | 0.88 | 0.75 | 1.25 | 1.25 |       2.75 |      – | 5.0 % |                1 |                  0.312 |         0.75 |           0 | ok       |
| 100 ms |       2 |       2 |    8 | 1.56 | 1.25 | 3.00 | 3.00 |       3.12 |   1.00 | 7.0 % |                1 |                  0.250 |            – |           – | ok       |

Per client:

| frame  | clients | client | msgs | mean |  p50 |  p90 |  max | first text | growth |   WER | words in silence | errors |
| :----- | ------: | -----: | ---: | ---: | ---: | ---: | ---: | ---------: | -----: | ----: | ---------------: | -----: |
| 250 ms |       1 |      1 |    4 | 2.25 | 2.00 | 3.00 | 3.00 |       3.50 |   1.00 | 8.0 % |                0 |      0 |
| 100 ms |       1 |      1 |    4 | 0.88 | 0.75 | 1.25 | 1.25 |       2.75 |      – | 5.0 % |                1 |      0 |
| 100 ms |       2 |      1 |    4 | 0.88 | 0.75 | 1.25 | 1.25 |       2.75 |      – | 5.0 % |                1 |      0 |
| 100 ms |       2 |      2 |    4 | 2.25 | 2.00 | 3.00 | 3.00 |       3.50 |   1.00 | 9.0 % |                0 |      0 |

### Targets

Capacity (largest client count with p90 ≤ 3 s, growth ≤ 1 s, no errors): 1 at 250 ms (rounds run: 1); 2 at 100 ms (rounds run: 1, 2)

Targets judged on the 100 ms rounds:

    PASS  WER ≤ floor WER + 1 point: 5.0 % streaming (1 client(s)) vs 5.0 % floor (full ctx)
    PASS  mean latency with 1 client ≤ 1.2 s: 0.88 s
    PASS  p90 latency with 1 client ≤ 2.5 s: 1.25 s
    PASS  server CPU per audio second with 1 client ≤ 0.35: 0.312
    N/A   ≥ 8 clients with p90 ≤ 3 s (and growth ≤ 1 s, no errors): not measured: largest round 2 (use --max-search)
"#;

#[test]
fn the_pauses_report_matches_its_snapshot() {
    let markdown = pauses_report().to_string();
    assert_eq!(markdown, PAUSES_MARKDOWN_SNAPSHOT, "\n{markdown}");
}

#[test]
fn the_json_holds_the_new_figures() {
    let json = serde_json::to_value(pauses_report()).unwrap();
    let meta = &json["meta"];
    assert_eq!(meta["scenario"], "pauses");
    assert_eq!(meta["vac"], true);
    assert_eq!(meta["busy_cores"], 2);
    assert_eq!(meta["frame_ms"], serde_json::json!([250, 100]));
    let round = &json["rounds"][1];
    assert_eq!(round["frame_ms"], 100);
    assert_eq!(round["overall"]["silence_words"], 1);
    assert_eq!(round["server_stats"]["update_seconds"]["max"], 0.75);
    assert_eq!(
        round["server_stats"]["queue_wait_seconds"],
        serde_json::Value::Null
    );
    assert_eq!(round["server_stats"]["updates_cut"], 0);
    let stream = &round["streams"][0];
    assert_eq!(
        stream["speech"][1],
        serde_json::json!({"start": 15.0, "end": 30.0})
    );
    assert_eq!(stream["silence_words"], 1);
    assert_eq!(stream["messages"][2]["words"], 1);
    assert_eq!(json["rounds"][2]["server_stats"], serde_json::Value::Null);
}

fn statuses(report: &Report) -> Vec<(TargetStatus, &str)> {
    report
        .targets
        .iter()
        .map(|t| (t.status, t.target.as_str()))
        .collect()
}

#[test]
fn pauses_targets_apply_only_with_the_voice_activity_controller() {
    let mut report = pauses_report();
    report.meta.vac = Some(false);
    let report = report.judged();
    assert!(report.targets.is_empty());
    assert!(report
        .to_string()
        .ends_with("    (no target applies to the pauses scenario with these settings)\n"));
    let mut unknown = pauses_report();
    unknown.meta.vac = None;
    assert!(unknown.judged().targets.is_empty());
}

#[test]
fn pauses_targets_fail_past_their_thresholds() {
    let mut report = pauses_report();
    // The 1-client round at 100 ms: slower, dearer and less accurate than allowed, and
    // its latency grows by 1.12 s: it does not keep up, so the capacity is decided too.
    let slow = [(2_000, 1.5), (9_000, 2.0), (22_000, 2.75), (29_000, 3.0)];
    report.rounds[1] = pauses_round(100, vec![pauses_stream(1, &slow, (7, 100))], 0.375, None);
    let report = report.judged();
    let failed: Vec<&str> = report
        .targets
        .iter()
        .filter(|t| t.status == TargetStatus::Missed)
        .map(|t| t.target.as_str())
        .collect();
    assert_eq!(
        failed,
        [
            "WER ≤ floor WER + 1 point",
            "mean latency with 1 client ≤ 1.2 s",
            "p90 latency with 1 client ≤ 2.5 s",
            "server CPU per audio second with 1 client ≤ 0.35",
            "≥ 8 clients with p90 ≤ 3 s (and growth ≤ 1 s, no errors)",
        ]
    );
    // 7.0 % vs 5.0 %: the floor of pauses-1 alone, not of both streams (6.0 %).
    assert_eq!(
        report.targets[0].measured,
        "7.0 % streaming (1 client(s)) vs 5.0 % floor (full ctx)"
    );
}

#[test]
fn the_pauses_capacity_is_judged_once_decided() {
    let round = |clients: usize, latency: f64| {
        let streams = (1..=clients)
            .map(|c| pauses_stream(c, &[(2_000, latency), (20_000, latency)], (5, 100)))
            .collect();
        pauses_round(100, streams, 0.25, None)
    };
    let capacity_check = |rounds: Vec<RoundResult>| {
        let mut report = pauses_report();
        report.rounds = rounds;
        let report = report.judged();
        let check = report.targets.last().unwrap().clone();
        (check.status, check.measured)
    };
    // Rounds of 1, 2 and 4 clients kept up: not decided.
    let (status, _) = capacity_check(vec![round(1, 1.0), round(2, 1.0), round(4, 1.0)]);
    assert_eq!(status, TargetStatus::NotMeasured);
    // The 4-client round fell short (as --max-search stops): decided, missed.
    let (status, measured) = capacity_check(vec![round(1, 1.0), round(2, 1.0), round(4, 3.5)]);
    assert_eq!(
        (status, measured.as_str()),
        (TargetStatus::Missed, "largest passing client count 2")
    );
    // An 8-client round with p90 ≤ 3 s after passing smaller ones: met.
    let rounds = vec![round(1, 1.0), round(4, 2.0), round(8, 2.75)];
    assert_eq!(capacity_check(rounds).0, TargetStatus::Met);
    // With p90 within --latency-limit 5 but over 3 s, 8 clients do not count.
    let mut lenient = round(8, 4.0);
    lenient.verdict = super::report::Verdict::KeepsUp;
    let (status, measured) = capacity_check(vec![round(1, 1.0), lenient]);
    assert_eq!(
        (status, measured.as_str()),
        (TargetStatus::Missed, "largest passing client count 1")
    );
}

#[test]
fn the_wer_is_compared_on_the_streams_the_floor_transcribed() {
    let mut report = pauses_report();
    // Only a 4-client round: clients 3 and 4's streams have no floor.
    let streams = (1..=4)
        .map(|c| pauses_stream(c, &[(2_000, 1.0)], (c * 10, 100)))
        .collect();
    report.rounds = vec![pauses_round(100, streams, 0.25, None)];
    let report = report.judged();
    let wer = &report.targets[0];
    // Streaming: (10 + 20) / 200; floor: (5 + 7) / 200.
    assert_eq!(
        wer.measured,
        "15.0 % streaming (4 client(s)) vs 6.0 % floor (full ctx), on the streams of \
         pauses-1, pauses-2"
    );
    assert_eq!(wer.status, TargetStatus::Missed);
}

/// A `noise` report: one round of `clients` streams, each with `words` committed words
/// (all in silence), at `cpu` server CPU seconds per audio second.
fn noise_report(words: &[usize], cpu: f64) -> Report {
    let args = bench_args(&["--scenario", "noise"]);
    let mut report = synthetic_report(&args, 2);
    report.floors.clear();
    let streams: Vec<StreamResult> = words
        .iter()
        .enumerate()
        .map(|(c, &n)| {
            let messages: Vec<(u64, f64)> = (0..n as u64).map(|i| (20_000 + i, 1.0)).collect();
            let mut stream = synthetic_stream(
                c + 1,
                &format!("noise-{}", c + 1),
                60.0,
                &messages,
                None,
                &[],
            );
            stream.speech = Some(Vec::new());
            stream.silence_words = Some(words_in_silence(&stream.messages, &[]));
            stream
        })
        .collect();
    report.rounds = vec![pauses_round(100, streams, cpu, None)];
    report.judged()
}

#[test]
fn noise_targets_want_no_words_and_little_cpu() {
    let quiet = noise_report(&[0], 0.0125);
    assert_eq!(
        statuses(&quiet),
        [
            (
                TargetStatus::Met,
                "words committed during silence ≤ 0, all rounds"
            ),
            (
                TargetStatus::Met,
                "server CPU per audio second with 1 client ≤ 0.02"
            ),
        ]
    );
    assert_eq!(quiet.targets[0].measured, "0 word(s) in 1 round(s)");
    assert_eq!(quiet.targets[1].measured, "0.013");
    let chatty = noise_report(&[0, 3], 0.03);
    assert_eq!(
        chatty.targets.iter().map(|t| t.status).collect::<Vec<_>>(),
        [TargetStatus::Missed, TargetStatus::NotMeasured]
    );
    assert_eq!(chatty.targets[0].measured, "3 word(s) in 1 round(s)");
    assert_eq!(chatty.targets[1].measured, "no 1-client round");
    assert_eq!(quiet.meta.scenario, Scenario::Noise);
}

#[test]
fn busy_targets_are_listed_with_one_busy_core_on_the_files() {
    let report = |busy: &str| {
        let args = bench_args(&["--busy-cores", busy]);
        synthetic_report(&args, 2)
    };
    let busy = report("1");
    assert_eq!(busy.targets.len(), 7);
    assert_eq!(
        statuses(&busy)[4..],
        [
            (
                TargetStatus::Met,
                "mean latency with 1 client ≤ 2 s with 1 busy core(s)"
            ),
            (
                TargetStatus::Met,
                "p90 latency with 1 client ≤ 3 s with 1 busy core(s)"
            ),
            (
                TargetStatus::Met,
                "p90 latency with 2 clients ≤ 3.5 s with 1 busy core(s)"
            ),
        ]
    );
    assert_eq!(busy.targets[6].measured, "3.25 s");
    assert_eq!(report("0").targets.len(), 4);
    assert_eq!(report("2").targets.len(), 4);
    assert!(busy
        .to_string()
        .contains("\n- Load: 1 process(es) busy-looping"));
}

#[test]
fn short_updates_are_judged_under_any_load_when_the_server_reports_them() {
    let report = |busy: &str, longest: Option<f64>| {
        let args = bench_args(&["--busy-cores", busy]);
        let mut report = synthetic_report(&args, 2);
        for round in &mut report.rounds {
            let mut stats = update_stats(3.0, 1);
            stats.update_seconds_short_audio = longest.map(|max| Timing {
                count: 20,
                p50: Some(0.2),
                p90: Some(0.4),
                p99: Some(max),
                max: Some(max),
            });
            round.server_stats = Some(stats);
        }
        report.judged()
    };
    let slow = report("2", Some(2.4));
    let last = slow.targets.last().unwrap();
    assert_eq!(
        (last.status, last.target.as_str(), last.measured.as_str()),
        (
            TargetStatus::Missed,
            "no update on ≤ 10 s of audio longer than 2 s with 2 busy core(s)",
            "longest 2.40 s"
        )
    );
    let quick = report("1", Some(1.25));
    assert_eq!(quick.targets.len(), 8);
    assert_eq!(quick.targets[7].status, TargetStatus::Met);
    // Not judged on a quiet machine, nor when the server does not say.
    assert_eq!(report("0", Some(2.4)).targets.len(), 4);
    assert_eq!(report("2", None).targets.len(), 4);
}
