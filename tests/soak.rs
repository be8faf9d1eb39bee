//! Load and soak, bounded, on 127.0.0.1 only (issue #6): many idle connections held
//! beside real streams, hundreds of short sessions with the server's memory watched,
//! and Ctrl-C with sessions in flight.
//!
//! Run: `cargo test --release --test soak -- --nocapture` (prints the figures).
//! `RESWHIS_SOAK_IDLE` and `RESWHIS_SOAK_SESSIONS` change the number of idle connections
//! (default 200) and of sequential sessions (default 500).

mod common;

use std::time::{Duration, Instant};

use common::*;
use tungstenite::Message;

const ACTIVE_STREAMS: usize = 4;
/// Memory growth allowed over the sequential sessions, after the warm-up.
const RSS_GROWTH_LIMIT_KIB: u64 = 50 * 1024;
const WARM_UP_SESSIONS: usize = 50;
/// Generous: the machine may be shared and loaded.
const LIMIT: Duration = Duration::from_secs(300);

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Idle connections held beside real streams.
fn idle_connections_beside_streams(server: &TestServer, reference: &str) {
    let idle_connections = env_count("RESWHIS_SOAK_IDLE", 200);
    let started = Instant::now();
    let mut idle: Vec<Client> = (0..idle_connections)
        .map(|_| connect(&server.url("/transcribe")))
        .collect();
    println!(
        "soak: opened {} idle WebSocket connections in {:.1} s",
        idle.len(),
        started.elapsed().as_secs_f64()
    );
    let streams = jfk_streams(server, ACTIVE_STREAMS, true, LIMIT);
    let held = wait_until(Duration::from_secs(60), || {
        active_sessions(server) == (idle_connections + ACTIVE_STREAMS) as u64
    });
    let info = get_json(server.addr, "/info", &[]);
    println!(
        "soak: held {} sessions at once ({} idle + {} streaming), {} open connections",
        info["active_sessions"], idle_connections, ACTIVE_STREAMS, info["open_connections"]
    );
    assert!(held, "not all sessions were held at once: {info}");
    for (i, stream) in streams.into_iter().enumerate() {
        let received = stream.join().expect("a streaming client");
        let rate = wer(reference, &received.transcript());
        println!(
            "soak: stream {i}: WER {rate:.3}: {:?}",
            received.transcript()
        );
        assert!(rate < 0.2, "stream {i}: {received:?}");
        assert!(received.done, "stream {i}: {received:?}");
        assert_eq!(received.close.as_ref().map(|c| c.0), Some(1000));
    }
    // The idle connections are all still there, and still answer. A stream's session is
    // counted until its thread has finished closing, just after the client saw the close.
    assert!(
        wait_until(Duration::from_secs(10), || active_sessions(server)
            == idle_connections as u64),
        "expected {idle_connections} idle sessions, found {}",
        active_sessions(server)
    );
    for client in &mut idle {
        client.send(Message::Ping(b"soak".to_vec().into())).unwrap();
    }
    for client in &mut idle {
        let _ = client.close(None);
        let _ = client.flush();
    }
    drop(idle);
    assert!(
        wait_until(Duration::from_secs(120), || active_sessions(server) == 0),
        "idle sessions left behind: {}",
        active_sessions(server)
    );
    println!(
        "soak: idle + streaming phase took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Many short sessions one after another; the server's memory must not keep growing.
fn sequential_short_sessions(server: &TestServer, pcm: &[u8]) {
    let count = env_count("RESWHIS_SOAK_SESSIONS", 500).max(1);
    let pid = server.child.id();
    let before = vm_rss_kib(pid);
    let mut warm = before;
    let started = Instant::now();
    // Half a second of audio each, a different slice of jfk each time.
    let slices: Vec<&[u8]> = pcm
        .chunks(SECOND / 2)
        .filter(|c| c.len() == SECOND / 2)
        .collect();
    for i in 0..count {
        if i == WARM_UP_SESSIONS.min(count / 2) {
            warm = vm_rss_kib(pid);
        }
        let session_started = Instant::now();
        let mut client = connect(&server.url("/transcribe"));
        let received = stream_pcm(
            &mut client,
            slices[i % slices.len()],
            FRAME_100MS,
            false,
            LIMIT,
        );
        if i < 3 || (i + 1) % 100 == 0 {
            println!(
                "soak: session {} took {} ms: {:?}",
                i + 1,
                session_started.elapsed().as_millis(),
                received.transcript()
            );
        }
        assert!(
            received.done && received.close.as_ref().map(|c| c.0) == Some(1000),
            "session {i}: {received:?}"
        );
    }
    let took = started.elapsed();
    assert!(
        wait_until(Duration::from_secs(60), || active_sessions(server) == 0),
        "sessions left behind"
    );
    let after = vm_rss_kib(pid);
    println!(
        "soak: {count} sequential sessions in {:.1} s ({:.0} ms each); server RSS {} MiB \
         before, {} MiB after {} warm-up sessions, {} MiB after all ({:+} KiB since the warm-up)",
        took.as_secs_f64(),
        took.as_secs_f64() * 1000.0 / count as f64,
        before / 1024,
        warm / 1024,
        WARM_UP_SESSIONS.min(count / 2),
        after / 1024,
        after as i64 - warm as i64
    );
    assert!(
        after <= warm + RSS_GROWTH_LIMIT_KIB,
        "RSS grew from {warm} KiB to {after} KiB over {count} sessions"
    );
}

/// Ctrl-C with sessions in flight: each gets its text, `done` and 1001; exit status 0.
fn interrupt_with_active_sessions(server: &mut TestServer) {
    let streams = jfk_streams(server, 3, false, LIMIT);
    assert!(
        wait_until(Duration::from_secs(60), || active_sessions(server) == 3),
        "the sessions did not start"
    );
    // Let them send a few seconds of speech.
    std::thread::sleep(Duration::from_secs(4));
    let (status, took) = server.interrupt_and_wait(Duration::from_secs(120));
    println!(
        "soak: Ctrl-C with 3 active sessions: exit status {status:?} after {:.2} s",
        took.as_secs_f64()
    );
    for (i, stream) in streams.into_iter().enumerate() {
        let received = stream.join().expect("a streaming client");
        println!("soak: interrupted stream {i}: {:?}", received.transcript());
        assert!(
            received.done,
            "stream {i} not flushed: {received:?}; server log:\n{}",
            server.log()
        );
        assert!(
            !received.committed.is_empty(),
            "stream {i} got no text: {received:?}"
        );
        assert_eq!(
            received.close.as_ref().map(|c| c.0),
            Some(1001),
            "stream {i}: {received:?}"
        );
    }
    assert_eq!(status, Some(0), "exit status; log:\n{}", server.log());
}

#[test]
fn soak() {
    let (pcm, reference) = jfk();
    let mut server = TestServer::start(&[
        "--max-sessions",
        "256",
        // The idle connections outlive the default 30 s on a slow machine.
        "--idle-timeout",
        "600",
        "--min-chunk-size",
        "0.5",
        "--shutdown-timeout",
        "30",
    ]);
    idle_connections_beside_streams(&server, &reference);
    sequential_short_sessions(&server, &pcm);
    interrupt_with_active_sessions(&mut server);
}
