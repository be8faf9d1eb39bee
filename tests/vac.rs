//! Voice activity with the real binary, tiny.en and Silero: silence costs nothing and
//! says nothing, speech after a pause keeps its words and its times on the stream's
//! clock, the end of a stream mid-utterance still gets its last words, pauses without
//! VAC neither repeat nor lose words, and clients choose per connection.

mod common;

use std::time::Duration;

use common::*;
use reswhis::audio::to_pcm_bytes;
use reswhis::scenario::{noise_only, pink_noise, Noise, NOISE_FLOOR_DBFS};

const LIMIT: Duration = Duration::from_secs(180);

fn vad_model() -> String {
    repository_model("silero-v6.2.0").display().to_string()
}

fn start(vac: bool, extra: &[&str]) -> TestServer {
    let model = vad_model();
    let mut args = vec![
        "--threads",
        "1",
        "--shutdown-timeout",
        "120",
        "--vad-model",
        &model,
        "--vac",
        if vac { "true" } else { "false" },
    ];
    args.extend_from_slice(extra);
    TestServer::start(&args)
}

fn updates(server: &TestServer) -> u64 {
    get_json(server.addr, "/info", &[])["stats"]["updates"]
        .as_u64()
        .expect("stats.updates")
}

/// Streams `pcm` (in real time, or as fast as possible) and ends it.
fn stream(server: &TestServer, query: &str, pcm: &[u8], realtime: bool) -> Received {
    let mut client = connect(&server.url(&format!("/transcribe{query}")));
    stream_pcm(&mut client, pcm, FRAME_100MS, realtime, LIMIT)
}

fn noise(seconds: f64, seed: u32) -> Vec<f32> {
    pink_noise(
        reswhis::audio::samples(seconds),
        NOISE_FLOOR_DBFS,
        &mut Noise::new(seed),
    )
}

#[test]
fn silence_and_noise_say_nothing_and_cost_no_transcription() {
    let _turn = serial();
    let server = start(true, &[]);
    let info = get_json(server.addr, "/info", &[]);
    assert_eq!(info["voice_activity_controller"], true);
    assert_eq!(info["voice_activity"]["model"], "silero-v6.2.0");
    // 30 s of a quiet room with a cough and a click, streamed in real time.
    let pcm = to_pcm_bytes(&noise_only(30.0, 11));
    let received = stream(&server, "", &pcm, true);
    println!("noise, VAC on: {received:?}");
    assert!(received.done && received.errors.is_empty(), "{received:?}");
    assert_eq!(received.transcript(), "", "words committed during silence");
    assert_eq!(
        updates(&server),
        0,
        "Whisper ran while nobody spoke; log:\n{}",
        server.log()
    );
}

#[test]
fn without_vac_noise_commits_no_annotations() {
    let _turn = serial();
    let server = start(false, &[]);
    let pcm = to_pcm_bytes(&noise_only(20.0, 12));
    let received = stream(&server, "", &pcm, false);
    println!("noise, VAC off: {received:?}");
    assert!(received.done, "{received:?}");
    let transcript = received.transcript();
    assert!(
        !transcript.contains(['[', '(', '*', '♪']),
        "a non-speech annotation was committed: {transcript:?}"
    );
    assert!(
        updates(&server) > 0,
        "without VAC every chunk is transcribed"
    );
}

#[test]
fn speech_after_a_pause_keeps_its_words_and_stream_times() {
    let _turn = serial();
    let server = start(true, &[]);
    let (_, reference) = jfk();
    // 6 s of a quiet room, then jfk.wav (with the room's noise on top), then 4 s more.
    let jfk = reswhis::audio::read_wav(&shared_audio("jfk.wav")).unwrap();
    let mut audio = noise(6.0, 21);
    let mut speech = jfk.clone();
    reswhis::scenario::mix_into(&mut speech, 0, &noise(11.0, 22));
    audio.extend(&speech);
    audio.extend(noise(4.0, 23));
    let received = stream(&server, "", &to_pcm_bytes(&audio), true);
    let transcript = received.transcript();
    let error = wer(&reference, &transcript);
    println!("VAC, jfk after 6 s: WER {error:.3} {transcript:?}\n{received:?}");
    assert!(received.done, "{received:?}");
    assert!(error <= 0.15, "WER {error}: {transcript:?}");
    let first = received.committed.first().expect("some text");
    // Not before the 1 s of padding sent ahead of the speech, not long after its start.
    assert!(
        (5_000..=7_500).contains(&first.0),
        "the first words start at {} ms on the stream's clock (speech starts at 6.0 s)",
        first.0
    );
    let last = received.committed.last().unwrap();
    assert!(last.1 <= 17_200, "text past the speech: {last:?}");
    // Times never go backwards.
    for pair in received.committed.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "out of order: {pair:?}");
    }
    // The utterance was committed when it ended (the speech ends at 16.6 s), not at
    // the end of the stream (21 s of audio, real time).
    assert!(
        last.3 < 20.5,
        "the last words came {:.1} s after the start, not when the speech ended",
        last.3
    );
}

