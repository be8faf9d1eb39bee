//! Property tests ("fuzzing") of the parsers that see untrusted input: PCM framing,
//! control messages, query strings, HTTP request heads, and the model converter's
//! `model.bin` reader (issue #6).
//!
//! The case counts are small so `cargo test` stays fast. For a longer run:
//!
//! ```text
//! PROPTEST_CASES=100000 cargo test --release --test fuzz
//! ```

use proptest::prelude::*;
use reswhis::audio::PcmDecoder;
use reswhis::convert::ct2::{Ct2Model, DType};
use reswhis::http::parse_head;
use reswhis::protocol::{ClientMessage, SessionOptions};

/// `PROPTEST_CASES` if set, else `default`.
fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn decode_pieces(bytes: &[u8], cuts: &[usize]) -> Vec<f32> {
    let mut decoder = PcmDecoder::new();
    let mut out = Vec::new();
    let mut start = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    for cut in cuts {
        decoder.decode(&bytes[start..cut], &mut out);
        start = cut;
    }
    decoder.decode(&bytes[start..], &mut out);
    out
}

proptest! {
    #![proptest_config(config(512))]

    /// Any split of any byte string decodes to the samples of the whole.
    #[test]
    fn pcm_any_split_gives_the_same_samples(
        bytes in proptest::collection::vec(any::<u8>(), 0..4096),
        cuts in proptest::collection::vec(any::<usize>(), 0..64),
    ) {
        let mut decoder = PcmDecoder::new();
        let mut whole = Vec::new();
        decoder.decode(&bytes, &mut whole);
        prop_assert_eq!(whole.len(), bytes.len() / 2);
        prop_assert_eq!(decoder.has_partial_sample(), bytes.len() % 2 == 1);
        prop_assert!(whole.iter().all(|s| (-1.0..1.0).contains(s)));
        let pieces = decode_pieces(&bytes, &cuts);
        prop_assert_eq!(pieces, whole);
    }

    /// Control messages: arbitrary text never panics.
    #[test]
    fn control_messages_never_panic(text in any::<String>()) {
        let _ = ClientMessage::parse(&text);
    }

    /// …nor does JSON-looking text (nesting, escapes, numbers).
    #[test]
    fn json_like_control_messages_never_panic(text in r#"[\[\]{}":,0-9a-z\\ .eE+-]{0,200}"#) {
        let _ = ClientMessage::parse(&text);
    }

    /// Every spelling of the end of stream parses, whatever else the object holds.
    #[test]
    fn end_of_stream_variants_parse(
        kind in prop::sample::select(vec!["eos", "end", "stop"]),
        extra in proptest::collection::btree_map("[a-z]{1,8}", any::<i64>(), 0..4),
        pad in "[ \t\r\n]{0,3}",
    ) {
        let mut object = serde_json::Map::new();
        for (key, value) in extra {
            object.insert(key, value.into());
        }
        object.insert("type".into(), kind.into());
        let text = format!("{pad}{}{pad}", serde_json::Value::Object(object));
        prop_assert_eq!(ClientMessage::parse(&text), Ok(ClientMessage::EndOfStream));
    }

    /// Other types are errors, not panics and not an end of stream.
    #[test]
    fn other_message_types_are_errors(kind in "[a-z]{0,10}") {
        prop_assume!(!["eos", "end", "stop"].contains(&kind.as_str()));
        let text = serde_json::json!({ "type": kind }).to_string();
        prop_assert!(ClientMessage::parse(&text).is_err());
    }

    /// Query strings: arbitrary text never panics.
    #[test]
    fn query_strings_never_panic(query in any::<String>()) {
        let _ = SessionOptions::from_query(&query);
    }

    /// A token survives URL encoding; unknown keys are ignored.
    #[test]
    fn query_tokens_round_trip(token in any::<String>(), junk in "[a-z]{1,6}=[^&]{0,10}") {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("token", &token)
            .finish();
        let query = format!("{junk}&{query}&interim=1");
        prop_assume!(!junk.starts_with("token=") && !junk.starts_with("interim="));
        let options = SessionOptions::from_query(&query).unwrap();
        prop_assert_eq!(options.token.as_deref(), Some(token.as_str()));
        prop_assert!(options.interim);
    }

    /// HTTP request heads: arbitrary bytes never panic.
    #[test]
    fn http_heads_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse_head(&bytes);
    }

    /// Well-formed heads parse, with the same fields; every proper prefix is incomplete
    /// or an error, never a different request.
    #[test]
    fn http_heads_parse_and_prefixes_are_partial(
        method in prop::sample::select(vec!["GET", "HEAD", "POST", "OPTIONS"]),
        path in "/[a-z0-9/._-]{0,30}",
        query in proptest::option::of("[a-z0-9=&%]{0,30}"),
        headers in proptest::collection::vec(("[A-Za-z][A-Za-z0-9-]{0,15}", "[ -~]{0,40}"), 0..12),
        body in proptest::collection::vec(any::<u8>(), 0..16),
    ) {
        let target = match &query {
            Some(q) => format!("{path}?{q}"),
            None => path.clone(),
        };
        let mut raw = format!("{method} {target} HTTP/1.1\r\n");
        for (name, value) in &headers {
            raw.push_str(&format!("{name}: {}\r\n", value.trim()));
        }
        raw.push_str("\r\n");
        let head_length = raw.len();
        let mut bytes = raw.into_bytes();
        bytes.extend_from_slice(&body);

        let (head, length) = parse_head(&bytes).unwrap().expect("a complete head");
        prop_assert_eq!(length, head_length);
        prop_assert_eq!(head.method, method);
        prop_assert_eq!(head.path, path);
        prop_assert_eq!(head.query, query.unwrap_or_default());
        prop_assert_eq!(head.headers.len(), headers.len());
        for cut in 0..head_length {
            prop_assert!(
                !matches!(parse_head(&bytes[..cut]), Ok(Some(_))),
                "a prefix of {} bytes parsed as complete", cut
            );
        }
    }
}

