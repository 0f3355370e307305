#!/usr/bin/env bash
# Reproduces BENCHMARKS.md: builds the release binaries, then prints
#  1. cold starts and invocations of each function next to the bare lambda_runtime floor
#     (init, first invocation, warm p50/p99, DynamoDB and Pusher calls per invocation),
#     against moto's DynamoDB-compatible server and a local Pusher endpoint;
#  2. each function's binary size and zipped package size;
#  3. handler CPU time per request with no I/O (criterion).
#  4. what a person waits for on the Lambda path (benchmarks/src/bin/e2e_latency.rs):
#     send-message to the subscriber's `message`, connect to the inbox's `room`, each
#     beside a floor making the same calls directly; BENCH_E2E (200) rounds.
# Figures are reports, not pass/fail. BENCH_RUNS (20) cold starts per function with
# BENCH_WARM (50) warm invocations each, and BENCH_INIT_RUNS (100) more for init alone.
# To compare release profiles, override them the way cargo allows (for example
# CARGO_PROFILE_RELEASE_OPT_LEVEL=3 CARGO_PROFILE_BENCH_OPT_LEVEL=3), or run
# ./scripts/profiles.sh. BENCH_PROFILE=dev builds in debug and runs the criterion bench
# once per route as a test (the test command's smoke run: the script works and prints;
# its figures mean nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench.sh: %s\n' "$*" >&2; exit 1; }
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

functions=("${route_functions[@]}")
ensure_venv
start_moto
# Another moto server on a port of its own, logging to $1: its endpoint in $moto_endpoint
# (not a command substitution, whose subshell would keep the process from the clean-up).
another_moto() {
  local port
  port=$(free_port)
  "$venv/bin/python" scripts/moto_dynamodb.py 127.0.0.1 "$port" >"$1" 2>&1 &
  pids+=("$!")
  moto_endpoint="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do
    "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('$moto_endpoint/moto-api/')" 2>/dev/null && return 0
    sleep 0.1
  done
  cat "$1" >&2
  die "a moto server did not start (log: $1)"
}
# Secrets Manager on a moto of its own, as on AWS, where it is another service than
# DynamoDB (moto serves one request at a time: on one server, the secret reads would
# queue behind the connection warm-up they run beside).
another_moto target/moto-secrets.log
secrets_endpoint=$moto_endpoint

profile=${BENCH_PROFILE:-release}
dir=$profile; [ "$profile" = dev ] && dir=debug
if [ "$profile" = dev ]; then
  say "dev build (a smoke run: its figures mean nothing)"
else
  say "release build (profile: $(sed -n '/^\[profile.release\]/,/^$/p' Cargo.toml | tr '\n' ' ')${CARGO_PROFILE_RELEASE_OPT_LEVEL:+; opt-level overridden to $CARGO_PROFILE_RELEASE_OPT_LEVEL})"
fi
# Two builds: the benchmarks link the test kit, which turns on the library's `embedded`
# feature; built together, the functions would be built with it too, unlike deployed.
cargo build --profile "$profile" --locked $(printf -- '-p %s ' "${functions[@]}")
cargo build --profile "$profile" --locked -p benchmarks --bins

echo "## Cold start and invocations ($(nproc) cores, $(uname -m))"
echo
"target/$dir/coldstart" "$AWS_ENDPOINT_URL_DYNAMODB" "target/$dir" \
  "${BENCH_RUNS:-20}" "${BENCH_WARM:-50}" "${BENCH_INIT_RUNS:-100}" "$secrets_endpoint"

echo
echo "## The Lambda path end to end, against its floor"
echo
# On a moto of its own: after the cold starts, whose hundreds of tables one moto keeps
# in memory, it once stalled past the functions' 5 s DynamoDB time-out and ended a run.
another_moto target/moto-e2e.log
"target/$dir/e2e_latency" "$moto_endpoint" "target/$dir" "${BENCH_E2E:-200}"

echo
echo "## Sizes ($(uname -m))"
echo
if [ "$profile" = dev ]; then
  echo "(debug binaries: sizes are the release build's figure)"
else
  package_sizes "target/$dir" floor "${functions[@]}"
fi

echo
echo "## Handler CPU per request, no I/O"
echo
echo "| route | time per request (criterion: low, estimate, high) |"
echo "| --- | --- |"
if [ "$profile" = dev ]; then
  # Criterion, run by cargo test, runs each benchmark once and times nothing.
  cargo test --locked -p benchmarks --bench handlers 2>&1 \
    | awk '/^Testing handler\// { print "| " $2 " | ran once, untimed |" }'
  exit 0
fi
cargo bench --locked -p benchmarks --bench handlers -- --noplot 2>&1 \
  | awk '/^handler\// { name = $1 } /time:/ { sub(/.*time: +/, ""); print "| " name " | " $0 " |" }'
