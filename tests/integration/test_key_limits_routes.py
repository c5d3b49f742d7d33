"""A client key's limits on every route that takes the client keys, through the real binary against
the fake upstream (gateway/admission.hpp): the agent's /tasks/send (the seed's execute, A2A's
SendMessage and SendStreamingMessage) and /agent/stream, and the files and vector stores, count
against the same key's requests per minute as /v1; the agent's upstream usage is charged to its
tokens per minute; agent streams count against its max_streams; and agent and grounded streams take
a lease in the cluster's stream limit (Redis) like /v1 streams. Each family answers the 429 in its
own body shape, with Retry-After."""
import tempfile
import shutil
import unittest

from harness import ChunkedReader, ServerTest, scaled, wait_until
from test_agent import a2a_message, agent_conf
from test_cluster_redis import READY_TIMEOUT, STREAMS_KEY, RedisServer, every_worker
from test_gateway import CHAT, CLIENT_KEY, FakeUpstream, SseClient, gateway_conf, gateway_env, post
from test_gateway_keys import ALICE_KEY, client_table
from test_metrics import metrics, value

HOLD = ["params = { fake_chunks = 1000, fake_interval_ms = 100 }"]   # an agent whose streams last
TURN = {"messages": [{"role": "user", "content": "hi"}]}
ASK = {"model": "agent-ok", **TURN}   # /v1, to the agents' model


def rpc(port, method, params, key=ALICE_KEY, rpc_id="r1"):
    return post(port, "/tasks/send", {"jsonrpc": "2.0", "id": rpc_id, "method": method, "params": params}, key=key)


def execute(port, key=ALICE_KEY, rpc_id="r1"):
    return rpc(port, "execute", TURN, key, rpc_id)


class AgentKeyLimits(ServerTest):
    def setUp(self):
        self.fake = FakeUpstream()
        self.addCleanup(self.fake.stop)
        self.state_dir = tempfile.mkdtemp(prefix="agente-keylimits-")
        self.addCleanup(shutil.rmtree, self.state_dir, True)

    def start(self, *limits, agents=None, gateway=(), cluster=()):
        """Client key "alice" with `limits` beside the flat list's key; with `cluster` lines, a grounded
        model "kb" too (vector_stores, no [rag]: nothing is ever searched)."""
        conf = agent_conf(self.fake.url, self.state_dir, 2, agents=agents,
                          gateway=[*gateway, *client_table("alice", ALICE_KEY, *limits)])
        if cluster:
            at = conf.index('[models."agent-ok"]')
            conf[at:at] = ['[models."kb"]', 'targets = [{ provider = "fake", model = "ok" }]',
                           'vector_stores = ["manuals"]', ""]
        s = self.server(conf + list(cluster), env=gateway_env())
        s.start(workers=2)
        return s

    def stream_refused(self, port, key=ALICE_KEY):
        """POST /agent/stream/studly expected refused before it starts: (status, headers, body)."""
        return post(port, "/agent/stream/studly", TURN, key=key)

    def ndjson(self, port, key=ALICE_KEY, agent="studly"):
        r = ChunkedReader(port, f"/agent/stream/{agent}", TURN, [f"Authorization: Bearer {key}"])
        self.addCleanup(r.close)
        return r

    def assert_rpc_429(self, status, headers, body, limit, rpc_id="r1"):
        self.assertEqual(status, 429, body)
        self.assertEqual(body["id"], rpc_id)
        self.assertEqual(body["error"]["code"], -32603)   # as every LLM call that could not start (docs/agent.md)
        self.assertEqual(body["error"]["data"]["http_status"], 429)
        self.assertEqual(body["error"]["data"]["limit"], limit)
        self.assertGreaterEqual(int(headers["retry-after"]), 1)
        self.assertEqual(body["error"]["data"]["retry_after"], int(headers["retry-after"]))


