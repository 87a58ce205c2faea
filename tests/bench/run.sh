#!/usr/bin/env bash
# Benchmark of the aries image service, run by `make bench` after the
# release build. In one run it starts a throwaway MariaDB with 100,000
# images, several instances of the service, nginx and sysbench, measures
# every scenario with wrk, and writes docs/benchmarks.md and
# docs/benchmark-sweep.png. Raw outputs and logs stay in target/bench.
#
# Every server listens on 127.0.0.1 only, on a free port, and is stopped
# when the script exits, also on failure or Ctrl-C.
#
# Environment: BENCH_ROUNDS (default 5) rounds of the scenarios (a) to (h),
# reported as the median round by requests/s; BENCH_DURATION_S (default 8)
# seconds per measured run; BENCH_CONNECTIONS (default 64) wrk connections;
# BENCH_SOAK_S (default 300) seconds of the soak run; BENCH_STALENESS_UPDATES
# (default 20) changes timed by the staleness run.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

rounds=${BENCH_ROUNDS:-5}
duration_s=${BENCH_DURATION_S:-8}
connections=${BENCH_CONNECTIONS:-64}
soak_s=${BENCH_SOAK_S:-300}
soak_warmup_s=30
staleness_updates=${BENCH_STALENESS_UPDATES:-20}
warmup_s=2
image_rows=100000
zipf_ids=10000
zipf_exponent=1
sweep_ids=(1 10 100 1000 10000 100000)
sweep_cache_bytes=2097152
rss_cache_bytes=268435456
stampede_requests=256
# Seconds for which the stampede test delays the first query.
stampede_lock_s=1.5
sysbench_rows=10000
sysbench_threads=64
hot_id=1
missing_id=999999999
# An id that no scenario before the stampede test requests.
cold_id=50000
# Long enough that no entry loaded by a warm-up expires during the rounds.
hit_ttl_s=3600
token=aries-bench-token

work=$root/target/bench
binary=target/release/aries-image
bench_dir=tests/bench
report=docs/benchmarks.md
plot=docs/benchmark-sweep.png
image_path=/aries/api/v1/image

results=$work/results.tsv
commands=$work/commands.txt

fail() {
    echo "error: $*" >&2
    exit 1
}

step() {
    echo "==> $*"
}

# ---------------------------------------------------------------------------
# Processes started here, stopped in reverse order on exit.

started_names=()
declare -A started_pid=()

remember_process() {
    started_names+=("$1")
    started_pid[$1]=$2
}

stop_process() {
    local name=$1
    local pid=${started_pid[$name]:-}
    if [[ -z $pid ]]; then
        return 0
    fi
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    unset 'started_pid[$name]'
}

