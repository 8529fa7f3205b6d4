#!/usr/bin/env bash
# Installs, when missing, the real components verdict's tests use: Debian packages
# (Alertmanager, Chromium, Graphviz) and the OpenTelemetry Python SDK from PyPI.
# Idempotent and quiet; safe to run on every test run.
set -euo pipefail

apt_packages=()
command -v prometheus-alertmanager >/dev/null 2>&1 || apt_packages+=(prometheus-alertmanager)
command -v chromium >/dev/null 2>&1 || apt_packages+=(chromium)
command -v dot >/dev/null 2>&1 || apt_packages+=(graphviz)
if [ ${#apt_packages[@]} -gt 0 ]; then
  echo "ensure-test-deps: installing ${apt_packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
fi

if ! python3 -c 'import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.grpc, opentelemetry.exporter.otlp.proto.http' >/dev/null 2>&1; then
  echo "ensure-test-deps: installing the OpenTelemetry Python SDK"
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore \
    opentelemetry-sdk opentelemetry-exporter-otlp-proto-grpc opentelemetry-exporter-otlp-proto-http
fi
