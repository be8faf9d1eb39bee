//! More than one machine: two reswhis instances behind nginx with
//! `deploy/nginx-balanced.conf`, used as is (127.0.0.1:8001 and :8002 behind :8080).
//! Four clients stream through nginx and both instances get sessions (per their
//! `/metrics`); one instance is stopped with SIGTERM mid-stream — its clients get their
//! text and 1001 through the proxy — and a new client still gets all its text.
//!
//! Needs `nginx` (Debian: `apt-get install -y nginx`); without it the test says so and
//! passes. The three ports must be free.
#![cfg(unix)]

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const BALANCER: &str = "127.0.0.1:8080";
const LIMIT: Duration = Duration::from_secs(240);

/// nginx in the foreground with the repository's config; stopped when dropped.
struct Nginx {
    child: Child,
    prefix: PathBuf,
}

impl Nginx {
    fn start(binary: &PathBuf) -> Nginx {
        let prefix = unique_temp_dir("reswhis-lb");
        let config = manifest_dir().join("deploy/nginx-balanced.conf");
        // In the foreground, so that the test owns the process; as root, workers run as
        // root too (nobody could not write to the test's temporary directory).
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let globals = if root {
            "daemon off; user root;"
        } else {
            "daemon off;"
        };
        let child = Command::new(binary)
            .arg("-p")
            .arg(&prefix)
            .arg("-c")
            .arg(&config)
            .args(["-g", globals])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting nginx");
        let mut nginx = Nginx { child, prefix };
        let listening = wait_until(Duration::from_secs(30), || {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                panic!("nginx exited ({status}); error log:\n{}", nginx.error_log());
            }
            TcpStream::connect(BALANCER).is_ok()
        });
        assert!(listening, "nginx does not listen:\n{}", nginx.error_log());
        nginx
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.prefix.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.prefix);
    }
}

/// A counter or gauge from an instance's /metrics.
fn metric(server: &TestServer, name: &str) -> f64 {
    let (status, body) = server.get("/metrics");
    assert_eq!(status, 200, "{body}");
    body.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics:\n{body}"))
}

fn stream_through_balancer() -> Received {
    let (pcm, _) = jfk();
    let mut client = connect(&format!("ws://{BALANCER}/transcribe"));
    stream_until_closed(&mut client, &pcm, FRAME_100MS, true, true, LIMIT)
}

#[test]
fn sessions_spread_over_two_instances_and_survive_one_stopping() {
    let Some(binary) = nginx_binary() else {
        println!("nginx not installed (apt-get install -y nginx): skipping the balancer test");
        return;
    };
    for port in ["127.0.0.1:8001", "127.0.0.1:8002", BALANCER] {
        let address: SocketAddr = port.parse().unwrap();
        assert!(
            TcpListener::bind(address).is_ok(),
            "{port} is in use: deploy/nginx-balanced.conf needs 8001, 8002 and 8080"
        );
    }
    let args = [
        "--threads",
        "1",
        "--workers",
        "1",
        "--shutdown-timeout",
        "60",
    ];
    let mut first = TestServer::start_on(8001, &args);
    let second = TestServer::start_on(8002, &args);
    let nginx = Nginx::start(&binary);
    let (_, reference) = jfk();

    // Four clients in real time, a quarter of a second apart.
    let clients: Vec<_> = (0..4)
        .map(|i| {
            std::thread::sleep(Duration::from_millis(250 * i));
            std::thread::spawn(stream_through_balancer)
        })
        .collect();
    let both_busy = wait_until(Duration::from_secs(30), || {
        metric(&first, "reswhis_sessions_active") + metric(&second, "reswhis_sessions_active")
            == 4.0
    });
    assert!(
        both_busy,
        "the four sessions did not start:\n{}",
        nginx.error_log()
    );
    let on_first = metric(&first, "reswhis_sessions_active");
    let on_second = metric(&second, "reswhis_sessions_active");
    println!("sessions: {on_first} on 8001, {on_second} on 8002");
    assert!(
        on_first >= 1.0 && on_second >= 1.0,
        "least_conn put all sessions on one instance: {on_first} and {on_second}"
    );

    // Stop the first instance mid-stream.
    std::thread::sleep(Duration::from_secs(4));
    let stopped_at = Instant::now();
    let (status, took) = first.signal_and_wait(libc::SIGTERM, Duration::from_secs(90));
    println!("8001 stopped with SIGTERM: exit {status:?} after {took:?}");
    assert_eq!(status, Some(0), "log:\n{}", first.log());

    let (mut drained, mut finished) = (0, 0);
    for client in clients {
        let received = client.join().expect("a client");
        let transcript = received.transcript();
        let code = received.close.as_ref().map(|c| c.0);
        println!("client: close {code:?}, {transcript:?}");
        assert!(received.done, "{received:?}");
        match code {
            // On the stopped instance: what was said before the stop, flushed.
            Some(1001) => {
                drained += 1;
                let words = reswhis::wer::normalized_words(&transcript);
                assert!(
                    words.starts_with(&["and".into(), "so".into(), "my".into()]),
                    "a drained session lost its text: {received:?}"
                );
            }
            Some(1000) => {
                finished += 1;
                assert!(wer(&reference, &transcript) <= 0.15, "{received:?}");
            }
            other => panic!("close {other:?}: {received:?}\n{}", nginx.error_log()),
        }
    }
    assert_eq!((drained, finished), (on_first as usize, on_second as usize));

    // A new client after the stop: nginx sends it to the instance still running.
    let received = stream_through_balancer();
    println!(
        "new client {:.1} s after the stop: {:?}",
        stopped_at.elapsed().as_secs_f64(),
        received.transcript()
    );
    assert!(received.done, "{received:?}\n{}", nginx.error_log());
    assert_eq!(received.close.as_ref().map(|c| c.0), Some(1000));
    assert!(
        wer(&reference, &received.transcript()) <= 0.15,
        "{received:?}"
    );
    assert!(metric(&second, "reswhis_sessions_total") >= on_second + 1.0);
    drop(nginx);
}
