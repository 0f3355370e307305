#!/usr/bin/env bash
# Proves the README's deployment builds, as a new user runs them (the test command calls
# it; it also runs alone: ./scripts/deploy-build.sh):
#  1. installs SAM CLI and cargo-lambda (with zig, its cross linker) into .venv (once),
#     and the Rust target aarch64-unknown-linux-gnu with rustup;
#  2. `sam validate --lint` and `sam build`: every function's .aws-sam/build/<Function>/bootstrap;
#  3. the README's `cargo lambda build`, plain and as zips: target/lambda/<function>/;
#  4. checks that each bootstrap is an ELF executable of the expected machine, and prints
#     the size of each zip;
#  5. `cargo lambda deploy --dry` for each function (all but the upload);
#  6. the Docker-free invoke path: `cargo lambda watch` runs create-user against moto's
#     DynamoDB, and `cargo lambda invoke --data-file events/create-user.json` must answer 201.
# The deployed functions are arm64: when the Rust target aarch64-unknown-linux-gnu cannot
# be installed, the script fails, naming it (an x86_64 build would not prove the deploy).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'deploy-build.sh: %s\n' "$*" >&2; exit 1; }
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

functions=(create-user connect send-message channel-auth list-messages block-room list-rooms rotate-id
  project-changes)
logical_ids=(CreateUserFunction ConnectFunction SendMessageFunction ChannelAuthFunction
  ListMessagesFunction BlockRoomFunction ListRoomsFunction RotateIdFunction
  ProjectChangesFunction)

ensure_venv
export PATH="$venv/bin:$PATH"
command -v sam >/dev/null || die "sam is missing from .venv: delete .venv and retry"
command -v cargo-lambda >/dev/null || die "cargo-lambda is missing from .venv: delete .venv and retry"

if ! rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then
  say "adding the Rust target aarch64-unknown-linux-gnu"
  rustup target add aarch64-unknown-linux-gnu >&2 \
    || die "the Rust target aarch64-unknown-linux-gnu could not be installed (rustup target add aarch64-unknown-linux-gnu): the deploy build needs it"
fi
sam_args=()
arch_args=(--arm64)
elf_machine=aarch64

# The ELF header's e_machine of FILE (the `file` command is not on every machine).
elf_arch() {
  "$venv/bin/python" - "$1" <<'PY'
import struct, sys
with open(sys.argv[1], "rb") as f:
    head = f.read(20)
if head[:4] != b"\x7fELF":
    print("not-elf")
else:
    (machine,) = struct.unpack("<H", head[18:20])
    print({0x3E: "x86-64", 0xB7: "aarch64"}.get(machine, hex(machine)))
PY
}
check_bootstrap() {
  local path=$1
  [ -x "$path" ] || die "$path is missing or not executable"
  local found
  found=$(elf_arch "$path")
  [ "$found" = "$elf_machine" ] || die "$path is $found, expected $elf_machine"
  printf '  ok  %s (%s)\n' "$path" "$found" >&2
}

say "sam validate --lint"
sam validate --lint >&2

say "sam build ${sam_args[*]} (the README's command)"
rm -rf .aws-sam/build
sam build "${sam_args[@]}" >&2
for id in "${logical_ids[@]}"; do check_bootstrap ".aws-sam/build/$id/bootstrap"; done

packages=()
for f in "${functions[@]}"; do packages+=(-p "$f"); done
say "cargo lambda build --release ${arch_args[*]} ${packages[*]} (the README's commands)"
rm -rf target/lambda
cargo lambda build --release "${arch_args[@]}" "${packages[@]}" >&2
for f in "${functions[@]}"; do check_bootstrap "target/lambda/$f/bootstrap"; done
# Anything else there would be a binary the README's command builds but should not.
extra=$(ls target/lambda | grep -vxF -f <(printf '%s\n' "${functions[@]}") || true)
[ -z "$extra" ] || die "cargo lambda build also built: $extra"
cargo lambda build --release "${arch_args[@]}" "${packages[@]}" --output-format zip >&2
for f in "${functions[@]}"; do
  [ -s "target/lambda/$f/bootstrap.zip" ] || die "target/lambda/$f/bootstrap.zip is missing"
done

