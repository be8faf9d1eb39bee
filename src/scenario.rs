//! Streams built from recordings, for the benchmark's scenarios and the tests: speech
//! joined with pauses over a low noise floor, as people talk into an open microphone,
//! and a room where nobody speaks. Everything is deterministic (seeded), so two runs
//! stream the same samples.

use crate::audio::SAMPLE_RATE;

/// A small deterministic random source (xorshift32).
#[derive(Debug, Clone)]
pub struct Noise(u32);

impl Noise {
    /// A source seeded with `seed` (0 is taken as 1).
    pub fn new(seed: u32) -> Noise {
        Noise(seed.max(1))
    }

    /// Uniform in [-1, 1).
    pub fn white(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0 as f32 / u32::MAX as f32 * 2.0 - 1.0
    }

    /// Uniform in [low, high).
    pub fn between(&mut self, low: f64, high: f64) -> f64 {
        low + (self.white() as f64 + 1.0) / 2.0 * (high - low)
    }
}

fn rms(samples: &[f32]) -> f32 {
    (samples.iter().map(|s| s * s).sum::<f32>() / samples.len().max(1) as f32).sqrt()
}

/// Amplitude of a level in dB relative to full scale.
pub fn from_dbfs(dbfs: f32) -> f32 {
    10f32.powf(dbfs / 20.0)
}

/// Pink (1/f) noise at `dbfs` RMS: Paul Kellet's three-pole filter on white noise.
pub fn pink_noise(samples: usize, dbfs: f32, noise: &mut Noise) -> Vec<f32> {
    let (mut b0, mut b1, mut b2) = (0.0f32, 0.0f32, 0.0f32);
    let mut out: Vec<f32> = (0..samples)
        .map(|_| {
            let white = noise.white();
            b0 = 0.99765 * b0 + white * 0.099_046;
            b1 = 0.963 * b1 + white * 0.296_516_4;
            b2 = 0.57 * b2 + white * 1.052_691_3;
            b0 + b1 + b2 + white * 0.1848
        })
        .collect();
    let gain = from_dbfs(dbfs) / rms(&out).max(1e-9);
    out.iter_mut().for_each(|s| *s *= gain);
    out
}

/// A cough-like sound: two bursts of band-limited noise with a sharp attack and a fast
/// decay (250 and 200 ms), peaking at `dbfs`.
pub fn cough(dbfs: f32, noise: &mut Noise) -> Vec<f32> {
    let rate = SAMPLE_RATE as f32;
    let mut out = Vec::new();
    for (length, gap) in [(0.25f32, 0.12f32), (0.2, 0.0)] {
        let n = (length * rate) as usize;
        let (mut low, mut high) = (0.0f32, 0.0f32);
        for i in 0..n {
            let t = i as f32 / rate;
            let envelope = (t / 0.01).min(1.0) * (-t / 0.06).exp();
            // A crude band-pass (about 300-3000 Hz): a low-pass minus a lower low-pass.
            let white = noise.white();
            high += 0.7 * (white - high);
            low += 0.11 * (white - low);
            out.push((high - low) * envelope);
        }
        out.extend(std::iter::repeat_n(0.0, (gap * rate) as usize));
    }
    let peak = out.iter().fold(0.0f32, |m, s| m.max(s.abs())).max(1e-9);
    let gain = from_dbfs(dbfs) / peak;
    out.iter_mut().for_each(|s| *s *= gain);
    out
}

/// A click: a 2 ms decaying impulse at `dbfs`.
pub fn click(dbfs: f32) -> Vec<f32> {
    let amplitude = from_dbfs(dbfs);
    (0..32)
        .map(|i| amplitude * (-(i as f32) / 6.0).exp() * if i % 2 == 0 { 1.0 } else { -1.0 })
        .collect()
}

/// Adds `sound` into `audio` from sample `at` (clipped to the end).
pub fn mix_into(audio: &mut [f32], at: usize, sound: &[f32]) {
    for (out, s) in audio.iter_mut().skip(at).zip(sound) {
        *out = (*out + s).clamp(-1.0, 1.0);
    }
}

/// A stream made of recordings, and where each one lies in it.
#[derive(Debug, Clone)]
pub struct Joined {
    /// The stream, 16 kHz mono.
    pub audio: Vec<f32>,
    /// The recordings' references, joined with spaces.
    pub reference: String,
    /// (start, end) of each recording in the stream, in samples.
    pub speech: Vec<(usize, usize)>,
}

/// The noise floor of the scenarios: about what a laptop microphone picks up in a
/// quiet room.
pub const NOISE_FLOOR_DBFS: f32 = -50.0;

