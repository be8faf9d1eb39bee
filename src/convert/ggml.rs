//! The whisper.cpp side: hyper-parameters, the CTranslate2 → whisper.cpp tensor mapping,
//! and the ggml file writer (the format `whisper_model_load` in whisper.cpp 1.8.3 reads).
//!
//! ```text
//! u32 magic 0x67676d6c ("ggml")
//! i32 n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer,
//!     n_text_ctx, n_text_state, n_text_head, n_text_layer, n_mels, ftype
//! i32 n_mel, i32 n_fft (bins), f32 filters[n_mel * n_fft]
//! i32 n_tokens, then per token: u32 len, bytes
//! tensors until EOF: i32 n_dims, i32 name_len, i32 ttype, i32 ne[n_dims], name, data
//! ```
//!
//! Tensor dimensions are written in ggml order (`ne[0]` is the fastest-varying one), i.e.
//! reversed from the row-major (PyTorch / CTranslate2) shape; the data itself is the same
//! row-major array.

use std::io::Write;

use half::f16;
use serde_json::Value;

use super::ct2::Ct2Model;
use super::ConvertError;

/// `ggml` in the first four bytes of a whisper.cpp model, read as a little-endian u32.
pub const GGML_MAGIC: u32 = 0x6767_6d6c;
/// `ftype` 1: big matrices in f16 (GGML_FTYPE_MOSTLY_F16).
pub const FTYPE_F16: i32 = 1;
/// Whisper's audio window: 30 s of 10 ms frames, halved by the stride-2 conv.
pub const WHISPER_AUDIO_CTX: usize = 1500;

/// Model hyper-parameters in the order whisper.cpp reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hparams {
    /// Vocabulary size.
    pub n_vocab: i32,
    /// Encoder positions (1500).
    pub n_audio_ctx: i32,
    /// Encoder width.
    pub n_audio_state: i32,
    /// Encoder attention heads.
    pub n_audio_head: i32,
    /// Encoder layers.
    pub n_audio_layer: i32,
    /// Decoder positions (448).
    pub n_text_ctx: i32,
    /// Decoder width.
    pub n_text_state: i32,
    /// Decoder attention heads.
    pub n_text_head: i32,
    /// Decoder layers.
    pub n_text_layer: i32,
    /// Mel bands (80, or 128 for large-v3).
    pub n_mels: i32,
    /// Storage type of the big matrices (see [`FTYPE_F16`]).
    pub ftype: i32,
}

// Sanity limits on the hyper-parameters (whisper large-v3 has 128 mels, state 1280,
// 32 layers, 20 heads, 51866 tokens and contexts 1500 / 448). They keep a crafted
// `model.bin` from sizing allocations (the mel filterbank, the tensor plan) or wrapping
// the `i32` fields of the ggml header.

/// Most mel bands.
pub const MAX_MELS: usize = 512;
/// Most model width.
pub const MAX_STATE: usize = 8192;
/// Most layers.
pub const MAX_LAYERS: usize = 128;
/// Most attention heads.
pub const MAX_HEADS: usize = 128;
/// Most tokens.
pub const MAX_VOCAB: usize = 1_000_000;
/// Most positions.
pub const MAX_CTX: usize = 100_000;

