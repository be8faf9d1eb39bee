#!/usr/bin/env bash
# Start reswhis: fetch the model if missing, build a release binary, run the server.
# Edit the settings below, or override any of them from the environment:
#   MODEL=base.en PORT=9000 ./run.sh
set -euo pipefail

# ---- settings ---------------------------------------------------------------------
MODEL=${MODEL:-tiny.en}                  # tiny, tiny.en, base, base.en, small, … or a path
LANGUAGE=${LANGUAGE:-en}                 # language code, or auto
MINIMUM_CHUNK_SIZE=${MINIMUM_CHUNK_SIZE:-0.75}  # seconds of new audio per update
HOST=${HOST:-127.0.0.1}                  # 0.0.0.0 to accept other machines
PORT=${PORT:-8000}
USE_GPU=${USE_GPU:-auto}                 # auto: CUDA build when nvcc is found; true; false
USE_VOICE_ACTIVITY_CONTROLLER=${USE_VOICE_ACTIVITY_CONTROLLER:-true}   # Silero VAC (README)
USE_VOICE_ACTIVITY_DETECTION=${USE_VOICE_ACTIVITY_DETECTION:-false}    # Silero VAD filter
# WORKERS, THREADS, BEAM_SIZE, API_KEY, MAX_SESSIONS, … are read by reswhis itself
# (see README.md, "Configuration").
# -----------------------------------------------------------------------------------

cd "$(dirname "${BASH_SOURCE[0]}")"

if ! command -v cargo >/dev/null; then
    echo "run.sh: cargo not found; install Rust from https://rustup.rs" >&2
    exit 1
fi
if ! command -v cmake >/dev/null; then
    echo "run.sh: cmake not found (needed to build whisper.cpp); e.g. sudo apt-get install cmake" >&2
    exit 1
fi

case "$MODEL" in
    */*|*.bin) ;;                        # a path: use as is
    *) [ -s "models/ggml-$MODEL.bin" ] || ./models/fetch.sh "$MODEL" ;;
esac

is_on() { case "$(echo "$1" | tr '[:upper:]' '[:lower:]')" in true|1|yes|on) return 0 ;; esac; return 1; }
if { is_on "$USE_VOICE_ACTIVITY_CONTROLLER" || is_on "$USE_VOICE_ACTIVITY_DETECTION"; } \
    && [ -z "${VAD_MODEL:-}" ] && [ ! -s models/ggml-silero-v6.2.0.bin ]; then
    ./models/fetch.sh silero-vad
fi

features=()
case "$USE_GPU" in
    true|1|yes) features=(--features cuda) ;;
    auto) command -v nvcc >/dev/null && features=(--features cuda) ;;
esac
[ "$USE_GPU" = auto ] && USE_GPU=true

echo "run.sh: building (cargo build --release ${features[*]})"
cargo build --release "${features[@]}"

export MODEL LANGUAGE MINIMUM_CHUNK_SIZE HOST PORT USE_GPU
export USE_VOICE_ACTIVITY_CONTROLLER USE_VOICE_ACTIVITY_DETECTION
exec ./target/release/reswhis "$@"
