"""Starts the real binary on an ephemeral loopback port and drives it with real sockets and signals.

Every wait is on readiness (a port answering, a child count, a log line), bounded by a deadline."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

BIN = os.environ.get("AGENTE_BIN", os.path.join(os.path.dirname(__file__), "../../build/agente-hibrido"))
TEST_BIN = os.environ.get("AGENTE_TEST_BIN", os.path.join(os.path.dirname(__file__), "../../build/tests/agente-hibrido-test"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout=10.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return sorted(int(p) for p in out)


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def dirty_workers(s):
    return [p for p in children(s.pid) if "dirty worker" in cmdline(p)]


def http_workers(s):
    return [p for p in children(s.pid) if "dirty worker" not in cmdline(p)]


def raw_request(port, data, timeout=5.0, host="127.0.0.1"):
    """Sends raw bytes, returns everything the server answers until it closes or goes quiet."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except socket.timeout:
            pass
        return out


def recv_until(sock, marker):
    """Bytes from `sock` until `marker` has arrived (None: until the peer closes)."""
    data = b""
    while marker is None or marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def status_of(response):
    m = re.match(rb"HTTP/1\.[01] (\d{3})", response)
    return int(m.group(1)) if m else None


def http_get(port, path="/health", timeout=5.0, headers=None):
    """One request on a fresh connection; returns (status, headers dict, body bytes)."""
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


class Server:
    def __init__(self, settings=(), binary=None, env=None, args=()):
        self.dir = tempfile.mkdtemp(prefix="agente-it-")
        self.port = free_port()
        self.conf = os.path.join(self.dir, "server.conf")
        self.log_path = os.path.join(self.dir, "error.log")
        self.binary = binary or BIN
        self.env = dict(os.environ, **(env or {}))
        self.args = list(args)
        self.write_conf(settings)
        self.proc = None

    def write_conf(self, settings, port=None):
        with open(self.conf, "w") as f:
            f.write(f'bind = "127.0.0.1:{port or self.port}"\n')
            for line in settings:
                f.write(line + "\n")

    def spawn(self):
        """Starts the process; subclasses change how (see test_systemd's SystemdServer)."""
        return subprocess.Popen([self.binary, "-c", self.conf] + self.args, stdout=self.log,
                                stderr=subprocess.STDOUT, env=self.env)

    def start(self, wait=True, workers=None):
        self.log = open(self.log_path, "ab")
        self.proc = self.spawn()
        if wait:
            if not wait_until(self.healthy, 15):
                raise AssertionError("server never answered /health:\n" + self.read_log())
            if workers is not None and not self.wait_workers(workers):
                raise AssertionError(f"expected {workers} workers, have {self.workers()}")
        return self

    def healthy(self):
        try:
            return http_get(self.port, timeout=1)[0] == 200
        except OSError:
            return False

    @property
    def pid(self):
        return self.proc.pid

    def workers(self):
        return children(self.pid)

    def wait_workers(self, n, timeout=10):
        return wait_until(lambda: len(self.workers()) == n, timeout)

    def signal(self, sig):
        os.kill(self.pid, sig)

    def read_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_log(self, pattern, timeout=10):
        return wait_until(lambda: re.search(pattern, self.read_log()), timeout)

    def wait_exit(self, timeout=15):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            kids = self.workers()
            self.proc.send_signal(signal.SIGQUIT)
            if self.wait_exit(5) is None:
                self.proc.kill()
                self.proc.wait()
            for k in kids:
                try:
                    os.kill(k, signal.SIGKILL)
                except OSError:
                    pass
        if self.proc:
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def slow_reader_exchanges(port, requests, piece=16 * 1024, pause=0.001, timeout=30):
    """Sends `requests` ((method, path, body, headers) each) one after the other on one kept-alive
    connection whose client reads each answer `piece` bytes at a time with a pause between, through
    a small receive buffer: an answer larger than the socket buffers (up to 4 MB for sending on
    loopback) leaves the server part of it to write later. Returns [(status, body bytes)]."""
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.connect()
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    out = []
    try:
        for method, path, body, headers in requests:
            c.request(method, path, body=body, headers=headers)
            r = c.getresponse()
            data = bytearray()
            while chunk := r.read(piece):
                data += chunk
                time.sleep(pause)
            out.append((r.status, bytes(data)))
    finally:
        c.close()
    return out


def concurrent_gets(port, path, n, timeout=10):
    """Starts n threads, each one GET; returns (threads, results) — results fill with statuses or errors."""
    import threading
    results = []

    def one():
        try:
            results.append(http_get(port, path, timeout=timeout)[0])
        except OSError as e:
            results.append(repr(e))
    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    return threads, results


def wrk(port, seconds=5, connections=50, path="/health"):
    """Keep-alive load from wrk; returns (requests, failures) where failures = socket errors + non-2xx/3xx."""
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", f"http://127.0.0.1:{port}{path}"],
                         capture_output=True, text=True, timeout=seconds + 30).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))
    failures = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    failures += int(m.group(1)) if m else 0
    return total, failures, out


class ChunkedReader:
    """A raw streamed POST: the response head, then the body's lines (NDJSON) or events (SSE) as they
    arrive, each with its arrival time, de-chunked by hand so nothing is buffered on our side."""

    def __init__(self, port, path, body, headers=(), timeout=10, clock=time.monotonic):
        self.clock = clock  # the gateway's tests compare arrivals with the fake upstream's wall clock
        payload = json.dumps(body).encode()
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json",
                f"Content-Length: {len(payload)}", *headers]
        self.sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
        self.raw = b""
        while b"\r\n\r\n" not in self.raw:
            self._recv()
        head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        self.head = head.decode()
        self.status = int(self.head.split()[1])
        self.text = ""
        self.ended = False

    def _recv(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.raw += data

    def _dechunk(self):
        while b"\r\n" in self.raw:
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

    def next(self, separator):
        self._dechunk()
        while separator not in self.text:
            if self.ended:
                return None
            self._recv()
            self._dechunk()
        item, self.text = self.text.split(separator, 1)
        return self.clock(), item

    def lines(self):
        out = []
        while (x := self.next("\n")) is not None:
            out.append((x[0], json.loads(x[1])))
        return out

    def sse_event(self):
        """(arrival time, JSON-RPC object of the event's data line) or None at the end."""
        x = self.next("\n\n")
        if x is None:
            return None
        data = "".join(line[5:].strip() for line in x[1].split("\n") if line.startswith("data:"))
        return x[0], json.loads(data)

    def close(self):
        self.sock.close()


class ServerTest(unittest.TestCase):
    """Starts no server itself; tracks the ones a test starts and stops them afterwards."""

    def server(self, settings=(), **kwargs):
        s = Server(settings, **kwargs)
        self.addCleanup(s.stop)
        return s
