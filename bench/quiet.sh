# Sourced by the bench scripts: wait (at most BENCH_QUIET_WAIT s, default $1) until the 1-minute
# load average is under BENCH_QUIET_LOAD (0.7): the two cores are shared with builds and test runs.
# Prints the load it started at, and the port helpers the scripts share.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_for_quiet() {
    local quiet=${BENCH_QUIET_LOAD:-0.7} limit=${BENCH_QUIET_WAIT:-$1} waited=0
    while awk -v q="$quiet" '{exit !($1 >= q)}' /proc/loadavg && [ "$waited" -lt "$limit" ]; do
        [ $((waited % 60)) = 0 ] && echo "waiting for a quiet machine: load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
        sleep 10; waited=$((waited + 10))
    done
    echo "== load average at the start: $(cut -d' ' -f1-3 /proc/loadavg) (waited ${waited} s)"
}
