"""OpenAI's Files and Vector Stores API through the real binary: HTTP workers relay to the RAG
engine in the dirty pool (one engine per dirty worker), embeddings from the fake upstream
(tests/fake_upstream: deterministic bag-of-words vectors; the `held` model waits while told to).
Each endpoint, its errors and keys; a dirty worker SIGKILLed mid-search and mid-ingest."""
import json
import os
import re
import signal
import tempfile
import threading
import time
import unittest
import urllib.request
import uuid

from harness import children, cmdline, wait_until
from test_gateway import CLIENT_KEY, GatewayTest, gateway_conf, gateway_env, post

DOCS = {
    "bees.md": "# Bees\n\nHoney bees live in hives and make honey from the nectar of flowers. A colony has one queen.\n",
    "rust.md": "# Rust\n\nRust is a systems programming language with ownership and borrowing, and no garbage collector.\n",
    "tides.md": "# Tides\n\nOcean tides rise and fall twice a day, pulled by the gravity of the moon and the sun.\n",
}


def dirty_workers(s):
    return [p for p in children(s.pid) if "dirty worker" in cmdline(p)]


def multipart(fields, files):
    """(body, content type): `fields` {name: value}, `files` {name: (filename, bytes, content type)}."""
    b = uuid.uuid4().hex
    out = b""
    for k, v in fields.items():
        out += f'--{b}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
    for k, (name, data, ctype) in files.items():
        out += (f'--{b}\r\nContent-Disposition: form-data; name="{k}"; filename="{name}"\r\n'
                f"Content-Type: {ctype}\r\n\r\n").encode() + data + b"\r\n"
    return out + f"--{b}--\r\n".encode(), f"multipart/form-data; boundary={b}"


class RagApiTest(GatewayTest):
    def start_rag(self, dirty=1, embed="ok", rag=(), extra=()):
        self.state = tempfile.mkdtemp(prefix="agente-rag-")
        conf = gateway_conf(self.fake.url, workers=2, providers={"main": []}, models={"emb": [("main", embed)]})
        conf = [f"dirty_workers = {dirty}", *extra] + conf + ["", "[rag]", 'embedding_model = "emb"', *rag]
        s = self.server(conf, env=dict(gateway_env(), STATE_DIRECTORY=self.state))
        s.start(workers=2 + dirty)
        self.addCleanup(self.assert_no_secret_in_log, s)
        self.s = s
        return s

    def call(self, method, path, body=None, key=CLIENT_KEY, ctype="application/json", timeout=20):
        """(status, headers, parsed JSON or raw bytes)."""
        return post(self.s.port, "/v1" + path, body, key=key, timeout=timeout, headers={"Content-Type": ctype},
                    method=method)

    def upload(self, name, text, purpose="assistants", ctype="text/markdown"):
        data = text if isinstance(text, bytes) else text.encode()
        body, content_type = multipart({"purpose": purpose}, {"file": (name, data, ctype)})
        status, _, f = self.call("POST", "/files", body, ctype=content_type)
        self.assertEqual(status, 200, f)
        return f

    def new_store(self, **body):
        status, _, vs = self.call("POST", "/vector_stores", {"name": "test", **body})
        self.assertEqual(status, 200, vs)
        return vs

    def attach(self, vid, fid, attributes=None):
        status, _, a = self.call("POST", f"/vector_stores/{vid}/files", {"file_id": fid, "attributes": attributes or {}})
        self.assertEqual(status, 200, a)
        return a

    def status_of(self, vid, fid):
        status, _, a = self.call("GET", f"/vector_stores/{vid}/files/{fid}")
        return a.get("status") if status == 200 else f"http {status}"

    def wait_done(self, vid, fids, timeout=30):
        done = lambda: all(self.status_of(vid, f) in ("completed", "failed", "cancelled") for f in fids)
        self.assertTrue(wait_until(done, timeout, 0.1), [self.status_of(vid, f) for f in fids])

    def search(self, vid, query, **kw):
        status, _, r = self.call("POST", f"/vector_stores/{vid}/search", {"query": query, **kw})
        self.assertEqual(status, 200, r)
        return r

    def search_when_ready(self, vid, query, timeout=20, **kw):
        """A search sent again while the pool answers 503 + Retry-After (a dirty worker respawned but
        not yet serving), as a client that honours Retry-After would."""
        out = {}

        def answered():
            out["r"] = self.call("POST", f"/vector_stores/{vid}/search", {"query": query, **kw})
            return out["r"][0] != 503
        self.assertTrue(wait_until(answered, timeout, 0.2), out.get("r"))
        status, _, r = out["r"]
        self.assertEqual(status, 200, r)
        return r

    def ingested_store(self):
        ids = {n: self.upload(n, t)["id"] for n, t in DOCS.items()}
        vs = self.new_store()
        for n, fid in ids.items():
            self.attach(vs["id"], fid, {"topic": n[:-3], "rank": len(n)})
        self.wait_done(vs["id"], ids.values())
        return vs["id"], ids


