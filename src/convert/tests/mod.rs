//! End-to-end tests of `convert_ct2_dir` on small synthetic CTranslate2 models: the
//! builders and readers here, what a good model becomes in [`conversion`], what a bad
//! one is refused with in [`errors`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use half::f16;

use super::ct2::{write_model, DType};
use super::*;

const STATE: usize = 8;
const HEADS: usize = 2;
const MELS: usize = 4;
const AUDIO_CTX: usize = 6;
const TEXT_CTX: usize = 5;
const VOCAB: usize = 10;
const REGULAR_TOKENS: [&str; 5] = ["!", "a", "Ġthe", "Ċ", "Ã©"];

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "reswhis-convert-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// One variable of the synthetic model.
#[derive(Clone)]
struct Var {
    shape: Vec<usize>,
    dtype: DType,
    data: Vec<u8>,
}

/// Deterministic small pseudo-random values.
fn values(seed: usize, n: usize) -> Vec<f32> {
    let mut x = (seed as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.2
        })
        .collect()
}

fn f32_var(shape: &[usize], data: &[f32]) -> Var {
    Var {
        shape: shape.to_vec(),
        dtype: DType::F32,
        data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}

/// A one-layer Whisper-like CTranslate2 model, all f32, keyed by variable name.
fn tiny_model() -> BTreeMap<String, Var> {
    let s = STATE;
    let mut m = BTreeMap::new();
    let mut seed = 0;
    let mut add = |name: String, shape: &[usize]| {
        seed += 1;
        let n = shape.iter().product();
        m.insert(name, f32_var(shape, &values(seed, n)));
    };
    add("encoder/conv1/weight".into(), &[s, MELS, 3]);
    add("encoder/conv1/bias".into(), &[s]);
    add("encoder/conv2/weight".into(), &[s, s, 3]);
    add("encoder/conv2/bias".into(), &[s]);
    add(
        "encoder/position_encodings/encodings".into(),
        &[AUDIO_CTX, s],
    );
    add("encoder/layer_norm/gamma".into(), &[s]);
    add("encoder/layer_norm/beta".into(), &[s]);
    add("decoder/embeddings/weight".into(), &[VOCAB, s]);
    add(
        "decoder/position_encodings/encodings".into(),
        &[TEXT_CTX, s],
    );
    add("decoder/layer_norm/gamma".into(), &[s]);
    add("decoder/layer_norm/beta".into(), &[s]);
    for side in ["encoder", "decoder"] {
        let l = format!("{side}/layer_0");
        add(format!("{l}/self_attention/layer_norm/gamma"), &[s]);
        add(format!("{l}/self_attention/layer_norm/beta"), &[s]);
        add(format!("{l}/self_attention/linear_0/weight"), &[3 * s, s]);
        add(format!("{l}/self_attention/linear_0/bias"), &[3 * s]);
        add(format!("{l}/self_attention/linear_1/weight"), &[s, s]);
        add(format!("{l}/self_attention/linear_1/bias"), &[s]);
        add(format!("{l}/ffn/layer_norm/gamma"), &[s]);
        add(format!("{l}/ffn/layer_norm/beta"), &[s]);
        add(format!("{l}/ffn/linear_0/weight"), &[4 * s, s]);
        add(format!("{l}/ffn/linear_0/bias"), &[4 * s]);
        add(format!("{l}/ffn/linear_1/weight"), &[s, 4 * s]);
        add(format!("{l}/ffn/linear_1/bias"), &[s]);
    }
    let l = "decoder/layer_0/attention";
    add(format!("{l}/layer_norm/gamma"), &[s]);
    add(format!("{l}/layer_norm/beta"), &[s]);
    add(format!("{l}/linear_0/weight"), &[s, s]);
    add(format!("{l}/linear_0/bias"), &[s]);
    add(format!("{l}/linear_1/weight"), &[2 * s, s]);
    add(format!("{l}/linear_1/bias"), &[2 * s]);
    add(format!("{l}/linear_2/weight"), &[s, s]);
    add(format!("{l}/linear_2/bias"), &[s]);
    for side in ["encoder", "decoder"] {
        m.insert(
            format!("{side}/num_heads"),
            Var {
                shape: vec![],
                dtype: DType::I16,
                data: (HEADS as i16).to_le_bytes().to_vec(),
            },
        );
    }
    m.insert(
        "decoder/pre_norm".into(),
        Var {
            shape: vec![],
            dtype: DType::I8,
            data: vec![1],
        },
    );
    m
}

fn model_bin(version: u32, vars: &BTreeMap<String, Var>) -> Vec<u8> {
    let list: Vec<(&str, &[usize], DType, Vec<u8>)> = vars
        .iter()
        .map(|(n, v)| (n.as_str(), v.shape.as_slice(), v.dtype, v.data.clone()))
        .collect();
    write_model(
        version,
        &list,
        &[("decoder/projection/weight", "decoder/embeddings/weight")],
    )
}

/// Write a model directory; returns (input dir, output path).
fn write_dir(scratch: &Scratch, model: &[u8]) -> (PathBuf, PathBuf) {
    let dir = scratch.0.join("ct2");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("model.bin"), model).unwrap();
    let mut vocab: Vec<String> = REGULAR_TOKENS.iter().map(|s| s.to_string()).collect();
    vocab.extend(["<|endoftext|>", "<|startoftranscript|>"].map(String::from));
    fs::write(dir.join("vocabulary.txt"), vocab.join("\n") + "\n").unwrap();
    fs::write(
        dir.join("config.json"),
        r#"{"suppress_ids": [1], "lang_ids": []}"#,
    )
    .unwrap();
    (dir, scratch.0.join("out.bin"))
}

