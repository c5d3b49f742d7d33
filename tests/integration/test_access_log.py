"""The access log through the real binary: written from each worker's own loop (one thread per worker),
every line there after a graceful stop, a reload or a reopen under load, stdout that stalls without
stalling the workers, and request bytes escaped so that a client cannot forge a field."""
import os
import re
import signal
import socket
import subprocess
import threading
import time

from harness import BIN, TEST_BIN, Server, ServerTest, http_get, http_workers, wait_until, wrk

LOADED = r'"GET /health\?load HTTP/1\.1" 200 '


def count_lines(paths, pattern=LOADED):
    n = 0
    for p in paths:
        if os.path.exists(p):
            with open(p, "rb") as f:
                n += len(re.findall(pattern.encode(), f.read()))
    return n


def tasks(pid):
    return sorted(os.listdir(f"/proc/{pid}/task"))


def load_in_background(port, seconds):
    """wrk on /health?load in a thread; the result lands in the returned dict once it ends."""
    result = {}

    def run():
        try:
            result["total"], result["failures"], result["out"] = wrk(port, seconds=seconds, connections=20, path="/health?load")
        except Exception as e:  # noqa: BLE001 - no figures from wrk: the test says so below
            result["total"], result["out"] = None, repr(e)
    t = threading.Thread(target=run)
    t.start()
    return t, result


