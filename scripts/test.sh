#!/usr/bin/env bash
# Runs every check verdict has: formatting, lints, and all tests (unit, property,
# end-to-end with real OTLP clients, a real Alertmanager and a real headless browser).
# Installs the real components those tests need when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-test-deps.sh

# Incremental caches double the size of target/ and buy nothing on a clean clone.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo test"
cargo test --all-targets --no-fail-fast 2>&1 | tee target/test-output.log
