#!/usr/bin/env python3
"""Instructions per proxied request, the gateway's against nginx's proxy_pass, in one run (issue 17's
target: at most 1.1x nginx's CPU per request). CPU time (cpu_per_request.py) moves with the load on
a shared machine; instruction counts do not, so this is the figure a change to the request path can
be judged by on a busy machine.

One gateway worker and one nginx proxy worker (master_process off) in front of the same canned nginx
upstream (nginx.conf.in, nginx-proxy.conf.in, server.conf.in), each under
`valgrind --tool=callgrind`; a client sends N1, then, in a fresh run, N2 chat requests over
keep-alive connections, and the figure is (I(N2) - I(N1)) / (N2 - N1): start-up, shutdown and
connection set-up cancel out. Callgrind sees user space only, so the system calls per request are
counted the same way under `strace -c -f` (kernel time on this VM is dear: see docs/benchmarks.md).
Loopback only; it stops what it started.

Usage, from the project's root after a build:
  bench/gateway/instructions.py [BIN]
Environment: INSN_N1 (100), INSN_N2 (600), INSN_CONNECTIONS (4), INSN_STRACE (1), INSN_KINDS
(whole,streamed)."""
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cpu_per_request  # noqa: E402 (its own directory is on sys.path when run as a script)
from cpu_per_request import free_port

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BIN = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "build" / "agente-hibrido")
N1 = int(os.environ.get("INSN_N1", "100"))
N2 = int(os.environ.get("INSN_N2", "600"))
CONNECTIONS = int(os.environ.get("INSN_CONNECTIONS", "4"))
STRACE = os.environ.get("INSN_STRACE", "1") == "1"
KINDS = os.environ.get("INSN_KINDS", "whole,streamed").split(",")
READY_SECONDS = 120   # valgrind starts a binary slowly, more so on a loaded machine
STOP_SECONDS = 120    # and writes its profile on exit
BODIES = {"whole": '{"model":"bench","messages":[{"role":"user","content":"hi"}]}',
          "streamed": '{"model":"bench-stream","stream":true,"messages":[{"role":"user","content":"hi"}]}'}


def wait_port(port):
    cpu_per_request.wait_port(port, READY_SECONDS)


def drive(port, path, body, n):
    """n requests spread over CONNECTIONS keep-alive connections, one at a time (no pipelining)."""
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=60) for _ in range(CONNECTIONS)]
    headers = {"Content-Type": "application/json", "Authorization": "Bearer bench-key"}
    for i in range(n):
        c = conns[i % CONNECTIONS]
        c.request("POST", path, body, headers)
        r = c.getresponse()
        data = r.read()
        if r.status != 200 or not data:
            sys.exit(f"instructions: {path} answered {r.status}: {data[:200]!r}")
    for c in conns:
        c.close()


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def total_ir(path):
    for line in Path(path).read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    sys.exit(f"instructions: no totals in {path}")


def strace_calls(path):
    """Total system calls from `strace -c` output (its 'total' row)."""
    for line in Path(path).read_text().splitlines():
        if line.rstrip().endswith("total"):
            parts = line.split()
            return int(parts[2]) if len(parts) >= 5 else int(parts[1])
    return 0


def strace_table(path):
    rows = {}
    for line in Path(path).read_text().splitlines():
        m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:(\d+)\s+)?(\w+)\s*$", line)
        if m and m.group(3) != "total":
            rows[m.group(3)] = int(m.group(1))
    return rows


