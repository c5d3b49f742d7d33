#!/usr/bin/env python3
"""CPU per proxied request, the gateway's against nginx's proxy_pass, in one run (issue 17's target:
at most 1.1x). A quick probe beside bench/gateway/run.sh, for a busy machine: CPU time per request
moves much less with what else runs than rates and latencies do.

The canned-answer nginx upstream and the nginx proxy of run.sh (nginx.conf.in, nginx-proxy.conf.in),
one gateway worker with the same upstream; bench/loadgen drives each proxy at the same fixed rate,
in interleaved rounds; the CPU of each proxy's worker is read from /proc/PID/stat (user + system)
around each round. Prints one line per proxy and the ratio of the median CPU per request, whole
answers and, with CPU_STREAM=1, streamed ones too. Loopback only; it stops what it started.

Usage, from the project's root after a build (bench/gateway/run.sh builds the load generator):
  bench/gateway/cpu_per_request.py [BIN]
Environment: CPU_RATE (1000 requests/s), CPU_ROUNDS (3), CPU_SECONDS (5), CPU_STREAM (0),
CPU_LOADGEN (/tmp/agente-bench-loadgen/loadgen)."""
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BIN = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "build" / "agente-hibrido")
RATE = int(os.environ.get("CPU_RATE", "1000"))
ROUNDS = int(os.environ.get("CPU_ROUNDS", "3"))
SECONDS = float(os.environ.get("CPU_SECONDS", "5"))
STREAM = os.environ.get("CPU_STREAM", "0") == "1"
LOADGEN = os.environ.get("CPU_LOADGEN", "/tmp/agente-bench-loadgen/loadgen")
WARMUP = 0.5          # seconds of each round not counted by loadgen (its CPU is, so it is added back)
CONNECTIONS = 32      # as run.sh
READY_SECONDS = 10    # for a server to open its port
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, seconds=READY_SECONDS):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"cpu_per_request: nothing listens on {port}")


def cpu_s(pid):
    """(user, system) CPU seconds of `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def only_child(pid):
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        if len(out) == 1:
            return int(out[0])
        time.sleep(0.05)
    sys.exit(f"cpu_per_request: {pid} has no single worker")


def server_conf(d, gw, up):
    return ((HERE / "server.conf.in").read_text().replace("@DIR@", d).replace("@PORT@", str(gw))
            .replace("@UPSTREAM@", str(up)).replace("@WORKERS@", "1"))


def round_once(name, port, pid, body, path):
    before = cpu_s(pid)
    out = subprocess.run([LOADGEN, "--port", str(port), "--path", path, "--body-file", body,
                          "--header", "Content-Type: application/json", "--header", "Authorization: Bearer bench-key",
                          "--rate", str(RATE), "--duration", str(SECONDS), "--warmup", str(WARMUP),
                          "--connections", str(CONNECTIONS), "--label", name],
                         capture_output=True, text=True, timeout=SECONDS + 60)
    after = cpu_s(pid)
    user, system = after[0] - before[0], after[1] - before[1]
    r = dict(kv.split("=", 1) for kv in out.stdout.split())
    if "requests" not in r:
        sys.exit(f"cpu_per_request: loadgen failed on {name}: {out.stderr.strip()}")
    served = float(r["requests"]) + RATE * WARMUP
    return (user + system) / served * 1e6, float(r["achieved"]), float(r["p99"]), user / served * 1e6, system / served * 1e6


def main():
    if not BIN.exists() or not os.access(LOADGEN, os.X_OK) or not shutil.which("nginx"):
        sys.exit(f"cpu_per_request: needs nginx, {LOADGEN} (bench/gateway/run.sh builds it) and {BIN}")
    load = os.getloadavg()
    print(f"cpu_per_request: load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {RATE}/s, "
          f"{ROUNDS} interleaved rounds of {SECONDS:g} s, {CONNECTIONS} connections, one worker each", flush=True)
    procs = []
    with tempfile.TemporaryDirectory(prefix="gw-cpu-") as d:
        try:
            up, gw, px = free_port(), free_port(), free_port()
            (Path(d) / "up.conf").write_text((HERE / "nginx.conf.in").read_text()
                                             .replace("@DIR@", d).replace("@PORT@", str(up)))
            (Path(d) / "proxy.conf").write_text((HERE / "nginx-proxy.conf.in").read_text().replace("@DIR@", d)
                                                .replace("@PORT@", str(px)).replace("@UPSTREAM@", str(up)))
            procs.append(subprocess.Popen(["nginx", "-c", f"{d}/up.conf", "-p", d]))
            wait_port(up)
            procs.append(subprocess.Popen(["nginx", "-c", f"{d}/proxy.conf", "-p", d]))
            wait_port(px)
            shutil.copy2(BIN, f"{d}/agente-hibrido")  # a rebuild cannot replace it mid-run
            (Path(d) / "server.conf").write_text(server_conf(d, gw, up))
            procs.append(subprocess.Popen([f"{d}/agente-hibrido", "-c", f"{d}/server.conf"]))
            wait_port(gw)
            workers = {"gateway": only_child(procs[2].pid), "nginx proxy": only_child(procs[1].pid)}
            ports = {"gateway": gw, "nginx proxy": px}
            kinds = [("whole", '{"model":"bench","messages":[{"role":"user","content":"hi"}]}', False)]
            if STREAM:
                kinds.append(("streamed", '{"model":"bench-stream","stream":true,"messages":[{"role":"user",'
                                          '"content":"hi"}]}', True))
            for kind, text, stream in kinds:
                body = Path(d) / f"{kind}.json"
                body.write_text(text)
                got = {name: [] for name in workers}
                for _ in range(ROUNDS):
                    for name in workers:
                        # nginx's proxy passes the path as it is; the gateway maps the model.
                        path = "/v1/stream/chat/completions" if stream and name != "gateway" else "/v1/chat/completions"
                        got[name].append(round_once(name.replace(" ", "_"), ports[name], workers[name], str(body), path))
                med = {n: [statistics.median(r[i] for r in rs) for i in range(5)] for n, rs in got.items()}
                for n, (us, achieved, p99, user, system) in med.items():
                    print(f"cpu_per_request: {kind}, {n}: {us:.1f} us CPU per request (rounds: "
                          f"{', '.join(f'{r[0]:.1f}' for r in got[n])}; medians user {user:.1f} + system "
                          f"{system:.1f}); achieved {achieved:,.0f}/s; p99 {p99:.2f} ms", flush=True)
                g, n = med["gateway"], med["nginx proxy"]
                print(f"cpu_per_request: {kind}: gateway / nginx proxy = {g[0] / n[0]:.2f}x CPU per request "
                      f"(target <= 1.1x); user {g[3] / n[3]:.2f}x, system {g[4] / n[4]:.2f}x", flush=True)
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()


if __name__ == "__main__":
    main()
