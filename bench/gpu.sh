#!/usr/bin/env bash
# Streams per GPU (issue #14): `reswhis bench` against a CUDA build, for each model.
#
#   bench/gpu.sh [BINARY [MODEL ...]]
#       BINARY  a CUDA build (default target/cuda-sm90/release/reswhis, what
#               scripts/build-cuda.sh makes); MODEL: names (default: tiny.en base)
#
# For each model it
#   1. measures GPU memory (nvidia-smi) with the server idle at 1 and at 4 workers: the
#      model, and what one more worker (one whisper state) costs, and prints how many
#      states fit per GiB;
#   2. picks the workers: as many as the GPU's free memory holds at 80 %, at most
#      $MAX_WORKERS (default: the CPU cores), 2 threads each (the CPU part of a call:
#      mel, sampling; the GPU does the rest);
#   3. runs `reswhis bench --max-search` on $FILES (default three recordings: jfk, the MFA
#      corpus clip, the Asterisk echo test) from $FROM_CLIENTS clients (default 8: 8, 12,
#      16, 24, 32, 48, 64, 96, 128, up to $MAX_CLIENTS) until a round does not keep up,
#      and appends the report to $OUTPUT (default BENCHMARKS.md), the JSON to $OUT_DIR.
#
# Streams per GPU = the largest round that keeps up (p90 latency <= 3 s, growth <= 1 s, no
# errors). Each round streams in real time, so a round takes about as long as its
# client's files (60 s here) plus the start-up: a little over a minute a round.
# Needs: the test audio (bench/fetch-audio.sh), the models (models/fetch.sh NAME), the
# NVIDIA driver and the CUDA runtime libraries on LD_LIBRARY_PATH (see README, GPU).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${1:-$ROOT/target/cuda-sm90/release/reswhis}
shift || true
MODELS=("$@")
[ ${#MODELS[@]} -gt 0 ] || MODELS=(tiny.en base)
FROM_CLIENTS=${FROM_CLIENTS:-8}
MAX_CLIENTS=${MAX_CLIENTS:-128}
FILES=${FILES:-$ROOT/bench/audio/jfk.wav,$ROOT/bench/audio/mfa_acoustic_corpus.wav,$ROOT/bench/audio/asterisk_demo-echotest.wav}
OUTPUT=${OUTPUT:-$ROOT/BENCHMARKS.md}
OUT_DIR=${OUT_DIR:-$ROOT/target/gpu-bench}
MAX_WORKERS=${MAX_WORKERS:-$(nproc)}
PORT=${PORT:-18111}

log() { echo "gpu-bench: $*" >&2; }
die() { echo "gpu-bench: error: $*" >&2; exit 1; }

[ -x "$BIN" ] || die "no CUDA build at $BIN (scripts/build-cuda.sh makes one)"
command -v nvidia-smi >/dev/null || die "nvidia-smi not found: no NVIDIA driver here"
command -v curl >/dev/null || die "curl is needed"
mkdir -p "$OUT_DIR"

# GPU memory in use now, MiB (GPU 0).
gpu_used() { nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 | tr -d ' '; }
gpu_total() { nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits -i 0 | tr -d ' '; }

# Starts a server with $2 workers of model $1, waits until it answers, prints the GPU
# memory it holds (MiB) and the device it reports, stops it.
idle_memory() {
    local model=$1 workers=$2 before after pid info
    before=$(gpu_used)
    "$BIN" --model "$model" --models-dir "$ROOT/models" --port "$PORT" --workers "$workers" \
        --threads 2 >"$OUT_DIR/server-$model-$workers.log" 2>&1 &
    pid=$!
    for _ in $(seq 120); do
        curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break
        kill -0 "$pid" 2>/dev/null || die "the server did not start: $(tail -5 "$OUT_DIR/server-$model-$workers.log")"
        sleep 1
    done
    sleep 2
    after=$(gpu_used)
    info=$(curl -s "http://127.0.0.1:$PORT/info")
    kill -TERM "$pid"; wait "$pid" || true
    echo "$((after - before)) $(printf '%s' "$info" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("gpu"), d.get("device","?").replace(" ","_"))')"
}

total=$(gpu_total)
log "GPU: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader -i 0), ${total} MiB"
for model in "${MODELS[@]}"; do
    read -r one gpu device < <(idle_memory "$model" 1)
    [ "$gpu" = True ] || die "$model: the server does not run on the GPU (/info gpu=$gpu, device $device); see $OUT_DIR/server-$model-1.log"
    read -r four _ _ < <(idle_memory "$model" 4)
    per_state=$(( (four - one) / 3 ))
    [ "$per_state" -gt 0 ] || per_state=1
    model_mib=$(( one - per_state ))
    free=$(( total - $(gpu_used) ))
    fit=$(( (free * 8 / 10 - model_mib) / per_state ))
    workers=$(( fit < MAX_WORKERS ? fit : MAX_WORKERS ))
    [ "$workers" -ge 1 ] || die "$model: not even one state fits in ${free} MiB"
    log "$model on ${device//_/ }: model + 1 state ${one} MiB, each further state ${per_state} MiB ($(( 1024 / per_state )) states per GiB); ${fit} would fit, using ${workers} workers × 2 threads"
    {
        echo
        echo "### GPU: $model on ${device//_/ }"
        echo
        echo "Idle GPU memory: model and one whisper state ${one} MiB; each further state (worker) ${per_state} MiB, about $(( 1024 / per_state )) per GiB. Workers: ${workers} (of ${fit} that fit in 80 % of the free memory), 2 threads each."
    } >>"$OUTPUT"
    "$BIN" bench --model "$model" --models-dir "$ROOT/models" --gpu true \
        --workers "$workers" --threads 2 --files "$FILES" --max-search --clients "$FROM_CLIENTS" --max-clients "$MAX_CLIENTS" \
        --no-floor --output "$OUTPUT" --json "$OUT_DIR/$model.json" \
        2> >(tee "$OUT_DIR/$model.err" >&2)
    grep "bench: [0-9]* client" "$OUT_DIR/$model.err" | sed "s/^/$model: /" || true
done
log "done: $OUTPUT, $OUT_DIR"
