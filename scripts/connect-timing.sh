#!/usr/bin/env bash
# Reproduces the "Connect timing" table of BENCHMARKS.md: connect latency to used versus
# unused public ids (N of each, default 1000), interleaved at random, against moto's
# DynamoDB-compatible server, with the difference of the medians, its bootstrap interval
# and the same figures for two halves of the used group (the noise). A report, not a
# pass/fail check; run it on a quiet machine. CONNECT_TIMING_PROFILE=dev builds in debug
# (the test command's quick run: ./scripts/connect-timing.sh 20).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'connect-timing.sh: %s\n' "$*" >&2; exit 1; }
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

ensure_venv
start_moto
profile=${CONNECT_TIMING_PROFILE:-release}
cargo build --profile "$profile" --locked -p benchmarks --bin connect_timing
dir=$profile; [ "$profile" = dev ] && dir=debug
"target/$dir/connect_timing" "$AWS_ENDPOINT_URL_DYNAMODB" "${1:-1000}"
