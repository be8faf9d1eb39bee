//! Plain HTTP: `/info`, `/health`, `/ready`, `/metrics`, the web client, and the reason a
//! `/transcribe` request would be refused.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::json;

use super::websocket::stream_options;
use super::Shared;
use crate::audio::SAMPLE_RATE;
use crate::handshake::{self, Refusal};
use crate::http::{self, HttpResponse, RequestHead, STATIC_FILES};
use crate::info::{self, Info};
use crate::metrics::BuildInfo;
use crate::protocol::SessionOptions;
use crate::session::ShutdownSignal;

/// A stream's queue wait (90th percentile over [`READY_WINDOW`]) beyond which the server
/// says it is not keeping up: its clients' text is then seconds late.
const READY_MAX_QUEUE_WAIT_SEC: f64 = 2.0;
/// How far back readiness looks.
const READY_WINDOW: Duration = Duration::from_secs(30);

/// The response to a plain HTTP request.
pub(super) fn route(head: &RequestHead, shared: &Shared) -> HttpResponse {
    if head.method != "GET" && head.method != "HEAD" {
        return HttpResponse::error(405, "only GET (and WebSocket upgrades) are served")
            .with_header("Allow", "GET, HEAD");
    }
    match head.path.as_str() {
        "/info" => HttpResponse::json_of(200, &info(shared, authorized(head, shared))),
        "/health" => HttpResponse::json(200, &json!({ "status": "ok" })),
        "/ready" => ready(shared),
        "/metrics" if !authorized(head, shared) => Refusal::Unauthorized.response(),
        "/metrics" => HttpResponse::new(
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            shared.metrics.render_prometheus(&BuildInfo {
                version: env!("CARGO_PKG_VERSION").to_string(),
                whisper_cpp: whisper_rs::get_whisper_version().to_string(),
                model: shared.config.model_name().to_string(),
                gpu: shared.config.gpu(),
            }),
        ),
        // Without an upgrade: the reason a session with these options would be refused
        // (the web page asks here, since a browser cannot read a refused upgrade), or 426.
        "/transcribe" => match SessionOptions::from_query(&head.query)
            .map_err(Refusal::BadQuery)
            .and_then(|options| stream_options(&options, shared))
        {
            Err(refusal) => refusal.response(),
            Ok(_) => HttpResponse::error(
                426,
                "/transcribe is a WebSocket endpoint: connect with ws:// (Upgrade: websocket)",
            )
            .with_header("Upgrade", "websocket"),
        },
        path => static_file(path, shared),
    }
}

/// Whether the request carries the API key (always true without one configured).
fn authorized(head: &RequestHead, shared: &Shared) -> bool {
    handshake::authorized(head, shared.config.api_key.as_deref())
}

/// `GET /ready`: 200 while new sessions are welcome, 503 with the reason otherwise.
fn ready(shared: &Shared) -> HttpResponse {
    let max_sessions = shared.config.max_sessions;
    let sessions = shared.metrics.sessions_active.load(Ordering::SeqCst);
    let wait = shared.metrics.queue_wait_p90_within(READY_WINDOW);
    let reason = if shared.is_shutting_down() {
        Some("shutting down".to_string())
    } else if sessions >= max_sessions {
        Some(format!("all {max_sessions} session slots are in use"))
    } else {
        wait.filter(|&w| w > READY_MAX_QUEUE_WAIT_SEC).map(|wait| {
            format!(
                "not keeping up: streams waited {wait:.1} s for a worker (90th percentile, \
                 last {} s)",
                READY_WINDOW.as_secs()
            )
        })
    };
    let body = json!({
        "ready": reason.is_none(),
        "reason": reason,
        "active_sessions": sessions,
        "max_sessions": max_sessions,
        "queue_wait_p90_sec": wait,
    });
    let status = if reason.is_some() { 503 } else { 200 };
    HttpResponse::json(status, &body)
}

/// `/info`: the settings of start-up, with the counters as they are now (`detailed`: the
/// client has the key).
fn info(shared: &Shared, detailed: bool) -> Info {
    let mut info = shared.config.info.clone();
    match (detailed, &mut info.details) {
        (true, Some(details)) => fill_in(details, shared),
        _ => info.details = None,
    }
    info
}

fn fill_in(details: &mut info::Details, shared: &Shared) {
    let metrics = &shared.metrics;
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    details.other_processes_cpu_cores = shared.threads.foreign_cores();
    details.active_sessions = metrics.sessions_active.load(Ordering::SeqCst);
    details.open_connections = shared.open_connections.load(Ordering::SeqCst);
    details.uptime_sec = shared.started.elapsed().as_secs_f64();
    details.stats = info::Stats {
        sessions: load(&metrics.sessions_total),
        audio_seconds: load(&metrics.audio_samples) as f64 / SAMPLE_RATE as f64,
        updates: load(&metrics.updates),
        updates_cut: load(&metrics.updates_cut),
        busy_workers: metrics.busy_workers.load(Ordering::Relaxed),
        transcribe_seconds: load(&metrics.transcribe_micros) as f64 / 1e6,
        update_seconds: metrics.update_duration.recent(),
        update_seconds_short_audio: metrics.update_duration_short.recent(),
        queue_wait_seconds: metrics.queue_wait.recent(),
        update_audio_seconds: metrics.update_audio.recent(),
        commit_latency_seconds: metrics.commit_latency.recent(),
        closes: metrics.closes(),
        process_cpu_seconds: crate::cpu::process_cpu_seconds(),
    };
}

fn static_file(path: &str, shared: &Shared) -> HttpResponse {
    let path = if path == "/" { "/index.html" } else { path };
    if let Some(dir) = &shared.config.static_dir {
        return serve_from_dir(dir, path);
    }
    match STATIC_FILES.iter().find(|f| f.path == path) {
        Some(file) => HttpResponse::new(200, file.content_type, file.body),
        None => not_found(path),
    }
}

fn not_found(path: &str) -> HttpResponse {
    HttpResponse::error(404, &format!("no such page: {path}"))
}

/// A file of `dir` (`--static-dir`), never outside it.
fn serve_from_dir(dir: &Path, path: &str) -> HttpResponse {
    let relative = path.trim_start_matches('/');
    let safe = !relative.is_empty()
        && relative
            .split('/')
            .all(|part| !part.is_empty() && part != ".." && part != "." && !part.contains('\\'));
    if !safe {
        return not_found(path);
    }
    let file: PathBuf = dir.join(relative);
    match std::fs::read(&file) {
        Ok(body) => HttpResponse::new(200, http::content_type_for(relative), body),
        Err(_) => not_found(path),
    }
}
