#!/usr/bin/env bash
# The gateway's overhead against calling the same fast upstream (nginx, canned answers) directly,
# and memory per held stream. Usage: bench/gateway/run.sh [BIN] — prints the figures of docs/gateway.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$here/../../build-gw/agente-hibrido}
dir=$(mktemp -d /tmp/agente-gw-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; return 1; }

up=$(free_port); gw=$(free_port)
sed "s#@DIR@#$dir#g; s#@PORT@#$up#g" "$here/nginx.conf.in" > "$dir/nginx.conf"
nginx -c "$dir/nginx.conf" -p "$dir" & pids+=($!)
wait_port "$up"

cat > "$dir/server.conf" <<CONF
bind = "127.0.0.1:$gw"
workers = ${BENCH_WORKERS:-1}
worker_connections = 8000
errorlog = "$dir/error.log"
[gateway]
api_keys = ["bench-key"]
max_concurrent_streams = 100000
stream_keepalive = 1
[providers.nginx]
base_url = "http://127.0.0.1:$up/v1"
[providers.nginx_stream]
base_url = "http://127.0.0.1:$up/v1/stream"
[models.bench]
targets = [{ provider = "nginx", model = "bench" }]
[models.bench-stream]
targets = [{ provider = "nginx_stream", model = "bench" }]
CONF
"$bin" -c "$dir/server.conf" & pids+=($!)
wait_port "$gw"

conns=${BENCH_CONNECTIONS:-32}; secs=${BENCH_SECONDS:-10}
load() {  # port path body
    BENCH_BODY="$3" wrk -t1 -c"$conns" -d"${secs}s" --latency -s "$here/post.lua" "http://127.0.0.1:$1$2" |
        awk '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} END {printf "rps=%s p50=%s p99=%s\n", rps, p50, p99}'
}
body='{"model":"bench","messages":[{"role":"user","content":"hi"}]}'
sbody='{"model":"bench-stream","stream":true,"messages":[{"role":"user","content":"hi"}]}'
echo "== whole answers, wrk -c$conns -d${secs}s (one gateway worker)"
echo "direct : $(load "$up" /v1/chat/completions "$body")"
echo "gateway: $(load "$gw" /v1/chat/completions "$body")"
echo "== streamed answers"
echo "direct : $(load "$up" /v1/stream/chat/completions "$sbody")"
echo "gateway: $(load "$gw" /v1/chat/completions "$sbody")"
echo "== time to first byte, sequential, 2000 requests"
echo "direct : $(python3 "$here/ttfb.py" "$up" /v1/stream/chat/completions "$sbody" 2000)"
echo "gateway: $(python3 "$here/ttfb.py" "$gw" /v1/chat/completions "$sbody" 2000)"

# Memory: held streams against the Python fake, which keeps each one silent (plain HTTP upstream).
n=${BENCH_STREAMS:-5000}
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
for _ in $(seq 200); do grep -q "generation 2" "$dir/error.log" 2>/dev/null && break; sleep 0.05; done
worker=$(pgrep -P "${pids[1]}" | tail -1)
echo "== $n held streams on one worker (pid $worker)"
python3 "$here/streams.py" "$gw" "$worker" "$n"
