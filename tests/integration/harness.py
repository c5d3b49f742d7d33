"""Starts the real binary on an ephemeral loopback port and drives it with real sockets and signals.

Every wait is on readiness (a port answering, a child count, a log line), bounded by a deadline."""
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import unittest

# Deadlines for readiness and answers scale with this (the sanitizer build sets 3, see
# tests/CMakeLists.txt): waits end on readiness anyway, so a larger bound costs nothing when all is well.
TIME_SCALE = float(os.environ.get("AGENTE_TEST_TIME_SCALE", "1"))


def scaled(seconds):
    """A deadline, or an upper bound on a duration, for this build's speed."""
    return seconds * TIME_SCALE


# The sanitizer build (tests/CMakeLists.txt sets the reports' directory). There, AddressSanitizer keeps
# freed memory in quarantine (up to 256 MB) and pads every block, so a process's RSS says nothing about
# what it keeps: a test that bounds memory growth checks it in the release build, and LeakSanitizer
# checks every process's exit here instead.
SANITIZED = bool(os.environ.get("AGENTE_SANITIZER_REPORTS"))


BIN = os.environ.get("AGENTE_BIN", os.path.join(os.path.dirname(__file__), "../../build/agente-hibrido"))
TEST_BIN = os.environ.get("AGENTE_TEST_BIN", os.path.join(os.path.dirname(__file__), "../../build/tests/agente-hibrido-test"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The master's shared memory (src/core/shared_memory.cpp): a directory of named regions, then the
# regions. The core's worker slots are the region "core.slots" (scoreboard.hpp: Slot).
_DIRECTORY_HEAD = struct.Struct("<QIIQI4xQ")          # magic, version, slots, total_bytes, count, fold_sequence
_DIRECTORY_ENTRY = struct.Struct("<64sQQQQIBB2x")     # name, offset, size, align, stride, cells, per_worker, on_exit
_DIRECTORY_MAGIC = 0x6167656e7465534d
_SLOT = struct.Struct("<qIiQI")                        # heartbeat_ns, state, pid, requests, connections
READY = 2                                              # WorkerState::ready: set once the worker accepts


def open_scoreboard(master):
    """A new fd on the master's shared memory (a memfd), as a worker it starts inherits one."""
    for fd in os.listdir(f"/proc/{master}/fd"):
        if "agente-hibrido-scoreboard" in os.readlink(f"/proc/{master}/fd/{fd}"):
            return os.open(f"/proc/{master}/fd/{fd}", os.O_RDWR)
    raise AssertionError(f"no scoreboard memfd in /proc/{master}/fd")


def scoreboard_slots(master):
    """[(state, pid, open connections)] of every slot, read from the master's shared memory."""
    fd = open_scoreboard(master)
    try:
        head = os.pread(fd, 4096 * 2, 0)
        magic, _, _, total, count, _ = _DIRECTORY_HEAD.unpack_from(head, 0)
        assert magic == _DIRECTORY_MAGIC, "not a scoreboard"
        for i in range(count):
            name, offset, _, _, stride, cells, _, _ = _DIRECTORY_ENTRY.unpack_from(
                head, _DIRECTORY_HEAD.size + i * _DIRECTORY_ENTRY.size)
            if name.rstrip(b"\0") == b"core.slots":
                data = os.pread(fd, stride * cells, offset)
                break
        else:
            raise AssertionError("no core.slots region")
    finally:
        os.close(fd)
    out = []
    for i in range(cells - 1):   # the last cell is the retired one
        _, state, pid, _, conns = _SLOT.unpack_from(data, i * stride)
        out.append((state, pid, conns))
    return out


def scoreboard(master):
    """{worker pid: (state, open connections)} of the slots in use."""
    return {pid: (state, conns) for state, pid, conns in scoreboard_slots(master) if pid}


def wait_until(predicate, timeout=10.0, interval=0.05):
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def started_at(pid):
    """When the kernel created process `pid`, in seconds of CLOCK_BOOTTIME (/proc/PID/stat's starttime,
    to a clock tick): when a fork happened, whatever the test's own scheduling did meanwhile."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()   # after "(comm)", which may hold blanks
    return int(fields[19]) / os.sysconf("SC_CLK_TCK")   # field 22 of stat(5); fields[0] is field 3


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
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=scaled(timeout))
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


class Server:
    bind_host = "127.0.0.1"   # subclasses serve elsewhere (test_cluster_netns: a host's every address)
    fixed_port = None         # ... or on a known port

    def __init__(self, settings=(), binary=None, env=None, args=()):
        self.dir = tempfile.mkdtemp(prefix="agente-it-")
        self.port = self.fixed_port or free_port()
        self.conf = os.path.join(self.dir, "server.conf")
        self.log_path = os.path.join(self.dir, "error.log")
        self.binary = binary or BIN
        self.env = dict(os.environ, **(env or {}))
        self.args = list(args)
        self.write_conf(settings)
        self.proc = None

    def write_conf(self, settings, port=None):
        with open(self.conf, "w") as f:
            f.write(f'bind = "{self.bind_host}:{port or self.port}"\n')
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
            # One worker answering /health says nothing of the others: under load (or ASan) a sibling
            # can still be booting, and a test that counts what each worker takes, or reads /status,
            # would see the transition. Started means every worker accepts.
            if workers is not None and not wait_until(self.all_ready, 15):
                raise AssertionError(f"workers not all ready: {self.workers()}, slots {self.slots()}")
        return self

    def slots(self):
        """scoreboard(master), or None when the master's memory is not ours to read (another namespace)."""
        try:
            return scoreboard(self.pid)
        except (OSError, AssertionError):
            return None

    def all_ready(self):
        """Whether every child of the master is a worker that said it is ready in the scoreboard."""
        slots = self.slots()
        if slots is None:
            return True   # nothing to wait on here: /health and the child count are all we can see
        kids = self.workers()
        return bool(kids) and all(slots.get(k, (0, 0))[0] == READY for k in kids)

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
            return self.proc.wait(scaled(timeout))
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
    """Keep-alive load from wrk; returns (requests, failures) where failures = socket errors + non-2xx/3xx.
    A response later than wrk's timeout counts as a socket error: 2 s, scaled to the build's speed (a
    worker that replaces a recycled one boots several times slower under the sanitizers)."""
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", f"--timeout={round(scaled(2))}s",
                          f"http://127.0.0.1:{port}{path}"],
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