/// jfk.wav with `pauses` seconds of the room's noise in its three silences (after
/// "fellow Americans", "ask not" and "for you"), the noise under the speech too.
fn jfk_with_pauses(pauses: [f64; 3]) -> Vec<f32> {
    let jfk = reswhis::audio::read_wav(&shared_audio("jfk.wav")).unwrap();
    let cuts = [0.0, 2.6, 4.8, 7.85, f64::INFINITY];
    let mut audio = noise(1.0, 40);
    for (i, window) in cuts.windows(2).enumerate() {
        let from = reswhis::audio::samples(window[0]);
        let to = reswhis::audio::samples(window[1]).min(jfk.len());
        let mut phrase = jfk[from..to].to_vec();
        let under = noise(reswhis::audio::seconds(phrase.len()), 41 + i as u32);
        reswhis::scenario::mix_into(&mut phrase, 0, &under);
        audio.extend(phrase);
        if let Some(&pause) = pauses.get(i) {
            audio.extend(noise(pause, 50 + i as u32));
        }
    }
    audio.extend(noise(3.0, 60));
    audio
}

#[test]
fn pauses_without_vac_neither_repeat_nor_lose_words() {
    let _turn = serial();
    let server = start(false, &[]);
    let (_, reference) = jfk();
    let audio = jfk_with_pauses([4.0, 5.0, 3.0]);
    let received = stream(&server, "", &to_pcm_bytes(&audio), true);
    let transcript = received.transcript();
    let error = wer(&reference, &transcript);
    println!("VAC off, jfk with pauses: WER {error:.3} {transcript:?}\n{received:?}");
    assert!(received.done && received.errors.is_empty(), "{received:?}");
    // Around each pause Whisper re-times the words it heard before; none of them may
    // come out twice, and what follows a pause must not be lost.
    let words: Vec<String> = transcript
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .collect();
    // ("ask" is left out: Whisper hears the first one as "asked" now and then.)
    let said = [
        ("fellow", 1),
        ("americans", 1),
        ("not", 1),
        ("what", 2),
        ("your", 2),
        ("country", 2),
    ];
    for (word, said) in said {
        let heard = words.iter().filter(|w| w.as_str() == word).count();
        assert_eq!(heard, said, "{word:?} {heard} time(s) in {transcript:?}");
    }
    assert!(error <= 0.2, "WER {error}: {transcript:?}");
}

#[test]
fn the_end_of_a_stream_mid_utterance_keeps_the_last_words() {
    let _turn = serial();
    let server = start(true, &[]);
    let (pcm, _) = jfk();
    // Cut right after "...ask what you can do for your country" is spoken, with no
    // silence after it for the controller to notice: the end of the stream ends it.
    let cut = 2 * reswhis::audio::samples(10.6);
    let received = stream(&server, "", &pcm[..cut], false);
    let transcript = received.transcript();
    println!("VAC, cut mid-utterance: {transcript:?}");
    assert!(received.done, "{received:?}");
    assert_jfk_ending("VAC, cut mid-utterance", &transcript);
}

#[test]
fn clients_choose_per_connection() {
    let _turn = serial();
    let server = start(false, &[]);
    let pcm = to_pcm_bytes(&noise(8.0, 31));
    let received = stream(&server, "?vac=1", &pcm, false);
    assert!(
        received.done && received.transcript().is_empty(),
        "{received:?}"
    );
    assert_eq!(updates(&server), 0, "?vac=1 on a server without VAC");
    let received = stream(&server, "?vac=0", &pcm, false);
    assert!(received.done, "{received:?}");
    assert!(updates(&server) > 0, "?vac=0 transcribes everything");
    let (status, body) = ws_upgrade_raw(server.addr, "/transcribe?vac=maybe", &[]);
    assert!(status == 400 && body.contains("vac"), "{status} {body}");
}

#[test]
fn vac_without_the_model_is_refused_clearly() {
    let _turn = serial();
    let missing = std::env::temp_dir().join("reswhis-no-such-vad.bin");
    let missing = missing.display().to_string();
    // A server that needs the model does not start, and says how to get it.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_reswhis"))
        .args(["--model", model_path().to_str().unwrap()])
        .args(["--port", "0", "--vac", "true", "--vad-model", &missing])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("fetch.sh silero-vad"), "{stderr}");
    // One that does not need it (VAC off) refuses ?vac=1 before the upgrade.
    let server = TestServer::start(&["--threads", "1", "--vac", "false", "--vad-model", &missing]);
    let (status, body) = ws_upgrade_raw(server.addr, "/transcribe?vac=1", &[]);
    assert!(
        status == 400 && body.contains("silero-vad"),
        "{status} {body}"
    );
}
