//! Reliability and security limits, each provoked for real: the real binary with the
//! real tiny.en model, real sockets on 127.0.0.1 (issue #6).
//!
//! Run: `cargo test --release --test reliability -- --nocapture`

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use tungstenite::Message;

/// Generous: the test machine may be shared and loaded.
const LIMIT: Duration = Duration::from_secs(240);

fn start(extra: &[&str]) -> TestServer {
    start_with_flush_grace(extra)
}

// 1. --max-sessions
#[test]
fn sessions_beyond_max_sessions_are_refused_with_503() {
    let _serial = serial();
    let server = start(&["--max-sessions", "2"]);
    let first = connect(&server.url("/transcribe"));
    let second = connect(&server.url("/transcribe"));
    let (status, response) = ws_upgrade_raw(server.addr, "/transcribe", &[]);
    assert_eq!(status, 503, "{response}");
    assert!(
        response.contains("server busy: all 2 session slots are in use"),
        "no reason in the body: {response}"
    );
    assert!(response.contains("Retry-After: 5"), "{response}");
    assert_eq!(info(&server)["active_sessions"], 2);

    // A slot freed is usable again.
    close(first);
    assert!(
        wait_until(Duration::from_secs(30), || info(&server)["active_sessions"]
            == 1),
        "the closed session still counts: {}",
        info(&server)
    );
    serve_jfk_correctly(&server, "session after a slot was freed");
    drop(second);
}

// 2. --max-message-bytes
#[test]
fn an_oversize_message_closes_1009_after_flushing_the_text() {
    let _serial = serial();
    let server = start(&["--max-message-bytes", "65536", "--idle-timeout", "600"]);
    let (pcm, reference) = jfk();
    let mut client = connect(&server.url("/transcribe"));
    let started = Instant::now();
    let mut received = Received::default();
    // Text committed before the oversize frame…
    let sent = stream_until_first_commit(&mut client, &pcm, &mut received, started);
    let before = received.committed.clone();
    // …the rest of the audio at once (pending when the frame arrives)…
    for frame in pcm[sent..].chunks(FRAME_100MS) {
        client.send(Message::binary(frame.to_vec())).unwrap();
    }
    // …then a frame just over the limit (no end of stream: the flush comes from `fail`).
    client.send(Message::binary(vec![0u8; 65_538])).unwrap();
    finish(&mut client, &mut received, started, LIMIT);
    println!("oversize frame: {received:?}");

    assert!(
        received
            .errors
            .iter()
            .any(|e| e.contains("at most 65536 bytes")),
        "no error message about the size: {received:?}"
    );
    let (code, reason) = received.close.clone().expect("the server closes");
    assert_eq!(code, 1009, "close code: {received:?}");
    assert!(!reason.is_empty(), "close without a reason");
    assert_eq!(
        &received.committed[..before.len()],
        &before[..],
        "text committed before the oversize frame was lost"
    );
    // The audio pending when the frame arrived was transcribed and sent too (jfk's last
    // words only come with the flush: LocalAgreement needs a second pass to commit).
    let rate = wer(&reference, &received.transcript());
    assert!(
        rate < 0.2,
        "pending audio not flushed: WER {rate:.2}: {:?}",
        received.transcript()
    );
    assert!(received.done, "{received:?}");
}

// 3. --idle-timeout
#[test]
fn an_idle_session_is_flushed_and_closed_1008() {
    let _serial = serial();
    let server = start(&["--idle-timeout", "2"]);
    let (pcm, reference) = jfk();
    let mut client = connect(&server.url("/transcribe"));
    let started = Instant::now();
    let mut received = Received::default();
    for frame in pcm.chunks(FRAME_100MS) {
        client.send(Message::binary(frame.to_vec())).unwrap();
    }
    // Silence: no more audio, no end of stream.
    let silent_from = started.elapsed();
    finish(&mut client, &mut received, started, LIMIT);
    println!(
        "idle session, closed {:.1} s into the silence: {received:?}",
        (started.elapsed() - silent_from).as_secs_f64()
    );

    assert!(
        received
            .errors
            .iter()
            .any(|e| e.contains("no data for 2 s")),
        "no idle error message: {received:?}"
    );
    assert_jfk_flushed(&received, &reference, "idle session");
    let (code, reason) = received.close.clone().expect("the server closes");
    assert_eq!(code, 1008, "{received:?}");
    assert!(reason.contains("idle timeout"), "reason {reason:?}");
    let closed_after = (started.elapsed() - silent_from).as_secs_f64();
    assert!(
        closed_after >= 1.9,
        "the session ended {closed_after:.1} s into the silence, before the idle timeout"
    );
}

