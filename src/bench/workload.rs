//! What the clients of a round stream (`--scenario`), and what the floor transcribes.
//!
//! - `files`: the test set. Client c streams every file, starting at file c, one
//!   connection per file; the floor transcribes every file.
//! - `pauses`: the test recordings shorter than [`PAUSES_MAX_RECORDING_SECONDS`] that have
//!   a reference, joined into one stream with 2–8 s pauses over pink noise
//!   ([`scenario::join_with_pauses`]). Variant v (from 1) starts at recording v − 1
//!   (rotated) and seeds its pauses and noise with [`seed`]`(v)`; its reference is the
//!   recordings' references joined, its speech regions the recordings' places.
//! - `noise`: variant v is [`NOISE_STREAM_SECONDS`] of [`scenario::noise_only`] seeded
//!   with [`seed`]`(v)`; its reference is empty and it has no speech regions.
//!
//! Invariants: in the scenarios, client c streams variant c, one connection, so clients
//! do not speak in step (variants cycle past [`MAX_VARIANTS`] clients); a variant is
//! the same samples every time it is asked for (deterministic, and generated once); the
//! floor transcribes variants 1..=[`FLOOR_VARIANTS`], the streams of clients 1 and 2,
//! so the streaming WER of those clients is compared with the floor's on the same audio.

use std::sync::Arc;

use anyhow::bail;

use super::report::Span;
use super::testset::{load_test_set, TestFile};
use crate::audio;
use crate::config::{BenchArgs, Scenario};
use crate::scenario;

/// The `pauses` scenario joins the recordings shorter than this, in seconds.
pub const PAUSES_MAX_RECORDING_SECONDS: f64 = 30.0;
/// Seconds of one `noise` stream.
pub const NOISE_STREAM_SECONDS: f64 = 60.0;
/// The scenario variants the floor transcribes: 1..=this, the streams of clients 1 and 2.
pub const FLOOR_VARIANTS: usize = 2;
/// Most distinct scenario variants generated; client c streams variant
/// (c − 1) mod this + 1 (a `pauses` variant holds about 190 s of audio, ~18 MB).
pub const MAX_VARIANTS: usize = 32;

/// The audio of a run: the test set, and the scenario streams made so far.
pub(super) struct Workload {
    scenario: Scenario,
    /// `files`: the test set; `pauses`: the recordings its streams are made of;
    /// `noise`: none.
    recordings: Vec<Arc<TestFile>>,
    /// Variant v at index v − 1, generated when first asked for.
    variants: Vec<Arc<TestFile>>,
}

impl Workload {
    /// Loads what `--scenario` needs from `--audio`/`--files` (nothing for `noise`).
    pub(super) fn load(args: &BenchArgs) -> anyhow::Result<Workload> {
        let recordings = match args.scenario {
            Scenario::Noise => Vec::new(),
            Scenario::Files => load_test_set(args)?,
            Scenario::Pauses => {
                let usable: Vec<TestFile> = load_test_set(args)?
                    .into_iter()
                    .filter(|f| f.reference.is_some() && f.seconds < PAUSES_MAX_RECORDING_SECONDS)
                    .collect();
                if usable.is_empty() {
                    bail!(
                        "no recording under {PAUSES_MAX_RECORDING_SECONDS} s with a .txt \
                         reference for the pauses scenario"
                    );
                }
                usable
            }
        };
        Ok(Workload::new(
            args.scenario,
            recordings.into_iter().map(Arc::new).collect(),
        ))
    }

    fn new(scenario: Scenario, recordings: Vec<Arc<TestFile>>) -> Workload {
        Workload {
            scenario,
            recordings,
            variants: Vec::new(),
        }
    }

    /// The test files (`files`) or the recordings the `pauses` streams are made of.
    pub(super) fn recordings(&self) -> &[Arc<TestFile>] {
        &self.recordings
    }