say "zipped packages ($elf_machine, as cargo lambda builds them)"
"$venv/bin/python" - "${functions[@]}" <<'PY'
import os, sys
print("| function | bootstrap | bootstrap.zip |")
print("| --- | --- | --- |")
for name in sys.argv[1:]:
    d = os.path.join("target/lambda", name)
    print(f"| {name} | {os.path.getsize(os.path.join(d, 'bootstrap')) / 1e6:.2f} MB "
          f"| {os.path.getsize(os.path.join(d, 'bootstrap.zip')) / 1e6:.2f} MB |")
PY

# --- The Docker-free invoke path of the README: cargo lambda watch + invoke, against moto.
start_moto
# `cargo lambda deploy --dry` does all but the upload: it finds and packages each
# function's zip, as the README's deploy command will.
for f in "${functions[@]}"; do
  plan=$(cargo lambda deploy --dry "$f" --iam-role arn:aws:iam::123456789012:role/dry-run 2>&1) \
    || { printf '%s\n' "$plan" >&2; die "cargo lambda deploy --dry $f failed"; }
  grep -qF "target/lambda/$f/bootstrap.zip" <<<"$plan" || { printf '%s\n' "$plan" >&2; die "cargo lambda deploy --dry $f packaged something else"; }
  printf '  ok  cargo lambda deploy --dry %s\n' "$f" >&2
done

table="deploy-build-$$"
create_plain_table "$table"
# `cargo lambda watch -p FUNCTION` on a free port (set in watch_port), the table's name
# set. Not in a subshell: its process joins pids, which the exit trap stops.
watch_function() {
  local function=$1 port log
  port=$(free_port)
  log="target/cargo-lambda-watch-$function.log"
  say "cargo lambda watch -p $function on port $port (log: $log)"
  # (The room-id key also keys the per-address create limit's hashes.)
  TABLE_NAME=$table ROOM_ID_KEY=ac75c63280457cb105f943e391fa046bc9030c7119cc7cda0d949a2017ef689a cargo lambda watch -p "$function" --invoke-address 127.0.0.1 \
    --invoke-port "$port" --ignore-changes >"$log" 2>&1 &
  local watch_pid=$!
  pids+=("$watch_pid")
  for _ in $(seq 1 600); do
    "$venv/bin/python" -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break
    kill -0 "$watch_pid" 2>/dev/null || { cat "$log" >&2; die "cargo lambda watch -p $function exited at start-up"; }
    sleep 0.1
  done
  watch_port=$port
}
watch_function create-user
invoke_port=$watch_port
# The first invoke waits for the function to compile and start.
answer=$(cargo lambda invoke create-user --invoke-address 127.0.0.1 --invoke-port "$invoke_port" \
  --data-file events/create-user.json --output-format json) \
  || { cat target/cargo-lambda-watch-create-user.log >&2; die "cargo lambda invoke create-user failed"; }
"$venv/bin/python" - "$answer" <<'PY' >&2 || die "cargo lambda invoke create-user did not answer 201 with the new user"
import json, re, sys
answer = json.loads(sys.argv[1])
assert answer["statusCode"] == 201, answer["statusCode"]
body = json.loads(answer["body"])
assert re.fullmatch(r"\d{3}-\d{3}(-\d{3})?", body["publicId"]), body["publicId"]
assert len(body["privateId"]) >= 22 and body["username"], "privateId or username missing"
print(f"  ok  cargo lambda invoke create-user: {answer['statusCode']}, publicId {body['publicId']}")
PY
# The stream's function, with the README's sample batch: projected, nothing failed.
watch_function project-changes
stream_port=$watch_port
answer=$(cargo lambda invoke project-changes --invoke-address 127.0.0.1 --invoke-port "$stream_port" \
  --data-file events/project-changes.json --output-format json) \
  || { cat target/cargo-lambda-watch-project-changes.log >&2; die "cargo lambda invoke project-changes failed"; }
"$venv/bin/python" - "$answer" <<'PY' >&2 || die "cargo lambda invoke project-changes reported failures"
import json, sys
answer = json.loads(sys.argv[1])
assert answer == {"batchItemFailures": []}, answer
print("  ok  cargo lambda invoke project-changes: no batch item failures")
PY
say "deploy builds: ok ($elf_machine; sam build and cargo lambda build made all ${#functions[@]} functions; cargo lambda invoke answered 201, and the stream's function projected its sample)"
