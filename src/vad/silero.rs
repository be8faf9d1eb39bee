//! Silero VAD v6 (16 kHz), run natively: weights from whisper.cpp's ggml VAD file, one
//! speech probability per 512-sample window, the LSTM state and the 64-sample context
//! kept across calls.
//!
//! Why not whisper.cpp's own VAD: in 1.8.3 every `whisper_vad_detect_speech` call resets
//! the LSTM state, so probabilities on a stream fed in pieces differ from one pass over
//! the whole audio (187 of jfk.wav's 344 windows flip at 0.5 when fed window by window),
//! and its context runs 4 threads, which on a busy 2-core machine took seconds for 16 s
//! of audio. This forward pass is Silero's reference one (64 samples of real context
//! before each window, 64 reflected after it; the ONNX graph's semantics): on jfk.wav
//! it stays within 3e-3 of onnxruntime, window by window. It costs ~0.7 M multiply-adds
//! per 32 ms window.
//!
//! The file format (whisper.cpp 1.8.3, `whisper_vad_init_with_params`):
//!
//! ```text
//! u32 magic 0x67676d6c, i32 len + "silero-16k", i32 version major, minor, patch,
//! i32 n_window 512, n_context 64, n_encoder_layers 4,
//!     per layer i32 in, out, kernel: (129,128,3) (128,64,3) (64,64,3) (64,128,3),
//! i32 lstm_input 128 (also the STFT hop), lstm_hidden 128, final_conv_in 128, final_conv_out 1
//! tensors until EOF: i32 n_dims, i32 name_len, i32 type (0 f32, 1 f16), i32 ne[n_dims]
//!     (reversed row-major shape), name, data (row-major)
//! ```

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use half::f16;

use super::WINDOW;

/// Samples of the previous window that Silero sees before each window.
const CONTEXT: usize = 64;
/// STFT: 256-sample frames, hop 128, 129 frequency bins (real and imaginary rows).
const FFT: usize = 256;
const HOP: usize = 128;
const BINS: usize = FFT / 2 + 1;
/// Context, window and right reflection: 640 samples → 4 STFT frames.
const PADDED: usize = CONTEXT + WINDOW + CONTEXT;
const FRAMES: usize = (PADDED - FFT) / HOP + 1;
const HIDDEN: usize = 128;

/// ggml's file magic.
pub const MAGIC: u32 = 0x6767_6d6c;
/// The model type string of the file.
pub const MODEL_TYPE: &str = "silero-16k";
/// Encoder convolutions: (in channels, out channels, kernel, stride).
pub const ENCODER: [(usize, usize, usize, usize); 4] = [
    (129, 128, 3, 1),
    (128, 64, 3, 2),
    (64, 64, 3, 2),
    (64, 128, 3, 1),
];

/// Element type of a tensor in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// 32-bit floats.
    F32,
    /// 16-bit floats.
    F16,
}

/// One tensor of the file, in the order whisper.cpp's converter writes them: its name,
/// its row-major shape as written (squeezed, but for the STFT basis) and its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TensorSpec {
    /// Its name in the file.
    pub name: &'static str,
    /// Its row-major shape.
    pub shape: &'static [usize],
    /// Its element type.
    pub precision: Precision,
}

const fn spec(name: &'static str, shape: &'static [usize], precision: Precision) -> TensorSpec {
    TensorSpec {
        name,
        shape,
        precision,
    }
}

/// The 15 tensors of the file, in file order.
pub const TENSORS: [TensorSpec; 15] = [
    spec(
        "_model.encoder.0.reparam_conv.weight",
        &[128, 129, 3],
        Precision::F16,
    ),
    spec("_model.encoder.0.reparam_conv.bias", &[128], Precision::F32),
    spec(
        "_model.encoder.1.reparam_conv.weight",
        &[64, 128, 3],
        Precision::F16,
    ),
    spec("_model.encoder.1.reparam_conv.bias", &[64], Precision::F32),
    spec(
        "_model.encoder.2.reparam_conv.weight",
        &[64, 64, 3],
        Precision::F16,
    ),
    spec("_model.encoder.2.reparam_conv.bias", &[64], Precision::F32),
    spec(
        "_model.encoder.3.reparam_conv.weight",
        &[128, 64, 3],
        Precision::F16,
    ),
    spec("_model.encoder.3.reparam_conv.bias", &[128], Precision::F32),
    spec("_model.decoder.rnn.weight_ih", &[512, 128], Precision::F32),
    spec("_model.decoder.rnn.weight_hh", &[512, 128], Precision::F32),
    spec("_model.decoder.rnn.bias_ih", &[512], Precision::F32),
    spec("_model.decoder.rnn.bias_hh", &[512], Precision::F32),
    spec("_model.decoder.decoder.2.weight", &[128], Precision::F16),
    spec("_model.decoder.decoder.2.bias", &[], Precision::F32),
    spec(
        "_model.stft.forward_basis_buffer",
        &[258, 1, 256],
        Precision::F16,
    ),
];

