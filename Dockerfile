# reswhis in a container: build stage (Rust + cmake), then a slim runtime with the binary
# and the models. This file is not built by the project's CI (no Docker engine there).
#
#   docker build -t reswhis .
#   docker run --rm -p 8000:8000 reswhis
#
# `docker stop` sends SIGTERM: sessions are flushed and closed with 1001, exit 0.
# For the GPU, build on a CUDA image (nvidia/cuda:12.x-devel) with `--features cuda`
# and run it with `--gpus all` (see README, GPU).

FROM rust:1-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake python3 python3-pip \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
ENV WHISPER_DONT_GENERATE_BINDINGS=1
RUN cargo build --release --locked --bin reswhis \
    && ./models/fetch.sh tiny.en \
    && ./models/fetch.sh silero-vad

FROM debian:bookworm-slim
RUN groupadd --system --gid 10001 reswhis \
    && useradd --system --uid 10001 --gid reswhis --home-dir /app reswhis
COPY --from=build /src/target/release/reswhis /usr/local/bin/reswhis
COPY --from=build /src/models/ggml-tiny.en.bin /src/models/ggml-silero-v6.2.0.bin /app/models/
WORKDIR /app
USER reswhis
ENV HOST=0.0.0.0 PORT=8000 MODELS_DIR=/app/models
EXPOSE 8000
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/reswhis"]
