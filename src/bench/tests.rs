//! Tests of the bench as a whole. Snapshots of the report: a fixed synthetic report,
//! rendered as markdown and serialised as `--json` does, must match the text the bench
//! produced before its report code was restructured, byte for byte (the markdown of the
//! `files` scenario has not changed since; the JSON has gained fields). And the error
//! line that `reswhis bench` prints. The builders here serve [`super::scenario_tests`]
//! too.

use clap::Parser;

use super::report::{
    Arrival, FloorFile, FloorResult, GroupStats, Meta, Report, RoundResult, ServerUnderTest,
    StreamResult, Verdict,
};
use super::stats::{aggregate_wer, stream_growth};
use crate::audio::WavError;
use crate::config::{BenchArgs, Cli, Command};
use crate::error_line;

/// A one-word message ending at `to_ms` (500 ms long) that arrived `latency` s late.
pub(super) fn arrival(to_ms: u64, latency: f64) -> Arrival {
    Arrival {
        from_ms: to_ms.saturating_sub(500),
        to_ms,
        arrival: to_ms as f64 / 1000.0 + latency,
        latency,
        words: 1,
    }
}

/// One stream as `stream_file` records it: `messages` are (to ms, latency s), each
/// covering the 500 ms before its `to` and holding one word.
pub(super) fn synthetic_stream(
    client: usize,
    file: &str,
    audio_seconds: f64,
    messages: &[(u64, f64)],
    scored: Option<(usize, usize)>,
    errors: &[&str],
) -> StreamResult {
    let messages: Vec<Arrival> = messages.iter().map(|&(to, l)| arrival(to, l)).collect();
    StreamResult {
        client,
        file: file.into(),
        audio_seconds,
        speech: None,
        silence_words: None,
        transcript: " w".repeat(messages.len()),
        word_errors: scored.map(|s| s.0),
        reference_words: scored.map(|s| s.1),
        first_text: messages.first().map(|m| m.arrival),
        eos_to_done: Some(0.25),
        growth: stream_growth(&messages, audio_seconds),
        errors: errors.iter().map(|e| e.to_string()).collect(),
        messages,
        language: None,
        words: Vec::new(),
        word_times: None,
    }
}

/// A round as `run_round` builds it from its streams (100 ms frames, limits 3 s / 1 s).
pub(super) fn synthetic_round(
    clients: usize,
    server_cpu_seconds: Option<f64>,
    streams: Vec<StreamResult>,
) -> RoundResult {
    let all: Vec<&StreamResult> = streams.iter().collect();
    let overall = GroupStats::of(&all);
    let per_client = (1..=clients)
        .map(|c| GroupStats::of(&streams.iter().filter(|s| s.client == c).collect::<Vec<_>>()))
        .collect();
    let verdict = Verdict::of(&overall, 3.0, 1.0, true);
    RoundResult {
        clients,
        frame_ms: 100,
        wall_seconds: 43.5 + clients as f64,
        server_cpu_seconds,
        cpu_per_audio_second: server_cpu_seconds.map(|c| c / overall.audio_seconds),
        server_stats: None,
        overall,
        per_client,
        verdict,
        server_info: None,
        streams,
    }
}

pub(super) fn bench_args(extra: &[&str]) -> BenchArgs {
    let argv = ["reswhis", "bench"].iter().chain(extra);
    match Cli::try_parse_from(argv).unwrap().command {
        Some(Command::Bench(args)) => args,
        _ => unreachable!("bench args"),
    }
}

