//! Model files that are not what they should be, given to the real binary.

mod common;

use common::*;

#[test]
fn a_model_file_cut_short_is_refused_with_a_message() {
    // Cut in its vocabulary (whisper.cpp alone loaded that one and then aborted the
    // process) and in its tensors.
    let model = std::fs::read(model_path()).unwrap();
    let dir = unique_temp_dir("cut-model");
    for cut in [1_000, model.len() / 2] {
        let path = dir.join(format!("ggml-cut-{cut}.bin"));
        std::fs::write(&path, &model[..cut]).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_reswhis"))
            .args(["serve", "--port", "0", "--model"])
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "cut at {cut}: {stderr}");
        assert!(
            stderr.contains("could not be loaded"),
            "cut at {cut}: {stderr}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}
