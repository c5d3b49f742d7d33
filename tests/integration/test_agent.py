"""The agent endpoints through the real binary, several workers, against the fake OpenAI upstream
(tests/fake_upstream/fake_openai.py): the seed's curl request, JSON-RPC errors, the hard deadline,
NDJSON streams, A2A tasks and cancellation, and conversation contexts shared by workers and kept
across a SIGHUP and a restart. The helpers at the top are shared with test_agent_*.py."""
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import unittest

from harness import ChunkedReader, ServerTest, http_get, raw_request, status_of, wait_until
from test_gateway import CLIENT_KEY, FakeUpstream, gateway_conf, gateway_env, post

SEED_REQUEST = {
    "jsonrpc": "2.0",
    "id": "test-1",
    "method": "execute",
    "params": {"messages": [{"kind": "message", "role": "user",
                             "parts": [{"kind": "text", "text": "Help me learn Python"}]}]},
}
SYSTEM_PROMPT = "You are Studly, a study planner."
FAKE_REPLY = "Hello from the fake upstream."
DB_NAME = "agent-contexts.sqlite3"


def agent_conf(fake_url, state_dir, workers=3, gateway=(), agent=(), agents=None, client_keys=True):
    """server.conf lines: the gateway with providers "fake" (the seeds' short timeouts) and "patient",
    models agent-ok/-slow/-hang/-fail, then [agent] and one [agents.ID] per entry of `agents`.
    Without `client_keys`, no [gateway] api_keys: the endpoints are open, as the seeds' were."""
    lines = gateway_conf(fake_url, workers, gateway, client_keys=client_keys,
                         providers={"fake": [], "patient": ["first_byte_timeout = 30", "total_timeout = 60"]},
                         models={"agent-ok": [("fake", "ok")], "agent-slow": [("fake", "slow")],
                                 "agent-hang": [("patient", "hang")], "agent-fail": [("fake", "fail500")]})
    lines += ["", "[agent]", 'name = "Studly"', 'description = "Plans your studies"', 'version = "2.1.0"',
              f'state_dir = "{state_dir}"', *agent]
    agents = agents if agents is not None else {"studly": []}
    if "studly" in agents and not any(line.startswith("default_agent") for line in agent):
        lines.append('default_agent = "studly"')
    for agent_id, extra in agents.items():
        settings = {"model": '"agent-ok"', "system_prompt": f'"{SYSTEM_PROMPT}"',
                    "skills": '[{ id = "study-plan", name = "Study plans", tags = ["study"], '
                              'examples = ["Help me learn Python"] }]'}
        settings.update(line.split(" = ", 1) for line in extra)
        lines += ["", f"[agents.{agent_id}]"] + [f"{k} = {v}" for k, v in settings.items()]
    return lines


def rpc(port, method, params=None, rpc_id="1", timeout=10, key=CLIENT_KEY):
    body = {"jsonrpc": "2.0", "id": rpc_id, "method": method}
    if params is not None:
        body["params"] = params
    return post(port, "/tasks/send", body, key=key, timeout=timeout)


def execute(port, text, context_id=None, rpc_id="1", timeout=10, key=CLIENT_KEY):
    params = {"messages": [{"kind": "message", "role": "user", "parts": [{"kind": "text", "text": text}]}]}
    if context_id:
        params["context_id"] = context_id
    return rpc(port, "execute", params, rpc_id, timeout, key)


AUTH = [f"Authorization: Bearer {CLIENT_KEY}"]   # header lines of a raw or streamed request


def a2a_message(text, context_id=None, v1=True):
    m = {"messageId": f"m-{time.monotonic_ns()}", "role": "ROLE_USER" if v1 else "user",
         "parts": [{"text": text} if v1 else {"kind": "text", "text": text}]}
    if not v1:
        m["kind"] = "message"
    if context_id:
        m["contextId"] = context_id
    return m