/// The header's integers after the model type string, in order.
pub fn header_fields(version: [i32; 3]) -> Vec<i32> {
    let mut fields = version.to_vec();
    fields.extend([WINDOW as i32, CONTEXT as i32, ENCODER.len() as i32]);
    for (inputs, outputs, kernel, _) in ENCODER {
        fields.extend([inputs as i32, outputs as i32, kernel as i32]);
    }
    fields.extend([HOP as i32, HIDDEN as i32, HIDDEN as i32, 1]);
    fields
}

/// Why a Silero model cannot be loaded.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // the fields are named in each variant's doc and message
pub enum SileroError {
    /// No file where the name or path points.
    #[error(
        "VAD model {path} not found; get it with `./models/fetch.sh silero-vad` (or pass \
         --vad-model with the path of whisper.cpp's ggml-silero-v6.2.0.bin)"
    )]
    Missing { path: PathBuf },
    /// The file cannot be read.
    #[error("cannot read VAD model {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not whisper.cpp's Silero format.
    #[error(
        "{path} is not a Silero VAD model in whisper.cpp's format ({reason}); delete it and \
         run `./models/fetch.sh silero-vad` again"
    )]
    Invalid { path: PathBuf, reason: String },
}

/// The weights, as f32, shared by every stream.
#[derive(Debug)]
pub struct SileroModel {
    /// Row-major as in [`TENSORS`]: `[258][256]` basis, encoder `[out][in][3]`, …
    basis: Vec<f32>,
    encoder: [(Vec<f32>, Vec<f32>); 4],
    weight_ih: Vec<f32>,
    weight_hh: Vec<f32>,
    /// bias_ih + bias_hh.
    bias: Vec<f32>,
    out_weight: Vec<f32>,
    out_bias: f32,
    /// The version in the file's header.
    pub version: [i32; 3],
}

/// Reads a little-endian file field by field, with the reason when it runs short.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize, what: &str) -> Result<&[u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| format!("truncated at byte {} reading {what}", self.pos))?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn i32(&mut self, what: &str) -> Result<i32, String> {
        let b = self.take(4, what)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

impl SileroModel {
    /// Loads whisper.cpp's ggml Silero file.
    pub fn load(path: &Path) -> Result<Arc<SileroModel>, SileroError> {
        if !path.is_file() {
            return Err(SileroError::Missing {
                path: path.to_path_buf(),
            });
        }
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|source| SileroError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        Self::parse(&bytes)
            .map(Arc::new)
            .map_err(|reason| SileroError::Invalid {
                path: path.to_path_buf(),
                reason,
            })
    }