class RequestsPerMinute(AgentKeyLimits):
    def test_every_agent_route_counts_against_the_keys_one_allowance(self):
        s = self.start("rpm = 3")
        status, headers, body = execute(s.port)
        self.assertEqual(status, 200, body)
        self.assertEqual((headers["x-ratelimit-limit-requests"], headers["x-ratelimit-remaining-requests"]), ("3", "2"))
        status, _, body = rpc(s.port, "SendMessage", {"message": a2a_message("hi")})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["result"]["task"]["status"]["state"], "TASK_STATE_COMPLETED")
        self.assertEqual(post(s.port, CHAT, ASK, key=ALICE_KEY)[0], 200)   # /v1 spends the same allowance
        self.assert_rpc_429(*execute(s.port, rpc_id="r4"), "requests", rpc_id="r4")
        self.assert_rpc_429(*rpc(s.port, "message/send", {"message": a2a_message("hi", v1=False)}), "requests")
        status, headers, body = self.stream_refused(s.port)
        self.assertEqual(status, 429, body)
        self.assertGreaterEqual(int(headers["retry-after"]), 1)
        self.assertIn('"alice"', str(body))
        self.assertEqual(execute(s.port, key=CLIENT_KEY)[0], 200)   # another key's allowance is its own
        self.assertEqual(len(self.fake.requests()), 4)   # no refused request reached the provider
        m = metrics(s.port)
        self.assertEqual(value(m, "agente_client_requests_total", client="alice"), 3)
        self.assertEqual(value(m, "agente_client_rejections_total", client="alice", limit="requests"), 3)


class TokensPerMinute(AgentKeyLimits):
    def test_the_agents_upstream_usage_is_charged_to_the_key(self):
        # Whole answers of the fake upstream use 3 + 6 tokens: two fit in 10 (the second on the last
        # token left), the third waits.
        s = self.start("tpm = 10")
        status, headers, body = execute(s.port)
        self.assertEqual(status, 200, body)
        self.assertEqual(headers["x-ratelimit-remaining-tokens"], "10")
        status, headers, body = rpc(s.port, "SendMessage", {"message": a2a_message("hi")})
        self.assertEqual(status, 200, body)
        self.assertEqual(headers["x-ratelimit-remaining-tokens"], "1")
        status, headers, body = execute(s.port)
        self.assert_rpc_429(status, headers, body, "tokens")
        self.assertGreaterEqual(int(headers["retry-after"]), 40)   # 18 spent of 10: 9 over, at 6 s each
        m = metrics(s.port)
        self.assertEqual(value(m, "agente_client_tokens_total", client="alice", direction="in"), 6)
        self.assertEqual(value(m, "agente_client_tokens_total", client="alice", direction="out"), 12)
        self.assertEqual(value(m, "agente_client_rejections_total", client="alice", limit="tokens"), 1)

    def test_a_streamed_turns_usage_is_charged_without_asking(self):
        # The gateway asks the upstream for a stream's usage (docs/gateway.md, "Usage of streams"): the
        # agent's params need no stream_options for its NDJSON stream to be charged.
        s = self.start("tpm = 10", agents={"studly": ["params = { fake_chunks = 6 }"]})
        first = self.ndjson(s.port)
        self.assertEqual(first.status, 200)
        self.assertEqual(first.lines()[-1][1]["type"], "done")
        m = metrics(s.port)   # the fake's stream usage: 4 in, one out per chunk
        self.assertEqual(value(m, "agente_client_tokens_total", client="alice", direction="in"), 4)
        self.assertEqual(value(m, "agente_client_tokens_total", client="alice", direction="out"), 6)
        status, _, body = self.stream_refused(s.port)   # the 10 tokens of the minute are spent
        self.assertEqual(status, 429, body)


class StreamsPerKey(AgentKeyLimits):
    def test_agent_streams_count_against_the_keys_max_streams(self):
        s = self.start("max_streams = 1", agents={"studly": HOLD})
        held = self.ndjson(s.port)
        self.assertEqual(held.status, 200)
        status, headers, body = rpc(s.port, "SendStreamingMessage", {"message": a2a_message("hi")})
        self.assert_rpc_429(status, headers, body, "streams")
        status, _, body = post(s.port, CHAT, {**ASK, "stream": True}, key=ALICE_KEY)
        self.assertEqual((status, body["error"]["code"]), (429, "too_many_streams"))
        status, headers, body = self.stream_refused(s.port)
        self.assertEqual((status, headers["retry-after"]), (429, "1"), body)
        self.assertEqual(execute(s.port)[0], 200)   # a whole answer is no stream
        other = self.ndjson(s.port, key=CLIENT_KEY)   # another key's streams are its own
        self.assertEqual(other.status, 200)
        other.close()
        self.assertEqual(value(metrics(s.port), "agente_client_streams_active", client="alice"), 1)
        held.close()
        self.assertTrue(wait_until(lambda: value(metrics(s.port), "agente_client_streams_active", client="alice") == 0,
                                   scaled(10)))
        again = rpc(s.port, "SendStreamingMessage", {"message": a2a_message("hi")})
        self.assertEqual(again[0], 200)