// ---- model.bin (CTranslate2) ----

/// A CTranslate2 string: u16 length including the NUL, the bytes, NUL.
fn ct2_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&((s.len() + 1) as u16).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

/// A small valid model.bin image (binary version 6).
fn model_bin(vars: &[(&str, &[usize], DType, Vec<u8>)], aliases: &[(&str, &str)]) -> Vec<u8> {
    reswhis::convert::ct2::write_model(6, vars, aliases)
}

fn synthetic_model() -> Vec<u8> {
    let f32s = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    model_bin(
        &[
            (
                "encoder/conv1/weight",
                &[2, 3, 3],
                DType::F32,
                f32s(&[0.5; 18]),
            ),
            (
                "encoder/num_heads",
                &[],
                DType::I16,
                6i16.to_le_bytes().to_vec(),
            ),
            (
                "decoder/embeddings/weight",
                &[4, 2],
                DType::I8,
                vec![1, 2, 3, 4, 5, 6, 7, 8],
            ),
            (
                "decoder/embeddings/weight_scale",
                &[4],
                DType::F32,
                f32s(&[1.0, 2.0, 4.0, 8.0]),
            ),
            ("decoder/x/bias", &[3], DType::F16, vec![0, 60, 0, 64, 0, 0]),
        ],
        &[("decoder/projection/weight", "decoder/embeddings/weight")],
    )
}

/// Exercises everything a parsed model offers (as the converter does).
fn use_model(model: &Ct2Model) {
    for (name, variable) in &model.variables {
        if variable.data.len() <= 1 << 20 {
            let _ = variable.to_f32();
            let _ = variable.scalar_int();
            let _ = model.float_tensor(name);
        }
    }
    for alias in model.aliases.keys() {
        let _ = model.get(alias);
    }
}

#[test]
fn the_synthetic_model_parses() {
    let image = synthetic_model();
    let model = Ct2Model::parse(&image).unwrap();
    assert_eq!(model.variables.len(), 5);
    let (shape, weights) = model.float_tensor("decoder/embeddings/weight").unwrap();
    assert!(model.get("decoder/projection/weight").is_some());
    assert_eq!(shape, vec![4, 2]);
    assert_eq!(weights, vec![1.0, 2.0, 1.5, 2.0, 1.25, 1.5, 0.875, 1.0]);
}

