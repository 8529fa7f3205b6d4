# verdict: multi-stage build. The builder compiles a release binary; the runtime image
# carries only that binary, its embedded default configuration and a non-root user.
FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin verdict

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
ENTRYPOINT ["/usr/local/bin/verdict"]
CMD ["serve"]
