#!/usr/bin/env bash
# End-to-end load benchmark: builds release, starts `verdict serve` pinned to core 0, runs
# `verdict loadgen` pinned to core 1 (pre-encoded 512-span batches over several gRPC
# connections, retrying refused requests), and reports accepted spans/s, the server's CPU
# use over the run (from /proc/PID/stat), its CPU time per accepted span and its peak RSS
# (VmHWM).
#
#   benches/e2e_load.sh                 # defaults below
#   DURATION=60s CONNECTIONS=8 benches/e2e_load.sh
#   GRAPH=off benches/e2e_load.sh       # the same without the dependency graph
#   GRAPH=full benches/e2e_load.sh      # the graph never thinned under load (min_sample_rate 1)
#   RSS_LOG=rss.txt benches/e2e_load.sh # also log the server's RSS once a second
#   FLEET=1 benches/e2e_load.sh         # a fleet-like call graph instead of the worst case
#   PER_RESOURCE=64 benches/e2e_load.sh # requests batched per resource as SDKs send them
#   CONFIG=my.yaml benches/e2e_load.sh  # serve with a configuration file (no `graph:` key if GRAPH=off)
#   PERF_OUT=/tmp/perf.data benches/e2e_load.sh   # also profile the server for 10 s
#   SERVE_ENV="_RJEM_MALLOC_CONF=background_thread:true" benches/e2e_load.sh   # environment for the server
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-4}
INFLIGHT=${INFLIGHT:-4}
SERVICES=${SERVICES:-1000}
VERSIONS=${VERSIONS:-3}
OPERATIONS=${OPERATIONS:-10}
# FLEET=1: each service calls 4 fixed callees and its first version serves 90 % (the
# default load lets any version call any other: the worst case for graph and judge).
FLEET_ARGS=()
[ "${FLEET:-0}" = 1 ] && FLEET_ARGS=(--fanout 4 --stable-share 0.9)
# PER_RESOURCE=N: each request holds blocks of up to N spans of one (service, version), as
# SDKs export and Collectors forward them, and a call's two spans travel in different
# requests (the default puts both in one request: about one resource per span).
[ "${PER_RESOURCE:-0}" != 0 ] && FLEET_ARGS+=(--spans-per-resource "$PER_RESOURCE")
PORT=${PORT:-24317}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}

# BIN=PATH uses that binary instead of building the release one.
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet --bin verdict
  BIN=target/release/verdict
fi
GRPC=127.0.0.1:$PORT
HTTP=127.0.0.1:$((PORT + 1))
API=127.0.0.1:$((PORT + 2))

# CONFIG=FILE serves with that configuration; GRAPH=off appends `graph.enabled: false`,
# GRAPH=full `graph.min_sample_rate: 1`.
CONFIG_ARGS=()
if [ -n "${CONFIG:-}" ] || [ "${GRAPH:-on}" != on ]; then
  { [ -n "${CONFIG:-}" ] && cat "$CONFIG"
    [ "${GRAPH:-on}" = off ] && printf 'graph:\n  enabled: false\n'
    [ "${GRAPH:-on}" = full ] && printf 'graph:\n  min_sample_rate: 1\n'
    true; } >target/e2e-config.yaml
  CONFIG_ARGS=(--config target/e2e-config.yaml)
fi

env ${SERVE_ENV:-} taskset -c "$SERVER_CPU" "$BIN" serve "${CONFIG_ARGS[@]}" --otlp-grpc-addr "$GRPC" --otlp-http-addr "$HTTP" \
  --api-addr "$API" >target/e2e-serve.log 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null || true' EXIT

ready=0
for _ in $(seq 100); do
  if curl -sf "http://$API/readyz" >/dev/null 2>&1; then ready=1; break; fi
  sleep 0.1
done
[ "$ready" = 1 ] || { echo "verdict serve did not become ready"; cat target/e2e-serve.log; exit 1; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
c0=$(cpu_ticks)
t0=$(date +%s.%N)
# RSS_LOG=FILE: the server's resident memory once a second ("seconds MiB"), to see when the peak comes.
[ -n "${RSS_LOG:-}" ] && { ( s=0; while kill -0 "$PID" 2>/dev/null; do
    awk -v s="$s" '/VmRSS/ {printf "%d %.1f\n", s, $2 / 1024}' "/proc/$PID/status"; sleep 1; s=$((s + 1)); done ) >"$RSS_LOG" 2>/dev/null & }
[ -n "${PERF_OUT:-}" ] && { perf record -F 999 -g -p "$PID" -o "$PERF_OUT" -- sleep 10 >/dev/null 2>&1 & }
out=$(taskset -c "$LOAD_CPU" "$BIN" loadgen --target "http://$GRPC" --duration "$DURATION" \
  --connections "$CONNECTIONS" --inflight "$INFLIGHT" --services "$SERVICES" \
  --versions "$VERSIONS" --operations "$OPERATIONS" "${FLEET_ARGS[@]}")
c1=$(cpu_ticks)
t1=$(date +%s.%N)
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$PID/status")
rss=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status")
hz=$(getconf CLK_TCK)
# The graph's sampling at the end of the run and the spans it left out (thinning under load).
# The judge's once-a-second step: its mean CPU time per tick (the ticking thread's).
graph=$(curl -sf "http://$API/metrics" | awk '/^verdict_graph_sample_rate / {r=$2} /^verdict_graph_thinned_spans_total / {t=$2}
  /^verdict_judge_ticks_total / {k=$2} /^verdict_judge_tick_cpu_seconds_total / {c=$2}
  END {printf "graph_sample_rate=%s graph_thinned_spans=%s judge_tick_cpu_ms=%.1f", r, t, (k > 0 ? c * 1000 / k : 0)}' || true)
# Where the memory is at the end of the run: the analysis's own estimates and the allocator's view.
memory=$(curl -sf "http://$API/metrics" | awk '
  /^verdict_(graph_store_items|graph_store_tombstones|graph_edges|judge_streams) / { sub(/^verdict_/, "", $1); printf "%s=%d ", $1, $2 }
  /^verdict_(state_memory|graph_edges_memory|judge_streams_memory|judge_tests_memory|judge_path_memory|graph_store_memory)_bytes / ||
  /^verdict_allocator_[a-z]+_bytes / { sub(/^verdict_/, "", $1); sub(/_bytes$/, "", $1); printf "%s_mib=%.1f ", $1, $2 / 1048576 }' || true)

echo "$out"
accepted=$(echo "$out" | grep -o 'accepted_spans=[0-9]*' | cut -d= -f2)
# CPU time per accepted span: the figure that does not depend on whether something else
# shared the server's core during the run (throughput on one saturated core is its inverse).
awk -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" -v hz="$hz" -v hwm="$hwm" -v rss="$rss" -v n="${accepted:-0}" 'BEGIN {
  cpu = (c1 - c0) / hz
  printf "server_cpu_cores=%.2f server_cpu_ns_per_span=%.0f peak_rss_mib=%.1f rss_after_mib=%.1f\n", cpu / (t1 - t0), (n > 0 ? cpu * 1e9 / n : 0), hwm / 1024, rss / 1024
}'
echo "$graph"
echo "$memory"
kill -TERM "$PID"
wait "$PID" || true
trap - EXIT