/// A fixed report: two floors, a passing 1-client round and a failing 2-client one
/// (an error, and latency that grows), and the targets checked on them.
pub(super) fn synthetic_report(args: &BenchArgs, second_round_clients: usize) -> Report {
    let floor = |mode: &str, wall: f64, cpu: Option<f64>, errors: (usize, usize)| FloorResult {
        mode: mode.into(),
        threads: 4,
        audio_seconds: 42.5,
        wall_seconds: wall,
        cpu_seconds: cpu,
        rtf: wall / 42.5,
        cpu_per_audio_second: cpu.map(|c| c / 42.5),
        wer: aggregate_wer([(Some(errors.0), Some(80)), (Some(errors.1), Some(30))].into_iter()),
        files: vec![
            FloorFile {
                file: "a".into(),
                audio_seconds: 30.0,
                wall_seconds: wall * 0.7,
                word_errors: Some(errors.0),
                reference_words: Some(80),
                transcript: "the a file".into(),
            },
            FloorFile {
                file: "b".into(),
                audio_seconds: 12.5,
                wall_seconds: wall * 0.3,
                word_errors: Some(errors.1),
                reference_words: Some(30),
                transcript: "the b file".into(),
            },
        ],
    };
    let floors = vec![
        floor("full ctx", 2.125, Some(8.5), (6, 2)),
        floor("fitted ctx", 1.0625, Some(4.25), (7, 2)),
    ];
    let a_steady = [
        (1_500, 1.25),
        (9_000, 1.0),
        (16_000, 1.5),
        (25_000, 1.125),
        (29_500, 1.375),
    ];
    let b_steady = [(2_000, 1.0), (7_000, 1.25), (12_000, 1.5)];
    let a_behind = [(2_000, 1.5), (12_000, 3.25), (26_000, 5.5)];
    let rounds = vec![
        synthetic_round(
            1,
            Some(12.75),
            vec![
                synthetic_stream(1, "a", 30.0, &a_steady, Some((8, 80)), &[]),
                synthetic_stream(1, "b", 12.5, &b_steady, Some((3, 30)), &[]),
            ],
        ),
        synthetic_round(
            second_round_clients,
            None,
            vec![
                synthetic_stream(1, "a", 30.0, &a_behind, Some((12, 80)), &[]),
                synthetic_stream(1, "b", 12.5, &b_steady, Some((3, 30)), &[]),
                synthetic_stream(
                    2,
                    "b",
                    12.5,
                    &[],
                    Some((30, 30)),
                    &["closed with 1011 worker failed"],
                ),
                synthetic_stream(2, "a", 30.0, &a_steady, None, &[]),
            ],
        ),
    ];
    let meta = Meta {
        date: "2026-03-01 12:34 UTC".into(),
        command: "reswhis bench --clients 1,2 --files 'a b.wav'".into(),
        git_commit: Some("abc1234 (uncommitted changes)".into()),
        nproc: 16,
        cpu_model: Some("Test CPU @ 3.00GHz".into()),
        server: args
            .url
            .clone()
            .map_or(ServerUnderTest::Child, ServerUnderTest::Remote),
        server_info: Some(
            serde_json::from_value(serde_json::json!({
                "backend": "whisper.cpp",
                "model_size": "tiny.en",
                "language": "en",
                "sampling_rate": 16000,
                "minimum_chunk_size": 1.0,
                "voice_activity_controller": false,
                "use_voice_activity_detection": false,
                "version": "0.1.0",
                "auth_required": false,
                "workers": 2,
                "threads_per_worker": 4,
                "weights": "q8_0",
                "buffer_trimming_sec": 6.0,
                "trim_context_sec": 3.0,
                "beam_size": 1,
                "stats": {"process_cpu_seconds": 1.5},
            }))
            .expect("an /info document"),
        ),
        model: "tiny.en".into(),
        min_chunk_size: 1.0,
        beam_size: 1,
        full_audio_ctx: false,
        floor_threads: 4,
        files: vec!["a".into(), "b".into()],
        audio_seconds: 42.5,
        scenario: args.scenario,
        vac: args.url.is_none().then_some(args.voice.vac),
        busy_cores: args.busy_cores,
        query: String::new(),
        expect_language: None,
        frame_ms: args.frame_ms.clone(),
        latency_limit: args.latency_limit,
        growth_limit: args.growth_limit,
    };
    Report {
        meta,
        floors,
        capacity: None,
        targets: Vec::new(),
        rounds,
    }
    .judged()
}

/// The report of [`synthetic_report`] as `render_markdown` wrote it before the
/// report was split into tables: any change to this text is a change to the output.
const MARKDOWN_SNAPSHOT: &str = r#"## reswhis bench, 2026-03-01 12:34 UTC

- Command: `reswhis bench --clients 1,2 --files 'a b.wav'`
- Commit: abc1234 (uncommitted changes)
- Machine: 16 CPU(s) (nproc), Test CPU @ 3.00GHz
- Server: `reswhis serve` as a child process, fresh for every round — model tiny.en (q8_0 weights), 2 worker(s) × 4 thread(s), min chunk 1.0 s, buffer trimmed past 6.0 s keeping 3.0 s of context, beam 1, fitted audio ctx
- Audio: 2 file(s), 42.5 s; each client streams every file (client c starts at file c), in real time, 100 ms frames, a new connection per file
- Definitions: *latency* = arrival of a committed message − (stream start + its `to`), where stream start is the capture of the first sample (a frame is sent when its last sample is due); *first text* = stream start → first committed message; *growth* = mean latency of messages ending in the last third of their file − in the first third, over files ≥ 10 s, pooled; percentiles are nearest-rank; WER = word errors / reference words over all streams (reswhis::wer normalisation); server CPU = user + system seconds of the server process over the round (/info), per second of audio streamed.

