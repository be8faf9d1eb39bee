//! The server on a busy machine and with clients that frame audio their own way: a
//! process busy-looping on a core during a stream, frames from one sample to a second,
//! and a Whisper call that runs out of its time budget (provoked by a fault-injection
//! hook). Each must give the whole text; speed is measured by `reswhis bench`
//! (`--busy-cores`, `--frame-ms`), not asserted here.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use tungstenite::Message;

const LIMIT: Duration = Duration::from_secs(240);
const MAX_WER: f64 = 0.15;

/// A process that keeps one core busy until dropped.
struct Spinner(Child);

impl Spinner {
    fn start() -> Spinner {
        let child = Command::new(env!("CARGO_BIN_EXE_reswhis"))
            .arg("spin")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("starting a busy-looping process");
        Spinner(child)
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn stats(server: &TestServer) -> serde_json::Value {
    get_json(server.addr, "/info", &[])
}

fn assert_whole_text(label: &str, received: &Received, reference: &str) {
    assert_jfk_text(label, received, reference, MAX_WER);
    assert!(received.errors.is_empty(), "{label}: {received:?}");
    assert_jfk_ending(label, &received.transcript());
}

#[test]
fn a_busy_core_beside_the_server() {
    let _turn = serial();
    // Default threads: the server picks them per call from the load it sees.
    let server = TestServer::start(&["--shutdown-timeout", "120"]);
    let _spinner = Spinner::start();
    let (pcm, reference) = jfk();
    let mut client = connect(&server.url("/transcribe"));
    let received = stream_pcm(&mut client, &pcm, FRAME_100MS, true, LIMIT);
    assert_whole_text("one busy core", &received, &reference);
    let info = stats(&server);
    let foreign = info["other_processes_cpu_cores"].as_f64().unwrap();
    println!(
        "other processes' load seen: {foreign:.2} cores; update seconds {}",
        info["stats"]["update_seconds"]
    );
    assert!(
        foreign > 0.5,
        "the server did not notice the busy core ({foreign:.2}); it would give each call \
         more threads than there are free cores"
    );
}

#[test]
fn any_framing_gives_the_same_text() {
    let _turn = serial();
    let server = TestServer::start(&["--threads", "1", "--shutdown-timeout", "120"]);
    let (pcm, reference) = jfk();
    // 1024 samples (the original page's ScriptProcessor), 20, 64, 128, 250 ms and 1 s.
    for frame_bytes in [2048, 640, 2048 + 4, 4096, 8000, SECOND] {
        let mut client = connect(&server.url("/transcribe"));
        let received = stream_pcm(&mut client, &pcm, frame_bytes, false, LIMIT);
        assert_whole_text(&format!("{frame_bytes}-byte frames"), &received, &reference);
    }
    // One sample per message for the first two seconds, then 100 ms frames.
    let mut client = connect(&server.url("/transcribe"));
    let (head, rest) = pcm.split_at(2 * SECOND);
    for sample in head.chunks(2) {
        client.send(Message::binary(sample.to_vec())).unwrap();
    }
    let received = stream_pcm(&mut client, rest, FRAME_100MS, false, LIMIT);
    assert_whole_text("1-sample frames", &received, &reference);
}

#[test]
fn a_call_that_runs_out_of_time_is_cut_and_nothing_is_lost() {
    let _turn = serial();
    let server = TestServer::start(&[
        "--threads",
        "1",
        "--fault-injection",
        "--shutdown-timeout",
        "120",
    ]);
    let (mut pcm, reference) = jfk();
    // The hook: an update whose audio starts with this sample has every poll of its
    // time budget slowed down, so whisper.cpp is told to stop.
    pcm[..2].copy_from_slice(&reswhis::pool::SLOW_SAMPLE.to_le_bytes());
    let mut client = connect(&server.url("/transcribe"));
    let received = stream_pcm(&mut client, &pcm, FRAME_100MS, true, LIMIT);
    assert_whole_text("a cut update", &received, &reference);
    let info = stats(&server);
    let cut = info["stats"]["updates_cut"].as_u64().unwrap();
    println!("updates cut: {cut}; {}", info["stats"]);
    assert!(cut >= 1, "no update was cut:\n{}", server.log());
    assert!(server.log().contains("update cut"), "{}", server.log());
}
