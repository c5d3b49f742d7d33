"""GET /metrics through the real binary: the whole server's figures from any worker, exact across
workers and across a worker's death, checked by promtool (Debian's prometheus package); who may read
it; the gateway's upstream figures against the fake upstream."""
import os
import re
import shutil
import signal
import subprocess
import time
import unittest

from harness import ServerTest, TEST_BIN, http_get, wait_until
from test_gateway import CHAT, CLIENT_KEY, FakeUpstream, SseClient, gateway_conf, gateway_env, post

SAMPLE = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape(port, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    status, h, body = http_get(port, "/metrics", headers=headers)
    if status != 200:
        raise AssertionError(f"/metrics answered {status}: {body[:200]!r}")
    return body.decode()


def parse(text):
    """{(name, frozenset of labels): value} for every sample."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not Prometheus text: {line!r}"
        out[(m.group(1), frozenset(LABEL.findall(m.group(2) or "")))] = float(m.group(3))
    return out


def value(samples, name, **labels):
    """The sum of the samples of `name` whose labels include `labels` (0 when there is none)."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def metrics(port, token=None):
    return parse(scrape(port, token))


def new_connection_gets(port, path, n):
    pids = set()
    for _ in range(n):
        status, _, body = http_get(port, path)
        assert status == 200, status
        if path == "/health":
            pids.add(__import__("json").loads(body)["pid"])
    return pids


def promtool_check(test, text):
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    test.assertEqual(r.returncode, 0, r.stdout + r.stderr)


def held_connection_gets(port, connections, per_connection):
    """GET /health over `connections` keep-alive connections held open together, so that accept's
    balancing spreads them over the workers (one connection after another may all land on one worker,
    as they would on nginx); returns the pids that answered."""
    import http.client
    import json
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=5) for _ in range(connections)]
    pids = set()
    try:
        for _ in range(per_connection):
            for c in conns:
                c.request("GET", "/health")
                r = c.getresponse()
                assert r.status == 200, r.status
                pids.add(json.loads(r.read())["pid"])
    finally:
        for c in conns:
            c.close()
    return pids


