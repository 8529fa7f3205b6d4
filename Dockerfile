# verdict: multi-stage build. The builder compiles a release binary; the runtime image
# carries only that binary, its embedded default configuration and a non-root user.
FROM rust:1-bookworm AS builder
WORKDIR /src
# Dependencies first, so source edits do not rebuild them.
COPY Cargo.toml Cargo.lock build.rs* ./
COPY proto ./proto
RUN mkdir -p src benches && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && for b in $(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | tail -n +2); do echo 'fn main() {}' > "benches/$b.rs"; done \
    && cargo build --release --locked --bin verdict || true
COPY . .
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin verdict

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/verdict --create-home verdict
COPY --from=builder /src/target/release/verdict /usr/local/bin/verdict
COPY config /etc/verdict
USER verdict
WORKDIR /var/lib/verdict
EXPOSE 4317 4318 4319
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=2s CMD ["/usr/local/bin/verdict", "--version"]
ENTRYPOINT ["/usr/local/bin/verdict"]
CMD ["serve"]
