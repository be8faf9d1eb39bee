//! `ct2-to-ggml CT2_DIR OUT.bin`: convert a CTranslate2 Whisper model directory to the
//! ggml file whisper.cpp loads (see `reswhis::convert`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        eprintln!("usage: ct2-to-ggml CT2_MODEL_DIR OUTPUT.bin");
        eprintln!("  CT2_MODEL_DIR holds model.bin, vocabulary.txt (and config.json)");
        return ExitCode::from(2);
    };
    let (input, output) = (PathBuf::from(input), PathBuf::from(output));
    let converted = reswhis::convert::convert_ct2_dir(&input, &output)
        .with_context(|| format!("converting {}", input.display()));
    reswhis::convert::exit_with("ct2-to-ggml", converted)
}
