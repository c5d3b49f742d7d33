#!/usr/bin/env bash
# Instructions per keep-alive GET /health in a worker, counted by callgrind (repeatable whatever else
# the machine does): one worker under valgrind serves N1, then (a fresh run) N2 requests on one
# kept-alive connection; (I(N2) - I(N1)) / (N2 - N1) is the cost of one request, start-up excluded.
# Usage, from the project's root after ./scripts/build: bench/ops/request_cost.sh [BINARY] [N1] [N2]
set -euo pipefail
bin=${1:-build/agente-hibrido}; n1=${2:-2000}; n2=${3:-6000}
dir=$(mktemp -d -t reqcost.XXXXXX); trap 'rm -rf "$dir"' EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

worker_instructions() {  # N: runs the server under callgrind, sends N requests, prints the worker's total
  local n=$1 p; p=$(port)
  rm -f "$dir"/callgrind.out.*
  printf 'bind = "127.0.0.1:%s"\nworkers = 1\nloglevel = "warning"\ntimeout = 120\nboot_timeout = 120\n' "$p" >"$dir/s.conf"
  valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$dir/callgrind.out.%p" \
    "$bin" -c "$dir/s.conf" >"$dir/out.log" 2>&1 &
  local master=$!
  python3 - "$p" "$n" <<'PY'
import http.client, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
deadline = time.monotonic() + 120
while True:
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30); c.request("GET", "/health"); c.getresponse().read(); break
    except OSError:
        if time.monotonic() > deadline: raise
        time.sleep(0.2)
for _ in range(n - 1):
    c.request("GET", "/health"); r = c.getresponse(); r.read(); assert r.status == 200
c.close()
PY
  kill -TERM "$master"; wait "$master" || true
  # valgrind's command line hides the workers' process titles: the worker's file is the other pid's.
  for f in "$dir"/callgrind.out.*; do
    [ "$f" = "$dir/callgrind.out.$master" ] || awk '/^summary:|^totals:/ {print $2; exit}' "$f"
  done
}

i1=$(worker_instructions "$n1"); i2=$(worker_instructions "$n2")
python3 -c "print(f'instructions per keep-alive /health request: {($i2 - $i1) / ($n2 - $n1):.0f} (callgrind, worker only; {$n1} vs {$n2} requests: {$i1} vs {$i2})')"
