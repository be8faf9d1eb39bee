//! The report as text. `Display` for [`Report`] writes the markdown section that `--output`
//! appends, composed of one `Display` type per part: [`Header`], [`FloorTable`],
//! [`RoundsTable`], [`ClientsTable`], [`TargetsSection`]. Every part but the last ends
//! with a blank line. Tables are padded so they line up as plain text too (see
//! [`Table`]); `–` stands for a figure that was not measured. A column that no round
//! measured (words in silence in `files`, update timings of a server that does not
//! report them) is left out, and the frame column appears only when several frame sizes
//! ran, so the default report reads as it always has.

use std::fmt;

use super::report::{GroupStats, Report, RoundResult, ServerUnderTest, Summary};
use super::rounds::capacity;
use super::stats::{GROWTH_MIN_STREAM_SECONDS, SILENCE_MARGIN_SECONDS};
use super::table::{number, percent, Table};
use super::targets::judged_frame_ms;
use super::words::WordsSection;
use super::workload::{NOISE_STREAM_SECONDS, PAUSES_MAX_RECORDING_SECONDS};
use crate::config::Scenario;
use crate::scenario::NOISE_FLOOR_DBFS;

impl fmt::Display for Report {
    /// The whole markdown section, from its `##` title to the last target line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", Header(self))?;
        if !self.floors.is_empty() {
            write!(f, "{}", FloorTable(self))?;
        }
        write!(
            f,
            "{}{}{}{}",
            RoundsTable(self),
            ClientsTable(self),
            WordsSection(self),
            TargetsSection(self)
        )
    }
}

/// The frame sizes as the header names them: "100" or "20, 100".
fn frame_list(frames: &[u64]) -> String {
    let frames: Vec<String> = frames.iter().map(u64::to_string).collect();
    frames.join(", ")
}

/// The title, and what was measured how: command, commit, machine, server, audio, other
/// load and the definitions of the figures.
pub(super) struct Header<'a>(pub(super) &'a Report);

impl fmt::Display for Header<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let meta = &self.0.meta;
        let info = meta.server_info.as_ref();
        let details = info.and_then(|i| i.details.as_ref());
        // Numbers as /info's JSON writes them ("1.0", not "1").
        let json = |value: Option<serde_json::Value>| {
            value.map_or_else(|| "?".to_string(), |v| v.to_string())
        };
        writeln!(f, "## reswhis bench, {}\n", meta.date)?;
        writeln!(f, "- Command: `{}`", meta.command)?;
        writeln!(
            f,
            "- Commit: {}",
            meta.git_commit.as_deref().unwrap_or("unknown")
        )?;
        writeln!(
            f,
            "- Machine: {} CPU(s) (nproc), {}",
            meta.nproc,
            meta.cpu_model.as_deref().unwrap_or("unknown CPU")
        )?;
        writeln!(
            f,
            "- Server: {} — model {} ({} weights), {} worker(s) × {} thread(s), min chunk {} s, \
             buffer trimmed past {} s keeping {} s of context, beam {}, {} audio ctx{}",
            match &meta.server {
                ServerUnderTest::Remote(url) => format!("{url} (as running)"),
                ServerUnderTest::Child =>
                    "`reswhis serve` as a child process, fresh for every round".to_string(),
            },
            info.map_or(meta.model.as_str(), |i| i.model_size.as_str()),
            details.map_or("?", |d| d.weights.as_str()),
            json(details.map(|d| d.workers.into())),
            json(details.map(|d| d.threads_per_worker.into())),
            json(info.map(|i| i.minimum_chunk_size.into())),
            json(details.map(|d| d.buffer_trimming_sec.into())),
            json(details.map(|d| d.trim_context_sec.into())),
            json(details.map(|d| d.beam_size.into())),
            if meta.full_audio_ctx {
                "full"
            } else {
                "fitted"
            },
            if meta.vac == Some(true) {
                ", voice activity controller (VAC) on"
            } else {
                ""
            },
        )?;
        let frames = frame_list(&meta.frame_ms);
        match meta.scenario {
            Scenario::Files => writeln!(
                f,
                "- Audio: {} file(s), {:.1} s; each client streams every file (client c starts \
                 at file c), in real time, {frames} ms frames, a new connection per file",
                meta.files.len(),
                meta.audio_seconds,
            )?,
            Scenario::Pauses => writeln!(
                f,
                "- Audio: scenario `pauses`: the {} recording(s) under \
                 {PAUSES_MAX_RECORDING_SECONDS} s with a reference, {:.1} s of speech; client c \
                 streams them all as one stream, starting at recording c, joined with 2–8 s \
                 pauses (seeded by c) over pink noise at {NOISE_FLOOR_DBFS} dBFS throughout, in \
                 real time, {frames} ms frames, on one connection",
                meta.files.len(),
                meta.audio_seconds,
            )?,
            Scenario::Noise => writeln!(
                f,
                "- Audio: scenario `noise`: client c streams {NOISE_STREAM_SECONDS} s of pink \
                 noise at {NOISE_FLOOR_DBFS} dBFS with a cough and a click (seeded by c), where \
                 nobody speaks (the reference is empty), in real time, {frames} ms frames, on \
                 one connection"
            )?,
        }
        if meta.busy_cores > 0 {
            writeln!(
                f,
                "- Load: {} process(es) busy-looping on the CPU (`reswhis spin`) beside the \
                 server during the rounds (not during the floor)",
                meta.busy_cores
            )?;
        }
        write!(
            f,
            "- Definitions: *latency* = arrival of a committed message − (stream start + its \
             `to`), where stream start is the capture of the first sample (a frame is sent \
             when its last sample is due); *first text* = stream start → first committed \
             message; *growth* = mean latency of messages ending in the last third of their \
             file − in the first third, over files ≥ {GROWTH_MIN_STREAM_SECONDS} s, pooled; \
             percentiles are nearest-rank; WER = word errors / reference words over all \
             streams (reswhis::wer normalisation); server CPU = user + system seconds of the \
             server process over the round (/info), per second of audio streamed."
        )?;
        if self
            .0
            .rounds
            .iter()
            .any(|r| r.overall.silence_words.is_some())
        {
            write!(
                f,
                " *Words in silence* = words of the committed messages whose [from, to] \
                 overlaps no recording widened by {SILENCE_MARGIN_SECONDS} s on each side (in \
                 `noise`, every committed word)."
            )?;
        }
        if self.0.rounds.iter().any(|r| r.server_stats.is_some()) {
            write!(
                f,
                " *Max update* = the longest update (one transcription and what it commits) \
                 and *updates cut* = updates cut short by the server's time budget, from the \
                 server's /info after the round."
            )?;
        }
        writeln!(f, "\n")
    }
}