fn assert_jfk_flushed(received: &Received, reference: &str, what: &str) {
    assert_jfk_text(what, received, reference, 0.2);
}

// 4. --max-session-duration
#[test]
fn a_session_past_its_maximum_duration_is_flushed_and_closed_1008() {
    let _serial = serial();
    let server = start(&["--max-session-duration", "3"]);
    let (pcm, _) = jfk();
    let mut client = connect(&server.url("/transcribe"));
    // Real time: the limit (3 s) comes long before the audio's end (11 s).
    let received = stream_until_closed(&mut client, &pcm, FRAME_100MS, true, true, LIMIT);
    println!("long session: {received:?}");

    assert!(
        received
            .errors
            .iter()
            .any(|e| e.contains("maximum session duration reached")),
        "no duration error message: {received:?}"
    );
    let (code, reason) = received.close.clone().expect("the server closes");
    assert_eq!(code, 1008, "{received:?}");
    assert!(reason.contains("maximum session duration"), "{reason:?}");
    assert!(received.done, "not flushed (no done): {received:?}");
    // About 3 s of jfk was received: "And so my fellow Americans…", flushed.
    let text = received.transcript().to_lowercase();
    assert!(text.contains("fellow"), "text not flushed: {text:?}");
    assert!(!text.contains("your country"), "too much text: {text:?}");
}

/// Outcome of a client that never completes its request head.
fn dropped_after(mut stream: TcpStream, drip: Option<&[u8]>, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(250)))
        .unwrap();
    let mut drip = drip.map(|d| d.iter().cycle());
    let mut buffer = [0u8; 1024];
    let mut response = Vec::new();
    while started.elapsed() < limit {
        if let Some(bytes) = drip.as_mut() {
            if stream.write_all(&[*bytes.next().unwrap()]).is_err() {
                return Some(started.elapsed());
            }
        }
        match stream.read(&mut buffer) {
            Ok(0) => {
                let text = String::from_utf8_lossy(&response);
                assert!(
                    response.is_empty() || text.starts_with("HTTP/1.1 408"),
                    "unexpected answer: {text}"
                );
                return Some(started.elapsed());
            }
            Ok(n) => response.extend_from_slice(&buffer[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(started.elapsed()),
        }
    }
    None
}

// 5. --handshake-timeout
#[test]
fn slowloris_and_half_open_clients_are_dropped_while_others_are_served() {
    let _serial = serial();
    let server = start(&["--handshake-timeout", "1"]);
    let limit = Duration::from_secs(20);
    let addr = server.addr;
    let slowloris = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"GET /info HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        dropped_after(stream, Some(b"X-Slow: aaaa\r\n"), limit)
    });
    let half_open: Vec<_> = (0..10)
        .map(|_| {
            std::thread::spawn(move || {
                let stream = TcpStream::connect(addr).unwrap();
                dropped_after(stream, None, limit)
            })
        })
        .collect();
    // Meanwhile, normal clients are served.
    assert_eq!(server.get("/health").0, 200);
    serve_jfk_correctly(&server, "session beside slow clients");

    let slow = slowloris.join().unwrap();
    println!("slowloris dropped after {slow:?}");
    let slow = slow.expect("the slowloris client was never dropped");
    assert!(slow < Duration::from_secs(6), "dropped only after {slow:?}");
    for client in half_open {
        let after = client.join().unwrap();
        println!("half-open client dropped after {after:?}");
        let after = after.expect("a half-open client was never dropped");
        assert!(
            after < Duration::from_secs(6),
            "dropped only after {after:?}"
        );
    }
    assert!(
        wait_until(Duration::from_secs(10), || info(&server)["active_sessions"]
            == 0),
        "sessions left behind: {}",
        info(&server)
    );
}

