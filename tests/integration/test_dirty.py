"""The dirty pool through the real binary and the test app's jobs (tests/support/test_app.cpp): calls,
typed errors, timeouts, crashes, SIGSTOP, reloads, stops, the bounded queue, cancellation, streams."""
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

from harness import SANITIZED, TEST_BIN, ServerTest, children, cmdline, dirty_workers, http_get, http_workers, wait_until


def call(port, kind, payload="", deadline_ms=10000, timeout=30):
    """(status, body) of GET /dirty; the body parsed as JSON for errors."""
    status, headers, body = http_get(port, f"/dirty?kind={kind}&payload={payload}&deadline_ms={deadline_ms}",
                                     timeout=timeout)
    if status != 200:
        return status, json.loads(body), headers
    return status, body.decode(), headers


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


class CallLoad:
    """Threads calling `kind` in a loop until stopped; every outcome kept with how long it took."""

    def __init__(self, port, kind, payload, threads=4, deadline_ms=5000):
        self.port, self.kind, self.payload, self.deadline_ms = port, kind, payload, deadline_ms
        self.results = []   # (status, error or "", seconds)
        self.stop_flag = threading.Event()
        self.threads = [threading.Thread(target=self.loop) for _ in range(threads)]

    def loop(self):
        while not self.stop_flag.is_set():
            t0 = time.monotonic()
            try:
                status, body, _ = call(self.port, self.kind, self.payload, self.deadline_ms, timeout=15)
                error = "" if status == 200 else body["error"]
            except OSError as e:
                status, error = None, repr(e)
            self.results.append((status, error, time.monotonic() - t0))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        for t in self.threads:
            t.join(30)

    def failures(self):
        return [r for r in self.results if r[0] != 200]


class DirtyTest(ServerTest):
    def scratch(self):
        """A directory for files the test app reads or writes (made before the server starts)."""
        import tempfile
        d = tempfile.mkdtemp(prefix="agente-dirty-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", d]))
        return d

    def pool(self, settings=(), http=1, dirty=2, env=None, **kwargs):
        s = self.server([f"workers = {http}", f"dirty_workers = {dirty}"] + list(settings), binary=TEST_BIN,
                        env=env, **kwargs)
        s.start(workers=http + dirty)
        self.assertTrue(wait_until(lambda: call(s.port, "test.pid")[0] == 200, 10), s.read_log())
        return s


