# Reads the output of `sysbench ... --histogram=on --percentile=99 run` and
# prints the same columns as wrk-summary.awk: queries/s, p50 and p99
# latency in ms, queries, 0, and ignored errors. sysbench prints no median,
# so p50 is read from its latency histogram: the first bucket at which the
# cumulative count reaches half of all events.
/^ +[0-9.]+ \|/ {
    buckets++
    bucket_value[buckets] = $1
    bucket_count[buckets] = $NF
    events += $NF
}
/^ +queries:/ {
    queries = $2
    rate = $3
    sub(/^\(/, "", rate)
}
/^ +ignored errors:/ { ignored = $3 }
/99th percentile:/ { p99 = $3 }

END {
    cumulative = 0
    p50 = 0
    for (i = 1; i <= buckets; i++) {
        cumulative += bucket_count[i]
        if (cumulative * 2 >= events) {
            p50 = bucket_value[i]
            break
        }
    }
    printf "%.1f\t%.3f\t%.3f\t%d\t0\t%d\n", rate, p50, p99, queries, ignored
}