    /// What the offline floor transcribes: every test file, or variants
    /// 1..=[`FLOOR_VARIANTS`].
    pub(super) fn floor_set(&mut self) -> Vec<Arc<TestFile>> {
        match self.scenario {
            Scenario::Files => self.recordings.clone(),
            _ => (1..=FLOOR_VARIANTS).map(|v| self.variant(v)).collect(),
        }
    }

    /// What each of `clients` clients streams, client 1 first, in the order it sends.
    pub(super) fn plan(&mut self, clients: usize) -> Vec<Vec<Arc<TestFile>>> {
        (0..clients)
            .map(|c| match self.scenario {
                Scenario::Files => {
                    let n = self.recordings.len();
                    (0..n)
                        .map(|i| Arc::clone(&self.recordings[(c + i) % n]))
                        .collect()
                }
                _ => vec![self.variant(c % MAX_VARIANTS + 1)],
            })
            .collect()
    }

    /// Variant `v` (from 1) of the scenario, generated on first use.
    fn variant(&mut self, v: usize) -> Arc<TestFile> {
        while self.variants.len() < v {
            let next = self.variants.len() + 1;
            let file = match self.scenario {
                Scenario::Pauses => pauses_variant(&self.recordings, next),
                _ => noise_variant(next),
            };
            self.variants.push(Arc::new(file));
        }
        Arc::clone(&self.variants[v - 1])
    }
}

/// The noise seed of variant `v`: v scattered over 32 bits (Knuth's multiplicative
/// hash). xorshift's first draws from small seeds are nearly equal (seeds 1 to 5 all
/// give a first pause of 2.0 s), so v itself would make the clients' pauses alike.
pub(super) fn seed(v: usize) -> u32 {
    (v as u32).wrapping_mul(0x9E37_79B9)
}

/// Variant `v` of `pauses`: the recordings from number v − 1 on (rotated), joined with
/// pauses seeded by [`seed`]`(v)`.
pub(super) fn pauses_variant(recordings: &[Arc<TestFile>], v: usize) -> TestFile {
    let n = recordings.len();
    let parts: Vec<(Vec<f32>, String)> = (0..n)
        .map(|i| {
            let file = &recordings[(v - 1 + i) % n];
            let text = file.reference.clone().unwrap_or_default();
            (file.samples.clone(), text)
        })
        .collect();
    let joined = scenario::join_with_pauses(&parts, seed(v));
    let speech = joined
        .speech
        .iter()
        .map(|&(start, end)| Span {
            start: audio::seconds(start),
            end: audio::seconds(end),
        })
        .collect();
    TestFile::new(
        format!("pauses-{v}"),
        joined.audio,
        Some(joined.reference),
        Some(speech),
    )
}

