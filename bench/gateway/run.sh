#!/usr/bin/env bash
# The gateway's overhead against calling the same fast upstream (nginx, canned answers) directly, side
# by side with nginx's own reverse proxy in front of it, at fixed request rates (open loop,
# bench/loadgen), whole and streamed; time to first byte; and memory per held stream.
# Usage: bench/gateway/run.sh [BIN] — prints the figures of docs/gateway.md ("Performance").
# BIN defaults to build-bench/agente-hibrido; it is copied, so a rebuild cannot replace it mid-run.
# BENCH_AA=1: an A/A run, a second nginx proxy in the gateway's place (fixed rates only): how far
# two identical proxies' figures fall apart on this machine.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${1:-$root/build-bench/agente-hibrido}
dir=$(mktemp -d /tmp/agente-gw-bench.XXXXXX)
pids=(); proxy_pid=; polling_pid=
cleanup() { for p in "${pids[@]}" $proxy_pid $polling_pid; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT

. "$root/bench/quiet.sh"
wait_port() { for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; return 1; }

# The open-loop load generator and the stall probe, built outside the tree's build directories when
# their sources changed.
lgdir=${BENCH_LOADGEN_DIR:-/tmp/agente-bench-loadgen}
mkdir -p "$lgdir"
for tool in loadgen stall_probe; do
    if [ ! -x "$lgdir/$tool" ] || [ "$root/bench/loadgen/$tool.cpp" -nt "$lgdir/$tool" ]; then
        echo "building $lgdir/$tool" >&2
        g++ -std=c++20 -O2 -pthread -o "$lgdir/$tool.tmp" "$root/bench/loadgen/$tool.cpp"
        mv "$lgdir/$tool.tmp" "$lgdir/$tool"
    fi
done
loadgen=$lgdir/loadgen
cp "$bin" "$dir/agente-hibrido"

wait_for_quiet 1200

up=$(free_port); gw=$(free_port); proxy=$(free_port)
sed "s#@DIR@#$dir#g; s#@PORT@#$up#g" "$here/nginx.conf.in" > "$dir/nginx.conf"
nginx -c "$dir/nginx.conf" -p "$dir" & pids+=($!)
wait_port "$up"
sed "s#@DIR@#$dir#g; s#@PORT@#$proxy#g; s#@UPSTREAM@#$up#g" "$here/nginx-proxy.conf.in" > "$dir/nginx-proxy.conf"
nginx -c "$dir/nginx-proxy.conf" -p "$dir" & proxy_pid=$!
wait_port "$proxy"

aa=${BENCH_AA:-0}
if [ "$aa" = 1 ]; then
    mkdir "$dir/b"
    sed "s#@DIR@#$dir/b#g; s#@PORT@#$gw#g; s#@UPSTREAM@#$up#g" "$here/nginx-proxy.conf.in" > "$dir/b/nginx-proxy.conf"
    nginx -c "$dir/b/nginx-proxy.conf" -p "$dir/b" & pids+=($!)
else
    sed "s#@DIR@#$dir#g; s#@PORT@#$gw#g; s#@UPSTREAM@#$up#g; s#@WORKERS@#${BENCH_WORKERS:-1}#g" \
        "$here/server.conf.in" > "$dir/server.conf"
    "$dir/agente-hibrido" -c "$dir/server.conf" & pids+=($!)
fi
wait_port "$gw"

body='{"model":"bench","messages":[{"role":"user","content":"hi"}]}'
sbody='{"model":"bench-stream","stream":true,"messages":[{"role":"user","content":"hi"}]}'
printf '%s' "$body" > "$dir/body.json"
printf '%s' "$sbody" > "$dir/stream.json"
python3 "$here/chat_body.py" bench > "$dir/chat.json"
echo "== fixed rates: direct, through nginx's reverse proxy, through ${BENCH_WORKERS:-1} gateway worker(s)"
python3 "$here/fixed_rate.py" --loadgen "$loadgen" --stall-probe "$lgdir/stall_probe" \
    $([ "${BENCH_CPUS_POLL:-1}" = 0 ] && echo --let-cpus-halt) \
    --direct "$up" --proxy "$proxy" --gateway "$gw" --body "$dir/body.json" --stream-body "$dir/stream.json" \
    --chat-body "$dir/chat.json" --chat-share "${BENCH_CHAT_SHARE:-20}" \
    --gw-pids "${pids[1]}" --proxy-pids "$proxy_pid" --up-pids "${pids[0]}" --rounds "${BENCH_ROUNDS:-5}" \
    --duration "${BENCH_SECONDS:-6}" --connections "${BENCH_CONNECTIONS:-32}" \
    --shares "${BENCH_SHARES:-25,50,75,90}" --max-rate "${BENCH_MAX_RATE:-0}" --trace-share "${BENCH_TRACE_SHARE:-75}" \
    ${BENCH_RAW:+--raw "$BENCH_RAW"} $([ "$aa" = 1 ] && echo --peer-as-gateway) \
    2> "$dir/fixed_rate.log" || { cat "$dir/fixed_rate.log" >&2; exit 1; }
kill "$proxy_pid" 2>/dev/null || true; proxy_pid=
if [ -n "${BENCH_VERBOSE:-}" ]; then cat "$dir/fixed_rate.log"; fi
[ "$aa" = 1 ] && exit 0
# A sequential client leaves the CPUs idle between requests: keep them polling here too, as in the
# fixed-rate runs (BENCH_CPUS_POLL=0: the VM as it is).
[ "${BENCH_CPUS_POLL:-1}" = 0 ] || { python3 "$here/cpu_latency.py" & polling_pid=$!; }
echo "== time to first byte, sequential, 2000 requests"
echo "direct : $(python3 "$here/ttfb.py" "$up" /v1/stream/chat/completions "$sbody" 2000)"
echo "gateway: $(python3 "$here/ttfb.py" "$gw" /v1/chat/completions "$sbody" 2000)"
kill $polling_pid 2>/dev/null || true; polling_pid=

# Memory: held streams against the Python fake, which keeps each one silent (plain HTTP upstream).
n=${BENCH_STREAMS:-5000}
[ "$n" -gt 0 ] || exit 0
python3 "$here/../../tests/fake_upstream/fake_openai.py" > "$dir/fake.port" & pids+=($!)
for _ in $(seq 100); do [ -s "$dir/fake.port" ] && break; sleep 0.05; done
fake=$(awk '{print $2}' "$dir/fake.port")
cat >> "$dir/server.conf" <<CONF
[providers.fake]
base_url = "http://127.0.0.1:$fake/v1"
[models.held]
targets = [{ provider = "fake", model = "silent" }]
CONF
kill -HUP "${pids[1]}"
# The new generation serves, and the old worker, which would answer the new model 404 while it
# drains, is gone: one child left.
for _ in $(seq 200); do
    grep -q "serving (generation 2)" "$dir/error.log" 2>/dev/null && [ "$(pgrep -c -P "${pids[1]}")" = 1 ] && break
    sleep 0.05
done
worker=$(pgrep -P "${pids[1]}")
echo "== load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== $n held streams on one worker (pid $worker)"
python3 "$here/streams.py" "$gw" "$worker" "$n"
