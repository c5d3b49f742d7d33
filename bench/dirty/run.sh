#!/usr/bin/env bash
# The dirty pool's cost: one call's round trip (a small payload, one client) and calls per second
# through one HTTP worker, against running the same job inline on the worker's loop; and blocking
# work (a 2 ms CPU spin) inline against in the pool. The test app's jobs and its /inline route
# (tests/support/test_app.cpp) are the work, so both sides run the very same handler.
# Usage: bench/dirty/run.sh [BIN] — prints the figures of docs/benchmarks.md ("The dirty pool").
# BIN defaults to build/tests/agente-hibrido-test; it is copied, so a rebuild cannot replace it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${1:-$root/build/tests/agente-hibrido-test}
rounds=${BENCH_ROUNDS:-3}
seconds=${BENCH_SECONDS:-5}
dir=$(mktemp -d /tmp/agente-dirty-bench.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; sleep 0.3; rm -rf "$dir"; }
trap cleanup EXIT

. "$root/bench/quiet.sh"
wait_for_quiet 600

cp "$bin" "$dir/server"
port=$(free_port)
cat > "$dir/server.conf" <<CONF
bind = "127.0.0.1:$port"
workers = 1
dirty_workers = ${BENCH_DIRTY_WORKERS:-2}
dirty_threads = ${BENCH_DIRTY_THREADS:-1}
dirty_backlog = 1024
loglevel = "warning"
errorlog = "$dir/error.log"
CONF
"$dir/server" -c "$dir/server.conf" & pid=$!
ready() {
    for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/dirty?kind=test.echo" && return 0; sleep 0.1; done
    return 1
}
ready || { echo "bench/dirty: the server never answered; see $dir/error.log" >&2; kill "$pid"; exit 1; }

http_worker=$(pgrep -P "$pid" -f 'agente-hibrido: worker')
dirty_pids=$(pgrep -P "$pid" -f 'dirty worker' | tr '\n' ' ')
# utime + stime of the processes, in clock ticks (the fields after the command name, which may hold spaces).
cpu_ticks() { for p in "$@"; do sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}'; done | awk '{s += $1} END {print s + 0}'; }
hz=$(getconf CLK_TCK)

# One wrk run: "requests/s p50_ms p99_ms http_worker_us_per_request dirty_us_per_request".
measure() {
    local connections=$1 path=$2
    local w0 d0 out
    w0=$(cpu_ticks "$http_worker"); d0=$(cpu_ticks $dirty_pids)
    out=$(wrk -t1 -c"$connections" -d"${seconds}s" --latency "http://127.0.0.1:$port$path")
    local w1 d1
    w1=$(cpu_ticks "$http_worker"); d1=$(cpu_ticks $dirty_pids)
    echo "$out" | awk -v w="$((w1 - w0))" -v d="$((d1 - d0))" -v hz="$hz" '
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
        /requests in/ { n = $1 }
        /Requests\/sec/ { rps = $2 }
        /^ +50%/ { p50 = ms($2) }
        /^ +99%/ { p99 = ms($2) }
        /Non-2xx/ { bad = $NF }
        END { printf "%.0f %.3f %.3f %.1f %.1f %s\n", rps, p50, p99, w * 1e6 / hz / n, d * 1e6 / hz / n, (bad ? "non-2xx=" bad : "") }'
}

declare -A results
scenarios=(
    "echo-1:1:/inline?kind=test.echo&payload=hello"
    "echo-1:1:/dirty?kind=test.echo&payload=hello"
    "echo-32:32:/inline?kind=test.echo&payload=hello"
    "echo-32:32:/dirty?kind=test.echo&payload=hello"
    "spin-32:32:/inline?kind=test.spin&payload=2000"
    "spin-32:32:/dirty?kind=test.spin&payload=2000"
)
for path in "/inline?kind=test.echo" "/dirty?kind=test.echo"; do wrk -t1 -c8 -d1s "http://127.0.0.1:$port$path" >/dev/null; done
for round in $(seq "$rounds"); do
    for s in "${scenarios[@]}"; do
        IFS=: read -r name connections path <<< "$s"
        key="$name ${path%%\?*}"
        results[$key]+="$(measure "$connections" "$path")"$'\n'
    done
done

echo "== $rounds rounds of ${seconds} s, medians (requests/s, p50 ms, p99 ms, HTTP worker CPU us/request, dirty workers CPU us/request)"
for s in "${scenarios[@]}"; do
    IFS=: read -r name connections path <<< "$s"
    key="$name ${path%%\?*}"
    printf '%-18s' "$key"
    printf '%s' "${results[$key]}" | sort -n | awk -v r="$rounds" 'NR == int((r + 1) / 2)'
done
echo "== load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
