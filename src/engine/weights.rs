//! Which weights the model computes with: the file's, or its matrices quantised to
//! 8 bits (`q8_0`) as it loads ([`crate::convert::quantize`] has the format and the
//! measurements). On a CPU `q8_0` is the default: a Whisper call spends three quarters
//! of its time in matrix products with the weights, and 8-bit weights cut a tiny.en call
//! by 10–25 % at the same accuracy. With a GPU the file's weights are kept unless
//! `--weights q8_0` asks otherwise.
//!
//! Invariant: whatever is asked, a model whisper.cpp can load is loaded; when the
//! quantised copy cannot be made or loaded, the file itself is, with a warning. A file
//! that the quantiser finds cut short is refused, not handed to whisper.cpp (which can
//! abort the process on one). Only the quantiser reads the whole file.

use std::io::Read;
use std::path::Path;

use whisper_rs::{WhisperContext, WhisperContextParameters};

use crate::convert::quantize::to_q8_0;
use crate::convert::ConvertError;

/// `--weights`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Weights {
    /// `q8_0` on a CPU, the file's on a GPU.
    #[default]
    Auto,
    /// Matrices quantised to 8 bits when the model loads.
    #[value(name = "q8_0")]
    Q8_0,
    /// The file's weights as they are (f16 in the standard files).
    File,
}

impl std::fmt::Display for Weights {
    /// The value as `--weights` takes it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use clap::ValueEnum;
        let value = self.to_possible_value().expect("no variant is skipped");
        f.write_str(value.get_name())
    }
}

/// The storage type a ggml model's `ftype` stands for ("f16", "q8_0", …).
pub fn ftype_name(ftype: i32) -> String {
    match ftype % 1000 {
        0 => "f32".into(),
        1 => "f16".into(),
        2 => "q4_0".into(),
        3 => "q4_1".into(),
        7 => "q8_0".into(),
        8 => "q5_0".into(),
        9 => "q5_1".into(),
        other => format!("ftype {other}"),
    }
}

/// The `ftype` in a model file's header (after the magic and ten other fields).
fn file_ftype(path: &Path) -> Option<i32> {
    let mut head = [0u8; 48];
    std::fs::File::open(path).ok()?.read_exact(&mut head).ok()?;
    Some(i32::from_le_bytes([head[44], head[45], head[46], head[47]]))
}

/// Loads the model at `path` with `weights` (`use_gpu`: whether the GPU is asked for;
/// `on_gpu`: whether one was found); `None` when whisper.cpp cannot load the file.
/// Returns the context and the type its matrices are in.
pub fn load(
    path: &Path,
    use_gpu: bool,
    weights: Weights,
    on_gpu: bool,
) -> Option<(WhisperContext, String)> {
    let params = || WhisperContextParameters {
        use_gpu,
        ..WhisperContextParameters::default()
    };
    let quantise = match weights {
        Weights::Auto => !on_gpu,
        Weights::Q8_0 => true,
        Weights::File => false,
    };
    let stored = file_ftype(path).map_or_else(|| "unknown".to_string(), ftype_name);
    if quantise {
        let bytes = std::fs::read(path).ok()?;
        match to_q8_0(&bytes) {
            Ok(Some(quantised)) => {
                drop(bytes);
                match WhisperContext::new_from_buffer_with_params(&quantised, params()) {
                    Ok(context) => return Some((context, "q8_0".into())),
                    Err(e) => log::warn!(
                        "{}: the q8_0 copy did not load ({e}); using the file's {stored} weights",
                        path.display()
                    ),
                }
            }
            Ok(None) => {}
            // whisper.cpp does not check every length it reads: a model cut short in its
            // vocabulary loaded, then aborted the process (std::out_of_range) at its first
            // use. The walk over the layout saw the cut.
            Err(ConvertError::Truncated { what, offset, .. }) => {
                log::error!(
                    "{}: the file ends at byte {offset}, in {what}",
                    path.display()
                );
                return None;
            }
            Err(e) => log::warn!(
                "{}: cannot quantise ({e}); using the file's weights",
                path.display()
            ),
        }
    }
    let context = WhisperContext::new_with_params(path, params()).ok()?;
    Some((context, stored))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ftype_names_follow_ggml() {
        assert_eq!(ftype_name(1), "f16");
        assert_eq!(ftype_name(2007), "q8_0");
        assert_eq!(ftype_name(0), "f32");
        assert_eq!(ftype_name(2042), "ftype 42");
    }
}