/// Connects and reads whatever the server says without sending anything.
fn read_unprompted(addr: std::net::SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

// 6. --max-connections
#[test]
fn connections_beyond_max_connections_get_503_and_are_closed() {
    let _serial = serial();
    let server = start(&["--max-connections", "3"]);
    let sessions: Vec<Client> = (0..3)
        .map(|_| connect(&server.url("/transcribe")))
        .collect();
    // read_to_end returning proves the connection was closed.
    let response = read_unprompted(server.addr);
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert!(response.contains("too many connections"), "{response}");
    // Clients that send their request first get the same answer: the refusal is not
    // lost to a reset (closing with the request unread resets; 2 in 800 read nothing).
    for _ in 0..50 {
        let (status, body) = server.get("/health");
        assert_eq!(status, 503, "/health beyond the limit: {body}");
    }

    let mut sessions = sessions.into_iter();
    close(sessions.next().unwrap());
    assert!(
        wait_until(Duration::from_secs(30), || server.get("/health").0 == 200),
        "a freed connection slot is not reusable"
    );
    drop(sessions);
}

// 7. --api-key
#[test]
fn the_api_key_guards_transcribe_and_info_details() {
    let _serial = serial();
    let key = "s3cret-key";
    let server = start(&["--api-key", key]);
    let bearer = format!("Bearer {key}");
    for (path, headers) in [
        ("/transcribe", vec![]),
        ("/transcribe", vec![("Authorization", "Bearer wrong")]),
        ("/transcribe?token=wrong", vec![]),
        ("/transcribe?token=", vec![]),
        ("/transcribe", vec![("Authorization", key)]),
    ] {
        let (status, response) = ws_upgrade_raw(server.addr, path, &headers);
        assert_eq!(status, 401, "{path} {headers:?}: {response}");
        assert!(response.contains("API key"), "{response}");
        assert!(response.contains("WWW-Authenticate: Bearer"), "{response}");
    }

    // The right key, as a header: a full session.
    let (pcm, reference) = jfk();
    let mut client = connect_with(&server.url("/transcribe"), &[("Authorization", &bearer)]);
    let received = stream_pcm(&mut client, &pcm, FRAME_100MS, false, LIMIT);
    assert_jfk(&received, &reference, "session with the key in a header");
    // …and as ?token=.
    let mut client = connect(&server.url(&format!("/transcribe?token={key}")));
    let received = stream_pcm(&mut client, &pcm[..SECOND * 3], FRAME_100MS, false, LIMIT);
    assert!(received.done, "{received:?}");
    assert!(received.transcript().contains("fellow"), "{received:?}");

    let basic = [
        "auth_required",
        "backend",
        "language",
        "language_detection",
        "languages",
        "minimum_chunk_size",
        "model_size",
        "sampling_rate",
        "translation",
        "use_voice_activity_detection",
        "version",
        "voice_activity_controller",
    ];
    for (path, headers) in [
        ("/info", vec![]),
        ("/info", vec![("Authorization", "Bearer wrong")]),
        ("/info?token=wrong", vec![]),
    ] {
        let info = get_json(server.addr, path, &headers);
        let mut keys: Vec<&str> = info
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        keys.sort();
        assert_eq!(keys, basic, "{path} {headers:?} without the key: {info}");
        assert_eq!(info["auth_required"], true);
    }
    for (path, headers) in [
        (
            "/info".to_string(),
            vec![("Authorization", bearer.as_str())],
        ),
        (format!("/info?token={key}"), vec![]),
    ] {
        let info = get_json(server.addr, &path, &headers);
        for detail in [
            "active_sessions",
            "open_connections",
            "limits",
            "stats",
            "workers",
        ] {
            assert!(info.get(detail).is_some(), "{path}: no {detail}: {info}");
        }
        for key in basic {
            assert!(info.get(key).is_some(), "{path}: no {key}: {info}");
        }
    }
    let (status, body) = server.get("/health");
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
}

// 9. /health
#[test]
fn health_is_ok() {
    let _serial = serial();
    let server = start(&[]);
    let (status, body) = server.get("/health");
    assert_eq!(status, 200);
    let value: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(value, serde_json::json!({ "status": "ok" }));
}