/// Variant `v` of `noise`: nobody speaks, so the reference is empty.
pub(super) fn noise_variant(v: usize) -> TestFile {
    let samples = scenario::noise_only(NOISE_STREAM_SECONDS, seed(v));
    TestFile::new(
        format!("noise-{v}"),
        samples,
        Some(String::new()),
        Some(Vec::new()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recording(name: &str, seconds: f64, level: f32) -> Arc<TestFile> {
        let samples = vec![level; audio::samples(seconds)];
        Arc::new(TestFile::new(
            name.into(),
            samples,
            Some(format!("{name} said")),
            None,
        ))
    }

    fn pauses() -> Workload {
        let recordings = vec![
            recording("a", 1.0, 0.25),
            recording("b", 2.0, -0.25),
            recording("c", 0.5, 0.5),
        ];
        Workload::new(Scenario::Pauses, recordings)
    }

    #[test]
    fn pauses_variants_rotate_the_recordings_and_differ_per_client() {
        let mut workload = pauses();
        let plan = workload.plan(4);
        assert!(plan.iter().all(|streams| streams.len() == 1));
        let [one, two, three, four] = [0, 1, 2, 3].map(|c| Arc::clone(&plan[c][0]));
        assert_eq!(one.name, "pauses-1");
        assert_eq!(one.reference.as_deref(), Some("a said b said c said"));
        assert_eq!(two.reference.as_deref(), Some("b said c said a said"));
        assert_eq!(
            four.reference, one.reference,
            "three recordings: rotation cycles"
        );
        // Speech regions: the recordings' lengths, in order, from 1 s in.
        let lengths = |f: &TestFile| -> Vec<f64> {
            let speech = f.speech.as_ref().unwrap();
            // To the millisecond: the spans are sample counts / 16 000.
            let ms = |seconds: f64| (seconds * 1000.0).round() / 1000.0;
            speech.iter().map(|s| ms(s.end - s.start)).collect()
        };
        assert_eq!(lengths(&one), [1.0, 2.0, 0.5]);
        assert_eq!(lengths(&two), [2.0, 0.5, 1.0]);
        assert_eq!(one.speech.as_ref().unwrap()[0].start, 1.0);
        // The first pause differs between clients (it would be 2.0 s for seeds 1 to 5).
        let first_pause = |f: &TestFile| {
            let speech = f.speech.as_ref().unwrap();
            speech[1].start - speech[0].end
        };
        let gaps: Vec<f64> = [&one, &two, &three, &four].map(|f| first_pause(f)).into();
        assert!(gaps.iter().all(|p| (2.0..8.0).contains(p)), "{gaps:?}");
        let spread =
            gaps.iter().fold(0.0f64, |m, p| m.max(*p)) - gaps.iter().fold(8.0f64, |m, p| m.min(*p));
        assert!(spread > 1.0, "{gaps:?}");
        // Same recordings, other pauses: client 4's stream is not client 1's.
        assert_ne!(one.samples, four.samples);
        assert_ne!(one.speech, four.speech);
        assert_ne!(two.samples.len(), three.samples.len());
        // Deterministic: a fresh workload makes the same streams.
        let again = pauses().plan(2);
        assert_eq!(again[0][0].samples, one.samples);
        assert_eq!(again[1][0].pcm, two.pcm);
        assert_eq!(again[1][0].speech, two.speech);
        // Asked again, the same Arc: generated once.
        assert!(Arc::ptr_eq(&workload.plan(1)[0][0], &one));
    }

    #[test]
    fn the_floor_transcribes_the_streams_of_clients_one_and_two() {
        let mut workload = pauses();
        let floor: Vec<String> = workload
            .floor_set()
            .iter()
            .map(|f| f.name.clone())
            .collect();
        assert_eq!(floor, ["pauses-1", "pauses-2"]);
        let plan = workload.plan(2);
        assert_eq!(plan[1][0].name, "pauses-2");
    }

    #[test]
    fn noise_variants_are_a_minute_of_nobody_speaking_each_its_own() {
        let mut workload = Workload::new(Scenario::Noise, Vec::new());
        let plan = workload.plan(2);
        let (one, two) = (&plan[0][0], &plan[1][0]);
        assert_eq!(one.seconds, NOISE_STREAM_SECONDS);
        assert_eq!(one.reference.as_deref(), Some(""));
        assert_eq!(one.speech.as_deref(), Some(&[][..]));
        assert_ne!(one.samples, two.samples);
        assert_eq!(noise_variant(1).samples, one.samples);
    }

    #[test]
    fn the_files_scenario_streams_every_file_rotated() {
        let recordings = vec![
            recording("a", 0.1, 0.0),
            recording("b", 0.1, 0.0),
            recording("c", 0.1, 0.0),
        ];
        let mut workload = Workload::new(Scenario::Files, recordings);
        let names = |streams: &[Arc<TestFile>]| -> Vec<String> {
            streams.iter().map(|f| f.name.clone()).collect()
        };
        let plan = workload.plan(2);
        assert_eq!(names(&plan[0]), ["a", "b", "c"]);
        assert_eq!(names(&plan[1]), ["b", "c", "a"]);
        assert_eq!(names(&workload.floor_set()), ["a", "b", "c"]);
        assert!(plan[0][0].speech.is_none());
    }
}
