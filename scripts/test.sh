#!/usr/bin/env bash
# Runs every test of the project, on a fresh machine or a used one:
#  1. installs moto's DynamoDB-compatible server and cfn-lint into .venv (once),
#  2. starts moto on a free loopback port and points the AWS SDK at it,
#  3. runs `cargo test` for the whole workspace and `cfn-lint template.yaml`,
#  4. stops moto, also when a test fails.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
venv="$root/.venv"
requirements="$root/scripts/requirements-test.txt"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'test.sh: %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null || die "cargo is missing: install Rust (https://rustup.rs) first"

# --- Python tools, in an ignored virtualenv; reinstalled only when requirements change.
python=${PYTHON:-python3}
command -v "$python" >/dev/null || {
  say "python3 missing: installing Debian's python3 and python3-venv"
  apt-get update -qq && apt-get install -y -qq python3 python3-venv >/dev/null
}
if [ ! -x "$venv/bin/python" ]; then
  say "creating $venv"
  if ! "$python" -m venv "$venv" 2>/dev/null; then
    say "python3 -m venv failed: installing Debian's python3-venv"
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    rm -rf "$venv"
    "$python" -m venv "$venv" || die "cannot create a virtualenv in $venv"
  fi
fi
stamp="$venv/.requirements"
if ! cmp -s "$requirements" "$stamp" 2>/dev/null; then
  say "installing $(grep -v '^#' "$requirements" | tr '\n' ' ')into .venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" \
    || die "pip could not install $requirements (moto[server], cfn-lint)"
  cp "$requirements" "$stamp"
fi
[ -x "$venv/bin/moto_server" ] || die "moto_server missing from .venv: delete .venv and retry"
[ -x "$venv/bin/cfn-lint" ] || die "cfn-lint missing from .venv: delete .venv and retry"

# --- moto's server on a free loopback port, stopped on any exit.
mkdir -p target
port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >target/moto.log 2>&1 &
moto_pid=$!
cleanup() { kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
for _ in $(seq 1 100); do
  if "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then
    break
  fi
  kill -0 "$moto_pid" 2>/dev/null || { cat target/moto.log >&2; die "moto_server exited at start-up"; }
  sleep 0.1
done
say "moto DynamoDB at http://127.0.0.1:$port (log: target/moto.log)"

# Hermetic AWS settings: dummy credentials, no profile files, no instance metadata.
export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL || true

say "cargo test --workspace"
log=target/test-output.log
cargo test --workspace --all-features --locked "$@" 2>&1 | tee "$log"

say "cfn-lint template.yaml"
"$venv/bin/cfn-lint" template.yaml

# One closing line for the whole run, summed over every cargo test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