class Files(RagApiTest):
    def test_upload_list_get_content_delete(self):
        self.start_rag()
        f = self.upload("notes.md", "# Notes\n\nsome text\n")
        self.assertEqual((f["object"], f["filename"], f["purpose"], f["bytes"]), ("file", "notes.md", "assistants", 19))
        self.assertTrue(f["id"].startswith("file-"))
        status, _, listed = self.call("GET", "/files")
        self.assertEqual(status, 200, listed)
        self.assertEqual([x["id"] for x in listed["data"]], [f["id"]])
        self.assertEqual(self.call("GET", f"/files/{f['id']}")[2]["filename"], "notes.md")
        status, headers, content = self.call("GET", f"/files/{f['id']}/content")
        self.assertEqual((status, content), (200, b"# Notes\n\nsome text\n"))
        self.assertTrue(headers["content-type"].startswith("text/markdown"))
        status, _, gone = self.call("DELETE", f"/files/{f['id']}")
        self.assertEqual((status, gone["deleted"]), (200, True))
        status, _, err = self.call("GET", f"/files/{f['id']}")
        self.assertEqual(status, 404)
        self.assertIn("message", err["error"])
        self.assertEqual(self.call("DELETE", f"/files/{f['id']}")[0], 404)

    def test_bad_uploads_are_clear_4xx_in_openai_shape(self):
        self.start_rag(rag=["max_file_size = 1000"])
        status, _, err = self.call("POST", "/files", b'{"purpose": "x"}')
        self.assertEqual(status, 400, err)
        self.assertEqual(err["error"]["type"], "invalid_request_error")
        body, ctype = multipart({}, {"file": ("a.md", b"x", "text/markdown")})
        self.assertEqual(self.call("POST", "/files", body, ctype=ctype)[0], 400)            # no purpose
        body, ctype = multipart({"purpose": "assistants"}, {})
        self.assertEqual(self.call("POST", "/files", body, ctype=ctype)[0], 400)            # no file
        body, ctype = multipart({"purpose": "assistants"}, {"file": ("a.md", b"x", "text/markdown")})
        self.assertEqual(self.call("POST", "/files", body[:-10], ctype=ctype)[0], 400)      # cut short
        body, ctype = multipart({"purpose": "assistants"}, {"file": ("big.md", b"x" * 2000, "text/markdown")})
        status, _, err = self.call("POST", "/files", body, ctype=ctype)
        self.assertEqual(status, 413, err)
        self.assertIn("1000", err["error"]["message"])
        self.assertEqual(self.call("GET", "/files?limit=0")[0], 400)
        self.assertEqual(self.call("GET", "/files?limit=5&order=asc")[0], 200)

    def test_client_keys_are_required_as_for_v1(self):
        self.start_rag()
        for method, path in [("GET", "/files"), ("GET", "/vector_stores"), ("POST", "/vector_stores/vs_x/search")]:
            status, headers, err = self.call(method, path, {} if method == "POST" else None, key=None)
            self.assertEqual(status, 401, (path, err))
            self.assertEqual(err["error"]["type"], "authentication_error")
            self.assertEqual(self.call(method, path, {} if method == "POST" else None, key="sk-wrong")[0], 401)