class AgentTest(ServerTest):
    def setUp(self):
        self.fake = FakeUpstream()
        self.addCleanup(self.fake.stop)
        self.state_dir = tempfile.mkdtemp(prefix="agente-agent-state-")
        self.addCleanup(shutil.rmtree, self.state_dir, True)

    def start(self, workers=3, **kwargs):
        s = self.server(agent_conf(self.fake.url, self.state_dir, workers, **kwargs), env=gateway_env())
        s.start(workers=workers)
        self.addCleanup(self.assert_no_worker_crashed, s)
        return s

    def assert_no_worker_crashed(self, server):
        if os.path.exists(server.log_path):   # a test that stopped its server itself checked nothing here
            self.assertNotRegex(server.read_log(), r"crashed with signal|exited unexpectedly|killed for timeout")

    def db(self):
        c = sqlite3.connect(os.path.join(self.state_dir, DB_NAME), timeout=5)
        self.addCleanup(c.close)
        return c

    def last_upstream_messages(self, model="ok"):
        return self.fake.requests(model)[-1]["body"]["messages"]

    def wait_upstream_closed(self):
        """When the fake upstream saw every gateway connection closed (None if not within 5 s)."""
        def closed():
            conns = [c for c in self.fake.log()["connections"] if c["api"]]
            return conns and all(c["closed"] for c in conns) and max(c["closed"] for c in conns)
        return wait_until(closed, timeout=5, interval=0.01)


