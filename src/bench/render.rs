//! The report as text: markdown tables padded to line up as plain text too, and the
//! one-line summaries printed while the bench runs. `–` stands for a figure that was not
//! measured.

use std::fmt::Write as _;

use super::client::StreamResult;
use super::report::Report;
use super::rounds::RoundResult;
use super::stats::{Summary, GROWTH_MIN_STREAM_SECONDS};
use crate::config::BenchArgs;

pub(super) fn number(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "–".into(), |v| format!("{v:.decimals$}"))
}

pub(super) fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "–".into(), |v| format!("{:.1} %", v * 100.0))
}

/// One line per stream, for --verbose and errors.
pub(super) fn stream_line(s: &StreamResult) -> String {
    let latency = Summary::of(&s.messages.iter().map(|m| m.latency).collect::<Vec<_>>());
    let mut line = format!(
        "client {} {} ({:.1} s): {} msgs, latency mean {} p90 {} max {} s, first text {} s, \
         growth {} s, eos→done {} s, WER {}",
        s.client,
        s.file,
        s.audio_seconds,
        s.messages.len(),
        number(latency.map(|l| l.mean), 2),
        number(latency.map(|l| l.p90), 2),
        number(latency.map(|l| l.max), 2),
        number(s.first_text, 2),
        number(s.growth, 2),
        number(s.eos_to_done, 2),
        percent(
            s.word_errors
                .zip(s.reference_words)
                .map(|(e, w)| e as f64 / w.max(1) as f64)
        ),
    );
    if !s.errors.is_empty() {
        let _ = write!(line, "; ERRORS: {}", s.errors.join("; "));
    }
    line
}

pub(super) fn round_line(r: &RoundResult) -> String {
    let l = r.overall.latency;
    format!(
        "{} client(s): latency mean {} p90 {} max {} s, growth {} s, WER {}, server CPU {} s/audio s → {}",
        r.clients,
        number(l.map(|l| l.mean), 2),
        number(l.map(|l| l.p90), 2),
        number(l.map(|l| l.max), 2),
        number(r.overall.growth, 2),
        percent(r.overall.wer),
        number(r.cpu_per_audio_second, 3),
        r.verdict
    )
}

/// A markdown table with padded columns (readable as plain text too). The first column
/// and, with `text_last`, the last are left-aligned; the others hold numbers.
fn table(header: &[&str], rows: &[Vec<String>], text_last: bool) -> String {
    let left = |c: usize| c == 0 || (text_last && c == header.len() - 1);
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .chain([header[c].chars().count(), 3])
                .max()
                .unwrap_or(3)
        })
        .collect();
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                if left(c) {
                    format!("{cell:<w$}", w = widths[c])
                } else {
                    format!("{cell:>w$}", w = widths[c])
                }
            })
            .collect();
        format!("| {} |\n", padded.join(" | "))
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    let rule: Vec<String> = widths
        .iter()
        .enumerate()
        .map(|(c, &w)| {
            if left(c) {
                format!(":{}", "-".repeat(w - 1))
            } else {
                format!("{}:", "-".repeat(w - 1))
            }
        })
        .collect();
    out.push_str(&format!("| {} |\n", rule.join(" | ")));
    for row in rows {
        out.push_str(&line(row.clone()));
    }
    out
}

fn latency_cells(summary: Option<Summary>) -> Vec<String> {
    let field = |f: fn(&Summary) -> f64| number(summary.as_ref().map(f), 2);
    vec![
        summary.map_or(0, |s| s.count).to_string(),
        field(|s| s.mean),
        field(|s| s.p50),
        field(|s| s.p90),
        field(|s| s.max),
    ]
}