cleanup() {
    local status=$?
    local i
    for ((i = ${#started_names[@]} - 1; i >= 0; i--)); do
        local name=${started_names[i]}
        if [[ -n ${started_pid[$name]:-} ]]; then
            stop_process "$name"
            echo "Stopped $name"
        fi
    done
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# Tools and ports

find_tool() {
    local tool=$1
    if command -v "$tool" >/dev/null 2>&1; then
        command -v "$tool"
    elif [[ -x /usr/sbin/$tool ]]; then
        echo "/usr/sbin/$tool"
    else
        fail "$tool not found; install the benchmark dependencies with: make bench-deps"
    fi
}

for tool in wrk curl sysbench gnuplot mariadb mariadb-install-db mariadb-admin ss awk; do
    find_tool "$tool" >/dev/null
done
nginx=$(find_tool nginx)
mariadbd=$(find_tool mariadbd)
if [[ ! -x $binary ]]; then
    fail "$binary not found; build it with: cargo build --release --locked (make bench does)"
fi

next_port=41000

# Sets REPLY to a loopback port that no socket uses, and never returns the
# same port twice in one run.
pick_port() {
    local port=$next_port
    while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null ||
        [[ -n $(ss -Htan "( sport = :$port )") ]]; do
        port=$((port + 1))
    done
    next_port=$((port + 1))
    REPLY=$port
}

# Fails unless every listening socket of process PID is on 127.0.0.1.
check_loopback() {
    local name=$1 pid=$2
    local addresses
    addresses=$(ss -Hltnp | awk -v owner="pid=$pid," 'index($0, owner) { print $4 }')
    if [[ -z $addresses ]]; then
        fail "$name (pid $pid) has no listening socket"
    fi
    local address
    for address in $addresses; do
        if [[ $address != 127.0.0.1:* ]]; then
            fail "$name (pid $pid) listens on $address, not on 127.0.0.1"
        fi
    done
    loopback_checked+=("$name: $(echo $addresses)")
}
loopback_checked=()

# Appends a command line to the list printed in the report, with each
# argument quoted so that the line can be pasted into a shell.
record_command() {
    local argument line=""
    for argument in "$@"; do
        if [[ $argument =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
            line+="$argument "
        else
            line+="'${argument//\'/\'\\\'\'}' "
        fi
    done
    echo "${line% }" >>"$commands"
}

# Prints the share of CPU time, in percent, that the whole machine was busy
# over the next 2 s.
cpu_busy_percent() {
    local before after
    before=$(head -n 1 /proc/stat)
    sleep 2
    after=$(head -n 1 /proc/stat)
    awk -v before="$before" -v after="$after" 'BEGIN {
        split(before, b)
        split(after, a)
        for (i = 2; i <= 9; i++) total += a[i] - b[i]
        idle = (a[5] - b[5]) + (a[6] - b[6])
        printf "%.0f\n", 100 * (total - idle) / total
    }'
}

# ---------------------------------------------------------------------------
# MariaDB

db_socket=$work/mariadb/mariadb.sock

sql() {
    mariadb --no-defaults --socket="$db_socket" -uroot --default-character-set=utf8mb4 "$@"
}

start_mariadb() {
    local dir=$work/mariadb
    mkdir -p "$dir"
    pick_port
    db_port=$REPLY
    mariadb-install-db --no-defaults --user=root --datadir="$dir/data" \
        --auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1 || {
        cat "$dir/install.log" >&2
        fail "mariadb-install-db failed; its output is above"
    }
    local -a server=("$mariadbd" --no-defaults --user=root --datadir="$dir/data"
        --socket="$db_socket" --port="$db_port" --bind-address=127.0.0.1
        --skip-name-resolve --pid-file="$dir/mariadb.pid" --log-error="$dir/error.log"
        --max-connections=500 --innodb-buffer-pool-size=512M
        --innodb-flush-log-at-trx-commit=2)
    record_command "${server[@]}"
    "${server[@]}" >"$dir/stderr.log" 2>&1 &
    remember_process MariaDB $!

    local attempt
    for attempt in $(seq 1 120); do
        if mariadb-admin --no-defaults --socket="$db_socket" -uroot ping >/dev/null 2>&1; then
            check_loopback MariaDB "${started_pid[MariaDB]}"
            return 0
        fi
        if ! kill -0 "${started_pid[MariaDB]}" 2>/dev/null; then
            cat "$dir/error.log" >&2
            fail "MariaDB exited during start; its log is above"
        fi
        sleep 0.5
    done
    cat "$dir/error.log" >&2
    fail "MariaDB did not answer within 60 s; its log is above"
}

# ---------------------------------------------------------------------------
# Service instances

declare -A service_port=()

# Starts an instance named NAME with the common settings, then the given
# ARIES__SECTION__KEY=VALUE settings, which override them. The environment
# is cleared first (env -i), so that DATABASE_URL, RUST_LOG or ARIES__
# variables of the caller do not change the settings.
start_service() {
    local name=$1
    shift
    pick_port
    local port=$REPLY
    local -a keys=(RUST_LOG ARIES__SERVER__HOST ARIES__SERVER__PORT ARIES__SERVER__ACCESS_LOG
        ARIES__DATABASE__URL ARIES__DATABASE__RUN_MIGRATIONS ARIES__AUTH__TOKEN_SHA256
        ARIES__CACHE__TTL_S)

    local -A values=(
        [RUST_LOG]=info
        [ARIES__SERVER__HOST]=127.0.0.1
        [ARIES__SERVER__PORT]=$port
        [ARIES__SERVER__ACCESS_LOG]=false
        [ARIES__DATABASE__URL]=$database_url
        [ARIES__DATABASE__RUN_MIGRATIONS]=false
        [ARIES__AUTH__TOKEN_SHA256]=$token_digest
        [ARIES__CACHE__TTL_S]=$hit_ttl_s
    )

    local assignment key
    for assignment in "$@"; do
        key=${assignment%%=*}
        if [[ -z ${values[$key]+set} ]]; then
            keys+=("$key")
        fi
        values[$key]=${assignment#*=}
    done

    local -a environment=()
    for key in "${keys[@]}"; do
        environment+=("$key=${values[$key]}")
    done

    record_command env -i "${environment[@]}" "$binary" serve
    env -i "${environment[@]}" "$binary" serve >"$work/logs/service-$name.log" 2>&1 &
    remember_process "service-$name" $!
    service_port[$name]=$port
}

stop_service() {
    stop_process "service-$1"
}

service_url() {
    echo "http://127.0.0.1:${service_port[$1]}"
}

# Waits until GET of image ID on instance NAME returns STATUS.
wait_for_status() {
    local name=$1 id=$2 expected=$3
    local pid=${started_pid[service-$name]}
    local status attempt
    for attempt in $(seq 1 240); do
        status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" \
            "$(service_url "$name")$image_path/$id" || true)
        if [[ $status == "$expected" ]]; then
            check_loopback "service $name" "$pid"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$work/logs/service-$name.log" >&2
            fail "service instance $name exited during start; the end of its log is above"
        fi
        sleep 0.25
    done
    tail -n 20 "$work/logs/service-$name.log" >&2
    fail "service instance $name did not return $expected for image $id within 60 s (last status: $status)"
}

# Prints the value of a metric of instance NAME: the sum of the series
# whose name and labels start with PREFIX, or "n/a" when there is none.
metric() {
    local name=$1 prefix=$2
    curl -s "$(service_url "$name")/metrics" | awk -v prefix="$prefix" '
        index($0, prefix) == 1 { sum += $NF; found = 1 }
        END { if (found) printf "%d\n", sum; else print "n/a" }'
}

db_queries() {
    metric "$1" 'aries_db_queries_total{'
}

vmrss_kib() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# ---------------------------------------------------------------------------
# Measurements. Each row of $results has the columns: scenario, round,
# requests/s, p50 ms, p99 ms, requests, responses other than 2xx/3xx,
# socket errors, and database queries during the run ("-" when no service
# is behind the port). Two more columns follow: the CPU that other
# processes used during the run, in percent of all cores, and the share of
# CPU time stolen by the hypervisor, in percent.

own_session=$(sed 's/^.*) //' "/proc/$$/stat" | cut -d' ' -f4)
clock_ticks=$(getconf CLK_TCK)

# Prints the share of CPU time, in percent, that the hypervisor gave to
# other virtual machines (steal) since the "cpu" line BEFORE of /proc/stat.
steal_percent() {
    local before=$1 after
    after=$(head -n 1 /proc/stat)
    awk -v before="$before" -v after="$after" 'BEGIN {
        split(before, b)
        split(after, a)
        for (i = 2; i <= 9; i++) total += a[i] - b[i]
        printf "%.0f\n", (total > 0 ? 100 * (a[9] - b[9]) / total : 0)
    }'
}

# Prints "PID TICKS" (user plus system CPU time) for every process outside
# this script's session, leaving out kernel threads.
other_cpu_ticks() {
    # cat fails for the processes that exit after the glob expands.
    { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v session="$own_session" '{
        pid = $1
        sub(/^.*\) /, "")
        if ($4 != session && pid != 2 && $2 != 2) print pid, $12 + $13
    }'
}

# Prints the CPU that processes outside this session used between the
# snapshot in file BEFORE and now, over SECONDS, in percent of all cores.
# Processes that exited in between are missed, so this is a lower bound.
other_cpu_percent() {
    local before=$1 seconds=$2
    other_cpu_ticks | awk -v before="$before" -v seconds="$seconds" \
        -v ticks="$clock_ticks" -v cores="$(nproc)" '
        BEGIN { while ((getline line < before) > 0) { split(line, f, " "); start[f[1]] = f[2] } }
        { used += $2 - (($1 in start) ? start[$1] : 0) }
        END { printf "%.0f\n", 100 * used / (ticks * seconds * cores) }'
}

# run_wrk KEY ROUND INSTANCE-OR-DASH WRK-ARGUMENTS...
run_wrk() {
    local key=$1 round=$2 instance=$3
    shift 3
    local -a command=(wrk -t1 -c"$connections" -d"${duration_s}s" --latency "$@")
    local raw=$work/raw/$key-$round.txt
    local before=- after=- queries=-
    if [[ $round == 1 ]]; then
        record_command "${command[@]}"
    fi

    if [[ $instance != - ]]; then
        before=$(db_queries "$instance")
    fi
    other_cpu_ticks >"$work/other-cpu.txt"
    local stat_before
    stat_before=$(head -n 1 /proc/stat)
    "${command[@]}" >"$raw" 2>&1 || fail "wrk failed for ($key); its output is in $raw"
    local other_cpu steal
    steal=$(steal_percent "$stat_before")
    other_cpu=$(other_cpu_percent "$work/other-cpu.txt" "$duration_s")
    if [[ $instance != - ]]; then
        after=$(db_queries "$instance")
        queries=$((after - before))
    fi

    local summary
    summary=$(awk -f "$bench_dir/wrk-summary.awk" "$raw")
    if [[ $(cut -f4 <<<"$summary") == 0 ]]; then
        fail "wrk completed no request for ($key); its output is in $raw"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$key" "$round" "$summary" "$queries" "$other_cpu" "$steal" >>"$results"
    printf '    %-8s round %s: %s requests/s, p50 %s ms, p99 %s ms, %s database queries, other processes %s %% CPU\n' \
        "$key" "$round" "$(cut -f1 <<<"$summary")" "$(cut -f2 <<<"$summary")" \
        "$(cut -f3 <<<"$summary")" "$queries" "$other_cpu"
}

warm_up() {
    wrk -t1 -c"$connections" -d"${warmup_s}s" "$@" >/dev/null 2>&1 ||
        fail "the warm-up run of wrk $* failed"
}

# Requests ids 1..LAST of instance NAME with wrk until its cache contains
# LAST entries, then interrupts wrk. Fails after 300 s.
fill_cache() {
    local name=$1 last=$2
    wrk -t1 -c"$connections" -d300s -s "$bench_dir/lua/sequential.lua" \
        "$(service_url "$name")$image_path" -- "$token" 1 "$last" \
        >"$work/raw/fill-$name-$last.txt" 2>&1 &
    local wrk_pid=$!
    remember_process "wrk-fill-$name" "$wrk_pid"
    local entries=0
    while kill -0 "$wrk_pid" 2>/dev/null; do
        entries=$(metric "$name" "aries_cache_entries ")
        if [[ $entries == n/a ]] || ((entries >= last)); then
            break
        fi
        sleep 0.5
    done
    kill -INT "$wrk_pid" 2>/dev/null || true
    wait "$wrk_pid" 2>/dev/null || true
    unset 'started_pid[wrk-fill-$name]'
    if [[ $entries == n/a ]] || ((entries < last)); then
        fail "filling the cache of $name reached $entries of $last entries; see $work/raw/fill-$name-$last.txt"
    fi
}

sysbench_options=()

run_sysbench() {
    local round=$1 seconds=$2
    local -a command=(sysbench oltp_point_select "${sysbench_options[@]}"
        --threads="$sysbench_threads" --time="$seconds" --percentile=99 --histogram=on run)
    local raw=$work/raw/h-$round.txt
    if [[ $round == 0 ]]; then
        "${command[@]}" >/dev/null 2>&1 || fail "the sysbench warm-up run failed"
        return 0
    fi
    if [[ $round == 1 ]]; then
        record_command "${command[@]}"
    fi
    other_cpu_ticks >"$work/other-cpu.txt"
    local stat_before
    stat_before=$(head -n 1 /proc/stat)
    "${command[@]}" >"$raw" 2>&1 || fail "sysbench failed; its output is in $raw"
    local summary other_cpu steal
    steal=$(steal_percent "$stat_before")
    other_cpu=$(other_cpu_percent "$work/other-cpu.txt" "$seconds")
    summary=$(awk -f "$bench_dir/sysbench-summary.awk" "$raw")
    printf 'h\t%s\t%s\t-\t%s\t%s\n' "$round" "$summary" "$other_cpu" "$steal" >>"$results"
    printf '    %-8s round %s: %s queries/s, p50 %s ms, p99 %s ms, other processes %s %% CPU\n' \
        h "$round" "$(cut -f1 <<<"$summary")" "$(cut -f2 <<<"$summary")" "$(cut -f3 <<<"$summary")" \
        "$other_cpu"
}

# Sets the array scenario_args to the wrk arguments of scenario KEY and
# scenario_instance to the instance whose queries it counts.
scenario_arguments() {
    local single=$bench_dir/lua/single.lua
    case $1 in
    a)
        scenario_instance=main
        scenario_args=(-s "$single" "$(service_url main)$image_path/$hot_id" -- "$token")
        ;;
    a_log)
        scenario_instance=log
        scenario_args=(-s "$single" "$(service_url log)$image_path/$hot_id" -- "$token")
        ;;
    a_one)
        scenario_instance=one
        scenario_args=(-s "$single" "$(service_url one)$image_path/$hot_id" -- "$token")
        ;;
    b)
        scenario_instance=main
        scenario_args=(-s "$bench_dir/lua/zipf.lua" "$(service_url main)$image_path"
            -- "$token" "$zipf_ids" "$zipf_exponent")
        ;;
    c)
        scenario_instance=main
        scenario_args=(-s "$single" "$(service_url main)$image_path/$hot_id" -- "$token" "$etag")
        ;;
    d)
        scenario_instance=main
        scenario_args=(-s "$single" "$(service_url main)$image_path/$missing_id" -- "$token")
        ;;
    e)
        scenario_instance=nocache
        scenario_args=(-s "$single" "$(service_url nocache)$image_path/$hot_id" -- "$token")
        ;;
    f)
        scenario_instance=-
        scenario_args=(-s "$single" "http://127.0.0.1:$nginx_static_port$image_path/$hot_id" -- "$token")
        ;;
    g)
        scenario_instance=nocache
        scenario_args=(-s "$single" "http://127.0.0.1:$nginx_proxy_port$image_path/$hot_id" -- "$token")
        ;;
    *)
        fail "unknown scenario $1"
        ;;
    esac
}