class VectorStores(RagApiTest):
    def test_attach_poll_search_filter_list_and_delete(self):
        self.start_rag()
        vid, ids = self.ingested_store()
        status, _, vs = self.call("GET", f"/vector_stores/{vid}")
        self.assertEqual((status, vs["file_counts"]["completed"], vs["status"]), (200, 3, "completed"))
        for q, want in [("how do bees make honey", "bees.md"), ("ownership and borrowing", "rust.md"),
                        ("why does the ocean rise twice a day", "tides.md")]:
            r = self.search(vid, q, max_num_results=3)
            self.assertEqual(r["object"], "vector_store.search_results.page")
            self.assertEqual(r["data"][0]["filename"], want, json.dumps(r)[:400])
            self.assertEqual(r["data"][0]["content"][0]["type"], "text")
        r = self.search(vid, "gravity of the moon", filters={"type": "eq", "key": "topic", "value": "bees"})
        self.assertEqual({d["filename"] for d in r["data"]}, {"bees.md"})
        r = self.search(vid, "moon", filters={"type": "or", "filters": [{"type": "eq", "key": "topic", "value": "rust"},
                                                                         {"type": "eq", "key": "topic", "value": "tides"}]},
                        ranking_options={"ranker": "auto", "score_threshold": 0})
        self.assertEqual({d["filename"] for d in r["data"]}, {"rust.md", "tides.md"})
        self.assertEqual(len(self.search(vid, "the", max_num_results=1)["data"]), 1)
        status, _, files = self.call("GET", f"/vector_stores/{vid}/files?filter=completed&limit=2")
        self.assertEqual((status, len(files["data"]), files["has_more"]), (200, 2, True))
        self.assertEqual(files["data"][0]["object"], "vector_store.file")
        status, _, a = self.call("POST", f"/vector_stores/{vid}/files/{ids['rust.md']}", {"attributes": {"topic": "x"}})
        self.assertEqual((status, a["attributes"]), (200, {"topic": "x"}))
        status, _, d = self.call("DELETE", f"/vector_stores/{vid}/files/{ids['bees.md']}")
        self.assertEqual((status, d["deleted"]), (200, True))
        self.assertNotIn("bees.md", {x["filename"] for x in self.search(vid, "honey bees")["data"]})
        status, _, listed = self.call("GET", "/vector_stores")
        self.assertEqual([x["id"] for x in listed["data"]], [vid])
        status, _, upd = self.call("POST", f"/vector_stores/{vid}", {"name": "renamed", "metadata": {"k": "v"}})
        self.assertEqual((status, upd["name"], upd["metadata"]), (200, "renamed", {"k": "v"}))
        status, _, d = self.call("DELETE", f"/vector_stores/{vid}")
        self.assertEqual((status, d["deleted"]), (200, True))
        self.assertEqual(self.call("GET", f"/vector_stores/{vid}")[0], 404)
        self.assertEqual(self.call("POST", f"/vector_stores/{vid}/search", {"query": "x"})[0], 404)

    def test_batches_and_store_creation_with_files(self):
        self.start_rag()
        ids = [self.upload(n, t)["id"] for n, t in DOCS.items()]
        vs = self.new_store(file_ids=ids[:1], chunking_strategy={"type": "static", "static": {
            "max_chunk_size_tokens": 200, "chunk_overlap_tokens": 50}})
        self.wait_done(vs["id"], ids[:1])
        a = self.call("GET", f"/vector_stores/{vs['id']}/files/{ids[0]}")[2]
        self.assertEqual(a["chunking_strategy"]["static"]["max_chunk_size_tokens"], 200)
        status, _, b = self.call("POST", f"/vector_stores/{vs['id']}/file_batches",
                                 {"file_ids": ids[1:], "attributes": {"batch": True}})
        self.assertEqual((status, b["object"]), (200, "vector_store.files_batch"), b)
        done = lambda: self.call("GET", f"/vector_stores/{vs['id']}/file_batches/{b['id']}")[2]["status"] == "completed"
        self.assertTrue(wait_until(done, 30, 0.1))
        status, _, files = self.call("GET", f"/vector_stores/{vs['id']}/file_batches/{b['id']}/files")
        self.assertEqual(sorted(f["id"] for f in files["data"]), sorted(ids[1:]))
        self.assertEqual(self.call("GET", f"/vector_stores/{vs['id']}/file_batches/vsfb_nope")[0], 404)
        self.assertEqual(self.call("POST", f"/vector_stores/{vs['id']}/file_batches/{b['id']}/cancel", {})[0], 200)

    def test_bad_requests_are_4xx_naming_the_problem(self):
        self.start_rag()
        vid, ids = self.ingested_store()
        cases = [
            ("POST", f"/vector_stores/{vid}/search", {"query": ""}, 400),
            ("POST", f"/vector_stores/{vid}/search", {"query": "x" * 5000}, 400),
            ("POST", f"/vector_stores/{vid}/search", {"query": "x", "max_num_results": 51}, 400),
            ("POST", f"/vector_stores/{vid}/search", {"query": "x", "filters": {"type": "zz"}}, 400),
            ("POST", f"/vector_stores/{vid}/search", {"query": "x", "ranking_options": {"ranker": "zz"}}, 400),
            ("POST", f"/vector_stores/{vid}/search", b"not json", 400),
            ("POST", f"/vector_stores/{vid}/search", b"[1]", 400),
            ("POST", "/vector_stores/vs_nope/search", {"query": "x"}, 404),
            ("POST", f"/vector_stores/{vid}/files", {"file_id": "file-nope"}, 404),
            ("POST", f"/vector_stores/{vid}/files", {}, 400),
            ("POST", "/vector_stores", {"file_ids": ["file-nope"]}, 404),
            ("POST", "/vector_stores", {"metadata": "no"}, 400),
            ("POST", "/vector_stores", {"chunking_strategy": {"type": "static", "static": {
                "max_chunk_size_tokens": 50, "chunk_overlap_tokens": 0}}}, 400),
            ("GET", f"/vector_stores/{vid}/files?filter=zz", None, 400),
            ("PUT", "/vector_stores", {}, 405),
        ]
        for method, path, body, want in cases:
            status, _, err = self.call(method, path, body)
            self.assertEqual(status, want, (method, path, body, err))
            if want != 405:
                self.assertIn("message", err["error"], err)
        status, _, err = self.call("POST", f"/vector_stores/{vid}/search", b"{" + b" " * (1 << 20) + b"}")
        self.assertEqual(status, 413, err)

    def test_a_file_that_cannot_be_read_fails_saying_why_and_others_complete(self):
        self.start_rag()
        vs = self.new_store()
        bad = self.upload("blob.bin", bytes(range(256)) * 4, ctype="application/octet-stream")["id"]
        good = self.upload("bees.md", DOCS["bees.md"])["id"]
        self.attach(vs["id"], bad)
        self.attach(vs["id"], good)
        self.wait_done(vs["id"], [bad, good])
        a = self.call("GET", f"/vector_stores/{vs['id']}/files/{bad}")[2]
        self.assertEqual(a["status"], "failed")
        self.assertIn(a["last_error"]["code"], ("unsupported_file", "invalid_file"))
        self.assertTrue(a["last_error"]["message"])
        self.assertEqual(self.status_of(vs["id"], good), "completed")

    def test_without_a_dirty_pool_the_api_says_what_it_needs(self):
        self.state = tempfile.mkdtemp(prefix="agente-rag-")
        conf = gateway_conf(self.fake.url, workers=1, providers={"main": []}, models={"emb": [("main", "ok")]})
        self.s = self.server(conf + ["", "[rag]"], env=dict(gateway_env(), STATE_DIRECTORY=self.state))
        self.s.start(workers=1)
        status, _, err = self.call("GET", "/vector_stores")
        self.assertEqual(status, 503, err)
        self.assertIn("dirty_workers", err["error"]["message"])

    def test_without_a_rag_table_nothing_is_opened_and_the_api_says_so(self):
        self.state = tempfile.mkdtemp(prefix="agente-rag-")
        conf = gateway_conf(self.fake.url, workers=1, providers={"main": []}, models={"emb": [("main", "ok")]})
        self.s = self.server(["dirty_workers = 1"] + conf, env=dict(gateway_env(), STATE_DIRECTORY=self.state))
        self.s.start(workers=2)
        status, _, err = self.call("GET", "/vector_stores")
        self.assertEqual(status, 404, err)
        self.assertIn("[rag]", err["error"]["message"])
        self.assertFalse(os.path.exists(os.path.join(self.state, "rag.sqlite3")))