pub(super) fn render_markdown(report: &Report, args: &BenchArgs) -> String {
    let meta = &report.meta;
    let info = meta.server_info.as_ref();
    let info_field = |key: &str| {
        info.and_then(|i| i.get(key))
            .map_or_else(|| "?".to_string(), |v| v.to_string())
    };
    let mut out = String::new();
    let _ = writeln!(out, "## reswhis bench, {}\n", meta.date);
    let _ = writeln!(out, "- Command: `{}`", meta.command);
    let _ = writeln!(
        out,
        "- Commit: {}",
        meta.git_commit.as_deref().unwrap_or("unknown")
    );
    let _ = writeln!(
        out,
        "- Machine: {} CPU(s) (nproc), {}",
        meta.nproc,
        meta.cpu_model.as_deref().unwrap_or("unknown CPU")
    );
    let _ = writeln!(
        out,
        "- Server: {} — model {}, {} worker(s) × {} thread(s), min chunk {} s, buffer trimmed \
         past {} s keeping {} s of context, beam {}, {} audio ctx",
        if args.url.is_some() {
            format!("{} (as running)", meta.server)
        } else {
            "`reswhis serve` as a child process, fresh for every round".to_string()
        },
        info.and_then(|i| i["model_size"].as_str())
            .unwrap_or(&meta.model),
        info_field("workers"),
        info_field("threads_per_worker"),
        info_field("minimum_chunk_size"),
        info_field("buffer_trimming_sec"),
        info_field("trim_context_sec"),
        info_field("beam_size"),
        if meta.full_audio_ctx {
            "full"
        } else {
            "fitted"
        },
    );
    let _ = writeln!(
        out,
        "- Audio: {} file(s), {:.1} s; each client streams every file (client c starts at \
         file c), in real time, {} ms frames, a new connection per file",
        meta.files.len(),
        meta.audio_seconds,
        meta.frame_ms
    );
    let _ = writeln!(
        out,
        "- Definitions: *latency* = arrival of a committed message − (stream start + its \
         `to`), where stream start is the capture of the first sample (a frame is sent when \
         its last sample is due); *first text* = stream start → first committed message; \
         *growth* = mean latency of messages ending in the last third of their file − in the \
         first third, over files ≥ {GROWTH_MIN_STREAM_SECONDS} s, pooled; percentiles are \
         nearest-rank; WER = word errors / reference words over all streams (reswhis::wer \
         normalisation); server CPU = user + system seconds of the server process over the \
         round (/info), per second of audio streamed.\n"
    );

    if !report.floors.is_empty() {
        let _ = writeln!(
            out,
            "### Offline floor (whisper.cpp, each file once, whole, {} thread(s), in the bench process)\n",
            meta.floor_threads
        );
        let rows: Vec<Vec<String>> = report
            .floors
            .iter()
            .map(|f| {
                vec![
                    f.mode.clone(),
                    format!("{:.3}", f.rtf),
                    number(f.cpu_per_audio_second, 3),
                    percent(f.wer),
                ]
            })
            .collect();
        out.push_str(&table(
            &["mode", "RTF", "CPU s / audio s", "WER"],
            &rows,
            false,
        ));
        out.push('\n');
    }

    let _ = writeln!(out, "### Streaming (latencies in seconds)\n");
    let rows: Vec<Vec<String>> = report
        .rounds
        .iter()
        .map(|r| {
            let mut row = vec![r.clients.to_string(), r.overall.streams.to_string()];
            row.extend(latency_cells(r.overall.latency));
            row.extend([
                number(r.overall.first_text.map(|f| f.mean), 2),
                number(r.overall.growth, 2),
                percent(r.overall.wer),
                number(r.cpu_per_audio_second, 3),
                r.verdict.clone(),
            ]);
            row
        })
        .collect();
    out.push_str(&table(
        &[
            "clients",
            "streams",
            "msgs",
            "mean",
            "p50",
            "p90",
            "max",
            "first text",
            "growth",
            "WER",
            "server CPU s / audio s",
            "keeps up",
        ],
        &rows,
        true,
    ));
    let _ = writeln!(out, "\nPer client:\n");
    let rows: Vec<Vec<String>> = report
        .rounds
        .iter()
        .flat_map(|r| {
            r.per_client.iter().enumerate().map(move |(c, g)| {
                let mut row = vec![r.clients.to_string(), (c + 1).to_string()];
                row.extend(latency_cells(g.latency));
                row.extend([
                    number(g.first_text.map(|f| f.mean), 2),
                    number(g.growth, 2),
                    percent(g.wer),
                    g.errors.to_string(),
                ]);
                row
            })
        })
        .collect();
    out.push_str(&table(
        &[
            "clients",
            "client",
            "msgs",
            "mean",
            "p50",
            "p90",
            "max",
            "first text",
            "growth",
            "WER",
            "errors",
        ],
        &rows,
        false,
    ));

    let _ = writeln!(out, "\n### Targets\n");
    let tried: Vec<String> = report
        .rounds
        .iter()
        .map(|r| r.clients.to_string())
        .collect();
    let _ = writeln!(
        out,
        "Capacity (largest client count with p90 ≤ {} s, growth ≤ {} s, no errors): {} (rounds run: {})\n",
        meta.latency_limit,
        meta.growth_limit,
        report
            .capacity
            .map_or_else(|| "none".to_string(), |c| c.to_string()),
        tried.join(", ")
    );
    for t in &report.targets {
        let _ = writeln!(out, "    {:<4}  {}: {}", t.status, t.target, t.measured);
    }
    out
}