run_scenario() {
    local key=$1 round=$2
    if [[ $key == h ]]; then
        if [[ $round == 1 ]]; then
            run_sysbench 0 "$warmup_s"
        fi
        run_sysbench "$round" "$duration_s"
        return 0
    fi
    scenario_arguments "$key"
    if [[ $round == 1 ]]; then
        warm_up "${scenario_args[@]}"
    fi
    run_wrk "$key" "$round" "$scenario_instance" "${scenario_args[@]}"
}

# Prints the row of scenario KEY from the round with the median requests/s
# (the lower of the two middle rounds for an even count).
median_row() {
    local rows
    rows=$(awk -F'\t' -v key="$1" '$1 == key' "$results" | sort -t$'\t' -k3,3g)
    local count
    count=$(wc -l <<<"$rows")
    sed -n "$(((count + 1) / 2))p" <<<"$rows"
}

# Prints "min–max" of the requests/s of scenario KEY over the rounds.
rps_range() {
    awk -F'\t' -v key="$1" '
        $1 == key { if (n == 0 || $3 < low) low = $3; if (n == 0 || $3 > high) high = $3; n++ }
        END { printf "%.0f–%.0f\n", low, high }' "$results"
}

field() {
    cut -f"$2" <<<"$1"
}

# Prints database queries per 1,000 requests of a result row, or "–".
per_thousand() {
    local row=$1
    local queries requests
    queries=$(field "$row" 9)
    requests=$(field "$row" 6)
    if [[ $queries == - ]]; then
        echo "–"
    else
        awk -v q="$queries" -v r="$requests" 'BEGIN { printf "%.3f\n", q * 1000 / r }'
    fi
}

