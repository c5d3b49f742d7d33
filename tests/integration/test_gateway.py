"""The LLM gateway through the real binary, several workers, against the fake OpenAI upstream
(tests/fake_upstream/fake_openai.py). The helpers at the top are shared with test_gateway_*.py."""
import json
import os
import select
import signal
import socket
import ssl
import subprocess
import sys
import time
import unittest
import urllib.request

from harness import (ChunkedReader, ServerTest, Server, free_port, http_get, raw_request, slow_reader_exchanges,
                     status_of, wait_until)

FAKE = os.path.join(os.path.dirname(__file__), "../fake_upstream/fake_openai.py")
sys.path.insert(0, os.path.dirname(FAKE))
from fake_openai import padding  # noqa: E402  (what a fake_content_bytes answer holds)
CLIENT_KEY = "sk-client-7f3a9c1e5b2d4068"
PROVIDER_KEY = "sk-provider-91be27d05c6a4f13"
ADMIN_TOKEN = "admin-token-5e8d1f2a7c3b"


class FakeUpstream:
    """`tls`: (certificate, key, CA file): serves HTTPS on 127.0.0.1, named `localhost` in its URL
    (what the certificate names); its log is read over TLS verified against that CA."""

    def __init__(self, tls=None):
        args = ["--tls-cert", tls[0], "--tls-key", tls[1]] if tls else []
        self.proc = subprocess.Popen([sys.executable, FAKE, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        if not ready:
            self.proc.kill()
            raise AssertionError("fake upstream never reported its port")
        self.port = int(self.proc.stdout.readline().split()[1])
        self.origin = f"https://localhost:{self.port}" if tls else f"http://127.0.0.1:{self.port}"
        self.url = self.origin + "/v1"
        self.context = ssl.create_default_context(cafile=tls[2]) if tls else None

    def log(self):
        with urllib.request.urlopen(f"{self.origin}/_log", timeout=5, context=self.context) as r:
            return json.load(r)

    def requests(self, model=None):
        return [r for r in self.log()["requests"] if model is None or r["body"].get("model") == model]

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()


def gateway_conf(fake_url, workers=2, gateway=(), providers=None, models=None, client_keys=True):
    """server.conf lines: `providers` maps name -> extra lines, `models` maps public name -> targets
    as [(provider, upstream model)]; without `client_keys` no api_keys (the endpoints are open)."""
    keys = [f'api_keys = ["{CLIENT_KEY}"]'] if client_keys else []
    lines = [f"workers = {workers}", "loglevel = \"debug\"", "accesslog = \"-\"", "", "[gateway]",
             *keys, 'admin_token_env = "GW_TEST_ADMIN_TOKEN"', *gateway]
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


def post(port, path, body, key=CLIENT_KEY, timeout=10, headers=None, method="POST"):
    """(status, headers, parsed JSON or raw bytes). A `body` of None with another method sends none."""
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        return request_on(c, path, body, key, headers, method)
    finally:
        c.close()


def request_on(c, path, body, key=CLIENT_KEY, headers=None, method="POST"):
    """post() on the open (keep-alive) http.client connection `c`."""
    h = {"Content-Type": "application/json", **(headers or {})}
    if key:
        h["Authorization"] = f"Bearer {key}"
    if not isinstance(body, (bytes, str)) and not (body is None and method != "POST"):
        body = json.dumps(body)
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    try:
        data = json.loads(data)
    except ValueError:
        pass
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data


class SseClient(ChunkedReader):
    """A streamed chat completion read event by event as it arrives (wall-clock arrival times)."""

    def __init__(self, port, body, key=CLIENT_KEY, timeout=10):
        super().__init__(port, "/v1/chat/completions", body, [f"Authorization: Bearer {key}"], timeout, time.time)

    def next_event(self):
        """(arrival time, event text) or None at the end of the body."""
        return self.next("\n\n")

    def events(self):
        out = []
        while (e := self.next_event()) is not None:
            out.append(e)
        return out


CHAT = "/v1/chat/completions"


def health(port):
    return json.loads(http_get(port, "/system/streaming-health")[2])


class GatewayTest(ServerTest):
    def setUp(self):
        self.fake = FakeUpstream()
        self.addCleanup(self.fake.stop)

    def start(self, workers=2, gateway=(), providers=None, models=None):
        s = self.server(gateway_conf(self.fake.url, workers, gateway, providers, models), env=gateway_env())
        s.start(workers=workers)
        self.addCleanup(self.assert_no_secret_in_log, s)
        return s

    def assert_no_secret_in_log(self, server):
        log = server.read_log()
        for secret in (CLIENT_KEY, PROVIDER_KEY, ADMIN_TOKEN):
            self.assertNotIn(secret, log)

    def wait_closed(self, since):
        """Time from `since` until the fake upstream saw its last connection close (None if never)."""
        def closed():
            conns = [c for c in self.fake.log()["connections"] if c["api"]]
            return conns and all(c["closed"] for c in conns) and max(c["closed"] for c in conns)
        t = wait_until(closed, timeout=5, interval=0.01)
        return t - since if t else None


class ProxyTest(GatewayTest):
    def setUp(self):
        super().setUp()
        self.s = self.start(
            gateway=["stream_keepalive = 0.3", "retries = 1", "retry_backoff_ms = 10"],
            providers={"main": [], "backup": [], "failing": [], "flaky": [], "slowpoke": ["total_timeout = 0.5"]},
            models={"fast": [("main", "ok")], "fallback": [("failing", "fail500"), ("backup", "ok")],
                    "flaky": [("flaky", "flaky")], "drop": [("main", "drop"), ("backup", "ok")],
                    "hang": [("main", "hang")], "timeout": [("slowpoke", "hang")], "silent": [("main", "silent")],
                    "limited": [("failing", "fail429")]})

    def test_non_streaming_answer_passes_through_with_overhead_header(self):
        status, headers, body = post(self.s.port, CHAT, {"model": "fast", "messages": [{"role": "user", "content": "hi"}]})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["choices"][0]["message"]["content"], "Hello from the fake upstream.")
        self.assertRegex(headers["x-agente-overhead-duration-ms"], r"^\d+\.\d{3}$")  # ms, as LiteLLM's
        self.assertLess(float(headers["x-agente-overhead-duration-ms"]), 50)
        seen = self.fake.requests("ok")[0]
        self.assertEqual(seen["headers"]["authorization"], f"Bearer {PROVIDER_KEY}")
        self.assertEqual((seen["headers"]["content-type"], seen["headers"]["accept"]), ("application/json",) * 2)
        self.assertEqual(seen["path"], "/v1/chat/completions")

    def test_models_and_embeddings(self):
        status, _, body = http_get(self.s.port, "/v1/models", headers={"Authorization": f"Bearer {CLIENT_KEY}"})
        self.assertEqual(status, 200)
        self.assertIn("fast", [m["id"] for m in json.loads(body)["data"]])
        status, _, body = post(self.s.port, "/v1/embeddings", {"model": "fast", "input": ["a", "b"]})
        self.assertEqual(status, 200, body)
        self.assertEqual(len(body["data"]), 2)
        self.assertEqual(self.fake.requests("ok")[-1]["path"], "/v1/embeddings")
        status, _, body = post(self.s.port, "/v1/embeddings", {"model": "fast", "input": ["a"], "stream": True})
        self.assertEqual(status, 400, body)
        self.assertIn("stream", body["error"]["message"])

    def test_body_is_forwarded_as_it_came_but_for_the_model(self):
        # Key order and a number no double holds survive only if the text is passed through (a JSON
        # tree sorted the keys and turned the integer into 1.2345678901234568e+22).
        raw = ('{"zeta": 1, "model" : "fast", "messages": [{"role": "user", "content": "caf\\u00e9", '
               '"model": "inner"}], "big": 12345678901234567890123, "alpha": 0.70}')
        status, _, body = post(self.s.port, CHAT, raw)
        self.assertEqual(status, 200, body)
        seen = self.fake.requests("ok")[-1]["body"]
        self.assertEqual(list(seen), ["zeta", "model", "messages", "big", "alpha"])
        self.assertEqual(seen["big"], 12345678901234567890123)
        self.assertEqual(seen["messages"][0], {"role": "user", "content": "café", "model": "inner"})

    def test_interim_1xx_answers_are_passed_over_and_101_refused(self):
        for stream in (False, True):
            body = {"model": "fast", "stream": stream, "fake_interim": [103, 100]}
            status, _, answer = post(self.s.port, CHAT, body)
            self.assertEqual(status, 200, answer)
            if stream:
                self.assertIn(b"data: [DONE]", answer)
            else:
                self.assertEqual(answer["choices"][0]["message"]["content"], "Hello from the fake upstream.")
        status, _, answer = post(self.s.port, CHAT, {"model": "fast", "fake_interim": [101]})
        self.assertEqual(status, 502, answer)
        self.assertIn("bad HTTP response", answer["error"]["message"])

    def test_plain_json_to_a_stream_request_is_passed_on_whole(self):
        status, headers, answer = post(self.s.port, CHAT, {"model": "fast", "stream": True, "fake_json_stream": True})
        self.assertEqual(status, 200, answer)
        self.assertTrue(headers["content-type"].startswith("application/json"), headers)
        self.assertEqual(answer["choices"][0]["message"]["content"], "Hello from the fake upstream.")

    def test_errors_have_openai_shape_and_status(self):
        cases = [(post(self.s.port, CHAT, {"model": "fast"}, key=None), 401),
                 (post(self.s.port, CHAT, {"model": "fast"}, key=CLIENT_KEY + "x"), 401),
                 (post(self.s.port, CHAT, b"{not json"), 400),
                 (post(self.s.port, CHAT, {"messages": []}), 400),
                 (post(self.s.port, CHAT, {"model": "nope"}), 404),
                 (post(self.s.port, CHAT, {"model": "timeout"}), 504),
                 (post(self.s.port, CHAT, {"model": "limited"}), 429)]
        for (status, _, body), want in cases:
            self.assertEqual(status, want, body)
            self.assertEqual(set(body["error"]), {"message", "type", "param", "code"})
        self.assertEqual(http_get(self.s.port, "/v1/models")[0], 401)

    def test_stream_events_arrive_as_the_upstream_sends_them(self):
        c = SseClient(self.s.port, {"model": "fast", "stream": True, "fake_chunks": 5, "fake_interval_ms": 200})
        self.addCleanup(c.close)
        self.assertEqual(c.status, 200)
        self.assertIn("text/event-stream", c.head)
        head = c.head.lower()
        self.assertEqual(head.count("cache-control: no-cache"), 1, c.head)  # the core's, not twice
        self.assertIn("x-accel-buffering: no", head)  # a proxy in front passes each event on at once
        events = c.events()
        self.assertEqual(events[-1][1], "data: [DONE]")
        data = [(t, json.loads(e[6:])) for t, e in events[:-1]]
        self.assertEqual(len(data), 5)
        for arrived, chunk in data:   # each within 50 ms of being sent, not held back for the next
            self.assertLess(arrived - chunk["sent_at"], 0.05)
        self.assertGreater(data[-1][0] - data[0][0], 0.7)
        self.assertEqual(self.fake.requests("ok")[-1]["headers"]["accept"], "text/event-stream")

    def test_a_slow_reader_gets_large_answers_whole(self):
        # 8 MB whole, then eight 1 MB events streamed, on one kept-alive connection read slowly: each
        # leaves the gateway in parts as the client reads, and nothing is cut, repeated or reordered.
        size = 1 << 20
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {CLIENT_KEY}"}
        whole = json.dumps({"model": "fast", "fake_content_bytes": 8 * size})
        streamed = json.dumps({"model": "fast", "stream": True, "fake_chunks": 8, "fake_content_bytes": size})
        got = slow_reader_exchanges(self.s.port, [("POST", CHAT, whole, headers), ("POST", CHAT, streamed, headers)])
        self.assertEqual([g[0] for g in got], [200, 200])
        self.assertTrue(json.loads(got[0][1])["choices"][0]["message"]["content"] == padding(8 * size))
        events = got[1][1].decode().split("\n\n")
        self.assertEqual(events[-2:], ["data: [DONE]", ""])
        contents = [json.loads(e[6:])["choices"][0]["delta"]["content"] for e in events[:-2]]
        self.assertEqual(len(contents), 8)
        self.assertTrue(all(c == padding(size) for c in contents))

    def test_fallback_on_a_failing_provider(self):
        status, _, body = post(self.s.port, CHAT, {"model": "fallback"})
        self.assertEqual(status, 200, body)
        self.assertEqual(len(self.fake.requests("fail500")), 2)   # one try plus one retry
        self.assertEqual(len(self.fake.requests("ok")), 1)

    def test_retry_before_the_first_byte(self):
        status, _, body = post(self.s.port, CHAT, {"model": "flaky", "stream": True, "fake_fail": 1})
        self.assertEqual(status, 200, body)
        self.assertEqual(len(self.fake.requests("flaky")), 2)

    def test_no_retry_or_fallback_after_the_first_byte(self):
        c = SseClient(self.s.port, {"model": "drop", "stream": True})
        self.addCleanup(c.close)
        events = [e for _, e in c.events()]
        self.assertEqual(len(events), 3, events)
        self.assertIn('"error"', events[-1])
        self.assertNotIn("[DONE]", "".join(events))
        self.assertEqual(len(self.fake.requests("drop")), 1)
        self.assertEqual(self.fake.requests("ok"), [])

    def test_keepalive_comments_while_the_upstream_is_silent(self):
        c = SseClient(self.s.port, {"model": "silent", "stream": True, "fake_delay_ms": 1000})
        self.addCleanup(c.close)
        events = [e for _, e in c.events()]
        self.assertGreaterEqual(events.count(": keep-alive"), 2, events)
        self.assertTrue(events[0].startswith(":"))
        self.assertEqual(events[-1], "data: [DONE]")

    def test_client_disconnect_mid_stream_closes_the_upstream_within_100ms(self):
        c = SseClient(self.s.port, {"model": "fast", "stream": True, "fake_chunks": 100, "fake_interval_ms": 100})
        self.assertIsNotNone(c.next_event())
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        t0 = time.time()
        c.close()
        took = self.wait_closed(t0)
        self.assertIsNotNone(took)
        self.assertLess(took, 0.1)
        self.assertEqual(wait_until(lambda: health(self.s.port)["web_worker_streams"]["active"] == 0, 5), True)

    def test_client_disconnect_while_waiting_closes_the_upstream_within_100ms(self):
        sock = socket.create_connection(("127.0.0.1", self.s.port))
        payload = json.dumps({"model": "hang"}).encode()
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n" % len(payload)
                     + f"Authorization: Bearer {CLIENT_KEY}\r\n\r\n".encode() + payload)
        self.assertTrue(wait_until(lambda: self.fake.requests("hang"), 5))
        t0 = time.time()
        sock.close()
        took = self.wait_closed(t0)
        self.assertIsNotNone(took)
        self.assertLess(took, 0.1)