### Offline floor (whisper.cpp, each file once, whole, 4 thread(s), in the bench process)

| mode       |   RTF | CPU s / audio s |   WER |
| :--------- | ----: | --------------: | ----: |
| full ctx   | 0.050 |           0.200 | 7.3 % |
| fitted ctx | 0.025 |           0.100 | 8.2 % |

### Streaming (latencies in seconds)

| clients | streams | msgs | mean |  p50 |  p90 |  max | first text | growth |    WER | server CPU s / audio s | keeps up                                          |
| :------ | ------: | ---: | ---: | ---: | ---: | ---: | ---------: | -----: | -----: | ---------------------: | :------------------------------------------------ |
| 1       |       2 |    8 | 1.25 | 1.25 | 1.50 | 1.50 |       2.88 |   0.25 | 10.0 % |                  0.300 | ok                                                |
| 2       |       4 |   11 | 1.84 | 1.38 | 3.25 | 5.50 |       3.08 |   1.19 | 32.1 % |                      – | 1 error(s), p90 3.25 s > 3 s, growth 1.19 s > 1 s |

Per client:

| clients | client | msgs | mean |  p50 |  p90 |  max | first text | growth |     WER | errors |
| :------ | -----: | ---: | ---: | ---: | ---: | ---: | ---------: | -----: | ------: | -----: |
| 1       |      1 |    8 | 1.25 | 1.25 | 1.50 | 1.50 |       2.88 |   0.25 |  10.0 % |      0 |
| 2       |      1 |    6 | 2.33 | 1.50 | 5.50 | 5.50 |       3.25 |   2.25 |  13.6 % |      0 |
| 2       |      2 |    5 | 1.25 | 1.25 | 1.50 | 1.50 |       2.75 |   0.12 | 100.0 % |      1 |

### Targets

Capacity (largest client count with p90 ≤ 3 s, growth ≤ 1 s, no errors): 1 (rounds run: 1, 2)

    PASS  mean latency with 1 client ≤ 1.5 s: 1.25 s
    FAIL  WER ≤ floor WER + 2 points: 10.0 % streaming (1 client(s)) vs 7.3 % floor (full ctx)
    N/A   ≥ 4 clients with p90 ≤ 3 s (and growth ≤ 1 s, no errors): not measured: largest round 2 (use --max-search)
    PASS  streaming server CPU per audio second ≤ 3 × floor: 0.300 vs 0.200 floor (full ctx): 1.50× (3.00× the fitted-ctx floor)
"#;

/// Like [`MARKDOWN_SNAPSHOT`], for a --url server, no floor and a 4-client round.
const REMOTE_MARKDOWN_SNAPSHOT: &str = r#"## reswhis bench, 2026-03-01 12:34 UTC

- Command: `reswhis bench --clients 1,2 --files 'a b.wav'`
- Commit: unknown
- Machine: 16 CPU(s) (nproc), unknown CPU
- Server: ws://10.0.0.7:8000/transcribe?token=k (as running) — model tiny.en (? weights), ? worker(s) × ? thread(s), min chunk ? s, buffer trimmed past ? s keeping ? s of context, beam ?, full audio ctx
- Audio: 2 file(s), 42.5 s; each client streams every file (client c starts at file c), in real time, 100 ms frames, a new connection per file
- Definitions: *latency* = arrival of a committed message − (stream start + its `to`), where stream start is the capture of the first sample (a frame is sent when its last sample is due); *first text* = stream start → first committed message; *growth* = mean latency of messages ending in the last third of their file − in the first third, over files ≥ 10 s, pooled; percentiles are nearest-rank; WER = word errors / reference words over all streams (reswhis::wer normalisation); server CPU = user + system seconds of the server process over the round (/info), per second of audio streamed.

### Streaming (latencies in seconds)

| clients | streams | msgs | mean |  p50 |  p90 |  max | first text | growth |    WER | server CPU s / audio s | keeps up                                          |
| :------ | ------: | ---: | ---: | ---: | ---: | ---: | ---------: | -----: | -----: | ---------------------: | :------------------------------------------------ |
| 1       |       2 |    8 | 1.25 | 1.25 | 1.50 | 1.50 |       2.88 |   0.25 | 10.0 % |                  0.300 | ok                                                |
| 4       |       4 |   11 | 1.84 | 1.38 | 3.25 | 5.50 |       3.08 |   1.19 | 32.1 % |                      – | 1 error(s), p90 3.25 s > 3 s, growth 1.19 s > 1 s |

