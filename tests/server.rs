//! Integration tests over real WebSocket connections: the real `reswhis` binary with the
//! real tiny.en model, one server per test (started on port 0).
//!
//! Run with `cargo test --release --test server -- --nocapture` to see the transcripts
//! and per-piece latencies. No test asserts on timing beyond generous limits: the
//! machine may be loaded. The tests take turns (one server at a time), and each server
//! runs whisper.cpp with one thread: on an oversubscribed machine, whisper.cpp's
//! spinning worker threads otherwise slow every update down many times over.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;
use tungstenite::client::IntoClientRequest;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::Message;

/// How long a session may take to come back with all its text on a loaded machine.
const LIMIT: Duration = Duration::from_secs(180);
/// jfk.wav is 11.0 s long; pieces must lie within it (plus rounding slack).
const AUDIO_END_MS: u64 = 11_100;
const MAX_WER: f64 = 0.15;

/// Starts a server for one test. `--shutdown-timeout` also bounds how long a session
/// waits for its final text after the end of the stream (at least 30 s); a loaded
/// machine needs more.
fn start(extra: &[&str]) -> TestServer {
    start_with_shutdown_timeout("120", extra)
}

fn start_with_shutdown_timeout(seconds: &str, extra: &[&str]) -> TestServer {
    let mut args = vec!["--threads", "1", "--shutdown-timeout", seconds];
    args.extend_from_slice(extra);
    TestServer::start(&args)
}

/// Checks what a session that was sent all of jfk.wav got back.
fn assert_jfk_session(label: &str, received: &Received, reference: &str) {
    assert_jfk_session_within(label, received, reference, MAX_WER);
}

fn assert_jfk_session_within(label: &str, received: &Received, reference: &str, max_wer: f64) {
    assert_jfk_text(label, received, reference, max_wer);
    assert_closed_normally(label, received);
    assert!(
        received.errors.is_empty(),
        "[{label}] errors: {:?}",
        received.errors
    );
    assert_pieces_well_formed(label, received);
}

/// Committed pieces are non-empty, within the audio, and in order.
fn assert_pieces_well_formed(label: &str, received: &Received) {
    let (mut last_from, mut last_to) = (0, 0);
    for (from, to, content, _) in &received.committed {
        assert!(
            !content.trim().is_empty(),
            "[{label}] empty piece: {received:?}"
        );
        assert!(from <= to, "[{label}] from > to: {received:?}");
        assert!(
            *to <= AUDIO_END_MS,
            "[{label}] beyond the audio: {received:?}"
        );
        assert!(
            *from >= last_from && *to >= last_to,
            "[{label}] pieces out of order: {received:?}"
        );
        (last_from, last_to) = (*from, *to);
    }
}

/// Prints each piece with its latency: arrival (since the first frame) minus its end in
/// the audio. Meaningful when the audio was sent in real time.
fn print_latencies(label: &str, received: &Received) -> Vec<f64> {
    let mut latencies = Vec::new();
    for (from, to, content, arrived) in &received.committed {
        let latency = arrived - *to as f64 / 1000.0;
        latencies.push(latency);
        println!(
            "[{label}] {:>6} – {:>6} ms  arrived {arrived:6.2} s  latency {latency:5.2} s  {content:?}",
            from, to
        );
    }
    if !latencies.is_empty() {
        let mean = latencies.iter().sum::<f64>() / latencies.len() as f64;
        let max = latencies.iter().cloned().fold(f64::MIN, f64::max);
        let min = latencies.iter().cloned().fold(f64::MAX, f64::min);
        println!(
            "[{label}] latency over {} pieces: min {min:.2} s, mean {mean:.2} s, max {max:.2} s",
            latencies.len()
        );
    }
    latencies
}

