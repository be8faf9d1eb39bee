//! Rounds: N clients against one server. Client c streams every file, starting at file c
//! (so the clients send different audio at once), its start offset by c/N s (so their
//! updates are not in step). A round keeps up when its pooled p90 latency and growth are
//! within the limits and no stream had an error; the capacity is the largest client count
//! whose round, and every smaller round run, kept up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::client::{stream_file, StreamResult};
use super::render::stream_line;
use super::server::{RemoteServer, ServerProcess};
use super::stats::{delta, GroupStats};
use super::testset::TestFile;
use super::BoxError;
use crate::config::BenchArgs;

#[derive(Debug, Clone, Serialize)]
pub struct RoundResult {
    pub clients: usize,
    pub wall_seconds: f64,
    /// Server CPU seconds (user + system) over the round, from /info.
    pub server_cpu_seconds: Option<f64>,
    pub cpu_per_audio_second: Option<f64>,
    pub overall: GroupStats,
    pub per_client: Vec<GroupStats>,
    /// p90 within the limit, no growth over the limit, no errors.
    pub pass: bool,
    /// Why it failed, or "ok".
    pub verdict: String,
    /// /info at the start of the round.
    #[serde(skip)]
    pub server_info: Option<serde_json::Value>,
    pub streams: Vec<StreamResult>,
}

/// N clients against a fresh server (or the --url one).
pub(super) fn run_round(
    args: &BenchArgs,
    files: &Arc<Vec<TestFile>>,
    clients: usize,
) -> Result<RoundResult, BoxError> {
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
                            eprintln!("bench:   {}", stream_line(&stream));
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
    let verdict = verdict(&overall, args.latency_limit, args.growth_limit);
    Ok(RoundResult {
        clients,
        wall_seconds,
        server_cpu_seconds,
        cpu_per_audio_second: server_cpu_seconds.map(|c| c / overall.audio_seconds),
        overall,
        per_client,
        pass: verdict == "ok",
        verdict,
        server_info,
        streams,
    })
}

/// "ok", or the reasons a round does not keep up.
pub(super) fn verdict(stats: &GroupStats, latency_limit: f64, growth_limit: f64) -> String {
    let mut reasons = Vec::new();
    if stats.errors > 0 {
        reasons.push(format!("{} error(s)", stats.errors));
    }
    match stats.latency {
        None => reasons.push("no text".to_string()),
        Some(l) if l.p90 > latency_limit => {
            reasons.push(format!("p90 {:.2} s > {latency_limit} s", l.p90))
        }
        Some(_) => {}
    }
    if let Some(g) = stats.growth.filter(|&g| g > growth_limit) {
        reasons.push(format!("growth {g:.2} s > {growth_limit} s"));
    }
    if reasons.is_empty() {
        "ok".into()
    } else {
        reasons.join(", ")
    }
}

/// The largest client count whose round passed, if every smaller round run passed too.
pub(super) fn capacity(rounds: &[RoundResult]) -> Option<usize> {
    let mut sorted: Vec<&RoundResult> = rounds.iter().collect();
    sorted.sort_by_key(|r| r.clients);
    sorted
        .iter()
        .take_while(|r| r.pass)
        .map(|r| r.clients)
        .last()
}

#[cfg(test)]
mod tests {
    use super::super::stats::Summary;
    use super::*;

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
        assert_eq!(verdict(&stats(2.9, Some(0.5), 0), 3.0, 1.0), "ok");
        assert_eq!(verdict(&stats(2.9, None, 0), 3.0, 1.0), "ok");
        assert!(verdict(&stats(3.1, None, 0), 3.0, 1.0).contains("p90"));
        assert!(verdict(&stats(1.0, Some(1.5), 0), 3.0, 1.0).contains("growth"));
        assert!(verdict(&stats(1.0, None, 2), 3.0, 1.0).contains("2 error(s)"));
    }
}
