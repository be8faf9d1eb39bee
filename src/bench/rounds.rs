//! Rounds: N clients against one server, at one frame size. Client c streams what the
//! [`Workload`] plans for it (every file from file c on, or its own scenario stream), its
//! start offset by c/N s (so their updates are not in step). A round keeps up when its
//! pooled p90 latency and growth are within the limits, no stream had an error and some
//! text came (except in the `noise` scenario); the capacity at a frame size is the
//! largest client count whose round, and every smaller round run, kept up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::client::stream_file;
use super::progress::{RoundLine, StreamLine};
use super::report::{GroupStats, RoundResult, Shortfall, StreamResult, Verdict};
use super::server::{cpu_seconds, server_stats, RemoteServer, ServerProcess};
use super::stats::delta;
use super::testset::TestFile;
use super::workload::Workload;
use crate::config::{BenchArgs, Scenario};
use crate::error_line;

/// Client counts `--max-search` tries, in order, until one fails.
const SEARCH_STEPS: &[usize] = &[1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128];

/// The client count of each round, in order: `--clients`, or with `--max-search` the
/// [`SEARCH_STEPS`] from the smallest `--clients` count (1 by default) up to
/// `--max-clients`.
pub(super) fn client_counts(args: &BenchArgs) -> Vec<usize> {
    if args.max_search {
        let from = args.clients.iter().min().map_or(1, |&n| n as usize);
        SEARCH_STEPS
            .iter()
            .copied()
            .filter(|&n| n >= from && n <= args.max_clients.max(1))
            .collect()
    } else {
        args.clients.iter().map(|&n| n as usize).collect()
    }
}

/// Every round, in order: for each `--frame-ms`, each client count of
/// [`client_counts`] (with `--max-search`, until a round fails, then the search starts
/// again at the next frame size). A round that cannot run ends the rounds, keeping those
/// measured, unless it is the first.
pub(super) fn run_rounds(
    args: &BenchArgs,
    workload: &mut Workload,
) -> anyhow::Result<Vec<RoundResult>> {
    let mut rounds = Vec::new();
    for &frame_ms in &args.frame_ms {
        for clients in client_counts(args) {
            let plan = workload.plan(clients);
            let round = run_round(args, &plan, frame_ms).with_context(|| {
                format!("the round with {clients} client(s), {frame_ms} ms frames, could not run")
            });
            let round = match round {
                Ok(round) => round,
                // Keep what was measured so far.
                Err(e) if !rounds.is_empty() => {
                    eprintln!("bench: {}", error_line(&e));
                    return Ok(rounds);
                }
                Err(e) => return Err(e),
            };
            eprintln!("bench: {}", RoundLine(&round));
            let failed = !round.verdict.keeps_up();
            rounds.push(round);
            if args.max_search && failed {
                break;
            }
        }
    }
    Ok(rounds)
}