/// Huge counts and sizes in a tiny file are errors, found without allocating by them.
#[test]
fn absurd_lengths_are_errors() {
    let mut header = Vec::new();
    header.extend_from_slice(&6u32.to_le_bytes());
    ct2_string(&mut header, "WhisperSpec");
    header.extend_from_slice(&3u32.to_le_bytes());
    // u32::MAX variables, none present.
    let mut image = header.clone();
    image.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(Ct2Model::parse(&image).is_err());
    // One variable claiming 4 GiB of data.
    let mut image = header.clone();
    image.extend_from_slice(&1u32.to_le_bytes());
    ct2_string(&mut image, "x");
    image.push(2);
    image.extend_from_slice(&65_536u32.to_le_bytes());
    image.extend_from_slice(&16_384u32.to_le_bytes());
    image.push(DType::F32.id());
    image.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(Ct2Model::parse(&image).is_err());
    // A rank-255 shape of maximal dimensions.
    let mut image = header;
    image.extend_from_slice(&1u32.to_le_bytes());
    ct2_string(&mut image, "x");
    image.push(255);
    for _ in 0..255 {
        image.extend_from_slice(&1u32.to_le_bytes());
    }
    image.push(DType::I8.id());
    image.extend_from_slice(&1u32.to_le_bytes());
    image.push(7);
    image.extend_from_slice(&0u32.to_le_bytes());
    let model = Ct2Model::parse(&image).unwrap();
    assert_eq!(model.variables["x"].len(), 1);
}

/// A shape whose element count overflows `usize` must be rejected (a 0-byte variable of
/// shape [2^31, 2^31, 4] once wrapped to size 0 in release builds and reached the
/// converter, which then panicked on a 2^31-sized mel filterbank).
#[test]
fn overflowing_shapes_are_errors() {
    let image = model_bin(
        &[(
            "encoder/conv1/weight",
            &[1 << 31, 1 << 31, 4],
            DType::F32,
            vec![],
        )],
        &[],
    );
    let parsed = std::panic::catch_unwind(|| Ct2Model::parse(&image).map(|m| m.variables.len()));
    match parsed {
        Ok(Err(_)) => {}
        Ok(Ok(_)) => panic!("a shape of 2^64 elements with 0 bytes of data was accepted"),
        Err(_) => panic!("Ct2Model::parse panicked on an overflowing shape"),
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// Arbitrary bytes: an error (or, by chance, a model), never a panic.
    #[test]
    fn model_bin_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(model) = Ct2Model::parse(&bytes) {
            use_model(&model);
        }
    }

    /// Arbitrary bytes behind a valid header, so the variable records are exercised.
    #[test]
    fn model_bin_valid_header_then_garbage(tail in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut image = Vec::new();
        image.extend_from_slice(&6u32.to_le_bytes());
        ct2_string(&mut image, "WhisperSpec");
        image.extend_from_slice(&3u32.to_le_bytes());
        image.extend_from_slice(&tail);
        if let Ok(model) = Ct2Model::parse(&image) {
            use_model(&model);
        }
    }

    /// Every truncation of a valid file is an error.
    #[test]
    fn model_bin_truncated(cut in any::<prop::sample::Index>()) {
        let image = synthetic_model();
        let cut = cut.index(image.len());
        prop_assert!(Ct2Model::parse(&image[..cut]).is_err());
    }

    /// Mutated bytes of a valid file (overwritten, inserted, removed): no panic.
    #[test]
    fn model_bin_mutated(
        edits in proptest::collection::vec(
            (any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let mut image = synthetic_model();
        for (at, byte, kind) in edits {
            let at = at.index(image.len());
            match kind {
                0 => image[at] = byte,
                1 => image.insert(at, byte),
                _ => {
                    image.remove(at);
                }
            }
            if image.is_empty() {
                break;
            }
        }
        if let Ok(model) = Ct2Model::parse(&image) {
            use_model(&model);
        }
    }

    /// Overwriting any 4-byte field with an extreme value: no panic, no huge allocation.
    #[test]
    fn model_bin_extreme_fields(
        at in any::<prop::sample::Index>(),
        value in prop::sample::select(vec![0u32, 1, 0x7fff_ffff, 0x8000_0000, u32::MAX - 1, u32::MAX]),
    ) {
        let mut image = synthetic_model();
        let at = at.index(image.len() - 3);
        image[at..at + 4].copy_from_slice(&value.to_le_bytes());
        if let Ok(model) = Ct2Model::parse(&image) {
            use_model(&model);
        }
    }
}