class Calls(DirtyTest):
    def test_a_call_returns_the_jobs_result_and_state_lives_in_the_worker(self):
        s = self.pool(["proc_name = \"pool-test\""], dirty=1)
        self.assertEqual(call(s.port, "test.echo", "hello")[:2], (200, "hello"))
        first = call(s.port, "test.count")[1].split()
        second = call(s.port, "test.count")[1].split()
        self.assertEqual(first[0], second[0])                    # one dirty worker, one process
        self.assertEqual(int(second[1]), int(first[1]) + 1)      # its state lived between calls
        titles = [cmdline(p) for p in children(s.pid)]
        self.assertIn("agente-hibrido: dirty worker [pool-test]", titles)
        self.assertIn("agente-hibrido: worker [pool-test]", titles)

    def test_errors_are_typed(self):
        s = self.pool(dirty=1)
        status, body, _ = call(s.port, "test.fail")
        self.assertEqual((status, body), (500, {"error": "job_failed", "code": "bad_input"}))
        status, body, _ = call(s.port, "test.throw")
        self.assertEqual((status, body), (500, {"error": "job_failed", "code": "error"}))
        status, body, _ = call(s.port, "test.nope")
        self.assertEqual((status, body), (500, {"error": "job_failed", "code": "unknown_kind"}))
        status, body, _ = call(s.port, "test.sleep", "2000", deadline_ms=200)
        self.assertEqual((status, body["error"]), (504, "timeout"))

    def test_no_pool_no_client(self):
        s = self.server(["workers = 1"], binary=TEST_BIN).start(workers=1)
        self.assertEqual(http_get(s.port, "/dirty?kind=test.echo")[0], 501)
        self.assertEqual(dirty_workers(s), [])

    def test_a_streamed_jobs_chunks_arrive_as_they_are_made(self):
        s = self.pool(dirty=1)
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as c:
            c.sendall(b"GET /dirty-stream?payload=4,300 HTTP/1.1\r\nHost: x\r\n\r\n")
            arrivals, data = [], b""
            while b"end " not in data:
                chunk = c.recv(65536)
                if not chunk:
                    break
                data += chunk
                now = time.monotonic() * 1000   # CLOCK_MONOTONIC, the job's clock too
                arrivals += [(int(m.group(1)), now) for m in re.finditer(rb"chunk \d+ at (\d+)", chunk)]
        self.assertEqual(len(arrivals), 4, data)
        for made, arrived in arrivals:
            self.assertLess(arrived - made, 150)                # not held back until the job ends
        self.assertGreater(arrivals[-1][0] - arrivals[0][0], 800)
        self.assertIn(b"end none done", data)

    def test_a_client_that_goes_away_cancels_its_job(self):
        events = os.path.join(self.scratch(), "events")
        s = self.pool(dirty=1, env={"AGENTE_TEST_EVENTS": events})
        with socket.create_connection(("127.0.0.1", s.port), timeout=5) as c:
            c.sendall(b"GET /dirty?kind=test.check_cancel HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertTrue(wait_until(lambda: "check_cancel started" in read(events), 5))
        t0 = time.monotonic()
        self.assertTrue(wait_until(lambda: "job check_cancel cancelled" in read(events), 5), read(events))
        self.assertLess(time.monotonic() - t0, 1.0)
        self.assertIn("call cancelled test.check_cancel", read(events))


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


class Supervision(DirtyTest):
    def test_a_job_past_dirty_timeout_is_killed_logged_and_replaced_and_its_caller_gets_a_timeout(self):
        s = self.pool(["dirty_timeout = 2"], dirty=1)
        victim = dirty_workers(s)[0]
        t0 = time.monotonic()
        status, body, _ = call(s.port, "test.hang", "20000", deadline_ms=30000)
        self.assertEqual((status, body["error"]), (504, "timeout"))
        self.assertLess(time.monotonic() - t0, 3.5)
        self.assertTrue(s.wait_log(rf"\[CRITICAL\] DIRTY WORKER TIMEOUT \(pid:{victim}\)", 5), s.read_log())
        self.assertTrue(s.wait_log(rf"Dirty worker \(pid:{victim}\) killed for timeout", 5), s.read_log())
        self.assertTrue(wait_until(lambda: dirty_workers(s) and victim not in dirty_workers(s), 5))
        self.assertTrue(wait_until(lambda: call(s.port, "test.pid")[0] == 200, 5))

    def test_sigkill_under_call_load_fails_only_the_calls_in_flight_on_it(self):
        s = self.pool(["dirty_threads = 2"], http=2, dirty=2)
        victim = dirty_workers(s)[0]
        with CallLoad(s.port, "test.sleep", "50", threads=6) as load:
            time.sleep(1.0)
            t0 = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            replaced = wait_until(lambda: len(dirty_workers(s)) == 2 and victim not in dirty_workers(s), 2)
            took = time.monotonic() - t0
            time.sleep(1.0)
        self.assertTrue(replaced)
        self.assertLess(took, 1.0)
        failures = load.failures()
        self.assertLessEqual(len(failures), 2, failures)          # its two threads' calls, no more
        self.assertTrue(all(f[1] == "worker_died" for f in failures), failures)
        self.assertLess(max(r[2] for r in load.results), 3.0)     # nothing hung
        self.assertGreater(len(load.results), 50)
        self.assertTrue(s.wait_log(rf"Dirty worker \(pid:{victim}\) crashed with signal SIGKILL"))

    def test_idempotent_calls_are_retried_on_another_worker_when_theirs_dies(self):
        s = self.pool(["dirty_threads = 2"], http=2, dirty=2)
        with CallLoad(s.port, "test.sleep_idempotent", "50", threads=6) as load:
            time.sleep(1.0)
            for victim in dirty_workers(s)[:1]:
                os.kill(victim, signal.SIGKILL)
            time.sleep(1.5)
        self.assertEqual(load.failures(), [])
        self.assertTrue(s.wait_log(r"Dirty call test.sleep_idempotent retried on another dirty worker"))

    def test_sigstop_is_a_dirty_worker_timeout(self):
        s = self.pool(["dirty_timeout = 2"], dirty=1)
        hung = dirty_workers(s)[0]
        os.kill(hung, signal.SIGSTOP)
        t0 = time.monotonic()
        status, body, _ = call(s.port, "test.echo", "x", deadline_ms=30000)
        self.assertEqual((status, body["error"]), (504, "timeout"))   # capped at dirty_timeout
        self.assertTrue(wait_until(lambda: hung not in dirty_workers(s), 6), s.read_log())
        self.assertLess(time.monotonic() - t0, 2 + 2.5)
        self.assertRegex(s.read_log(), rf"DIRTY WORKER TIMEOUT \(pid:{hung}\)")
        # Logged when the master reaps it, which may come after the process is gone from /proc.
        self.assertTrue(s.wait_log(rf"Dirty worker \(pid:{hung}\) killed for timeout", 5), s.read_log())
        self.assertTrue(wait_until(lambda: call(s.port, "test.echo", "y")[:2] == (200, "y"), 5))

    def test_hup_under_call_load_fails_no_call(self):
        s = self.pool(["dirty_threads = 2"], http=2, dirty=2)
        old = set(dirty_workers(s))
        with CallLoad(s.port, "test.sleep", "30", threads=6) as load:
            for generation in (2, 3):
                time.sleep(1.0)
                s.signal(signal.SIGHUP)
                self.assertTrue(wait_until(lambda: f"serving (generation {generation})" in s.read_log(), 10))
            time.sleep(1.5)
        self.assertEqual(load.failures(), [])
        self.assertGreater(len(load.results), 50)
        self.assertTrue(wait_until(lambda: len(dirty_workers(s)) == 2 and not old & set(dirty_workers(s)), 10))

    def test_term_with_calls_in_flight_answers_them_then_stops(self):
        events = os.path.join(self.scratch(), "events")
        s = self.pool(["dirty_threads = 2"], http=1, dirty=2, env={"AGENTE_TEST_EVENTS": events})
        results = []
        threads = [threading.Thread(target=lambda: results.append(call(s.port, "test.sleep", "1000")[0]))
                   for _ in range(4)]
        for t in threads:
            t.start()
        # All four running (two workers, two threads each) before TERM; they sleep 1 s from here.
        self.assertTrue(wait_until(lambda: read(events).count("job sleep started") == 4, 5), read(events))
        s.signal(signal.SIGTERM)
        for t in threads:
            t.join(10)
        self.assertEqual(results, [200] * 4)
        self.assertEqual(s.wait_exit(10), 0)
        log = s.read_log()
        self.assertLess(log.index("Worker (pid:"), log.index("Dirty worker draining"))  # HTTP workers first
        self.assertEqual(len(re.findall(r"Dirty worker \(pid:\d+\) stopped", log)), 2)

    def test_http_workers_answer_only_once_the_pool_serves(self):
        # A slow dirty boot (a model loading): /health must not answer before the jobs can run, or the
        # first calls fail (the agent's first turn was not stored).
        s = self.server(["workers = 1", "dirty_workers = 1"], binary=TEST_BIN,
                        env={"AGENTE_TEST_DIRTY_BOOT_DELAY_MS": "1500"})
        s.start(workers=2)
        self.assertEqual(call(s.port, "test.echo", "first")[:2], (200, "first"), s.read_log())

    def test_dirty_boot_failure_backs_off_then_start_up_fails(self):
        s = self.server(["workers = 1", "dirty_workers = 1"], binary=TEST_BIN)
        flag = os.path.join(s.dir, "fail")
        open(flag, "w").close()
        s.env["AGENTE_TEST_DIRTY_BOOT_FAIL_FILE"] = flag
        s.start(wait=False)
        self.assertEqual(s.wait_exit(15), 3, s.read_log())
        self.assertEqual(len(re.findall(r"Dirty worker \(pid:\d+\) booted and failed", s.read_log())), 3)
        self.assertIn("No dirty worker could boot", s.read_log())

    def test_ttin_and_ttou_move_the_http_workers_only(self):
        s = self.pool(http=1, dirty=2)
        s.signal(signal.SIGTTIN)
        self.assertTrue(wait_until(lambda: len(http_workers(s)) == 2, 5))
        s.signal(signal.SIGTTOU)
        self.assertTrue(wait_until(lambda: len(http_workers(s)) == 1, 5))
        self.assertEqual(len(dirty_workers(s)), 2)

    def test_a_reload_can_start_and_remove_the_pool(self):
        s = self.server(["workers = 1"], binary=TEST_BIN).start(workers=1)
        s.write_conf(["workers = 1", "dirty_workers = 1"])
        s.signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: call(s.port, "test.echo", "on")[:2] == (200, "on"), 10), s.read_log())
        s.write_conf(["workers = 1", "dirty_workers = 0"])
        s.signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: not dirty_workers(s) and http_get(s.port, "/dirty")[0] == 501, 10))


