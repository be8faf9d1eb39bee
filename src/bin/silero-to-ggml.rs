//! `silero-to-ggml SILERO.onnx OUT.bin [VERSION]`: convert Silero VAD's 16 kHz ONNX model
//! (`silero_vad_16k_op15.onnx` from PyPI `silero-vad`) to the ggml file whisper.cpp and
//! reswhis load (see `reswhis::convert::silero`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use reswhis::convert::silero::{convert_silero_onnx, DEFAULT_VERSION};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (input, output, version) = match args.as_slice() {
        [input, output] => (input, output, Some(DEFAULT_VERSION)),
        [input, output, version] => (input, output, parse_version(version)),
        _ => (&String::new(), &String::new(), None),
    };
    let Some(version) = version.filter(|_| !input.is_empty()) else {
        eprintln!("usage: silero-to-ggml SILERO_16K.onnx OUTPUT.bin [VERSION, default 6.2.0]");
        eprintln!("  e.g. silero_vad/data/silero_vad_16k_op15.onnx from PyPI silero-vad 6.2.3");
        return ExitCode::from(2);
    };
    let (input, output) = (PathBuf::from(input), PathBuf::from(output));
    let converted = convert_silero_onnx(&input, &output, version)
        .with_context(|| format!("converting {}", input.display()));
    reswhis::convert::exit_with("silero-to-ggml", converted)
}

fn parse_version(text: &str) -> Option<[i32; 3]> {
    let parts: Vec<i32> = text
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    <[i32; 3]>::try_from(parts).ok()
}
