"""Capacity through the real binary (issue 16): max_requests holds under load, and clients past
workers x worker_connections are served, not shut out, with the shortage logged."""
import collections
import os
import signal
import socket
import threading
import time

from harness import TEST_BIN, ServerTest, concurrent_gets, http_get, raw_request, wrk


class MaxRequestsUnderLoad(ServerTest):
    def test_no_worker_serves_far_past_its_limit(self):
        limit, jitter, connections = 100, 20, 10
        s = self.server()
        accesslog = os.path.join(s.dir, "access.log")
        s.write_conf(["workers = 2", f"max_requests = {limit}", f"max_requests_jitter = {jitter}",
                      f'accesslog = "{accesslog}"', 'access_log_format = "%(p)s"'])
        s.start(workers=2)
        most, stop = [0], threading.Event()

        def count_processes():
            while not stop.is_set():
                most[0] = max(most[0], len(s.workers()))
                time.sleep(0.05)
        watcher = threading.Thread(target=count_processes)
        watcher.start()
        total, failures, out = wrk(s.port, seconds=4, connections=connections)
        stop.set()
        watcher.join()
        self.assertEqual(failures, 0, out)
        # Workers at their limit leave by themselves: none is left idle waiting to be drained.
        self.assertLessEqual(most[0], 8)
        self.assertTrue(s.wait_workers(2, 10), s.workers())
        s.signal(signal.SIGTERM)
        self.assertEqual(s.wait_exit(), 0)
        with open(accesslog) as f:
            served = collections.Counter(line.strip() for line in f if line.strip())
        self.assertGreaterEqual(sum(served.values()), total)
        # A worker at its limit takes no new connection and closes each open one after its answer:
        # at most one request more per connection open then (docs/operations.md).
        self.assertLessEqual(max(served.values()), limit + jitter + connections, served.most_common(3))
        self.assertGreaterEqual(len(served), total // (limit + jitter + connections))


    def test_the_request_at_the_limit_closes_its_connection_and_a_stream_ends_at_graceful_timeout(self):
        s = self.server(["workers = 1", "max_requests = 1", "graceful_timeout = 1"], binary=TEST_BIN).start()
        self.assertTrue(s.wait_log(r"Worker \(pid:\d+\) recycled"))  # the one start()'s first request retired
        t0 = time.monotonic()
        out = raw_request(s.port, b"GET /stream?n=100&ms=100 HTTP/1.1\r\nHost: x\r\n\r\n", timeout=15)
        head, _, body = out.partition(b"\r\n\r\n")
        self.assertIn(b"Connection: close", head)
        self.assertIn(b"event: end\ndata: 3", body)  # the handler's last event, reason draining
        self.assertTrue(body.endswith(b"0\r\n\r\n"), body[-50:])
        self.assertLess(time.monotonic() - t0, 8)  # cut after graceful_timeout, not its 10 s


class SlowClientsPastCapacity(ServerTest):
    def test_idle_heads_make_room_for_new_clients_and_the_shortage_is_logged(self):
        # 2 x 50 places, 150 clients that never finish their head: only making room can serve others
        # within the test (header_timeout is a minute).
        s = self.server(["workers = 2", "worker_connections = 50", "header_timeout = 60"]).start(workers=2)
        slow = []
        self.addCleanup(lambda: [c.close() for c in slow])
        for _ in range(150):
            c = socket.create_connection(("127.0.0.1", s.port), timeout=5)
            c.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            slow.append(c)
        self.assertTrue(s.wait_log(r"\[WARNING\] 50 worker_connections are not enough: closing connections idle"),
                        s.read_log())
        answered = 0
        for _ in range(30):
            try:
                answered += http_get(s.port, timeout=3)[0] == 200
            except OSError:
                pass
        self.assertEqual(answered, 30, s.read_log()[-2000:])
        closed = sum(1 for c in slow if self._closed(c))
        self.assertGreaterEqual(closed, 50)  # oldest first: the newest slow ones still wait
        self.assertFalse(self._closed(slow[-1]))
        # Rate-limited: a line per worker, not one per connection closed.
        self.assertLessEqual(s.read_log().count("worker_connections are not enough"), 4)

    def test_when_no_connection_is_idle_new_clients_wait_and_it_is_logged(self):
        # Connections just accepted are not closed either: their requests may be on the way.
        s = self.server(["workers = 1", "worker_connections = 2"], binary=TEST_BIN).start(workers=1)
        threads, results = concurrent_gets(s.port, "/slow?ms=1500", 3)
        [t.join() for t in threads]
        self.assertEqual(results, [200] * 3)  # the third waited in the listen queue, then was served
        self.assertRegex(s.read_log(), r"2 worker_connections are not enough: no connection idle long enough")

    @staticmethod
    def _closed(c):
        c.setblocking(False)
        try:
            return c.recv(1) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True
        finally:
            c.setblocking(True)


if __name__ == "__main__":
    import unittest
    unittest.main()