impl Hparams {
    /// Derive the hyper-parameters from the tensor shapes (and the `num_heads` scalars,
    /// or the config when those are missing). Each must be positive and within the
    /// `MAX_*` limits, and the heads must divide the state.
    pub fn from_model(model: &Ct2Model, config: Option<&Value>) -> Result<Hparams, ConvertError> {
        const CONV1: &str = "encoder/conv1/weight";
        let conv1 = model.require(CONV1)?;
        let [n_audio_state, n_mels, _] = shape::<3>(CONV1, &conv1.shape)?;
        let n_audio_state = bounded("n_audio_state", n_audio_state, MAX_STATE, CONV1)?;
        let n_mels = bounded("n_mels", n_mels, MAX_MELS, CONV1)?;

        const ENC_POS: &str = "encoder/position_encodings/encodings";
        let n_audio_ctx = match model.get(ENC_POS) {
            Some(v) => bounded(
                "n_audio_ctx",
                shape::<2>(ENC_POS, &v.shape)?[0],
                MAX_CTX,
                ENC_POS,
            )?,
            None => WHISPER_AUDIO_CTX as i32,
        };

        const EMB: &str = "decoder/embeddings/weight";
        let emb = model.require(EMB)?;
        let [n_vocab, n_text_state] = shape::<2>(EMB, &emb.shape)?;
        let n_vocab = bounded("n_vocab", n_vocab, MAX_VOCAB, EMB)?;
        let n_text_state = bounded("n_text_state", n_text_state, MAX_STATE, EMB)?;
        const DEC_POS: &str = "decoder/position_encodings/encodings";
        let pos = model.require(DEC_POS)?;
        let [n_text_ctx, _] = shape::<2>(DEC_POS, &pos.shape)?;
        let n_text_ctx = bounded("n_text_ctx", n_text_ctx, MAX_CTX, DEC_POS)?;

        if n_text_state != n_audio_state {
            return Err(ConvertError::ShapeMismatch {
                name: EMB.to_string(),
                expected: vec![n_vocab as usize, n_audio_state as usize],
                found: emb.shape.clone(),
            });
        }

        let n_audio_layer = count_layers(model, "encoder")?;
        let n_audio_layer = bounded(
            "n_audio_layer",
            n_audio_layer,
            MAX_LAYERS,
            "encoder/layer_N",
        )?;
        let n_text_layer = count_layers(model, "decoder")?;
        let n_text_layer = bounded("n_text_layer", n_text_layer, MAX_LAYERS, "decoder/layer_N")?;
        let n_audio_head = num_heads(model, config, "encoder", n_audio_state)?;
        let n_text_head = num_heads(model, config, "decoder", n_text_state)?;

        Ok(Hparams {
            n_vocab,
            n_audio_ctx,
            n_audio_state,
            n_audio_head,
            n_audio_layer,
            n_text_ctx,
            n_text_state,
            n_text_head,
            n_text_layer,
            n_mels,
            ftype: FTYPE_F16,
        })
    }

    fn write(&self, w: &mut impl Write) -> std::io::Result<()> {
        for v in [
            self.n_vocab,
            self.n_audio_ctx,
            self.n_audio_state,
            self.n_audio_head,
            self.n_audio_layer,
            self.n_text_ctx,
            self.n_text_state,
            self.n_text_head,
            self.n_text_layer,
            self.n_mels,
            self.ftype,
        ] {
            w.write_all(&v.to_le_bytes())?;
        }
        Ok(())
    }
}

fn shape<const N: usize>(name: &str, s: &[usize]) -> Result<[usize; N], ConvertError> {
    s.try_into().map_err(|_| ConvertError::Format {
        what: format!("variable '{name}'"),
        reason: format!("expected rank {N}, found shape {s:?}"),
    })
}

/// Number of `<side>/layer_N/` blocks (not to be confused with `<side>/layer_norm`).
fn count_layers(model: &Ct2Model, side: &str) -> Result<usize, ConvertError> {
    let prefix = format!("{side}/layer_");
    let mut layers = std::collections::BTreeSet::new();
    for name in model.variables.keys() {
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        let Some((index, _)) = rest.split_once('/') else {
            continue;
        };
        if let Ok(n) = index.parse::<usize>() {
            layers.insert(n);
        }
    }
    if layers.is_empty() {
        return Err(ConvertError::MissingVariable(format!("{side}/layer_0/...")));
    }
    // Indices must be 0..n; a gap means a missing layer.
    if let Some(missing) = (0..layers.len()).find(|i| !layers.contains(i)) {
        return Err(ConvertError::MissingVariable(format!(
            "{side}/layer_{missing}/..."
        )));
    }
    Ok(layers.len())
}

/// Check that hyper-parameter `name` (taken from `from`) is in `1..=max`; as `i32`.
fn bounded(name: &str, value: usize, max: usize, from: &str) -> Result<i32, ConvertError> {
    (1..=max)
        .contains(&value)
        .then(|| i32::try_from(value).ok())
        .flatten()
        .ok_or_else(|| ConvertError::Hparam {
            name: name.to_string(),
            value: value as u64,
            reason: format!("expected 1 to {max} (from '{from}')"),
        })
}

