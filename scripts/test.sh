#!/usr/bin/env bash
# Runs every test of the project, on a fresh machine or a used one:
#  1. installs moto's DynamoDB-compatible server, cfn-lint and cryptography (for the
#     second implementation of e2e2 in clients/js/test/reference/) into .venv (once),
#  2. starts moto on a free loopback port and points the AWS SDK at it,
#  3. installs the Node.js packages of e2e/ (pusher-js, playwright-core) and of
#     clients/js/ (pusher-js, typescript) into their node_modules, and Debian's
#     chromium (once),
#  4. runs clippy on every target (benchmarks included), `cargo test` for the whole
#     workspace, quick runs of
#     scripts/connect-timing.sh, scripts/list-lag.sh and scripts/bench.sh, and
#     `cfn-lint template.yaml`,
#     and scripts/deploy-build.sh (sam build, cargo lambda build and invoke),
#  5. starts the local server and runs the end-to-end tests of e2e/, the client
#     library's (clients/js: tsc --noEmit, then node --test) and schemathesis (the API
#     contract in openapi.yaml) against it,
#  6. stops everything it started, also when a test fails.
# `./scripts/test.sh --rust` does steps 1, 2 and the `cargo test` of 4 only (the Rust
# tests, with moto); arguments after it (or after none) go to `cargo test`, as in
# `./scripts/test.sh --rust --test storage -- flood`.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'test.sh: %s\n' "$*" >&2; exit 1; }
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

command -v cargo >/dev/null || die "cargo is missing: install Rust (https://rustup.rs) first"

rust_only=false
if [ "${1:-}" = "--rust" ]; then
  rust_only=true
  shift
fi

ensure_venv
$rust_only || ensure_node_packages

# --- Headless Chromium for the chat page test (Debian's package; Playwright drives it).
chromium=${CHROMIUM_PATH:-/usr/bin/chromium}
if ! $rust_only && { [ ! -x "$chromium" ] || ! dpkg -s fonts-noto-color-emoji >/dev/null 2>&1; }; then
  say "installing Debian's chromium and fonts-noto-color-emoji"
  command -v apt-get >/dev/null || die "chromium is missing at $chromium and apt-get is not available: install Chromium and set CHROMIUM_PATH"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null \
    || die "apt-get could not install chromium"
fi
$rust_only || [ -x "$chromium" ] || die "chromium is missing at $chromium"
export CHROMIUM_PATH="$chromium"

start_moto


# --- The architecture's build boundary: the domain crate depends on nothing that talks
# to AWS, HTTP, Lambda, Pusher or an async runtime (ARCHITECTURE.md).
say "domain crate boundary"
forbidden='^(aws-|lambda|reqwest|hyper|tokio|axum|rustls|redb|tracing|secret-rooms$)'
domain_deps=$(cargo tree --locked -p secret-rooms-domain -e normal --prefix none --format '{p}' | awk '{print $1}' | sort -u)
if grep -E "$forbidden" <<<"$domain_deps"; then
  die "the domain crate (domain/) depends on the crates above; adapters belong in shared/"
fi
# Nor does any of its modules import, through others, one that imports it.
"$venv/bin/python" scripts/module-cycles.py domain/src || die "an import cycle in domain/ (above)"

if ! $rust_only; then
  # Every target type-checks, the benchmarks too (cargo test builds none of them; a
  # bench that no longer compiled went unnoticed once), and clippy finds nothing.
  say "cargo clippy --workspace --all-targets -- -D warnings"
  cargo clippy --version >/dev/null 2>&1 || die "clippy is missing: rustup component add clippy"
  cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
fi
say "cargo test --workspace"
log=target/test-output.log
cargo test --workspace --all-features --locked "$@" 2>&1 | tee "$log"
if $rust_only; then
  awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
       END { printf "rust tests: %d passed, %d failed\n", p, f }' "$log"
  exit 0
fi

