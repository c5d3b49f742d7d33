"""Upstream keep-alive: connections are reused, and one the upstream closed while it sat idle in the
pool is never a client's error. The fake upstream's fake_close makes the race certain instead of
rare: "next" reads the request that reuses the connection and closes without a byte of answer (an
idle timeout firing as the request arrives), "reset" does the same with a TCP reset, "after" closes
right after its answer (the FIN races the next request)."""
import threading
import unittest

from test_gateway import CHAT, GatewayTest, SseClient, post

REQUESTS = 24
THREADS = 6


class UpstreamKeepAliveTest(GatewayTest):
    def start_one_worker(self):
        # One worker, so that every request after the first meets a pooled connection; no retries of
        # the attempt loop, so that only the client's own stale-connection handling can save a call.
        return self.start(workers=1, gateway=["retries = 0", "upstream_keepalive_connections = 32"],
                          providers={"main": []}, models={"m": [("main", "ok")]})

    def api_connections(self):
        return [c for c in self.fake.log()["connections"] if c["api"]]

    def test_connections_are_reused(self):
        s = self.start_one_worker()
        for i in range(5):
            status, _, body = post(s.port, CHAT, {"model": "m", "stream": i % 2 == 1})
            self.assertEqual(status, 200, body)
        conns = self.api_connections()
        self.assertEqual(len(conns), 1, conns)
        self.assertEqual(conns[0]["requests"], 5)
        self.assertIsNone(conns[0]["closed"])

    def sequential(self, port, close, stream=False):
        errors = []
        for i in range(REQUESTS):
            body = {"model": "m", "fake_close": close, "messages": [{"role": "user", "content": str(i)}]}
            if stream:
                body["stream"] = True
                c = SseClient(port, body)
                events = [e for _, e in c.events()]
                c.close()
                if c.status != 200 or events[-1] != "data: [DONE]" or any('"error"' in e for e in events):
                    errors.append((i, c.status, events))
            else:
                status, _, answer = post(port, CHAT, body)
                if status != 200:
                    errors.append((i, status, answer))
        return errors

    def assert_race_was_met(self, at_least):
        dropped = sum(c["dropped"] for c in self.fake.log()["connections"])
        self.assertGreaterEqual(dropped, at_least, "the upstream never closed a reused connection: the test tests nothing")

    def test_idle_connection_closed_as_the_request_arrives(self):
        s = self.start_one_worker()
        self.assertEqual(self.sequential(s.port, "next"), [])
        self.assert_race_was_met(REQUESTS - 1)

    def test_idle_connection_reset_as_the_request_arrives(self):
        s = self.start_one_worker()
        self.assertEqual(self.sequential(s.port, "reset"), [])
        self.assert_race_was_met(REQUESTS - 1)

    def test_idle_connection_closed_as_a_stream_request_arrives(self):
        s = self.start_one_worker()
        self.assertEqual(self.sequential(s.port, "next", stream=True), [])
        self.assert_race_was_met(REQUESTS - 1)

    def test_connection_closed_right_after_the_answer(self):
        s = self.start_one_worker()
        self.assertEqual(self.sequential(s.port, "after"), [])
        self.assertEqual(sum(c["requests"] for c in self.api_connections()), REQUESTS)

    def test_concurrent_calls_over_a_pool_of_closed_connections(self):
        # Several idle connections, every one of them closed by the upstream at its next request: a
        # call whose pooled connection was stale must not be retried on another stale one.
        s = self.start_one_worker()
        errors, lock = [], threading.Lock()

        def client(n):
            for i in range(REQUESTS // 2):
                status, _, answer = post(s.port, CHAT, {"model": "m", "fake_close": "next", "n": f"{n}-{i}"})
                if status != 200:
                    with lock:
                        errors.append((n, i, status, answer))

        for _ in range(2):   # the second wave meets the idle connections the first one left
            threads = [threading.Thread(target=client, args=(n,)) for n in range(THREADS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
        self.assertEqual(errors, [])
        self.assert_race_was_met(THREADS)


if __name__ == "__main__":
    unittest.main()
