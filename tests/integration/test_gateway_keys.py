"""Client keys with names and limits through the real binary, two workers, against the fake upstream:
one allowance shared by every worker, answered 429 with OpenAI's x-ratelimit-* headers and
Retry-After; a stream limit per key; usage per key name in /metrics and /status, never the key."""
import http.client
import os
import shutil
import signal
import subprocess
import unittest

from harness import BIN, ServerTest, http_get, wait_until
from test_gateway import (ADMIN_TOKEN, CHAT, CLIENT_KEY, PROVIDER_KEY, FakeUpstream, SseClient, gateway_conf,
                          gateway_env, post, request_on, worker_of)
from test_metrics import metrics, promtool_check, scrape, value

ALICE_KEY = "sk-alice-3b9e71c04d2a58f6"
BOB_KEY = "sk-bob-c81f0e6a2d94b735"
ASK = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def client_table(name, key, *limits):
    return [f"[gateway.clients.{name}]", f'key = "{key}"', *limits]


def connections_on_both_workers(port, tries=40):
    """Open keep-alive connections until two are served by different workers: [(conn, pid), (conn, pid)]."""
    by_pid = {}
    spare = []
    for _ in range(tries):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.connect()
        pid = wait_until(lambda: worker_of(port, c.sock.getsockname()[1]), timeout=5)
        if pid and pid not in by_pid:
            by_pid[pid] = c
        else:
            spare.append(c)
        if len(by_pid) == 2:
            break
    for c in spare:
        c.close()
    assert len(by_pid) == 2, f"connections reached workers {list(by_pid)} only"
    return [(c, pid) for pid, c in by_pid.items()]


def ask_on(conn, key, body=ASK):
    return request_on(conn, CHAT, body, key)


