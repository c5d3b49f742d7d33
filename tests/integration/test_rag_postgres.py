"""The RAG store in PostgreSQL ([cluster] postgres_url): two servers, as two machines, share files,
vector stores and chunks through one database; a store filled through one is searched through the
other (its dirty pool builds its vector index from PostgreSQL, and brings it up to date when the
store's generation moves); PostgreSQL stopped makes the RAG endpoints answer 503 in OpenAI's error
object while the gateway proxies on, and once it is back nothing written before is lost. The database
is a real PostgreSQL started for the test (postgres.py); embeddings from the fake upstream."""
import os
import subprocess
import tempfile

from harness import BIN, wait_until
from postgres import PASSWORD_IN_URL, start_postgres
from test_gateway import CLIENT_KEY, GatewayTest, gateway_conf, gateway_env, post
from test_rag_api import DOCS, hold_upstream, multipart

URL_ENV = "AGENTE_TEST_PG_URL"
CLI_TIMEOUT = 60
INGEST_TIMEOUT = 60


def migrate_database(test, url_file):
    """`agente-hibrido db migrate` on the database whose URL is in `url_file`."""
    with tempfile.NamedTemporaryFile("w", prefix="agente-migrate-", suffix=".conf", delete=False) as conf:
        conf.write(f'[cluster]\npostgres_url_file = "{url_file}"\n')
    test.addCleanup(os.unlink, conf.name)
    r = subprocess.run([BIN, "-c", conf.name, "db", "migrate"], capture_output=True, text=True, timeout=CLI_TIMEOUT)
    test.assertEqual(r.returncode, 0, r.stdout + r.stderr)


class Host:
    """One agente-hibrido server, as one machine: its own state directory, the shared database."""

    def __init__(self, test, server):
        self.test = test
        self.s = server
        self.port = server.port

    def call(self, method, path, body=None, ctype="application/json", timeout=30):
        return post(self.port, "/v1" + path, body, key=CLIENT_KEY, timeout=timeout, headers={"Content-Type": ctype},
                    method=method)

    def ok(self, method, path, body=None, **kw):
        status, _, r = self.call(method, path, body, **kw)
        self.test.assertEqual(status, 200, r)
        return r

    def upload(self, name, text):
        body, ctype = multipart({"purpose": "assistants"}, {"file": (name, text.encode(), "text/markdown")})
        return self.ok("POST", "/files", body, ctype=ctype)

    def status_of(self, vid, fid):
        status, _, a = self.call("GET", f"/vector_stores/{vid}/files/{fid}")
        return a.get("status") if status == 200 else f"http {status}"

    def wait_done(self, vid, fids):
        done = lambda: all(self.status_of(vid, f) in ("completed", "failed", "cancelled") for f in fids)
        self.test.assertTrue(wait_until(done, INGEST_TIMEOUT, 0.1), [self.status_of(vid, f) for f in fids])
        self.test.assertEqual([self.status_of(vid, f) for f in fids], ["completed"] * len(fids))

    def search(self, vid, query, **kw):
        return self.ok("POST", f"/vector_stores/{vid}/search", {"query": query, **kw})


class RagPostgresTest(GatewayTest):
    @classmethod
    def setUpClass(cls):
        cls.pg = start_postgres(cls.addClassCleanup)

    def setUp(self):
        super().setUp()
        self.db_name = "r_" + self._testMethodName[-40:].lower()
        self.url = self.pg.create_database(self.db_name)
        self.migrate()

    def tearDown(self):
        if not self.pg.ready():   # a failed test must not leave the shared server stopped
            self.pg.start()

    def conf(self, dirty=1, embed="ok"):
        lines = gateway_conf(self.fake.url, workers=2, providers={"main": []},
                             models={"emb": [("main", embed)], "chat": [("main", "ok")]})
        return [f"dirty_workers = {dirty}"] + lines + ["", "[rag]", 'embedding_model = "emb"', "",
                                                      "[cluster]", f'postgres_url_env = "{URL_ENV}"']

    def env(self, state):
        return dict(gateway_env(), **{URL_ENV: self.url, "STATE_DIRECTORY": state})

    def host(self, dirty=1, embed="ok"):
        state = tempfile.mkdtemp(prefix="agente-ragpg-")
        s = self.server(self.conf(dirty, embed), env=self.env(state))
        s.start(workers=2 + dirty)
        self.addCleanup(self.assert_clean_log, s)
        return Host(self, s)

    def assert_clean_log(self, s):
        if os.path.exists(s.log_path):
            log = s.read_log()
            self.assertNotIn(PASSWORD_IN_URL, log)
            self.assertNotRegex(log, r"crashed with signal|exited unexpectedly|killed for timeout")

    def migrate(self):
        s = self.server(self.conf(), env=self.env(tempfile.mkdtemp(prefix="agente-ragpg-")))   # never started
        r = subprocess.run([BIN, "-c", s.conf, "db", "migrate"], capture_output=True, text=True, timeout=CLI_TIMEOUT,
                           env=dict(os.environ, **self.env("/nonexistent")))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def rows(self, sql):
        return self.pg.psql(sql, self.db_name)

    def fill(self, h):
        ids = {n: h.upload(n, t)["id"] for n, t in DOCS.items()}
        vs = h.ok("POST", "/vector_stores", {"name": "shared"})
        for n, fid in ids.items():
            h.ok("POST", f"/vector_stores/{vs['id']}/files", {"file_id": fid, "attributes": {"topic": n[:-3]}})
        h.wait_done(vs["id"], list(ids.values()))
        return vs["id"], ids


