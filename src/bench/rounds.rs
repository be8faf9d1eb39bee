//! Rounds: N clients against one server. Client c streams every file, starting at file c
//! (so the clients send different audio at once), its start offset by c/N s (so their
//! updates are not in step). A round keeps up when its pooled p90 latency and growth are
//! within the limits and no stream had an error; the capacity is the largest client count
//! whose round, and every smaller round run, kept up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::client::stream_file;
use super::render::StreamLine;
use super::report::{GroupStats, RoundResult, Shortfall, StreamResult, Verdict};
use super::server::{RemoteServer, ServerProcess};
use super::stats::delta;
use super::testset::TestFile;
use crate::config::BenchArgs;

/// Client counts `--max-search` tries, in order, until one fails.
const SEARCH_STEPS: &[usize] = &[1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128];

/// The client count of each round, in order: `--clients`, or with `--max-search` the
/// [`SEARCH_STEPS`] up to `--max-clients`.
pub(super) fn client_counts(args: &BenchArgs) -> Vec<usize> {
    if args.max_search {
        SEARCH_STEPS
            .iter()
            .copied()
            .filter(|&n| n <= args.max_clients.max(1))
            .collect()
    } else {
        args.clients.iter().map(|&n| n as usize).collect()
    }
}

/// N clients against a fresh server (or the --url one).
pub(super) fn run_round(
    args: &BenchArgs,
    files: &Arc<Vec<TestFile>>,
    clients: usize,
) -> anyhow::Result<RoundResult> {
    let process = match args.url {
        Some(_) => None,
        None => Some(ServerProcess::start(args, clients)?),
    };
    let server = match (&process, &args.url) {
        (Some(process), _) => process.server.clone(),
        (None, Some(url)) => RemoteServer::parse(url)?,
        (None, None) => unreachable!("either a child server or --url"),
    };
    let audio: f64 = files.iter().map(|f| f.seconds).sum();
    eprintln!(
        "bench: {clients} client(s) × {} file(s) on {} (about {:.0} s)…",
        files.len(),
        server.authority,
        audio + files.len() as f64 * 0.5
    );
    let server_info = server.info().ok();
    let cpu_before = server_info
        .as_ref()
        .and_then(|i| i["stats"]["process_cpu_seconds"].as_f64());
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|client| {
            let files = Arc::clone(files);
            let url = server.ws_url.clone();
            let (frame_ms, verbose) = (args.frame_ms, args.verbose);
            // Spread the clients' start over a second so their updates are not in step.
            let delay = Duration::from_secs_f64(client as f64 / clients as f64);
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                // Client c starts at file c, so clients send different audio at once.
                (0..files.len())
                    .map(|i| {
                        let file = &files[(client + i) % files.len()];
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
    let server_cpu_seconds = delta(cpu_before, server.cpu_seconds());
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
    let verdict = Verdict::of(&overall, args.latency_limit, args.growth_limit);
    Ok(RoundResult {
        clients,
        wall_seconds,
        server_cpu_seconds,
        cpu_per_audio_second: server_cpu_seconds.map(|c| c / overall.audio_seconds),
        overall,
        per_client,
        verdict,
        server_info,
        streams,
    })
}

/// The largest client count whose round passed, if every smaller round run passed too.
pub(super) fn capacity(rounds: &[RoundResult]) -> Option<usize> {
    let mut sorted: Vec<&RoundResult> = rounds.iter().collect();
    sorted.sort_by_key(|r| r.clients);
    sorted
        .iter()
        .take_while(|r| r.verdict.keeps_up())
        .map(|r| r.clients)
        .last()
}

impl Verdict {
    /// Judges a round's overall figures against the limits (seconds).
    pub(super) fn of(stats: &GroupStats, latency_limit: f64, growth_limit: f64) -> Verdict {
        let mut reasons = Vec::new();
        if stats.errors > 0 {
            reasons.push(Shortfall::Errors(stats.errors));
        }
        match stats.latency {
            None => reasons.push(Shortfall::NoText),
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
            errors,
        };
        let verdict = |stats: GroupStats| Verdict::of(&stats, 3.0, 1.0);
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
        assert_eq!(Verdict::KeepsUp.to_string(), "ok");
    }
}
