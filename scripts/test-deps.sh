#!/usr/bin/env bash
# Installs what the test suite needs on Debian/Ubuntu (run as root, or with sudo), then
# builds the tiny.en model with the project's own tooling. Safe to run again.
#   system packages: cmake (whisper.cpp), ffmpeg + sox (audio), chromium + chromium-driver
#                    (browser test), nginx (reverse-proxy and balancer tests), jq (websocat
#                    test), prometheus (promtool checks /metrics), nodejs/npm if missing
#   websocat 1.14.0 (cargo install), the browser test's npm packages, models/ggml-tiny.en.bin,
#   models/ggml-silero-v6.2.0.bin (Silero VAD), models/ggml-base.bin (multilingual tests),
#   bench/lang-audio (French and Spanish … speech for them)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { echo "test-deps: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

need=()
for tool in cmake:cmake ffmpeg:ffmpeg sox:sox chromium:chromium chromedriver:chromium-driver \
            nginx:nginx jq:jq promtool:prometheus node:nodejs npm:npm; do
    command -v "${tool%%:*}" >/dev/null || need+=("${tool#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! command -v websocat >/dev/null; then
    say "building websocat 1.14.0 (cargo install; a few minutes)"
    cargo install websocat --version 1.14.0
fi

if [ ! -d tests/browser/node_modules ]; then
    say "installing the browser test's npm packages"
    (cd tests/browser && npm ci --no-audit --no-fund)
fi

./models/fetch.sh tiny.en
./models/fetch.sh silero-vad
./models/fetch.sh base
bench/fetch-lang-audio.sh
say "ready"