class BackPressure(DirtyTest):
    def test_a_full_queue_refuses_at_once_with_retry_after_and_memory_stays_flat(self):
        events = os.path.join(self.scratch(), "events")
        s = self.pool(["dirty_threads = 1", "dirty_backlog = 2"], http=1, dirty=1, env={"AGENTE_TEST_EVENTS": events})
        busy = [threading.Thread(target=lambda: call(s.port, "test.sleep", "4000")) for _ in range(5)]
        for t in busy:
            t.start()
        # One runs, the backlog holds the next three (Linux admits a listen(2) backlog + 1), the fifth
        # was refused (its thread is done).
        self.assertTrue(wait_until(lambda: "job sleep started" in read(events)
                                   and sum(not t.is_alive() for t in busy) == 1, 5), read(events))
        worker = http_workers(s)[0]
        before = rss_kb(worker)
        t0 = time.monotonic()
        refused = [call(s.port, "test.echo", "x") for _ in range(300)]
        took = time.monotonic() - t0
        self.assertTrue(all(r[0] == 503 and r[1]["error"] == "unavailable" for r in refused), refused[:3])
        self.assertEqual(refused[0][2].get("retry-after"), "1")
        self.assertLess(took / len(refused), 0.05)                # at once, not after a wait
        if not SANITIZED:   # ASan's quarantine grows RSS by what was freed (harness.SANITIZED)
            self.assertLess(rss_kb(worker) - before, 2048)
        for t in busy:
            t.join(20)

    def test_no_dirty_worker_ready_is_unavailable_at_once(self):
        flag = os.path.join(self.scratch(), "fail")
        s = self.pool(dirty=1, env={"AGENTE_TEST_DIRTY_BOOT_FAIL_FILE": flag})
        open(flag, "w").close()   # its replacement cannot boot: no ready worker while it backs off
        os.kill(dirty_workers(s)[0], signal.SIGKILL)
        self.assertTrue(s.wait_log(r"Dirty worker \(pid:\d+\) booted and failed"))
        t0 = time.monotonic()
        status, body, _ = call(s.port, "test.echo", deadline_ms=5000)
        self.assertEqual((status, body["error"]), (503, "unavailable"))
        self.assertLess(time.monotonic() - t0, 0.5)
        os.unlink(flag)
        self.assertTrue(wait_until(lambda: call(s.port, "test.echo")[0] == 200, 10))


