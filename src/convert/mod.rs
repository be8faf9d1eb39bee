//! Model converters to whisper.cpp's ggml files: CTranslate2 Whisper models and
//! Silero VAD's ONNX model.
//!
//! [`convert_ct2_dir`] reads a CTranslate2 model directory (`model.bin`, `vocabulary.txt`
//! and, optionally, `config.json`) and writes the single-file ggml model whisper.cpp
//! loads. The pieces:
//!
//! * [`ct2`]: the `model.bin` reader (and int8/int16 dequantisation);
//! * [`ggml`]: hyper-parameters, the tensor mapping and the ggml writer;
//! * [`mel`]: the mel filterbank stored in the ggml file;
//! * [`vocab`]: GPT-2 byte-level token decoding;
//! * [`quantize`]: a ggml model's matrices rewritten as 8-bit `q8_0` blocks, in memory
//!   (what the engine loads on a CPU).
//!
//! [`silero::convert_silero_onnx`] reads Silero's ONNX file ([`onnx`]: a minimal
//! protobuf reader) and writes the VAD file whisper.cpp and [`crate::vad`] load.
//!
//! Both write to a temporary file that is renamed into place at the end: a failed
//! conversion leaves nothing behind.

pub mod ct2;
pub mod ggml;
pub mod mel;
pub mod onnx;
pub mod quantize;
pub mod silero;
pub mod vocab;

use std::fmt;
use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};

pub use ggml::Hparams;

/// Whisper's audio front end: 16 kHz, 400-sample (25 ms) FFT windows.
pub const SAMPLE_RATE: u32 = 16_000;
/// FFT window, in samples.
pub const N_FFT: usize = 400;

/// Why a model cannot be converted.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // the fields are named in each variant's doc and message
pub enum ConvertError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The input ends too early.
    #[error("model.bin is truncated: reading {what} at byte {offset} needs {needed} bytes, only {available} left")]
    Truncated {
        what: String,
        offset: u64,
        needed: u64,
        available: u64,
    },
    /// A CTranslate2 format version this converter does not read.
    #[error("unsupported CTranslate2 binary version {version} (supported: {supported:?})")]
    UnsupportedVersion { version: u32, supported: Vec<u32> },
    /// A CTranslate2 model of something other than Whisper.
    #[error("not a Whisper model: CTranslate2 spec is '{spec}', expected 'WhisperSpec'")]
    NotWhisper { spec: String },
    /// A variable the model needs is absent.
    #[error("missing variable '{0}' in model.bin")]
    MissingVariable(String),
    /// A variable of an unknown element type.
    #[error("variable '{name}' has unknown dtype {dtype} (known: 0 f32, 1 int8, 2 int16, 3 int32, 4 f16, 5 bf16)")]
    UnknownDtype { name: String, dtype: u8 },
    /// A variable of the wrong shape.
    #[error("variable '{name}' has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    /// A shape whose element count does not fit in memory.
    #[error("variable '{name}' has shape {shape:?}, whose size overflows")]
    SizeOverflow { name: String, shape: Vec<usize> },
    /// A hyper-parameter beyond the sanity limits.
    #[error("implausible hyper-parameter {name} = {value}: {reason}")]
    Hparam {
        name: String,
        value: u64,
        reason: String,
    },
    /// A file that does not follow its format.
    #[error("malformed {what}: {reason}")]
    Format { what: String, reason: String },
    /// The vocabulary does not fit the model.
    #[error("vocabulary.txt: {0}")]
    Vocabulary(String),
    /// A JSON configuration file that does not parse.
    #[error("{}: invalid JSON: {source}", path.display())]
    Config {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// What a conversion produced.
#[derive(Debug, Clone)]
pub struct ConvertReport {
    /// The output's hyper-parameters.
    pub hparams: Hparams,
    /// CTranslate2 binary version and spec revision of the input.
    pub ct2_version: u32,
    /// Spec revision of the input.
    pub ct2_revision: u32,
    /// Number of regular tokens written (whisper.cpp adds the special ones).
    pub n_tokens: usize,
    /// Tensors written.
    pub n_tensors: usize,
    /// Size of the output file.
    pub bytes_written: u64,
    /// Where the output was written.
    pub output: PathBuf,
}

impl fmt::Display for ConvertReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = &self.hparams;
        writeln!(
            f,
            "wrote {} ({} bytes)",
            self.output.display(),
            self.bytes_written
        )?;
        writeln!(
            f,
            "  source: CTranslate2 binary v{} WhisperSpec rev {}",
            self.ct2_version, self.ct2_revision
        )?;
        writeln!(
            f,
            "  n_vocab {}, n_mels {}, ftype {} (f16)",
            h.n_vocab, h.n_mels, h.ftype
        )?;
        writeln!(
            f,
            "  audio: ctx {}, state {}, heads {}, layers {}",
            h.n_audio_ctx, h.n_audio_state, h.n_audio_head, h.n_audio_layer
        )?;
        writeln!(
            f,
            "  text:  ctx {}, state {}, heads {}, layers {}",
            h.n_text_ctx, h.n_text_state, h.n_text_head, h.n_text_layer
        )?;
        write!(
            f,
            "  {} regular tokens, {} tensors",
            self.n_tokens, self.n_tensors
        )
    }
}

