//! The Silero model the server loads at start: required when VAC or VAD is on by
//! default (fetched with the project's script when it is missing), loaded if present
//! otherwise so that clients can still ask for `?vac=1`.

use std::path::Path;
use std::sync::Arc;

use crate::config::{ServeArgs, DEFAULT_VAD_MODEL};
use crate::vad::{SileroError, SileroModel};

/// Loads the Silero model as `args` say.
pub(super) fn load(args: &ServeArgs) -> Result<Option<Arc<SileroModel>>, SileroError> {
    let path = args.voice.vad_model_path(&args.model.models_dir);
    if args.voice.needs_model() && !path.exists() {
        fetch(args, &path);
    }
    match SileroModel::load(&path) {
        Ok(model) => {
            log::info!("voice activity model: {}", path.display());
            Ok(Some(model))
        }
        Err(e) if args.voice.needs_model() => Err(e),
        Err(SileroError::Missing { .. }) => Ok(None),
        Err(e) => {
            log::warn!("{e}; ?vac=1 will be refused");
            Ok(None)
        }
    }
}

/// Runs the project's fetch script for the default Silero model when it is missing and
/// the server needs it (the script downloads it, or builds it from PyPI's silero-vad).
fn fetch(args: &ServeArgs, path: &Path) {
    let dir = &args.model.models_dir;
    if args.voice.vad_model != DEFAULT_VAD_MODEL {
        return;
    }
    let (script, mut command) = if cfg!(windows) {
        let mut c = std::process::Command::new("cmd");
        c.arg("/C").arg(dir.join("fetch.bat"));
        ("fetch.bat", c)
    } else {
        let mut c = std::process::Command::new("bash");
        c.arg(dir.join("fetch.sh"));
        ("fetch.sh", c)
    };
    if !dir.join(script).is_file() {
        return;
    }
    log::info!(
        "{} is missing: fetching it with {}",
        path.display(),
        dir.join(script).display()
    );
    match command.arg("silero-vad").status() {
        Ok(status) if status.success() => {}
        Ok(status) => log::warn!("{script} silero-vad failed ({status})"),
        Err(e) => log::warn!("cannot run {script}: {e}"),
    }
}
