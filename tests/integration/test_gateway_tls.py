"""HTTPS upstreams, loopback only: a private CA and certificates made at test time with the openssl
CLI, the fake upstream serving TLS on 127.0.0.1 (named `localhost` in the providers' base_url).
The gateway must trust a provider's tls_ca_file (streamed and not), refuse a certificate for
another host name even from that CA (host-name verification, not only the chain), refuse a chain
the system store does not know, and send SNI."""
import shutil
import tempfile
import unittest

from certs import Authority
from test_gateway import CHAT, FakeUpstream, GatewayTest, SseClient, post


class TlsUpstreamTest(GatewayTest):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="agente-tls-")
        ca, rogue = Authority(cls.dir, "ca"), Authority(cls.dir, "rogue")
        cls.ca = ca.cert
        cls.good = ca.issue("good", dns=["localhost"])
        cls.other_name = ca.issue("other", dns=["other.example"])
        cls.untrusted = rogue.issue("untrusted", dns=["localhost"])

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, True)

    def tls_fake(self, cert):
        f = FakeUpstream(tls=(*cert, self.ca))
        self.addCleanup(f.stop)
        return f

    def setUp(self):
        super().setUp()
        self.good_fake = self.tls_fake(self.good)
        self.other_fake = self.tls_fake(self.other_name)
        self.untrusted_fake = self.tls_fake(self.untrusted)
        ca = f'"{self.ca}"'
        self.s = self.start(
            gateway=["retries = 0"],
            providers={"private": [f'base_url = "{self.good_fake.url}"', f"tls_ca_file = {ca}"],
                       "misnamed": [f'base_url = "{self.other_fake.url}"', f"tls_ca_file = {ca}"],
                       "by_address": [f'base_url = "https://127.0.0.1:{self.good_fake.port}/v1"', f"tls_ca_file = {ca}"],
                       "rogue": [f'base_url = "{self.untrusted_fake.url}"', f"tls_ca_file = {ca}"],
                       "system": [f'base_url = "{self.good_fake.url}"']},
            models={"private": [("private", "ok")], "misnamed": [("misnamed", "ok")],
                    "by-address": [("by_address", "ok")], "rogue": [("rogue", "ok")], "system": [("system", "ok")],
                    "fallback": [("misnamed", "ok"), ("private", "ok")]})

    def assert_refused(self, model):
        status, _, body = post(self.s.port, CHAT, {"model": model, "messages": []})
        self.assertEqual(status, 502, body)
        self.assertEqual(set(body["error"]), {"message", "type", "param", "code"})
        self.assertIn("certificate verification failed", body["error"]["message"])
        return body

    def test_private_ca_with_the_right_host_name(self):
        status, _, body = post(self.s.port, CHAT, {"model": "private", "messages": []})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["choices"][0]["message"]["content"], "Hello from the fake upstream.")
        c = SseClient(self.s.port, {"model": "private", "stream": True, "fake_chunks": 3})
        self.addCleanup(c.close)
        self.assertEqual(c.status, 200)
        events = [e for _, e in c.events()]
        self.assertEqual(len(events), 4, events)
        self.assertEqual(events[-1], "data: [DONE]")
        for _ in range(4):
            self.assertEqual(post(self.s.port, CHAT, {"model": "private", "messages": []})[0], 200)
        conns = [x for x in self.good_fake.log()["connections"] if x["api"]]
        # Verified connections are kept alive too: at most one per worker for six calls.
        self.assertEqual(sum(x["requests"] for x in conns), 6)
        self.assertLessEqual(len(conns), 2, conns)
        # SNI carries the base_url's host name.
        self.assertEqual({x["sni"] for x in conns}, {"localhost"})

    def test_a_certificate_for_another_host_name_is_refused(self):
        # Signed by the trusted CA: only host-name verification can refuse it.
        self.assert_refused("misnamed")
        # The right certificate, reached by an address it does not name.
        self.assert_refused("by-address")
        self.assertEqual(self.good_fake.requests(), [])
        self.assertIn("TLS certificate of localhost", self.s.read_log())

    def test_an_untrusted_ca_is_refused(self):
        self.assert_refused("rogue")
        # Without tls_ca_file the system store decides, and it does not know the test CA.
        self.assert_refused("system")
        self.assertEqual(self.good_fake.requests(), [])

    def test_a_refused_certificate_falls_back_without_retrying(self):
        status, _, body = post(self.s.port, CHAT, {"model": "fallback", "messages": []})
        self.assertEqual(status, 200, body)
        self.assertEqual(len(self.good_fake.requests()), 1)


if __name__ == "__main__":
    unittest.main()