class Metrics(DirtyTest):
    """GET /metrics counts the dirty pool: its workers, calls by outcome and their durations, a dirty
    worker's crash under pool="dirty"."""

    def test_calls_outcomes_workers_and_a_crash_are_counted(self):
        from test_metrics import metrics, value
        s = self.pool(dirty=1)
        before = metrics(s.port)
        for _ in range(3):
            self.assertEqual(call(s.port, "test.echo", "x")[0], 200)
        self.assertNotEqual(call(s.port, "test.fail")[0], 200)
        m = metrics(s.port)
        self.assertEqual(value(m, "agente_dirty_calls_total", outcome="ok") - value(before, "agente_dirty_calls_total", outcome="ok"), 3)
        self.assertEqual(value(m, "agente_dirty_calls_total", outcome="job_failed"), 1)
        self.assertEqual(value(m, "agente_dirty_call_duration_seconds_count"), value(m, "agente_dirty_calls_total"))
        self.assertEqual(value(m, "agente_dirty_calls_pending"), 0)
        self.assertEqual(value(m, "agente_workers", pool="dirty", state="ready"), 1)
        self.assertEqual(value(m, "agente_worker_starts_total", pool="dirty"), 1)
        victim = dirty_workers(s)[0]
        os.kill(victim, signal.SIGKILL)
        self.assertTrue(wait_until(lambda: dirty_workers(s) and victim not in dirty_workers(s), 10))
        self.assertTrue(wait_until(lambda: value(metrics(s.port), "agente_worker_exits_total", pool="dirty",
                                                 reason="crash") == 1, 10))
        m = metrics(s.port)
        self.assertEqual(value(m, "agente_worker_exits_total", pool="http"), 0)
        self.assertEqual(value(m, "agente_worker_starts_total", pool="dirty"), 2)
