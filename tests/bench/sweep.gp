# Plots the sweep of tests/bench/run.sh. Set on the command line:
#   data      file with the columns: distinct ids, requests/s, p50 ms,
#             p99 ms, database queries per 1,000 requests, cache entries
#   output    PNG file to write
#   capacity  entries the cache held when full
#   title_text
set terminal pngcairo size 960,560 font "DejaVu Sans,11"
set output output
set title title_text noenhanced
set logscale x 10
set format x "10^{%T}"
set xrange [0.5:200000]
set xlabel "distinct ids polled, uniformly at random"
set ylabel "requests/s"
set y2label "database queries per 1,000 requests"
set yrange [0:*]
set y2range [0:1100]
set ytics nomirror
set y2tics
set grid xtics ytics
set key below
set bmargin 6
set arrow from capacity, graph 0 to capacity, graph 1 nohead dashtype 2 linecolor rgb "#777777"
set label sprintf("cache full: %d entries", capacity) at capacity, graph 0.06 offset 1, 0
plot data using 1:2 axes x1y1 with linespoints linewidth 2 pointtype 7 title "requests/s", \
     data using 1:5 axes x1y2 with linespoints linewidth 2 pointtype 5 title "database queries per 1,000 requests"
