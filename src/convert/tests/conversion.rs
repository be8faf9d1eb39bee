//! Good models: every tensor where whisper.cpp looks for it, with its values.

use super::*;

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
