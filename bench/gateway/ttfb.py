#!/usr/bin/env python3
"""Time to first body byte, p50/p99 over N sequential keep-alive requests: ttfb.py PORT PATH BODY N."""
import socket
import statistics
import sys
import time

port, path, body, n = int(sys.argv[1]), sys.argv[2], sys.argv[3].encode(), int(sys.argv[4])
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
req = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer bench-key\r\n"
       f"Content-Length: {len(body)}\r\n\r\n").encode() + body
samples = []
for _ in range(n):
    t0 = time.perf_counter()
    s.sendall(req)
    buf = b""
    first = None
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    first = time.perf_counter()
    head, rest = buf.split(b"\r\n\r\n", 1)
    if b"chunked" in head.lower():
        while not rest.endswith(b"0\r\n\r\n"):
            rest += s.recv(65536)
    else:
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        while len(rest) < length:
            rest += s.recv(65536)
    samples.append((first - t0) * 1000)
samples.sort()
print(f"p50={statistics.median(samples):.3f}ms p99={samples[int(len(samples) * 0.99)]:.3f}ms")
