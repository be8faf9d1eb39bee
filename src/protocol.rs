//! The WebSocket protocol, both ways: what clients send in text frames and choose in the
//! query string, what the server sends back. The server writes these types and the
//! benchmark and the tests read them, so both sides agree by construction.
//!
//! Compatible with the original Python server: binary frames carry s16le PCM, and every
//! newly committed piece of text arrives as `{"from": ms, "to": ms, "content": text}`.
//! Everything else (`eos`, `done`, `error`, `interim`, `language`) has a `type` field.
//! Extensions are opt-in: a client that asks for nothing new gets exactly the original
//! messages.

use serde::{Deserialize, Serialize};

/// A control message from the client (a text frame).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ClientMessage {
    /// No more audio: transcribe what is left, send it, then `done`, then close.
    #[serde(rename = "eos", alias = "end", alias = "stop")]
    EndOfStream,
}

/// Why a text frame from a client is not a [`ClientMessage`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// Not valid JSON.
    #[error("text frame is not JSON ({0}); expected e.g. {{\"type\":\"eos\"}}")]
    NotJson(String),
    /// A JSON value without a string `type`.
    #[error("text frame has no \"type\" field; expected e.g. {{\"type\":\"eos\"}}")]
    MissingType,
    /// A `type` the server does not know.
    #[error("unknown message type {0:?}; the server understands \"eos\"")]
    UnknownType(String),
}

impl ClientMessage {
    /// Parses a text frame, with an error that says what is wrong with it.
    pub fn parse(text: &str) -> Result<ClientMessage, ProtocolError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ProtocolError::NotJson(e.to_string()))?;
        match value.get("type") {
            None | Some(serde_json::Value::Null) => Err(ProtocolError::MissingType),
            Some(serde_json::Value::String(kind)) => serde_json::from_value(value.clone())
                .map_err(|_| ProtocolError::UnknownType(kind.clone())),
            Some(other) => Err(ProtocolError::UnknownType(other.to_string())),
        }
    }

    /// The message as a text frame.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("client messages always serialise")
    }
}

/// A word of committed text with its time on the stream's clock (`?words=1`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireWord {
    /// The word as it appears in `content`, leading space included.
    pub word: String,
    /// Milliseconds from the start of the stream.
    pub start: u64,
    /// Milliseconds from the start of the stream.
    pub end: u64,
}

/// A message to the client (a text frame).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ServerMessage {
    /// Newly committed text; it never changes afterwards. Times are milliseconds from the
    /// start of the stream. `content` keeps Whisper's leading space, so concatenating the
    /// contents of all messages gives the transcript. `words` only with `?words=1`.
    Committed {
        /// Start, in ms from the start of the stream.
        from: u64,
        /// End, in ms from the start of the stream.
        to: u64,
        /// The text, with Whisper's leading space.
        content: String,
        /// Each word with its own times (`?words=1`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        words: Option<Vec<WireWord>>,
    },
    /// Every other message, told apart by its `type`.
    Tagged(TaggedMessage),
}

/// The messages with a `type` field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum TaggedMessage {
    /// Opt-in (`?interim=1`): the current guess for the audio after the committed text.
    /// It may change; each one replaces the previous.
    Interim {
        /// The guessed text.
        content: String,
    },
    /// With `?language=auto`: the language the speech is in, once the server is confident
    /// (and again if it changes); the text is transcribed in it from then on.
    Language {
        /// ISO 639-1 code, e.g. `fr`.
        language: String,
        /// Whisper's probability for it, 0–1.
        probability: f32,
    },
    /// All text has been sent; the server closes the connection next.
    Done,
    /// Something the client should know; see `message`.
    Error {
        /// What went wrong, for a person to read.
        message: String,
    },
}

impl ServerMessage {
    /// Committed text from `from_seconds` to `to_seconds` on the stream's clock.
    pub fn committed(from_seconds: f64, to_seconds: f64, content: String) -> Self {
        ServerMessage::Committed {
            from: seconds_to_ms(from_seconds),
            to: seconds_to_ms(to_seconds),
            content,
            words: None,
        }
    }

    /// The same, with its words (`?words=1`): (text, start, end) in seconds.
    pub fn with_words<'a>(self, words: impl IntoIterator<Item = (&'a str, f64, f64)>) -> Self {
        match self {
            ServerMessage::Committed {
                from, to, content, ..
            } => ServerMessage::Committed {
                from,
                to,
                content,
                words: Some(
                    words
                        .into_iter()
                        .map(|(word, start, end)| WireWord {
                            word: word.to_string(),
                            start: seconds_to_ms(start),
                            end: seconds_to_ms(end),
                        })
                        .collect(),
                ),
            },
            other => other,
        }
    }

    /// An `interim` message.
    pub fn interim(content: String) -> Self {
        ServerMessage::Tagged(TaggedMessage::Interim { content })
    }

    /// A `language` message.
    pub fn language(language: &str, probability: f32) -> Self {
        ServerMessage::Tagged(TaggedMessage::Language {
            language: language.to_string(),
            probability: (probability * 1000.0).round() / 1000.0,
        })
    }

    /// The `done` message.
    pub fn done() -> Self {
        ServerMessage::Tagged(TaggedMessage::Done)
    }

    /// An `error` message.
    pub fn error(message: impl Into<String>) -> Self {
        ServerMessage::Tagged(TaggedMessage::Error {
            message: message.into(),
        })
    }

    /// The message as a text frame.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server messages always serialise")
    }

    /// Reads a text frame from the server.
    pub fn parse(text: &str) -> Result<ServerMessage, serde_json::Error> {
        serde_json::from_str(text)
    }
}