/// The offline floors: one row per mode (full, fitted ctx).
pub(super) struct FloorTable<'a>(pub(super) &'a Report);

impl fmt::Display for FloorTable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let report = self.0;
        let what = match report.meta.scenario {
            Scenario::Files => "each file once".to_string(),
            _ => {
                let names: Vec<&str> = report.floors[0]
                    .files
                    .iter()
                    .map(|f| f.file.as_str())
                    .collect();
                format!("the streams {} once each", names.join(", "))
            }
        };
        writeln!(
            f,
            "### Offline floor (whisper.cpp, {what}, whole, {} thread(s), in the bench \
             process)\n",
            report.meta.floor_threads
        )?;
        let rows = report.floors.iter().map(|floor| {
            vec![
                floor.mode.clone(),
                format!("{:.3}", floor.rtf),
                number(floor.cpu_per_audio_second, 3),
                percent(floor.wer),
            ]
        });
        let table = Table::new(&["mode", "RTF", "CPU s / audio s", "WER"], rows, false);
        writeln!(f, "{table}")
    }
}

/// Which of the optional columns a report's tables have.
struct Columns {
    /// More than one frame size ran.
    frame: bool,
    /// Some round counted words in silence (the scenarios).
    silence: bool,
    /// Some round's server reported its update timings.
    updates: bool,
}

impl Columns {
    fn of(report: &Report) -> Columns {
        let rounds = &report.rounds;
        Columns {
            frame: report.meta.frame_ms.len() > 1
                || rounds.iter().any(|r| r.frame_ms != rounds[0].frame_ms),
            silence: rounds.iter().any(|r| r.overall.silence_words.is_some()),
            updates: rounds.iter().any(|r| r.server_stats.is_some()),
        }
    }
}

/// The figures of a group shared by both tables: msgs, mean, p50, p90, max, first text,
/// growth, WER and, when the tables have that column, words in silence.
fn group_cells(group: &GroupStats, columns: &Columns) -> Vec<String> {
    let mut cells = latency_cells(group.latency);
    cells.extend([
        number(group.first_text.map(|t| t.mean), 2),
        number(group.growth, 2),
        percent(group.wer),
    ]);
    if columns.silence {
        cells.push(
            group
                .silence_words
                .map_or_else(|| "–".into(), |w| w.to_string()),
        );
    }
    cells
}

/// The headers of [`group_cells`].
fn group_header(columns: &Columns) -> Vec<&'static str> {
    let mut header = vec![
        "msgs",
        "mean",
        "p50",
        "p90",
        "max",
        "first text",
        "growth",
        "WER",
    ];
    if columns.silence {
        header.push("words in silence");
    }
    header
}

