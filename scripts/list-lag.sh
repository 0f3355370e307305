#!/usr/bin/env bash
# Reproduces the "Room-list lag" table of BENCHMARKS.md: how long a prober's own room
# list takes to show their message after N connects (default 300) to a held and to a
# retired target, on the local server with its embedded store in a file, TRIALS times
# each (default 7). A report, not a pass/fail check; run it on a quiet machine.
# LIST_LAG_PROFILE=dev builds in debug (the test command's quick run:
# ./scripts/list-lag.sh 16 1). `--dynamodb` runs the local server on a fresh table of
# moto's instead (started here, unless AWS_ENDPOINT_URL_DYNAMODB already names one), its
# lists kept by the stream's function: `./scripts/list-lag.sh 300 7 --dynamodb`.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'list-lag.sh: %s\n' "$*" >&2; exit 1; }
args=()
dynamodb=false
for arg in "$@"; do
  if [ "$arg" = --dynamodb ]; then dynamodb=true; else args+=("$arg"); fi
done
[ "${#args[@]}" -le 2 ] || die "usage: scripts/list-lag.sh [N] [TRIALS] [--dynamodb]"
profile=${LIST_LAG_PROFILE:-release}
cargo build --profile "$profile" --locked -p benchmarks --bin list_lag
dir=$profile; [ "$profile" = dev ] && dir=debug
if $dynamodb; then
  if [ -z "${AWS_ENDPOINT_URL_DYNAMODB:-}" ]; then
    # shellcheck source=scripts/lib.sh
    . scripts/lib.sh
    ensure_venv
    start_moto
  fi
  args+=(--dynamodb)
fi
"target/$dir/list_lag" "${args[@]}"
