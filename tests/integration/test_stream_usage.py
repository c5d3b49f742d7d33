"""A streamed answer is charged to its client key like a whole one, through the real binary against
the fake upstream (which, as OpenAI, reports a stream's usage only when asked with
stream_options.include_usage): the gateway asks for it on every stream, charges it to the key's tpm
and the provider's token counters, and passes the usage chunk on only to a client that asked for it.
The agent's NDJSON stream goes through the same call (test_key_limits_routes,
test_a_streamed_turns_usage_is_charged_without_asking). `stream_include_usage = false` on a provider
asks for nothing (docs/gateway.md, "Usage of streams")."""
import json
import os
import subprocess
import unittest

from harness import BIN, ServerTest
from test_gateway import CHAT, FakeUpstream, SseClient, gateway_conf, gateway_env, post
from test_gateway_keys import ALICE_KEY, client_table
from test_metrics import metrics, value

# Six chunks: the fake's stream usage is 4 in and one out per chunk, 10 in all.
STREAM = {"model": "m", "stream": True, "fake_chunks": 6, "messages": [{"role": "user", "content": "hi"}]}


def datas(events):
    """The data of each SSE event (text), [DONE] included."""
    return [text[len("data: "):].strip() for _, text in events]


class StreamUsage(ServerTest):
    def setUp(self):
        self.fake = FakeUpstream()
        self.addCleanup(self.fake.stop)

    def start(self, provider=()):
        conf = gateway_conf(self.fake.url, 2, client_table("alice", ALICE_KEY, "tpm = 10"), {"main": list(provider)},
                            {"m": [("main", "ok")]})
        return self.server(conf, env=gateway_env()).start(workers=2)

    def stream(self, port, body):
        r = SseClient(port, body, key=ALICE_KEY)
        self.addCleanup(r.close)
        self.assertEqual(r.status, 200)
        return datas(r.events())

    def test_a_stream_that_did_not_ask_is_charged_and_sees_no_usage_chunk(self):
        s = self.start()
        body = {**STREAM, "stream_options": {"continuous_usage_stats": False}}
        events = self.stream(s.port, body)
        self.assertEqual(events[-1], "[DONE]")
        chunks = [json.loads(d) for d in events[:-1]]
        self.assertEqual(len(chunks), 6)   # the content, as OpenAI would send it to this client
        # Neither the usage chunk nor the "usage":null the upstream put on every chunk.
        self.assertTrue(all("usage" not in c and c["choices"] for c in chunks), chunks)
        sent = self.fake.requests()[-1]["body"]   # asked on the client's behalf, its own options kept
        self.assertEqual(sent["stream_options"], {"include_usage": True, "continuous_usage_stats": False})
        m = metrics(s.port)
        self.assertEqual(value(m, "agente_client_tokens_total", client="alice", direction="in"), 4)
        self.assertEqual(value(m, "agente_client_tokens_total", client="alice", direction="out"), 6)
        self.assertEqual(value(m, "agente_upstream_tokens_total", provider="main", direction="out"), 6)
        # The 10 tokens of the minute are spent: streaming escapes tpm no more than asking whole.
        status, headers, refused = post(s.port, CHAT, STREAM, key=ALICE_KEY)
        self.assertEqual(status, 429, refused)
        self.assertEqual(refused["error"]["type"], "tokens")
        self.assertEqual(headers["x-ratelimit-remaining-tokens"], "0")

    def test_a_stream_that_asked_gets_the_usage_chunk(self):
        s = self.start()
        events = self.stream(s.port, {**STREAM, "stream_options": {"include_usage": True}})
        self.assertEqual(events[-1], "[DONE]")
        last = json.loads(events[-2])
        self.assertEqual(last["choices"], [])
        self.assertTrue(all(json.loads(d)["usage"] is None for d in events[:-2]))   # as the upstream sent them
        self.assertEqual(last["usage"], {"prompt_tokens": 4, "completion_tokens": 6, "total_tokens": 10})
        self.assertEqual(self.fake.requests()[-1]["body"]["stream_options"], {"include_usage": True})
        self.assertEqual(value(metrics(s.port), "agente_client_tokens_total", client="alice"), 10)

    def test_a_provider_that_refuses_stream_options_is_asked_for_nothing(self):
        s = self.start(provider=["stream_include_usage = false"])
        events = self.stream(s.port, STREAM)
        self.assertEqual(len(events), 7)
        self.assertNotIn("stream_options", self.fake.requests()[-1]["body"])
        # Its streams are charged only when it reports usage unasked (the fake, as OpenAI, does not).
        self.assertEqual(value(metrics(s.port), "agente_client_tokens_total", client="alice"), 0)
        self.assertEqual(post(s.port, CHAT, STREAM, key=ALICE_KEY)[0], 200)

    def test_a_misspelt_setting_is_refused_with_its_line(self):
        conf = gateway_conf(self.fake.url, 1, (), {"main": ['stream_include_usage = "no"']}, {"m": [("main", "ok")]})
        s = self.server(conf, env=gateway_env())
        out = subprocess.run([BIN, "-c", s.conf, "--check-config"], capture_output=True, text=True, timeout=10,
                             env={**os.environ, **gateway_env()})
        self.assertNotEqual(out.returncode, 0)
        self.assertRegex(out.stderr, r"server\.conf:\d+: providers\.main\.stream_include_usage: expected true or false")


if __name__ == "__main__":
    unittest.main()