/// Sends `pcm` in frames whose sizes cycle through `sizes` (paced in real time if
/// `realtime`), then `end`, then reads until the server closes.
fn stream_frames(
    client: &mut Client,
    pcm: &[u8],
    sizes: &[usize],
    realtime: bool,
    end: Message,
) -> Received {
    let started = Instant::now();
    let mut received = Received::default();
    let mut sent = 0;
    for size in sizes.iter().cycle() {
        if sent >= pcm.len() {
            break;
        }
        let frame = &pcm[sent..(sent + size).min(pcm.len())];
        client
            .send(Message::binary(frame.to_vec()))
            .expect("sending audio");
        sent += frame.len();
        if realtime {
            common::wait_until_due(client, &mut received, started, sent);
        }
    }
    client.send(end).expect("sending the end of stream");
    finish(client, &mut received, started, LIMIT);
    received
}

fn eos() -> Message {
    Message::text(r#"{"type":"eos"}"#)
}

/// A plain HTTP GET: (status, head, body). The head is lower-cased.
fn http_get_with_head(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).expect("connecting");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_string())
}

/// Waits (generously) until /info reports no active session.
fn wait_for_no_sessions(server: &TestServer) -> Duration {
    let started = Instant::now();
    loop {
        let active = info(server)["active_sessions"].as_u64();
        if active == Some(0) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "active_sessions stays at {active:?}; log:\n{}",
            quiet(&server.log())
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The HTTP status of a refused WebSocket upgrade.
fn refused_status(result: tungstenite::Result<impl Sized>) -> u16 {
    match result {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("expected an HTTP refusal, the upgrade succeeded"),
    }
}

fn set_short_read_timeout(client: &Client) {
    if let MaybeTlsStream::Plain(stream) = client.get_ref() {
        stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
    }
}

/// The server's log without whisper.cpp's model-loading chatter.
fn quiet(log: &str) -> String {
    log.lines()
        .filter(|line| !line.contains("whisper_rs::"))
        .map(|line| format!("{line}\n"))
        .collect()
}

fn assert_no_panic(server: &TestServer) {
    let log = server.log();
    assert!(!log.contains("panicked"), "the server panicked:\n{log}");
}

// 1.
#[test]
fn streams_jfk_in_real_time() {
    let _turn = serial();
    let server = start(&[]);
    let (pcm, reference) = jfk();
    let mut client = connect(&server.url("/transcribe"));
    let received = stream_pcm(&mut client, &pcm, FRAME_100MS, true, LIMIT);
    assert_jfk_session("real time", &received, &reference);
    assert!(
        received.committed.len() >= 2,
        "a real-time stream should commit text as it goes: {received:?}"
    );
    print_latencies("real time", &received);
    assert_no_panic(&server);
}

// 2.
/// Two real-time clients at once: both sessions complete, neither gets the other's text
/// (that would be a WER near 1), interim messages only where asked for. The accuracy
/// bound is looser than elsewhere because of a server bug; see the next test.
/// Two clients at once, each as accurate as one alone (WER ≤ 0.15). This once failed
/// half the time: Whisper repeated a phrase on a short buffer and two hypotheses agreed
/// on the repetition; the policy now cuts such loops.
#[test]
fn two_clients_at_once() {
    two_clients(MAX_WER);
}

fn two_clients(max_wer: f64) {
    let _turn = serial();
    let server = start(&[]);
    let (pcm, reference) = jfk();
    let results: Vec<(String, Received)> = std::thread::scope(|scope| {
        let handles: Vec<_> = [
            ("client A", "/transcribe"),
            ("client B", "/transcribe?interim=1"),
        ]
        .into_iter()
        .map(|(label, path)| {
            let url = server.url(path);
            let pcm = &pcm;
            scope.spawn(move || {
                let mut client = connect(&url);
                let received = stream_pcm(&mut client, pcm, FRAME_100MS, true, LIMIT);
                (label.to_string(), received)
            })
        })
        .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (label, received) in &results {
        print_latencies(label, received);
        assert_jfk_session_within(label, received, &reference, max_wer);
        assert!(
            ends_with_words(&received.transcript(), "your country"),
            "[{label}] {received:?}"
        );
    }
    assert_eq!(results[0].1.interim, 0, "interim without ?interim=1");
    assert!(
        results[1].1.interim > 0,
        "no interim message with ?interim=1: {:?}",
        results[1].1
    );
    assert_no_panic(&server);
}

// 3.
#[test]
fn end_of_stream_returns_the_last_words() {
    let _turn = serial();
    let server = start(&[]);
    let (pcm, reference) = jfk();
    for (label, end) in [
        ("eos message", eos()),
        ("empty binary frame", Message::binary(Vec::new())),
    ] {
        let mut client = connect(&server.url("/transcribe"));
        let received = stream_frames(&mut client, &pcm, &[FRAME_100MS], false, end);
        assert_jfk_session(label, &received, &reference);
        assert!(
            ends_with_words(&received.transcript(), "your country"),
            "[{label}] the last words are missing: {:?}",
            received.transcript()
        );
    }
    assert_no_panic(&server);
}

// 4.
#[test]
fn odd_sized_frames() {
    let _turn = serial();
    let server = start(&[]);
    let (pcm, reference) = jfk();
    let mut client = connect(&server.url("/transcribe"));
    let received = stream_frames(&mut client, &pcm, &[1, 3, 1001, 4097, 3333], false, eos());
    assert_jfk_session("odd frames", &received, &reference);
    assert!(
        ends_with_words(&received.transcript(), "your country"),
        "{:?}",
        received.transcript()
    );
    assert_no_panic(&server);
}

// 5.
#[test]
fn malformed_text_frames_are_reported_and_the_session_goes_on() {
    let _turn = serial();
    let server = start(&[]);
    let (pcm, reference) = jfk();
    let mut client = connect(&server.url("/transcribe"));
    let started = Instant::now();
    let mut received = Received::default();
    let (first, second) = pcm.split_at(pcm.len() / 2);
    for frame in first.chunks(FRAME_100MS) {
        client.send(Message::binary(frame.to_vec())).unwrap();
    }
    let malformed = ["not json", r#"{"type":"nope"}"#, "{}"];
    for text in malformed {
        client.send(Message::text(text)).unwrap();
    }
    for frame in second.chunks(FRAME_100MS) {
        client.send(Message::binary(frame.to_vec())).unwrap();
    }
    client.send(eos()).unwrap();
    finish(&mut client, &mut received, started, LIMIT);
    println!("errors: {:?}", received.errors);
    assert_eq!(
        received.errors.len(),
        malformed.len(),
        "one error per malformed frame: {received:?}"
    );
    received.errors.clear();
    assert_jfk_session("malformed", &received, &reference);
    assert!(ends_with_words(&received.transcript(), "your country"));
    assert_no_panic(&server);
}

// 6.
#[test]
fn http_endpoints() {
    let _turn = serial();
    let server = start(&[]);
    let info = info(&server);
    println!("/info: {info:#}");
    assert_eq!(info["backend"], "whisper.cpp");
    assert!(
        info["model_size"]
            .as_str()
            .is_some_and(|m| m.contains("tiny.en")),
        "model_size: {}",
        info["model_size"]
    );
    assert_eq!(info["language"], "en");
    assert_eq!(info["sampling_rate"], 16000);
    assert!(info["minimum_chunk_size"].as_f64().is_some_and(|s| s > 0.0));
    // On by default (README, "Voice activity").
    assert_eq!(info["voice_activity_controller"], true);
    assert_eq!(info["use_voice_activity_detection"], false);
    assert!(info["version"].as_str().is_some_and(|v| !v.is_empty()));
    assert!(info["workers"].as_u64().is_some_and(|w| w >= 1));
    assert!(info["gpu"].is_boolean());
    if info["gpu"] == false {
        // Quantised as it loads on a CPU (README, "8-bit weights"); every transcription
        // in these tests runs on those weights.
        assert_eq!(info["weights"], "q8_0");
    }
    assert_eq!(info["active_sessions"], 0);
    let as_stored = start(&["--weights", "file"]);
    assert_eq!(
        common::info(&as_stored)["weights"],
        "f16",
        "the standard file is f16"
    );
    drop(as_stored);

    let (status, head, body) = http_get_with_head(server.addr, "/");
    assert_eq!(status, 200, "{head}");
    assert!(
        head.contains("content-type: text/html"),
        "content type of /: {head}"
    );
    assert!(body.to_ascii_lowercase().contains("<html"), "{body}");

    let (status, body) = server.get("/no/such/page");
    assert_eq!(status, 404, "{body}");
    let (status, body) = server.get("/health");
    assert_eq!(status, 200, "{body}");
    let (status, body) = server.get("/transcribe");
    assert_eq!(status, 426, "{body}");
    assert_no_panic(&server);
}

// 7.
#[cfg(unix)]
#[test]
fn ctrl_c_flushes_every_session() {
    let _turn = serial();
    // Ctrl-C waits at most 30 s for the final text (the default, 5 s, is plenty on an
    // idle machine, not on a loaded one).
    let mut server = start_with_shutdown_timeout("30", &[]);
    let (pcm, _) = jfk();
    let mut client = connect(&server.url("/transcribe"));
    let started = Instant::now();
    let mut received = Received::default();
    // Six seconds in real time.
    let before_interrupt = &pcm[..6 * SECOND];
    let mut sent = 0;
    for frame in before_interrupt.chunks(FRAME_100MS) {
        client.send(Message::binary(frame.to_vec())).unwrap();
        sent += frame.len();
        common::wait_until_due(&mut client, &mut received, started, sent);
    }
    let committed_before = received.committed.len();
    let interrupted_at = started.elapsed();
    let stopper = std::thread::spawn(move || {
        let result = server.interrupt_and_wait(Duration::from_secs(60));
        (result, server.log())
    });
    // Keep reading (as a real client does) until the server closes.
    finish(&mut client, &mut received, started, LIMIT);
    let ((code, exit_after), log) = stopper.join().unwrap();
    let log = quiet(&log);
    let transcript = received.transcript();
    println!(
        "interrupted after {:.2} s with {committed_before} piece(s) received; \
         final transcript {transcript:?}; exit {code:?} after {:.2} s",
        interrupted_at.as_secs_f64(),
        exit_after.as_secs_f64()
    );
    assert!(
        received.committed.len() > committed_before,
        "nothing was flushed after the interrupt: {received:?}\n{log}"
    );
    assert!(
        // Spoken in the first 6 s: "And so my fellow Americans, ask not what your…"
        // (tiny.en hears "ask not" alone as "asked not" or "asked not to", and the
        // words cut at 6 s as "what your" or "what you are coming to").
        contains_words(&transcript, "and so my fellow americans")
            && contains_words(&transcript, "not")
            && contains_words(&transcript, "what"),
        "the words before the interrupt are missing: {transcript:?}\n{log}"
    );
    assert!(received.done, "no done: {received:?}\n{log}");
    assert_eq!(
        received.close.as_ref().map(|c| c.0),
        Some(1001),
        "close: {received:?}\n{log}"
    );
    assert_eq!(code, Some(0), "exit status; log:\n{log}");
    assert!(
        exit_after < Duration::from_secs(45),
        "the server took {exit_after:?} to exit; log:\n{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
}

// 8.
#[test]
fn a_client_that_leaves_does_not_hurt_the_server() {
    let _turn = serial();
    let server = start(&[]);
    let (pcm, reference) = jfk();
    let three_seconds = &pcm[..3 * SECOND];

    // Sends a close frame mid-stream and goes.
    let mut client = connect(&server.url("/transcribe"));
    for frame in three_seconds.chunks(FRAME_100MS) {
        client.send(Message::binary(frame.to_vec())).unwrap();
    }
    client.close(None).unwrap();
    drop(client);

    // Drops the TCP connection without a close frame.
    let mut client = connect(&server.url("/transcribe"));
    for frame in three_seconds.chunks(FRAME_100MS) {
        client.send(Message::binary(frame.to_vec())).unwrap();
    }
    client.flush().unwrap();
    drop(client);

    let waited = wait_for_no_sessions(&server);
    println!(
        "active_sessions back to 0 after {:.2} s",
        waited.as_secs_f64()
    );

    let mut client = connect(&server.url("/transcribe"));
    let received = stream_pcm(&mut client, &pcm, FRAME_100MS, false, LIMIT);
    assert_jfk_session("after the others left", &received, &reference);
    wait_for_no_sessions(&server);
    println!("log:\n{}", quiet(&server.log()));
    assert_no_panic(&server);
}

// 9.
#[test]
fn api_key() {
    const KEY: &str = "s3cret-key";
    let _turn = serial();
    let server = start(&["--api-key", KEY]);
    let (pcm, _) = jfk();
    let two_seconds = &pcm[..2 * SECOND];

    let status = refused_status(tungstenite::connect(server.url("/transcribe")));
    assert_eq!(status, 401, "without a key");
    let status = refused_status(tungstenite::connect(server.url("/transcribe?token=wrong")));
    assert_eq!(status, 401, "with a wrong key");

    // ?token=KEY
    let mut client = connect(&server.url(&format!("/transcribe?token={KEY}")));
    let received = stream_pcm(&mut client, two_seconds, FRAME_100MS, false, LIMIT);
    assert!(received.done, "?token: {received:?}");
    assert_eq!(received.close.as_ref().map(|c| c.0), Some(1000));

    // Authorization: Bearer KEY
    let mut request = server.url("/transcribe").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Authorization", format!("Bearer {KEY}").parse().unwrap());
    let (mut client, _) = tungstenite::connect(request).expect("connecting with a bearer token");
    set_short_read_timeout(&client);
    let received = stream_pcm(&mut client, two_seconds, FRAME_100MS, false, LIMIT);
    assert!(received.done, "bearer: {received:?}");
    assert_eq!(received.close.as_ref().map(|c| c.0), Some(1000));
    let transcript = received.transcript();
    assert!(contains_words(&transcript, "and so my"), "{transcript:?}");

    // A wrong bearer token.
    let mut request = server.url("/transcribe").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Authorization", "Bearer nope".parse().unwrap());
    assert_eq!(refused_status(tungstenite::connect(request)), 401);

    // /info without the key: the public part only.
    let public = info(&server);
    assert_eq!(public["backend"], "whisper.cpp");
    assert_eq!(public["sampling_rate"], 16000);
    assert!(
        public.get("active_sessions").is_none(),
        "/info without a key shows details: {public}"
    );
    // With the key (header or query): the details too. (The last session may still be
    // finishing its closing handshake, so active_sessions may be 0 or 1.)
    let bearer = format!("Bearer {KEY}");
    for (path, headers) in [
        (
            "/info".to_string(),
            vec![("Authorization", bearer.as_str())],
        ),
        (format!("/info?token={KEY}"), vec![]),
    ] {
        let (status, body) = http_get(server.addr, &path, &headers);
        assert_eq!(status, 200, "{path}: {body}");
        let detailed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(
            detailed["active_sessions"].as_u64().is_some_and(|n| n <= 1),
            "{path}: {detailed}"
        );
        assert!(detailed["workers"].as_u64().is_some(), "{path}: {detailed}");
    }
    assert_no_panic(&server);
}

// 10.
#[test]
fn max_sessions() {
    let _turn = serial();
    let server = start(&["--max-sessions", "1"]);
    let (pcm, reference) = jfk();
    let mut first = connect(&server.url("/transcribe"));
    first
        .send(Message::binary(pcm[..FRAME_100MS].to_vec()))
        .unwrap();
    let status = refused_status(tungstenite::connect(server.url("/transcribe")));
    assert_eq!(status, 503, "a second session beyond --max-sessions 1");
    // The first session is unaffected.
    let received = stream_pcm(&mut first, &pcm[FRAME_100MS..], FRAME_100MS, false, LIMIT);
    assert!(received.done, "{received:?}");
    assert!(wer(&reference, &received.transcript()) <= MAX_WER);
    // Once it ended, the slot is free again.
    wait_for_no_sessions(&server);
    let mut next = connect(&server.url("/transcribe"));
    let received = stream_pcm(&mut next, &pcm[..2 * SECOND], FRAME_100MS, false, LIMIT);
    assert!(received.done, "{received:?}");
    assert_no_panic(&server);
}
