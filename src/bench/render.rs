//! The report as text. `Display` for [`Report`] writes the markdown section that `--output`
//! appends, composed of one `Display` type per part: [`Header`], [`FloorTable`],
//! [`RoundsTable`], [`ClientsTable`], [`TargetsSection`]. Every part but the last ends
//! with a blank line. Tables are padded so they line up as plain text too; `–` stands for
//! a figure that was not measured. [`StreamLine`] and [`RoundLine`] are the progress
//! lines printed while the bench runs.

use std::fmt;

use super::report::{Report, RoundResult, ServerUnderTest, StreamResult, Summary};
use super::stats::GROWTH_MIN_STREAM_SECONDS;

/// `value` with `decimals` decimals, or "–".
pub(super) fn number(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "–".into(), |v| format!("{v:.decimals$}"))
}

/// A fraction as a percentage with one decimal ("7.3 %"), or "–".
pub(super) fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "–".into(), |v| format!("{:.1} %", v * 100.0))
}

impl fmt::Display for Report {
    /// The whole markdown section, from its `##` title to the last target line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", Header(self))?;
        if !self.floors.is_empty() {
            write!(f, "{}", FloorTable(self))?;
        }
        write!(
            f,
            "{}{}{}",
            RoundsTable(self),
            ClientsTable(self),
            TargetsSection(self)
        )
    }
}

/// The title, and what was measured how: command, commit, machine, server, audio and the
/// definitions of the figures.
pub(super) struct Header<'a>(pub(super) &'a Report);

impl fmt::Display for Header<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let meta = &self.0.meta;
        let info = meta.server_info.as_ref();
        let info_field = |key: &str| {
            info.and_then(|i| i.get(key))
                .map_or_else(|| "?".to_string(), |v| v.to_string())
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
            "- Server: {} — model {}, {} worker(s) × {} thread(s), min chunk {} s, buffer \
             trimmed past {} s keeping {} s of context, beam {}, {} audio ctx",
            match &meta.server {
                ServerUnderTest::Remote(url) => format!("{url} (as running)"),
                ServerUnderTest::Child =>
                    "`reswhis serve` as a child process, fresh for every round".to_string(),
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
        )?;
        writeln!(
            f,
            "- Audio: {} file(s), {:.1} s; each client streams every file (client c starts at \
             file c), in real time, {} ms frames, a new connection per file",
            meta.files.len(),
            meta.audio_seconds,
            meta.frame_ms
        )?;
        writeln!(
            f,
            "- Definitions: *latency* = arrival of a committed message − (stream start + its \
             `to`), where stream start is the capture of the first sample (a frame is sent \
             when its last sample is due); *first text* = stream start → first committed \
             message; *growth* = mean latency of messages ending in the last third of their \
             file − in the first third, over files ≥ {GROWTH_MIN_STREAM_SECONDS} s, pooled; \
             percentiles are nearest-rank; WER = word errors / reference words over all \
             streams (reswhis::wer normalisation); server CPU = user + system seconds of the \
             server process over the round (/info), per second of audio streamed.\n"
        )
    }
}

/// The offline floors: one row per mode (full, fitted ctx).
pub(super) struct FloorTable<'a>(pub(super) &'a Report);

impl fmt::Display for FloorTable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "### Offline floor (whisper.cpp, each file once, whole, {} thread(s), in the bench \
             process)\n",
            self.0.meta.floor_threads
        )?;
        let rows = self.0.floors.iter().map(|floor| {
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

/// The streaming rounds: one row per round, with its verdict.
pub(super) struct RoundsTable<'a>(pub(super) &'a Report);

impl fmt::Display for RoundsTable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "### Streaming (latencies in seconds)\n")?;
        let rows = self.0.rounds.iter().map(|round| {
            let overall = &round.overall;
            let mut row = vec![round.clients.to_string(), overall.streams.to_string()];
            row.extend(latency_cells(overall.latency));
            row.extend([
                number(overall.first_text.map(|t| t.mean), 2),
                number(overall.growth, 2),
                percent(overall.wer),
                number(round.cpu_per_audio_second, 3),
                round.verdict.to_string(),
            ]);
            row
        });
        let header = [
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
        ];
        writeln!(f, "{}", Table::new(&header, rows, true))
    }
}

/// The rounds again, one row per client of each.
pub(super) struct ClientsTable<'a>(pub(super) &'a Report);

