#!/usr/bin/env python3
"""Memory per held stream: opens N streamed requests to one gateway worker against an upstream that
stays silent, waits until the worker holds them all, and prints the worker's RSS growth per stream.
Usage: streams.py GATEWAY_PORT WORKER_PID N"""
import asyncio
import json
import sys


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])


async def open_stream(port, body):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer bench-key\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    await w.drain()
    return r, w


async def main():
    port, pid, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    body = json.dumps({"model": "held", "stream": True, "fake_delay_ms": 600000}).encode()
    before = rss_kib(pid)
    conns = []
    for i in range(0, n, 250):
        conns += await asyncio.gather(*(open_stream(port, body) for _ in range(min(250, n - i))))
    # Every stream has its keep-alive comment once the worker holds it (stream_keepalive is short).
    await asyncio.gather(*(r.readuntil(b": keep-alive") for r, _ in conns))
    after = rss_kib(pid)
    print(json.dumps({"streams": n, "rss_before_kib": before, "rss_after_kib": after,
                      "per_stream_kib": round((after - before) / n, 2)}))
    for _, w in conns:
        w.close()


asyncio.run(main())