# --- The connect timing measurement of BENCHMARKS.md, as a quick debug run: the script
# works and prints its figures (they are measured in release, on a quiet machine).
say "scripts/connect-timing.sh 20 (debug build; a smoke run)"
timing=$(CONNECT_TIMING_PROFILE=dev ./scripts/connect-timing.sh 20)
grep -q "^| used - unused | " <<<"$timing" || { printf '%s\n' "$timing" >&2; die "connect-timing.sh printed no difference"; }

# --- The room-list lag measurement of BENCHMARKS.md (holder independence of the
# projection's work, in time), as a quick debug run: the script works and prints.
say "scripts/list-lag.sh 16 1 (debug build; a smoke run)"
lag=$(LIST_LAG_PROFILE=dev ./scripts/list-lag.sh 16 1)
grep -q "^| held - retired | " <<<"$lag" || { printf '%s\n' "$lag" >&2; die "list-lag.sh printed no difference"; }
say "scripts/list-lag.sh 8 1 --dynamodb (debug build, on this run's moto; a smoke run)"
lag=$(LIST_LAG_PROFILE=dev ./scripts/list-lag.sh 8 1 --dynamodb)
grep -q "^| held - retired | " <<<"$lag" || { printf '%s\n' "$lag" >&2; die "list-lag.sh --dynamodb printed no difference"; }

# --- BENCHMARKS.md's main command, as a quick debug run: every function starts under the
# harness's Runtime API and answers, and the criterion bench runs once per route.
say "scripts/bench.sh (debug build, 1 cold start per function; a smoke run)"
bench=$(BENCH_PROFILE=dev BENCH_RUNS=1 BENCH_WARM=2 BENCH_INIT_RUNS=1 BENCH_E2E=5 ./scripts/bench.sh)
for row in "${route_functions[@]}" floor; do
  grep -q "^| $row | " <<<"$bench" || { printf '%s\n' "$bench" >&2; die "bench.sh printed no row for $row"; }
done
for path in send-message connect; do
  grep -q "^| $path → " <<<"$bench" || { printf '%s\n' "$bench" >&2; die "bench.sh printed no end-to-end row for $path"; }
done
grep -q "^| handler/" <<<"$bench" || { printf '%s\n' "$bench" >&2; die "bench.sh ran no handler bench"; }

say "cfn-lint template.yaml"
"$venv/bin/cfn-lint" template.yaml

# --- The README's deployment builds: sam build and cargo lambda build make every
# function for arm64, and cargo lambda invoke runs one event against moto.
say "scripts/deploy-build.sh"
./scripts/deploy-build.sh

# --- The local server, as `cargo run` starts it but in memory on a free port, and the
# end-to-end tests with real client libraries against it.
cargo build --locked -p local-server

# The README's `cargo run -- reproject --dynamodb TABLE`, on a table of moto's (the
# storage tests check what it does; this, that the command runs as written).
say "cargo run -- reproject --dynamodb (a moto table)"
reproject_table="reproject-$$"
create_plain_table "$reproject_table"
reprojected=$(cargo run --locked -q -p local-server -- reproject --dynamodb "$reproject_table")
grep -qF "$reproject_table: room lists rebuilt from 0 items" <<<"$reprojected" \
  || { printf '%s\n' "$reprojected" >&2; die "cargo run -- reproject did not report its pass"; }
server_port=$(free_port)
# The tests below create far more users from 127.0.0.1 than the default 30 an hour, and
# one writes a room of 3000 messages (the default allows 30 per 15 s); schemathesis
# connects its identities far more than 30 times an hour.
CREATE_RATE_LIMIT=1000000 MESSAGE_RATE_LIMIT=1000000 CONNECT_RATE_LIMIT=1000000 target/debug/secret-rooms-local --memory --addr "127.0.0.1:$server_port" >target/local-server.log 2>&1 &
server_pid=$!
pids+=("$server_pid")
# The banner is printed once the server listens; its Chat page line is what the README shows.
for _ in $(seq 1 100); do
  grep -qF "Chat page http://127.0.0.1:$server_port/" target/local-server.log && break
  kill -0 "$server_pid" 2>/dev/null || { cat target/local-server.log >&2; die "the local server exited at start-up"; }
  sleep 0.1