/// The `<side>/num_heads` scalar, or the config's head count; it must divide `n_state`.
fn num_heads(
    model: &Ct2Model,
    config: Option<&Value>,
    side: &str,
    n_state: i32,
) -> Result<i32, ConvertError> {
    let name = format!("{side}/num_heads");
    let (heads, from) = if let Some(var) = model.get(&name) {
        let heads = var
            .scalar_int()
            .and_then(|h| usize::try_from(h).ok())
            .filter(|&h| h > 0)
            .ok_or_else(|| ConvertError::Format {
                what: format!("variable '{name}'"),
                reason: "expected a positive integer scalar".to_string(),
            })?;
        (heads, name)
    } else {
        let keys = [format!("{side}_attention_heads"), "num_heads".to_string()];
        keys.iter()
            .find_map(|k| Some((config?.get(k)?.as_i64()?, k)))
            .and_then(|(h, k)| Some((usize::try_from(h).ok().filter(|&h| h > 0)?, k)))
            .map(|(h, k)| (h, format!("config.json {k}")))
            .ok_or(ConvertError::MissingVariable(name))?
    };
    let field = format!(
        "n_{}_head",
        if side == "encoder" { "audio" } else { "text" }
    );
    let heads = bounded(&field, heads, MAX_HEADS, &from)?;
    if n_state % heads != 0 {
        return Err(ConvertError::Hparam {
            name: field,
            value: heads as u64,
            reason: format!("does not divide the state size {n_state} (from '{from}')"),
        });
    }
    Ok(heads)
}

/// Element type of a written tensor (ggml's `ttype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorType {
    /// 32-bit float.
    F32 = 0,
    /// 16-bit float.
    F16 = 1,
}

/// Where the data of one whisper.cpp tensor comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A whole CTranslate2 variable.
    Var(String),
    /// Slice `index` of `parts` equal slices along the first dimension of a fused
    /// variable (CTranslate2 fuses self-attention Q,K,V and cross-attention K,V).
    Part {
        /// The fused variable.
        var: String,
        /// Which slice, from 0.
        index: usize,
        /// How many equal slices the variable holds.
        parts: usize,
    },
    /// Whisper's sinusoidal encoder positions, for models that omit them.
    Sinusoids,
}

/// One tensor of the output file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedTensor {
    /// Its name in whisper.cpp's file.
    pub name: String,
    /// Where its values come from.
    pub source: Source,
    /// Row-major shape (the written ggml dims are this reversed).
    pub shape: Vec<usize>,
    /// How it is stored.
    pub ttype: TensorType,
}

/// Append a tensor to the plan. Matrices and conv kernels are f16; vectors (biases,
/// norms) and the positional embeddings are f32, as whisper.cpp allocates them.
fn push(plan: &mut Vec<PlannedTensor>, name: String, source: Source, shape: Vec<usize>) {
    let is_vector = shape.iter().filter(|&&d| d != 1).count() <= 1;
    let ttype = if is_vector || name.ends_with("positional_embedding") {
        TensorType::F32
    } else {
        TensorType::F16
    };
    plan.push(PlannedTensor {
        name,
        source,
        shape,
        ttype,
    });
}

fn var(name: String) -> Source {
    Source::Var(name)
}

fn part(var: String, index: usize, parts: usize) -> Source {
    Source::Part { var, index, parts }
}

fn push_all(plan: &mut Vec<PlannedTensor>, out: &str, entries: Vec<(&str, Source, Vec<usize>)>) {
    for (suffix, source, shape) in entries {
        push(plan, format!("{out}.{suffix}"), source, shape);
    }
}

/// Self-attention and MLP of one block (shared by encoder and decoder).
fn push_block(plan: &mut Vec<PlannedTensor>, out: &str, src: &str, s: usize) {
    let v = |name: &str| var(format!("{src}/{name}"));
    // self_attention/linear_0 is the fused Q,K,V projection, [3 * s, s] with bias [3 * s].
    // Whisper has no key bias: CTranslate2 fills that slice of the fused bias with zeros
    // (and a key bias would not change the attention weights anyway), so it is dropped.
    let qkv = |what: &str, index| part(format!("{src}/self_attention/linear_0/{what}"), index, 3);
    #[rustfmt::skip]
    push_all(plan, out, vec![
        ("attn_ln.weight", v("self_attention/layer_norm/gamma"), vec![s]),
        ("attn_ln.bias", v("self_attention/layer_norm/beta"), vec![s]),
        ("attn.query.weight", qkv("weight", 0), vec![s, s]),
        ("attn.query.bias", qkv("bias", 0), vec![s]),
        ("attn.key.weight", qkv("weight", 1), vec![s, s]),
        ("attn.value.weight", qkv("weight", 2), vec![s, s]),
        ("attn.value.bias", qkv("bias", 2), vec![s]),
        ("attn.out.weight", v("self_attention/linear_1/weight"), vec![s, s]),
        ("attn.out.bias", v("self_attention/linear_1/bias"), vec![s]),
        ("mlp_ln.weight", v("ffn/layer_norm/gamma"), vec![s]),
        ("mlp_ln.bias", v("ffn/layer_norm/beta"), vec![s]),
        ("mlp.0.weight", v("ffn/linear_0/weight"), vec![4 * s, s]),
        ("mlp.0.bias", v("ffn/linear_0/bias"), vec![4 * s]),
        ("mlp.2.weight", v("ffn/linear_1/weight"), vec![s, 4 * s]),
        ("mlp.2.bias", v("ffn/linear_1/bias"), vec![s]),
    ]);
}