class Counting(ServerTest):
    def test_requests_are_counted_exactly_across_workers(self):
        s = self.server(["workers = 2"]).start(workers=2)
        before = metrics(s.port)
        pids = held_connection_gets(s.port, 12, 10)
        self.assertEqual(len(pids), 2, "both workers must have served some")

        def grew(samples):
            return value(samples, "agente_http_requests_total", route="/health", method="GET", status="2xx") - \
                value(before, "agente_http_requests_total", route="/health", method="GET", status="2xx")
        # A worker counts a request once its answer is sent, so the client may read the last answer
        # (and scrape) a moment before it is counted: wait for 120, then hold it there exactly.
        wait_until(lambda: grew(metrics(s.port)) >= 120, 5)
        after = metrics(s.port)
        self.assertEqual(grew(after), 120)
        self.assertGreaterEqual(value(after, "agente_http_request_duration_seconds_count", route="/health"), 120)
        self.assertEqual(value(after, "agente_workers", generation="1", state="ready"), 2)
        self.assertEqual(value(after, "agente_worker_starts_total"), 2)
        self.assertGreaterEqual(value(after, "agente_http_requests_in_flight"), 1)   # the scrape itself
        # read by the master every second: there once a read came after the workers started
        self.assertTrue(wait_until(lambda: value(metrics(s.port), "agente_workers_resident_memory_bytes", pool="http") > 0, 10))

    def test_unmatched_and_invalid_requests_have_fixed_labels(self):
        s = self.server(["workers = 1"]).start(workers=1)
        for path in ("/no/such/path/1", "/no/such/path/2"):
            self.assertEqual(http_get(s.port, path)[0], 404)
        from harness import raw_request
        raw_request(s.port, b"GET / HTTP/9.9\r\nHost: x\r\n\r\n")
        m = metrics(s.port)
        self.assertEqual(value(m, "agente_http_requests_total", route="unmatched", status="4xx"), 2)
        self.assertEqual(value(m, "agente_http_requests_total", route="invalid", status="5xx"), 1)   # 505
        self.assertFalse([k for k in m if ("route", "/no/such/path/1") in k[1]], "a raw path became a label")

    def test_a_killed_workers_requests_stay_counted_and_its_exit_is_counted(self):
        s = self.server(["workers = 2"]).start(workers=2)
        new_connection_gets(s.port, "/health", 60)
        before = metrics(s.port)
        victim = s.workers()[0]
        os.kill(victim, signal.SIGKILL)
        self.assertTrue(wait_until(lambda: len(s.workers()) == 2 and victim not in s.workers(), 5))
        self.assertTrue(wait_until(s.healthy, 5))
        after = metrics(s.port)
        served = lambda m: value(m, "agente_http_requests_total", route="/health")
        # Its 60-odd requests were folded into the retired cells: nothing went backwards. (+1: the
        # readiness probe, and the scrape counted after its own answer.)
        self.assertGreaterEqual(served(after), served(before))
        self.assertEqual(value(after, "agente_worker_exits_total", reason="crash"),
                         value(before, "agente_worker_exits_total", reason="crash") + 1)
        self.assertEqual(value(after, "agente_worker_starts_total"), 3)

    def test_reloads_applied_and_refused_and_workers_by_generation(self):
        s = self.server(["workers = 1"]).start(workers=1)
        s.signal(signal.SIGHUP)
        self.assertTrue(s.wait_log(r"1 workers serving \(generation 2\)"))
        self.assertTrue(wait_until(lambda: value(metrics(s.port), "agente_worker_exits_total", reason="reload") == 1, 10))
        m = metrics(s.port)
        self.assertEqual(value(m, "agente_reloads_total", result="applied"), 1)
        self.assertEqual(value(m, "agente_generation"), 2)
        self.assertEqual(value(m, "agente_workers", generation="2"), 1)
        self.assertEqual(value(m, "agente_last_reload_refused"), 0)
        with open(s.conf, "a") as f:
            f.write("workers = \"many\"\n")
        s.signal(signal.SIGHUP)
        self.assertTrue(s.wait_log(r"Reload refused"))
        m = metrics(s.port)
        self.assertEqual(value(m, "agente_reloads_total", result="refused"), 1)
        self.assertEqual(value(m, "agente_last_reload_refused"), 1)
        self.assertEqual(value(m, "agente_generation"), 2)

    @unittest.skipUnless(shutil.which("promtool"), "promtool (Debian's prometheus package) is not installed")
    def test_promtool_accepts_the_text(self):
        s = self.server(["workers = 2"], binary=TEST_BIN).start(workers=2)
        for path in ("/health", "/items/a", "/items/b", "/nope", "/slow?ms=5", "/stream?n=2&ms=1"):
            http_get(s.port, path)
        promtool_check(self, scrape(s.port))


class Access(ServerTest):
    def test_a_token_is_required_when_set(self):
        s = self.server(["workers = 1", 'metrics_token = "m-tok-1234"']).start(workers=1)
        status, headers, body = http_get(s.port, "/metrics")
        self.assertEqual(status, 401)
        self.assertEqual(headers.get("www-authenticate"), "Bearer")
        self.assertEqual(http_get(s.port, "/metrics", headers={"Authorization": "Bearer wrong"})[0], 401)
        self.assertIn("agente_http_requests_total", scrape(s.port, "m-tok-1234"))

    def test_a_token_file_beside_the_config_is_read_by_every_worker(self):
        s = self.server(["workers = 2", 'metrics_token_file = "metrics.token"'])
        with open(os.path.join(s.dir, "metrics.token"), "w") as f:
            f.write("file-tok-5678\n")
        s.env.pop("CREDENTIALS_DIRECTORY", None)
        s.start(workers=2)
        for _ in range(6):   # new connections: both workers answer some
            self.assertIn("agente_workers", scrape(s.port, "file-tok-5678"))

    def test_without_a_token_loopback_is_served(self):
        s = self.server(["workers = 1"]).start(workers=1)
        self.assertEqual(http_get(s.port, "/metrics")[0], 200)