/// Removes the temporary output file unless the conversion completed.
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ConvertError + '_ {
    move |source| ConvertError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// An error of a conversion step: the input's, or the writer's (an I/O error on the
/// temporary file).
pub enum WriteError {
    /// The input is at fault.
    Convert(ConvertError),
    /// Writing failed.
    Io(std::io::Error),
}

impl From<ConvertError> for WriteError {
    fn from(e: ConvertError) -> Self {
        WriteError::Convert(e)
    }
}

impl From<std::io::Error> for WriteError {
    fn from(e: std::io::Error) -> Self {
        WriteError::Io(e)
    }
}

/// The writer a conversion writes to.
pub type Output = ggml::CountingWriter<BufWriter<File>>;

/// Runs `write` on `<output>.tmp` beside `output`, then syncs and renames it into place;
/// on any error nothing is left at either path. Returns the bytes written.
fn write_atomically(
    output: &Path,
    write: impl FnOnce(&mut Output) -> Result<(), WriteError>,
) -> Result<u64, ConvertError> {
    let mut tmp_name = output.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let mut tmp = TempFile {
        path: output.with_file_name(tmp_name),
        keep: false,
    };
    let file = File::create(&tmp.path).map_err(io_err(&tmp.path))?;
    let mut w = ggml::CountingWriter::new(BufWriter::with_capacity(1 << 20, file));
    match write(&mut w) {
        Ok(()) => {}
        Err(WriteError::Convert(e)) => return Err(e),
        Err(WriteError::Io(e)) => return Err(io_err(&tmp.path)(e)),
    }
    let bytes_written = w.bytes;
    let file = w
        .into_inner()
        .into_inner()
        .map_err(|e| io_err(&tmp.path)(e.into_error()))?;
    file.sync_all().map_err(io_err(&tmp.path))?;
    drop(file);
    fs::rename(&tmp.path, output).map_err(io_err(output))?;
    tmp.keep = true;
    Ok(bytes_written)
}

/// Convert the CTranslate2 Whisper model in `input_dir` to a whisper.cpp ggml file.
///
/// The file is written to `<output>.tmp` beside `output` and renamed into place at the
/// end; on any error nothing is left at either path.
pub fn convert_ct2_dir(input_dir: &Path, output: &Path) -> Result<ConvertReport, ConvertError> {
    let model_path = input_dir.join("model.bin");
    let bytes = fs::read(&model_path).map_err(io_err(&model_path))?;
    let model = ct2::Ct2Model::parse(&bytes)?;
    drop(bytes);

    let config_path = input_dir.join("config.json");
    let config: Option<serde_json::Value> = match fs::read(&config_path) {
        Ok(text) => Some(
            serde_json::from_slice(&text).map_err(|source| ConvertError::Config {
                path: config_path.clone(),
                source,
            })?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err(&config_path)(e)),
    };

    let vocab_path = input_dir.join("vocabulary.txt");
    let vocab_text = fs::read_to_string(&vocab_path).map_err(io_err(&vocab_path))?;
    let tokens = vocab::regular_tokens(&vocab_text)?;

    let hparams = Hparams::from_model(&model, config.as_ref())?;
    if tokens.len() > hparams.n_vocab as usize {
        return Err(ConvertError::Vocabulary(format!(
            "{} regular tokens but the embedding has only {} rows",
            tokens.len(),
            hparams.n_vocab
        )));
    }
    let filters = mel::mel_filterbank(SAMPLE_RATE, N_FFT, hparams.n_mels as usize);
    let plan = ggml::tensor_plan(&model, &hparams);

    let bytes_written = write_atomically(output, |w| {
        ggml::write_header(w, &hparams, &filters, &tokens)?;
        for tensor in &plan {
            let data = ggml::materialize(&model, tensor)?;
            ggml::write_tensor(w, tensor, &data)?;
        }
        Ok(())
    })?;

    Ok(ConvertReport {
        hparams,
        ct2_version: model.version,
        ct2_revision: model.revision,
        n_tokens: tokens.len(),
        n_tensors: plan.len(),
        bytes_written,
        output: output.to_path_buf(),
    })
}

/// How a converter's command line ends: the report on stdout and success, or the error
/// (with its causes, on one line, after the tool's name) on stderr and failure.
pub fn exit_with(tool: &str, result: anyhow::Result<impl fmt::Display>) -> std::process::ExitCode {
    match result {
        Ok(report) => {
            println!("{report}");
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{tool}: {}", crate::error_line(&error));
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests;