# Prints "pass" when the awk condition holds, else "miss".
verdict() {
    if awk "BEGIN { exit !($1) }"; then
        echo pass
    else
        echo miss
    fi
}

ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f\n", a / b }'
}

# Prints the requests/s of scenario KEY_A divided by those of KEY_B in each
# round, one "ROUND RATIO" line per round, in round order.
round_ratios() {
    awk -F'\t' -v first="$1" -v second="$2" '
        $1 == first { a[$2] = $3 }
        $1 == second { b[$2] = $3 }
        END { for (r = 1; r in a; r++) if ((r in b) && b[r] > 0) printf "%d %.2f\n", r, a[r] / b[r] }' "$results"
}

# Prints the median over the rounds (the lower middle one for an even
# count) of the per-round ratio of KEY_A to KEY_B.
median_ratio() {
    local ratios count
    ratios=$(round_ratios "$1" "$2" | cut -d' ' -f2 | sort -g)
    count=$(wc -l <<<"$ratios")
    sed -n "$(((count + 1) / 2))p" <<<"$ratios"
}

# ---------------------------------------------------------------------------
# The run

SECONDS=0
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
compilers_before=$(pgrep -c -x rustc || true)
cpu_busy_before=$(cpu_busy_percent)
started_at=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
# The state of the sources now, right after the release build, is what runs.
service_commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git status --porcelain -- src Cargo.toml Cargo.lock config migrations 2>/dev/null) ]]; then
    service_state="commit $service_commit with uncommitted changes in src/, Cargo.toml, Cargo.lock, config/ or migrations/"