/// Joins `recordings` (samples and reference text), with pauses of 2 to 8 s between
/// them and 1 s before the first and after the last, over pink noise at
/// [`NOISE_FLOOR_DBFS`] throughout.
pub fn join_with_pauses(recordings: &[(Vec<f32>, String)], seed: u32) -> Joined {
    let rate = SAMPLE_RATE as usize;
    let mut noise = Noise::new(seed);
    let mut audio = vec![0.0; rate];
    let mut speech = Vec::new();
    let mut reference = Vec::new();
    for (index, (samples, text)) in recordings.iter().enumerate() {
        if index > 0 {
            let pause = noise.between(2.0, 8.0);
            audio.extend(std::iter::repeat_n(0.0, (pause * rate as f64) as usize));
        }
        speech.push((audio.len(), audio.len() + samples.len()));
        audio.extend_from_slice(samples);
        reference.push(text.trim());
    }
    audio.extend(std::iter::repeat_n(0.0, rate));
    let floor = pink_noise(audio.len(), NOISE_FLOOR_DBFS, &mut noise);
    mix_into(&mut audio, 0, &floor);
    Joined {
        audio,
        reference: reference.join(" "),
        speech,
    }
}

/// `seconds` of a room where nobody speaks: pink noise at [`NOISE_FLOOR_DBFS`], a
/// cough a third of the way in and a click at two thirds.
pub fn noise_only(seconds: f64, seed: u32) -> Vec<f32> {
    let mut noise = Noise::new(seed);
    let length = crate::audio::samples(seconds);
    let mut audio = pink_noise(length, NOISE_FLOOR_DBFS, &mut noise);
    let cough = cough(-20.0, &mut noise);
    mix_into(&mut audio, length / 3, &cough);
    mix_into(&mut audio, 2 * length / 3, &click(-6.0));
    audio
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dbfs(samples: &[f32]) -> f32 {
        20.0 * rms(samples).log10()
    }

    #[test]
    fn pink_noise_has_the_level_asked_for_and_more_low_than_high() {
        let mut noise = Noise::new(7);
        let pink = pink_noise(160_000, -50.0, &mut noise);
        assert!((dbfs(&pink) + 50.0).abs() < 0.01);
        // 1/f: most of the energy is at low frequencies, so a 32-sample moving average
        // (a low-pass below 500 Hz) keeps much of it; of white noise it keeps 1/32 (-15 dB).
        let smooth = |x: &[f32]| -> Vec<f32> {
            x.windows(32)
                .map(|w| w.iter().sum::<f32>() / 32.0)
                .collect()
        };
        let white: Vec<f32> = (0..160_000).map(|_| noise.white()).collect();
        let (pink_loss, white_loss) = (
            dbfs(&pink) - dbfs(&smooth(&pink)),
            dbfs(&white) - dbfs(&smooth(&white)),
        );
        assert!(
            pink_loss < 10.0 && white_loss > 14.0,
            "{pink_loss} {white_loss}"
        );
    }

    #[test]
    fn joined_streams_keep_every_recording_in_order_with_pauses() {
        let a = (vec![0.5f32; 16_000], "one".to_string());
        let b = (vec![-0.5f32; 8_000], "two three".to_string());
        let joined = join_with_pauses(&[a, b], 3);
        assert_eq!(joined.reference, "one two three");
        let [(s0, e0), (s1, e1)] = joined.speech[..] else {
            panic!("{:?}", joined.speech)
        };
        assert_eq!((s0, e0 - s0, e1 - s1), (16_000, 16_000, 8_000));
        let pause = (s1 - e0) as f64 / 16_000.0;
        assert!((2.0..8.0).contains(&pause), "{pause}");
        assert_eq!(joined.audio.len(), e1 + 16_000);
        // The recordings are there, with the noise floor on top.
        assert!((joined.audio[s0 + 100] - 0.5).abs() < 0.02);
        assert!(dbfs(&joined.audio[e0 + 100..s1 - 100]) < -45.0);
        // The same seed gives the same stream.
        let again = join_with_pauses(
            &[
                (vec![0.5f32; 16_000], "one".into()),
                (vec![-0.5f32; 8_000], "two three".into()),
            ],
            3,
        );
        assert_eq!(again.audio, joined.audio);
    }

    #[test]
    fn the_noise_scenario_is_quiet_but_for_a_cough_and_a_click() {
        let audio = noise_only(6.0, 1);
        assert_eq!(audio.len(), 96_000);
        let peak = audio.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        assert!(peak > from_dbfs(-21.0), "{peak}");
        assert!(dbfs(&audio[..30_000]) < -49.0);
    }
}