fn seconds_to_ms(seconds: f64) -> u64 {
    (seconds.max(0.0) * 1000.0).round() as u64
}

/// The language a session is spoken in (`?language=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LanguageChoice {
    /// A Whisper language code ("en", "de", …).
    Code(String),
    /// Detect it from the speech (`auto`).
    Detect,
}

/// What Whisper does with the speech (`?task=`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Task {
    /// Text in the language spoken.
    #[default]
    Transcribe,
    /// English text, whatever the language spoken.
    Translate,
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
    /// The language; the server's `--language` when absent.
    pub language: Option<LanguageChoice>,
    /// Transcribe or translate.
    pub task: Task,
    /// Add each committed message's words with their times.
    pub words: bool,
}

impl SessionOptions {
    /// Parses a query string (without the `?`). Unknown keys are ignored, as HTTP
    /// servers do; a bad value for a known key is an error that says what is allowed.
    /// Whether the model knows the language is for the server to check.
    pub fn from_query(query: &str) -> Result<SessionOptions, String> {
        let mut options = SessionOptions::default();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "interim" => options.interim = parse_flag("interim", &value)?,
                "vac" => options.vac = Some(parse_flag("vac", &value)?),
                "words" => options.words = parse_flag("words", &value)?,
                "token" => options.token = Some(value.into_owned()),
                "language" => options.language = Some(parse_language(&value)?),
                "task" => {
                    options.task = match value.as_ref() {
                        "transcribe" => Task::Transcribe,
                        "translate" => Task::Translate,
                        other => {
                            return Err(format!("task={other:?}: use transcribe or translate"))
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(options)
    }
}

/// `auto`, or something shaped like a language code (letters, at most 8).
pub fn parse_language(value: &str) -> Result<LanguageChoice, String> {
    let code = value.trim().to_ascii_lowercase();
    if code == "auto" {
        Ok(LanguageChoice::Detect)
    } else if (2..=8).contains(&code.len()) && code.chars().all(|c| c.is_ascii_lowercase()) {
        Ok(LanguageChoice::Code(code))
    } else {
        Err(format!(
            "language={value:?}: use a language code such as en, de, fr, or auto"
        ))
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
        assert_eq!(
            ClientMessage::parse(r#"{"type":"stop"}"#),
            Ok(ClientMessage::EndOfStream)
        );
        assert_eq!(ClientMessage::EndOfStream.to_json(), r#"{"type":"eos"}"#);
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
    fn server_messages_have_the_original_shape_and_read_back() {
        let committed = ServerMessage::committed(1.2344, 2.5, " And so".into());
        assert_eq!(
            committed.to_json(),
            r#"{"from":1234,"to":2500,"content":" And so"}"#
        );
        let cases = [
            (committed, r#"{"from":1234,"to":2500,"content":" And so"}"#),
            (ServerMessage::done(), r#"{"type":"done"}"#),
            (
                ServerMessage::error("bad \"frame\""),
                r#"{"type":"error","message":"bad \"frame\""}"#,
            ),
            (
                ServerMessage::interim(" my".into()),
                r#"{"type":"interim","content":" my"}"#,
            ),
            (
                ServerMessage::language("de", 0.93456),
                r#"{"type":"language","language":"de","probability":0.935}"#,
            ),
        ];
        for (message, json) in cases {
            assert_eq!(message.to_json(), json);
            assert_eq!(ServerMessage::parse(json).unwrap(), message, "{json}");
        }
    }

    #[test]
    fn committed_text_can_carry_its_words() {
        let message = ServerMessage::committed(1.23, 1.9, " my fellow".into())
            .with_words([(" my", 1.23, 1.4), (" fellow", 1.4, 1.9)]);
        let json = message.to_json();
        assert_eq!(
            json,
            r#"{"from":1230,"to":1900,"content":" my fellow","words":[{"word":" my","start":1230,"end":1400},{"word":" fellow","start":1400,"end":1900}]}"#
        );
        assert_eq!(ServerMessage::parse(&json).unwrap(), message);
    }

    #[test]
    fn query_options() {
        assert_eq!(
            SessionOptions::from_query("interim=1&token=a%20b&x=y"),
            Ok(SessionOptions {
                interim: true,
                token: Some("a b".into()),
                ..SessionOptions::default()
            })
        );
        assert_eq!(
            SessionOptions::from_query(""),
            Ok(SessionOptions::default())
        );
        assert!(SessionOptions::from_query("interim=maybe").is_err());
        let vac = |q: &str| SessionOptions::from_query(q).map(|o| o.vac);
        assert_eq!(vac("vac=0"), Ok(Some(false)));
        assert_eq!(vac("vac=1"), Ok(Some(true)));
        assert!(vac("vac=2").unwrap_err().contains("vac"));
        let all = SessionOptions::from_query("language=DE&task=translate&words=1").unwrap();
        assert_eq!(all.language, Some(LanguageChoice::Code("de".into())));
        assert_eq!(all.task, Task::Translate);
        assert!(all.words);
        assert_eq!(
            SessionOptions::from_query("language=auto")
                .unwrap()
                .language,
            Some(LanguageChoice::Detect)
        );
        for bad in [
            "language=",
            "language=x",
            "language=d3",
            "task=summarise",
            "words=2",
        ] {
            let error = SessionOptions::from_query(bad).unwrap_err();
            let key = bad.split('=').next().unwrap();
            assert!(error.contains(key), "{bad}: {error}");
        }
    }
}