class ClusterLeases(AgentKeyLimits):
    """One server whose [cluster] stream limit (1) is below its own (3): only the Redis lease refuses."""

    @classmethod
    def setUpClass(cls):
        cls.redis = RedisServer()
        cls.addClassCleanup(cls.redis.cleanup)

    def setUp(self):
        super().setUp()
        self.redis.cli("FLUSHALL")

    def start_cluster(self):
        cluster = ["", "[cluster]", f'redis_url = "redis://127.0.0.1:{self.redis.port}/0"', "max_concurrent_streams = 1"]
        s = self.start("rpm = 1000", agents={"studly": HOLD}, gateway=["max_concurrent_streams = 3"], cluster=cluster)
        self.assertTrue(wait_until(lambda: every_worker(s.port, lambda h: h["cluster"]["redis"] == "up"),
                                   scaled(READY_TIMEOUT)))
        return s

    def leases(self):
        return int(self.redis.cli("ZCARD", STREAMS_KEY) or -1)

    def test_an_agent_stream_holds_a_lease_in_the_clusters_limit(self):
        s = self.start_cluster()
        held = self.ndjson(s.port)
        self.assertEqual(held.status, 200)
        self.assertEqual(self.leases(), 1)
        status, _, body = post(s.port, CHAT, {**ASK, "stream": True}, key=ALICE_KEY)
        self.assertEqual((status, body["error"]["code"]), (429, "too_many_streams"), body)
        self.assertIn("max 1", body["error"]["message"])
        status, headers, body = rpc(s.port, "SendStreamingMessage", {"message": a2a_message("hi")})
        self.assert_rpc_429(status, headers, body, "server_streams")
        held.close()
        self.assertTrue(wait_until(lambda: self.leases() == 0, scaled(READY_TIMEOUT)))
        stream = SseClient(s.port, {**ASK, "stream": True}, key=ALICE_KEY)
        self.addCleanup(stream.close)
        self.assertEqual(stream.status, 200)

    def test_a_grounded_stream_takes_a_lease_too(self):
        s = self.start_cluster()
        held = SseClient(s.port, {**ASK, "stream": True, "fake_chunks": 1000, "fake_interval_ms": 100}, key=ALICE_KEY)
        self.addCleanup(held.close)
        self.assertEqual(held.status, 200)
        self.assertEqual(self.leases(), 1)
        # "kb" answers from vector stores; refused before any search (this server has no [rag] at all).
        status, headers, body = post(s.port, CHAT, {"model": "kb", **TURN, "stream": True}, key=ALICE_KEY)
        self.assertEqual((status, body["error"]["code"]), (429, "too_many_streams"), body)
        self.assertEqual(headers["retry-after"], "1")



class RagRoutes(AgentKeyLimits):
    def test_the_files_and_vector_stores_count_against_the_keys_requests(self):
        conf = gateway_conf(self.fake.url, workers=2, gateway=client_table("alice", ALICE_KEY, "rpm = 2"),
                            providers={"main": []}, models={"emb": [("main", "ok")]})
        conf = ["dirty_workers = 1"] + conf + ["", "[rag]", 'embedding_model = "emb"']
        s = self.server(conf, env=dict(gateway_env(), STATE_DIRECTORY=self.state_dir))
        s.start(workers=3)
        status, headers, body = post(s.port, "/v1/vector_stores", {"name": "notes"}, key=ALICE_KEY)
        self.assertEqual(status, 200, body)
        self.assertEqual(headers["x-ratelimit-remaining-requests"], "1")
        self.assertEqual(post(s.port, "/v1/vector_stores", None, key=ALICE_KEY, method="GET")[0], 200)
        status, headers, body = post(s.port, f"/v1/vector_stores/{body['id']}/search", {"query": "x"}, key=ALICE_KEY)
        self.assertEqual(status, 429, body)
        self.assertEqual((body["error"]["type"], body["error"]["code"]), ("requests", "rate_limit_exceeded"))
        self.assertGreaterEqual(int(headers["retry-after"]), 1)
        self.assertEqual(post(s.port, "/v1/files", None, key=CLIENT_KEY, method="GET")[0], 200)   # another key
        self.assertEqual(value(metrics(s.port), "agente_client_requests_total", client="alice"), 2)


if __name__ == "__main__":
    unittest.main()
