"""The agent's side of issue 16 through the real binary: /tasks/send takes the client keys like
/v1 and /agent/stream (a keyless call neither reaches a provider nor takes a stream slot nor
writes the store), ids a client chooses are bounded, stored history is bounded in bytes, the card
names a Host only when it is one, a store that cannot answer is a 503 before any upstream call, and a
SIGTERM past graceful_timeout answers in the route's shape."""
import json
import os
import re
import sqlite3

from harness import ChunkedReader, http_get, raw_request, status_of
from test_agent import AUTH, DB_NAME, SEED_REQUEST, AgentTest, a2a_message, agent_conf, execute, rpc
from test_gateway import CHAT, gateway_env, post
from test_gateway_hardening import answer_to_a_term

WRONG_KEY = "sk-guess-0c9d8e7f6a5b4c3d"


def peak_memory_kb(pid):
    """The process's peak resident memory (VmHWM), in KiB."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


class KeysTest(AgentTest):
    def test_keyless_json_rpc_and_a2a_calls_get_401_as_json_rpc_errors(self):
        s = self.start(workers=2)
        calls = {
            "execute": SEED_REQUEST["params"],
            "SendMessage": {"message": a2a_message("hi")},
            "SendStreamingMessage": {"message": a2a_message("hi")},
            "GetTask": {"id": "t"}, "CancelTask": {"id": "t"},
            "message/send": {"message": a2a_message("hi", v1=False)},
            "message/stream": {"message": a2a_message("hi", v1=False)},
            "tasks/get": {"id": "t"}, "tasks/cancel": {"id": "t"},
            "nope": {},
        }
        for n, (method, params) in enumerate(calls.items()):
            for key in (None, WRONG_KEY):
                with self.subTest(method=method, key=key):
                    status, headers, answer = rpc(s.port, method, params, rpc_id=f"k{n}", key=key)
                    self.assertEqual(status, 401, answer)
                    self.assertEqual(headers.get("www-authenticate"), "Bearer")
                    self.assertEqual(answer["jsonrpc"], "2.0")
                    self.assertEqual(answer["id"], f"k{n}")
                    self.assertEqual(answer["error"]["code"], -32090)
                    self.assertEqual(answer["error"]["data"], {"http_status": 401})
        # Nothing reached a provider, nothing was written.
        self.assertEqual(self.fake.requests(), [])
        self.assertFalse(os.path.exists(os.path.join(self.state_dir, DB_NAME)))
        # The other surfaces answer 401 in their own shapes; the cards and / stay public.
        status, _, answer = post(s.port, CHAT, {"model": "agent-ok"}, key=None)
        self.assertEqual((status, answer["error"]["type"]), (401, "authentication_error"))
        status, _, answer = post(s.port, "/agent/stream/studly", {"messages": [{"role": "user", "content": "x"}]},
                                 key=WRONG_KEY)
        self.assertEqual((status, answer["error"]["code"]), (401, 401))
        for path in ("/", "/.well-known/agent-card.json", "/.well-known/agent.json"):
            self.assertEqual(http_get(s.port, path)[0], 200, path)
        # With the key, the same call goes through.
        self.assertEqual(execute(s.port, "with a key")[0], 200)
        self.assertNotIn(WRONG_KEY, s.read_log())
        self.assertIn("auth: refused POST /tasks/send from 127.0.0.1: no API key", s.read_log())

    def test_keyless_streams_take_no_stream_slot(self):
        # Five keyless SendStreamingMessage calls used to hold every slot, and a keyed /v1 stream got 429.
        s = self.start(workers=2, gateway=["max_concurrent_streams = 1"],
                       agents={"studly": ['model = "agent-slow"', "params = { fake_delay_ms = 4000 }"]})
        held = []
        for n in range(5):
            r = ChunkedReader(s.port, "/tasks/send", {"jsonrpc": "2.0", "id": n, "method": "SendStreamingMessage",
                                                      "params": {"message": a2a_message("hold a slot")}})
            self.addCleanup(r.close)
            held.append(r.status)
        self.assertEqual(held, [401] * 5)
        self.assertEqual(json.loads(http_get(s.port, "/system/streaming-health")[2])["web_worker_streams"]["active"], 0)
        stream = ChunkedReader(s.port, CHAT, {"model": "agent-ok", "stream": True}, AUTH)
        self.addCleanup(stream.close)
        self.assertEqual(stream.status, 200)

    def test_a_keyless_call_costs_the_worker_no_parse_of_its_body(self):
        # The 401 echoes the request's id, and finding it used to parse the whole body into a tree:
        # a keyless 16 MB body of small numbers took the worker's loop for seconds and a tree of
        # some 280 MB. The id is looked for at the start of the body, without a tree.
        s = self.start(workers=1)
        worker = s.workers()[0]
        before = peak_memory_kb(worker)
        numbers = b"1," * (7 * 1024 * 1024)
        body = b'{"jsonrpc": "2.0", "id": "first", "method": "execute", "params": [' + numbers + b'1]}'
        status, _, answer = post(s.port, "/tasks/send", body, key=None, timeout=60)
        self.assertEqual((status, answer["id"], answer["error"]["code"]), (401, "first", -32090))
        # The body itself is held once or twice on its way in; a tree of it is ten times that.
        self.assertLess(peak_memory_kb(worker) - before, 64 * 1024)
        # An id past the start of a long body is answered as null, as JSON-RPC allows.
        body = b'{"jsonrpc": "2.0", "method": "execute", "params": [' + numbers + b'1], "id": "last"}'
        status, _, answer = post(s.port, "/tasks/send", body, key=None, timeout=60)
        self.assertEqual((status, answer["id"]), (401, None))
        self.assertEqual(worker, s.workers()[0])

    def test_without_api_keys_the_endpoints_stay_open_as_the_seeds(self):
        s = self.start(workers=1, client_keys=False)
        self.assertEqual(execute(s.port, "no key", key=None)[0], 200)
        self.assertEqual(post(s.port, CHAT, {"model": "agent-ok"}, key=None)[0], 200)


class BoundsTest(AgentTest):
    def db_rows(self, sql):
        path = os.path.join(self.state_dir, DB_NAME)
        if not os.path.exists(path):
            return []
        c = sqlite3.connect(path, timeout=5)
        try:
            return c.execute(sql).fetchall()
        finally:
            c.close()

    def test_oversized_and_control_character_ids_are_refused(self):
        s = self.start(workers=2)
        huge = "c" * (5 * 1024 * 1024)   # a 5 MB context_id used to be stored
        for context_id in (huge, "c" * 129, "line\nbreak"):
            status, _, answer = execute(s.port, "hi", context_id=context_id, rpc_id="e1")
            self.assertEqual((status, answer["error"]["code"]), (200, -32602), str(answer)[:300])
            self.assertIn("context_id", answer["error"]["message"])
        for message in (a2a_message("hi", context_id="x" * 129), dict(a2a_message("hi"), messageId="m" * 200),
                        dict(a2a_message("hi"), taskId="t" * 200)):
            status, _, answer = rpc(s.port, "SendMessage", {"message": message}, "s1")
            self.assertEqual(answer["error"]["code"], -32602, str(answer)[:300])
        status, _, answer = rpc(s.port, "GetTask", {"id": "t" * 500}, "g1")
        self.assertEqual(answer["error"]["code"], -32602)
        self.assertIn("longer than 128 bytes", answer["error"]["message"])
        status, _, answer = post(s.port, "/agent/stream/studly",
                                 {"messages": [{"role": "user", "content": "x"}], "context_id": "n" * 129})
        self.assertEqual(status, 400, answer)
        self.assertEqual(self.fake.requests(), [])
        self.assertEqual(self.db_rows("SELECT id FROM contexts"), [])
        # 128 bytes is fine.
        self.assertEqual(execute(s.port, "hi", context_id="k" * 128)[0], 200)
        self.assertEqual(self.db_rows("SELECT length(id) FROM contexts"), [(128,)])

    def test_stored_history_is_bounded_in_bytes(self):
        # Four 15 MB execute calls used to add 60 MB: max_messages alone bounded nothing in bytes.
        s = self.start(workers=2, agent=["max_context_bytes = 8192"])
        for i in range(4):
            self.assertEqual(execute(s.port, f"{i}" + "x" * 3000, context_id="heavy")[0], 200)
        sizes = self.db_rows("SELECT SUM(length(CAST(content AS BLOB)) + length(role)) FROM messages "
                             "WHERE context_id = 'heavy'")
        self.assertLessEqual(sizes[0][0], 8192)
        # Only what the bound kept went upstream with the next turn: the newest turns.
        self.assertEqual(execute(s.port, "and now?", context_id="heavy")[0], 200)
        sent = [m["content"][:1] for m in self.last_upstream_messages() if m["role"] == "user"]
        self.assertEqual(sent, ["2", "3", "a"])
        # One message past the bound is answered, and not kept.
        big = "y" * (1024 * 1024)
        self.assertEqual(execute(s.port, big, context_id="one-big")[0], 200)
        stored = self.db_rows("SELECT COALESCE(SUM(length(content)), 0) FROM messages WHERE context_id = 'one-big'")
        self.assertLessEqual(stored[0][0], 8192)


class StoreUnavailableTest(AgentTest):
    def test_a_store_that_cannot_open_is_a_503_before_the_llm_is_called(self):
        # A turn used to go upstream without its history (a wrong answer) and be forgotten after.
        self.state_dir = "/proc/agente-no-such-dir"   # cannot be created, not even by root
        s = self.start(workers=1)
        status, _, answer = execute(s.port, "remember me", context_id="lost")
        self.assertEqual(status, 503, answer)
        self.assertEqual(answer["error"], {"code": -32603, "data": {"http_status": 503},
                                           "message": "Service unavailable: conversation store unavailable: try again later"})
        status, _, answer = rpc(s.port, "SendMessage", {"message": a2a_message("a task")}, "s")
        self.assertEqual(status, 503, answer)
        status, _, body = post(s.port, "/agent/stream/studly", {"messages": [{"role": "user", "content": "x"}]})
        self.assertEqual((status, body), (503, {"error": {"code": 503, "message": "conversation store unavailable: "
                                                                                  "try again later"}}))
        self.assertEqual(self.fake.requests("ok"), [])
        self.assertIn("agent: reading context lost: context store unavailable", s.read_log())

    def test_a_store_down_is_logged_a_few_times_not_once_per_request(self):
        # Anyone who can send a request could otherwise write two error lines with each.
        self.state_dir = "/proc/agente-no-such-dir"
        s = self.start(workers=1)
        for i in range(20):
            self.assertEqual(execute(s.port, "hello", context_id=f"c{i}")[0], 503)
        log = s.read_log()
        self.assertEqual(len(re.findall(r"agent: reading context c\d+: ", log)), 5, log)
        self.assertLessEqual(len(re.findall(r"agent: context store: ", log)), 5, log)


class CardHostTest(AgentTest):
    def card_url(self, port, host_line):
        raw = raw_request(port, b"GET /.well-known/agent-card.json HTTP/1.1\r\n" + host_line
                          + b"Connection: close\r\n\r\n")
        if status_of(raw) != 200:
            return status_of(raw)
        return json.loads(raw.split(b"\r\n\r\n", 1)[1])["supportedInterfaces"][0]["url"]

    def test_the_card_names_the_host_only_when_host_is_one(self):
        s = self.start(workers=1)
        self.assertEqual(self.card_url(s.port, b"Host: agents.example:8443\r\n"), "http://agents.example:8443/tasks/send")
        self.assertEqual(self.card_url(s.port, b"Host: [::1]:8000\r\n"), "http://[::1]:8000/tasks/send")
        # Anything else would send clients (and their keys) where the request said: a relative URL,
        # or the core's own 400 for a Host that is no host.
        for host in (b"evil.example/phish?x=", b"user@evil.example", b"evil.example:99999", b"evil.example#x"):
            self.assertIn(self.card_url(s.port, b"Host: " + host + b"\r\n"), ("/tasks/send", 400), host)
        raw = raw_request(s.port, b"GET /.well-known/agent.json HTTP/1.0\r\n\r\n")   # HTTP/1.0, no Host
        self.assertEqual(status_of(raw), 200, raw[:200])
        self.assertEqual(json.loads(raw.split(b"\r\n\r\n", 1)[1])["url"], "/tasks/send")


class StopTest(AgentTest):
    def start(self, workers=1, **kwargs):
        # graceful_timeout is a core setting: before the first [table].
        conf = ["graceful_timeout = 1"] + agent_conf(self.fake.url, self.state_dir, workers, **kwargs)
        s = self.server(conf, env=gateway_env())
        s.start(workers=workers)
        return s

    def test_term_past_graceful_timeout_answers_json_rpc_before_the_answer_started(self):
        s = self.start(agents={"studly": ['model = "agent-hang"']})
        call = lambda: execute(s.port, "wait", rpc_id="t1", timeout=30)  # noqa: E731
        status, headers, answer = answer_to_a_term(self, s, call, "hang")
        # It was the core's "500 handler sent no response", which no JSON-RPC client reads.
        self.assertEqual(status, 503, answer)
        self.assertEqual((answer["id"], answer["error"]["code"]), ("t1", -32603))
        self.assertEqual(answer["error"]["data"], {"http_status": 503})
        self.assertEqual(headers.get("connection"), "close")


if __name__ == "__main__":
    import unittest
    unittest.main()