class Bench:
    def __init__(self, d):
        self.d = d
        self.up = free_port()
        (Path(d) / "up.conf").write_text((HERE / "nginx.conf.in").read_text()
                                         .replace("@DIR@", d).replace("@PORT@", str(self.up)))
        self.upstream = subprocess.Popen(["nginx", "-c", f"{d}/up.conf", "-p", d])
        wait_port(self.up)
        shutil.copy2(BIN, f"{d}/agente-hibrido")  # a rebuild cannot replace it mid-run

    def gateway(self, wrap, out):
        port = free_port()
        (Path(self.d) / "server.conf").write_text(
            (HERE / "server.conf.in").read_text().replace("@DIR@", self.d).replace("@PORT@", str(port))
            .replace("@UPSTREAM@", str(self.up)).replace("@WORKERS@", "1"))
        return port, subprocess.Popen(wrap + [f"{self.d}/agente-hibrido", "-c", f"{self.d}/server.conf"],
                                      stderr=subprocess.DEVNULL)

    def nginx(self, wrap, out):
        port = free_port()
        (Path(self.d) / "proxy.conf").write_text(
            (HERE / "nginx-proxy.conf.in").read_text().replace("@DIR@", self.d).replace("@PORT@", str(port))
            .replace("@UPSTREAM@", str(self.up)))
        return port, subprocess.Popen(wrap + ["nginx", "-c", f"{self.d}/proxy.conf", "-p", self.d,
                                              "-g", "master_process off;"], stderr=subprocess.DEVNULL)

    def run(self, who, kind, n, tool):
        out = f"{self.d}/{who}.{kind}.{n}.{tool}"
        if tool == "callgrind":
            wrap = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p"]
            if who == "gateway":
                wrap.insert(2, "--trace-children=yes")
        else:
            wrap = ["strace", "-c", "-f", "-o", out]
        port, p = getattr(self, who)(wrap, out)
        wait_port(port)
        path = "/v1/chat/completions"
        if who == "nginx" and kind == "streamed":
            path = "/v1/stream/chat/completions"  # nginx passes the path; the gateway maps the model
        drive(port, path, BODIES[kind], n)
        if tool == "strace":
            # strace writes its table when the traced server exits, not when strace is signalled.
            traced = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()
            for pid in traced[:1]:
                os.kill(int(pid), signal.SIGTERM)
        stop(p)
        if tool == "strace":
            return strace_calls(out), strace_table(out)
        # The worker's profile: the file whose pid is not valgrind's own (the master's).
        files = [f for f in Path(self.d).glob(f"{who}.{kind}.{n}.callgrind.*")
                 if who == "nginx" or not f.name.endswith(f".{p.pid}")]
        if len(files) != 1:
            sys.exit(f"instructions: expected one worker profile, got {[f.name for f in files]}")
        return total_ir(files[0]), files[0]

    def close(self):
        stop(self.upstream)


def main():
    if not BIN.exists() or not shutil.which("nginx") or not shutil.which("valgrind"):
        sys.exit(f"instructions: needs nginx, valgrind and {BIN}")
    load = os.getloadavg()
    print(f"instructions: load average {load[0]:.2f}; N1={N1}, N2={N2}, {CONNECTIONS} keep-alive "
          f"connections, one worker each", flush=True)
    with tempfile.TemporaryDirectory(prefix="gw-insn-") as d:
        b = Bench(d)
        try:
            for kind in KINDS:
                per = {}
                for who in ("gateway", "nginx"):
                    i1, prof1 = b.run(who, kind, N1, "callgrind")
                    i2, prof = b.run(who, kind, N2, "callgrind")
                    per[who] = (i2 - i1) / (N2 - N1)
                    line = f"instructions: {kind}, {who}: {per[who]:,.0f} instructions per request"
                    if STRACE:
                        _, t1 = b.run(who, kind, N1, "strace")
                        _, t2 = b.run(who, kind, N2, "strace")
                        calls = {k: (t2.get(k, 0) - t1.get(k, 0)) / (N2 - N1) for k in set(t1) | set(t2)}
                        top = ", ".join(f"{k} {v:.2f}" for k, v in sorted(calls.items(), key=lambda kv: -kv[1])
                                        if v >= 0.05)
                        line += f"; {sum(calls.values()):.2f} system calls per request ({top})"
                    print(line, flush=True)
                    if os.environ.get("INSN_KEEP"):
                        # Both profiles: a function's cost per request is the difference of the two.
                        shutil.copy2(prof1, os.environ["INSN_KEEP"] + f"/{who}.{kind}.{N1}.callgrind")
                        shutil.copy2(prof, os.environ["INSN_KEEP"] + f"/{who}.{kind}.{N2}.callgrind")
                print(f"instructions: {kind}: gateway / nginx proxy = {per['gateway'] / per['nginx']:.2f}x "
                      f"instructions per request (target <= 1.1x CPU)", flush=True)
        finally:
            b.close()


if __name__ == "__main__":
    main()
