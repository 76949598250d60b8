# syntax=docker/dockerfile:1
# tubewatch in a container: a Rust builder stage whose dependencies are compiled in a layer of
# their own (cargo-chef: rebuilt only when Cargo.toml or Cargo.lock change), then the one binary
# on a small distroless runtime (glibc, CA certificates, no shell) as a non-root user.
#
#   docker build -t tubewatch .
#   docker run -p 8080:8080 -v tubewatch-data:/data -e TUBEWATCH_MAIL_PUBLIC_URL=http://localhost:8080 tubewatch
#
# Everything the service keeps (SQLite database, thumbnails, outbox) lands in the /data volume,
# the working directory: the settings' default paths are relative (./tubewatch-data/…).
# deploy/compose.yaml runs it scaled out on PostgreSQL. See README, "Deploying".

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
# The dependencies alone: this layer is reused as long as the recipe (manifests, lock file) is.
RUN cargo chef cook --release --locked --recipe-path recipe.json --bin tubewatch
COPY . .
RUN cargo build --release --locked --bin tubewatch \
    && mkdir -p /out/data \
    && cp target/release/tubewatch /out/tubewatch

# Debian 12's glibc, as the builder's.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/tubewatch /usr/local/bin/tubewatch
# Owned by the image's non-root user (65532), so a new named volume mounted here is writable.
COPY --from=builder --chown=65532:65532 /out/data /data
WORKDIR /data
USER 65532:65532
VOLUME ["/data"]
# In a container the service listens on every interface; publish the port to choose who reaches it.
ENV TUBEWATCH_LISTEN=0.0.0.0:8080
EXPOSE 8080
# /healthz: the process answers and its database does. Worker containers serve no HTTP: turn the
# check off for them (deploy/compose.yaml does).
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/tubewatch", "healthcheck", "--url", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["/usr/local/bin/tubewatch"]
CMD ["serve"]
