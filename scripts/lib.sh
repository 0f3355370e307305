# Shared by scripts/test.sh and scripts/bench.sh: the Python tools in .venv, the
# Node.js packages of e2e/, and moto's DynamoDB-compatible server on a free port.
# Source it from the repository root after setting `say` and `die`.

root=$(pwd)
venv="$root/.venv"
requirements="$root/scripts/requirements-test.txt"

ensure_venv() {
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
      || die "pip could not install $requirements (moto[server], cfn-lint, schemathesis)"
    cp "$requirements" "$stamp"
  fi
  "$venv/bin/python" -c 'import moto.server' 2>/dev/null || die "moto[server] missing from .venv: delete .venv and retry"
  [ -x "$venv/bin/cfn-lint" ] || die "cfn-lint missing from .venv: delete .venv and retry"
  "$venv/bin/python" -c "import cryptography" 2>/dev/null || die "cryptography missing from .venv: delete .venv and retry"
}

ensure_node_packages() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    say "node or npm missing: installing Debian's nodejs and npm"
    apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
  fi
  command -v node >/dev/null || die "node is missing and could not be installed"
  local dir
  for dir in e2e clients/js; do
    if ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.installed-lock" 2>/dev/null; then
      say "installing $dir/ packages (npm ci)"
      (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed in $dir/"
      cp "$dir/package-lock.json" "$dir/node_modules/.installed-lock"
    fi
  done
}

free_port() {
  "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The route functions, one crate each under functions/ (bench.sh measures them, and the
# test command checks its smoke run printed each).
route_functions=(create-user connect send-message channel-auth list-messages list-rooms block-room rotate-id)

# Everything started is stopped on any exit.
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

# moto's server on a free loopback port; sets `port` and AWS_ENDPOINT_URL_DYNAMODB.
start_moto() {
  mkdir -p target
  port=$(free_port)
  "$venv/bin/python" scripts/moto_dynamodb.py 127.0.0.1 "$port" >target/moto.log 2>&1 &
  moto_pid=$!
  pids+=("$moto_pid")
  for _ in $(seq 1 100); do
    if "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then
      break
    fi
    kill -0 "$moto_pid" 2>/dev/null || { cat target/moto.log >&2; die "moto's server exited at start-up"; }
    sleep 0.1
  done
  say "moto DynamoDB at http://127.0.0.1:$port (log: target/moto.log)"

  # Hermetic AWS settings: dummy credentials, no profile files, no instance metadata.
  export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$port"
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
  export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true
  unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL || true
  # moto serves one request at a time (see moto_dynamodb.py) and slows down under the
  # concurrency tests: give it room. The fault tests keep the production timeouts.
  export DYNAMODB_ATTEMPT_TIMEOUT_MS=20000 DYNAMODB_OPERATION_TIMEOUT_MS=60000
}

# A table named NAME on moto (start_moto first), with the project's keys and nothing
# else: for a command run against a table made elsewhere than by the project.
create_plain_table() {
  "$venv/bin/python" - "$AWS_ENDPOINT_URL_DYNAMODB" "$1" <<'PY'
import os, sys, boto3
endpoint, table = sys.argv[1:]
client = boto3.client("dynamodb", endpoint_url=endpoint, region_name=os.environ["AWS_REGION"])
client.create_table(
    TableName=table, BillingMode="PAY_PER_REQUEST",
    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                          {"AttributeName": "sk", "AttributeType": "S"}],
    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
               {"AttributeName": "sk", "KeyType": "RANGE"}])
PY
}

# A table of each binary in DIR (the names after it): its size, and the size of the zip a
# Lambda deployment uploads (the binary as `bootstrap`, deflate level 9).
package_sizes() {
  local dir=$1
  shift
  echo "| function | binary | zipped (bootstrap, deflate 9) |"
  echo "| --- | --- | --- |"
  "$venv/bin/python" - "$dir" "$@" <<'PY'
import io, os, sys, zipfile
directory, names = sys.argv[1], sys.argv[2:]
for name in names:
    path = os.path.join(directory, name)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.write(path, "bootstrap")
    print(f"| {name} | {os.path.getsize(path) / 1e6:.2f} MB | {len(buffer.getvalue()) / 1e6:.2f} MB |")
PY
}
