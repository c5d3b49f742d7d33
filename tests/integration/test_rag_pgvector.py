"""The RAG store in PostgreSQL with pgvector: `db migrate` makes the extension and the vector column
(migration 3), vectors are stored in it beside the portable bytea, an HNSW index per dimension is
made, and vector search runs in the database (the dirty pools hold no vectors) with iterative index
scans, so a filter still returns max_num_results when that many chunks match. Two servers share the
database as two machines. pgvector is not in Debian 12: the server is PGlite (real PostgreSQL in
WebAssembly) with its pgvector extension, served over the wire protocol by tests/js/pglite_server.mjs
(pinned in tests/js/package-lock.json). Skipped when node or tests/js/node_modules is missing."""
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import BIN, wait_until
from test_rag_api import DOCS
from test_rag_postgres import CLI_TIMEOUT, URL_ENV, Host, RagPostgresTest

JS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../js")
START_TIMEOUT = 90   # PGlite compiles its WebAssembly and initdbs in memory: seconds on a loaded machine


class Pglite:
    def __init__(self, add_cleanup):
        self.out = tempfile.NamedTemporaryFile(prefix="agente-pglite-", suffix=".log", delete=False)
        add_cleanup(os.unlink, self.out.name)
        self.proc = subprocess.Popen(["node", "pglite_server.mjs"], cwd=JS, stdout=self.out, stderr=subprocess.STDOUT)
        add_cleanup(self.stop)
        self.port = None
        assert wait_until(self.started, START_TIMEOUT, 0.2), self.read_log()
        self.url = f"postgresql://agente:unused@127.0.0.1:{self.port}/postgres"

    def read_log(self):
        with open(self.out.name) as f:
            return f.read()

    def started(self):
        for line in self.read_log().splitlines():
            if line.startswith("PORT "):
                self.port = int(line.split()[1])
                return True
        assert self.proc.poll() is None, self.read_log()
        return False

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def psql(self, sql):
        out = subprocess.run(["psql", self.url, "-X", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql],
                             capture_output=True, text=True, timeout=CLI_TIMEOUT, check=True).stdout
        return [line.split("\t") for line in out.splitlines() if line]


@unittest.skipUnless(shutil.which("node") and os.path.isdir(os.path.join(JS, "node_modules", "@electric-sql", "pglite")),
                     "node or tests/js/node_modules missing: run `npm ci --prefix tests/js` (scripts/install-deps does)")
class PgvectorStore(RagPostgresTest):
    @classmethod
    def setUpClass(cls):
        pass   # a PGlite per test, below: it holds one database

    def setUp(self):
        super(RagPostgresTest, self).setUp()   # the fake upstream; no PostgreSQL of postgres.py
        self.pglite = Pglite(self.addCleanup)
        self.url = self.pglite.url
        self.migrate()

    def tearDown(self):
        pass

    def rows(self, sql):
        return self.pglite.psql(sql)

    def test_vector_search_runs_in_pgvector_shared_by_two_hosts_and_filters_keep_max_num_results(self):
        self.assertEqual(self.rows("SELECT extname FROM pg_extension WHERE extname = 'vector'"), [["vector"]])
        a, b = self.host(), self.host()
        vid, ids = self.fill(a)
        n = self.rows("SELECT COUNT(*), COUNT(embedding) FROM rag_embeddings")
        self.assertEqual(n[0][0], n[0][1], "every vector is in the pgvector column too")
        dims = self.rows("SELECT DISTINCT dims FROM rag_embeddings")[0][0]
        self.assertEqual(self.rows(f"SELECT indexname FROM pg_indexes WHERE indexname = 'rag_embeddings_hnsw_{dims}'"),
                         [[f"rag_embeddings_hnsw_{dims}"]])
        for h in (a, b):
            for q, want in [("bees make honey", "bees.md"), ("ownership and borrowing", "rust.md"),
                            ("ocean tides rise and fall", "tides.md")]:
                r = h.search(vid, q, max_num_results=3, ranking_options={"ranker": "vector"})
                self.assertEqual(r["data"][0]["filename"], want, (q, r["data"]))
                self.assertGreater(r["data"][0]["score"], 0)
                self.assertEqual(h.search(vid, q, max_num_results=1)["data"][0]["filename"], want)
        r = b.search(vid, "gravity of the moon", ranking_options={"ranker": "vector"},
                     filters={"type": "eq", "key": "topic", "value": "bees"})
        self.assertEqual({d["filename"] for d in r["data"]}, {"bees.md"})

        # Many files, one of them matching the filter and far from the question: the nearest
        # neighbours are all filtered out, yet max_num_results come back.
        many = {f"noise{i}.md": f"# Noise {i}\n\nHoney bees and flowers, number {i}.\n" for i in range(12)}
        fids = []
        for name, text in many.items():
            f = b.upload(name, text)
            b.ok("POST", f"/vector_stores/{vid}/files", {"file_id": f["id"], "attributes": {"topic": "noise"}})
            fids.append(f["id"])
        b.wait_done(vid, fids)
        r = a.search(vid, "honey bees and flowers", max_num_results=2, ranking_options={"ranker": "vector"},
                     filters={"type": "in", "key": "topic", "value": ["rust", "tides"]})
        self.assertEqual({d["filename"] for d in r["data"]}, {"rust.md", "tides.md"})
        r = a.search(vid, "honey bees and flowers", max_num_results=5, ranking_options={"ranker": "vector"})
        self.assertEqual(len(r["data"]), 5)

        # Removed through one host, gone from the other's search (no index of its own to bring up to date).
        b.ok("DELETE", f"/vector_stores/{vid}/files/{ids['rust.md']}")
        self.assertNotIn("rust.md", {d["filename"] for d in a.search(vid, "ownership and borrowing",
                                                                       ranking_options={"ranker": "vector"})["data"]})


if __name__ == "__main__":
    unittest.main()