class GatewayMetrics(ServerTest):
    def setUp(self):
        self.fake = FakeUpstream()
        self.addCleanup(self.fake.stop)

    def test_upstream_outcomes_tokens_breakers_and_streams(self):
        conf = gateway_conf(self.fake.url, 2, ["retries = 1", "retry_backoff_ms = 1", "circuit_breaker_threshold = 2"],
                            {"p1": [], "p2": []},
                            {"chat": [("p1", "ok")], "fallback": [("p1", "fail500"), ("p2", "ok")],
                             "refused": [("p1", "reject400")]})
        s = self.server(conf, env=gateway_env()).start(workers=2)
        for _ in range(3):
            self.assertEqual(post(s.port, CHAT, {"model": "chat", "messages": []})[0], 200)
        sse = SseClient(s.port, {"model": "chat", "stream": True, "stream_options": {"include_usage": True},
                                 "fake_chunks": 2})
        self.assertEqual(sse.status, 200)
        sse.events()
        sse.close()
        self.assertEqual(post(s.port, CHAT, {"model": "refused", "messages": []})[0], 400)
        self.assertEqual(post(s.port, CHAT, {"model": "fallback", "messages": []})[0], 200)   # opens p1's breaker
        m = metrics(s.port)
        self.assertEqual(value(m, "agente_upstream_requests_total", provider="p1", model="ok", outcome="ok"), 4)
        self.assertEqual(value(m, "agente_upstream_requests_total", provider="p1", model="reject400",
                               outcome="client_error"), 1)
        self.assertEqual(value(m, "agente_upstream_requests_total", provider="p1", model="fail500",
                               outcome="server_error"), 2)   # one try and one retry
        self.assertEqual(value(m, "agente_upstream_retries_total", provider="p1", model="fail500"), 1)
        self.assertEqual(value(m, "agente_upstream_fallbacks_total", provider="p1", model="fail500"), 1)
        self.assertEqual(value(m, "agente_upstream_requests_total", provider="p2", model="ok", outcome="ok"), 1)
        # Whole answers: 3 in, 6 out each (4 of them); the stream's last chunk: 4 in, 2 out.
        self.assertEqual(value(m, "agente_upstream_tokens_total", provider="p1", model="ok", direction="in"), 3 * 3 + 4)
        self.assertEqual(value(m, "agente_upstream_tokens_total", provider="p1", model="ok", direction="out"), 3 * 6 + 2)
        self.assertEqual(value(m, "agente_upstream_ttfb_seconds_count", provider="p1", model="ok"), 4)
        self.assertEqual(value(m, "agente_upstream_duration_seconds_count", provider="p1", model="ok"), 4)
        self.assertEqual(value(m, "agente_upstream_breaker_state", provider="p1", state="open"), 1)   # 2 failures
        self.assertEqual(value(m, "agente_upstream_breaker_state", provider="p2", state="closed"), 1)
        self.assertEqual(value(m, "agente_streams_limit"), 10)
        self.assertEqual(value(m, "agente_streams_active"), 0)
        self.assertEqual(value(m, "agente_http_requests_total", route="/v1/chat/completions", method="POST",
                               status="2xx"), 5)
        if shutil.which("promtool"):
            promtool_check(self, scrape(s.port))

    def test_the_figures_are_the_same_from_every_worker(self):
        conf = gateway_conf(self.fake.url, 2, [], {"p1": []}, {"chat": [("p1", "ok")]})
        s = self.server(conf, env=gateway_env()).start(workers=2)
        for _ in range(4):
            post(s.port, CHAT, {"model": "chat", "messages": []})
        seen = set()
        for _ in range(10):   # new connections: both workers answer
            seen.add(value(metrics(s.port), "agente_upstream_requests_total", provider="p1", outcome="ok"))
        self.assertEqual(seen, {4})


if __name__ == "__main__":
    unittest.main()
