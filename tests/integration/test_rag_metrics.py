"""The RAG engine's figures in GET /metrics through the real binary: files ingested by the dirty
pool, their chunks and embeddings, searches and their duration, summed for the whole server whichever
worker answers the scrape, and still accepted by promtool; its stores on GET /status."""
import re
import shutil
import unittest

from harness import http_get, wait_until
from test_gateway import ADMIN_TOKEN
from test_metrics import metrics, promtool_check, scrape, value
from test_rag_api import DOCS, RagApiTest


def status_page(port):
    status, _, body = http_get(port, "/status", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert status == 200, status
    return body.decode()


def store_row(page, name):
    """The cells of the RAG stores table's row for `name` (None when it has none)."""
    for row in re.findall(r"<tr>(.*?)</tr>", page, re.S):
        cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        if cells and cells[0] == name:
            return cells
    return None


class RagMetricsTest(RagApiTest):
    def test_ingests_chunks_embeddings_and_searches(self):
        self.start_rag(dirty=2)
        vid, ids = self.ingested_store()
        for q in ("how do bees make honey", "ownership and borrowing"):
            self.search(vid, q)
        self.assertEqual(self.call("POST", "/vector_stores/vs_nope/search", {"query": "x"})[0], 404)
        # The dirty worker counts an ingest just after writing its file's status, so the last file
        # can show "completed" a moment before its count is in: wait for it, then every figure
        # must be exact.
        completed = lambda: value(metrics(self.s.port), "agente_rag_ingests_total", outcome="completed")
        self.assertTrue(wait_until(lambda: completed() == len(ids), 10), completed())
        m = metrics(self.s.port)
        self.assertEqual(value(m, "agente_rag_ingests_total", outcome="completed"), len(ids))
        self.assertEqual(value(m, "agente_rag_ingests_total", outcome="failed"), 0)
        chunks = value(m, "agente_rag_chunks_total")
        self.assertGreaterEqual(chunks, len(ids))   # each document makes one chunk at least
        self.assertEqual(value(m, "agente_rag_embeddings_total"), chunks)   # from the model or the cache
        self.assertGreater(value(m, "agente_rag_embeddings_total", source="model"), 0)
        self.assertEqual(value(m, "agente_rag_searches_total", outcome="ok"), 2)
        self.assertEqual(value(m, "agente_rag_searches_total", outcome="failed"), 1)
        self.assertEqual(value(m, "agente_rag_search_duration_seconds_count"), 3)
        seen = {value(metrics(self.s.port), "agente_rag_searches_total") for _ in range(8)}
        self.assertEqual(seen, {3})   # the same from every HTTP worker
        if shutil.which("promtool"):
            promtool_check(self, scrape(self.s.port))

    def test_the_status_page_lists_the_stores_as_the_dirty_pool_changes_them(self):
        self.start_rag(dirty=2)
        self.assertIn("No vector store.", status_page(self.s.port))
        vs = self.new_store(name="handbook-42")
        ids = [self.upload(n, t)["id"] for n, t in DOCS.items()]
        for fid in ids:
            self.attach(vs["id"], fid)
        self.wait_done(vs["id"], ids)
        # Published by the dirty worker that ingested the last file, as it ended: no polling needed
        # beyond the page's own refresh, but the ingest's end and the poll above may cross.
        want = ["handbook-42", vs["id"], "3", "0", "3", "0", "completed"]
        self.assertTrue(wait_until(lambda: (store_row(status_page(self.s.port), "handbook-42") or [])[:7] == want, 10),
                        store_row(status_page(self.s.port), "handbook-42"))
        # Its chunks: every chunk the server indexed (the only store filled), on the page and in /metrics.
        m = metrics(self.s.port)
        chunks = value(m, "agente_rag_chunks_total")
        self.assertGreaterEqual(chunks, len(ids))
        self.assertEqual(store_row(status_page(self.s.port), "handbook-42")[7], str(int(chunks)))
        self.assertEqual(value(m, "agente_rag_store_chunks", store="handbook-42", id=vs["id"]), chunks)
        empty = self.new_store(name="empty-one")
        self.assertTrue(wait_until(lambda: (store_row(status_page(self.s.port), "empty-one") or [""] * 8)[7] == "0", 10))
        self.assertEqual(value(metrics(self.s.port), "agente_rag_store_chunks", store="empty-one", id=empty["id"]), 0)
        if shutil.which("promtool"):
            promtool_check(self, scrape(self.s.port))
        self.assertEqual(self.call("DELETE", f"/vector_stores/{vs['id']}")[0], 200)
        self.assertIsNone(store_row(status_page(self.s.port), "handbook-42"))

    def test_without_a_rag_table_no_rag_figures(self):
        s = self.start(providers={"main": []}, models={"m": [("main", "ok")]})
        self.assertNotIn("agente_rag_", scrape(s.port))
        self.assertNotIn("RAG stores", status_page(s.port))


if __name__ == "__main__":
    unittest.main()