done
grep -qF "Chat page http://127.0.0.1:$server_port/" target/local-server.log \
  || { cat target/local-server.log >&2; die "the local server did not print its Chat page line"; }
# The README's quick start, as written but for the port: its curl commands read back
# the message they sent.
say "the README's quick start (curl) against http://127.0.0.1:$server_port"
if ! command -v jq >/dev/null; then
  say "jq missing: installing Debian's jq"
  { apt-get update -qq && apt-get install -y -qq jq >/dev/null; } || die "jq is missing and apt-get could not install it"
fi
quick=$(awk '/^## Quick start with curl/ { f = 1 } f && /^```sh/ { g = 1; next } g && /^```/ { exit } g { print }' README.md \
  | sed "s|^api=.*|api=http://127.0.0.1:$server_port|")
[ -n "$quick" ] || die "README.md has no quick start block"
quick_out=$(bash -euo pipefail -c "$quick")
grep -q '"message":"hello"' <<<"$quick_out" || { printf '%s\n' "$quick_out" >&2; die "the README's quick start did not read back its message"; }

say "node --test e2e/ against http://127.0.0.1:$server_port (log: target/local-server.log)"
e2e_log=target/e2e-output.log
(cd e2e && SECRET_ROOMS_URL="http://127.0.0.1:$server_port" PUSHER_KEY=local-key \
  SCREENSHOT_DIR="$root/target/screenshots" node --test --test-concurrency=1 --test-reporter=tap) 2>&1 | tee "$e2e_log"

# BENCHMARKS.md's e2e2 figures come from e2e/bench-e2e2.mjs: a short run proves it works.
say "e2e/bench-e2e2.mjs (N=20: it runs; BENCHMARKS.md has the 1,000-message figures)"
bench_out=$(cd e2e && SECRET_ROOMS_URL="http://127.0.0.1:$server_port" N=20 node bench-e2e2.mjs) || die "e2e/bench-e2e2.mjs failed"
grep -q "^e2e2 in Chromium, 20 messages" <<<"$bench_out" || die "e2e/bench-e2e2.mjs printed no figures: $bench_out"
echo "$bench_out"

# --- The client library (clients/js): its types, then its tests against the same server.
say "clients/js: tsc --noEmit, then node --test against http://127.0.0.1:$server_port"
client_log=target/client-output.log
(cd clients/js && node_modules/.bin/tsc --noEmit -p . \
  && SECRET_ROOMS_URL="http://127.0.0.1:$server_port" PUSHER_KEY=local-key E2E2_REFERENCE_PYTHON="$venv/bin/python" \
     node --test --test-concurrency=1 --test-reporter=tap test/*.test.mjs) 2>&1 | tee "$client_log"

# --- The API contract: schemathesis checks the local server against openapi.yaml
# (every check; the settings are in schemathesis.toml).
say "schemathesis openapi.yaml against http://127.0.0.1:$server_port"
contract_log=target/schemathesis-output.log
# A fixed seed keeps CI repeatable; SCHEMATHESIS_SEED=random (or another number) and a
# larger SCHEMATHESIS_EXAMPLES explore further.
seed=${SCHEMATHESIS_SEED:-20261124}
seed_args=(--seed "$seed")
[ "$seed" = random ] && seed_args=()
"$venv/bin/schemathesis" run openapi.yaml --url "http://127.0.0.1:$server_port" "${seed_args[@]}" \
  --checks all --max-examples "${SCHEMATHESIS_EXAMPLES:-100}" --no-color 2>&1 | tee "$contract_log"

# One closing line for the whole run: every cargo test binary and the e2e tests
# (schemathesis printed its own count of generated cases above).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     /^# pass / { p += $3 } /^# fail / { f += $3 }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log" "$e2e_log" "$client_log"
