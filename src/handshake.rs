//! The WebSocket handshake of `/transcribe`, in one place: the checks that refuse a
//! request before the upgrade (each with its HTTP status and a reason the client can
//! act on), and the `101 Switching Protocols` that accepts it (RFC 6455 §4.2.2).
//!
//! Order of the checks, so that a client learns the most useful reason first: the
//! server is shutting down (503), the query is malformed (400), the API key is missing
//! or wrong (401), the request is not WebSocket version 13 with a key (400). The
//! session limit and what the session needs from the server (a VAD model for
//! `?vac=1`) are checked by the server, which owns them, with [`Refusal`]s too.

use std::io::Write;
use std::net::TcpStream;

use tungstenite::handshake::derive_accept_key;

use crate::http::{key_matches, HttpResponse, RequestHead};
use crate::protocol::SessionOptions;

/// Why an upgrade is refused: the HTTP response that says so.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)] // the fields are named in each variant's doc and message
pub enum Refusal {
    /// 503: the server is stopping.
    ShuttingDown,
    /// 400: a query parameter has a bad value.
    BadQuery(String),
    /// 401: the API key is missing or wrong.
    Unauthorized,
    /// 400: not a version-13 WebSocket request with a key.
    NotWebSocket13,
    /// 503: every session slot is taken.
    Busy { max_sessions: usize },
    /// 400: the session asks for something this server cannot give.
    Unavailable(String),
}

impl Refusal {
    /// The response to send.
    pub fn response(&self) -> HttpResponse {
        match self {
            Refusal::ShuttingDown => HttpResponse::error(503, "server is shutting down"),
            Refusal::BadQuery(message) | Refusal::Unavailable(message) => {
                HttpResponse::error(400, message)
            }
            Refusal::Unauthorized => HttpResponse::error(
                401,
                "missing or wrong API key: send `Authorization: Bearer KEY` or ?token=KEY",
            )
            .with_header("WWW-Authenticate", "Bearer"),
            Refusal::NotWebSocket13 => HttpResponse::error(
                400,
                "WebSocket version 13 with a Sec-WebSocket-Key is required",
            )
            .with_header("Sec-WebSocket-Version", "13"),
            Refusal::Busy { max_sessions } => HttpResponse::error(
                503,
                &format!(
                    "server busy: all {max_sessions} session slots are in use; try again later"
                ),
            )
            .with_header("Retry-After", "5"),
        }
    }

    /// Writes the response and closes (best effort: the client may be gone).
    pub fn send(&self, stream: &mut TcpStream) {
        let _ = self.response().write_to(stream, false);
    }
}

/// A request that passed the checks.
#[derive(Debug, Clone, PartialEq)]
pub struct Upgrade {
    /// What the client chose in the query string.
    pub options: SessionOptions,
    accept_key: String,
}

impl Upgrade {
    /// Checks `head`. `api_key` is the server's key, if it has one.
    pub fn check(
        head: &RequestHead,
        api_key: Option<&str>,
        shutting_down: bool,
    ) -> Result<Upgrade, Refusal> {
        if shutting_down {
            return Err(Refusal::ShuttingDown);
        }
        let options = SessionOptions::from_query(&head.query).map_err(Refusal::BadQuery)?;
        if !authorized(head, api_key) {
            return Err(Refusal::Unauthorized);
        }
        let key = head.header("sec-websocket-key").map(str::trim);
        match (head.header("sec-websocket-version").map(str::trim), key) {
            (Some("13"), Some(key)) if !key.is_empty() => Ok(Upgrade {
                options,
                accept_key: derive_accept_key(key.as_bytes()),
            }),
            _ => Err(Refusal::NotWebSocket13),
        }
    }

    /// Sends `101 Switching Protocols`: from here on the connection speaks WebSocket.
    pub fn switch(&self, stream: &mut TcpStream) -> std::io::Result<()> {
        write!(
            stream,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            self.accept_key
        )
    }
}

/// Whether the request carries the API key (header or `?token=`); always true when the
/// server has none.
pub fn authorized(head: &RequestHead, api_key: Option<&str>) -> bool {
    let Some(expected) = api_key else {
        return true;
    };
    let query_token = SessionOptions::from_query(&head.query)
        .ok()
        .and_then(|o| o.token);
    key_matches(head.bearer_token(), expected) || key_matches(query_token.as_deref(), expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parse_head;

    fn head(query: &str, extra: &str) -> RequestHead {
        let raw = format!(
            "GET /transcribe{query} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\n{extra}\r\n"
        );
        parse_head(raw.as_bytes()).unwrap().unwrap().0
    }

    const V13: &str =
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

    #[test]
    fn accepts_a_proper_request_with_the_rfc_accept_key() {
        let upgrade = Upgrade::check(&head("?interim=1", V13), None, false).unwrap();
        assert!(upgrade.options.interim);
        // RFC 6455 §1.3's example.
        assert_eq!(upgrade.accept_key, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn refusals_come_in_order_with_their_status() {
        let status = |r: Result<Upgrade, Refusal>| r.unwrap_err().response().status;
        assert_eq!(status(Upgrade::check(&head("", V13), None, true)), 503);
        assert_eq!(
            status(Upgrade::check(&head("?interim=maybe", ""), None, false)),
            400
        );
        assert_eq!(
            status(Upgrade::check(&head("", V13), Some("k"), false)),
            401
        );
        assert!(Upgrade::check(&head("?token=k", V13), Some("k"), false).is_ok());
        let bearer = format!("{V13}Authorization: Bearer k\r\n");
        assert!(Upgrade::check(&head("", &bearer), Some("k"), false).is_ok());
        let old = "Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: a\r\n";
        let refusal = Upgrade::check(&head("", old), None, false).unwrap_err();
        assert_eq!(refusal, Refusal::NotWebSocket13);
        assert_eq!(refusal.response().status, 400);
        assert_eq!(Refusal::Busy { max_sessions: 3 }.response().status, 503);
    }
}
