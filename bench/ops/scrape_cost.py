#!/usr/bin/env python3
"""What a GET /metrics scrape costs, by live workers (slots summed) and by upstream series: the
server's own time for it (its duration histogram for route="/metrics", head read to answer written),
the client's wall time, and the size of the text. Each run: a fresh server with N workers, some
traffic so that every family has series, then SCRAPES scrapes on one kept-alive connection.

Usage, from the project's root after ./scripts/build:
    bench/ops/scrape_cost.py [--workers 1,4,16,48] [--pairs 0,64] [--scrapes 300]
Prints a Markdown table (docs/benchmarks.md, "GET /metrics")."""
import argparse
import http.client
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../..")
BIN = os.path.join(ROOT, "build/agente-hibrido")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def conf(port, workers, pairs):
    lines = [f'bind = "127.0.0.1:{port}"', f"workers = {workers}", 'loglevel = "warning"', "timeout = 120"]
    if pairs:
        # Providers that never answer: the upstream series exist (labels are interned at boot) with
        # nothing counted in them; to fill them the bench sends one request per model below.
        lines += ["[gateway]", "retries = 0"]
        for p in range(8):
            lines += [f"[providers.p{p}]", f'base_url = "http://127.0.0.1:9/v1"', "connect_timeout = 1"]
        for m in range(pairs // 8):
            targets = ", ".join(f'{{ provider = "p{p}", model = "m{m}" }}' for p in range(8))
            lines += [f'[models."model{m}"]', f"targets = [{targets}]"]
    return "\n".join(lines) + "\n"


def get(conn, path, body=None):
    conn.request("POST" if body else "GET", path, body=body, headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    return r.status, r.read()


def run(workers, pairs, scrapes):
    d = tempfile.mkdtemp(prefix="scrape-cost-")
    port = free_port()
    with open(os.path.join(d, "server.conf"), "w") as f:
        f.write(conf(port, workers, pairs))
    log = open(os.path.join(d, "log"), "wb")
    proc = subprocess.Popen([BIN, "-c", os.path.join(d, "server.conf")], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                get(c, "/health")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        while len(subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()) < workers:
            time.sleep(0.2)
        for path in ("/health", "/", "/nope", "/v1/models"):   # series in the core's families
            for _ in range(workers * 4):
                get(http.client.HTTPConnection("127.0.0.1", port, timeout=30), path)
        for m in range(pairs // 8):   # an attempt at each target: every upstream series gets counts
            get(http.client.HTTPConnection("127.0.0.1", port, timeout=30), "/v1/chat/completions",
                b'{"model": "model%d", "messages": []}' % m)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        walls, size = [], 0
        for _ in range(scrapes):
            t0 = time.perf_counter()
            status, body = get(c, "/metrics")
            walls.append(time.perf_counter() - t0)
            assert status == 200
            size = len(body)
        # The server's own time, from the last scrape's text: every scrape is counted once it is written.
        status, body = get(c, "/metrics")
        text = body.decode()
        served = lambda name: float(re.search(rf'{name}{{route="/metrics"}} (\S+)', text).group(1))
        server_us = served("agente_http_request_duration_seconds_sum") / served("agente_http_request_duration_seconds_count") * 1e6
        lines = sum(1 for l in text.splitlines() if l and not l.startswith("#"))
        return {"workers": workers, "pairs": pairs, "server_us": server_us, "wall_p50_us": statistics.median(walls) * 1e6,
                "bytes": size, "samples": lines}
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", default="1,4,16,48")
    ap.add_argument("--pairs", default="0,64")
    ap.add_argument("--scrapes", type=int, default=300)
    a = ap.parse_args()
    print("| workers | upstream pairs | samples | bytes | server time per scrape | client wall, median |")
    print("|---:|---:|---:|---:|---:|---:|")
    for pairs in [int(x) for x in a.pairs.split(",")]:
        for w in [int(x) for x in a.workers.split(",")]:
            r = run(w, pairs, a.scrapes)
            print(f"| {r['workers']} | {r['pairs']} | {r['samples']} | {r['bytes']} | {r['server_us']:.0f} µs "
                  f"| {r['wall_p50_us']:.0f} µs |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