else
    service_state="commit $service_commit"
fi

step "Preparing $work (load average $load_before, CPU $cpu_busy_before % busy, $compilers_before rustc processes)"
rm -rf "$work"
mkdir -p "$work/logs" "$work/raw" "$work/nginx"
: >"$results"
: >"$commands"

port80=$(ss -Hltn '( sport = :80 )')
if [[ -n $port80 ]]; then
    port80_note="Something that this benchmark did not start listens on port 80: $(echo $port80)."
    echo "warning: $port80_note" >&2
else
    port80_note="Nothing listened on port 80 (nginx's default site was not running)."
fi

token_digest=$(printf '%s\n' "$token" | "$binary" hash-token)

step "Starting MariaDB"
start_mariadb
sql -e "CREATE DATABASE aries_bench CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci; CREATE DATABASE sbtest"
database_url="mysql://root@127.0.0.1:$db_port/aries_bench"

step "Creating the table with the service's migrations"
start_service migrate ARIES__DATABASE__RUN_MIGRATIONS=true
wait_for_status migrate "$hot_id" 404
stop_service migrate

step "Loading $image_rows images"
load_started=$SECONDS
sql aries_bench -e "SET @rows = $image_rows; SOURCE $bench_dir/load-images.sql;"
loaded_rows=$(sql -N aries_bench -e "SELECT COUNT(*) FROM images")
if [[ $loaded_rows != "$image_rows" ]]; then
    fail "the images table has $loaded_rows rows, expected $image_rows"
