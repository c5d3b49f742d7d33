"""The gateway's side of issue 16 through the real binary and the fake upstream: what opens a breaker
(never a 4xx, not even one the provider sends before it has read the body), the log lines an
operator gets at loglevel debug and for refused requests, a /v1 stream stopped by SIGTERM before
its first byte, and secrets with blanks refused at --check-config."""
import re
import signal
import subprocess
import threading
import unittest

from harness import BIN, Server, wait_until
from test_gateway import ADMIN_TOKEN, CHAT, GatewayTest, gateway_conf, gateway_env, health, post

BIG_BODY_BYTES = 12 * 1024 * 1024   # more than loopback's socket buffers take: the write must fail


def answer_to_a_term(test, server, call, upstream_model):
    """Runs `call` (which returns an answer) in a thread, TERMs `server` once the fake upstream has
    the request for `upstream_model`, and returns the answer (the server has graceful_timeout = 1)."""
    answers = []
    t = threading.Thread(target=lambda: answers.append(call()))
    t.start()
    test.assertTrue(wait_until(lambda: test.fake.requests(upstream_model), 10), "the call never reached the upstream")
    server.signal(signal.SIGTERM)
    t.join(30)
    test.assertEqual(server.wait_exit(), 0)
    return answers[0]


class BreakerCountingTest(GatewayTest):
    def test_an_upstream_4xx_never_opens_the_breaker(self):
        early = self.fake.origin + "/early413/v1"
        s = self.start(gateway=["circuit_breaker_threshold = 2", "circuit_breaker_cooldown = 60", "retries = 0"],
                       providers={"picky": [], "strict": [f'base_url = "{early}"'], "broken": []},
                       models={"refused": [("picky", "reject400")], "too-big": [("strict", "ok")],
                               "failing": [("broken", "fail500")]})
        for _ in range(5):
            status, _, body = post(s.port, CHAT, {"model": "refused"})
            self.assertEqual((status, body["error"]["message"]), (400, "fake refusal"))
        # Refused from its head alone, the connection closed with the body unread: our write fails,
        # and the 413 sent before it is still the provider's answer. It used to be a lost
        # connection, counted against the provider: five such requests opened its breaker.
        big = {"model": "too-big", "messages": [{"role": "user", "content": "x" * BIG_BODY_BYTES}]}
        for _ in range(3):
            status, _, body = post(s.port, CHAT, big, timeout=30)
            self.assertEqual(status, 413, body)
            self.assertEqual(body["error"]["message"], "request body too large")
        breakers = health(s.port)["circuit_breakers"]
        self.assertEqual(breakers["picky"], {"state": "closed", "failure_count": 0, "threshold": 2})
        self.assertEqual(breakers["strict"], {"state": "closed", "failure_count": 0, "threshold": 2})
        self.assertEqual(post(s.port, CHAT, {"model": "too-big"})[0], 413)   # still asked: nothing opened
        # What does count still opens it.
        for _ in range(2):
            self.assertEqual(post(s.port, CHAT, {"model": "failing"})[0], 502)
        self.assertEqual(health(s.port)["circuit_breakers"]["broken"]["state"], "open")


