//! 8-bit weights: a whisper.cpp model file with f16 (or f32) matrices rewritten with
//! ggml's `q8_0` blocks, in memory, as whisper.cpp's own `quantize` tool writes them.
//!
//! The layout is the one [`super::ggml`] documents; only the tensors change. Like
//! whisper.cpp's `quantize`, every 2-D tensor is quantised except the positional
//! embeddings (the convolutions are 3-D and stay as they are), and the header's `ftype`
//! becomes `2007` (quantisation version 2, `GGML_FTYPE_MOSTLY_Q8_0`). A `q8_0` block is
//! 32 weights: their scale `d = max|w| / 127` as f16, then the 32 values `round(w / d)`
//! as i8 (34 bytes for 64 of f16).
//!
//! Why: on a CPU, matrix products read every weight on every call, and the decoder's
//! last one (the 51864 × 384 token embedding of tiny.en, 40 MB in f16) runs once per
//! token. Measured on this project's 2-core machine, tiny.en, 5 s windows of the
//! benchmark's pauses stream: a call took 0.25 s of CPU with `q8_0` against 0.29 s in
//! f16 on one thread, 0.23–0.27 s against 0.31–0.34 s on two; the streaming WER over the
//! 17 evaluation files was 8.8 % against 8.2–8.8 % in f16.
//!
//! Invariant: the output holds the same tensors, names and shapes, in the same order;
//! a file that is already quantised is not touched ([`to_q8_0`] returns `None`).

use half::f16;

use super::ggml::GGML_MAGIC;
use super::ConvertError;

/// ggml's tensor type numbers.
const TYPE_F32: i32 = 0;
const TYPE_F16: i32 = 1;
const TYPE_Q8_0: i32 = 8;
/// Weights per `q8_0` block, and its size in bytes (an f16 scale, 32 i8).
pub const Q8_0_BLOCK: usize = 32;
#[cfg(test)]
const Q8_0_BYTES: usize = 2 + Q8_0_BLOCK;
/// `ftype` of a `q8_0` file: `GGML_QNT_VERSION` (2) × 1000 + `GGML_FTYPE_MOSTLY_Q8_0` (7).
pub const FTYPE_Q8_0: i32 = 2007;
/// 2-D tensors whisper.cpp keeps in f32 whatever the file's type.
const KEEP: [&str; 2] = [
    "encoder.positional_embedding",
    "decoder.positional_embedding",
];

/// Appends the `q8_0` blocks of `row` (a multiple of [`Q8_0_BLOCK`] long) to `out`:
/// ggml's `quantize_row_q8_0_ref`, rounding half away from zero as C's `roundf`.
pub fn quantize_row_q8_0(row: &[f32], out: &mut Vec<u8>) {
    debug_assert_eq!(row.len() % Q8_0_BLOCK, 0);
    for block in row.chunks_exact(Q8_0_BLOCK) {
        let amax = block.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
        out.extend(block.iter().map(|v| (v * id).round() as i8 as u8));
    }
}

/// A reader over the model's bytes that names what it was reading when they ran out.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ConvertError> {
        let available = self.bytes.len() - self.at;
        if n > available {
            return Err(ConvertError::Truncated {
                what: what.to_string(),
                offset: self.at as u64,
                needed: n as u64,
                available: available as u64,
            });
        }
        let taken = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(taken)
    }

    fn i32(&mut self, what: &str) -> Result<i32, ConvertError> {
        let b = self.take(4, what)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A count or length: non-negative and at most `max`.
    fn count(&mut self, what: &str, max: usize) -> Result<usize, ConvertError> {
        let value = self.i32(what)?;
        usize::try_from(value)
            .ok()
            .filter(|&v| v <= max)
            .ok_or_else(|| format_error(format!("{what} is {value}")))
    }
}

fn format_error(reason: String) -> ConvertError {
    ConvertError::Format {
        what: "ggml model".to_string(),
        reason,
    }
}

