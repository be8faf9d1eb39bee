#!/usr/bin/env bash
# Start reswhis: fetch the model if missing, build a release binary, run the server.
# Edit the settings below, or override any of them from the environment:
#   MODEL=base.en PORT=9000 ./run.sh
set -euo pipefail

# ---- settings ---------------------------------------------------------------------
MODEL=${MODEL:-tiny.en}                  # tiny, tiny.en, base, base.en, small, … or a path
LANGUAGE=${LANGUAGE:-en}                 # language code, or auto
MINIMUM_CHUNK_SIZE=${MINIMUM_CHUNK_SIZE:-}     # seconds of new audio per update (empty: 0.75 tiny, 1.0 larger)
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

# The GPU: a CUDA build when asked for (true), or when nvcc is on the PATH (auto).
# Without an installed toolkit, USE_GPU=true builds with one from NVIDIA's PyPI wheels
# (scripts/build-cuda.sh: CUDA 13, needs an R580+ driver), for this machine's GPU.
binary=./target/release/reswhis
build=(cargo build --release)
case "$(echo "$USE_GPU" | tr '[:upper:]' '[:lower:]')" in
    true|1|yes|on|auto)
        if command -v nvcc >/dev/null; then
            build+=(--features cuda)
        elif [ "$USE_GPU" != auto ]; then
            arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n1 | tr -d '. ' || true)
            build=(scripts/build-cuda.sh ${arch:+--arch "$arch"})
            binary=${CARGO_TARGET_DIR:-./target/cuda-sm${arch:-90}}/release/reswhis
            cuda_lib=${RESWHIS_CUDA_DIR:-$HOME/.cache/reswhis/cuda-13.0.2}/toolkit/lib
            export LD_LIBRARY_PATH="$cuda_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        fi
        ;;
esac
[ "$USE_GPU" = auto ] && USE_GPU=true

echo "run.sh: building (${build[*]})"
"${build[@]}"

export MODEL LANGUAGE HOST PORT USE_GPU
# Unset, reswhis picks the interval for the model.
if [ -n "$MINIMUM_CHUNK_SIZE" ]; then export MINIMUM_CHUNK_SIZE; else unset MINIMUM_CHUNK_SIZE; fi
export USE_VOICE_ACTIVITY_CONTROLLER USE_VOICE_ACTIVITY_DETECTION
exec "$binary" "$@"