    /// Parses the file's bytes; the error says what is wrong.
    pub fn parse(bytes: &[u8]) -> Result<SileroModel, String> {
        let mut r = Reader { bytes, pos: 0 };
        if r.i32("the magic")? as u32 != MAGIC {
            return Err("wrong magic (not a ggml file)".into());
        }
        let len = r.i32("the model type")?;
        let kind = r.take(usize::try_from(len).unwrap_or(usize::MAX), "the model type")?;
        if kind != MODEL_TYPE.as_bytes() {
            return Err(format!(
                "model type {:?}, expected {MODEL_TYPE:?}",
                String::from_utf8_lossy(kind)
            ));
        }
        let mut header = Vec::new();
        for _ in 0..header_fields([0; 3]).len() {
            header.push(r.i32("the header")?);
        }
        let version = [header[0], header[1], header[2]];
        if header[3..] != header_fields(version)[3..] {
            return Err(format!(
                "hyper-parameters {:?}, expected {:?}",
                &header[3..],
                &header_fields(version)[3..]
            ));
        }
        let mut tensors: Vec<Option<Vec<f32>>> = vec![None; TENSORS.len()];
        while r.pos < bytes.len() {
            let n_dims = r.i32("a tensor header")?;
            let name_len = r.i32("a tensor header")?;
            let kind = r.i32("a tensor header")?;
            if !(0..=4).contains(&n_dims) || !(1..=256).contains(&name_len) {
                return Err(format!("bad tensor header at byte {}", r.pos - 12));
            }
            let mut dims = Vec::new();
            for _ in 0..n_dims {
                dims.push(r.i32("tensor dims")?);
            }
            let name =
                String::from_utf8_lossy(r.take(name_len as usize, "a tensor name")?).into_owned();
            let index = TENSORS
                .iter()
                .position(|t| t.name == name)
                .ok_or_else(|| format!("unknown tensor {name:?}"))?;
            let spec = TENSORS[index];
            // whisper.cpp treats missing dims as 1; so do we.
            let count: usize = spec.shape.iter().product();
            let found: i64 = dims.iter().map(|&d| i64::from(d)).product();
            if found != count as i64 {
                return Err(format!(
                    "tensor {name} has dims {dims:?}, expected {count} values"
                ));
            }
            let data = match kind {
                0 => r
                    .take(count * 4, &name)?
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
                1 => r
                    .take(count * 2, &name)?
                    .chunks_exact(2)
                    .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
                    .collect(),
                other => return Err(format!("tensor {name} has type {other} (only f32/f16)")),
            };
            tensors[index] = Some(data);
        }
        let mut tensors = tensors.into_iter().zip(TENSORS);
        let mut next = || {
            let (data, spec) = tensors.next().expect("15 tensors");
            data.ok_or_else(|| format!("tensor {} is missing", spec.name))
        };
        let mut encoder: [(Vec<f32>, Vec<f32>); 4] = Default::default();
        for layer in &mut encoder {
            *layer = (next()?, next()?);
        }
        let weight_ih = next()?;
        let weight_hh = next()?;
        let bias_ih = next()?;
        let bias_hh = next()?;
        let out_weight = next()?;
        let out_bias = next()?[0];
        let basis = next()?;
        Ok(SileroModel {
            basis,
            encoder,
            weight_ih,
            weight_hh,
            bias: bias_ih.iter().zip(&bias_hh).map(|(a, b)| a + b).collect(),
            out_weight,
            out_bias,
            version,
        })
    }
}

/// One stream's Silero: the model plus its LSTM state and context.
#[derive(Debug, Clone)]
pub struct Silero {
    model: Arc<SileroModel>,
    h: [f32; HIDDEN],
    c: [f32; HIDDEN],
    context: [f32; CONTEXT],
    /// Scratch buffers, kept to avoid allocating per window.
    scratch: Scratch,
}

#[derive(Debug, Clone, Default)]
struct Scratch {
    column: Vec<f32>,
    a: Vec<f32>,
    b: Vec<f32>,
    gates: Vec<f32>,
}

impl Silero {
    /// A detector with fresh state, sharing `model`.
    pub fn new(model: Arc<SileroModel>) -> Silero {
        Silero {
            model,
            h: [0.0; HIDDEN],
            c: [0.0; HIDDEN],
            context: [0.0; CONTEXT],
            scratch: Scratch::default(),
        }
    }

    /// Forgets the stream so far (as for a new stream).
    pub fn reset(&mut self) {
        self.h = [0.0; HIDDEN];
        self.c = [0.0; HIDDEN];
        self.context = [0.0; CONTEXT];
    }