/// A parsed ggml tensor record.
#[derive(Debug)]
struct Tensor {
    ttype: i32,
    dims: Vec<usize>,
    data: Vec<u8>,
}

impl Tensor {
    fn values(&self) -> Vec<f32> {
        match self.ttype {
            0 => self
                .data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            1 => self
                .data
                .chunks_exact(2)
                .map(|c| f16::from_le_bytes(c.try_into().unwrap()).to_f32())
                .collect(),
            t => panic!("unexpected ttype {t}"),
        }
    }
}

/// A parsed ggml file, read the way whisper.cpp's loader reads it.
struct Ggml {
    hparams: [i32; 11],
    n_mel: usize,
    n_fft: usize,
    filters: Vec<f32>,
    tokens: Vec<Vec<u8>>,
    tensors: BTreeMap<String, Tensor>,
    order: Vec<String>,
}

struct Reader {
    buf: Vec<u8>,
    pos: usize,
}

impl Reader {
    fn take(&mut self, n: usize) -> Vec<u8> {
        let s = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        s
    }

    fn i32(&mut self) -> i32 {
        i32::from_le_bytes(self.take(4).try_into().unwrap())
    }
}

fn read_ggml(path: &Path) -> Ggml {
    let mut r = Reader {
        buf: fs::read(path).unwrap(),
        pos: 0,
    };
    assert_eq!(r.take(4), b"lmgg", "magic 0x67676d6c, little-endian");
    let mut hparams = [0; 11];
    for h in &mut hparams {
        *h = r.i32();
    }
    let n_mel = r.i32() as usize;
    let n_fft = r.i32() as usize;
    let filters = r
        .take(n_mel * n_fft * 4)
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let n_tokens = r.i32() as usize;
    let tokens = (0..n_tokens)
        .map(|_| {
            let len = r.i32() as usize;
            r.take(len)
        })
        .collect();
    let mut tensors = BTreeMap::new();
    let mut order = Vec::new();
    while r.pos < r.buf.len() {
        let n_dims = r.i32() as usize;
        let name_len = r.i32() as usize;
        let ttype = r.i32();
        let dims: Vec<usize> = (0..n_dims).map(|_| r.i32() as usize).collect();
        let name = String::from_utf8(r.take(name_len)).unwrap();
        let size = if ttype == 0 { 4 } else { 2 };
        let data = r.take(dims.iter().product::<usize>() * size);
        order.push(name.clone());
        tensors.insert(name, Tensor { ttype, dims, data });
    }
    Ggml {
        hparams,
        n_mel,
        n_fft,
        filters,
        tokens,
        tensors,
        order,
    }
}

/// Every tensor name whisper.cpp 1.8.3 creates for `layers` encoder and decoder layers
/// (from `ASR_TENSOR_NAMES` in whisper-arch.h).
fn whisper_cpp_names(layers: usize) -> Vec<String> {
    let mut names: Vec<String> = [
        "encoder.positional_embedding",
        "encoder.conv1.weight",
        "encoder.conv1.bias",
        "encoder.conv2.weight",
        "encoder.conv2.bias",
        "encoder.ln_post.weight",
        "encoder.ln_post.bias",
        "decoder.positional_embedding",
        "decoder.token_embedding.weight",
        "decoder.ln.weight",
        "decoder.ln.bias",
    ]
    .map(String::from)
    .to_vec();
    let block = [
        "mlp_ln.weight",
        "mlp_ln.bias",
        "mlp.0.weight",
        "mlp.0.bias",
        "mlp.2.weight",
        "mlp.2.bias",
        "attn_ln.weight",
        "attn_ln.bias",
        "attn.query.weight",
        "attn.query.bias",
        "attn.key.weight",
        "attn.value.weight",
        "attn.value.bias",
        "attn.out.weight",
        "attn.out.bias",
    ];
    for i in 0..layers {
        for side in ["encoder", "decoder"] {
            names.extend(block.iter().map(|t| format!("{side}.blocks.{i}.{t}")));
        }
        for t in block.iter().filter(|t| t.starts_with("attn")) {
            names.push(format!("decoder.blocks.{i}.cross_{t}"));
        }
    }
    names.sort();
    names
}

fn source_f32(vars: &BTreeMap<String, Var>, name: &str) -> Vec<f32> {
    vars[name]
        .data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn as_f16(v: &[f32]) -> Vec<f32> {
    v.iter().map(|&x| f16::from_f32(x).to_f32()).collect()
}

fn assert_no_output(out: &Path) {
    assert!(!out.exists(), "{} left behind", out.display());
    let tmp = out.with_file_name("out.bin.tmp");
    assert!(!tmp.exists(), "{} left behind", tmp.display());
}

mod conversion;
mod errors;
