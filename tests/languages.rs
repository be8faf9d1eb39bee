//! Languages, per connection, with the real multilingual `base` model and real speech
//! (bench/fetch-lang-audio.sh: Asterisk's French and Spanish prompts): a language chosen
//! with `?language=`, detected with `auto` (and announced), translated with
//! `?task=translate`, words with their times with `?words=1`, and the refusals before the
//! upgrade when the model cannot do what is asked.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use reswhis::protocol::{ServerMessage, TaggedMessage};
use tungstenite::Message;

const LIMIT: Duration = Duration::from_secs(300);

fn base_model() -> String {
    repository_model("base").display().to_string()
}

/// A clip of bench/lang-audio: its s16le bytes and reference text.
fn clip(language: &str, name: &str) -> (Vec<u8>, String) {
    let dir: PathBuf = manifest_dir().join("bench/lang-audio").join(language);
    let wav = dir.join(format!("{name}.wav"));
    assert!(
        wav.is_file(),
        "{} not found: run bench/fetch-lang-audio.sh (scripts/test-deps.sh does)",
        wav.display()
    );
    let samples = reswhis::audio::read_wav(&wav).unwrap();
    let text = std::fs::read_to_string(dir.join(format!("{name}.txt"))).unwrap();
    (
        reswhis::audio::to_pcm_bytes(&samples),
        text.trim().to_string(),
    )
}

fn start_base() -> TestServer {
    let model = base_model();
    TestServer::start(&["--model", &model, "--language", "en", "--threads", "2"])
}

