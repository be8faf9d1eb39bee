//! `/transcribe` with an upgrade: the checks the server owns (session limit, what the
//! model and the Silero model can do) on top of [`Upgrade::check`], then the session.

use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{CountGuard, Shared};
use crate::engine::CallLanguage;
use crate::handshake::{Refusal, Upgrade};
use crate::http::RequestHead;
use crate::pool::StreamOptions;
use crate::protocol::{LanguageChoice, SessionOptions, Task};
use crate::session::{self, SessionEnv, SessionParts, ShutdownSignal};
use crate::vad::VoiceController;

/// Checks the upgrade request and, if it passes, runs the session to its end.
pub(super) fn handle(stream: TcpStream, head: &RequestHead, leftover: Vec<u8>, shared: &Shared) {
    let config = &shared.config;
    let upgrade = match Upgrade::check(head, config.api_key.as_deref(), shared.is_shutting_down()) {
        Ok(upgrade) => upgrade,
        Err(refusal) => return refuse(refusal, stream, shared),
    };
    let sessions = shared
        .metrics
        .sessions_active
        .fetch_add(1, Ordering::SeqCst)
        + 1;
    let _session = CountGuard(&shared.metrics.sessions_active);
    if sessions > config.max_sessions {
        let max_sessions = config.max_sessions;
        return refuse(Refusal::Busy { max_sessions }, stream, shared);
    }
    let parts = match voice_controller(&upgrade.options, shared).and_then(|vac| {
        let options = stream_options(&upgrade.options, shared)?;
        Ok((vac, options))
    }) {
        Ok((vac, options)) => {
            let (handle, events) = shared.pool.open_stream(options);
            SessionParts {
                handle,
                events,
                vac,
                words: upgrade.options.words,
            }
        }
        Err(refusal) => return refuse(refusal, stream, shared),
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
    let env = SessionEnv {
        limits: &config.session,
        shutdown: shared,
        metrics: &shared.metrics,
    };
    session::run(stream, &upgrade, leftover, parts, &env);
    log::info!("session from {peer} ended");
}

/// Answers a refused upgrade and closes without losing the answer.
fn refuse(refusal: Refusal, mut stream: TcpStream, shared: &Shared) {
    refusal.send(&mut stream);
    shared.closer.close(stream);
}

/// The stream's language and task, if the model can do them.
pub(super) fn stream_options(
    options: &SessionOptions,
    shared: &Shared,
) -> Result<StreamOptions, Refusal> {
    let engine = &shared.engine;
    let model = shared.config.model_name();
    let language = match &options.language {
        None => CallLanguage::Default,
        Some(LanguageChoice::Code(code)) => {
            engine
                .check_language(code)
                .map_err(|e| Refusal::Unavailable(format!("language={code}: {e}")))?;
            CallLanguage::Code(code.clone())
        }
        Some(LanguageChoice::Detect) if !engine.is_multilingual() => {
            return Err(Refusal::Unavailable(format!(
                "language=auto needs a multilingual model; this server runs {model} (English only)"
            )))
        }
        Some(LanguageChoice::Detect) => CallLanguage::Detect,
    };
    let translate = options.task == Task::Translate;
    if translate && !engine.is_multilingual() {
        return Err(Refusal::Unavailable(format!(
            "task=translate needs a multilingual model; this server runs {model} (English only)"
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
    if !options.vac.unwrap_or(shared.config.vac) {
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
        shared.config.gate.clone(),
    )))
}
