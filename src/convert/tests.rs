//! End-to-end tests of `convert_ct2_dir` on small synthetic CTranslate2 models.

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

#[test]
fn converts_a_one_layer_model() {
    let scratch = Scratch::new();
    let vars = tiny_model();
    let (dir, out) = write_dir(&scratch, &model_bin(6, &vars));
    let report = convert_ct2_dir(&dir, &out).unwrap();
    assert!(!out.with_file_name("out.bin.tmp").exists());

    let expected_hparams = Hparams {
        n_vocab: VOCAB as i32,
        n_audio_ctx: AUDIO_CTX as i32,
        n_audio_state: STATE as i32,
        n_audio_head: HEADS as i32,
        n_audio_layer: 1,
        n_text_ctx: TEXT_CTX as i32,
        n_text_state: STATE as i32,
        n_text_head: HEADS as i32,
        n_text_layer: 1,
        n_mels: MELS as i32,
        ftype: 1,
    };
    assert_eq!(report.hparams, expected_hparams);
    assert_eq!(report.n_tokens, REGULAR_TOKENS.len());
    assert_eq!(report.bytes_written, fs::metadata(&out).unwrap().len());

    let g = read_ggml(&out);
    let h = expected_hparams;
    assert_eq!(
        g.hparams,
        [
            h.n_vocab,
            h.n_audio_ctx,
            h.n_audio_state,
            h.n_audio_head,
            h.n_audio_layer,
            h.n_text_ctx,
            h.n_text_state,
            h.n_text_head,
            h.n_text_layer,
            h.n_mels,
            h.ftype
        ]
    );

    // Mel filters: n_mel x (n_fft / 2 + 1) bins.
    assert_eq!((g.n_mel, g.n_fft), (MELS, 201));
    assert_eq!(g.filters, mel::mel_filterbank(16000, 400, MELS));

    // Only the regular tokens, as raw bytes.
    let tokens: Vec<&[u8]> = g.tokens.iter().map(|t| t.as_slice()).collect();
    assert_eq!(tokens, [&b"!"[..], b"a", b" the", b"\n", "é".as_bytes()]);

    // Exactly the tensors whisper.cpp creates: 10 + 15 + 15 * L + 24 * L of its
    // allocation bound minus the 10 "input" slots.
    let mut names: Vec<String> = g.tensors.keys().cloned().collect();
    names.sort();
    assert_eq!(names, whisper_cpp_names(1));
    assert_eq!(report.n_tensors, 50);
    assert_eq!(g.order.len(), 50);

    // Types and ggml (reversed) dimensions.
    let t = |n: &str| &g.tensors[n];
    let check = |n: &str, ttype: i32, dims: &[usize]| {
        assert_eq!((t(n).ttype, t(n).dims.as_slice()), (ttype, dims), "{n}");
    };
    let s = STATE;
    check("encoder.positional_embedding", 0, &[s, AUDIO_CTX]);
    check("encoder.conv1.weight", 1, &[3, MELS, s]);
    check("encoder.conv1.bias", 0, &[1, s]);
    check("encoder.conv2.weight", 1, &[3, s, s]);
    check("encoder.conv2.bias", 0, &[1, s]);
    check("encoder.blocks.0.attn.query.weight", 1, &[s, s]);
    check("encoder.blocks.0.attn.query.bias", 0, &[s]);
    check("encoder.blocks.0.mlp.0.weight", 1, &[s, 4 * s]);
    check("encoder.blocks.0.mlp.0.bias", 0, &[4 * s]);
    check("encoder.blocks.0.mlp.2.weight", 1, &[4 * s, s]);
    check("encoder.blocks.0.mlp_ln.weight", 0, &[s]);
    check("decoder.positional_embedding", 0, &[s, TEXT_CTX]);
    check("decoder.token_embedding.weight", 1, &[s, VOCAB]);
    check("decoder.blocks.0.cross_attn.key.weight", 1, &[s, s]);
    check("decoder.ln.bias", 0, &[s]);

    // Values: f32 tensors exact, f16 ones rounded once.
    let src = |n: &str| source_f32(&vars, n);
    assert_eq!(t("encoder.conv1.bias").values(), src("encoder/conv1/bias"));
    assert_eq!(
        t("encoder.conv1.weight").values(),
        as_f16(&src("encoder/conv1/weight"))
    );
    assert_eq!(
        t("encoder.positional_embedding").values(),
        src("encoder/position_encodings/encodings")
    );
    assert_eq!(
        t("decoder.ln.weight").values(),
        src("decoder/layer_norm/gamma")
    );

    // The fused self-attention Q,K,V split (rows 0..s, s..2s, 2s..3s), key bias dropped.
    for side in ["encoder", "decoder"] {
        let w = src(&format!("{side}/layer_0/self_attention/linear_0/weight"));
        let b = src(&format!("{side}/layer_0/self_attention/linear_0/bias"));
        let blk = format!("{side}.blocks.0.attn");
        let rows = |k: usize| as_f16(&w[k * s * s..(k + 1) * s * s]);
        assert_eq!(t(&format!("{blk}.query.weight")).values(), rows(0));
        assert_eq!(t(&format!("{blk}.key.weight")).values(), rows(1));
        assert_eq!(t(&format!("{blk}.value.weight")).values(), rows(2));
        assert_eq!(t(&format!("{blk}.query.bias")).values(), &b[..s]);
        assert_eq!(t(&format!("{blk}.value.bias")).values(), &b[2 * s..]);
        assert!(!g.tensors.contains_key(&format!("{blk}.key.bias")));
    }

    // The fused cross-attention K,V split.
    let w = src("decoder/layer_0/attention/linear_1/weight");
    let b = src("decoder/layer_0/attention/linear_1/bias");
    let x = "decoder.blocks.0.cross_attn";
    assert_eq!(t(&format!("{x}.key.weight")).values(), as_f16(&w[..s * s]));
    assert_eq!(
        t(&format!("{x}.value.weight")).values(),
        as_f16(&w[s * s..])
    );
    assert_eq!(t(&format!("{x}.value.bias")).values(), &b[s..]);
    assert_eq!(
        t(&format!("{x}.query.weight")).values(),
        as_f16(&src("decoder/layer_0/attention/linear_0/weight"))
    );

    // Byte layout: header, filters, vocabulary, then the tensor records back to back.
    let header = 4 + 11 * 4 + 8 + MELS * 201 * 4;
    let vocab: usize = 4 + g.tokens.iter().map(|t| 4 + t.len()).sum::<usize>();
    let records: usize = g
        .order
        .iter()
        .map(|n| 12 + 4 * t(n).dims.len() + n.len() + t(n).data.len())
        .sum();
    assert_eq!((header + vocab + records) as u64, report.bytes_written);
}