/// The first cells of a row: the frame size (when several ran) and the client count.
fn round_cells(round: &RoundResult, columns: &Columns) -> Vec<String> {
    let mut cells = Vec::new();
    if columns.frame {
        cells.push(format!("{} ms", round.frame_ms));
    }
    cells.push(round.clients.to_string());
    cells
}

/// The headers of [`round_cells`].
fn round_header(columns: &Columns) -> Vec<&'static str> {
    if columns.frame {
        vec!["frame", "clients"]
    } else {
        vec!["clients"]
    }
}

/// The streaming rounds: one row per round, with its verdict.
pub(super) struct RoundsTable<'a>(pub(super) &'a Report);

impl fmt::Display for RoundsTable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "### Streaming (latencies in seconds)\n")?;
        let columns = Columns::of(self.0);
        let rows = self.0.rounds.iter().map(|round| {
            let mut row = round_cells(round, &columns);
            row.push(round.overall.streams.to_string());
            row.extend(group_cells(&round.overall, &columns));
            row.push(number(round.cpu_per_audio_second, 3));
            if columns.updates {
                let stats = round.server_stats.as_ref();
                let update = stats.and_then(|s| s.update_seconds.as_ref());
                row.push(number(update.and_then(|u| u.max), 2));
                row.push(
                    stats
                        .and_then(|s| s.updates_cut)
                        .map_or_else(|| "–".into(), |n| n.to_string()),
                );
            }
            row.push(round.verdict.to_string());
            row
        });
        let mut header = round_header(&columns);
        header.push("streams");
        header.extend(group_header(&columns));
        header.push("server CPU s / audio s");
        if columns.updates {
            header.extend(["max update s", "updates cut"]);
        }
        header.push("keeps up");
        writeln!(f, "{}", Table::new(&header, rows, true))
    }
}

/// The rounds again, one row per client of each.
pub(super) struct ClientsTable<'a>(pub(super) &'a Report);

impl fmt::Display for ClientsTable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Per client:\n")?;
        let columns = Columns::of(self.0);
        let rows = self.0.rounds.iter().flat_map(|round| {
            let columns = &columns;
            round.per_client.iter().enumerate().map(move |(c, group)| {
                let mut row = round_cells(round, columns);
                row.push((c + 1).to_string());
                row.extend(group_cells(group, columns));
                row.push(group.errors.to_string());
                row
            })
        });
        let mut header = round_header(&columns);
        header.push("client");
        header.extend(group_header(&columns));
        header.push("errors");
        writeln!(f, "{}", Table::new(&header, rows, false))
    }
}

/// The capacity found (at each frame size) and one line per target check.
pub(super) struct TargetsSection<'a>(pub(super) &'a Report);

impl fmt::Display for TargetsSection<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let report = self.0;
        let meta = &report.meta;
        writeln!(f, "### Targets\n")?;
        let at_frame = |frame_ms: u64| {
            let tried: Vec<String> = report
                .rounds
                .iter()
                .filter(|r| r.frame_ms == frame_ms)
                .map(|r| r.clients.to_string())
                .collect();
            let found = capacity(&report.rounds, frame_ms);
            let found = found.map_or_else(|| "none".to_string(), |c| c.to_string());
            (found, tried.join(", "))
        };
        write!(
            f,
            "Capacity (largest client count with p90 ≤ {} s, growth ≤ {} s, no errors): ",
            meta.latency_limit, meta.growth_limit,
        )?;
        if let [_] = meta.frame_ms[..] {
            let (_, tried) = at_frame(meta.frame_ms[0]);
            let found = report
                .capacity
                .map_or_else(|| "none".to_string(), |c| c.to_string());
            writeln!(f, "{found} (rounds run: {tried})\n")?;
        } else {
            let each: Vec<String> = meta
                .frame_ms
                .iter()
                .map(|&frame| {
                    let (found, tried) = at_frame(frame);
                    format!("{found} at {frame} ms (rounds run: {tried})")
                })
                .collect();
            writeln!(f, "{}\n", each.join("; "))?;
            writeln!(
                f,
                "Targets judged on the {} ms rounds:\n",
                judged_frame_ms(&meta.frame_ms)
            )?;
        }
        if report.targets.is_empty() {
            writeln!(
                f,
                "    (no target applies to the {} scenario with these settings)",
                meta.scenario.as_str()
            )?;
        }
        for t in &report.targets {
            writeln!(f, "    {:<4}  {}: {}", t.status, t.target, t.measured)?;
        }
        Ok(())
    }
}

/// Count, mean, p50, p90 and max of a latency summary.
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