class KeyLimitsTest(ServerTest):
    def setUp(self):
        self.fake = FakeUpstream()
        self.addCleanup(self.fake.stop)

    def start(self, clients, gateway=()):
        conf = gateway_conf(self.fake.url, 2, [*gateway, *clients], {"main": []}, {"m": [("main", "ok")]})
        s = self.server(conf, env=gateway_env()).start(workers=2)
        self.addCleanup(self.assert_no_key_in_log, s)
        return s

    def assert_no_key_in_log(self, s):
        log = s.read_log()
        for secret in (CLIENT_KEY, ALICE_KEY, BOB_KEY, PROVIDER_KEY, ADMIN_TOKEN):
            self.assertNotIn(secret, log)

    def test_two_workers_share_one_request_limit(self):
        s = self.start(client_table("alice", ALICE_KEY, "rpm = 3"))
        (a, pid_a), (b, pid_b) = connections_on_both_workers(s.port)
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        self.assertNotEqual(pid_a, pid_b)
        remaining = []
        for conn in (a, b, a):
            status, headers, body = ask_on(conn, ALICE_KEY)
            self.assertEqual(status, 200, body)
            self.assertEqual(headers["x-ratelimit-limit-requests"], "3")
            remaining.append(headers["x-ratelimit-remaining-requests"])
            self.assertNotIn("x-ratelimit-limit-tokens", headers)   # alice has no token limit
        self.assertEqual(remaining, ["2", "1", "0"])
        status, headers, body = ask_on(b, ALICE_KEY)   # the other worker knows the first one's requests
        self.assertEqual(status, 429, body)
        self.assertEqual(body["error"]["code"], "rate_limit_exceeded")
        self.assertEqual(body["error"]["type"], "requests")
        self.assertIn('"alice"', body["error"]["message"])
        self.assertEqual(headers["x-ratelimit-limit-requests"], "3")
        self.assertEqual(headers["x-ratelimit-remaining-requests"], "0")
        self.assertRegex(headers["x-ratelimit-reset-requests"], r"^(\d+m)?\d+(\.\d+)?s$")
        self.assertTrue(1 <= int(headers["retry-after"]) <= 20, headers["retry-after"])   # 60 s / 3 at most
        self.assertEqual(len(self.fake.requests()), 3)   # the refused one never reached the provider
        self.assertEqual(post(s.port, CHAT, ASK)[0], 200)   # the flat list's key has no limit of its own
        m = metrics(s.port)
        self.assertEqual(value(m, "agente_client_requests_total", client="alice"), 3)
        self.assertEqual(value(m, "agente_client_rejections_total", client="alice", limit="requests"), 1)
        self.assertEqual(value(m, "agente_client_requests_total", client="api_keys"), 1)

    def test_tokens_per_minute_from_the_upstreams_usage(self):
        # Whole answers of the fake upstream use 3 + 6 tokens: two fit in 10 (the second on the last
        # token left), the third waits.
        s = self.start(client_table("alice", ALICE_KEY, "tpm = 10"))
        status, headers, _ = post(s.port, CHAT, ASK, key=ALICE_KEY)
        self.assertEqual(status, 200)
        self.assertEqual(headers["x-ratelimit-limit-tokens"], "10")
        self.assertEqual(headers["x-ratelimit-remaining-tokens"], "10")
        status, headers, _ = post(s.port, CHAT, ASK, key=ALICE_KEY)
        self.assertEqual(status, 200)
        self.assertEqual(headers["x-ratelimit-remaining-tokens"], "1")
        status, headers, body = post(s.port, CHAT, ASK, key=ALICE_KEY)
        self.assertEqual(status, 429, body)
        self.assertEqual(body["error"]["type"], "tokens")
        self.assertEqual(headers["x-ratelimit-remaining-tokens"], "0")
        self.assertTrue(int(headers["retry-after"]) >= 40, headers)   # 18 spent of 10: 9 over, at 6 s each
        m = metrics(s.port)
        self.assertEqual(value(m, "agente_client_tokens_total", client="alice", direction="in"), 6)
        self.assertEqual(value(m, "agente_client_tokens_total", client="alice", direction="out"), 12)
        self.assertEqual(value(m, "agente_client_rejections_total", client="alice", limit="tokens"), 1)

    def test_a_stream_limit_per_key_and_a_killed_worker_gives_its_slot_back(self):
        s = self.start(client_table("alice", ALICE_KEY, "max_streams = 1"))
        long_stream = {**ASK, "stream": True, "fake_chunks": 1000, "fake_interval_ms": 100}
        held = SseClient(s.port, long_stream, key=ALICE_KEY)
        self.addCleanup(held.close)
        self.assertEqual(held.status, 200)
        for _ in range(4):   # whichever worker takes it
            status, headers, body = post(s.port, CHAT, long_stream, key=ALICE_KEY)
            self.assertEqual(status, 429, body)
            self.assertEqual(body["error"]["code"], "too_many_streams")
            self.assertEqual(headers["retry-after"], "1")
        self.assertEqual(post(s.port, CHAT, ASK, key=ALICE_KEY)[0], 200)   # a whole answer is no stream
        other = SseClient(s.port, {**ASK, "stream": True}, key=CLIENT_KEY)   # another key's streams are its own
        self.assertEqual(other.status, 200)
        other.events()
        other.close()
        self.assertEqual(value(metrics(s.port), "agente_client_streams_active", client="alice"), 1)
        victim = worker_of(s.port, held.sock.getsockname()[1])
        self.assertIsNotNone(victim)
        os.kill(victim, signal.SIGKILL)
        held.close()
        self.assertTrue(wait_until(lambda: value(metrics(s.port), "agente_client_streams_active", client="alice") == 0, 10))
        again = SseClient(s.port, {**ASK, "stream": True}, key=ALICE_KEY)
        self.assertEqual(again.status, 200)
        again.events()
        again.close()
        m = metrics(s.port)
        self.assertEqual(value(m, "agente_client_rejections_total", client="alice", limit="streams"), 4)

    def test_metrics_and_status_show_names_never_keys(self):
        s = self.start(client_table("alice", ALICE_KEY, "rpm = 100", "tpm = 100000") +
                       client_table("bob", BOB_KEY))
        for key in (ALICE_KEY, ALICE_KEY, BOB_KEY, CLIENT_KEY):
            self.assertEqual(post(s.port, CHAT, ASK, key=key)[0], 200)
        text = scrape(s.port)
        for secret in (ALICE_KEY, BOB_KEY, CLIENT_KEY):
            self.assertNotIn(secret, text)
        m = metrics(s.port)
        self.assertEqual(value(m, "agente_client_requests_total", client="alice"), 2)
        self.assertEqual(value(m, "agente_client_requests_total", client="bob"), 1)
        self.assertEqual(value(m, "agente_client_tokens_total", client="alice", direction="out"), 12)
        if shutil.which("promtool"):
            promtool_check(self, text)
        status, _, page = http_get(s.port, "/status", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        self.assertEqual(status, 200)
        page = page.decode()
        self.assertIn("alice", page)
        self.assertIn("bob", page)
        for secret in (ALICE_KEY, BOB_KEY, CLIENT_KEY):
            self.assertNotIn(secret, page)

    def test_a_reload_keeps_a_names_allowance_and_a_new_name_starts_afresh(self):
        s = self.start(client_table("alice", ALICE_KEY, "rpm = 2"))
        for _ in range(2):
            self.assertEqual(post(s.port, CHAT, ASK, key=ALICE_KEY)[0], 200)
        self.assertEqual(post(s.port, CHAT, ASK, key=ALICE_KEY)[0], 429)
        # The same name with another limit, and a new name for bob: applied by new workers.
        s.write_conf(gateway_conf(self.fake.url, 2, client_table("alice", ALICE_KEY, "rpm = 3") +
                                  client_table("bob", BOB_KEY, "rpm = 1"), {"main": []}, {"m": [("main", "ok")]}))
        s.signal(signal.SIGHUP)
        self.assertTrue(s.wait_log(r"2 workers serving \(generation 2\)"))
        self.assertTrue(wait_until(lambda: value(metrics(s.port), "agente_workers", generation="1") == 0, 10))
        # Alice spent her whole minute before the reload: under the new limit too (the share of the
        # minute spent is kept, not the count).
        status, headers, _ = post(s.port, CHAT, ASK, key=ALICE_KEY)
        self.assertEqual(status, 429)
        self.assertEqual(headers["x-ratelimit-limit-requests"], "3")
        self.assertEqual(post(s.port, CHAT, ASK, key=BOB_KEY)[0], 200)
        self.assertEqual(post(s.port, CHAT, ASK, key=BOB_KEY)[0], 429)
        m = metrics(s.port)
        self.assertEqual(value(m, "agente_client_requests_total", client="alice"), 2)   # counted across the reload
        self.assertEqual(value(m, "agente_client_rejections_total", client="alice"), 2)
        self.assertEqual(value(m, "agente_client_requests_total", client="bob"), 1)

    def test_print_config_masks_the_key_and_check_config_names_the_line(self):
        s = self.server(["[gateway.clients.alice]", f'key = "{ALICE_KEY}"', "rpm = 5"])
        out = subprocess.run([BIN, "-c", s.conf, "--print-config"], capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertNotIn(ALICE_KEY, out.stdout)
        self.assertIn("rpm = 5", out.stdout)
        s.write_conf(["[gateway.clients.alice]", f'key = "{ALICE_KEY}"', "rpm = -1"])
        out = subprocess.run([BIN, "-c", s.conf, "--check-config"], capture_output=True, text=True, timeout=10)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("server.conf:4: gateway.clients.alice.rpm: expected 1..1000000000, got -1", out.stderr)


if __name__ == "__main__":
    unittest.main()
