//! The front door: one port for HTTP (`/`, `/info`, `/health`) and the WebSocket at
//! `/transcribe`.
//!
//! reswhis accepts connections itself rather than through `tiny_http::Server`, because a
//! server exposed on a network must bound what each connection may hold: a deadline for
//! the request head (no slowloris), a cap on open connections, and read/write timeouts
//! on the upgraded WebSocket (which tiny_http's opaque upgraded stream cannot have).
//! The request head is parsed with `httparse`; plain HTTP responses are written by
//! `tiny_http::Response`; WebSockets are handed to `tungstenite`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;
use tiny_http::{HTTPVersion, Header, Response, StatusCode};

/// Largest request head accepted (browsers send 1–2 KiB).
const MAX_HEAD_BYTES: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;

/// The parts of an HTTP request the server looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// `GET`, `HEAD`, … as sent.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query string after `?` (empty when there is none).
    pub query: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    /// The first header of this name (case-insensitive), if any.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// A WebSocket upgrade request (RFC 6455 §4.2.1).
    pub fn is_websocket_upgrade(&self) -> bool {
        self.header_has_token("upgrade", "websocket")
            && self.header_has_token("connection", "upgrade")
    }

    /// The bearer token of an `Authorization` header, if any.
    pub fn bearer_token(&self) -> Option<&str> {
        let value = self.header("authorization")?.trim();
        let (scheme, token) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    }
}

/// Why a request head could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    /// Nothing complete arrived before the handshake timeout.
    #[error("the client sent nothing usable before the deadline")]
    Timeout,
    /// The client closed the connection first.
    #[error("the connection closed before the request was complete")]
    Closed,
    /// The head is larger than the server accepts.
    #[error("request head larger than {MAX_HEAD_BYTES} bytes")]
    TooLarge,
    /// The bytes are not an HTTP/1.x request.
    #[error("malformed HTTP request: {0}")]
    Malformed(String),
    /// The socket failed.
    #[error("i/o error reading the request: {0}")]
    Io(#[from] std::io::Error),
}

/// Parses a complete request head. `Ok(None)` means more bytes are needed; on success
/// returns the head and its length in bytes.
pub fn parse_head(bytes: &[u8]) -> Result<Option<(RequestHead, usize)>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(bytes) {
        Ok(httparse::Status::Partial) => Ok(None),
        Ok(httparse::Status::Complete(length)) => {
            let target = request.path.unwrap_or("/");
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            let head = RequestHead {
                method: request.method.unwrap_or("").to_string(),
                path: path.to_string(),
                query: query.to_string(),
                headers: request
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect(),
            };
            Ok(Some((head, length)))
        }
        Err(e) => Err(HeadError::Malformed(e.to_string())),
    }
}

/// Reads a request head, giving the client until `deadline`. Returns the head and any
/// bytes that followed it (the start of a WebSocket stream, say).
pub fn read_head(
    stream: &mut TcpStream,
    deadline: Instant,
) -> Result<(RequestHead, Vec<u8>), HeadError> {
    let mut buffer = Vec::with_capacity(2048);
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HeadError::Timeout);
        }
        stream.set_read_timeout(Some(left))?;
        let read = match stream.read(&mut chunk) {
            Ok(0) => return Err(HeadError::Closed),
            Ok(n) => n,
            Err(e) if is_timeout(&e) => return Err(HeadError::Timeout),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        buffer.extend_from_slice(&chunk[..read]);
        if let Some((head, length)) = parse_head(&buffer)? {
            return Ok((head, buffer.split_off(length)));
        }
        if buffer.len() > MAX_HEAD_BYTES {
            return Err(HeadError::TooLarge);
        }
    }
}

