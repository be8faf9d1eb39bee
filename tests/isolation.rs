//! Sessions are protected from one another, provoked for real with the real binary and
//! model (issue #6): a client that vanishes mid-job, a worker panic while processing
//! one session, a client that sends fast and never reads — each affects only itself.
#![cfg(unix)]

mod common;

use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::Message;

/// Generous: the test machine may be shared and loaded.
const LIMIT: Duration = Duration::from_secs(240);

fn start(extra: &[&str]) -> TestServer {
    start_with_flush_grace(extra)
}

/// A client that vanishes (TCP reset) in the middle of a job.
#[test]
fn a_vanished_client_frees_its_session() {
    let _serial = serial();
    let server = start(&["--idle-timeout", "600"]);
    let (pcm, _) = jfk();
    let mut client = connect(&server.url("/transcribe"));
    let started = Instant::now();
    let mut received = Received::default();
    let sent = stream_until_first_commit(&mut client, &pcm, &mut received, started);
    // More work queued for the worker, then the client disappears without a word.
    for frame in pcm[sent..]
        .chunks(FRAME_100MS)
        .chain(pcm.chunks(FRAME_100MS))
    {
        client.send(Message::binary(frame.to_vec())).unwrap();
    }
    assert_eq!(info(&server)["active_sessions"], 1);
    reset(client);
    assert!(
        wait_until(Duration::from_secs(60), || info(&server)["active_sessions"]
            == 0),
        "the vanished client's session is still active: {}",
        info(&server)
    );
    serve_jfk_correctly(&server, "session after a vanished client");
    // The /info request itself is the only open connection.
    assert!(
        wait_until(Duration::from_secs(30), || info(&server)
            ["open_connections"]
            == 1),
        "{}",
        info(&server)
    );
}

/// A worker panic while processing one session.
#[test]
fn a_worker_panic_fails_only_its_session() {
    let _serial = serial();
    let server = start(&["--fault-injection"]);
    let (pcm, reference) = jfk();

    // A healthy session, streaming in real time across the panic.
    let healthy = {
        let url = server.url("/transcribe");
        let pcm = pcm.clone();
        std::thread::spawn(move || {
            let mut client = connect(&url);
            stream_pcm(&mut client, &pcm, FRAME_100MS, true, LIMIT)
        })
    };
    std::thread::sleep(Duration::from_secs(2));

    // The victim: its first frame (so the first chunk a worker takes) starts with the
    // panic sample, followed by 1.5 s of speech (more than the minimum chunk).
    let mut frame = reswhis::pool::PANIC_SAMPLE.to_le_bytes().to_vec();
    frame.extend_from_slice(&pcm[..48_000]);
    let mut victim = connect(&server.url("/transcribe"));
    let started = Instant::now();
    let mut received = Received::default();
    victim.send(Message::binary(frame)).unwrap();
    finish(&mut victim, &mut received, started, LIMIT);
    println!("panicked session: {received:?}");
    assert!(
        received.errors.iter().any(|e| e.contains("internal error")),
        "no error message: {received:?}"
    );
    assert_eq!(
        received.close.as_ref().map(|c| c.0),
        Some(1011),
        "{received:?}"
    );
    assert!(
        wait_until(Duration::from_secs(10), || server
            .log()
            .contains("worker panicked while processing a stream")),
        "{}",
        server.log()
    );

    let healthy = healthy.join().expect("the healthy session");
    assert_jfk(&healthy, &reference, "session beside the panic");
    serve_jfk_correctly(&server, "session after the panic");
    assert!(
        wait_until(Duration::from_secs(10), || info(&server)["active_sessions"]
            == 0),
        "sessions left behind: {}",
        info(&server)
    );
}

/// Sets SO_RCVBUF (small: the peer's writes block sooner).
fn small_receive_buffer(stream: &TcpStream) {
    let size: libc::c_int = 4096;
    // SAFETY: setsockopt on a socket we own, with a correctly sized int.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &size as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// A client that sends fast and never reads.
#[test]
fn a_slow_reader_does_not_block_the_workers() {
    let _serial = serial();
    let server = start(&["--min-chunk-size", "0.5"]);
    let (pcm, reference) = jfk();
    let stop = Arc::new(AtomicBool::new(false));
    let slow = {
        let url = server.url("/transcribe?interim=1");
        let pcm = pcm.clone();
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut client = connect(&url);
            if let MaybeTlsStream::Plain(stream) = client.get_ref() {
                small_receive_buffer(stream);
                stream
                    .set_write_timeout(Some(Duration::from_secs(2)))
                    .unwrap();
            }
            // Twice real time, forever (the server may stop reading: that is fine),
            // never reading what comes back.
            let started = Instant::now();
            let mut sent = 0usize;
            'outer: while !stop.load(Ordering::SeqCst) {
                for frame in pcm.chunks(FRAME_100MS) {
                    if stop.load(Ordering::SeqCst)
                        || client.send(Message::binary(frame.to_vec())).is_err()
                    {
                        break 'outer;
                    }
                    sent += frame.len();
                    let due = Duration::from_secs_f64(sent as f64 / 64_000.0);
                    if let Some(wait) = due.checked_sub(started.elapsed()) {
                        std::thread::sleep(wait);
                    }
                }
            }
            (sent, client)
        })
    };
    std::thread::sleep(Duration::from_secs(3));
    let started = Instant::now();
    let mut client = connect(&server.url("/transcribe"));
    let received = stream_pcm(&mut client, &pcm, FRAME_100MS, true, LIMIT);
    let took = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let (sent, slow_client) = slow.join().unwrap();
    println!(
        "normal session beside a slow reader: {took:?}; the slow reader sent {:.1} s of audio",
        sent as f64 / SECOND as f64
    );
    assert_jfk(&received, &reference, "session beside a slow reader");
    reset(slow_client);
    assert!(
        wait_until(Duration::from_secs(60), || info(&server)["active_sessions"]
            == 0),
        "{}",
        info(&server)
    );
}