class SharedStore(RagPostgresTest):
    def test_a_store_filled_through_one_host_is_searched_through_another(self):
        a, b = self.host(), self.host()
        vid, ids = self.fill(a)
        self.assertEqual(self.rows("SELECT COUNT(*) FROM rag_chunks"), [["3"]])
        self.assertEqual(self.rows("SELECT status, COUNT(*) FROM rag_attachments GROUP BY status"), [["completed", "3"]])
        # b sees the store, its files and their content through the database.
        vs = b.ok("GET", f"/vector_stores/{vid}")
        self.assertEqual((vs["file_counts"]["completed"], vs["status"]), (3, "completed"))
        self.assertEqual(b.call("GET", f"/files/{ids['bees.md']}/content")[2], DOCS["bees.md"].encode())
        for ranker in ("auto", "vector", "bm25"):
            for q, want in [("bees make honey", "bees.md"), ("ownership and borrowing", "rust.md"),
                            ("ocean tides rise and fall", "tides.md")]:
                r = b.search(vid, q, max_num_results=3, ranking_options={"ranker": ranker})
                self.assertEqual(r["data"][0]["filename"], want, (ranker, q, r["data"]))
        r = b.search(vid, "gravity of the moon", filters={"type": "eq", "key": "topic", "value": "bees"})
        self.assertEqual({d["filename"] for d in r["data"]}, {"bees.md"})

        # Changes through b reach a's index (already built, at an older generation): a file added,
        # one detached, attributes changed.
        self.assertEqual(a.search(vid, "honey bees", max_num_results=1)["data"][0]["filename"], "bees.md")
        f = b.upload("owls.md", "# Owls\n\nOwls hunt at night and turn their heads almost all the way round.\n")
        b.ok("POST", f"/vector_stores/{vid}/files", {"file_id": f["id"], "attributes": {"topic": "owls"}})
        b.wait_done(vid, [f["id"]])
        self.assertEqual(a.search(vid, "owls hunt at night", max_num_results=1,
                                  ranking_options={"ranker": "vector"})["data"][0]["filename"], "owls.md")
        b.ok("DELETE", f"/vector_stores/{vid}/files/{ids['bees.md']}")
        self.assertNotIn("bees.md", {d["filename"] for d in a.search(vid, "honey bees")["data"]})
        b.ok("POST", f"/vector_stores/{vid}/files/{ids['rust.md']}", {"attributes": {"topic": "owls"}})
        r = a.search(vid, "programming language", filters={"type": "eq", "key": "topic", "value": "owls"})
        self.assertEqual({d["filename"] for d in r["data"]}, {"rust.md", "owls.md"})

        # Deleted through a, gone for b.
        a.ok("DELETE", f"/vector_stores/{vid}")
        self.assertEqual(b.call("GET", f"/vector_stores/{vid}")[0], 404)
        self.assertEqual(b.call("POST", f"/vector_stores/{vid}/search", {"query": "x"})[0], 404)
        self.assertEqual(self.rows("SELECT COUNT(*) FROM rag_chunks"), [["0"]])

    def test_the_embedding_cache_is_shared_an_unchanged_file_embeds_nothing_on_another_host(self):
        a, b = self.host(), self.host()
        self.fill(a)
        embedded = len(self.fake.requests("ok"))
        vs = b.ok("POST", "/vector_stores", {"name": "again"})
        f = b.upload("bees.md", DOCS["bees.md"])
        b.ok("POST", f"/vector_stores/{vs['id']}/files", {"file_id": f["id"]})
        b.wait_done(vs["id"], [f["id"]])
        self.assertEqual(len(self.fake.requests("ok")), embedded, "the chunk's vector came from PostgreSQL")

    def test_a_large_store_is_loaded_into_another_hosts_index_whole_across_pages(self):
        # More vectors than one page of PgStore::vectors() (2,000), each chunk a paragraph of words of
        # its own: the other host's index, loaded page by page, finds each one, first and last.
        a, b = self.host(), self.host()
        n = 2500
        paragraphs = [f"Entry {i}. " + " ".join(f"w{i}x{k}" for k in range(12)) for i in range(n)]
        f = a.upload("large.md", "\n\n".join(paragraphs) + "\n")
        vid = a.ok("POST", "/vector_stores", {"name": "large"})["id"]
        a.ok("POST", f"/vector_stores/{vid}/files", {"file_id": f["id"], "chunking_strategy": {
            "type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 0}}})
        a.wait_done(vid, [f["id"]])
        self.assertGreater(int(self.rows("SELECT COUNT(*) FROM rag_chunks")[0][0]), 2000)
        for i in (0, 1999, 2000, 2001, n - 1):
            r = b.search(vid, paragraphs[i], max_num_results=1, ranking_options={"ranker": "vector"})
            self.assertIn(f"Entry {i}. ", r["data"][0]["content"][0]["text"], i)

    def test_the_cli_ingests_into_postgres_and_a_server_searches_it(self):
        h = self.host()
        docs = tempfile.mkdtemp(prefix="agente-ragpg-docs-")
        for n, t in DOCS.items():
            with open(os.path.join(docs, n), "w") as f:
                f.write(t)
        r = subprocess.run([BIN, "-c", h.s.conf, "rag", "ingest", "--store", "cli", docs], capture_output=True,
                           text=True, timeout=CLI_TIMEOUT, env=dict(os.environ, **self.env("/nonexistent")))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        vid = self.rows("SELECT id FROM rag_stores WHERE name = 'cli'")[0][0]
        self.assertEqual(h.search(vid, "honey", max_num_results=1)["data"][0]["filename"],
                         os.path.join(docs, "bees.md"))


class PostgresDown(RagPostgresTest):
    def chat(self, h):
        return post(h.port, "/v1/chat/completions", {"model": "chat", "messages": [{"role": "user", "content": "hi"}]})

    def test_rag_answers_503_while_postgres_is_down_the_gateway_proxies_and_nothing_is_lost(self):
        h = self.host()
        vid, ids = self.fill(h)
        self.assertEqual(h.search(vid, "honey", max_num_results=1)["data"][0]["filename"], "bees.md")

        self.pg.stop()
        for method, path, body in [("GET", "/files", None), ("GET", f"/vector_stores/{vid}", None),
                                   ("POST", f"/vector_stores/{vid}/search", {"query": "honey"}),
                                   ("POST", "/vector_stores", {"name": "during"}),
                                   ("GET", f"/files/{ids['bees.md']}/content", None)]:
            status, _, err = h.call(method, path, body)
            self.assertEqual(status, 503, (path, err))
            self.assertEqual(err["error"]["type"], "service_unavailable", err)
            self.assertIn("the RAG store is unavailable", err["error"]["message"])
            self.assertNotIn(PASSWORD_IN_URL, err["error"]["message"])
        status, _, completion = self.chat(h)   # the gateway needs no database
        self.assertEqual(status, 200, completion)

        self.pg.start()
        # The first requests after the restart are served: stale connections are replaced.
        vs = h.ok("GET", f"/vector_stores/{vid}")
        self.assertEqual(vs["file_counts"]["completed"], 3)
        self.assertEqual(h.search(vid, "honey", max_num_results=1)["data"][0]["filename"], "bees.md")
        self.assertEqual(h.call("GET", f"/files/{ids['rust.md']}/content")[2], DOCS["rust.md"].encode())
        f = h.upload("owls.md", "# Owls\n\nOwls hunt at night.\n")
        h.ok("POST", f"/vector_stores/{vid}/files", {"file_id": f["id"]})
        h.wait_done(vid, [f["id"]])
        self.assertEqual(h.search(vid, "owls at night", max_num_results=1)["data"][0]["filename"], "owls.md")

    def test_postgres_stopped_mid_ingest_the_file_is_resumed_once_it_is_back(self):
        h = self.host(embed="held")
        hold_upstream(self, True)
        f = h.upload("bees.md", DOCS["bees.md"])
        vid = h.ok("POST", "/vector_stores", {"name": "mid"})["id"]
        h.ok("POST", f"/vector_stores/{vid}/files", {"file_id": f["id"]})
        self.assertTrue(wait_until(lambda: self.fake.log()["held"] >= 1, 30), "the ingest never reached the model")
        self.pg.stop()
        hold_upstream(self, False)   # the vectors come back to a store that is gone
        self.assertTrue(wait_until(lambda: "rag: ingest waits for the store" in h.s.read_log(), 30), h.s.read_log())
        self.pg.start()
        # Neither failed nor left to this (live) process forever: given back and ingested again.
        h.wait_done(vid, [f["id"]])
        self.assertIn("rag: the store is reachable again, ingest resumes", h.s.read_log())
        self.assertEqual(h.search(vid, "honey", max_num_results=1)["data"][0]["filename"], "bees.md")

    def test_a_host_started_while_postgres_is_down_serves_the_gateway_and_rag_recovers(self):
        self.pg.stop()
        h = self.host()
        status, _, err = h.call("GET", "/vector_stores")
        self.assertEqual(status, 503, err)
        self.assertEqual(self.chat(h)[0], 200)
        self.pg.start()
        vid, _ = self.fill(h)
        self.assertEqual(h.search(vid, "tides moon", max_num_results=1)["data"][0]["filename"], "tides.md")