/// `model` (a whole whisper.cpp model file) with its f16 and f32 matrices in `q8_0`;
/// `None` when it is already quantised. Errors name what is malformed.
pub fn to_q8_0(model: &[u8]) -> Result<Option<Vec<u8>>, ConvertError> {
    let mut input = Reader {
        bytes: model,
        at: 0,
    };
    let magic = input.take(4, "the magic number")?;
    if u32::from_le_bytes([magic[0], magic[1], magic[2], magic[3]]) != GGML_MAGIC {
        return Err(format_error("no ggml magic number".to_string()));
    }
    input.take(40, "the hyper-parameters")?;
    let ftype_at = input.at;
    let ftype = input.i32("ftype")?;
    if ftype % 1000 > TYPE_F16 {
        return Ok(None);
    }
    let n_mel = input.count("n_mel", super::ggml::MAX_MELS)?;
    let n_fft = input.count("n_fft", 100_000)?;
    input.take(4 * n_mel * n_fft, "the mel filters")?;
    let n_tokens = input.count("n_tokens", super::ggml::MAX_VOCAB)?;
    for _ in 0..n_tokens {
        let len = input.i32("a token's length")?;
        let len = usize::try_from(len).map_err(|_| format_error(format!("token length {len}")))?;
        input.take(len, "a token")?;
    }
    let mut out = Vec::with_capacity(model.len() / 2);
    out.extend_from_slice(&model[..ftype_at]);
    out.extend_from_slice(&FTYPE_Q8_0.to_le_bytes());
    out.extend_from_slice(&model[ftype_at + 4..input.at]);

    while input.at < model.len() {
        let head_at = input.at;
        let n_dims = input.count("a tensor's dimensions", 4)?;
        let name_len = input.count("a tensor's name length", 4096)?;
        let ttype = input.i32("a tensor's type")?;
        let mut ne = Vec::with_capacity(n_dims);
        for _ in 0..n_dims {
            ne.push(input.count("a tensor dimension", 1 << 30)?);
        }
        let raw_name = input.take(name_len, "a tensor's name")?;
        let name = String::from_utf8_lossy(raw_name).into_owned();
        let n: usize = ne.iter().product();
        let element = match ttype {
            TYPE_F32 => 4,
            TYPE_F16 => 2,
            other => {
                return Err(format_error(format!(
                    "tensor '{name}' has type {other} in a file of ftype {ftype}"
                )))
            }
        };
        let data = input.take(n * element, &format!("tensor '{name}'"))?;
        let quantise = n_dims == 2 && ne[0] % Q8_0_BLOCK == 0 && !KEEP.contains(&name.as_str());
        if !quantise {
            out.extend_from_slice(&model[head_at..input.at]);
            continue;
        }
        out.extend_from_slice(&(n_dims as i32).to_le_bytes());
        out.extend_from_slice(&(name_len as i32).to_le_bytes());
        out.extend_from_slice(&TYPE_Q8_0.to_le_bytes());
        for &d in &ne {
            out.extend_from_slice(&(d as i32).to_le_bytes());
        }
        out.extend_from_slice(raw_name);
        let values: Vec<f32> = match ttype {
            TYPE_F16 => data
                .chunks_exact(2)
                .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            _ => data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        };
        quantize_row_q8_0(&values, &mut out);
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dequantize(blocks: &[u8]) -> Vec<f32> {
        blocks
            .chunks_exact(Q8_0_BYTES)
            .flat_map(|b| {
                let d = f16::from_le_bytes([b[0], b[1]]).to_f32();
                b[2..].iter().map(move |&q| q as i8 as f32 * d)
            })
            .collect()
    }

    #[test]
    fn a_block_holds_its_scale_and_rounded_values() {
        let row: Vec<f32> = (0..32).map(|i| (i as f32 - 16.0) / 8.0).collect();
        let mut out = Vec::new();
        quantize_row_q8_0(&row, &mut out);
        assert_eq!(out.len(), Q8_0_BYTES);
        let d = f16::from_le_bytes([out[0], out[1]]).to_f32();
        assert!((d - 2.0 / 127.0).abs() < 1e-5, "{d}");
        // -2.0 is the largest magnitude: -127; 0.0 stays 0; 1.0 is 63.5 → 64 (half away).
        assert_eq!(out[2] as i8, -127);
        assert_eq!(out[2 + 16] as i8, 0);
        assert_eq!(out[2 + 24] as i8, 64);
        for (x, y) in row.iter().zip(dequantize(&out)) {
            assert!((x - y).abs() <= d / 2.0 + 1e-3, "{x} vs {y}");
        }
        let mut zeros = Vec::new();
        quantize_row_q8_0(&[0.0; 32], &mut zeros);
        assert!(
            zeros.iter().all(|&b| b == 0),
            "an all-zero block is all zero bytes"
        );
    }

    fn tensor(out: &mut Vec<u8>, name: &str, ttype: i32, ne: &[usize], values: &[f32]) {
        out.extend_from_slice(&(ne.len() as i32).to_le_bytes());
        out.extend_from_slice(&(name.len() as i32).to_le_bytes());
        out.extend_from_slice(&ttype.to_le_bytes());
        for &d in ne {
            out.extend_from_slice(&(d as i32).to_le_bytes());
        }
        out.extend_from_slice(name.as_bytes());
        for &v in values {
            match ttype {
                TYPE_F16 => out.extend_from_slice(&f16::from_f32(v).to_le_bytes()),
                _ => out.extend_from_slice(&v.to_le_bytes()),
            }
        }
    }

    /// A ggml model file of the documented layout with one tensor of each kind.
    fn model(ftype: i32) -> Vec<u8> {
        let mut out = GGML_MAGIC.to_le_bytes().to_vec();
        for h in [51864, 1500, 384, 6, 4, 448, 384, 6, 4, 80, ftype] {
            out.extend_from_slice(&h.to_le_bytes());
        }
        out.extend_from_slice(&1i32.to_le_bytes()); // n_mel
        out.extend_from_slice(&2i32.to_le_bytes()); // n_fft
        out.extend_from_slice(&[0u8; 8]);
        out.extend_from_slice(&2i32.to_le_bytes());
        for token in ["a", "bc"] {
            out.extend_from_slice(&(token.len() as u32).to_le_bytes());
            out.extend_from_slice(token.as_bytes());
        }
        let matrix: Vec<f32> = (0..64).map(|i| (i as f32).sin()).collect();
        tensor(
            &mut out,
            "decoder.blocks.0.mlp.0.weight",
            TYPE_F16,
            &[32, 2],
            &matrix,
        );
        tensor(
            &mut out,
            "decoder.positional_embedding",
            TYPE_F32,
            &[32, 2],
            &matrix,
        );
        tensor(
            &mut out,
            "decoder.blocks.0.mlp.0.bias",
            TYPE_F32,
            &[2],
            &[0.5, -0.5],
        );
        tensor(
            &mut out,
            "encoder.conv1.weight",
            TYPE_F16,
            &[3, 1, 2],
            &[1.0; 6],
        );
        out
    }

    #[test]
    fn matrices_are_quantised_and_everything_else_kept() {
        let input = model(1);
        let out = to_q8_0(&input).unwrap().expect("an f16 file is quantised");
        let header_end = 4 + 44 + 8 + 8 + 4 + (4 + 1) + (4 + 2);
        assert_eq!(out[..44], input[..44], "magic and hyper-parameters");
        assert_eq!(
            i32::from_le_bytes(out[44..48].try_into().unwrap()),
            FTYPE_Q8_0
        );
        assert_eq!(
            out[48..header_end],
            input[48..header_end],
            "mel filters and tokens"
        );

        let name = "decoder.blocks.0.mlp.0.weight";
        let at = header_end;
        let head_len = 12 + 8 + name.len();
        assert_eq!(
            i32::from_le_bytes(out[at + 8..at + 12].try_into().unwrap()),
            TYPE_Q8_0
        );
        assert_eq!(&out[at + 20..at + head_len], name.as_bytes());
        let blocks = &out[at + head_len..at + head_len + 2 * Q8_0_BYTES];
        let expected: Vec<f32> = (0..64).map(|i| (i as f32).sin()).collect();
        for (x, y) in expected.iter().zip(dequantize(blocks)) {
            assert!((x - y).abs() < 0.005, "{x} vs {y}");
        }
        // The rest (positional embedding, bias, 3-D convolution) is copied unchanged.
        let rest_in = header_end + head_len + 64 * 2;
        let rest_out = header_end + head_len + 2 * Q8_0_BYTES;
        assert_eq!(out[rest_out..], input[rest_in..]);
        assert_eq!(to_q8_0(&out).unwrap(), None, "a q8_0 file is left alone");
    }

    #[test]
    fn malformed_files_are_errors_that_say_where() {
        let input = model(1);
        for cut in [3, 30, 60, input.len() - 1] {
            let err = to_q8_0(&input[..cut]).unwrap_err();
            assert!(
                matches!(err, ConvertError::Truncated { .. }),
                "cut at {cut}: {err}"
            );
        }
        let mut bad = input.clone();
        bad[0] ^= 1;
        assert!(to_q8_0(&bad).unwrap_err().to_string().contains("magic"));
        let mut odd_type = input;
        let first_tensor_type = 4 + 44 + 8 + 8 + 4 + 5 + 6 + 8;
        odd_type[first_tensor_type..first_tensor_type + 4].copy_from_slice(&13i32.to_le_bytes());
        let err = to_q8_0(&odd_type).unwrap_err().to_string();
        assert!(err.contains("has type 13"), "{err}");
    }
}
