//! The README's websocat commands, run for real: ffmpeg decodes a file, websocat streams
//! it to a running server, and the whole transcript, last words included, is printed.
//!
//! Why the pipeline looks the way it does: websocat 1.x sends a Close frame when its
//! input ends, and a Close means "the client is leaving" (the server drops its work), so
//! the last words would never come. The pipeline therefore keeps the connection open
//! (`-n`) and ends the stream explicitly with a `{"type":"eos"}` text message. To send
//! both binary audio and a text message over one connection, websocat reads lines: lines
//! that start with `B` are base64-decoded and sent as binary messages (`--base64
//! --binary-prefix B`), others as text. `base64 -w 4096` turns the PCM into such lines
//! (3072 bytes, 96 ms of audio, each).
//!
//! Needs `websocat` (`cargo install websocat --version 1.14.0`), `ffmpeg`
//! (`apt-get install ffmpeg`) and, for the plain-text variant, `jq` (`apt-get install
//! jq`).

mod common;

use std::process::Command;

use common::*;
use reswhis::protocol::{ServerMessage, TaggedMessage};

/// The documented commands, with `$FILE` and `$URL` set by the test. Keep them in sync
/// with the README.
const JSON_LINES: &str = r#"{ ffmpeg -loglevel error -i "$FILE" -f s16le -ac 1 -ar 16000 - | base64 -w 4096 | sed 's/^/B/'; echo '{"type":"eos"}'; } | websocat -n --base64 --binary-prefix B "$URL""#;
const PLAIN_TEXT: &str = r#"{ ffmpeg -loglevel error -i "$FILE" -f s16le -ac 1 -ar 16000 - | base64 -w 4096 | sed 's/^/B/'; echo '{"type":"eos"}'; } | websocat -n --base64 --binary-prefix B "$URL" | jq --unbuffered -j '.content // empty'; echo"#;

/// Panics with the install command unless `tool` runs.
fn require(tool: &str, version_flag: &str, install: &str) {
    let found = Command::new(tool)
        .arg(version_flag)
        .env("PATH", path_with_cargo_bin())
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "`{tool}` is needed for this test and was not found on PATH: install it with `{install}`"
    );
}

/// `websocat` from PATH or ~/.cargo/bin (where `cargo install` puts it).
fn path_with_cargo_bin() -> String {
    let path = std::env::var("PATH").unwrap_or_default();
    match std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo")))
    {
        Some(home) => format!("{path}:{}", home.join("bin").display()),
        None => path,
    }
}

/// Runs `command` with bash against a fresh server streaming jfk.wav; returns stdout.
fn run_pipeline(command: &str) -> String {
    require("ffmpeg", "-version", "apt-get install ffmpeg");
    require(
        "websocat",
        "--version",
        "cargo install websocat --version 1.14.0",
    );
    // A generous flush deadline: the machine may be loaded.
    let server = TestServer::start(&["--threads", "1", "--shutdown-timeout", "120"]);
    let file = shared_audio("jfk.wav");
    let output = Command::new("timeout")
        .args(["300", "bash", "-c", command])
        .env("PATH", path_with_cargo_bin())
        .env("FILE", &file)
        .env("URL", server.url("/transcribe"))
        .output()
        .expect("running bash");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    println!("$ {command}\n{stdout}");
    assert!(
        output.status.success(),
        "the pipeline failed ({}); stdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    stdout
}

fn assert_whole_transcript(text: &str) {
    let (_, reference) = jfk();
    let wer = wer(&reference, text);
    assert_jfk_ending("websocat", text);
    assert!(wer <= 0.15, "WER {wer:.3}: {text:?}");
}

#[test]
fn websocat_prints_json_lines_with_the_last_words() {
    let _turn = serial();
    let stdout = run_pipeline(JSON_LINES);
    let mut transcript = String::new();
    let mut done = false;
    for line in stdout.lines() {
        let message = ServerMessage::parse(line)
            .unwrap_or_else(|e| panic!("not a server message ({e}): {line:?}\n{stdout}"));
        match message {
            ServerMessage::Committed { content, .. } => transcript.push_str(&content),
            ServerMessage::Tagged(TaggedMessage::Done) => done = true,
            ServerMessage::Tagged(_) => {}
        }
    }
    assert!(done, "no done message:\n{stdout}");
    assert_whole_transcript(&transcript);
}

#[test]
fn websocat_with_jq_prints_the_whole_transcript() {
    let _turn = serial();
    require("jq", "--version", "apt-get install jq");
    let stdout = run_pipeline(PLAIN_TEXT);
    assert!(!stdout.contains('{'), "not plain text: {stdout}");
    assert_whole_transcript(&stdout);
}