#[test]
fn accepts_f16_and_int8_weights_and_computes_missing_encoder_positions() {
    let scratch = Scratch::new();
    let mut vars = tiny_model();
    let s = STATE;

    // f16 storage of a matrix.
    let name = "encoder/layer_0/ffn/linear_0/weight";
    let orig = source_f32(&vars, name);
    vars.get_mut(name).unwrap().dtype = DType::F16;
    vars.get_mut(name).unwrap().data = orig
        .iter()
        .flat_map(|&v| f16::from_f32(v).to_le_bytes())
        .collect();

    // int8 storage with per-row scales of the decoder's output projection.
    let name = "decoder/layer_0/self_attention/linear_1/weight";
    let q: Vec<i8> = (0..s * s).map(|i| (i as i32 % 255 - 127) as i8).collect();
    let scales: Vec<f32> = (0..s).map(|r| 10.0 + r as f32).collect();
    vars.insert(
        name.into(),
        Var {
            shape: vec![s, s],
            dtype: DType::I8,
            data: q.iter().map(|&v| v as u8).collect(),
        },
    );
    vars.insert(format!("{name}_scale"), f32_var(&[s], &scales));

    vars.remove("encoder/position_encodings/encodings");

    let (dir, out) = write_dir(&scratch, &model_bin(6, &vars));
    let report = convert_ct2_dir(&dir, &out).unwrap();
    assert_eq!(report.hparams.n_audio_ctx, 1500);
    let g = read_ggml(&out);

    assert_eq!(
        g.tensors["encoder.blocks.0.mlp.0.weight"].values(),
        as_f16(&orig)
    );
    let expected: Vec<f32> = q
        .iter()
        .enumerate()
        .map(|(i, &v)| v as f32 / scales[i / s])
        .collect();
    assert_eq!(
        g.tensors["decoder.blocks.0.attn.out.weight"].values(),
        as_f16(&expected)
    );

    // Whisper's sinusoids: row t = [sin(t * inv), cos(t * inv)], inv[0] = 1.
    let pe = &g.tensors["encoder.positional_embedding"];
    assert_eq!(pe.dims, vec![s, 1500]);
    let v = pe.values();
    assert_eq!(&v[..s], &[0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]);
    assert!((v[s] - 1f32.sin()).abs() < 1e-6 && (v[s + s / 2] - 1f32.cos()).abs() < 1e-6);
}

