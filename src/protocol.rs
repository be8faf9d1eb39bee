//! The WebSocket protocol: what clients send in text frames, what the server sends back.
//!
//! Compatible with the original Python server: binary frames carry s16le PCM, and every
//! newly committed piece of text arrives as `{"from": ms, "to": ms, "content": text}`.
//! Everything else (`eos`, `done`, `error`, `interim`) has a `type` field.

use serde::{Deserialize, Serialize};

/// A control message from the client (a text frame).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    /// No more audio: transcribe what is left, send it, then `done`, then close.
    EndOfStream,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("text frame is not JSON ({0}); expected e.g. {{\"type\":\"eos\"}}")]
    NotJson(String),
    #[error("text frame has no \"type\" field; expected e.g. {{\"type\":\"eos\"}}")]
    MissingType,
    #[error("unknown message type {0:?}; the server understands \"eos\"")]
    UnknownType(String),
}

#[derive(Deserialize)]
struct RawClientMessage {
    #[serde(rename = "type")]
    kind: Option<serde_json::Value>,
}

impl ClientMessage {
    pub fn parse(text: &str) -> Result<ClientMessage, ProtocolError> {
        let raw: RawClientMessage =
            serde_json::from_str(text).map_err(|e| ProtocolError::NotJson(e.to_string()))?;
        match raw.kind {
            None | Some(serde_json::Value::Null) => Err(ProtocolError::MissingType),
            Some(serde_json::Value::String(kind)) => match kind.as_str() {
                "eos" | "end" | "stop" => Ok(ClientMessage::EndOfStream),
                _ => Err(ProtocolError::UnknownType(kind)),
            },
            Some(other) => Err(ProtocolError::UnknownType(other.to_string())),
        }
    }
}

/// A message to the client (a text frame).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ServerMessage {
    /// Newly committed text; it never changes afterwards. Times are milliseconds from the
    /// start of the stream. `content` keeps Whisper's leading space, so concatenating the
    /// contents of all messages gives the transcript.
    Committed {
        from: u64,
        to: u64,
        content: String,
    },
    Tagged(TaggedMessage),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum TaggedMessage {
    /// Opt-in (`?interim=1`): the current guess for the audio after the committed text.
    /// It may change; each one replaces the previous.
    Interim { content: String },
    /// All text has been sent; the server closes the connection next.
    Done,
    /// Something the client should know; see `message`.
    Error { message: String },
}

impl ServerMessage {
    pub fn committed(from_seconds: f64, to_seconds: f64, content: String) -> Self {
        ServerMessage::Committed {
            from: seconds_to_ms(from_seconds),
            to: seconds_to_ms(to_seconds),
            content,
        }
    }

    pub fn interim(content: String) -> Self {
        ServerMessage::Tagged(TaggedMessage::Interim { content })
    }

    pub fn done() -> Self {
        ServerMessage::Tagged(TaggedMessage::Done)
    }

    pub fn error(message: impl Into<String>) -> Self {
        ServerMessage::Tagged(TaggedMessage::Error {
            message: message.into(),
        })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server messages always serialise")
    }
}

fn seconds_to_ms(seconds: f64) -> u64 {
    (seconds.max(0.0) * 1000.0).round() as u64
}

/// Options a client picks in the query string of `/transcribe`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionOptions {
    /// Send `interim` messages.
    pub interim: bool,
    /// Use the voice activity controller (`?vac=1`) or not (`?vac=0`); the server's
    /// setting when absent.
    pub vac: Option<bool>,
    /// The API key, for clients that cannot set an `Authorization` header (browsers).
    pub token: Option<String>,
}

impl SessionOptions {
    /// Parses a query string (without the `?`). Unknown keys are ignored, as HTTP
    /// servers do; a bad value for a known key is an error.
    pub fn from_query(query: &str) -> Result<SessionOptions, String> {
        let mut options = SessionOptions::default();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "interim" => options.interim = parse_flag("interim", &value)?,
                "vac" => options.vac = Some(parse_flag("vac", &value)?),
                "token" => options.token = Some(value.into_owned()),
                _ => {}
            }
        }
        Ok(options)
    }
}

fn parse_flag(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "" | "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => Err(format!("{key}={other:?}: use 1 or 0")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_end_of_stream() {
        assert_eq!(
            ClientMessage::parse(r#"{"type":"eos"}"#),
            Ok(ClientMessage::EndOfStream)
        );
        assert_eq!(
            ClientMessage::parse(r#" {"type": "eos", "extra": 1} "#),
            Ok(ClientMessage::EndOfStream)
        );
    }

    #[test]
    fn rejects_malformed_control_messages() {
        assert!(matches!(
            ClientMessage::parse("eos"),
            Err(ProtocolError::NotJson(_))
        ));
        assert_eq!(
            ClientMessage::parse(r#"{"kind":"eos"}"#),
            Err(ProtocolError::MissingType)
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"pause"}"#),
            Err(ProtocolError::UnknownType("pause".into()))
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":5}"#),
            Err(ProtocolError::UnknownType("5".into()))
        );
        assert!(ClientMessage::parse("[]").is_err());
        assert!(ClientMessage::parse("").is_err());
    }

    #[test]
    fn server_messages_have_the_original_shape() {
        let committed = ServerMessage::committed(1.2344, 2.5, " And so".into());
        assert_eq!(
            committed.to_json(),
            r#"{"from":1234,"to":2500,"content":" And so"}"#
        );
        assert_eq!(ServerMessage::done().to_json(), r#"{"type":"done"}"#);
        assert_eq!(
            ServerMessage::error("bad \"frame\"").to_json(),
            r#"{"type":"error","message":"bad \"frame\""}"#
        );
        assert_eq!(
            ServerMessage::interim(" my".into()).to_json(),
            r#"{"type":"interim","content":" my"}"#
        );
    }

    #[test]
    fn query_options() {
        assert_eq!(
            SessionOptions::from_query("interim=1&token=a%20b&x=y"),
            Ok(SessionOptions {
                interim: true,
                vac: None,
                token: Some("a b".into())
            })
        );
        assert_eq!(
            SessionOptions::from_query("vac=0").map(|o| o.vac),
            Ok(Some(false))
        );
        assert_eq!(
            SessionOptions::from_query("vac=1").map(|o| o.vac),
            Ok(Some(true))
        );
        assert!(SessionOptions::from_query("vac=2")
            .unwrap_err()
            .contains("vac"));
        assert_eq!(
            SessionOptions::from_query(""),
            Ok(SessionOptions::default())
        );
        assert!(SessionOptions::from_query("interim=maybe").is_err());
    }
}
