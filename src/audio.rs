//! Audio in: raw PCM from the wire, and WAV files for the tools.

use std::path::Path;

/// The only rate Whisper works at, and what clients must send.
pub const SAMPLE_RATE: u32 = 16_000;

/// Bytes of one sample on the wire (s16le).
pub const BYTES_PER_SAMPLE: usize = 2;

/// Bytes of one second of mono s16le audio at [`SAMPLE_RATE`] (32,000).
pub const BYTES_PER_SECOND: usize = SAMPLE_RATE as usize * BYTES_PER_SAMPLE;

/// The duration of `samples` samples at [`SAMPLE_RATE`], in seconds.
pub fn seconds(samples: usize) -> f64 {
    samples as f64 / SAMPLE_RATE as f64
}

/// The whole number of samples in `seconds` at [`SAMPLE_RATE`], rounded down (as the
/// `as` cast does: a negative or NaN duration gives 0), so that a buffer cut at it never
/// holds more than `seconds` of audio. Not an exact inverse of [`seconds`]: `n / 16000`
/// is rarely exact in binary, and `samples(seconds(n))` is `n - 1` for about 1 % of `n`.
pub fn samples(seconds: f64) -> usize {
    (seconds * SAMPLE_RATE as f64) as usize
}

/// Decodes a stream of s16le mono bytes that arrives in pieces of any size. A piece with
/// an odd number of bytes leaves its last byte for the next one.
#[derive(Debug, Default)]
pub struct PcmDecoder {
    carry: Option<u8>,
}

impl PcmDecoder {
    /// A decoder with no half sample pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the samples in `bytes` to `out`, scaled to -1.0..1.0.
    pub fn decode(&mut self, mut bytes: &[u8], out: &mut Vec<f32>) {
        if bytes.is_empty() {
            return;
        }
        if let Some(low) = self.carry.take() {
            out.push(sample_to_f32(i16::from_le_bytes([low, bytes[0]])));
            bytes = &bytes[1..];
        }
        let mut pairs = bytes.chunks_exact(2);
        out.extend(
            pairs
                .by_ref()
                .map(|pair| sample_to_f32(i16::from_le_bytes([pair[0], pair[1]]))),
        );
        self.carry = pairs.remainder().first().copied();
    }

    /// True when half a sample is waiting for its other byte.
    pub fn has_partial_sample(&self) -> bool {
        self.carry.is_some()
    }
}

/// One 16-bit PCM sample scaled to -1.0..1.0.
pub fn sample_to_f32(sample: i16) -> f32 {
    sample as f32 / 32768.0
}

/// Why a WAV file cannot be used.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // the fields are named in each variant's doc and message
pub enum WavError {
    /// The file cannot be read or is not a WAV file.
    #[error("cannot read WAV file {path}: {source}")]
    Read { path: String, source: hound::Error },
    /// The file is not sampled at 16 kHz.
    #[error(
        "{path} is {rate} Hz; reswhis needs 16000 Hz audio \
         (convert with: ffmpeg -i IN -ar 16000 -ac 1 OUT.wav)"
    )]
    SampleRate { path: String, rate: u32 },
    /// The samples are neither 16-bit integers nor 32-bit floats.
    #[error("{path} holds {bits}-bit {format:?} samples; use 16-bit PCM or 32-bit float")]
    Format {
        path: String,
        bits: u16,
        format: hound::SampleFormat,
    },
}

/// Reads a 16 kHz WAV file (16-bit PCM or 32-bit float, any channel count, mixed down to
/// mono) into samples scaled to -1.0..1.0.
pub fn read_wav(path: &Path) -> Result<Vec<f32>, WavError> {
    let name = path.display().to_string();
    let read_err = |source| WavError::Read {
        path: name.clone(),
        source,
    };
    let mut reader = hound::WavReader::open(path).map_err(read_err)?;
    let spec = reader.spec();
    if spec.sample_rate != SAMPLE_RATE {
        return Err(WavError::SampleRate {
            path: name,
            rate: spec.sample_rate,
        });
    }
    let interleaved: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Int, 16) => reader
            .samples::<i16>()
            .map(|s| s.map(sample_to_f32))
            .collect::<Result<_, _>>()
            .map_err(read_err)?,
        (hound::SampleFormat::Float, 32) => reader
            .samples::<f32>()
            .collect::<Result<_, _>>()
            .map_err(read_err)?,
        (format, bits) => {
            return Err(WavError::Format {
                path: name,
                bits,
                format,
            })
        }
    };
    let channels = spec.channels.max(1) as usize;
    Ok(interleaved
        .chunks(channels)
        .map(|frame| frame.iter().sum::<f32>() / frame.len() as f32)
        .collect())
}