class ExecuteTest(AgentTest):
    def test_the_seeds_curl_request_works(self):
        s = self.start(client_keys=False)   # the seed's client sends no key: a server without api_keys
        self.assertEqual(http_get(s.port, "/")[2], b"Server is live")
        out = subprocess.run(["curl", "-sS", "-X", "POST", f"http://127.0.0.1:{s.port}/tasks/send",
                              "-H", "Content-Type: application/json", "-d", json.dumps(SEED_REQUEST)],
                             capture_output=True, text=True, timeout=10)
        answer = json.loads(out.stdout)
        self.assertEqual(answer["jsonrpc"], "2.0")
        self.assertEqual(answer["id"], "test-1")
        result = answer["result"]
        self.assertEqual((result["kind"], result["role"]), ("message", "agent"))
        self.assertEqual(result["parts"], [{"kind": "text", "text": FAKE_REPLY}])
        self.assertTrue(result["contextId"])
        sent = self.last_upstream_messages()
        self.assertEqual(sent, [{"role": "system", "content": SYSTEM_PROMPT},
                                {"role": "user", "content": "Help me learn Python"}])

    def test_agent_cards_come_from_server_conf(self):
        s = self.start()
        status, headers, body = http_get(s.port, "/.well-known/agent-card.json")
        self.assertEqual(status, 200)
        card = json.loads(body)
        self.assertEqual((card["name"], card["description"], card["version"]), ("Studly", "Plans your studies", "2.1.0"))
        self.assertTrue(card["capabilities"]["streaming"])
        self.assertEqual(card["skills"][0]["id"], "study-plan")
        self.assertEqual(card["defaultInputModes"], ["text/plain"])
        iface = card["supportedInterfaces"][0]
        self.assertEqual((iface["protocolBinding"], iface["protocolVersion"]), ("JSONRPC", "1.0"))
        self.assertEqual(iface["url"], f"http://127.0.0.1:{s.port}/tasks/send")
        legacy = json.loads(http_get(s.port, "/.well-known/agent.json")[2])
        self.assertEqual(legacy["url"], f"http://127.0.0.1:{s.port}/tasks/send")
        self.assertEqual(legacy["protocolVersion"], "0.3.0")
        self.assertEqual(legacy["skills"][0]["examples"], ["Help me learn Python"])

    def test_raw_request_bytes_and_deep_bodies_get_4xx_and_no_worker_dies(self):
        # Found by test_malformed_input: invalid UTF-8 echoed into JSON threw (500), and deeply nested
        # values copied out of a parsed body overflowed the stack (SIGSEGV).
        s = self.start(workers=2)
        before = s.workers()
        head = f"Host: 127.0.0.1\r\nAuthorization: Bearer {CLIENT_KEY}\r\nConnection: close\r\n".encode()

        def post_raw(path, body):
            return raw_request(s.port, b"POST " + path + b" HTTP/1.1\r\n" + head
                               + b"Content-Length: %d\r\n\r\n" % len(body) + body)

        self.assertEqual(status_of(post_raw(b"/agent/stream/\xff", b'{"messages":[]}')), 404)
        deep_role = b'{"messages":[{"role":' + b'{"a":' * 100000 + b"1" + b"}" * 100000 + b',"content":"x"}]}'
        self.assertEqual(status_of(post_raw(b"/agent/stream/studly", deep_role)), 400)
        deep_id = b'{"jsonrpc":"2.0","method":"x","id":' + b'{"a":' * 100000 + b"1" + b"}" * 100001
        answer = post_raw(b"/tasks/send", deep_id)
        self.assertEqual(json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["code"], -32700, answer[:300])
        card = raw_request(s.port, b"GET /.well-known/agent-card.json HTTP/1.1\r\nHost: \xff\r\n"
                                   b"X-Forwarded-Proto: \xff\r\nConnection: close\r\n\r\n")
        if status_of(card) == 200:   # (or the core's 400 for a Host that is no host)
            url = json.loads(card.split(b"\r\n\r\n", 1)[1])["supportedInterfaces"][0]["url"]
            self.assertEqual(url, "/tasks/send")   # no host in Host: a relative URL, nothing of it echoed
        else:
            self.assertEqual(status_of(card), 400, card[:300])
        self.assertEqual(s.workers(), before)
        self.assertNotIn("crashed", s.read_log())

    def test_a_reload_serves_the_new_card_and_agents(self):
        s = self.start(workers=2)
        conf = agent_conf(self.fake.url, self.state_dir, 2, agent=['url = "https://agents.example.com"'],
                          agents={"studly": [], "coach": ['name = "Coach"']})
        s.write_conf([line.replace('name = "Studly"', 'name = "Studly 2"') for line in conf])
        old = set(s.workers())
        s.signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: len(s.workers()) == 2 and not (set(s.workers()) & old), timeout=15))
        card = json.loads(http_get(s.port, "/.well-known/agent-card.json")[2])
        self.assertEqual(card["name"], "Studly 2")
        self.assertEqual(card["supportedInterfaces"][0]["url"], "https://agents.example.com/tasks/send")
        self.assertEqual(len(card["skills"]), 2)
        status, _, answer = rpc(s.port, "execute", {"agent_id": "coach", **SEED_REQUEST["params"]}, "r1")
        self.assertEqual((status, answer["result"]["parts"][0]["text"]), (200, FAKE_REPLY))

    def test_malformed_json_rpc_gets_the_standard_codes_with_the_id_echoed(self):
        s = self.start(workers=2)
        cases = [
            (b"{not json", 400, -32700, None),
            (b"[1, 2]", 400, -32600, None),
            (json.dumps({"id": 7, "method": "execute"}).encode(), 400, -32600, 7),
            (json.dumps({"jsonrpc": "2.0", "id": 8}).encode(), 400, -32600, 8),
            (json.dumps({"jsonrpc": "2.0", "id": "x", "method": "nope"}).encode(), 200, -32601, "x"),
            (json.dumps({"jsonrpc": "2.0", "id": "p1", "method": "execute"}).encode(), 200, -32602, "p1"),
            (json.dumps({"jsonrpc": "2.0", "id": "p2", "method": "execute",
                         "params": {"messages": [{"role": "robot", "parts": []}]}}).encode(), 200, -32602, "p2"),
            (json.dumps({"jsonrpc": "2.0", "id": "p3", "method": "SendMessage", "params": {}}).encode(), 200, -32602, "p3"),
            (json.dumps({"jsonrpc": "2.0", "id": "p4", "method": "execute",
                         "params": {"agent_id": "nobody", **SEED_REQUEST["params"]}}).encode(), 200, -32602, "p4"),
            (json.dumps({"jsonrpc": "2.0", "id": 9, "method": "GetTask", "params": {"id": "no-such-task"}}).encode(),
             200, -32001, 9),
            (json.dumps({"jsonrpc": "2.0", "id": 10, "method": "CreateTaskPushNotificationConfig", "params": {}}).encode(),
             200, -32003, 10),
            (json.dumps({"jsonrpc": "2.0", "id": 11, "method": "tasks/resubscribe", "params": {}}).encode(), 200, -32004, 11),
        ]
        for raw, status, code, rpc_id in cases:
            with self.subTest(body=raw):
                got_status, _, answer = post(s.port, "/tasks/send", raw)
                self.assertEqual(got_status, status)
                self.assertEqual(answer["jsonrpc"], "2.0")
                self.assertEqual(answer["error"]["code"], code)
                self.assertIn("id", answer)
                self.assertEqual(answer["id"], rpc_id)

    def test_upstream_failure_is_a_json_rpc_error(self):
        s = self.start(workers=2, agents={"studly": [], "broken": ['model = "agent-fail"']})
        status, _, answer = rpc(s.port, "execute", {"agent_id": "broken", **SEED_REQUEST["params"]}, "f1")
        self.assertEqual(status, 502)
        self.assertEqual(answer["id"], "f1")
        self.assertEqual(answer["error"]["code"], -32603)
        self.assertEqual(answer["error"]["data"]["http_status"], 502)


