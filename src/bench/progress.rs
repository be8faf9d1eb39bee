//! The lines printed on stderr while the bench runs: [`StreamLine`] for each stream
//! (with --verbose, or when it had errors) and [`RoundLine`] as each round ends. Not part
//! of the report: their wording may change freely.

use std::fmt;

use super::report::{RoundResult, StreamResult, Summary};
use super::table::{number, percent};

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
        if let Some(words) = s.silence_words {
            write!(f, ", {words} word(s) in silence")?;
        }
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
            "{} client(s), {} ms frames: latency mean {} p90 {} max {} s, growth {} s, WER {}, \
             server CPU {} s/audio s",
            r.clients,
            r.frame_ms,
            number(l.map(|l| l.mean), 2),
            number(l.map(|l| l.p90), 2),
            number(l.map(|l| l.max), 2),
            number(r.overall.growth, 2),
            percent(r.overall.wer),
            number(r.cpu_per_audio_second, 3),
        )?;
        if let Some(words) = r.overall.silence_words {
            write!(f, ", {words} word(s) in silence")?;
        }
        if let Some(update) = r
            .server_stats
            .as_ref()
            .and_then(|s| s.update_seconds.as_ref())
        {
            write!(f, ", longest update {} s", number(update.max, 2))?;
            let short = r
                .server_stats
                .as_ref()
                .and_then(|s| s.update_seconds_short_audio.as_ref());
            if let Some(short) = short {
                write!(f, " ({} s on ≤ 10 s of audio)", number(short.max, 2))?;
            }
        }
        write!(f, " → {}", r.verdict)
    }
}
