"""An agent grounded in vector stores (docs/agent.md, "Answers from vector stores"): an [agents.ID]
with `vector_stores` answers through the gateway's grounded path (the one /v1/chat/completions takes
for a grounded model) on each of its surfaces, with the citations where each protocol puts
structured data: the seed's `execute` and A2A's SendMessage in a data part of the reply, A2A's
SendStreamingMessage in a last artifact update carrying that part, the NDJSON stream on its `done`
line. The fake upstream's `cite` model answers "... [1]. ... [2, 9]." whatever it is asked."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from test_agent import a2a_message
from test_gateway import CLIENT_KEY, gateway_conf, gateway_env, post
from test_rag_api import DOCS, RagApiTest

QUESTION = "How do bees make honey?"
JS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../js")
HAVE_SDK = shutil.which("node") and os.path.isdir(os.path.join(JS, "node_modules", "@a2a-js", "sdk"))


def rpc(port, method, params):
    return post(port, "/tasks/send", {"jsonrpc": "2.0", "id": "r1", "method": method, "params": params},
                key=CLIENT_KEY, timeout=20)


class GroundedAgent(RagApiTest):
    def start_agent(self):
        """Agent "librarian" (model "plain": not grounded itself) on the store "manuals"; agent "chatty"
        on the same model without stores."""
        self.state = tempfile.mkdtemp(prefix="agente-rag-agent-")
        conf = gateway_conf(self.fake.url, workers=2, providers={"main": []},
                            models={"emb": [("main", "ok")], "plain": [("main", "cite")]})
        conf = ["dirty_workers = 1"] + conf + ["", "[rag]", 'embedding_model = "emb"',
                                              "", "[agent]", f'state_dir = "{self.state}"', 'default_agent = "librarian"',
                                              "", "[agents.librarian]", 'model = "plain"',
                                              'system_prompt = "You are the librarian."',
                                              'vector_stores = ["manuals"]', "max_sources = 2",
                                              "", "[agents.chatty]", 'model = "plain"']
        s = self.server(conf, env=dict(gateway_env(), STATE_DIRECTORY=self.state))
        s.start(workers=3)
        self.addCleanup(self.assert_no_secret_in_log, s)
        self.s = s
        return s

    def manuals(self):
        ids = [self.upload(n, t)["id"] for n, t in DOCS.items()]
        vs = self.new_store(name="manuals")
        for fid in ids:
            self.attach(vs["id"], fid)
        self.wait_done(vs["id"], ids)

    def upstream_chats(self):
        return [r["body"] for r in self.fake.log()["requests"] if r["path"].endswith("/chat/completions")]

    def assert_cites_bees(self, citations):
        self.assertEqual([c["index"] for c in citations], [1, 2])   # [9] names no source
        self.assertEqual((citations[0]["filename"], citations[0]["section"], citations[0]["vector_store"]),
                         ("bees.md", "Bees", "manuals"))
        self.assertIn("nectar of flowers", citations[0]["quote"])

    def assert_sources_went_upstream(self):
        sent = self.upstream_chats()[-1]
        self.assertIn('[1] bees.md, section "Bees"', sent["messages"][0]["content"])
        self.assertEqual(sent["messages"][1], {"role": "system", "content": "You are the librarian."})

    def test_execute_answers_with_a_citations_data_part(self):
        self.start_agent()
        self.manuals()
        params = {"messages": [{"kind": "message", "role": "user", "parts": [{"kind": "text", "text": QUESTION}]}]}
        status, _, r = rpc(self.s.port, "execute", params)
        self.assertEqual(status, 200, r)
        text, data = r["result"]["parts"]
        self.assertIn("[1]", text["text"])
        self.assertEqual(data["kind"], "data")
        self.assert_cites_bees(data["data"]["citations"])
        self.assert_sources_went_upstream()
        # An agent without stores on the same model answers as before: its text alone.
        params["agent_id"] = "chatty"
        status, _, r = rpc(self.s.port, "execute", params)
        self.assertEqual([p["kind"] for p in r["result"]["parts"]], ["text"])
        self.assertNotIn("sources", self.upstream_chats()[-1]["messages"][0].get("content", ""))

    def test_send_message_puts_the_citations_in_the_reply_artifact_both_dialects(self):
        self.start_agent()
        self.manuals()
        status, _, r = rpc(self.s.port, "SendMessage", {"message": a2a_message(QUESTION)})
        self.assertEqual(status, 200, r)
        task = r["result"]["task"]
        self.assertEqual(task["status"]["state"], "TASK_STATE_COMPLETED")
        [artifact] = task["artifacts"]
        text, data = artifact["parts"]
        self.assertIn("[1]", text["text"])
        self.assertEqual(data["mediaType"], "application/json")
        self.assert_cites_bees(data["data"]["citations"])
        status, _, r = rpc(self.s.port, "message/send", {"message": a2a_message(QUESTION, v1=False)})
        self.assertEqual(status, 200, r)
        text, data = r["result"]["artifacts"][0]["parts"]
        self.assertEqual((text["kind"], data["kind"]), ("text", "data"))
        self.assert_cites_bees(data["data"]["citations"])

    def test_get_task_answers_the_citations_send_message_did(self):
        self.start_agent()
        self.manuals()
        status, _, r = rpc(self.s.port, "SendMessage", {"message": a2a_message(QUESTION)})
        self.assertEqual(status, 200, r)
        sent = r["result"]["task"]
        status, _, got = rpc(self.s.port, "GetTask", {"id": sent["id"]})   # whichever worker answers: from the store
        self.assertEqual(status, 200, got)
        self.assertEqual(got["result"]["status"]["state"], "TASK_STATE_COMPLETED")
        self.assertEqual(got["result"]["artifacts"], sent["artifacts"])
        status, _, r = rpc(self.s.port, "message/send", {"message": a2a_message(QUESTION, v1=False)})
        self.assertEqual(status, 200, r)
        status, _, got = rpc(self.s.port, "tasks/get", {"id": r["result"]["id"]})
        self.assertEqual(status, 200, got)
        text, data = got["result"]["artifacts"][0]["parts"]
        self.assertEqual((text["kind"], data["kind"]), ("text", "data"))
        self.assert_cites_bees(data["data"]["citations"])
        # A task of an agent without stores has no data part, now as before.
        status, _, r = rpc(self.s.port, "SendMessage", {"message": a2a_message(QUESTION),
                                                        "metadata": {"agentId": "chatty"}})
        self.assertEqual(status, 200, r)
        status, _, got = rpc(self.s.port, "GetTask", {"id": r["result"]["task"]["id"]})
        self.assertEqual([p.get("mediaType") for p in got["result"]["artifacts"][0]["parts"]], [None])

    def test_a2a_stream_ends_with_the_citations_part(self):
        self.start_agent()
        self.manuals()
        status, headers, raw = rpc(self.s.port, "SendStreamingMessage", {"message": a2a_message(QUESTION)})
        self.assertEqual(status, 200, raw)
        events = [json.loads(e[len("data: "):])["result"] for e in raw.decode().split("\n\n") if e.strip()]
        updates = [e["artifactUpdate"] for e in events if "artifactUpdate" in e]
        text = "".join(p.get("text", "") for u in updates for p in u["artifact"]["parts"])
        self.assertEqual(text, "Honey bees make honey from nectar [1]. The moon pulls the tides [2, 9].")
        last = updates[-1]
        self.assertTrue(last["lastChunk"])
        self.assertTrue(last["append"])
        [data] = last["artifact"]["parts"]
        self.assert_cites_bees(data["data"]["citations"])
        self.assertTrue(all("data" not in p for u in updates[:-1] for p in u["artifact"]["parts"]))
        self.assertEqual(events[-1]["statusUpdate"]["status"]["state"], "TASK_STATE_COMPLETED")

    def test_ndjson_stream_done_line_has_the_citations(self):
        self.start_agent()
        self.manuals()
        body = {"messages": [{"role": "user", "content": QUESTION}]}
        status, _, raw = post(self.s.port, "/agent/stream/librarian", body, key=CLIENT_KEY, timeout=20)
        self.assertEqual(status, 200, raw)
        lines = [json.loads(x) for x in raw.decode().splitlines() if x.strip()]
        self.assertEqual([x["type"] for x in (lines[0], lines[-1])], ["start", "done"])
        self.assertIn("[1]", lines[-1]["content"])
        self.assert_cites_bees(lines[-1]["citations"])
        self.assert_sources_went_upstream()

    def test_nothing_relevant_is_said_so_on_every_surface_without_an_upstream_call(self):
        self.start_agent()
        self.new_store(name="manuals")   # empty: nothing to retrieve
        params = {"messages": [{"kind": "message", "role": "user", "parts": [{"kind": "text", "text": QUESTION}]}]}
        status, _, r = rpc(self.s.port, "execute", params)
        self.assertEqual(status, 200, r)
        text, data = r["result"]["parts"]
        self.assertIn("nothing on this question", text["text"])
        self.assertEqual(data["data"]["citations"], [])
        status, _, raw = post(self.s.port, "/agent/stream/librarian", {"messages": [{"role": "user", "content": QUESTION}]},
                              key=CLIENT_KEY, timeout=20)
        done = json.loads(raw.decode().splitlines()[-1])
        self.assertIn("nothing on this question", done["content"])
        self.assertEqual(done["citations"], [])
        status, _, r = rpc(self.s.port, "SendMessage", {"message": a2a_message(QUESTION)})
        self.assertEqual(r["result"]["task"]["artifacts"][0]["parts"][1]["data"]["citations"], [])
        self.assertEqual(self.upstream_chats(), [])

    def test_a_follow_up_in_a_context_searches_with_the_stored_conversation(self):
        # The agent keeps the conversation: the second turn's query is "And where do they live?" plus
        # the first exchange, which is about bees, not tides or Rust.
        self.start_agent()
        self.manuals()
        status, _, r = rpc(self.s.port, "SendMessage", {"message": a2a_message("Tell me about honey bees")})
        context_id = r["result"]["task"]["contextId"]
        status, _, r = rpc(self.s.port, "SendMessage", {"message": a2a_message("And where do they live?", context_id=context_id)})
        self.assertEqual(status, 200, r)
        sent = self.upstream_chats()[-1]
        self.assertIn("[1] bees.md", sent["messages"][0]["content"])
        self.assertEqual([m["role"] for m in sent["messages"]], ["system", "system", "user", "assistant", "user"])
        # What the search embedded: the question first, then the stored turns before it.
        embedded = [r["body"]["input"] for r in self.fake.log()["requests"] if r["path"].endswith("/embeddings")][-1]
        query = embedded[0] if isinstance(embedded, list) else embedded
        self.assertTrue(query.startswith("And where do they live?\n"), query)
        self.assertIn("Tell me about honey bees", query)

    def test_a_missing_store_fails_the_task_saying_so(self):
        self.start_agent()   # no store "manuals"
        status, _, r = rpc(self.s.port, "SendMessage", {"message": a2a_message(QUESTION)})
        self.assertEqual(status, 200, r)
        task = r["result"]["task"]
        self.assertEqual(task["status"]["state"], "TASK_STATE_FAILED")
        self.assertIn("manuals", task["status"]["message"]["parts"][0]["text"])

    @unittest.skipUnless(HAVE_SDK, "node or tests/js/node_modules missing: run `npm ci --prefix tests/js`")
    def test_the_official_a2a_client_reads_the_citations_part(self):
        self.start_agent()
        self.manuals()
        env = dict(os.environ, AGENTE_BASE_URL=f"http://127.0.0.1:{self.s.port}", AGENTE_API_KEY=CLIENT_KEY)
        out = subprocess.run(["node", "a2a_citations_test.mjs"], cwd=JS, env=env, capture_output=True, text=True,
                             timeout=60)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        summary = json.loads(out.stdout.strip().splitlines()[-1])
        for how in ("sent", "got", "streamed"):
            self.assertIn("[1]", summary[how]["text"], how)
            [citations] = summary[how]["citations"]
            self.assert_cites_bees(citations)


if __name__ == "__main__":
    unittest.main()
