#!/usr/bin/env bash
# Counts the instructions each function binary executes at start-up, next to the floor,
# with valgrind's callgrind: a figure that, unlike a time, repeats exactly on any
# machine, busy or not. Each binary runs with warm-up off and a Runtime API address
# that refuses connections, so it does its whole init, fails to fetch its first event
# and exits; the short failure path is the same for every binary.
#
# Builds the release profile with symbols into target/prof (strip off, line tables on,
# everything else as in Cargo.toml), then prints a table and keeps each profile in
# target/prof/callgrind.<name> for `callgrind_annotate --inclusive=yes`.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || {
  echo "init-instructions.sh: valgrind is missing (Debian: apt-get install valgrind)" >&2
  exit 1
}

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'init-instructions.sh: %s\n' "$*" >&2; exit 1; }
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

functions=("${route_functions[@]}")
packages=()
for f in "${functions[@]}"; do packages+=(-p "$f"); done
# The functions apart from the benchmarks, whose test kit would turn on `embedded`.
for build in "${packages[*]}" "-p benchmarks"; do
  # shellcheck disable=SC2086
  CARGO_PROFILE_RELEASE_STRIP=false CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
    cargo build --release --locked --target-dir target/prof --bins $build
done

echo "| binary | instructions from exec to exit | / floor |"
echo "| --- | --- | --- |"
floor=
for name in floor "${functions[@]}"; do
  out="target/prof/callgrind.$name"
  env -i PATH=/usr/bin:/bin \
    AWS_LAMBDA_RUNTIME_API=127.0.0.1:1 AWS_LAMBDA_FUNCTION_NAME="$name" \
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128 AWS_LAMBDA_FUNCTION_VERSION='$LATEST' \
    AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench \
    TABLE_NAME=bench-table ROOM_ID_KEY=cb1d2fdcc86ce72aae3a8d6c513a08b3a12069dba7e0d5b9987b0cdf456aa621 \
    PUSHER_APP_ID=1 PUSHER_KEY=bench-key PUSHER_SECRET=bench-secret PUSHER_CLUSTER=eu \
    WARM_UP_CONNECTIONS=false RUST_LOG=info \
    valgrind --tool=callgrind --callgrind-out-file="$out" "target/prof/release/$name" \
    >/dev/null 2>"$out.log" || true
  count=$(sed -n 's/^summary: //p' "$out")
  [ -n "$count" ] || { cat "$out.log" >&2; echo "no profile for $name" >&2; exit 1; }
  floor=${floor:-$count}
  printf '| %s | %s | %s |\n' "$name" "$(echo "$count" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta')" \
    "$(awk -v c="$count" -v f="$floor" 'BEGIN { printf "%.2fx", c / f }')"
done