/// Converts samples back to s16le bytes, as a client sends them.
pub fn to_pcm_bytes(samples: &[f32]) -> Vec<u8> {
    samples
        .iter()
        .flat_map(|&s| ((s * 32768.0).round().clamp(-32768.0, 32767.0) as i16).to_le_bytes())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(bytes: &[u8], piece: usize) -> Vec<f32> {
        let mut decoder = PcmDecoder::new();
        let mut out = Vec::new();
        for chunk in bytes.chunks(piece) {
            decoder.decode(chunk, &mut out);
        }
        out
    }

    #[test]
    fn samples_and_seconds_convert_at_the_sample_rate() {
        assert_eq!(BYTES_PER_SECOND, 32_000);
        assert_eq!(seconds(16_000), 1.0);
        assert_eq!(seconds(8_000), 0.5);
        assert_eq!(samples(2.0), 32_000);
        assert_eq!(samples(0.1), 1_600);
        // Rounded down: 1.5 samples are 1.
        assert_eq!(samples(1.5 / 16_000.0), 1);
        assert_eq!(samples(-1.0), 0);
        // Rounding down is not an inverse of `seconds`.
        assert_eq!(samples(seconds(1_000)), 1_000);
        assert_eq!(samples(seconds(1_001)), 1_000);
    }

    #[test]
    fn decodes_little_endian_and_scales() {
        let bytes = [0x00, 0x80, 0xff, 0x7f, 0x00, 0x00, 0x00, 0x40];
        assert_eq!(
            decode_in_pieces(&bytes, 8),
            vec![-1.0, 32767.0 / 32768.0, 0.0, 0.5]
        );
    }

    #[test]
    fn odd_sized_pieces_give_the_same_samples() {
        let samples: Vec<f32> = (0..1000)
            .map(|i| ((i * 37) % 2000) as f32 / 2000.0 - 0.5)
            .collect();
        let bytes = to_pcm_bytes(&samples);
        let whole = decode_in_pieces(&bytes, bytes.len());
        for piece in [1, 3, 7, 333, 1001] {
            assert_eq!(decode_in_pieces(&bytes, piece), whole, "pieces of {piece}");
        }
        assert_eq!(whole.len(), 1000);
    }

    #[test]
    fn a_trailing_half_sample_waits() {
        let mut decoder = PcmDecoder::new();
        let mut out = Vec::new();
        decoder.decode(&[0x00, 0x40, 0x01], &mut out);
        assert_eq!(out, vec![0.5]);
        assert!(decoder.has_partial_sample());
        decoder.decode(&[0x00], &mut out);
        assert_eq!(out.len(), 2);
        assert!(!decoder.has_partial_sample());
    }

    #[test]
    fn wav_round_trip_and_rate_check() {
        let dir = std::env::temp_dir().join(format!("reswhis-wav-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, rate: u32, channels: u16, frames: &[i16]| {
            let path = dir.join(name);
            let spec = hound::WavSpec {
                channels,
                sample_rate: rate,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            };
            let mut w = hound::WavWriter::create(&path, spec).unwrap();
            for &s in frames {
                w.write_sample(s).unwrap();
            }
            w.finalize().unwrap();
            path
        };
        let stereo = write("stereo.wav", 16_000, 2, &[16384, 0, -16384, -16384]);
        assert_eq!(read_wav(&stereo).unwrap(), vec![0.25, -0.5]);
        let wrong_rate = write("44k.wav", 44_100, 1, &[0, 0]);
        let err = read_wav(&wrong_rate).unwrap_err().to_string();
        assert!(err.contains("44100 Hz") && err.contains("ffmpeg"), "{err}");
        std::fs::remove_dir_all(dir).ok();
    }
}
