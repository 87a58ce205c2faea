#!/usr/bin/env bash
# Instruction profile of one request path, run by `make profile`. The
# service runs under valgrind's callgrind with one worker while wrk polls
# one image. callgrind_annotate then lists the functions by instructions
# executed. callgrind counts instructions, not time, so the figures repeat
# whatever else the machine is doing.
#
# Usage: profile.sh hit      cache hits, on the embedded SQLite database
#        profile.sh nocache  cache disabled, every request reads MariaDB at
#                            ARIES_TEST_MYSQL_URL (run it under
#                            tests/with-mariadb.sh)
#
# valgrind reports a CPU without the SHA extensions, so SHA-256 runs its
# portable code here and counts for more than it costs on a CPU that has
# them.
#
# Environment: PROFILE_DURATION_S (default 15) seconds of load,
# PROFILE_CONNECTIONS (default 8) wrk connections.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

scenario=${1:-hit}
duration_s=${PROFILE_DURATION_S:-15}
connections=${PROFILE_CONNECTIONS:-8}
work=$root/target/profile/$scenario
binary=target/profiling/aries-image
output=$work/callgrind.out

case $scenario in
hit)
    settings=(ARIES__DATABASE__DATA_DIR="$work/data")
    token=aries-dev-token
    ;;
nocache)
    [[ -n ${ARIES_TEST_MYSQL_URL:-} ]] || {
        echo "error: ARIES_TEST_MYSQL_URL is not set; run: tests/with-mariadb.sh $0 nocache" >&2
        exit 1
    }
    token=aries-profile-token
    settings=(ARIES__DATABASE__URL="$ARIES_TEST_MYSQL_URL/aries_profile"
        ARIES__CACHE__TTL_S=0
        ARIES__AUTH__TOKEN_SHA256="$(printf '%s\n' "$token" | "$binary" hash-token)")
    db_port=${ARIES_TEST_MYSQL_URL##*:}
    sql() { mariadb --no-defaults --protocol=tcp -h 127.0.0.1 -P "$db_port" -uroot "$@"; }
    sql -e "DROP DATABASE IF EXISTS aries_profile; CREATE DATABASE aries_profile"
    ;;
*)
    echo "error: unknown scenario $scenario; use hit or nocache" >&2
    exit 1
    ;;
esac

for tool in valgrind callgrind_annotate wrk curl; do
    command -v "$tool" >/dev/null || {
        echo "error: $tool not found; run make profile, which installs it" >&2
        exit 1
    }
done

rm -rf "$work"
mkdir -p "$work"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port

env -i PATH="$PATH" HOME="$HOME" RUST_LOG=warn \
    ARIES__SERVER__HOST=127.0.0.1 ARIES__SERVER__PORT="$port" \
    ARIES__SERVER__WORKERS=1 ARIES__SERVER__ACCESS_LOG=false \
    ARIES__CHANGES__ENABLED=false "${settings[@]}" \
    valgrind --tool=callgrind --callgrind-out-file="$output" \
    "$binary" serve >"$work/service.log" 2>&1 &
service=$!
trap 'kill "$service" 2>/dev/null || true' EXIT

for _ in $(seq 600); do
    curl -sf "$base/readyz" >/dev/null && break
    kill -0 "$service" 2>/dev/null || {
        cat "$work/service.log" >&2
        exit 1
    }
    sleep 0.1
done

if [[ $scenario == nocache ]]; then
    sql aries_profile -e "SET @rows = 1000; SOURCE $root/tests/bench/load-images.sql;"
fi
header="Authorization: Bearer $token"
curl -sf -H "$header" "$base/aries/api/v1/image/1" >/dev/null
wrk -t1 -c"$connections" -d"${duration_s}s" -H "$header" \
    "$base/aries/api/v1/image/1" | tee "$work/wrk.txt"
requests=$(awk '/requests in/ { print $1 }' "$work/wrk.txt")

kill -TERM "$service"
wait "$service" || true
trap - EXIT

callgrind_annotate --inclusive=no "$output" >"$work/self.txt"
callgrind_annotate --inclusive=yes "$output" >"$work/inclusive.txt"
callgrind_annotate --tree=caller "$output" >"$work/callers.txt"
total=$(awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }' "$work/self.txt")
sed -n 1,45p "$work/self.txt"
echo
echo "requests: $requests, instructions: $total," \
    "per request: $((total / requests)) (startup included)"
echo "Inclusive counts and callers: $work/inclusive.txt, $work/callers.txt"