    /// The speech probability of the next window of the stream. A short window (the end
    /// of a stream) is zero-filled, as Silero does.
    pub fn probability(&mut self, window: &[f32]) -> f32 {
        let m = &*self.model;
        // 1. Context, the window, and 64 samples reflected off its end.
        let mut x = [0.0f32; PADDED];
        x[..CONTEXT].copy_from_slice(&self.context);
        let n = window.len().min(WINDOW);
        x[CONTEXT..CONTEXT + n].copy_from_slice(&window[..n]);
        let end = CONTEXT + WINDOW;
        for j in 1..=CONTEXT {
            x[end - 1 + j] = x[end - 1 - j];
        }
        self.context.copy_from_slice(&x[end - CONTEXT..end]);

        // 2. STFT magnitude: [BINS][FRAMES].
        let s = &mut self.scratch;
        s.a.clear();
        s.a.resize(BINS * FRAMES, 0.0);
        for k in 0..BINS {
            let re = &m.basis[k * FFT..(k + 1) * FFT];
            let im = &m.basis[(BINS + k) * FFT..(BINS + k + 1) * FFT];
            for t in 0..FRAMES {
                let frame = &x[t * HOP..t * HOP + FFT];
                let (r, i) = (dot(re, frame), dot(im, frame));
                s.a[k * FRAMES + t] = (r * r + i * i).sqrt();
            }
        }

        // 3. Encoder: four conv1d (padding 1) + ReLU, down to one frame.
        let mut frames = FRAMES;
        for (layer, (weight, bias)) in m.encoder.iter().enumerate() {
            let (inputs, outputs, kernel, stride) = ENCODER[layer];
            let out_frames = (frames + 2 - kernel) / stride + 1;
            s.b.clear();
            s.b.resize(outputs * out_frames, 0.0);
            for t in 0..out_frames {
                // im2col: the receptive field of output frame t, [inputs][kernel].
                s.column.clear();
                for i in 0..inputs {
                    for q in 0..kernel {
                        let pos = (t * stride + q) as isize - 1;
                        let v = if pos >= 0 && (pos as usize) < frames {
                            s.a[i * frames + pos as usize]
                        } else {
                            0.0
                        };
                        s.column.push(v);
                    }
                }
                for o in 0..outputs {
                    let w = &weight[o * inputs * kernel..(o + 1) * inputs * kernel];
                    s.b[o * out_frames + t] = (bias[o] + dot(w, &s.column)).max(0.0);
                }
            }
            std::mem::swap(&mut s.a, &mut s.b);
            frames = out_frames;
        }
        debug_assert_eq!((s.a.len(), frames), (HIDDEN, 1));

        // 4. LSTM cell, gates i, f, g, o.
        s.gates.clear();
        for r in 0..4 * HIDDEN {
            let row = r * HIDDEN..(r + 1) * HIDDEN;
            s.gates.push(
                m.bias[r] + dot(&m.weight_ih[row.clone()], &s.a) + dot(&m.weight_hh[row], &self.h),
            );
        }
        for u in 0..HIDDEN {
            let i = sigmoid(s.gates[u]);
            let f = sigmoid(s.gates[HIDDEN + u]);
            let g = s.gates[2 * HIDDEN + u].tanh();
            let o = sigmoid(s.gates[3 * HIDDEN + u]);
            self.c[u] = f * self.c[u] + i * g;
            self.h[u] = o * self.c[u].tanh();
        }

        // 5. ReLU, 1×1 conv to one channel, sigmoid.
        let logit: f32 = m.out_bias
            + m.out_weight
                .iter()
                .zip(&self.h)
                .map(|(w, h)| w * h.max(0.0))
                .sum::<f32>();
        sigmoid(logit)
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// A dot product in eight independent lanes, which the compiler vectorises.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut lanes = [0.0f32; 8];
    let chunks = n / 8 * 8;
    for (ca, cb) in a[..chunks].chunks_exact(8).zip(b[..chunks].chunks_exact(8)) {
        for k in 0..8 {
            lanes[k] += ca[k] * cb[k];
        }
    }
    let tail: f32 = a[chunks..]
        .iter()
        .zip(&b[chunks..])
        .map(|(x, y)| x * y)
        .sum();
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_whisper_cpps() {
        let fields = header_fields([6, 2, 0]);
        assert_eq!(
            fields,
            vec![
                6, 2, 0, 512, 64, 4, 129, 128, 3, 128, 64, 3, 64, 64, 3, 64, 128, 3, 128, 128, 128,
                1
            ]
        );
    }

    #[test]
    fn dot_products_of_any_length() {
        for n in [0, 1, 7, 8, 9, 129, 256] {
            let a: Vec<f32> = (0..n).map(|i| i as f32).collect();
            let b: Vec<f32> = (0..n).map(|i| 1.0 - i as f32 * 0.5).collect();
            let expected: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - expected).abs() <= 1e-3 * expected.abs().max(1.0));
        }
    }

    #[test]
    fn malformed_files_are_refused_with_a_reason() {
        assert!(SileroModel::parse(b"").unwrap_err().contains("truncated"));
        assert!(SileroModel::parse(b"abcdefgh")
            .unwrap_err()
            .contains("magic"));
        let mut bytes = MAGIC.to_le_bytes().to_vec();
        bytes.extend(7i32.to_le_bytes());
        bytes.extend(b"whisper");
        assert!(SileroModel::parse(&bytes)
            .unwrap_err()
            .contains("model type"));
        let mut bytes = MAGIC.to_le_bytes().to_vec();
        bytes.extend((MODEL_TYPE.len() as i32).to_le_bytes());
        bytes.extend(MODEL_TYPE.as_bytes());
        for field in header_fields([6, 2, 0]) {
            bytes.extend(field.to_le_bytes());
        }
        // A header alone: every tensor is missing.
        assert!(SileroModel::parse(&bytes).unwrap_err().contains("missing"));
        let mut wrong = bytes.clone();
        wrong[MODEL_TYPE.len() + 8 + 12..][..4].copy_from_slice(&256i32.to_le_bytes());
        assert!(SileroModel::parse(&wrong)
            .unwrap_err()
            .contains("hyper-parameters"));
    }
}