/// Cross-attention of one decoder block.
fn push_cross_attention(plan: &mut Vec<PlannedTensor>, out: &str, src: &str, s: usize) {
    let v = |name: &str| var(format!("{src}/attention/{name}"));
    // attention/linear_1 is the fused K,V projection of the encoder output; K has no bias.
    let kv = |what: &str, index| part(format!("{src}/attention/linear_1/{what}"), index, 2);
    #[rustfmt::skip]
    push_all(plan, out, vec![
        ("cross_attn_ln.weight", v("layer_norm/gamma"), vec![s]),
        ("cross_attn_ln.bias", v("layer_norm/beta"), vec![s]),
        ("cross_attn.query.weight", v("linear_0/weight"), vec![s, s]),
        ("cross_attn.query.bias", v("linear_0/bias"), vec![s]),
        ("cross_attn.key.weight", kv("weight", 0), vec![s, s]),
        ("cross_attn.value.weight", kv("weight", 1), vec![s, s]),
        ("cross_attn.value.bias", kv("bias", 1), vec![s]),
        ("cross_attn.out.weight", v("linear_2/weight"), vec![s, s]),
        ("cross_attn.out.bias", v("linear_2/bias"), vec![s]),
    ]);
}

/// The full list of tensors whisper.cpp expects, with their CTranslate2 sources.
pub fn tensor_plan(model: &Ct2Model, hp: &Hparams) -> Vec<PlannedTensor> {
    let n = |v: i32| v as usize;
    let (a, t) = (n(hp.n_audio_state), n(hp.n_text_state));
    let v = |name: &str| var(name.to_string());
    let mut plan = Vec::new();

    let enc_pos = "encoder/position_encodings/encodings";
    let enc_pos = match model.get(enc_pos) {
        Some(_) => v(enc_pos),
        None => Source::Sinusoids,
    };
    // whisper.cpp wants the conv biases as [n_state, 1] (ggml ne = [1, n_state]).
    #[rustfmt::skip]
    push_all(&mut plan, "encoder", vec![
        ("positional_embedding", enc_pos, vec![n(hp.n_audio_ctx), a]),
        ("conv1.weight", v("encoder/conv1/weight"), vec![a, n(hp.n_mels), 3]),
        ("conv1.bias", v("encoder/conv1/bias"), vec![a, 1]),
        ("conv2.weight", v("encoder/conv2/weight"), vec![a, a, 3]),
        ("conv2.bias", v("encoder/conv2/bias"), vec![a, 1]),
    ]);
    for i in 0..n(hp.n_audio_layer) {
        let (out, src) = (format!("encoder.blocks.{i}"), format!("encoder/layer_{i}"));
        push_block(&mut plan, &out, &src, a);
    }
    #[rustfmt::skip]
    push_all(&mut plan, "encoder", vec![
        ("ln_post.weight", v("encoder/layer_norm/gamma"), vec![a]),
        ("ln_post.bias", v("encoder/layer_norm/beta"), vec![a]),
    ]);

    #[rustfmt::skip]
    push_all(&mut plan, "decoder", vec![
        ("positional_embedding", v("decoder/position_encodings/encodings"), vec![n(hp.n_text_ctx), t]),
        ("token_embedding.weight", v("decoder/embeddings/weight"), vec![n(hp.n_vocab), t]),
    ]);
    for i in 0..n(hp.n_text_layer) {
        let (out, src) = (format!("decoder.blocks.{i}"), format!("decoder/layer_{i}"));
        push_block(&mut plan, &out, &src, t);
        push_cross_attention(&mut plan, &out, &src, t);
    }
    #[rustfmt::skip]
    push_all(&mut plan, "decoder", vec![
        ("ln.weight", v("decoder/layer_norm/gamma"), vec![t]),
        ("ln.bias", v("decoder/layer_norm/beta"), vec![t]),
    ]);

    plan
}

