"""Chat completions grounded in vector stores (docs/rag.md, "Answers with citations"): a model with
`vector_stores` retrieves in the dirty pool, sends the numbered sources upstream, and answers with
`citations` naming file, section and the quoted chunk, whole and at the end of a stream. The fake
upstream's `cite` model answers "... [1]. ... [2, 9]." whatever it is asked."""
import json
import tempfile
import unittest

from test_gateway import CLIENT_KEY, post
from test_rag_api import RagApiTest, gateway_conf, gateway_env, DOCS


class GroundedAnswers(RagApiTest):
    def start_grounded(self, dirty=1, retrieval=("max_sources = 2",), more_models=None):
        """A grounded model kb-chat on the store "manuals" (`retrieval`: its retrieval settings), and
        `more_models` {name: [retrieval settings]}, grounded on it too."""
        self.state = tempfile.mkdtemp(prefix="agente-rag-")
        more_models = more_models or {}
        models = {"emb": [("main", "ok")], "kb-chat": [("main", "cite")], **{m: [("main", "cite")] for m in more_models}}
        conf = gateway_conf(self.fake.url, workers=2, providers={"main": []}, models=models)
        for name, settings in {"kb-chat": list(retrieval), **more_models}.items():
            at = conf.index(f'[models."{name}"]') + 2
            conf[at:at] = ['vector_stores = ["manuals"]', *settings]
        conf = [f"dirty_workers = {dirty}"] + conf + ["", "[rag]", 'embedding_model = "emb"']
        s = self.server(conf, env=dict(gateway_env(), STATE_DIRECTORY=self.state))
        s.start(workers=2 + dirty)
        self.addCleanup(self.assert_no_secret_in_log, s)
        self.s = s
        return s

    def manuals(self, docs=DOCS):
        ids = {n: self.upload(n, t)["id"] for n, t in docs.items()}
        vs = self.new_store(name="manuals")
        for fid in ids.values():
            self.attach(vs["id"], fid)
        self.wait_done(vs["id"], ids.values())
        return vs["id"]

    def ask(self, question, model="kb-chat", before=(), **extra):
        """`before`: the conversation's earlier messages, as (role, content) pairs."""
        messages = [{"role": r, "content": c} for r, c in before] + [{"role": "user", "content": question}]
        body = {"model": model, "messages": messages, **extra}
        return post(self.s.port, "/v1/chat/completions", body, key=CLIENT_KEY, timeout=20)

    def upstream_prompts(self):
        return [r["body"] for r in self.fake.log()["requests"] if r["path"].endswith("/chat/completions")]

    def test_the_answer_cites_file_section_and_quote_and_the_sources_went_upstream(self):
        self.start_grounded()
        self.manuals()
        status, _, r = self.ask("How do bees make honey?")
        self.assertEqual(status, 200, r)
        self.assertEqual(r["object"], "chat.completion")
        self.assertEqual(r["model"], "kb-chat")
        self.assertIn("[1]", r["choices"][0]["message"]["content"])
        cites = r["citations"]
        self.assertEqual([c["index"] for c in cites], [1, 2])   # [9] names no source: left out
        first = cites[0]
        self.assertEqual((first["filename"], first["section"], first["vector_store"]), ("bees.md", "Bees", "manuals"))
        self.assertTrue(first["file_id"].startswith("file-"))
        self.assertIn("nectar of flowers", first["quote"])
        self.assertIsNone(first["page"])
        [sent] = self.upstream_prompts()
        system = sent["messages"][0]
        self.assertEqual(system["role"], "system")
        self.assertIn('[1] bees.md, section "Bees"', system["content"])
        self.assertIn("nectar of flowers", system["content"])
        self.assertEqual(sent["messages"][1], {"role": "user", "content": "How do bees make honey?"})
        self.assertEqual(sent["model"], "cite")
        self.assertNotIn("\n[3] ", system["content"])   # max_sources = 2

    def test_a_stream_ends_with_the_citations_before_done(self):
        self.start_grounded()
        self.manuals()
        status, headers, raw = self.ask("How do bees make honey?", stream=True)
        self.assertEqual(status, 200, raw)
        self.assertTrue(headers["content-type"].startswith("text/event-stream"))
        events = [e for e in raw.decode().split("\n\n") if e.strip()]
        self.assertEqual(events[-1], "data: [DONE]")
        chunks = [json.loads(e[len("data: "):]) for e in events[:-1]]
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
        self.assertEqual(text, "Honey bees make honey from nectar [1]. The moon pulls the tides [2, 9].", raw)
        self.assertEqual(chunks[0]["choices"][0]["delta"]["role"], "assistant")
        last = chunks[-1]
        self.assertEqual(last["choices"][0]["finish_reason"], "stop")
        self.assertEqual([c["index"] for c in last["citations"]], [1, 2])
        self.assertEqual(last["citations"][0]["filename"], "bees.md")
        self.assertTrue(all("citations" not in c for c in chunks[:-1]))

    def test_nothing_in_the_stores_is_said_so_without_asking_upstream(self):
        self.start_grounded()
        self.new_store(name="manuals")   # empty
        status, _, r = self.ask("How do bees make honey?")
        self.assertEqual(status, 200, r)
        self.assertIn("nothing on this question", r["choices"][0]["message"]["content"])
        self.assertEqual(r["citations"], [])
        self.assertEqual(self.upstream_prompts(), [])

    def test_a_missing_store_or_question_is_a_clear_4xx(self):
        self.start_grounded()
        status, _, r = self.ask("anything")
        self.assertEqual(status, 404, r)
        self.assertIn("manuals", r["error"]["message"])
        body = {"model": "kb-chat", "messages": [{"role": "system", "content": "no question"}]}
        status, _, r = post(self.s.port, "/v1/chat/completions", body, key=CLIENT_KEY)
        self.assertEqual(status, 400, r)
        self.assertIn("user message", r["error"]["message"])

    def test_a_follow_up_retrieves_what_the_conversation_is_about(self):
        # "and what about its price?" alone is nearer the kettle (its text says "price" twice); with
        # the turns before it, the query is about the blender. kb-last searches the last message
        # only (retrieval_turns = 0): the control that shows the difference is the conversation's.
        self.start_grounded(retrieval=("max_sources = 1",), more_models={"kb-last": ["max_sources = 1", "retrieval_turns = 0"]})
        self.manuals(SHOP)
        before = [("user", "Tell me about the Vortex blender."),
                  ("assistant", "The Vortex blender has a 1200 watt motor and a glass jug [1].")]
        for model, expected in (("kb-last", "kettle.md"), ("kb-chat", "vortex.md")):
            status, _, r = self.ask("And what about its price?", model=model, before=before)
            self.assertEqual(status, 200, r)
            self.assertEqual(r["citations"][0]["filename"], expected, model)
            sent = self.upstream_prompts()[-1]
            self.assertIn(f"[1] {expected}", sent["messages"][0]["content"], model)
            # The conversation goes upstream whole, after the sources.
            self.assertEqual([m["role"] for m in sent["messages"]], ["system", "user", "assistant", "user"])

    def test_the_upstream_usage_is_passed_on_counting_the_sources_in_the_prompt(self):
        self.start_grounded()
        self.manuals()
        status, _, r = self.ask("How do bees make honey?")
        self.assertEqual(status, 200, r)
        [sent] = self.upstream_prompts()
        # The fake counts every word it was sent: the numbered sources are most of them.
        prompt_words = sum(len(m["content"].split()) for m in sent["messages"])
        self.assertGreater(prompt_words, 20)
        answer_words = len(r["choices"][0]["message"]["content"].split())
        self.assertEqual(r["usage"], {"prompt_tokens": prompt_words, "completion_tokens": answer_words,
                                      "total_tokens": prompt_words + answer_words})

        status, _, raw = self.ask("How do bees make honey?", stream=True, stream_options={"include_usage": True})
        self.assertEqual(status, 200, raw)
        events = [e for e in raw.decode().split("\n\n") if e.strip()]
        self.assertEqual(events[-1], "data: [DONE]")
        chunks = [json.loads(e[len("data: "):]) for e in events[:-1]]
        usage_chunk, cited = chunks[-1], chunks[-2]
        self.assertEqual(usage_chunk["choices"], [])
        self.assertEqual(usage_chunk["usage"]["prompt_tokens"], prompt_words)
        self.assertEqual(usage_chunk["usage"]["completion_tokens"], answer_words)
        self.assertEqual([c["index"] for c in cited["citations"]], [1, 2])
        self.assertTrue(all("usage" not in c for c in chunks[:-1]))
        sent = self.upstream_prompts()[-1]
        self.assertEqual(sent["stream_options"], {"include_usage": True})

        # Without include_usage, a stream has no usage chunk (as OpenAI's).
        status, _, raw = self.ask("How do bees make honey?", stream=True)
        chunks = [json.loads(e[len("data: "):]) for e in raw.decode().split("\n\n") if e.strip() and "[DONE]" not in e]
        self.assertTrue(all("usage" not in c for c in chunks))


# Two products whose follow-up question ("its price") only the conversation can tell apart.
SHOP = {
    "vortex.md": "# Vortex blender\n\nThe Vortex blender has a 1200 watt motor and a glass jug. It costs 120 euros.\n",
    "kettle.md": "# Aqua kettle\n\nThe Aqua kettle boils a litre of water. What about its price? Its price is 40 euros, "
                 "the lowest price in the shop.\n",
}


if __name__ == "__main__":
    unittest.main()
