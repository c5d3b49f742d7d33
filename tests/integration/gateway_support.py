"""Helpers for the gateway's integration tests: the fake upstream, server.conf sections, and a raw
SSE client that timestamps every event as it arrives."""
import json
import os
import select
import socket
import subprocess
import sys
import time
import urllib.request

from harness import Server, free_port, wait_until

FAKE = os.path.join(os.path.dirname(__file__), "../fake_upstream/fake_openai.py")
CLIENT_KEY = "sk-client-7f3a9c1e5b2d4068"
PROVIDER_KEY = "sk-provider-91be27d05c6a4f13"
ADMIN_TOKEN = "admin-token-5e8d1f2a7c3b"


class FakeUpstream:
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, FAKE], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        if not ready:
            self.proc.kill()
            raise AssertionError("fake upstream never reported its port")
        self.port = int(self.proc.stdout.readline().split()[1])
        self.url = f"http://127.0.0.1:{self.port}/v1"

    def log(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_log", timeout=5) as r:
            return json.load(r)

    def requests(self, model=None):
        return [r for r in self.log()["requests"] if model is None or r["body"].get("model") == model]

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()


def gateway_conf(fake_url, workers=2, gateway=(), providers=None, models=None):
    """server.conf lines: `providers` maps name -> extra lines, `models` maps public name -> targets
    as [(provider, upstream model)]."""
    lines = [f"workers = {workers}", "loglevel = \"debug\"", "accesslog = \"-\"", "", "[gateway]",
             f'api_keys = ["{CLIENT_KEY}"]', 'admin_token_env = "GW_TEST_ADMIN_TOKEN"', *gateway]
    for name, extra in (providers or {}).items():
        settings = {"base_url": f'"{fake_url}"', "api_key_env": '"GW_TEST_PROVIDER_KEY"', "connect_timeout": "1",
                    "first_byte_timeout": "3", "total_timeout": "5"}
        settings.update(line.split(" = ", 1) for line in extra)
        lines += ["", f"[providers.{name}]"] + [f"{k} = {v}" for k, v in settings.items()]
    for name, targets in (models or {}).items():
        t = ", ".join(f'{{ provider = "{p}", model = "{m}" }}' for p, m in targets)
        lines += ["", f'[models."{name}"]', f"targets = [{t}]"]
    return lines


def gateway_env():
    return {"GW_TEST_PROVIDER_KEY": PROVIDER_KEY, "GW_TEST_ADMIN_TOKEN": ADMIN_TOKEN}


def post(port, path, body, key=CLIENT_KEY, timeout=10, headers=None):
    """(status, headers, parsed JSON or raw bytes)."""
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = {"Content-Type": "application/json", **(headers or {})}
    if key:
        h["Authorization"] = f"Bearer {key}"
    try:
        c.request("POST", path, body=body if isinstance(body, (bytes, str)) else json.dumps(body), headers=h)
        r = c.getresponse()
        data = r.read()
        try:
            data = json.loads(data)
        except ValueError:
            pass
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


class SseClient:
    """A raw streamed request: the response head, then events as they arrive, each with its
    arrival time, parsed out of the chunked body by hand so nothing is buffered on our side."""

    def __init__(self, port, body, key=CLIENT_KEY, timeout=10):
        payload = json.dumps(body).encode()
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          + f"Authorization: Bearer {key}\r\nContent-Length: {len(payload)}\r\n\r\n".encode() + payload)
        self.raw = b""
        self.text = ""
        while b"\r\n\r\n" not in self.raw:
            self._recv()
        head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        self.status = int(head.split()[1])
        self.head = head.decode()
        self.ended = False

    def _recv(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.raw += data

    def _dechunk(self):
        while True:
            if b"\r\n" not in self.raw:
                return
            size_line, rest = self.raw.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                self.ended = True
                self.raw = b""
                return
            if len(rest) < size + 2:
                return
            self.text += rest[:size].decode()
            self.raw = rest[size + 2:]

    def next_event(self):
        """(arrival time, event text) or None at the end of the body."""
        self._dechunk()
        while "\n\n" not in self.text:
            if self.ended:
                return None
            self._recv()
            self._dechunk()
        ev, self.text = self.text.split("\n\n", 1)
        return time.time(), ev

    def events(self):
        out = []
        while (e := self.next_event()) is not None:
            out.append(e)
        return out

    def close(self):
        self.sock.close()