/// One client per entry of `plan` (each streaming its files in order, one connection
/// per file) against a fresh server (or the --url one).
fn run_round(
    args: &BenchArgs,
    plan: &[Vec<Arc<TestFile>>],
    frame_ms: u64,
) -> anyhow::Result<RoundResult> {
    let clients = plan.len();
    let process = match args.url {
        Some(_) => None,
        None => Some(ServerProcess::start(args, clients)?),
    };
    let server = match (&process, &args.url) {
        (Some(process), _) => process.server.clone(),
        (None, Some(url)) => RemoteServer::parse(url)?,
        (None, None) => unreachable!("either a child server or --url"),
    };
    let longest = plan
        .iter()
        .map(|files| files.iter().map(|f| f.seconds + 0.5).sum::<f64>())
        .fold(0.0, f64::max);
    eprintln!(
        "bench: {clients} client(s) × {} stream(s), {frame_ms} ms frames, on {} (about {:.0} \
         s)…",
        plan.first().map_or(0, Vec::len),
        server.authority,
        longest
    );
    let server_info = server.info().ok();
    let cpu_before = server_info.as_ref().and_then(cpu_seconds);
    let started = Instant::now();
    let threads: Vec<_> = plan
        .iter()
        .enumerate()
        .map(|(client, files)| {
            let files = files.clone();
            let url = with_query(&server.ws_url, &args.query);
            let verbose = args.verbose;
            // Spread the clients' start over a second so their updates are not in step.
            let delay = Duration::from_secs_f64(client as f64 / clients as f64);
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                files
                    .iter()
                    .map(|file| {
                        let stream = stream_file(&url, client + 1, file, frame_ms);
                        if verbose || !stream.errors.is_empty() {
                            eprintln!("bench:   {}", StreamLine(&stream));
                        }
                        stream
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let streams: Vec<StreamResult> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("client thread panicked"))
        .collect();
    let wall_seconds = started.elapsed().as_secs_f64();
    let info_after = server.info().ok();
    let server_cpu_seconds = delta(cpu_before, info_after.as_ref().and_then(cpu_seconds));
    if let Some(process) = &process {
        if streams.iter().any(|s| !s.errors.is_empty()) {
            eprintln!("bench: server log tail:\n{}", process.log_tail());
        }
    }

    let all: Vec<&StreamResult> = streams.iter().collect();
    let overall = GroupStats::of(&all);
    let per_client = (1..=clients)
        .map(|c| {
            let mine: Vec<&StreamResult> = streams.iter().filter(|s| s.client == c).collect();
            GroupStats::of(&mine)
        })
        .collect();
    // Where nobody speaks, no text is the right outcome.
    let expects_text = args.scenario != Scenario::Noise;
    let verdict = Verdict::of(
        &overall,
        args.latency_limit,
        args.growth_limit,
        expects_text,
    );
    Ok(RoundResult {
        clients,
        frame_ms,
        wall_seconds,
        server_cpu_seconds,
        cpu_per_audio_second: server_cpu_seconds.map(|c| c / overall.audio_seconds),
        server_stats: info_after.as_ref().and_then(server_stats),
        overall,
        per_client,
        verdict,
        server_info,
        streams,
    })
}

/// `url` with the `--query` parameters added.
fn with_query(url: &str, query: &str) -> String {
    let query = query.trim_start_matches(['?', '&']);
    match (query.is_empty(), url.contains('?')) {
        (true, _) => url.to_string(),
        (false, true) => format!("{url}&{query}"),
        (false, false) => format!("{url}?{query}"),
    }
}

/// The largest client count whose round with `frame_ms` frames passed, if every smaller
/// round run with them passed too.
pub(super) fn capacity(rounds: &[RoundResult], frame_ms: u64) -> Option<usize> {
    let mut sorted: Vec<&RoundResult> = rounds.iter().filter(|r| r.frame_ms == frame_ms).collect();
    sorted.sort_by_key(|r| r.clients);
    sorted
        .iter()
        .take_while(|r| r.verdict.keeps_up())
        .map(|r| r.clients)
        .last()
}

impl Verdict {
    /// Judges a round's overall figures against the limits (seconds); no text at all
    /// falls short only where some is `expected`.
    pub(super) fn of(
        stats: &GroupStats,
        latency_limit: f64,
        growth_limit: f64,
        expected: bool,
    ) -> Verdict {
        let mut reasons = Vec::new();
        if stats.errors > 0 {
            reasons.push(Shortfall::Errors(stats.errors));
        }
        match stats.latency {
            None if expected => reasons.push(Shortfall::NoText),
            None => {}
            Some(l) if l.p90 > latency_limit => reasons.push(Shortfall::Latency {
                p90: l.p90,
                limit: latency_limit,
            }),
            Some(_) => {}
        }
        if let Some(growth) = stats.growth.filter(|&g| g > growth_limit) {
            reasons.push(Shortfall::Growth {
                growth,
                limit: growth_limit,
            });
        }
        if reasons.is_empty() {
            Verdict::KeepsUp
        } else {
            Verdict::Fails(reasons)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::report::Summary;

    #[test]
    fn rounds_pass_only_within_the_limits() {
        let stats = |p90: f64, growth: Option<f64>, errors: usize| GroupStats {
            streams: 1,
            audio_seconds: 10.0,
            latency: Some(Summary {
                count: 3,
                mean: 1.0,
                p50: 1.0,
                p90,
                max: p90,
            }),
            first_text: None,
            growth,
            worst_stream_growth: growth,
            wer: None,
            silence_words: None,
            errors,
        };
        let verdict = |stats: GroupStats| Verdict::of(&stats, 3.0, 1.0, true);
        assert_eq!(verdict(stats(2.9, Some(0.5), 0)), Verdict::KeepsUp);
        assert_eq!(verdict(stats(2.9, None, 0)), Verdict::KeepsUp);
        let slow = verdict(stats(3.1, None, 0));
        assert_eq!(
            slow,
            Verdict::Fails(vec![Shortfall::Latency {
                p90: 3.1,
                limit: 3.0
            }])
        );
        assert_eq!(slow.to_string(), "p90 3.10 s > 3 s");
        let all = verdict(GroupStats {
            latency: None,
            ..stats(1.0, Some(1.5), 2)
        });
        assert_eq!(all.to_string(), "2 error(s), no text, growth 1.50 s > 1 s");
        assert!(!all.keeps_up());
        // Where nobody speaks, silence keeps up; errors still do not.
        let quiet = |errors| GroupStats {
            latency: None,
            ..stats(1.0, None, errors)
        };
        assert_eq!(Verdict::of(&quiet(0), 3.0, 1.0, false), Verdict::KeepsUp);
        assert_eq!(
            Verdict::of(&quiet(1), 3.0, 1.0, false).to_string(),
            "1 error(s)"
        );
        assert_eq!(Verdict::KeepsUp.to_string(), "ok");
    }
}