/// Whether a socket error is a read or write timeout.
pub fn is_timeout(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// Compares an offered API key with the configured one in constant time.
pub fn key_matches(offered: Option<&str>, expected: &str) -> bool {
    match offered {
        Some(offered) => bool::from(offered.as_bytes().ct_eq(expected.as_bytes())),
        None => false,
    }
}

/// The web client, built into the binary so the server works from any directory.
pub struct StaticFile {
    /// The URL path it is served at.
    pub path: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
}

/// The files of the web client (`static/`), with `/` served as `/index.html`.
pub const STATIC_FILES: &[StaticFile] = &[
    StaticFile {
        path: "/index.html",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../static/index.html"),
    },
    StaticFile {
        path: "/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../static/app.js"),
    },
    StaticFile {
        path: "/pcm-worklet.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../static/pcm-worklet.js"),
    },
    StaticFile {
        path: "/style.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../static/style.css"),
    },
];

/// The `Content-Type` of a file served from `--static-dir`, by its extension.
pub fn content_type_for(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        _ => "application/octet-stream",
    }
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("valid header")
}

/// A plain HTTP response, written with tiny_http. The connection is closed after it.
pub struct HttpResponse {
    /// HTTP status code.
    pub status: u16,
    /// `Content-Type` of the body.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
    /// More headers, in order.
    pub extra_headers: Vec<(&'static str, String)>,
}

impl HttpResponse {
    /// A response with no extra headers.
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        HttpResponse {
            status,
            content_type,
            body: body.into(),
            extra_headers: Vec::new(),
        }
    }

    /// A JSON value as a response.
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Self::new(status, "application/json", value.to_string())
    }

    /// Any serialisable value as a JSON response.
    pub fn json_of(status: u16, value: &impl serde::Serialize) -> Self {
        let body = serde_json::to_string(value).expect("JSON responses always serialise");
        Self::new(status, "application/json", body)
    }

    /// A JSON error body `{"error": message}`.
    pub fn error(status: u16, message: &str) -> Self {
        Self::json(status, &serde_json::json!({ "error": message }))
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.extra_headers.push((name, value.into()));
        self
    }

    /// Writes the response (its head only for `HEAD` requests) and flushes it.
    pub fn write_to(self, stream: &mut TcpStream, head_only: bool) -> std::io::Result<()> {
        let length = self.body.len();
        let mut response = Response::new(
            StatusCode(self.status),
            vec![
                header("Content-Type", self.content_type),
                header("Cache-Control", "no-cache"),
                header("X-Content-Type-Options", "nosniff"),
                header("Connection", "close"),
            ],
            std::io::Cursor::new(self.body),
            Some(length),
            None,
        );
        for (name, value) in self.extra_headers {
            response.add_header(header(name, &value));
        }
        stream.set_write_timeout(Some(Duration::from_secs(10)))?;
        response.raw_print(&mut *stream, HTTPVersion(1, 1), &[], head_only, None)?;
        stream.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_websocket_upgrade() {
        let raw = b"GET /transcribe?interim=1&token=k HTTP/1.1\r\nHost: x\r\n\
            Upgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n\
            Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
            Sec-WebSocket-Version: 13\r\nAuthorization: Bearer s3cret\r\n\r\nEXTRA";
        let (head, length) = parse_head(raw).unwrap().unwrap();
        assert_eq!(&raw[length..], b"EXTRA");
        assert_eq!(head.method, "GET");
        assert_eq!(head.path, "/transcribe");
        assert_eq!(head.query, "interim=1&token=k");
        assert!(head.is_websocket_upgrade());
        assert_eq!(head.bearer_token(), Some("s3cret"));
        assert_eq!(head.header("sec-websocket-version"), Some("13"));
    }

    #[test]
    fn partial_and_malformed_heads() {
        assert!(parse_head(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .unwrap()
            .is_none());
        assert!(parse_head(b"\x00\x01garbage\r\n\r\n").is_err());
        let (head, _) = parse_head(b"GET /info HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!head.is_websocket_upgrade());
        assert_eq!(head.bearer_token(), None);
    }

    #[test]
    fn api_keys_compare_exactly() {
        assert!(key_matches(Some("abc"), "abc"));
        assert!(!key_matches(Some("abd"), "abc"));
        assert!(!key_matches(Some("ab"), "abc"));
        assert!(!key_matches(None, "abc"));
    }
}