fi
load_seconds=$((SECONDS - load_started))
record_command mariadb --no-defaults --socket="$db_socket" -uroot --default-character-set=utf8mb4 \
    aries_bench -e "SET @rows = $image_rows; SOURCE $bench_dir/load-images.sql;"

step "Preparing the sysbench table ($sysbench_rows rows)"
sysbench_options=(--db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$db_port"
    --mysql-user=root --mysql-db=sbtest --tables=1 --table-size="$sysbench_rows" --point-selects=1)
sysbench oltp_point_select "${sysbench_options[@]}" prepare >"$work/logs/sysbench-prepare.log" 2>&1 ||
    fail "sysbench prepare failed; see $work/logs/sysbench-prepare.log"
record_command sysbench oltp_point_select "${sysbench_options[@]}" prepare

step "Starting the service instances"
start_service main
start_service log ARIES__SERVER__ACCESS_LOG=true
start_service one ARIES__SERVER__WORKERS=1
start_service nocache ARIES__CACHE__TTL_S=0
for instance in main log one nocache; do
    wait_for_status "$instance" "$hot_id" 200
done

body_file=$work/nginx/html$image_path/$hot_id
mkdir -p "$(dirname "$body_file")"
headers=$(curl -s -D - -o "$body_file" -H "Authorization: Bearer $token" "$(service_url main)$image_path/$hot_id")
etag=$(awk 'tolower($1) == "etag:" { sub(/\r$/, "", $2); print $2 }' <<<"$headers")
body_bytes=$(wc -c <"$body_file")
if [[ -z $etag ]]; then
    fail "the response for image $hot_id has no ETag header"
fi

step "Starting nginx"
pick_port
nginx_static_port=$REPLY
pick_port
nginx_proxy_port=$REPLY
nginx_prefix=$work/nginx
mkdir -p "$nginx_prefix/temp"
sed -e "s|@PREFIX@|$nginx_prefix|g" -e "s|@STATIC_PORT@|$nginx_static_port|g" \
    -e "s|@PROXY_PORT@|$nginx_proxy_port|g" -e "s|@UPSTREAM_PORT@|${service_port[nocache]}|g" \
    "$bench_dir/nginx.conf" >"$nginx_prefix/nginx.conf"
"$nginx" -t -q -p "$nginx_prefix/" -e "$nginx_prefix/error.log" -c "$nginx_prefix/nginx.conf" ||
    fail "nginx rejected $nginx_prefix/nginx.conf"
record_command "$nginx" -p "$nginx_prefix/" -e "$nginx_prefix/error.log" -c "$nginx_prefix/nginx.conf"
"$nginx" -p "$nginx_prefix/" -e "$nginx_prefix/error.log" -c "$nginx_prefix/nginx.conf" &
remember_process nginx $!
for attempt in $(seq 1 40); do
    if curl -s -o /dev/null "http://127.0.0.1:$nginx_static_port$image_path/$hot_id" &&
        curl -s -o /dev/null "http://127.0.0.1:$nginx_proxy_port$image_path/$hot_id"; then
        break
    fi
    sleep 0.25
done
check_loopback nginx "${started_pid[nginx]}"
static_status=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' \
    "http://127.0.0.1:$nginx_static_port$image_path/$hot_id")
proxy_status=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' -H "Authorization: Bearer $token" \
    "http://127.0.0.1:$nginx_proxy_port$image_path/$hot_id")
