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
use crate::config::ServeArgs;
use crate::engine::EngineError;
use crate::http::{self, HeadError, HttpResponse, RequestHead, STATIC_FILES};
use crate::pool::WorkerPool;
use crate::protocol::SessionOptions;
use crate::session::{self, SessionLimits, ShutdownSignal};
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
    pool: WorkerPool,
    /// The Silero model, when it could be loaded (required with --vac or --vad).
    silero: Option<Arc<SileroModel>>,
    limits: SessionLimits,
    shutting_down: AtomicBool,
    open_connections: AtomicUsize,
    active_sessions: AtomicUsize,
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
        let threads = args.default_threads();
        let gpu = args.model.use_gpu();
        let options = args.model.decode_options(threads);
        let threads_per_worker = options.threads;
        log::info!(
            "loading {} ({} worker(s) × {} thread(s), {})",
            model_path.display(),
            workers,
            threads_per_worker,
            if gpu { "GPU" } else { "CPU" }
        );
        let mut engine = args.model.load_engine(options)?;
        if args.voice.vad {
            let model = silero.clone().expect("loaded when --vad is on");
            engine = engine.with_vad_filter(model);
        }
        let pool = WorkerPool::start(
            &engine,
            workers as usize,
            args.max_sessions.max(1),
            args.policy.stream_config(args.fault_injection),
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
            pool,
            silero,
            limits,
            shutting_down: AtomicBool::new(false),
            open_connections: AtomicUsize::new(0),
            active_sessions: AtomicUsize::new(0),
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
    pub fn shutdown(self) {
        let started = Instant::now();
        self.shared.shutting_down.store(true, Ordering::SeqCst);
        // Wake the acceptor, blocked in accept(), with a connection of our own.
        let _ = TcpStream::connect_timeout(&wake_address(self.local_addr), Duration::from_secs(1));
        let _ = self.acceptor.join();
        let deadline =
            started + Duration::from_secs_f64(self.shared.args.shutdown_timeout) + CLOSE_MARGIN;
        // Every connection thread holds a reference to `shared`.
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
        if shared.is_shutting_down() {
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
        "/transcribe" => HttpResponse::error(
            426,
            "/transcribe is a WebSocket endpoint: connect with ws:// (Upgrade: websocket)",
        )
        .with_header("Upgrade", "websocket"),
        path => static_file(path, shared),
    }
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
    let Some(expected) = &shared.args.api_key else {
        return true;
    };
    let query_token = SessionOptions::from_query(&head.query)
        .ok()
        .and_then(|o| o.token);
    http::key_matches(head.bearer_token(), expected)
        || http::key_matches(query_token.as_deref(), expected)
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
    });
    if detailed {
        let stats = shared.pool.stats();
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
            "active_sessions": shared.active_sessions.load(Ordering::SeqCst),
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
                "updates": stats.updates.load(Ordering::Relaxed),
                "busy_workers": stats.busy_workers.load(Ordering::Relaxed),
                "transcribe_seconds": stats.transcribe_micros.load(Ordering::Relaxed) as f64 / 1e6,
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
    if shared.is_shutting_down() {
        let _ = HttpResponse::error(503, "server is shutting down").write_to(&mut stream, false);
        return;
    }
    let options = match SessionOptions::from_query(&head.query) {
        Ok(options) => options,
        Err(message) => {
            let _ = HttpResponse::error(400, &message).write_to(&mut stream, false);
            return;
        }
    };
    if !authorized(head, shared) {
        let _ = HttpResponse::error(
            401,
            "missing or wrong API key: send `Authorization: Bearer KEY` or ?token=KEY",
        )
        .with_header("WWW-Authenticate", "Bearer")
        .write_to(&mut stream, false);
        return;
    }
    if head.header("sec-websocket-version").map(str::trim) != Some("13")
        || head.header("sec-websocket-key").is_none()
    {
        let _ = HttpResponse::error(
            400,
            "WebSocket version 13 with a Sec-WebSocket-Key is required",
        )
        .with_header("Sec-WebSocket-Version", "13")
        .write_to(&mut stream, false);
        return;
    }
    let sessions = shared.active_sessions.fetch_add(1, Ordering::SeqCst) + 1;
    let _session = CountGuard(&shared.active_sessions);
    if sessions > shared.args.max_sessions {
        let message = format!(
            "server busy: all {} session slots are in use; try again later",
            shared.args.max_sessions
        );
        let _ = HttpResponse::error(503, &message)
            .with_header("Retry-After", "5")
            .write_to(&mut stream, false);
        return;
    }
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    log::info!("session from {peer} started");
    let vac = if options.vac.unwrap_or(shared.args.voice.vac) {
        let Some(model) = &shared.silero else {
            let message = "voice activity control (?vac=1) is not available: the server has \
                           no Silero model (./models/fetch.sh silero-vad)";
            let _ = HttpResponse::error(400, message).write_to(&mut stream, false);
            return;
        };
        Some(VoiceController::new(
            Arc::clone(model),
            shared.args.voice.gate_config(),
        ))
    } else {
        None
    };
    let (handle, events) = shared.pool.open_stream(options.interim);
    session::run(
        stream,
        head,
        leftover,
        handle,
        events,
        vac,
        &shared.limits,
        shared,
    );
    log::info!("session from {peer} ended");
}
