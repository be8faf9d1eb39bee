//! The server: loads the model, starts the worker pool, accepts connections (one thread
//! each), routes them, and shuts down gracefully.

use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::audio::SAMPLE_RATE;
use crate::config::{ServeArgs, DEFAULT_VAD_MODEL};
use crate::engine::EngineError;
use crate::engine::{CallLanguage, Engine};
use crate::handshake::{self, Refusal, Upgrade};
use crate::http::{self, HeadError, HttpResponse, RequestHead, STATIC_FILES};
use crate::load::ThreadPolicy;
use crate::metrics::{BuildInfo, Metrics};
use crate::pool::{StreamOptions, WorkerPool};
use crate::protocol::SessionOptions;
use crate::protocol::{LanguageChoice, Task};
use crate::session::{self, SessionEnv, SessionLimits, SessionParts, ShutdownSignal};
use crate::vad::{SileroError, SileroModel, VoiceController};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Vad(#[from] SileroError),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
}

/// State shared by every connection thread.
struct Shared {
    args: ServeArgs,
    model_name: String,
    gpu: bool,
    threads_per_worker: u32,
    /// The model (its languages; the workers hold its states).
    engine: Engine,
    pool: WorkerPool,
    /// The Silero model, when it could be loaded (required with --vac or --vad).
    silero: Option<Arc<SileroModel>>,
    limits: SessionLimits,
    shutting_down: AtomicBool,
    /// Set once the sessions have drained: the acceptor stops.
    stop_accepting: AtomicBool,
    open_connections: AtomicUsize,
    /// Chooses the threads of each call.
    threads: Arc<ThreadPolicy>,
    metrics: Arc<Metrics>,
    started: Instant,
}

impl ShutdownSignal for Shared {
    fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }
}

/// A running server. Dropping it does not stop it; call [`Server::shutdown`].
pub struct Server {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    acceptor: JoinHandle<()>,
}