if [[ $static_status != "200 $body_bytes" || $proxy_status != "200 $body_bytes" ]]; then
    fail "nginx returned '$static_status' (static) and '$proxy_status' (proxy), expected '200 $body_bytes'"
fi

step "Filling the cache of the main instance with ids 1..$zipf_ids for (b)"
fill_cache main "$zipf_ids"

scenarios=(a a_log a_one b c d e f g h)
for round in $(seq 1 "$rounds"); do
    step "Round $round of $rounds: scenarios ${scenarios[*]}"
    for key in "${scenarios[@]}"; do
        run_scenario "$key" "$round"
    done
done
access_log_lines=$(grep -c 'aries_image::access' "$work/logs/service-log.log" || true)

step "Stampede: $stampede_requests concurrent first requests for image $cold_id"
# A second session holds a write lock on the table while the requests
# arrive, so the first query waits and every request arrives before it
# completes. Without the lock the query often completes before curl has
# sent all requests.
sql aries_bench -e "LOCK TABLES images WRITE; SELECT SLEEP($stampede_lock_s); UNLOCK TABLES;" >/dev/null &
remember_process table-lock $!
for attempt in $(seq 1 100); do
    sleeping=$(sql -N -e "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP%'")
    if [[ $sleeping != 0 ]]; then
        break
    fi
    sleep 0.05
done
queries_before=$(db_queries main)
misses_before=$(metric main 'aries_cache_lookups_total{result="miss"}')
stampede_command=(curl -s --no-progress-meter --parallel --parallel-immediate --parallel-max "$stampede_requests"
    -H "Authorization: Bearer $token" -o /dev/null -w '%{http_code}\n'
    "$(service_url main)$image_path/$cold_id?request=[1-$stampede_requests]")
record_command "${stampede_command[@]}"
"${stampede_command[@]}" >"$work/raw/stampede.txt" || fail "curl failed in the stampede test"
wait "${started_pid[table-lock]}" || fail "the session that locked the images table failed"
unset 'started_pid[table-lock]'
stampede_ok=$(grep -c '^200$' "$work/raw/stampede.txt" || true)
stampede_queries=$(($(db_queries main) - queries_before))
stampede_misses=$(metric main 'aries_cache_lookups_total{result="miss"}')
if [[ $stampede_misses != n/a && $misses_before != n/a ]]; then
    stampede_misses=$((stampede_misses - misses_before))
fi
echo "    $stampede_ok of $stampede_requests returned 200; $stampede_misses cache misses; $stampede_queries database queries"

stop_process nginx
for instance in main log nocache; do
    stop_service "$instance"
done

step "Sweep of distinct ids with cache.max_bytes = $sweep_cache_bytes"
start_service sweep ARIES__CACHE__MAX_BYTES="$sweep_cache_bytes"
wait_for_status sweep "$hot_id" 200
sweep_data=$work/sweep.tsv
: >"$sweep_data"
for count in "${sweep_ids[@]}"; do
    sweep_args=(-s "$bench_dir/lua/uniform.lua" "$(service_url sweep)$image_path" -- "$token" "$count")
    warm_up "${sweep_args[@]}"
    run_wrk "sweep-$count" 1 sweep "${sweep_args[@]}"
    row=$(median_row "sweep-$count")
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$count" "$(field "$row" 3)" "$(field "$row" 4)" \
        "$(field "$row" 5)" "$(per_thousand "$row")" "$(metric sweep "aries_cache_entries ")" >>"$sweep_data"
done
sweep_capacity=$(tail -n 1 "$sweep_data" | cut -f6)
stop_service sweep

step "Resident memory with $image_rows images cached (cache.max_bytes = $rss_cache_bytes)"
start_service rss ARIES__CACHE__MAX_BYTES="$rss_cache_bytes"
wait_for_status rss "$hot_id" 200
sleep 1
rss_pid=${started_pid[service-rss]}
rss_idle_kib=$(vmrss_kib "$rss_pid")
fill_cache rss "$image_rows"
rss_entries=$(metric rss "aries_cache_entries ")
rss_weighted=$(metric rss "aries_cache_weighted_bytes ")
sleep 1
rss_full_kib=$(vmrss_kib "$rss_pid")
stop_service rss
echo "    idle $rss_idle_kib KiB, $rss_entries entries cached: $rss_full_kib KiB"

