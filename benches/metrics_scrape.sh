#!/usr/bin/env bash
# What a `/metrics` scrape costs under load: starts `verdict serve` pinned to core 0 and the
# worst-case `verdict loadgen` pinned to core 1 for 45 s; at 20 s scrapes `/metrics` plain,
# 3 s later with `Accept-Encoding: gzip`, and prints the page size, the time to the first
# byte and to the end, and the server's RSS and peak RSS (VmHWM) around each scrape.
#
#   benches/metrics_scrape.sh              # builds the release binary
#   BIN=path/to/verdict benches/metrics_scrape.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-26317}
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet --bin verdict
  BIN=target/release/verdict
fi
API=127.0.0.1:$((PORT + 2))
taskset -c 0 "$BIN" serve --otlp-grpc-addr "127.0.0.1:$PORT" --otlp-http-addr "127.0.0.1:$((PORT + 1))" \
  --api-addr "$API" >target/metrics-scrape-serve.log 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://$API/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
taskset -c 1 "$BIN" loadgen --target "http://127.0.0.1:$PORT" --duration 45s --connections 4 \
  --inflight 4 --services 1000 --versions 3 --operations 10 >target/metrics-scrape-load.txt &
LOAD=$!
mem() { awk '/VmRSS/ {r = $2} /VmHWM/ {h = $2} END {printf "rss_mib=%d peak_mib=%d\n", r / 1024, h / 1024}' "/proc/$PID/status"; }
sleep 20
echo "before: $(mem)"
curl -s -o /dev/null -w "plain: bytes=%{size_download} first_byte_s=%{time_starttransfer} total_s=%{time_total}\n" "http://$API/metrics"
echo "after plain: $(mem)"
sleep 3
curl -s -o /dev/null -H 'Accept-Encoding: gzip' -w "gzip: bytes=%{size_download} first_byte_s=%{time_starttransfer} total_s=%{time_total}\n" "http://$API/metrics"
echo "after gzip: $(mem)"
wait "$LOAD"
cat target/metrics-scrape-load.txt
kill -TERM "$PID"
wait "$PID" || true
trap - EXIT
