//! Bad models: each refused with an error that names what is wrong, and no output
//! file left behind.

use super::*;

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