impl fmt::Display for ClientsTable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Per client:\n")?;
        let rows = self.0.rounds.iter().flat_map(|round| {
            round.per_client.iter().enumerate().map(|(c, group)| {
                let mut row = vec![round.clients.to_string(), (c + 1).to_string()];
                row.extend(latency_cells(group.latency));
                row.extend([
                    number(group.first_text.map(|t| t.mean), 2),
                    number(group.growth, 2),
                    percent(group.wer),
                    group.errors.to_string(),
                ]);
                row
            })
        });
        let header = [
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
        ];
        writeln!(f, "{}", Table::new(&header, rows, false))
    }
}

/// The capacity found and one line per target check.
pub(super) struct TargetsSection<'a>(pub(super) &'a Report);

impl fmt::Display for TargetsSection<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let report = self.0;
        let tried: Vec<String> = report
            .rounds
            .iter()
            .map(|r| r.clients.to_string())
            .collect();
        writeln!(f, "### Targets\n")?;
        writeln!(
            f,
            "Capacity (largest client count with p90 ≤ {} s, growth ≤ {} s, no errors): {} \
             (rounds run: {})\n",
            report.meta.latency_limit,
            report.meta.growth_limit,
            report
                .capacity
                .map_or_else(|| "none".to_string(), |c| c.to_string()),
            tried.join(", ")
        )?;
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

/// A markdown table with padded columns (readable as plain text too), each line ending in
/// a newline. The first column and, with `text_last`, the last are left-aligned; the
/// others hold numbers. Every row has one cell per header.
struct Table<'a> {
    header: &'a [&'a str],
    rows: Vec<Vec<String>>,
    text_last: bool,
    /// Characters per column: its longest cell, header included, and at least 3.
    widths: Vec<usize>,
}

impl<'a> Table<'a> {
    fn new(
        header: &'a [&'a str],
        rows: impl IntoIterator<Item = Vec<String>>,
        text_last: bool,
    ) -> Self {
        let rows: Vec<Vec<String>> = rows.into_iter().collect();
        let widths = (0..header.len())
            .map(|c| {
                rows.iter()
                    .map(|r| r[c].chars().count())
                    .chain([header[c].chars().count(), 3])
                    .max()
                    .unwrap_or(3)
            })
            .collect();
        Table {
            header,
            rows,
            text_last,
            widths,
        }
    }

    fn left(&self, column: usize) -> bool {
        column == 0 || (self.text_last && column == self.header.len() - 1)
    }

    fn line<'c>(
        &self,
        f: &mut fmt::Formatter<'_>,
        cells: impl Iterator<Item = &'c str>,
    ) -> fmt::Result {
        f.write_str("|")?;
        for (c, cell) in cells.enumerate() {
            let w = self.widths[c];
            if self.left(c) {
                write!(f, " {cell:<w$} |")?;
            } else {
                write!(f, " {cell:>w$} |")?;
            }
        }
        writeln!(f)
    }
}

impl fmt::Display for Table<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.line(f, self.header.iter().copied())?;
        let rule: Vec<String> = (0..self.header.len())
            .map(|c| {
                let dashes = "-".repeat(self.widths[c] - 1);
                if self.left(c) {
                    format!(":{dashes}")
                } else {
                    format!("{dashes}:")
                }
            })
            .collect();
        self.line(f, rule.iter().map(String::as_str))?;
        for row in &self.rows {
            self.line(f, row.iter().map(String::as_str))?;
        }
        Ok(())
    }
}

/// One line per stream, for --verbose and errors.
pub(super) struct StreamLine<'a>(pub(super) &'a StreamResult);

impl fmt::Display for StreamLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        let latency = Summary::of(&s.messages.iter().map(|m| m.latency).collect::<Vec<_>>());
        write!(
            f,
            "client {} {} ({:.1} s): {} msgs, latency mean {} p90 {} max {} s, first text {} \
             s, growth {} s, eos→done {} s, WER {}",
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
        )?;
        if !s.errors.is_empty() {
            write!(f, "; ERRORS: {}", s.errors.join("; "))?;
        }
        Ok(())
    }
}

/// One line per round, as it ends.
pub(super) struct RoundLine<'a>(pub(super) &'a RoundResult);

impl fmt::Display for RoundLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        let l = r.overall.latency;
        write!(
            f,
            "{} client(s): latency mean {} p90 {} max {} s, growth {} s, WER {}, server CPU {} \
             s/audio s → {}",
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
}
