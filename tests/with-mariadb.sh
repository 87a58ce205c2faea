#!/usr/bin/env bash
# Runs a command with a throwaway MariaDB server, then stops the server.
#
#   tests/with-mariadb.sh COMMAND [ARG...]
#
# The server keeps its data under target/mariadb-test, listens on a free
# loopback port and runs with a non-UTC time zone (+05:30), so that the
# tests show that timestamps do not depend on it. COMMAND runs with
# ARIES_TEST_MYSQL_URL (root, no password) and ARIES_TEST_REQUIRE_MYSQL=1,
# which makes the MariaDB tests fail instead of being skipped.
set -euo pipefail

MARIADBD=$(command -v mariadbd || echo /usr/sbin/mariadbd)
if [[ ! -x "$MARIADBD" ]]; then
    echo "error: mariadbd not found; install it with: apt-get install mariadb-server" >&2
    exit 1
fi

root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/target/mariadb-test"
rm -rf "$dir"
mkdir -p "$dir"

# The first free port from 33060 up: a connect with bash's /dev/tcp fails
# on a port without a listener.
port=33060
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    port=$((port + 1))
done

echo "Starting MariaDB on 127.0.0.1:$port (data in target/mariadb-test)"
mariadb-install-db --no-defaults --user=root --datadir="$dir/data" \
    --auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1 || {
    echo "error: mariadb-install-db failed; its output:" >&2
    cat "$dir/install.log" >&2
    exit 1
}

"$MARIADBD" --no-defaults --user=root --datadir="$dir/data" \
    --socket="$dir/mariadb.sock" --port="$port" --bind-address=127.0.0.1 \
    --skip-name-resolve --pid-file="$dir/mariadb.pid" --log-error="$dir/error.log" \
    --default-time-zone=+05:30 --max-connections=1000 &
server_pid=$!

stop_server() {
    if kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid"
        wait "$server_pid" 2>/dev/null || true
        echo "Stopped MariaDB"
    fi
}
trap stop_server EXIT

ping_server() {
    mariadb-admin --no-defaults --socket="$dir/mariadb.sock" -uroot ping >/dev/null 2>&1
}
for _ in $(seq 1 60); do
    ping_server && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "error: MariaDB exited during start; its log:" >&2
        cat "$dir/error.log" >&2
        exit 1
    fi
    sleep 0.5
done
if ! ping_server; then
    echo "error: MariaDB did not answer within 30 s; its log:" >&2
    cat "$dir/error.log" >&2
    exit 1
fi

export ARIES_TEST_MYSQL_URL="mysql://root@127.0.0.1:$port"
export ARIES_TEST_REQUIRE_MYSQL=1
"$@"
