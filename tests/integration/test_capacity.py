"""Capacity through the real binary (issue 16): max_requests holds under load."""
import collections
import os
import signal
import threading
import time

from harness import ServerTest, wrk


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


if __name__ == "__main__":
    import unittest
    unittest.main()