step "Soak: $soak_s s of mixed polling at $connections connections, default settings"
# The default settings, change detection and time to live included, as a
# deployment would run them; only the token and the database differ.
start_service soak ARIES__CACHE__TTL_S=300
wait_for_status soak "$hot_id" 200
soak_pid=${started_pid[service-soak]}
soak_etag=$(curl -s -D - -o /dev/null -H "Authorization: Bearer $token" \
    "$(service_url soak)$image_path/$hot_id" | awk 'tolower($1) == "etag:" { print $2 }' | tr -d '\r')
soak_args=(-s "$bench_dir/lua/soak.lua" "$(service_url soak)$image_path" -- "$token" 1000 "$soak_etag")
wrk -t1 -c"$connections" -d"${soak_warmup_s}s" "${soak_args[@]}" >"$work/raw/soak-warmup.txt" 2>&1 ||
    fail "wrk failed in the soak warm-up; its output is in $work/raw/soak-warmup.txt"
soak_rss_start_kib=$(vmrss_kib "$soak_pid")
soak_command=(wrk -t1 -c"$connections" -d"${soak_s}s" --latency "${soak_args[@]}")
record_command "${soak_command[@]}"
"${soak_command[@]}" >"$work/raw/soak.txt" 2>&1 &
soak_wrk_pid=$!
remember_process wrk-soak "$soak_wrk_pid"
soak_rss_max_kib=$soak_rss_start_kib
while kill -0 "$soak_wrk_pid" 2>/dev/null; do
    sample=$(vmrss_kib "$soak_pid")
    if ((sample > soak_rss_max_kib)); then
        soak_rss_max_kib=$sample
    fi
    sleep 5
done
wait "$soak_wrk_pid" || fail "wrk failed in the soak run; its output is in $work/raw/soak.txt"
unset 'started_pid[wrk-soak]'
soak_rss_end_kib=$(vmrss_kib "$soak_pid")
soak_summary=$(awk -f "$bench_dir/wrk-summary.awk" "$work/raw/soak.txt")
soak_unexpected=$(awk '$1 == "soak" && $2 == "unexpected" { print $3 }' "$work/raw/soak.txt")
soak_statuses=$(awk '$1 == "soak" && $2 == "status" { printf "%s%s: %s", sep, $3, $4; sep = ", " }' \
    "$work/raw/soak.txt")
if ! kill -0 "$soak_pid" 2>/dev/null; then
    fail "the soak instance exited during the run"
fi
stop_service soak
echo "    ${soak_unexpected:-?} unexpected statuses ($soak_statuses); VmRSS $soak_rss_start_kib KiB after the warm-up, max $soak_rss_max_kib, end $soak_rss_end_kib"

step "Staleness: $staleness_updates changes committed while wrk polls 1,000 cached ids"
start_service stale ARIES__CACHE__TTL_S=300
wait_for_status stale "$hot_id" 200
fill_cache stale 1000
staleness_wrk_s=$((staleness_updates * 3 + 30))
staleness_load=(wrk -t1 -c"$connections" -d"${staleness_wrk_s}s"
    -s "$bench_dir/lua/uniform.lua" "$(service_url stale)$image_path" -- "$token" 1000)
record_command "${staleness_load[@]}"
"${staleness_load[@]}" >"$work/raw/staleness-load.txt" 2>&1 &
remember_process wrk-staleness $!
sleep 2
staleness_command=(python3 "$bench_dir/staleness.py" "$(service_url stale)" "$token" "$staleness_updates"
    -- mariadb --no-defaults --socket="$db_socket" -uroot aries_bench)
record_command "${staleness_command[@]}"
"${staleness_command[@]}" >"$work/raw/staleness.txt" || fail "the staleness probe failed"
stop_process wrk-staleness
stop_service stale
staleness_median_ms=$(awk '$2 == "median" { print $3 }' "$work/raw/staleness.txt")
staleness_max_ms=$(awk '$2 == "median" { print $5 }' "$work/raw/staleness.txt")
echo "    commit to first fresh response: median $staleness_median_ms ms, max $staleness_max_ms ms"

step "Plotting the sweep"
plot_title="aries image service: throughput against distinct ids, cache.max_bytes = $sweep_cache_bytes"
gnuplot -e "data='$sweep_data'; output='$plot'; capacity=$sweep_capacity; title_text='$plot_title'" \
    "$bench_dir/sweep.gp" || fail "gnuplot failed"

elapsed_s=$SECONDS
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
compilers_after=$(pgrep -c -x rustc || true)
cpu_busy_after=$(cpu_busy_percent)

source "$bench_dir/report.sh"
step "Writing $report"
write_report >"$report"
step "Done in $((elapsed_s / 60)) min $((elapsed_s % 60)) s; the report is $report"