/// Streams `pcm` (as fast as the server takes it) and returns every message.
fn session(server: &TestServer, query: &str, pcm: &[u8]) -> Vec<ServerMessage> {
    let mut client = connect(&server.url(&format!("/transcribe{query}")));
    for frame in pcm.chunks(FRAME_100MS) {
        client.send(Message::binary(frame.to_vec())).unwrap();
    }
    client.send(Message::text(r#"{"type":"eos"}"#)).unwrap();
    let mut messages = Vec::new();
    let started = std::time::Instant::now();
    while started.elapsed() < LIMIT {
        match client.read() {
            Ok(Message::Text(text)) => messages.push(ServerMessage::parse(text.as_str()).unwrap()),
            Ok(Message::Close(_)) => break,
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    assert!(
        messages.contains(&ServerMessage::done()),
        "no done: {messages:?}"
    );
    messages
}

fn transcript(messages: &[ServerMessage]) -> String {
    messages
        .iter()
        .filter_map(|m| match m {
            ServerMessage::Committed { content, .. } => Some(content.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_language_chosen_per_connection() {
    let _turn = serial();
    let server = start_base();
    let (pcm, reference) = clip("fr", "asterisk_demo-congrats");
    let messages = session(&server, "?language=fr", &pcm);
    let text = transcript(&messages);
    let error = wer(&reference, &text);
    println!("fr: WER {error:.3}: {text}");
    assert!(error < 0.35, "WER {error}: {text}");
    // The server's own language (en) still applies to sessions that do not choose.
    let info = get_json(server.addr, "/info", &[]);
    assert_eq!(info["language"], "en");
    assert_eq!(info["translation"], true);
    let codes: Vec<&str> = info["languages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["code"].as_str().unwrap())
        .collect();
    assert!(
        codes.len() >= 99 && codes.contains(&"fr") && codes.contains(&"ru"),
        "{codes:?}"
    );
}

#[test]
fn auto_detects_the_language_and_says_so() {
    let _turn = serial();
    let server = start_base();
    let (pcm, reference) = clip("es", "asterisk_demo-echotest");
    let messages = session(&server, "?language=auto", &pcm);
    let detected: Vec<(&str, f32)> = messages
        .iter()
        .filter_map(|m| match m {
            ServerMessage::Tagged(TaggedMessage::Language {
                language,
                probability,
            }) => Some((language.as_str(), *probability)),
            _ => None,
        })
        .collect();
    let text = transcript(&messages);
    let error = wer(&reference, &text);
    println!("auto: {detected:?}, WER {error:.3}: {text}");
    assert_eq!(detected.first().map(|d| d.0), Some("es"), "{messages:?}");
    assert!(detected[0].1 >= 0.5);
    // Announced before the text that followed it, and the text is Spanish.
    let announced = messages
        .iter()
        .position(|m| matches!(m, ServerMessage::Tagged(TaggedMessage::Language { .. })))
        .unwrap();
    assert!(announced < messages.len() - 1);
    assert!(error < 0.35, "WER {error}: {text}");
}

/// A quiet reader right after a loud prompt (the end of es-long.wav: Asterisk's
/// "… presione la tecla de número." then a Multilingual LibriSpeech reader at about
/// −29 dBFS). With the voice activity controller on, the prompt's end stays in the buffer
/// as context for the reading, and Whisper once transcribed that end again and stopped:
/// the 14 s reading got no text at all.
#[test]
fn a_quiet_reader_after_a_prompt_is_heard() {
    let _turn = serial();
    let server = start_base();
    let (prompt, prompt_text) = clip("es", "asterisk_vm-intro");
    let (reading, reading_text) = clip("es", "mls_13697_11991_000000");
    let mut pcm = prompt;
    pcm.extend(vec![0u8; 16_000]); // 0.5 s of silence, as in es-long.wav
    pcm.extend(reading);
    let messages = session(&server, "?language=es&vac=1", &pcm);
    let text = transcript(&messages);
    let reference = format!("{prompt_text} {reading_text}");
    let error = wer(&reference, &text);
    println!("es, prompt then reading: WER {error:.3}: {text}");
    assert!(error < 0.45, "WER {error}: {text}");
    let lower = text.to_lowercase();
    assert!(
        ["sorpresa", "asombro", "labios"]
            .iter()
            .all(|w| lower.contains(w)),
        "the reading was not heard: {text}"
    );
}

#[test]
fn translation_to_english() {
    let _turn = serial();
    let server = start_base();
    let (pcm, _) = clip("fr", "asterisk_demo-congrats");
    let messages = session(&server, "?language=fr&task=translate", &pcm);
    let text = transcript(&messages).to_lowercase();
    println!("translated: {text}");
    let found: Vec<&str> = [
        "congratulations",
        "installed",
        "configuration",
        "phone",
        "asterisk",
    ]
    .into_iter()
    .filter(|w| text.contains(w))
    .collect();
    assert!(
        found.len() >= 3,
        "too few English content words ({found:?}): {text}"
    );
    assert!(!text.contains("félicitations"), "not translated: {text}");
}

#[test]
fn words_with_their_times() {
    let _turn = serial();
    let server = TestServer::start(&["--threads", "1"]);
    let (pcm, reference) = jfk();
    let messages = session(&server, "?words=1", &pcm);
    let mut last_end = 0;
    let mut pieces = 0;
    for message in &messages {
        let ServerMessage::Committed {
            from,
            to,
            content,
            words,
        } = message
        else {
            continue;
        };
        pieces += 1;
        let words = words.as_ref().expect("words with ?words=1");
        let joined: String = words.iter().map(|w| w.word.as_str()).collect();
        assert_eq!(&joined, content, "the words make up the content");
        assert_eq!(words.first().unwrap().start, *from);
        assert_eq!(words.last().unwrap().end, *to);
        for word in words {
            assert!(
                word.start <= word.end && word.start >= last_end,
                "{messages:?}"
            );
            assert!(*from <= word.start && word.end <= *to);
            last_end = word.end;
        }
    }
    assert!(pieces >= 2);
    assert!(wer(&reference, &transcript(&messages)) <= 0.15);
    // Without the option, messages are exactly the original shape.
    let plain = session(&server, "", &pcm);
    assert!(plain
        .iter()
        .all(|m| !matches!(m, ServerMessage::Committed { words: Some(_), .. })));
}

#[test]
fn what_a_model_cannot_do_is_refused_before_the_upgrade() {
    let _turn = serial();
    // English-only tiny.en: no other language, no detection, no translation.
    let server = TestServer::start(&["--threads", "1"]);
    for (query, expected) in [
        ("?language=de", "English-only"),
        ("?language=auto", "multilingual"),
        ("?task=translate", "multilingual"),
        ("?language=xx", "not one Whisper knows"),
        ("?language=d3", "language code"),
        ("?task=summarise", "transcribe or translate"),
        ("?words=maybe", "words"),
    ] {
        let (status, body) = ws_upgrade_raw(server.addr, &format!("/transcribe{query}"), &[]);
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body.contains(expected), "{query}: {body}");
        // The same reason without an upgrade (what the web page asks).
        let (status, body) = server.get(&format!("/transcribe{query}"));
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body.contains(expected), "{query}: {body}");
    }
    assert_eq!(server.get("/transcribe?language=en").0, 426);
    let info = get_json(server.addr, "/info", &[]);
    assert_eq!(info["translation"], false);
    assert_eq!(info["languages"].as_array().unwrap().len(), 1);
    // Unknown query keys are still ignored.
    let (status, _) = ws_upgrade_raw(server.addr, "/transcribe?colour=blue", &[]);
    assert_eq!(status, 101);
}
