//! Stopping the server the way services are stopped: SIGTERM (systemd, `docker stop`,
//! Kubernetes) behaves exactly like Ctrl-C — every live session gets its text, `done`
//! and close 1001, and the server exits 0 — and a second signal exits at once.
#![cfg(unix)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use tungstenite::Message;

const LIMIT: Duration = Duration::from_secs(180);

/// Three clients streaming jfk.wav in real time; after five seconds the server gets
/// `signal`: each session must get its text so far, `done` and close 1001, and the
/// server must exit 0.
fn stop_with(signal: i32, name: &str) {
    let _turn = serial();
    let mut server = TestServer::start(&["--threads", "1", "--shutdown-timeout", "60"]);
    let sessions = jfk_streams(&server, 3, true, LIMIT);
    assert!(
        wait_until(Duration::from_secs(60), || active_sessions(&server) == 3),
        "the sessions did not start"
    );
    // Five seconds of speech: "And so my fellow Americans, ask not …".
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(server.get("/ready").0, 200);
    let (status, took) = server.signal_and_wait(signal, Duration::from_secs(120));
    println!("{name} with 3 live sessions: exit {status:?} after {took:?}");
    for (i, session) in sessions.into_iter().enumerate() {
        let received = session.join().expect("a streaming client");
        let transcript = received.transcript();
        println!("{name}: session {i}: {transcript:?}");
        assert!(
            starts_with_words(&transcript, "and so my fellow"),
            "session {i} lost its text: {received:?}\n{}",
            server.log()
        );
        assert!(received.done, "session {i} not flushed: {received:?}");
        assert_eq!(
            received.close.as_ref().map(|c| c.0),
            Some(1001),
            "session {i}: {received:?}"
        );
    }
    assert_eq!(status, Some(0), "exit status; log:\n{}", server.log());
    assert!(server.log().contains("shutting down"), "{}", server.log());
}

#[test]
fn sigterm_flushes_every_session_like_ctrl_c() {
    stop_with(libc::SIGTERM, "SIGTERM");
}

#[test]
fn sigint_flushes_every_session() {
    stop_with(libc::SIGINT, "SIGINT");
}

#[test]
fn readiness_turns_503_at_once_and_a_second_signal_exits_at_once() {
    let _turn = serial();
    let mut server = TestServer::start(&[
        "--threads",
        "1",
        "--workers",
        "1",
        "--shutdown-timeout",
        "120",
    ]);
    // Three sessions with a minute of audio each, sent as fast as TCP takes it: the
    // single worker needs a while to flush them all.
    let (pcm, _) = jfk();
    let minute: Vec<u8> = pcm.iter().copied().cycle().take(60 * SECOND).collect();
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let mut client = connect(&server.url("/transcribe"));
            for frame in minute.chunks(SECOND) {
                client.send(Message::binary(frame.to_vec())).unwrap();
            }
            client
        })
        .collect();
    assert!(wait_until(Duration::from_secs(30), || active_sessions(
        &server
    ) == 3));
    let started = Instant::now();
    server.signal(libc::SIGTERM);
    // Readiness fails at once (a load balancer stops sending new clients) while the
    // sessions drain; /health still answers.
    assert!(
        wait_until(Duration::from_secs(5), || server.get("/ready").0 == 503),
        "/ready did not turn 503"
    );
    let (_, body) = server.get("/ready");
    assert!(body.contains("shutting down"), "{body}");
    assert_eq!(server.get("/health").0, 200);
    assert_eq!(
        server.child.try_wait().unwrap(),
        None,
        "the server exited before flushing three minutes of audio"
    );
    let second = Instant::now();
    let (status, _) = server.signal_and_wait(libc::SIGTERM, Duration::from_secs(30));
    println!(
        "second SIGTERM {:.2} s after the first: exit {status:?} {:.2} s later",
        second.duration_since(started).as_secs_f64(),
        second.elapsed().as_secs_f64()
    );
    assert_eq!(status, Some(130), "log:\n{}", server.log());
    assert!(
        server.log().contains("second stop signal"),
        "{}",
        server.log()
    );
    drop(clients);
}