#[test]
fn truncated_model_is_an_error_and_leaves_nothing() {
    let scratch = Scratch::new();
    let img = model_bin(6, &tiny_model());
    let (dir, out) = write_dir(&scratch, &img[..img.len() / 2]);
    let err = convert_ct2_dir(&dir, &out).unwrap_err();
    assert!(matches!(err, ConvertError::Truncated { .. }), "{err}");
    assert!(err.to_string().contains("truncated"), "{err}");
    assert_no_output(&out);
}

#[test]
fn wrong_version_is_an_error() {
    let scratch = Scratch::new();
    let (dir, out) = write_dir(&scratch, &model_bin(99, &tiny_model()));
    let err = convert_ct2_dir(&dir, &out).unwrap_err();
    assert!(err.to_string().contains("version 99"), "{err}");
    assert_no_output(&out);
}

#[test]
fn missing_variable_is_named_and_the_temp_file_removed() {
    // This variable is only needed while the tensors are written, i.e. after the
    // temporary output file exists.
    let scratch = Scratch::new();
    let missing = "decoder/layer_0/attention/linear_2/bias";
    let mut vars = tiny_model();
    vars.remove(missing);
    let (dir, out) = write_dir(&scratch, &model_bin(6, &vars));
    let err = convert_ct2_dir(&dir, &out).unwrap_err();
    assert!(
        matches!(&err, ConvertError::MissingVariable(n) if n == missing),
        "{err}"
    );
    assert!(err.to_string().contains(missing));
    assert_no_output(&out);
}

#[test]
fn unknown_dtype_is_named() {
    let scratch = Scratch::new();
    let mut vars = tiny_model();
    // Give one variable a dtype id that does not exist; patch the byte in the image.
    vars.insert(
        "encoder/conv2/bias".into(),
        f32_var(&[STATE], &[0.0; STATE]),
    );
    let mut img = model_bin(6, &vars);
    let key = b"encoder/conv2/bias\0";
    let at = img.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    // rank (1 byte) + one u32 dim, then the dtype byte.
    assert_eq!(img[at + 5], DType::F32.id());
    img[at + 5] = 9;
    let (dir, out) = write_dir(&scratch, &img);
    let err = convert_ct2_dir(&dir, &out).unwrap_err();
    assert!(
        matches!(&err, ConvertError::UnknownDtype { name, dtype: 9 } if name == "encoder/conv2/bias"),
        "{err}"
    );
    assert!(err.to_string().contains("encoder/conv2/bias"));
    assert_no_output(&out);
}

#[test]
fn shape_mismatch_is_named() {
    let scratch = Scratch::new();
    let mut vars = tiny_model();
    let name = "encoder/layer_0/self_attention/linear_0/weight";
    // Two slices instead of the three fused Q,K,V ones.
    vars.insert(
        name.into(),
        f32_var(&[2 * STATE, STATE], &values(7, 2 * STATE * STATE)),
    );
    let (dir, out) = write_dir(&scratch, &model_bin(6, &vars));
    let err = convert_ct2_dir(&dir, &out).unwrap_err();
    assert!(
        matches!(&err, ConvertError::ShapeMismatch { name: n, .. } if n == name),
        "{err}"
    );
    assert!(err.to_string().contains("[16, 8]"), "{err}");
    assert_no_output(&out);
}

#[test]
fn missing_vocabulary_is_an_io_error_naming_the_file() {
    let scratch = Scratch::new();
    let (dir, out) = write_dir(&scratch, &model_bin(6, &tiny_model()));
    fs::remove_file(dir.join("vocabulary.txt")).unwrap();
    let err = convert_ct2_dir(&dir, &out).unwrap_err();
    assert!(err.to_string().contains("vocabulary.txt"), "{err}");
    assert_no_output(&out);
}