/// Whisper's encoder positions: `[sin(t * inv), cos(t * inv)]` with
/// `inv[i] = exp(-ln(10000) * i / (channels / 2 - 1))`.
pub fn sinusoids(length: usize, channels: usize) -> Vec<f32> {
    let half = channels / 2;
    let increment = 10000f64.ln() / (half as f64 - 1.0);
    let mut out = vec![0f32; length * channels];
    for t in 0..length {
        for i in 0..half {
            let x = t as f64 * (-increment * i as f64).exp();
            out[t * channels + i] = x.sin() as f32;
            out[t * channels + half + i] = x.cos() as f32;
        }
    }
    out
}

fn squeeze(s: &[usize]) -> Vec<usize> {
    s.iter().copied().filter(|&d| d != 1).collect()
}

/// Produce the `f32` data of one planned tensor, checking the source's shape.
pub fn materialize(model: &Ct2Model, t: &PlannedTensor) -> Result<Vec<f32>, ConvertError> {
    match &t.source {
        Source::Sinusoids => Ok(sinusoids(t.shape[0], t.shape[1])),
        Source::Var(name) => {
            let (found, data) = model.float_tensor(name)?;
            // Equal up to size-1 dimensions (conv biases become [n_state, 1]).
            if squeeze(&found) != squeeze(&t.shape) {
                return Err(ConvertError::ShapeMismatch {
                    name: name.clone(),
                    expected: t.shape.clone(),
                    found,
                });
            }
            Ok(data)
        }
        Source::Part { var, index, parts } => {
            let (found, mut data) = model.float_tensor(var)?;
            let mut expected = t.shape.clone();
            expected[0] *= parts;
            if found != expected {
                return Err(ConvertError::ShapeMismatch {
                    name: var.clone(),
                    expected,
                    found,
                });
            }
            let len = t.shape.iter().product::<usize>();
            data.truncate((index + 1) * len);
            Ok(data.split_off(index * len))
        }
    }
}

/// A writer that counts the bytes it has written.
pub struct CountingWriter<W> {
    inner: W,
    /// Bytes written so far.
    pub bytes: u64,
}

impl<W: Write> CountingWriter<W> {
    /// Wraps `inner`, at 0 bytes.
    pub fn new(inner: W) -> Self {
        CountingWriter { inner, bytes: 0 }
    }

    /// The writer wrapped.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes the file's head: magic, hyper-parameters, mel filterbank and vocabulary.
pub fn write_header(
    w: &mut impl Write,
    hp: &Hparams,
    filters: &[f32],
    tokens: &[Vec<u8>],
) -> std::io::Result<()> {
    w.write_all(&GGML_MAGIC.to_le_bytes())?;
    hp.write(w)?;

    let n_mel = hp.n_mels as usize;
    w.write_all(&(n_mel as i32).to_le_bytes())?;
    let n_bins = filters.len().checked_div(n_mel).unwrap_or(0);
    w.write_all(&(n_bins as i32).to_le_bytes())?;
    for v in filters {
        w.write_all(&v.to_le_bytes())?;
    }

    w.write_all(&(tokens.len() as i32).to_le_bytes())?;
    for t in tokens {
        w.write_all(&(t.len() as u32).to_le_bytes())?;
        w.write_all(t)?;
    }
    Ok(())
}

/// Writes one tensor: its dimensions (innermost first), name and data in its type.
pub fn write_tensor(w: &mut impl Write, t: &PlannedTensor, data: &[f32]) -> std::io::Result<()> {
    w.write_all(&(t.shape.len() as i32).to_le_bytes())?;
    w.write_all(&(t.name.len() as i32).to_le_bytes())?;
    w.write_all(&(t.ttype as i32).to_le_bytes())?;
    for &d in t.shape.iter().rev() {
        w.write_all(&(d as i32).to_le_bytes())?;
    }
    w.write_all(t.name.as_bytes())?;
    let mut buf = Vec::with_capacity(data.len() * 4);
    match t.ttype {
        TensorType::F32 => data
            .iter()
            .for_each(|v| buf.extend_from_slice(&v.to_le_bytes())),
        TensorType::F16 => data
            .iter()
            .for_each(|&v| buf.extend_from_slice(&f16::from_f32(v).to_le_bytes())),
    }
    w.write_all(&buf)
}
