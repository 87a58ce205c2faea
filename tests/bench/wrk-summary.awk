# Reads the output of `wrk --latency` and prints, tab-separated: requests/s,
# p50 and p99 latency in ms, requests, responses other than 2xx and 3xx,
# and socket errors (connect, read, write and timeout together).
function to_ms(text,    number) {
    number = text
    sub(/[a-z]+$/, "", number)
    number += 0
    if (text ~ /us$/) return number / 1000
    if (text ~ /ms$/) return number
    if (text ~ /m$/) return number * 60000
    if (text ~ /s$/) return number * 1000
    return number
}

/^ +50%/ { p50 = to_ms($2) }
/^ +99%/ { p99 = to_ms($2) }
/ requests in / { requests = $1 }
/^Requests\/sec:/ { rps = $2 }
/Non-2xx or 3xx responses:/ { other_status = $NF }
/Socket errors:/ {
    for (i = 1; i <= NF; i++) {
        if ($i ~ /^[0-9]+,?$/) {
            value = $i
            sub(/,$/, "", value)
            socket_errors += value
        }
    }
}

END {
    printf "%.1f\t%.3f\t%.3f\t%d\t%d\t%d\n", rps, p50, p99, requests, other_status, socket_errors
}
