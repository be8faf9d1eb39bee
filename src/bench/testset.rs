//! The test set: every `*.wav` in `--audio` that has a same-named `.txt` reference (or
//! the `--files` given), read once into samples (for the floor) and s16le bytes (for the
//! clients). A file without a reference is still streamed; it only has no WER.

use std::path::PathBuf;

use anyhow::{bail, Context};

use super::report::Span;
use super::words::{parse_alignment, TimedWord};
use crate::audio::{self, read_wav, to_pcm_bytes};
use crate::config::BenchArgs;
use crate::wer::word_errors;

/// One test file, ready to send.
pub(super) struct TestFile {
    /// The file's stem, which names it in the report.
    pub(super) name: String,
    /// Its duration.
    pub(super) seconds: f64,
    /// Its audio, mono, for the floor.
    pub(super) samples: Vec<f32>,
    /// The same audio as s16le bytes, as the clients send it.
    pub(super) pcm: Vec<u8>,
    /// The reference transcript, trimmed, if NAME.txt exists.
    pub(super) reference: Option<String>,
    /// Where speech lies, for the scenario streams (empty: nobody speaks); `None` for a
    /// test file, where it is not known.
    pub(super) speech: Option<Vec<Span>>,
    /// Its words' times from a forced alignment (NAME.words.tsv), if there is one.
    pub(super) alignment: Option<Vec<TimedWord>>,
}

impl TestFile {
    /// A test file of `samples`, with their s16le bytes.
    pub(super) fn new(
        name: String,
        samples: Vec<f32>,
        reference: Option<String>,
        speech: Option<Vec<Span>>,
    ) -> TestFile {
        TestFile {
            name,
            seconds: audio::seconds(samples.len()),
            pcm: to_pcm_bytes(&samples),
            samples,
            reference,
            speech,
            alignment: None,
        }
    }
}

/// The test set of `args`, files sorted by path (or in --files order).
pub(super) fn load_test_set(args: &BenchArgs) -> anyhow::Result<Vec<TestFile>> {
    let paths: Vec<PathBuf> = if args.files.is_empty() {
        let entries = std::fs::read_dir(&args.audio).with_context(|| {
            format!(
                "cannot read {} (run bench/fetch-audio.sh, or pass --files)",
                args.audio.display()
            )
        })?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "wav"))
            .filter(|p| {
                let has_text = p.with_extension("txt").is_file();
                if !has_text {
                    eprintln!("bench: skipping {} (no .txt reference)", p.display());
                }
                has_text
            })
            .collect();
        paths.sort();
        paths
    } else {
        args.files.clone()
    };
    if paths.is_empty() {
        bail!("no test audio in {}", args.audio.display());
    }
    paths
        .iter()
        .map(|path| {
            let samples = read_wav(path)?;
            let reference = std::fs::read_to_string(path.with_extension("txt"))
                .ok()
                .map(|t| t.trim().to_string());
            if reference.is_none() {
                eprintln!("bench: {} has no .txt reference; no WER", path.display());
            }
            let name = path.file_stem().map_or_else(
                || path.display().to_string(),
                |s| s.to_string_lossy().into(),
            );
            let mut file = TestFile::new(name, samples, reference, None);
            file.alignment = std::fs::read_to_string(path.with_extension("words.tsv"))
                .ok()
                .and_then(|text| parse_alignment(&text));
            Ok(file)
        })
        .collect()
}

/// Word errors and reference words of a transcript, if the file has a reference.
pub(super) fn score(file: &TestFile, transcript: &str) -> Option<(usize, usize)> {
    file.reference
        .as_deref()
        .map(|r| word_errors(r, transcript))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Cli, Command};
    use crate::error_line;
    use clap::Parser;

    #[test]
    fn a_missing_audio_directory_says_how_to_get_one() {
        let cli = Cli::try_parse_from(["reswhis", "bench", "--audio", "/nonexistent/audio"]);
        let Some(Command::Bench(args)) = cli.unwrap().command else {
            unreachable!("bench args")
        };
        let error = error_line(&load_test_set(&args).err().unwrap());
        assert!(
            error.starts_with(
                "cannot read /nonexistent/audio (run bench/fetch-audio.sh, or pass --files): "
            ),
            "{error}"
        );
        assert!(error.contains("No such file"), "{error}");
    }
}
