//! `/metrics` after real sessions: every family README promises, in a text that
//! Prometheus's own checker (`promtool check metrics`, Debian's `prometheus` package)
//! accepts; the API key rule; `/ready`; and the alerting rules of `deploy/`, checked and
//! unit-tested by promtool, on metrics the server really exports.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(180);

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{series} not in:\n{text}"))
}

#[test]
fn metrics_after_real_sessions_pass_promtool() {
    let server = TestServer::start(&["--threads", "1"]);
    let (pcm, _) = jfk();
    for _ in 0..2 {
        let mut client = connect(&server.url("/transcribe"));
        let received = stream_pcm(&mut client, &pcm, FRAME_100MS, false, LIMIT);
        assert!(received.done, "{received:?}");
    }
    assert!(wait_until(Duration::from_secs(10), || {
        value(&server.get("/metrics").1, "reswhis_sessions_active") == 0.0
    }));
    let (status, text) = server.get("/metrics");
    assert_eq!(status, 200);
    println!("{text}");
    assert_eq!(value(&text, "reswhis_sessions_total"), 2.0);
    assert_eq!(value(&text, "reswhis_audio_seconds_total"), 22.0);
    assert!(value(&text, "reswhis_updates_total") >= 2.0);
    assert_eq!(value(&text, "reswhis_closes_total{code=\"1000\"}"), 2.0);
    assert_eq!(value(&text, "reswhis_busy_workers"), 0.0);
    for family in [
        "reswhis_update_duration_seconds_bucket{le=\"+Inf\"}",
        "reswhis_queue_wait_seconds_count",
        "reswhis_commit_latency_seconds_count",
    ] {
        assert!(value(&text, family) >= 1.0, "{family}");
    }
    assert!(text.contains("reswhis_build_info{"), "{text}");

    // Every metric the alerting rules use is one the server exports.
    let rules = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus-rules.yml"),
    )
    .unwrap();
    let mut used: Vec<&str> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("reswhis_") && word.len() > "reswhis_".len())
        .collect();
    used.sort_unstable();
    used.dedup();
    assert!(used.len() >= 3, "{used:?}");
    for metric in used {
        assert!(
            text.lines().any(|l| l.starts_with(metric)),
            "deploy/prometheus-rules.yml uses {metric}, which /metrics lacks"
        );
    }

    // Prometheus's own parser and linter.
    let mut check = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = check.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "promtool check metrics:\n{report}");
    assert!(
        report.trim().is_empty(),
        "promtool lint findings:\n{report}"
    );
}

fn promtool() -> &'static str {
    ["/usr/bin/promtool", "/usr/local/bin/promtool"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file())
        .expect("promtool not found: `apt-get install prometheus` (scripts/test-deps.sh does)")
}

/// The alerting rules parse, and fire (with the documented text) exactly in the
/// situations their unit tests describe: a falling-behind instance, calls cut, internal
/// errors, an instance down — and not for the healthy one beside it.
#[test]
fn alert_rules_pass_promtool_and_their_unit_tests() {
    let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    for args in [
        &["check", "rules", "prometheus-rules.yml"][..],
        &["test", "rules", "prometheus-rules.test.yml"][..],
    ] {
        let output = Command::new(promtool())
            .args(args)
            .current_dir(&deploy)
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr);
        println!("promtool {args:?}:\n{report}");
        assert!(output.status.success(), "promtool {args:?}:\n{report}");
        assert!(report.contains("SUCCESS"), "{report}");
    }
}

#[test]
fn metrics_need_the_key_and_ready_says_why() {
    let server = TestServer::start(&[
        "--threads",
        "1",
        "--api-key",
        "s3cret",
        "--max-sessions",
        "1",
    ]);
    assert_eq!(server.get("/metrics").0, 401);
    let (status, text) = http_get(server.addr, "/metrics?token=s3cret", &[]);
    assert_eq!(status, 200, "{text}");
    let (status, body) = server.get("/ready");
    assert_eq!(status, 200, "{body}");
    // At the session limit, not ready.
    let _client = connect_with(
        &server.url("/transcribe"),
        &[("Authorization", "Bearer s3cret")],
    );
    assert!(wait_until(Duration::from_secs(10), || server
        .get("/ready")
        .0
        == 503));
    let (_, body) = server.get("/ready");
    assert!(body.contains("session slots"), "{body}");
}