impl Server {
    /// Loads and warms up the model, then listens. Returns once clients can connect.
    pub fn start(args: ServeArgs) -> Result<Server, ServerError> {
        let silero = load_silero(&args)?;
        let model_name = args.model.model_label();
        let model_path = args.model.model_path();
        let workers = args.worker_count();
        let gpu = args.model.use_gpu();
        let threads = Arc::new(args.thread_policy());
        let options = args.model.decode_options(threads.max_threads());
        let threads_per_worker = threads.max_threads();
        log::info!(
            "loading {} ({} worker(s) × {} thread(s){}, {})",
            model_path.display(),
            workers,
            threads_per_worker,
            if threads.adaptive() {
                " at most, fewer while other processes keep cores busy"
            } else {
                ""
            },
            if gpu { "GPU" } else { "CPU" }
        );
        let mut engine = args.model.load_engine(options)?;
        if args.voice.vad {
            let model = silero.clone().expect("loaded when --vad is on");
            engine = engine.with_vad_filter(model);
        }
        let metrics = Arc::new(Metrics::default());
        let pool = WorkerPool::start(
            &engine,
            workers as usize,
            args.max_sessions.max(1),
            args.policy.stream_config(args.fault_injection),
            Arc::clone(&metrics),
            Arc::clone(&threads),
        )?;
        let address = format!("{}:{}", args.host, args.port);
        let listener = TcpListener::bind(&address).map_err(|source| ServerError::Bind {
            address: address.clone(),
            source,
        })?;
        let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
            address: address.clone(),
            source,
        })?;
        let limits = SessionLimits {
            max_message_bytes: args.max_message_bytes,
            idle_timeout: args.idle_timeout(),
            max_duration: args.max_session_duration(),
            shutdown_grace: Duration::from_secs_f64(args.shutdown_timeout),
        };
        let shared = Arc::new(Shared {
            args,
            model_name,
            gpu,
            threads_per_worker,
            threads,
            engine,
            pool,
            silero,
            limits,
            metrics,
            shutting_down: AtomicBool::new(false),
            stop_accepting: AtomicBool::new(false),
            open_connections: AtomicUsize::new(0),
            started: Instant::now(),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("acceptor".into())
                .spawn(move || accept_loop(listener, shared))
                .expect("spawning the acceptor")
        };
        log::info!("listening on http://{local_addr} (WebSocket: ws://{local_addr}/transcribe)");
        Ok(Server {
            shared,
            local_addr,
            acceptor,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets every session flush its text and close (1001), waits for
    /// them up to the shutdown timeout, then stops the workers.
    ///
    /// While the sessions drain, the port still answers HTTP: `/ready` says 503 (so a
    /// load balancer sends new clients elsewhere), new WebSocket upgrades get 503, and
    /// `/health`, `/info` and `/metrics` answer as before.
    pub fn shutdown(self) {
        let started = Instant::now();
        self.shared.shutting_down.store(true, Ordering::SeqCst);
        let deadline =
            started + Duration::from_secs_f64(self.shared.args.shutdown_timeout) + CLOSE_MARGIN;
        while self.shared.metrics.sessions_active.load(Ordering::SeqCst) > 0
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.shared.stop_accepting.store(true, Ordering::SeqCst);
        // Wake the acceptor, blocked in accept(), with a connection of our own.
        let _ = TcpStream::connect_timeout(&wake_address(self.local_addr), Duration::from_secs(1));
        let _ = self.acceptor.join();
        // Every connection thread holds a reference to `shared`; plain HTTP requests
        // finish at once.
        let deadline = deadline.max(Instant::now() + CLOSE_MARGIN);
        while Arc::strong_count(&self.shared) > 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let left = Arc::strong_count(&self.shared) - 1;
        if left > 0 {
            log::warn!("{left} connection(s) still open at shutdown");
        }
        match Arc::try_unwrap(self.shared) {
            Ok(shared) => shared.pool.shutdown(),
            Err(_) => log::warn!("sessions still running; not waiting for the workers"),
        }
        log::info!("stopped in {:.2} s", started.elapsed().as_secs_f64());
    }
}

/// Loads the Silero model: required when the server uses VAC or VAD by default, and
/// loaded if present otherwise, so that clients can ask for `?vac=1`.
fn load_silero(args: &ServeArgs) -> Result<Option<Arc<SileroModel>>, SileroError> {
    let path = args.voice.vad_model_path(&args.model.models_dir);
    if args.voice.needs_model() && !path.exists() {
        fetch_silero(args, &path);
    }
    match SileroModel::load(&path) {
        Ok(model) => {
            log::info!("voice activity model: {}", path.display());
            Ok(Some(model))
        }
        Err(e) if args.voice.needs_model() => Err(e),
        Err(SileroError::Missing { .. }) => Ok(None),
        Err(e) => {
            log::warn!("{e}; ?vac=1 will be refused");
            Ok(None)
        }
    }
}

/// Runs the project's fetch script for the default Silero model when it is missing and
/// the server needs it (the script downloads it, or builds it from PyPI's silero-vad).
fn fetch_silero(args: &ServeArgs, path: &std::path::Path) {
    let dir = &args.model.models_dir;
    if args.voice.vad_model != DEFAULT_VAD_MODEL {
        return;
    }
    let mut command = if cfg!(windows) {
        let mut c = std::process::Command::new("cmd");
        c.arg("/C").arg(dir.join("fetch.bat"));
        c
    } else {
        let mut c = std::process::Command::new("bash");
        c.arg(dir.join("fetch.sh"));
        c
    };
    let script = if cfg!(windows) {
        "fetch.bat"
    } else {
        "fetch.sh"
    };
    if !dir.join(script).is_file() {
        return;
    }
    log::info!(
        "{} is missing: fetching it with {}",
        path.display(),
        dir.join(script).display()
    );
    match command.arg("silero-vad").status() {
        Ok(status) if status.success() => {}
        Ok(status) => log::warn!("{script} silero-vad failed ({status})"),
        Err(e) => log::warn!("cannot run {script}: {e}"),
    }
}

/// Time for closing handshakes after the flush deadline.
const CLOSE_MARGIN: Duration = Duration::from_secs(3);

fn wake_address(local: SocketAddr) -> SocketAddr {
    let mut target = local;
    if local.ip().is_unspecified() {
        target.set_ip(match local {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    target
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .unwrap_or(target)
}

/// Decrements a counter when dropped.
struct CountGuard<'a>(&'a AtomicUsize);

impl Drop for CountGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for connection in listener.incoming() {
        if shared.stop_accepting.load(Ordering::SeqCst) {
            return;
        }
        let mut stream = match connection {
            Ok(stream) => stream,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                log::warn!("accept failed: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let open = shared.open_connections.fetch_add(1, Ordering::SeqCst) + 1;
        if open > shared.args.max_connections {
            shared.open_connections.fetch_sub(1, Ordering::SeqCst);
            let _ = stream.set_nonblocking(true);
            let _ = HttpResponse::error(503, "too many connections; try again later")
                .write_to(&mut stream, false);
            continue;
        }
        let shared = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name("connection".into())
            .spawn(move || {
                let _open = CountGuard(&shared.open_connections);
                handle_connection(stream, &shared);
            });
        if let Err(e) = spawned {
            log::error!("cannot start a connection thread: {e}");
        }
    }
}

fn handle_connection(mut stream: TcpStream, shared: &Shared) {
    let deadline = Instant::now() + Duration::from_secs_f64(shared.args.handshake_timeout);
    let (head, leftover) = match http::read_head(&mut stream, deadline) {
        Ok(request) => request,
        Err(HeadError::Timeout) => {
            let _ = HttpResponse::error(408, "request head not received in time")
                .write_to(&mut stream, false);
            return;
        }
        Err(HeadError::Closed) | Err(HeadError::Io(_)) => return,
        Err(e @ HeadError::TooLarge) => {
            let _ = HttpResponse::error(431, &e.to_string()).write_to(&mut stream, false);
            return;
        }
        Err(e @ HeadError::Malformed(_)) => {
            let _ = HttpResponse::error(400, &e.to_string()).write_to(&mut stream, false);
            return;
        }
    };
    if head.path == "/transcribe" && head.is_websocket_upgrade() {
        handle_websocket(stream, &head, leftover, shared);
        return;
    }
    let head_only = head.method == "HEAD";
    let response = route(&head, shared);
    let _ = response.write_to(&mut stream, head_only);
}

fn route(head: &RequestHead, shared: &Shared) -> HttpResponse {
    if head.method != "GET" && head.method != "HEAD" {
        return HttpResponse::error(405, "only GET (and WebSocket upgrades) are served")
            .with_header("Allow", "GET, HEAD");
    }
    match head.path.as_str() {
        "/info" => HttpResponse::json(200, &info(shared, authorized(head, shared))),
        "/health" => HttpResponse::json(200, &json!({ "status": "ok" })),
        "/ready" => ready(shared),
        "/metrics" if !authorized(head, shared) => HttpResponse::error(
            401,
            "missing or wrong API key: send `Authorization: Bearer KEY` or ?token=KEY",
        )
        .with_header("WWW-Authenticate", "Bearer"),
        "/metrics" => HttpResponse::new(
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            shared.metrics.render_prometheus(&BuildInfo {
                version: env!("CARGO_PKG_VERSION").to_string(),
                whisper_cpp: whisper_rs::get_whisper_version().to_string(),
                model: shared.model_name.clone(),
                gpu: shared.gpu,
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

/// A stream's queue wait (90th percentile over [`READY_WINDOW`]) beyond which the server
/// says it is not keeping up: its clients' text is then seconds late.
const READY_MAX_QUEUE_WAIT_SEC: f64 = 2.0;
/// How far back readiness looks.
const READY_WINDOW: Duration = Duration::from_secs(30);

/// `GET /ready`: 200 while new sessions are welcome, 503 with the reason otherwise.
fn ready(shared: &Shared) -> HttpResponse {
    let sessions = shared.metrics.sessions_active.load(Ordering::SeqCst);
    let wait = shared.metrics.queue_wait_p90_within(READY_WINDOW);
    let reason = if shared.is_shutting_down() {
        Some("shutting down".to_string())
    } else if sessions >= shared.args.max_sessions {
        Some(format!(
            "all {} session slots are in use",
            shared.args.max_sessions
        ))
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
        "max_sessions": shared.args.max_sessions,
        "queue_wait_p90_sec": wait,
    });
    let status = if reason.is_some() { 503 } else { 200 };
    HttpResponse::json(status, &body)
}

fn static_file(path: &str, shared: &Shared) -> HttpResponse {
    let path = if path == "/" { "/index.html" } else { path };
    if let Some(dir) = &shared.args.static_dir {
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

fn serve_from_dir(dir: &std::path::Path, path: &str) -> HttpResponse {
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

/// Whether the request carries the API key (always true without one configured).
fn authorized(head: &RequestHead, shared: &Shared) -> bool {
    handshake::authorized(head, shared.args.api_key.as_deref())
}

fn info(shared: &Shared, detailed: bool) -> serde_json::Value {
    let args = &shared.args;
    let mut info = json!({
        "backend": "whisper.cpp",
        "model_size": shared.model_name,
        "language": args.model.language,
        "sampling_rate": SAMPLE_RATE,
        "minimum_chunk_size": args.policy.min_chunk_size,
        "voice_activity_controller": args.voice.vac,
        "use_voice_activity_detection": args.voice.vad,
        "version": env!("CARGO_PKG_VERSION"),
        "auth_required": args.api_key.is_some(),
        "languages": shared
            .engine
            .language_names()
            .into_iter()
            .map(|(code, name)| json!({ "code": code, "name": name }))
            .collect::<Vec<_>>(),
        "language_detection": shared.engine.is_multilingual(),
        "translation": shared.engine.is_multilingual(),
    });
    if detailed {
        let metrics = &shared.metrics;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let details = json!({
            "whisper_cpp_version": whisper_rs::get_whisper_version(),
            "workers": shared.pool.workers(),
            "threads_per_worker": shared.threads_per_worker,
            "gpu": shared.gpu,
            "beam_size": args.model.beam_size,
            "buffer_trimming_sec": args.policy.buffer_trimming_sec,
            "trim_context_sec": args.policy.trim_context_sec,
            "voice_activity": {
                "model": shared.silero.as_ref().map(|m| {
                    let [major, minor, patch] = m.version;
                    format!("silero-v{major}.{minor}.{patch}")
                }),
                "vac_per_connection": "?vac=1 or ?vac=0",
                "vac_min_silence_ms": args.voice.vac_min_silence_ms,
                "vac_threshold": args.voice.vac_threshold,
                "vac_padding_ms": args.voice.vac_padding_ms,
            },
            "threads_adaptive": shared.threads.adaptive(),
            "other_processes_cpu_cores": shared.threads.foreign_cores(),
            "update_budget_sec": {
                "base": shared.pool.budget().base.as_secs_f64(),
                "per_audio_second": shared.pool.budget().per_audio_second.as_secs_f64(),
            },
            "active_sessions": metrics.sessions_active.load(Ordering::SeqCst),
            "open_connections": shared.open_connections.load(Ordering::SeqCst),
            "uptime_sec": shared.started.elapsed().as_secs_f64(),
            "interim_results": "opt-in: /transcribe?interim=1",
            "limits": {
                "max_sessions": args.max_sessions,
                "max_connections": args.max_connections,
                "max_message_bytes": args.max_message_bytes,
                "idle_timeout_sec": args.idle_timeout,
                "max_session_duration_sec": args.max_session_duration,
                "handshake_timeout_sec": args.handshake_timeout,
            },
            "stats": {
                "sessions": load(&metrics.sessions_total),
                "audio_seconds": load(&metrics.audio_samples) as f64 / SAMPLE_RATE as f64,
                "updates": load(&metrics.updates),
                "updates_cut": load(&metrics.updates_cut),
                "busy_workers": metrics.busy_workers.load(Ordering::Relaxed),
                "transcribe_seconds": load(&metrics.transcribe_micros) as f64 / 1e6,
                "update_seconds": metrics.update_duration.recent(),
                "queue_wait_seconds": metrics.queue_wait.recent(),
                "update_audio_seconds": metrics.update_audio.recent(),
                "commit_latency_seconds": metrics.commit_latency.recent(),
                "closes": metrics.closes(),
                "process_cpu_seconds": crate::cpu::process_cpu_seconds(),
            },
        });
        if let (Some(info), Some(details)) = (info.as_object_mut(), details.as_object()) {
            info.extend(details.clone());
        }
    }
    info
}

fn handle_websocket(mut stream: TcpStream, head: &RequestHead, leftover: Vec<u8>, shared: &Shared) {
    let upgrade = match Upgrade::check(
        head,
        shared.args.api_key.as_deref(),
        shared.is_shutting_down(),
    ) {
        Ok(upgrade) => upgrade,
        Err(refusal) => return refusal.send(&mut stream),
    };
    let sessions = shared
        .metrics
        .sessions_active
        .fetch_add(1, Ordering::SeqCst)
        + 1;
    let _session = CountGuard(&shared.metrics.sessions_active);
    if sessions > shared.args.max_sessions {
        let max_sessions = shared.args.max_sessions;
        return Refusal::Busy { max_sessions }.send(&mut stream);
    }
    let vac = match voice_controller(&upgrade.options, shared) {
        Ok(vac) => vac,
        Err(refusal) => return refusal.send(&mut stream),
    };
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    log::info!("session from {peer} started");
    shared
        .metrics
        .sessions_total
        .fetch_add(1, Ordering::Relaxed);
    let stream_options = match stream_options(&upgrade.options, shared) {
        Ok(options) => options,
        Err(refusal) => return refusal.send(&mut stream),
    };
    let (handle, events) = shared.pool.open_stream(stream_options);
    let parts = SessionParts {
        handle,
        events,
        vac,
        words: upgrade.options.words,
    };
    let env = SessionEnv {
        limits: &shared.limits,
        shutdown: shared,
        metrics: &shared.metrics,
    };
    session::run(stream, &upgrade, leftover, parts, &env);
    log::info!("session from {peer} ended");
}

/// The stream's language and task, if the model can do them.
fn stream_options(options: &SessionOptions, shared: &Shared) -> Result<StreamOptions, Refusal> {
    let language = match &options.language {
        None => CallLanguage::Default,
        Some(LanguageChoice::Code(code)) => {
            shared
                .engine
                .check_language(code)
                .map_err(|e| Refusal::Unavailable(format!("language={code}: {e}")))?;
            CallLanguage::Code(code.clone())
        }
        Some(LanguageChoice::Detect) if !shared.engine.is_multilingual() => {
            return Err(Refusal::Unavailable(format!(
                "language=auto needs a multilingual model; this server runs {} (English only)",
                shared.model_name
            )))
        }
        Some(LanguageChoice::Detect) => CallLanguage::Detect,
    };
    let translate = options.task == Task::Translate;
    if translate && !shared.engine.is_multilingual() {
        return Err(Refusal::Unavailable(format!(
            "task=translate needs a multilingual model; this server runs {} (English only)",
            shared.model_name
        )));
    }
    Ok(StreamOptions {
        interim: options.interim,
        language,
        translate,
    })
}

/// The session's voice activity controller, if it uses one (`?vac=`, else the server's
/// `--vac`).
fn voice_controller(
    options: &SessionOptions,
    shared: &Shared,
) -> Result<Option<VoiceController>, Refusal> {
    if !options.vac.unwrap_or(shared.args.voice.vac) {
        return Ok(None);
    }
    let Some(model) = &shared.silero else {
        return Err(Refusal::Unavailable(
            "voice activity control (?vac=1) is not available: the server has no Silero \
             model (./models/fetch.sh silero-vad)"
                .into(),
        ));
    };
    Ok(Some(VoiceController::new(
        Arc::clone(model),
        shared.args.voice.gate_config(),
    )))
}
