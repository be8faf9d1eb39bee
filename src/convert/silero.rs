//! Silero VAD's ONNX model → whisper.cpp's ggml VAD file.
//!
//! The ONNX file `silero_vad_16k_op15.onnx` (PyPI `silero-vad`) holds the 16 kHz model's
//! 15 weights as float initializers named `model.*`; whisper.cpp names them `_model.*`.
//! The data is written unchanged in element order, in f16 where whisper.cpp expects it
//! (convolutions and the STFT basis; rounding to nearest even, subnormals kept), with the
//! shapes squeezed as whisper.cpp's own converter writes them (a 1-dim output weight and
//! a 0-dim output bias). Written with header version 6.2.0 from silero-vad 6.2.3, the
//! result is byte for byte whisper.cpp's published `ggml-silero-v6.2.0.bin`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::ggml::{write_tensor, PlannedTensor, Source, TensorType};
use super::onnx::{initializers, Initializer};
use super::{io_err, write_atomically, ConvertError};
use crate::vad::silero::{header_fields, Precision, MAGIC, MODEL_TYPE, TENSORS};

/// The version whisper.cpp's published file carries for the v6 weights.
pub const DEFAULT_VERSION: [i32; 3] = [6, 2, 0];

/// What a conversion produced.
#[derive(Debug, Clone)]
pub struct SileroReport {
    /// Where the file was written.
    pub output: PathBuf,
    /// Its size.
    pub bytes_written: u64,
    /// The version written into its header.
    pub version: [i32; 3],
}

impl std::fmt::Display for SileroReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [major, minor, patch] = self.version;
        write!(
            f,
            "wrote {} ({} bytes): Silero VAD {major}.{minor}.{patch}, {} tensors",
            self.output.display(),
            self.bytes_written,
            TENSORS.len()
        )
    }
}

/// The ONNX initializer a ggml tensor comes from.
fn onnx_name(ggml_name: &str) -> &str {
    ggml_name.strip_prefix('_').unwrap_or(ggml_name)
}

/// Converts `input` (Silero's 16 kHz ONNX model) to whisper.cpp's VAD file at `output`.
pub fn convert_silero_onnx(
    input: &Path,
    output: &Path,
    version: [i32; 3],
) -> Result<SileroReport, ConvertError> {
    let bytes = fs::read(input).map_err(io_err(input))?;
    let tensors = initializers(&bytes)?;
    drop(bytes);
    let mut planned = Vec::with_capacity(TENSORS.len());
    for spec in TENSORS {
        let name = onnx_name(spec.name);
        let tensor = tensors
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| ConvertError::MissingVariable(name.to_string()))?;
        check_shape(tensor, spec.shape)?;
        let ttype = match spec.precision {
            Precision::F16 => TensorType::F16,
            Precision::F32 => TensorType::F32,
        };
        let plan = PlannedTensor {
            name: spec.name.to_string(),
            source: Source::Var(name.to_string()),
            shape: spec.shape.to_vec(),
            ttype,
        };
        planned.push((plan, &tensor.data));
    }
    let bytes_written = write_atomically(output, |w| {
        w.write_all(&MAGIC.to_le_bytes())?;
        w.write_all(&(MODEL_TYPE.len() as i32).to_le_bytes())?;
        w.write_all(MODEL_TYPE.as_bytes())?;
        for field in header_fields(version) {
            w.write_all(&field.to_le_bytes())?;
        }
        for (plan, data) in &planned {
            write_tensor(w, plan, data)?;
        }
        Ok(())
    })?;
    Ok(SileroReport {
        output: output.to_path_buf(),
        bytes_written,
        version,
    })
}

/// The ONNX shape must be the expected one, give or take dimensions of 1.
fn check_shape(tensor: &Initializer, expected: &[usize]) -> Result<(), ConvertError> {
    let squeeze = |s: &[usize]| s.iter().copied().filter(|&d| d != 1).collect::<Vec<_>>();
    if squeeze(&tensor.dims) != squeeze(expected) {
        return Err(ConvertError::ShapeMismatch {
            name: tensor.name.clone(),
            expected: expected.to_vec(),
            found: tensor.dims.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::onnx::encode;
    use super::*;
    use crate::vad::silero::SileroModel;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("reswhis-silero-{name}-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A synthetic Silero ONNX file: every weight filled with a small pattern.
    fn synthetic_onnx(skip: Option<&str>, wrong_shape: Option<&str>) -> Vec<u8> {
        let tensors: Vec<Vec<u8>> = TENSORS
            .iter()
            .filter(|spec| Some(onnx_name(spec.name)) != skip)
            .map(|spec| {
                let name = onnx_name(spec.name);
                // ONNX keeps the unsqueezed shapes: [1,128,1] and [1] for the output conv.
                let mut dims: Vec<usize> = match name {
                    "model.decoder.decoder.2.weight" => vec![1, 128, 1],
                    "model.decoder.decoder.2.bias" => vec![1],
                    _ => spec.shape.to_vec(),
                };
                if Some(name) == wrong_shape {
                    dims[0] += 1;
                }
                let count: usize = dims.iter().product();
                let data: Vec<f32> = (0..count).map(|i| ((i % 17) as f32 - 8.0) / 64.0).collect();
                encode::tensor(name, &dims, &data)
            })
            .collect();
        encode::model(&tensors)
    }

    #[test]
    fn converts_a_synthetic_model_that_loads_back() {
        let dir = temp_dir("ok");
        let input = dir.join("vad.onnx");
        let output = dir.join("ggml-silero.bin");
        fs::write(&input, synthetic_onnx(None, None)).unwrap();
        let report = convert_silero_onnx(&input, &output, DEFAULT_VERSION).unwrap();
        let bytes = fs::read(&output).unwrap();
        // Real Silero and the synthetic one have the same shapes, so the same size.
        assert_eq!(bytes.len(), 885_098);
        assert_eq!(report.bytes_written, 885_098);
        let model = SileroModel::parse(&bytes).unwrap();
        assert_eq!(model.version, [6, 2, 0]);
        assert!(!dir.join("ggml-silero.bin.tmp").exists());
        fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn bad_input_is_a_clear_error_and_leaves_no_file() {
        let dir = temp_dir("bad");
        let output = dir.join("out.bin");
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"not onnx at all".to_vec(), "ONNX"),
            (
                synthetic_onnx(Some("model.decoder.rnn.bias_hh"), None),
                "model.decoder.rnn.bias_hh",
            ),
            (
                synthetic_onnx(None, Some("model.encoder.1.reparam_conv.weight")),
                "shape",
            ),
        ];
        for (bytes, expected) in cases {
            let input = dir.join("in.onnx");
            fs::write(&input, &bytes).unwrap();
            let err = convert_silero_onnx(&input, &output, DEFAULT_VERSION)
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{err}");
            assert!(!output.exists() && !dir.join("out.bin.tmp").exists());
        }
        let err = convert_silero_onnx(&dir.join("missing.onnx"), &output, DEFAULT_VERSION)
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing.onnx"), "{err}");
        fs::remove_dir_all(dir).ok();
    }
}