Per client:

| clients | client | msgs | mean |  p50 |  p90 |  max | first text | growth |     WER | errors |
| :------ | -----: | ---: | ---: | ---: | ---: | ---: | ---------: | -----: | ------: | -----: |
| 1       |      1 |    8 | 1.25 | 1.25 | 1.50 | 1.50 |       2.88 |   0.25 |  10.0 % |      0 |
| 4       |      1 |    6 | 2.33 | 1.50 | 5.50 | 5.50 |       3.25 |   2.25 |  13.6 % |      0 |
| 4       |      2 |    5 | 1.25 | 1.25 | 1.50 | 1.50 |       2.75 |   0.12 | 100.0 % |      1 |
| 4       |      3 |    0 |    – |    – |    – |    – |          – |      – |       – |      0 |
| 4       |      4 |    0 |    – |    – |    – |    – |          – |      – |       – |      0 |

### Targets

Capacity (largest client count with p90 ≤ 2.5 s, growth ≤ 0.5 s, no errors): 1 (rounds run: 1, 4)

    PASS  mean latency with 1 client ≤ 1.5 s: 1.25 s
    N/A   WER ≤ floor WER + 2 points: 10.0 % streaming (1 client(s)) vs – floor (full ctx)
    FAIL  ≥ 4 clients with p90 ≤ 2.5 s (and growth ≤ 0.5 s, no errors): largest passing client count 1
    N/A   streaming server CPU per audio second ≤ 3 × floor: 0.300 vs – floor (full ctx): –× (–× the fitted-ctx floor)
"#;

fn remote_report(args: &BenchArgs) -> Report {
    let mut report = synthetic_report(args, 4);
    report.floors.clear();
    report.meta.full_audio_ctx = true;
    report.meta.git_commit = None;
    report.meta.cpu_model = None;
    report.meta.server_info = None;
    report.judged()
}

/// The snapshots are of a run against a server without VAC (they predate it).
const NO_VAC: &[&str] = &["--vac", "false"];

#[test]
fn the_markdown_report_matches_its_snapshot() {
    let args = bench_args(NO_VAC);
    let markdown = synthetic_report(&args, 2).to_string();
    assert_eq!(markdown, MARKDOWN_SNAPSHOT, "\n{markdown}");
    let args = bench_args(&[
        "--vac",
        "false",
        "--url",
        "ws://10.0.0.7:8000/transcribe?token=k",
        "--latency-limit",
        "2.5",
        "--growth-limit",
        "0.5",
    ]);
    let markdown = remote_report(&args).to_string();
    assert_eq!(markdown, REMOTE_MARKDOWN_SNAPSHOT, "\n{markdown}");
}

/// `--json` writes `to_string_pretty` of the report: the text, not just the value,
/// is compared, so field names, their order and every number stay as they were.
#[test]
fn the_json_report_matches_its_snapshot() {
    let report = synthetic_report(&bench_args(NO_VAC), 2);
    let json = serde_json::to_string_pretty(&report).unwrap();
    assert_eq!(json, include_str!("testdata/report.json"));
    let value = serde_json::to_value(&report).unwrap();
    let snapshot: serde_json::Value =
        serde_json::from_str(include_str!("testdata/report.json")).unwrap();
    assert_eq!(value, snapshot);
}

#[test]
fn an_error_line_holds_each_cause_once() {
    let wav = WavError::Read {
        path: "a.wav".into(),
        source: hound::Error::IoError(std::io::Error::other("gone")),
    };
    let error = anyhow::Error::new(wav).context("the test set");
    assert_eq!(
        error_line(&error),
        "the test set: cannot read WAV file a.wav: gone"
    );
    assert!(format!("{error:#}").ends_with("gone: gone"), "{error:#}");
    let plain = anyhow::anyhow!("no test audio in x");
    assert_eq!(error_line(&plain), "no test audio in x");
}

#[test]
fn max_search_starts_at_the_smallest_client_count() {
    use super::rounds::client_counts;
    assert_eq!(
        client_counts(&bench_args(&["--max-search", "--max-clients", "8"])),
        [1, 2, 3, 4, 6, 8]
    );
    assert_eq!(
        client_counts(&bench_args(&[
            "--max-search",
            "--clients",
            "8",
            "--max-clients",
            "40"
        ])),
        [8, 12, 16, 24, 32]
    );
    assert_eq!(
        client_counts(&bench_args(&["--clients", "4,1,2"])),
        [4, 1, 2],
        "without --max-search the list is taken as given"
    );
}