class BreakerTest(GatewayTest):
    def test_breaker_opens_on_every_worker_and_resets_via_admin_endpoint(self):
        s = self.start(workers=3, gateway=["circuit_breaker_threshold = 3", "circuit_breaker_cooldown = 60", "retries = 0"],
                       providers={"shaky": []}, models={"m": [("shaky", "fail500")]})
        for _ in range(3):
            self.assertEqual(post(s.port, CHAT, {"model": "m"})[0], 502)
        h = health(s.port)
        self.assertEqual(h["circuit_breakers"]["shaky"], {"state": "open", "failure_count": 3, "threshold": 3})
        self.assertEqual(h["status"], "degraded")
        # Fresh connections land on every worker; none of them may call the upstream any more.
        for _ in range(12):
            status, _, body = post(s.port, CHAT, {"model": "m"})
            self.assertEqual(status, 503, body)
        self.assertEqual(len(self.fake.requests()), 3)
        reset = "/system/circuit-breaker/reset/shaky"
        self.assertEqual(post(s.port, reset, b"", key=None)[0], 401)
        self.assertEqual(post(s.port, reset, b"", key="wrong")[0], 403)
        self.assertEqual(post(s.port, "/system/circuit-breaker/reset/nope", b"", key=ADMIN_TOKEN)[0], 404)
        odd = raw_request(s.port, b"POST /system/circuit-breaker/reset/\xff HTTP/1.1\r\nHost: x\r\nAuthorization: "
                                  b"Bearer " + ADMIN_TOKEN.encode() + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        self.assertEqual(status_of(odd), 404, odd[:300])   # the name is quoted back, as valid UTF-8
        self.assertEqual(post(s.port, reset, b"", key=ADMIN_TOKEN)[0], 200)
        self.assertEqual(health(s.port)["circuit_breakers"]["shaky"]["state"], "closed")
        self.assertEqual(post(s.port, CHAT, {"model": "m"})[0], 502)   # the upstream is asked again
        self.assertEqual(len(self.fake.requests()), 4)


def worker_of(server_port, client_port):
    """The pid serving the connection whose client end is `client_port`."""
    out = subprocess.run(["ss", "-tnpH", "state", "established", f"( sport = :{server_port} )"],
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        if f":{client_port} " in line and "pid=" in line:
            return int(line.split("pid=")[1].split(",")[0])
    return None


class StreamLimitTest(GatewayTest):
    def test_limit_holds_across_workers_and_a_killed_worker_leaks_no_slot(self):
        s = self.start(workers=3, gateway=["max_concurrent_streams = 2"], providers={"main": []},
                       models={"m": [("main", "ok")]})
        body = {"model": "m", "stream": True, "fake_chunks": 1000, "fake_interval_ms": 100}
        held = [SseClient(s.port, body) for _ in range(2)]
        for c in held:
            self.addCleanup(c.close)
            self.assertEqual(c.status, 200)
        self.assertEqual(health(s.port)["web_worker_streams"], {"active": 2, "max": 2, "available": 0})
        for _ in range(6):   # whichever worker takes it
            status, headers, body_ = post(s.port, CHAT, body)
            self.assertEqual(status, 429, body_)
            self.assertEqual(headers["retry-after"], "1")
        victim = worker_of(s.port, held[0].sock.getsockname()[1])
        self.assertIsNotNone(victim)
        os.kill(victim, signal.SIGKILL)
        for c in held:
            c.close()
        self.assertTrue(wait_until(lambda: health(s.port)["web_worker_streams"]["active"] == 0, 10),
                        health(s.port))
        again = [SseClient(s.port, body) for _ in range(2)]
        for c in again:
            self.addCleanup(c.close)
            self.assertEqual(c.status, 200)


class ConfigTest(unittest.TestCase):
    def test_errors_name_file_and_line(self):
        from harness import BIN, Server
        s = Server(['[providers.kimi]', 'base_url = "ftp://example"'])
        try:
            out = subprocess.run([BIN, "-c", s.conf, "--check-config"], capture_output=True, text=True)
            self.assertNotEqual(out.returncode, 0)
            self.assertIn("server.conf:3: providers.kimi.base_url: expected an http:// or https:// URL", out.stderr)
        finally:
            s.stop()


if __name__ == "__main__":
    unittest.main()
