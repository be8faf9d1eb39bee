//! The server: loads the model, starts the worker pool, accepts connections (one thread
//! each), routes them, and shuts down gracefully.
//!
//! * `config`: the command line converted once (limits, defaults, `/info` at start);
//! * `routes`: plain HTTP (`/info`, `/health`, `/ready`, `/metrics`, the page);
//! * `websocket`: `/transcribe` sessions;
//! * `vad_model`: the Silero model, loaded (or fetched) at start;
//! * `closing`: refused and answered connections closed without losing the answer.
//!
//! Every connection thread holds the `Shared` state; shutting down stops new sessions
//! first, lets the open ones flush, and only then stops accepting and the workers.

mod closing;
mod config;
mod routes;
mod vad_model;
mod websocket;

use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::ServeArgs;
use crate::engine::{Engine, EngineError};
use crate::http::{self, HeadError, HttpResponse};
use crate::load::ThreadPolicy;
use crate::metrics::Metrics;
use crate::pool::WorkerPool;
use crate::session::ShutdownSignal;
use crate::vad::{SileroError, SileroModel};
use closing::Closer;
use config::ServerConfig;

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // the fields are named in each variant's doc and message
pub enum ServerError {
    /// The Whisper model could not be loaded.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The Silero model could not be loaded.
    #[error(transparent)]
    Vad(#[from] SileroError),
    /// The listening socket could not be opened.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
}

/// State shared by every connection thread.
struct Shared {
    config: ServerConfig,
    /// The model (its languages; the workers hold its states).
    engine: Engine,
    pool: WorkerPool,
    /// Closes answered plain-HTTP connections (and refusals) gracefully.
    closer: Closer,
    /// The Silero model, when it could be loaded (required with --vac or --vad).
    silero: Option<Arc<SileroModel>>,
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

/// The line a server prints on its standard output once it accepts connections, for
/// the programs that start it (tests, the benchmark) to learn its port:
/// `{"listening":"127.0.0.1:8000"}`. Logs go to standard error.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Listening {
    /// The address it listens on.
    pub listening: SocketAddr,
}

impl Listening {
    /// Reads the line back; `None` for any other line.
    pub fn parse(line: &str) -> Option<SocketAddr> {
        serde_json::from_str::<Listening>(line.trim())
            .ok()
            .map(|l| l.listening)
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
        let silero = vad_model::load(&args)?;
        let model_path = args.model.model_path();
        let workers = args.worker_count();
        let gpu = args.model.use_gpu();
        let threads = Arc::new(args.thread_policy());
        let options = args.model.decode_options(threads.max_threads());
        log::info!(
            "loading {} ({} worker(s) × {} thread(s){}, {})",
            model_path.display(),
            workers,
            threads.max_threads(),
            if threads.adaptive() {
                " at most, fewer while other processes keep cores busy"
            } else {
                ""
            },
            if gpu { "GPU when there is one" } else { "CPU" }
        );
        let mut engine = args.model.load_engine(options)?;
        log::info!(
            "model on {} ({}), {} weights",
            engine.device(),
            if engine.on_gpu() { "GPU" } else { "CPU" },
            engine.weights()
        );
        if args.voice.vad {
            let model = silero.clone().expect("loaded when --vad is on");
            engine = engine.with_vad_filter(model);
        }
        let metrics = Arc::new(Metrics::default());
        let pool = WorkerPool::start(
            &engine,
            workers as usize,
            args.max_sessions.max(1),
            args.policy
                .stream_config(engine.is_tiny(), args.fault_injection),
            Arc::clone(&metrics),
            Arc::clone(&threads),
        )?;
        let config = ServerConfig::new(
            &args,
            &engine,
            pool.workers(),
            pool.budget(),
            &threads,
            silero.as_deref(),
        );
        let bind_error = |source| ServerError::Bind {
            address: config.bind.clone(),
            source,
        };
        let listener = TcpListener::bind(&config.bind).map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        let shared = Arc::new(Shared {
            config,
            threads,
            engine,
            pool,
            closer: Closer::start().expect("spawning the closer"),
            silero,
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

    /// Where the server listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The [`Listening`] line for this server.
    pub fn listening_line(&self) -> String {
        serde_json::to_string(&Listening {
            listening: self.local_addr,
        })
        .expect("an address serialises")
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
        let deadline = started + self.shared.config.shutdown_timeout + CLOSE_MARGIN;
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
        if open > shared.config.max_connections {
            shared.open_connections.fetch_sub(1, Ordering::SeqCst);
            let _ = stream.set_nonblocking(true);
            let _ = HttpResponse::error(503, "too many connections; try again later")
                .write_to(&mut stream, false);
            shared.closer.close(stream);
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
    let deadline = Instant::now() + shared.config.handshake_timeout;
    let (response, head_only) = match http::read_head(&mut stream, deadline) {
        Ok((head, leftover)) if head.path == "/transcribe" && head.is_websocket_upgrade() => {
            websocket::handle(stream, &head, leftover, shared);
            return;
        }
        Ok((head, _)) => (routes::route(&head, shared), head.method == "HEAD"),
        Err(HeadError::Closed) | Err(HeadError::Io(_)) => return,
        Err(HeadError::Timeout) => (
            HttpResponse::error(408, "request head not received in time"),
            false,
        ),
        Err(e @ HeadError::TooLarge) => (HttpResponse::error(431, &e.to_string()), false),
        Err(e @ HeadError::Malformed(_)) => (HttpResponse::error(400, &e.to_string()), false),
    };
    let _ = response.write_to(&mut stream, head_only);
    shared.closer.close(stream);
}
