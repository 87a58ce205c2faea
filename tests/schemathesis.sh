#!/usr/bin/env bash
# Runs schemathesis, with all its checks, against the service on the
# embedded database, using the committed OpenAPI document and the
# development token.
#
#   tests/schemathesis.sh BINARY
#
# schemathesis is installed from PyPI into target/schemathesis (a Python
# virtual environment) on first use.
set -euo pipefail

binary=${1:?usage: tests/schemathesis.sh BINARY}
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/target/schemathesis"
version=4.32.5
seconds=${SCHEMATHESIS_SECONDS:-60}

if [[ ! -x "$venv/bin/schemathesis" ]] ||
    [[ "$("$venv/bin/schemathesis" --version)" != *"$version"* ]]; then
    echo "Installing schemathesis $version into target/schemathesis"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "schemathesis==$version"
fi

work="$root/target/schemathesis-run"
rm -rf "$work"
mkdir -p "$work"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

ARIES__SERVER__PORT=$port ARIES__SERVER__ACCESS_LOG=false \
    ARIES__DATABASE__DATA_DIR="$work/data" RUST_LOG=warn \
    "$binary" >"$work/service.log" 2>&1 &
service_pid=$!
trap 'kill "$service_pid" 2>/dev/null || true; wait "$service_pid" 2>/dev/null || true' EXIT

for _ in $(seq 1 100); do
    if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/readyz')" 2>/dev/null; then
        break
    fi
    sleep 0.1
done

echo "Running schemathesis for ${seconds} s against 127.0.0.1:$port"
cd "$work"
"$venv/bin/schemathesis" run "$root/openapi/openapi.json" \
    --url "http://127.0.0.1:$port" \
    --header 'Authorization: Bearer aries-dev-token' \
    --checks all \
    --max-time "$seconds" \
    --report junit --report-dir "$work/report"
