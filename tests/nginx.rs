//! reswhis behind nginx, with the documented proxy configuration (`deploy/nginx.conf`):
//! the page, /info and a WebSocket session go through the proxy (issue #6).
//!
//! Needs `nginx` (Debian: `apt-get install -y nginx`); without it the test says so and
//! passes. Everything listens on 127.0.0.1 only.

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        TempDir(unique_temp_dir("reswhis-nginx"))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The nginx master process; killed (and reaped) when dropped.
struct Nginx {
    child: Child,
    dir: PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: fast shutdown; the master stops its workers.
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Nginx {
    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// deploy/nginx.conf with the listening port and the upstream replaced.
fn site_config(listen: SocketAddr, upstream: SocketAddr) -> String {
    let template = std::fs::read_to_string(manifest_dir().join("deploy/nginx.conf"))
        .expect("reading deploy/nginx.conf");
    for directive in [
        "proxy_http_version 1.1;",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $reswhis_connection_upgrade;",
        "proxy_buffering off;",
        "proxy_read_timeout 3600s;",
        "# server {",
        "#     listen 443 ssl;",
    ] {
        assert!(
            template.contains(directive),
            "deploy/nginx.conf lacks {directive}"
        );
    }
    let mut replaced = (0, 0);
    let config: Vec<String> = template
        .lines()
        .map(|line| match line {
            "    listen 80;" => {
                replaced.0 += 1;
                format!("    listen {listen};")
            }
            "    server 127.0.0.1:8000;" => {
                replaced.1 += 1;
                format!("    server {upstream};")
            }
            other => other.to_string(),
        })
        .collect();
    assert_eq!(
        replaced,
        (1, 1),
        "deploy/nginx.conf: expected one `    listen 80;` and one `    server 127.0.0.1:8000;` line"
    );
    config.join("\n") + "\n"
}

fn start_nginx(binary: &Path, dir: &Path, listen: SocketAddr, upstream: SocketAddr) -> Nginx {
    std::fs::write(dir.join("reswhis.conf"), site_config(listen, upstream)).unwrap();
    let d = dir.display();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let main = format!(
        "{user}worker_processes 1;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n\
         \x20   access_log {d}/access.log;\n\
         \x20   client_body_temp_path {d}/client_body;\n\
         \x20   proxy_temp_path {d}/proxy;\n\
         \x20   fastcgi_temp_path {d}/fastcgi;\n\
         \x20   uwsgi_temp_path {d}/uwsgi;\n\
         \x20   scgi_temp_path {d}/scgi;\n\
         \x20   include {d}/reswhis.conf;\n\
         }}\n",
        user = if root { "user root;\n" } else { "" },
    );
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, main).unwrap();
    let globals = format!("daemon off; pid {d}/nginx.pid; error_log {d}/error.log info;");
    let child = Command::new(binary)
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(dir)
        .arg("-g")
        .arg(&globals)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting nginx");
    let mut nginx = Nginx {
        child,
        dir: dir.to_path_buf(),
    };
    let listening = wait_until(Duration::from_secs(30), || {
        if let Ok(Some(status)) = nginx.child.try_wait() {
            panic!("nginx exited ({status}); error log:\n{}", nginx.error_log());
        }
        TcpStream::connect(listen).is_ok()
    });
    assert!(
        listening,
        "nginx does not listen; error log:\n{}",
        nginx.error_log()
    );
    nginx
}

/// The body of a response that may be chunked (nginx re-frames it).
fn json_in(body: &str) -> serde_json::Value {
    let start = body.find('{').expect("a JSON object");
    let end = body.rfind('}').expect("a JSON object");
    serde_json::from_str(&body[start..=end]).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[test]
fn reswhis_works_behind_nginx() {
    let Some(binary) = nginx_binary() else {
        println!("nginx not installed (apt-get install -y nginx): skipping the proxy test");
        return;
    };
    let server = TestServer::start(&[]);
    let dir = TempDir::new();
    let listen: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let nginx = start_nginx(&binary, &dir.0, listen, server.addr);

    // /info and /health through the proxy.
    let (status, body) = http_get(listen, "/info", &[]);
    assert_eq!(status, 200, "{body}\n{}", nginx.error_log());
    let info = json_in(&body);
    assert_eq!(info["backend"], "whisper.cpp", "{info}");
    let (status, body) = http_get(listen, "/health", &[]);
    assert_eq!(
        (status, json_in(&body)),
        (200, serde_json::json!({"status": "ok"}))
    );

    // The page.
    let (status, page) = http_get(listen, "/", &[]);
    assert_eq!(status, 200);
    let (_, direct) = server.get("/");
    assert!(page.contains("<html"), "{page}");
    assert!(
        page.len() >= direct.len() && direct.contains("<html"),
        "the page through the proxy differs from the page served directly"
    );

    // A WebSocket session through the proxy.
    let (pcm, reference) = jfk();
    let mut client = connect(&format!("ws://{listen}/transcribe"));
    let received = stream_pcm(
        &mut client,
        &pcm,
        FRAME_100MS,
        false,
        Duration::from_secs(240),
    );
    let rate = wer(&reference, &received.transcript());
    println!("through nginx: WER {rate:.3}: {:?}", received.transcript());
    assert!(rate < 0.2, "{received:?}\n{}", nginx.error_log());
    assert!(received.done, "{received:?}");
    assert_eq!(
        received.close.as_ref().map(|c| c.0),
        Some(1000),
        "{received:?}"
    );

    // nginx really was in the path.
    let access = || std::fs::read_to_string(dir.0.join("access.log")).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(10), || access()
            .contains("GET /transcribe HTTP/1.1\" 101")),
        "no upgraded request in nginx's access log:\n{}",
        access()
    );
    drop(nginx);
}