def hold_upstream(test, on):
    """The fake upstream's `held` model waits while `on` (released at the test's end in any case)."""
    req = urllib.request.Request(f"{test.fake.origin}/_{'hold' if on else 'release'}", b"{}", method="POST")
    urllib.request.urlopen(req, timeout=5).read()
    if on:
        test.addCleanup(hold_upstream, test, False)


class DirtyWorkerDeaths(RagApiTest):
    def hold(self, on):
        hold_upstream(self, on)

    def held(self):
        return self.fake.log()["held"]

    def test_killed_mid_search_the_search_ends_and_the_next_one_works(self):
        self.start_rag(embed="held")
        vid, _ = self.ingested_store()
        self.hold(True)
        out = {}
        t = threading.Thread(target=lambda: out.update(r=self.call("POST", f"/vector_stores/{vid}/search",
                                                                   {"query": "honey bees"}, timeout=60)))
        t.start()
        self.assertTrue(wait_until(lambda: self.held() >= 1, 10), "the search never reached the embedding model")
        [dirty] = dirty_workers(self.s)
        t0 = time.monotonic()
        os.kill(dirty, signal.SIGKILL)
        self.assertTrue(wait_until(lambda: dirty_workers(self.s) and dirty not in dirty_workers(self.s), 10))
        self.hold(False)
        t.join(30)
        self.assertFalse(t.is_alive(), "the search hung after its dirty worker died")
        status = out["r"][0]
        self.assertIn(status, (200, 502, 503), out["r"])   # retried (idempotent) or a clear error
        self.assertLess(time.monotonic() - t0, 30)
        r = self.search_when_ready(vid, "honey bees", max_num_results=1)
        self.assertEqual(r["data"][0]["filename"], "bees.md")

    def replace_dirty_worker(self):
        """SIGKILLs the dirty worker and waits for the one that replaces it."""
        [dirty] = dirty_workers(self.s)
        os.kill(dirty, signal.SIGKILL)
        self.assertTrue(wait_until(lambda: dirty_workers(self.s) and dirty not in dirty_workers(self.s), 10))

    def store_with_a_saved_graph(self, rag):
        """A server with [rag] `rag`, and a store of 3 files whose HNSW graph the first search built and saved."""
        self.start_rag(rag=rag)
        vid, _ = self.ingested_store()
        self.search(vid, "honey bees")
        self.assertTrue(self.s.wait_log(r"HNSW index of store \d+ built \(3 vectors, [\d.]+ s\), saved", 20))
        return vid

    def test_a_replaced_dirty_worker_loads_the_saved_hnsw_index_instead_of_building_it(self):
        vid = self.store_with_a_saved_graph(["exact_search_below = 2"])
        self.replace_dirty_worker()
        r = self.search_when_ready(vid, "honey bees", max_num_results=1)
        self.assertEqual(r["data"][0]["filename"], "bees.md")
        self.assertTrue(self.s.wait_log(r"HNSW index of store \d+ loaded from disk", 20))
        self.assertEqual(len(re.findall(r"HNSW index of store \d+ built", self.s.read_log())), 1)
        self.assertEqual(self.search(vid, "honey bees", max_num_results=1)["data"][0]["filename"], "bees.md")

    def grow(self, vid):
        """Two more files in store `vid`, and a search that brings the index up to date with them."""
        more = {"bread.md": "# Bread\n\nBakers knead flour and water into dough and bake it in hot ovens.\n",
                "trains.md": "# Trains\n\nSteam trains ran on coal and water along iron rails.\n"}
        fids = [self.upload(n, t)["id"] for n, t in more.items()]
        for fid in fids:
            self.attach(vid, fid)
        self.wait_done(vid, fids)
        self.assertEqual(self.search(vid, "bakers knead dough", max_num_results=1)["data"][0]["filename"], "bread.md")

    def test_the_saved_graph_is_saved_again_after_hnsw_save_every_additions(self):
        # Before, the graph was written after a full build only: a restart after files were added
        # loaded a graph that lacked them and inserted them all again (or, past a quarter of the
        # store, rebuilt it from scratch).
        vid = self.store_with_a_saved_graph(["exact_search_below = 2", "hnsw_save_every = 2"])
        self.grow(vid)
        self.assertTrue(self.s.wait_log(r"HNSW index of store \d+ saved after changes \(5 vectors, 2 changes", 20))
        self.replace_dirty_worker()
        r = self.search_when_ready(vid, "steam trains on rails", max_num_results=1)
        self.assertEqual(r["data"][0]["filename"], "trains.md")
        self.assertTrue(self.s.wait_log(r"HNSW index of store \d+ loaded from disk \(5 vectors, 0 added since", 20))
        self.assertEqual(len(re.findall(r"HNSW index of store \d+ built", self.s.read_log())), 1)

    def test_a_graceful_stop_saves_the_graph_so_a_restart_loads_it_current(self):
        vid = self.store_with_a_saved_graph(["exact_search_below = 2"])   # hnsw_save_every: the default, 2000
        self.grow(vid)
        self.assertNotIn("saved after changes", self.s.read_log())
        self.s.signal(signal.SIGTERM)
        self.assertIsNotNone(self.s.wait_exit(30), "the server did not stop")
        self.assertRegex(self.s.read_log(), r"HNSW index of store \d+ saved at stop \(5 vectors, 2 changes")
        self.s.start(workers=3)
        r = self.search_when_ready(vid, "steam trains on rails", max_num_results=1)
        self.assertEqual(r["data"][0]["filename"], "trains.md")
        self.assertTrue(self.s.wait_log(r"HNSW index of store \d+ loaded from disk \(5 vectors, 0 added since", 20))
        self.assertEqual(len(re.findall(r"HNSW index of store \d+ built", self.s.read_log())), 1)

    def test_killed_mid_ingest_nothing_completed_is_lost_and_the_interrupted_file_ends_visibly(self):
        self.start_rag(embed="held")
        vid, ids = self.ingested_store()
        self.hold(True)
        late = self.upload("late.md", "# Late\n\nA file whose embedding is under way when its worker dies.\n")["id"]
        self.attach(vid, late)
        self.assertTrue(wait_until(lambda: self.held() >= 1, 10), "the ingest never reached the embedding model")
        self.assertEqual(self.status_of(vid, late), "in_progress")
        self.replace_dirty_worker()
        self.hold(False)
        self.wait_done(vid, [late], timeout=30)
        a = self.call("GET", f"/vector_stores/{vid}/files/{late}")[2]
        self.assertIn(a["status"], ("completed", "failed"), a)
        for fid in ids.values():
            self.assertEqual(self.status_of(vid, fid), "completed")
        if a["status"] == "failed":
            self.assertTrue(a["last_error"]["message"])
            return
        r = self.search_when_ready(vid, "under way when its worker dies", max_num_results=1)
        self.assertEqual(r["data"][0]["filename"], "late.md")


if __name__ == "__main__":
    unittest.main()
