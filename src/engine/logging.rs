//! whisper.cpp's log messages, into the `log` crate (target `whisper_rs::whisper_logging_hook`,
//! as whisper-rs's own hook writes them), with one exception: `failed to encode` and
//! `failed to decode`, which whisper.cpp logs as errors whenever a call stops early, are
//! logged at debug level. Calls stop early because this crate stops them (the time budget,
//! the loop guard: see [`super::guards`]), which the pool counts and logs as a cut; a call
//! that fails for another reason comes back as an [`super::EngineError`], which is
//! reported where it is handled. Measured: one client streaming the benchmark files
//! logged 14 such "errors" in five minutes, none of them a failure.

use std::ffi::{c_char, c_void, CStr};
use std::sync::Once;

use whisper_rs::whisper_rs_sys as sys;

const TARGET: &str = "whisper_rs::whisper_logging_hook";

/// Routes whisper.cpp's and ggml's messages to `log` (once per process).
pub(super) fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        whisper_rs::install_logging_hooks();
        // SAFETY: the callback is a plain function that lives as long as the process and
        // needs no user data.
        unsafe { sys::whisper_log_set(Some(forward), std::ptr::null_mut()) };
    });
}

/// The level a whisper.cpp message is logged at.
fn level_of(level: sys::ggml_log_level, text: &str) -> log::Level {
    match level {
        sys::ggml_log_level_GGML_LOG_LEVEL_ERROR if stopped_early(text) => log::Level::Debug,
        sys::ggml_log_level_GGML_LOG_LEVEL_ERROR => log::Level::Error,
        sys::ggml_log_level_GGML_LOG_LEVEL_WARN => log::Level::Warn,
        sys::ggml_log_level_GGML_LOG_LEVEL_INFO => log::Level::Info,
        sys::ggml_log_level_GGML_LOG_LEVEL_DEBUG => log::Level::Debug,
        _ => log::Level::Trace,
    }
}

/// What whisper.cpp says when a call's abort callback stopped it.
fn stopped_early(text: &str) -> bool {
    let text = text.trim();
    text.ends_with(": failed to decode") || text.ends_with(": failed to encode")
}

unsafe extern "C" fn forward(level: sys::ggml_log_level, text: *const c_char, _: *mut c_void) {
    if text.is_null() {
        return;
    }
    // SAFETY: whisper.cpp passes a NUL-terminated string that lives for this call.
    let text = unsafe { CStr::from_ptr(text) }.to_string_lossy();
    let level = level_of(level, &text);
    log::log!(target: TARGET, level, "{}", text.trim());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopped_calls_are_not_errors_but_other_errors_are() {
        let error = sys::ggml_log_level_GGML_LOG_LEVEL_ERROR;
        for text in [
            "whisper_full_with_state: failed to decode\n",
            "whisper_full_with_state: failed to encode\n",
        ] {
            assert_eq!(level_of(error, text), log::Level::Debug, "{text}");
        }
        assert_eq!(
            level_of(
                error,
                "whisper_init_from_file_with_params_no_state: failed to load model\n"
            ),
            log::Level::Error
        );
        assert_eq!(
            level_of(sys::ggml_log_level_GGML_LOG_LEVEL_WARN, "failed to decode"),
            log::Level::Warn
        );
    }
}
