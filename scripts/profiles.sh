#!/usr/bin/env bash
# Compares release profiles by the figures that matter on Lambda: each variant differs
# from Cargo.toml's [profile.release] in one setting, is built into a target directory
# of its own (target/profiles/<variant>), and gets the cold-start harness (init against
# the floor built the same way, first and warm invocations) and its sizes.
# PROFILE_RUNS (10) cold starts and PROFILE_WARM (20) warm invocations per function.
# Takes a while: every variant builds the dependency tree from scratch.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'profiles.sh: %s\n' "$*" >&2; exit 1; }
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

functions=(create-user connect send-message channel-auth)
packages=()
for f in "${functions[@]}"; do packages+=(-p "$f"); done

# name and the one setting it changes (a CARGO_PROFILE_RELEASE_* variable).
variants=(
  "chosen:"
  "lto-off:CARGO_PROFILE_RELEASE_LTO=false"
  "codegen-units-16:CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16"
  "panic-unwind:CARGO_PROFILE_RELEASE_PANIC=unwind"
  "no-strip:CARGO_PROFILE_RELEASE_STRIP=false"
  "opt-level-3:CARGO_PROFILE_RELEASE_OPT_LEVEL=3"
)
if [ -n "${PROFILE_VARIANTS:-}" ]; then
  read -r -a wanted <<<"$PROFILE_VARIANTS"
  selected=()
  for v in "${variants[@]}"; do
    for w in "${wanted[@]}"; do [ "${v%%:*}" = "$w" ] && selected+=("$v"); done
  done
  variants=("${selected[@]}")
fi

ensure_venv
start_moto

for variant in "${variants[@]}"; do
  name=${variant%%:*}
  setting=${variant#*:}
  dir="target/profiles/$name"
  say "variant $name (${setting:-as in Cargo.toml})"
  # The functions apart from the benchmarks, whose test kit would turn on `embedded`.
  env ${setting:+"$setting"} cargo build --release --locked --target-dir "$dir" --bins "${packages[@]}" >&2
  env ${setting:+"$setting"} cargo build --release --locked --target-dir "$dir" --bins -p benchmarks >&2
  echo "## $name (${setting:-as in Cargo.toml})"
  echo
  "$dir/release/coldstart" "$AWS_ENDPOINT_URL_DYNAMODB" "$dir/release" \
    "${PROFILE_RUNS:-10}" "${PROFILE_WARM:-20}" "${PROFILE_INIT_RUNS:-100}" | grep -E '^\| (function|---|floor|[a-z-]+ \| off)'
  echo
  package_sizes "$dir/release" floor "${functions[@]}"
  echo
done