class OperatorLogTest(GatewayTest):
    def test_debug_tells_retries_fallbacks_and_breaker_transitions(self):
        s = self.start(gateway=["circuit_breaker_threshold = 2", "circuit_breaker_cooldown = 0.3", "retries = 1",
                                "retry_backoff_ms = 10"],
                       providers={"shaky": [], "backup": []},
                       models={"m": [("shaky", "fail500"), ("backup", "ok")], "down": [("shaky", "fail500")]})
        self.assertEqual(post(s.port, CHAT, {"model": "m"})[0], 200)   # two failed attempts, then the fallback
        log = s.read_log()
        self.assertRegex(log, r"retrying shaky in 10 ms \(attempt 2 of 2\)")
        self.assertIn("circuit breaker shaky opened after 2 consecutive failures", log)
        self.assertIn("model m: falling back from shaky to backup", log)
        self.assertEqual(post(s.port, CHAT, {"model": "m"})[0], 200)
        self.assertTrue(s.wait_log("model m: shaky skipped, its circuit breaker is open"))
        wait_until(lambda: health(s.port)["circuit_breakers"]["shaky"]["state"] == "half_open", 5)
        self.assertEqual(post(s.port, CHAT, {"model": "down"})[0], 502)
        self.assertTrue(s.wait_log("circuit breaker shaky half-open: this request is the probe"), s.read_log()[-3000:])
        self.assertTrue(s.wait_log("circuit breaker shaky re-opened: the half-open probe failed"))
        # The admin's reset says who asked.
        self.assertEqual(post(s.port, "/system/circuit-breaker/reset/shaky", b"", key=ADMIN_TOKEN)[0], 200)
        self.assertTrue(s.wait_log(r"circuit breaker shaky reset \(open before\) by an admin from 127\.0\.0\.1"))

    def test_refused_requests_are_logged_with_the_peer_never_the_key_and_rate_limited(self):
        s = self.start(workers=1, providers={"main": []}, models={"m": [("main", "ok")]})
        wrong = "sk-wrong-3b8e5f1d2a7c9e40"
        self.assertEqual(post(s.port, CHAT, {"model": "m"}, key=None)[0], 401)
        self.assertEqual(post(s.port, CHAT, {"model": "m"}, key=wrong)[0], 401)
        self.assertEqual(post(s.port, "/system/circuit-breaker/reset/main", b"", key=wrong)[0], 403)
        log = s.read_log()
        self.assertIn("auth: refused POST /v1/chat/completions from 127.0.0.1: no API key", log)
        self.assertIn("auth: refused POST /v1/chat/completions from 127.0.0.1: a wrong API key", log)
        self.assertIn("auth: refused POST /system/circuit-breaker/reset/main from 127.0.0.1: a wrong admin token", log)
        self.assertNotIn(wrong, log)
        for _ in range(40):   # a guessing client: its lines are bounded, the rest counted
            self.assertEqual(post(s.port, CHAT, {"model": "m"}, key=wrong)[0], 401)
        refused = len(re.findall(r"auth: refused ", s.read_log()))
        self.assertLessEqual(refused, 10, "one worker logs at most 10 refusals per 10 s")
        self.assertNotIn(wrong, s.read_log())


class StopBeforeTheFirstByteTest(GatewayTest):
    def test_term_before_a_streams_first_byte_is_a_503_in_openais_shape(self):
        s = self.start(workers=1, gateway=["stream_keepalive = 60"],
                       providers={"main": ["first_byte_timeout = 30", "total_timeout = 60"]},
                       models={"m": [("main", "slow")]})
        body = {"model": "m", "stream": True, "fake_delay_ms": 20000}
        status, headers, answer = answer_to_a_term(self, s, lambda: post(s.port, CHAT, body, timeout=30), "slow")
        # It was "500 handler sent no response", in the core's shape: OpenAI clients raise the
        # right error from this one.
        self.assertEqual(status, 503, answer)
        self.assertEqual(answer["error"]["code"], "server_shutting_down")
        self.assertEqual(answer["error"]["type"], "service_unavailable")
        self.assertEqual(headers.get("connection"), "close")

    def start(self, **kwargs):
        # graceful_timeout is a core setting: it must come before the first [table].
        conf = ["graceful_timeout = 1"] + gateway_conf(self.fake.url, kwargs.pop("workers", 2), **kwargs)
        s = self.server(conf, env=gateway_env())
        s.start()
        return s


class SecretConfigTest(unittest.TestCase):
    def check(self, lines):
        s = Server(lines)
        try:
            return subprocess.run([BIN, "-c", s.conf, "--check-config"], capture_output=True, text=True, timeout=10)
        finally:
            s.stop()

    def test_inline_keys_and_tokens_with_blanks_are_refused_at_their_line(self):
        # configuration.md promises it for every secret; inline ones were let through.
        out = self.check(["[gateway]", 'api_keys = ["sk-good", "sk bad"]'])
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("server.conf:3: gateway.api_keys: the secret has a blank or a control character inside it",
                      out.stderr)
        self.assertNotIn("sk bad", out.stderr + out.stdout)
        out = self.check(["[gateway]", 'admin_token = "adm in"'])
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("server.conf:3: gateway.admin_token: the secret has a blank or a control character inside it",
                      out.stderr)


if __name__ == "__main__":
    unittest.main()