class DeadlineTest(AgentTest):
    def request_raw(self, port, body):
        """Sends the request; returns (seconds to the whole answer, answer bytes, closed by the server)."""
        payload = json.dumps(body).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            t0 = time.monotonic()
            sock.sendall(b"POST /tasks/send HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         + f"Authorization: Bearer {CLIENT_KEY}\r\n".encode()
                         + f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
            data = b""
            while b"\r\n\r\n" not in data:
                data += sock.recv(65536)
            head, rest = data.split(b"\r\n\r\n", 1)
            length = int([h.split(b":")[1] for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")][0])
            while len(rest) < length:
                rest += sock.recv(65536)
            elapsed = time.monotonic() - t0
            sock.settimeout(2)
            closed = sock.recv(1) == b""
            return elapsed, head.decode(), json.loads(rest[:length]), closed

    def test_slow_upstream_gets_408_on_time_and_the_upstream_call_is_cancelled(self):
        s = self.start(workers=2, agent=["request_deadline = 1"],
                       agents={"studly": ['model = "agent-slow"', "params = { fake_delay_ms = 4000 }"]})
        body = dict(SEED_REQUEST, id="slow-7")
        elapsed, head, answer, closed = self.request_raw(s.port, body)
        answered = time.time()
        self.assertIn(" 408 ", head.split("\r\n")[0])
        self.assertGreaterEqual(elapsed, 0.95)
        self.assertLess(elapsed, 1.1)
        self.assertEqual(answer["id"], "slow-7")
        self.assertEqual(answer["error"]["code"], -32000)
        self.assertTrue(closed, "the connection must be closed after the 408")
        upstream_closed = self.wait_upstream_closed()
        self.assertIsNotNone(upstream_closed, "the upstream call was never cancelled")
        self.assertLess(upstream_closed - answered, 0.5)

    def test_a2a_task_stopped_by_the_deadline_is_recorded_as_failed(self):
        s = self.start(workers=2, agent=["request_deadline = 0.5"],
                       agents={"studly": ['model = "agent-slow"', "params = { fake_delay_ms = 3000 }"]})
        status, _, answer = rpc(s.port, "SendMessage", {"message": a2a_message("slow one", context_id="dl")}, "d1")
        self.assertEqual(status, 408)
        self.assertEqual((answer["id"], answer["error"]["code"]), ("d1", -32000))
        db = self.db()
        state = lambda: db.execute("SELECT state FROM tasks WHERE context_id = 'dl'").fetchone()
        wait_until(lambda: state() == ("failed",), timeout=5)
        self.assertEqual(state(), ("failed",))
        task_id = db.execute("SELECT id FROM tasks WHERE context_id = 'dl'").fetchone()[0]
        _, _, got = rpc(s.port, "GetTask", {"id": task_id})
        self.assertEqual(got["result"]["status"]["state"], "TASK_STATE_FAILED")

    def test_default_deadline_is_the_seeds_six_seconds(self):
        s = self.start(workers=2, agents={"studly": ['model = "agent-hang"']})
        elapsed, head, answer, closed = self.request_raw(s.port, SEED_REQUEST)
        self.assertIn(" 408 ", head.split("\r\n")[0])
        self.assertGreaterEqual(elapsed, 5.95)
        self.assertLess(elapsed, 6.1)
        self.assertEqual((answer["id"], answer["error"]["code"]), ("test-1", -32000))
        self.assertTrue(closed)


class NdjsonTest(AgentTest):
    def stream(self, port, agent_id, body, key=CLIENT_KEY):
        headers = [f"Authorization: Bearer {key}"] if key else []
        r = ChunkedReader(port, f"/agent/stream/{agent_id}", body, headers)
        self.addCleanup(r.close)
        return r

    def test_events_arrive_one_by_one_in_order(self):
        s = self.start(agents={"studly": ["params = { fake_chunks = 5, fake_interval_ms = 250 }"]})
        r = self.stream(s.port, "studly", {"messages": [{"role": "user", "content": "Hello"}], "stream_workflows": True})
        self.assertEqual(r.status, 200)
        self.assertIn("application/x-ndjson", r.head.lower())
        events = r.lines()
        kinds = [e["type"] for _, e in events]
        self.assertEqual(kinds, ["start"] + ["content"] * 5 + ["done"])
        self.assertEqual([e["content"] for _, e in events[1:6]], [f"tok{i} " for i in range(5)])
        self.assertEqual(events[-1][1]["content"], "tok0 tok1 tok2 tok3 tok4 ")
        # The upstream spaces the five 250 ms apart. A gap as this client sees it also holds the
        # client's own scheduling: one late read lengthens the gap before it and shortens the one
        # after (0.191 s was seen on a loaded machine). So one short gap is noise; an agent that held
        # events back, even in pairs, hands at least two over together.
        gaps = [b[0] - a[0] for a, b in zip(events[1:6], events[2:6])]
        self.assertGreaterEqual(sum(g > 0.2 for g in gaps), 3, f"content events were bunched: {gaps}")
        self.assertTrue(self.fake.requests("ok")[-1]["body"]["stream"])

    def test_an_upstream_that_cannot_stream_still_gives_its_reply_as_content(self):
        s = self.start(agents={"studly": ["params = { fake_json_stream = true }"]})
        r = self.stream(s.port, "studly", {"messages": [{"role": "user", "content": "Hello"}]})
        events = r.lines()
        self.assertEqual([e["type"] for _, e in events], ["start", "content", "done"])
        self.assertEqual(events[1][1]["content"], FAKE_REPLY)

    def test_client_leaving_mid_stream_closes_the_upstream(self):
        s = self.start(workers=2, agents={"studly": ["params = { fake_chunks = 20, fake_interval_ms = 200 }"]})
        r = self.stream(s.port, "studly", {"messages": [{"role": "user", "content": "Hello"}]})
        r.next("\n")
        r.next("\n")   # the first content event: the upstream stream is running
        r.close()
        left = time.time()
        closed = self.wait_upstream_closed()
        self.assertIsNotNone(closed, "the upstream stream went on after the client left")
        self.assertLess(closed - left, 0.5)
        status, _, _ = execute(s.port, "still serving")
        self.assertEqual(status, 200)

    def test_bearer_token_and_agent_are_checked(self):
        s = self.start(workers=2)
        body = {"messages": [{"role": "user", "content": "Hello"}]}
        self.assertEqual(self.stream(s.port, "studly", body, key=None).status, 401)
        self.assertEqual(self.stream(s.port, "studly", body, key="wrong").status, 401)
        self.assertEqual(self.stream(s.port, "nobody", body).status, 404)
        self.assertEqual(self.stream(s.port, "studly", {"nope": 1}).status, 400)

    def test_shared_stream_limit_gives_429_and_open_breaker_503(self):
        s = self.start(gateway=["max_concurrent_streams = 1", "circuit_breaker_threshold = 2", "retries = 0"],
                       agents={"studly": ["params = { fake_chunks = 3, fake_interval_ms = 1000 }"],
                               "broken": ['model = "agent-fail"']})
        body = {"messages": [{"role": "user", "content": "Hello"}]}
        held = self.stream(s.port, "studly", body)
        self.assertEqual(held.status, 200)
        held.next("\n")   # the start event: the slot is taken
        for _ in range(3):   # whichever worker answers: the limit is shared
            self.assertEqual(self.stream(s.port, "studly", body).status, 429)
        # A2A streams count against the same limit, refused as a JSON-RPC error.
        status, headers, answer = rpc(s.port, "SendStreamingMessage", {"message": a2a_message("hi")}, "l1")
        self.assertEqual((status, headers.get("retry-after")), (429, "1"))
        self.assertEqual((answer["id"], answer["error"]["code"]), ("l1", -32603))
        held.lines()
        # The slot is given back as the handler unwinds, just after the last byte went out.
        active = lambda: json.loads(http_get(s.port, "/system/streaming-health")[2])["web_worker_streams"]["active"]
        self.assertTrue(wait_until(lambda: active() == 0, timeout=5), "the stream slot was never given back")
        for _ in range(2):
            failed = self.stream(s.port, "broken", body)
            self.assertEqual(failed.status, 200)
            self.assertEqual([e["type"] for _, e in failed.lines()], ["start", "error"])
            self.assertTrue(wait_until(lambda: active() == 0, timeout=5), "the stream slot was never given back")
        for _ in range(3):
            self.assertEqual(self.stream(s.port, "broken", body).status, 503)


class A2ATest(AgentTest):
    def test_v03_methods_send_get_and_cancel_a_finished_task(self):
        s = self.start(workers=2)
        status, _, answer = rpc(s.port, "message/send", {"message": a2a_message("hi", v1=False)}, "s1")
        self.assertEqual(status, 200)
        task = answer["result"]
        self.assertEqual((task["kind"], task["status"]["state"]), ("task", "completed"))
        self.assertEqual(task["artifacts"][0]["parts"], [{"kind": "text", "text": FAKE_REPLY}])
        _, _, got = rpc(s.port, "tasks/get", {"id": task["id"]}, "g1")
        self.assertEqual((got["result"]["id"], got["result"]["status"]["state"]), (task["id"], "completed"))
        _, _, v1 = rpc(s.port, "GetTask", {"id": task["id"]}, "g2")
        self.assertEqual(v1["result"]["status"]["state"], "TASK_STATE_COMPLETED")
        _, _, cancel = rpc(s.port, "tasks/cancel", {"id": task["id"]}, "c1")
        self.assertEqual((cancel["id"], cancel["error"]["code"]), ("c1", -32002))

    def test_v1_streaming_message_and_cancel_stops_the_upstream(self):
        s = self.start(workers=2, agents={"studly": ['model = "agent-slow"', "params = { fake_delay_ms = 4000 }"]})
        for attempt in range(3):   # either worker may take the cancel: locally or through the store
            with self.subTest(attempt=attempt):
                r = ChunkedReader(s.port, "/tasks/send", {"jsonrpc": "2.0", "id": 41, "method": "SendStreamingMessage",
                                                           "params": {"message": a2a_message("plan my week")}}, AUTH)
                self.addCleanup(r.close)
                self.assertEqual(r.status, 200)
                self.assertIn("text/event-stream", r.head.lower())
                _, first = r.sse_event()
                self.assertEqual(first["id"], 41)
                task_id = first["result"]["task"]["id"]
                self.assertEqual(first["result"]["task"]["status"]["state"], "TASK_STATE_SUBMITTED")
                _, working = r.sse_event()
                self.assertEqual(working["result"]["statusUpdate"]["status"]["state"], "TASK_STATE_WORKING")
                wait_until(lambda: len(self.fake.requests("slow")) > attempt, timeout=5, interval=0.01)
                t0 = time.monotonic()
                status, _, answer = rpc(s.port, "CancelTask", {"id": task_id}, "c2")
                self.assertEqual(status, 200)
                self.assertEqual(answer["result"]["status"]["state"], "TASK_STATE_CANCELED")
                self.assertLess(time.monotonic() - t0, 1.0)
                events = []
                while (e := r.sse_event()) is not None:
                    events.append(e[1])
                self.assertEqual(events[-1]["result"]["statusUpdate"]["status"]["state"], "TASK_STATE_CANCELED")
                self.assertIsNotNone(self.wait_upstream_closed(), "the upstream call was not stopped")


    def test_cancel_of_a_task_another_process_runs_goes_through_the_store(self):
        # Two servers on one state directory: the task runs on A, CancelTask reaches B, which can only
        # record the request; A's workers see it and stop the upstream call.
        agents = {"studly": ['model = "agent-slow"', "params = { fake_delay_ms = 5000 }"]}
        a = self.start(workers=1, agents=agents)
        b = self.start(workers=1, agents=agents)
        r = ChunkedReader(a.port, "/tasks/send", {"jsonrpc": "2.0", "id": "x1", "method": "message/stream",
                                                  "params": {"message": a2a_message("long one", v1=False)}}, AUTH)
        self.addCleanup(r.close)
        _, first = r.sse_event()
        task_id = first["result"]["id"]
        self.assertEqual(first["result"]["status"]["state"], "submitted")
        self.assertTrue(wait_until(lambda: self.fake.requests("slow"), timeout=5, interval=0.01))
        t0 = time.monotonic()
        status, _, answer = rpc(b.port, "tasks/cancel", {"id": task_id}, "x2")
        self.assertEqual(status, 200)
        self.assertEqual((answer["id"], answer["result"]["status"]["state"]), ("x2", "canceled"))
        self.assertLess(time.monotonic() - t0, 1.0)
        events = []
        while (e := r.sse_event()) is not None:
            events.append(e[1]["result"])
        self.assertEqual((events[-1]["kind"], events[-1]["status"]["state"], events[-1]["final"]),
                         ("status-update", "canceled", True))
        self.assertIsNotNone(self.wait_upstream_closed())


class ContextTest(AgentTest):
    def test_conversation_continues_across_workers_a_sighup_and_a_restart(self):
        s = self.start(workers=3)
        texts = [f"turn {i}" for i in range(8)]
        for i in range(4):
            status, _, answer = execute(s.port, texts[i], context_id="ctx-A", rpc_id=i)
            self.assertEqual(status, 200, answer)
            self.assertEqual(answer["result"]["contextId"], "ctx-A")
        old = set(s.workers())
        s.signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: len(s.workers()) == 3 and not (set(s.workers()) & old), timeout=15),
                        "a new generation of workers never took over")
        for i in range(4, 6):
            self.assertEqual(execute(s.port, texts[i], context_id="ctx-A")[0], 200)
        sent = self.last_upstream_messages()
        self.assertEqual([m["content"] for m in sent if m["role"] == "user"], texts[:6])
        self.assertEqual(len([m for m in sent if m["role"] == "assistant"]), 5)
        # A restart: a new master, the same state directory.
        self.assert_no_worker_crashed(s)
        s.stop()
        s2 = self.start(workers=2)
        for i in range(6, 8):
            self.assertEqual(execute(s2.port, texts[i], context_id="ctx-A")[0], 200)
        sent = self.last_upstream_messages()
        self.assertEqual([m["content"] for m in sent if m["role"] == "user"], texts)
        self.assertEqual(sent[0], {"role": "system", "content": SYSTEM_PROMPT})
        # The A2A side shares the contexts.
        _, _, answer = rpc(s2.port, "SendMessage", {"message": a2a_message("and now?", context_id="ctx-A")})
        self.assertEqual(answer["result"]["task"]["contextId"], "ctx-A")
        self.assertEqual([m["content"] for m in self.last_upstream_messages() if m["role"] == "user"][-2:],
                         ["turn 7", "and now?"])

    def test_two_processes_share_one_conversation(self):
        # Which worker of one server takes a request is the kernel's choice; two servers on one state
        # directory make "another process continues the conversation" certain.
        a, b = self.start(workers=2), self.start(workers=2)
        for i, server in enumerate([a, b, a, b]):
            self.assertEqual(execute(server.port, f"hop {i}", context_id="shared")[0], 200)
        self.assertEqual([m["content"] for m in self.last_upstream_messages() if m["role"] == "user"],
                         ["hop 0", "hop 1", "hop 2", "hop 3"])

    def test_context_bound_holds_under_many_ids(self):
        s = self.start(workers=3, agent=["max_contexts = 5", "max_messages = 4"])
        errors = []

        def client(n):
            for i in range(n, 40, 8):
                status, _, answer = execute(s.port, f"hello {i}", context_id=f"many-{i}", rpc_id=i)
                if status != 200:
                    errors.append((status, answer))

        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(errors, [])
        db = self.db()
        self.assertLessEqual(db.execute("SELECT COUNT(*) FROM contexts").fetchone()[0], 5)
        # One long conversation: its oldest messages go, the newest stay.
        for i in range(5):
            self.assertEqual(execute(s.port, f"long {i}", context_id="long")[0], 200)
        self.assertLessEqual(db.execute("SELECT COUNT(*) FROM contexts").fetchone()[0], 5)
        rows = db.execute("SELECT role, content FROM messages WHERE context_id = 'long' ORDER BY seq").fetchall()
        self.assertEqual(rows, [("user", "long 3"), ("assistant", FAKE_REPLY), ("user", "long 4"), ("assistant", FAKE_REPLY)],
                         "\n".join(line for line in s.read_log().splitlines() if "agent" in line))
        # The least recently used went first: the five newest survive.
        self.assertEqual(db.execute("SELECT COUNT(*) FROM contexts WHERE id = 'long'").fetchone()[0], 1)
        self.assertEqual(db.execute("PRAGMA journal_mode").fetchone()[0], "wal")
        # An evicted context starts over.
        execute(s.port, "again", context_id="many-0")
        self.assertEqual([m["content"] for m in self.last_upstream_messages() if m["role"] == "user"], ["again"])


class ConfigTest(unittest.TestCase):
    def test_errors_name_file_and_line(self):
        d = tempfile.mkdtemp(prefix="agente-agent-conf-")
        self.addCleanup(shutil.rmtree, d, True)
        conf = os.path.join(d, "server.conf")
        with open(conf, "w") as f:
            f.write('[agent]\nname = "x"\nmax_contexts = 0\n')
        from harness import BIN
        out = subprocess.run([BIN, "-c", conf, "--check-config"], capture_output=True, text=True, timeout=10)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("server.conf:3: agent.max_contexts: expected 1..100000000, got 0", out.stdout + out.stderr)
        # An agent's model must be one the gateway serves: checked by the master, at the agent's line.
        with open(conf, "w") as f:
            f.write('[models."m"]\ntargets = [{ provider = "p", model = "x" }]\n[providers.p]\nbase_url = "http://127.0.0.1:9"\n'
                    '[agents.a]\nname = "A"\nmodel = "nope"\n')
        out = subprocess.run([BIN, "-c", conf, "--check-config"], capture_output=True, text=True, timeout=10)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn('server.conf:7: agents.a.model: unknown model "nope"', out.stdout + out.stderr)


if __name__ == "__main__":
    unittest.main()