#[test]
fn existing_output_is_untouched_on_error() {
    let scratch = Scratch::new();
    let mut vars = tiny_model();
    vars.remove("decoder/layer_norm/beta");
    let (dir, out) = write_dir(&scratch, &model_bin(6, &vars));
    fs::write(&out, b"previous").unwrap();
    assert!(convert_ct2_dir(&dir, &out).is_err());
    assert_eq!(fs::read(&out).unwrap(), b"previous");
    assert!(!out.with_file_name("out.bin.tmp").exists());
}

/// Replace (or add) one variable of the tiny model with an f32 one of `shape`, no data.
fn with_empty_var(name: &str, shape: &[usize]) -> BTreeMap<String, Var> {
    let mut vars = tiny_model();
    vars.insert(name.into(), f32_var(shape, &[]));
    vars
}

fn with_heads(side: &str, heads: i32) -> BTreeMap<String, Var> {
    let mut vars = tiny_model();
    vars.insert(
        format!("{side}/num_heads"),
        Var {
            shape: vec![],
            dtype: DType::I32,
            data: heads.to_le_bytes().to_vec(),
        },
    );
    vars
}

/// Convert `vars`; the error, after checking nothing was written.
fn conversion_error(vars: &BTreeMap<String, Var>) -> ConvertError {
    let scratch = Scratch::new();
    let (dir, out) = write_dir(&scratch, &model_bin(6, vars));
    let err = convert_ct2_dir(&dir, &out).unwrap_err();
    assert_no_output(&out);
    err
}

#[test]
fn overflowing_shape_is_an_error_and_leaves_nothing() {
    // The shape of the crafted 294-byte model.bin that made ct2-to-ggml panic.
    let err = conversion_error(&with_empty_var(
        "encoder/conv1/weight",
        &[1 << 31, 1 << 31, 4],
    ));
    assert!(
        matches!(&err, ConvertError::SizeOverflow { name, .. } if name == "encoder/conv1/weight"),
        "{err}"
    );
}

#[test]
fn zero_dimension_with_huge_ones_is_an_hparam_error() {
    // Parses (0 elements, 0 bytes) but would make n_mels and n_audio_state 2^31.
    let err = conversion_error(&with_empty_var(
        "encoder/conv1/weight",
        &[1 << 31, 1 << 31, 0],
    ));
    assert!(
        matches!(&err, ConvertError::Hparam { name, value, .. }
            if name == "n_audio_state" && *value == 1 << 31),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("n_audio_state = 2147483648"), "{msg}");
    assert!(msg.contains("encoder/conv1/weight"), "{msg}");
}

#[test]
fn implausible_hparams_are_named() {
    let cases: Vec<(BTreeMap<String, Var>, &str)> = vec![
        (
            with_empty_var("encoder/conv1/weight", &[0, MELS, 3]),
            "n_audio_state",
        ),
        (
            with_empty_var("encoder/conv1/weight", &[STATE, 0, 3]),
            "n_mels",
        ),
        (
            with_empty_var("encoder/conv1/weight", &[STATE, 513, 0]),
            "n_mels",
        ),
        (
            with_empty_var("decoder/embeddings/weight", &[0, STATE]),
            "n_vocab",
        ),
        (
            with_empty_var("decoder/embeddings/weight", &[1_000_001, 0]),
            "n_vocab",
        ),
        (
            with_empty_var("decoder/position_encodings/encodings", &[100_001, 0]),
            "n_text_ctx",
        ),
        (
            with_empty_var("encoder/position_encodings/encodings", &[0, STATE]),
            "n_audio_ctx",
        ),
        (with_heads("encoder", 3), "n_audio_head"),
        (with_heads("decoder", 129), "n_text_head"),
        (with_heads("decoder", i32::MAX), "n_text_head"),
    ];
    for (vars, field) in cases {
        let err = conversion_error(&vars);
        assert!(
            matches!(&err, ConvertError::Hparam { name, .. } if name == field),
            "{field}: {err}"
        );
        assert!(err.to_string().contains(field), "{err}");
    }

    // Too many layers: 129 encoder blocks (only the names matter to the count).
    let mut vars = tiny_model();
    for i in 1..=128 {
        vars.insert(
            format!("encoder/layer_{i}/ffn/layer_norm/beta"),
            f32_var(&[STATE], &[0.0; STATE]),
        );
    }
    let err = conversion_error(&vars);
    assert!(
        matches!(&err, ConvertError::Hparam { name, value: 129, .. } if name == "n_audio_layer"),
        "{err}"
    );
}