def pipelined_gets(port, path, connections, per_connection, batch=100, timeout=30):
    """Keep-alive GETs sent `batch` at a time without waiting for answers; returns the 200s counted."""
    answered = [0] * connections

    def one(i):
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as c:
            request = f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
            for _ in range(per_connection // batch):
                c.sendall(request * batch)
                data, seen = b"", 0
                while seen < batch:
                    chunk = c.recv(1 << 16)
                    if not chunk:
                        return
                    data += chunk
                    seen = data.count(b"HTTP/1.1 200 ")
                answered[i] += seen
    threads = [threading.Thread(target=one, args=(i,)) for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 5)
    return sum(answered)


class StdoutServer(Server):
    """The server with stdout connected to `out` (a pipe's or a socket's write end), stderr to the log."""

    def __init__(self, out, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.out = out

    def spawn(self):
        return subprocess.Popen([self.binary, "-c", self.conf] + self.args, stdout=self.out, stderr=self.log, env=self.env)


class AccessLog(ServerTest):
    def test_a_worker_with_an_access_log_runs_one_thread(self):
        # Issue 17: exactly one thread per HTTP worker, the loop. The test app starts none of its own;
        # the real app's agent store lives in the dirty pool when there is one, and without one its
        # thread starts with the first agent call (none here); no access log writer thread.
        for binary, extra, dirty in ((TEST_BIN, [], 0), (BIN, [], 0), (BIN, ["dirty_workers = 1"], 1)):
            s = self.server(["workers = 2", f'accesslog = "{self._log_path()}"'] + extra, binary=binary)
            s.start(workers=2 + dirty)
            total, failures, out = wrk(s.port, seconds=1, connections=10)
            self.assertGreater(total, 0, out)
            workers = http_workers(s)
            self.assertEqual(len(workers), 2, s.read_log())
            for w in workers:
                self.assertEqual(len(tasks(w)), 1, f"{binary}: worker {w} runs threads {tasks(w)}")
            s.stop()

    def test_a_forged_user_agent_is_escaped(self):
        s = self.server(['accesslog = "-"', "access_log_buffer = 0"]).start()
        http_get(s.port, "/health", headers={"User-Agent": 'x" 200 "forged \\ ok'})
        line = s.wait_log(r'"GET /health HTTP/1\.1" 200 \d+ "-" "x\\x22 200 \\x22forged \\x5C ok"\n')
        self.assertTrue(line, s.read_log())

    def test_response_headers_are_logged_as_they_left(self):
        s = self.server(['accesslog = "-"', "access_log_buffer = 0",
                         "access_log_format = '%(s)s [%({Content-Type}o)s] [%({content-length}o)s] [%({X-None}o)s]'"])
        s.start()
        http_get(s.port, "/health")
        http_get(s.port, "/nowhere")
        self.assertTrue(s.wait_log(r"\n200 \[application/json\] \[\d+\] \[-\]\n"), s.read_log())
        self.assertTrue(s.wait_log(r"\n404 \[[^\]-]+\] \[\d+\] \[-\]\n"), s.read_log())

    def test_every_line_arrives_after_term_under_load(self):
        log = self._log_path()
        s = self.server(["workers = 2", f'accesslog = "{log}"']).start(workers=2)
        t, result = load_in_background(s.port, seconds=4)
        self.assertTrue(wait_until(lambda: count_lines([log]) > 0, 5), "no line written under load")
        s.signal(signal.SIGTERM)
        self.assertEqual(s.wait_exit(20), 0)
        t.join()
        self.assertTrue(result["total"], result["out"])
        self.assertEqual(count_lines([log]), result["total"], result["out"])

    def test_every_line_arrives_across_a_reload_under_load(self):
        log = self._log_path()
        s = self.server(["workers = 2", f'accesslog = "{log}"']).start(workers=2)
        old = set(s.workers())
        t, result = load_in_background(s.port, seconds=8)
        self.assertTrue(wait_until(lambda: count_lines([log]) > 0, 5), "no line written under load")
        s.signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: len(s.workers()) == 2 and not old & set(s.workers()), 20),
                        "the old workers never left")
        time.sleep(0.5)
        s.signal(signal.SIGTERM)  # before wrk ends: no answer can be logged that wrk has not counted
        self.assertEqual(s.wait_exit(20), 0)
        t.join()
        self.assertTrue(result["total"], result["out"])
        self.assertEqual(count_lines([log]), result["total"], result["out"])

    def test_every_line_arrives_across_a_reopen_under_load(self):
        log = self._log_path()
        s = self.server(["workers = 2", f'accesslog = "{log}"']).start(workers=2)
        t, result = load_in_background(s.port, seconds=6)
        self.assertTrue(wait_until(lambda: count_lines([log]) > 0, 5), "no line written under load")
        os.rename(log, log + ".1")  # logrotate
        s.signal(signal.SIGUSR1)
        self.assertTrue(wait_until(lambda: count_lines([log]) > 0, 10),
                        "nothing written to the reopened file")
        time.sleep(0.5)
        s.signal(signal.SIGTERM)
        self.assertEqual(s.wait_exit(20), 0)
        t.join()
        self.assertTrue(result["total"], result["out"])
        self.assertGreater(count_lines([log + ".1"]), 0)
        self.assertEqual(count_lines([log, log + ".1"]), result["total"], result["out"])

    def test_stdout_that_stalls_neither_stalls_the_workers_nor_loses_lines(self):
        # 12,000 lines are far more than a pipe or a socket buffer holds: the workers must go on
        # answering while nobody reads, keep the lines, and write them all once somebody does.
        for kind in ("pipe", "socket"):
            with self.subTest(stdout=kind):
                if kind == "pipe":
                    read_end, write_end = os.pipe()
                    reader = os.fdopen(read_end, "rb", buffering=0)
                else:
                    ours, theirs = socket.socketpair()
                    write_end = theirs.detach()
                    reader = ours.makefile("rb", buffering=0)
                s = StdoutServer(write_end, ["workers = 2", 'accesslog = "-"'])
                self.addCleanup(s.stop)
                s.start(workers=2)
                os.close(write_end)
                answered = pipelined_gets(s.port, "/health?piped", connections=8, per_connection=1500)
                self.assertEqual(answered, 12000, s.read_log())
                out = bytearray()
                drain = threading.Thread(target=lambda: out.extend(reader.read()))
                drain.start()
                s.signal(signal.SIGTERM)
                self.assertEqual(s.wait_exit(20), 0)
                drain.join(20)
                reader.close()
                if kind == "socket":
                    ours.close()
                self.assertEqual(len(re.findall(rb'"GET /health\?piped HTTP/1\.1" 200 ', out)), 12000)
                self.assertNotIn("lines lost", s.read_log())

    def _log_path(self):
        import tempfile
        d = tempfile.mkdtemp(prefix="agente-accesslog-")
        self.addCleanup(lambda: __import__("shutil").rmtree(d, ignore_errors=True))
        return os.path.join(d, "access.log")
