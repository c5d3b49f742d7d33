"""The cluster of test_cluster_netns.py (three hosts in network namespaces, HAProxy in front,
PostgreSQL on a fourth) with RAG: a vector store filled through one host is searchable through every
host and through the balancer (issue 21). Each host has one dirty worker holding its own vector
index, built from PostgreSQL. Only this test of the module runs here (load_tests): the others are
test_cluster_netns.py's."""
import http.client
import json
import os
import time
import unittest

from test_cluster_netns import APP_PORT, APPS, BALANCER_PORT, HOSTS, REQUEST_TIMEOUT, ClusterTest
from test_gateway import CLIENT_KEY
from test_rag_api import DOCS, multipart

INGEST_TIMEOUT = 60


def call(host, port, method, path, body=None, ctype="application/json"):
    """(status, parsed JSON) of a /v1 call to host:port."""
    c = http.client.HTTPConnection(host, port, timeout=REQUEST_TIMEOUT)
    try:
        data = body if isinstance(body, bytes) or body is None else json.dumps(body)
        c.request(method, "/v1" + path, data, {"Content-Type": ctype, "Authorization": f"Bearer {CLIENT_KEY}"})
        r = c.getresponse()
        raw = r.read()
        try:
            return r.status, json.loads(raw)
        except ValueError:
            return r.status, raw
    finally:
        c.close()


def fill(host, port):
    """Uploads DOCS, attaches them to a new store and polls until done: (store id, statuses)."""
    ids = []
    for name, text in DOCS.items():
        body, ctype = multipart({"purpose": "assistants"}, {"file": (name, text.encode(), "text/markdown")})
        status, f = call(host, port, "POST", "/files", body, ctype)
        assert status == 200, f
        ids.append(f["id"])
    status, vs = call(host, port, "POST", "/vector_stores", {"name": "cluster", "file_ids": ids})
    assert status == 200, vs
    deadline = time.monotonic() + INGEST_TIMEOUT
    while time.monotonic() < deadline:
        status, got = call(host, port, "GET", f"/vector_stores/{vs['id']}")
        if status == 200 and got["file_counts"]["in_progress"] == 0:
            break
        time.sleep(0.2)
    return vs["id"], got["file_counts"]


def top_hit(host, port, vid, query, ranker):
    status, r = call(host, port, "POST", f"/vector_stores/{vid}/search",
                     {"query": query, "max_num_results": 1, "ranking_options": {"ranker": ranker}})
    return r["data"][0]["filename"] if status == 200 and r["data"] else (status, r)


class RagCluster(ClusterTest):
    @classmethod
    def conf_lines(cls, host):
        lines = super().conf_lines(host)
        return (["dirty_workers = 1"] + lines +
                ["", "[rag]", 'embedding_model = "agent-ok"', f'state_dir = "{os.path.join(cls.dir, host + "-rag")}"'])

    def test_a_store_filled_through_one_host_is_searchable_on_all(self):
        vid, counts = self.on_lb(fill, HOSTS["app1"], APP_PORT)
        self.assertEqual((counts["completed"], counts["failed"]), (len(DOCS), 0), counts)
        for host in APPS:
            for ranker in ("auto", "vector", "bm25"):
                self.assertEqual(self.on_lb(top_hit, HOSTS[host], APP_PORT, vid, "bees make honey", ranker), "bees.md",
                                 (host, ranker))
        for _ in range(3):   # through the balancer, which spreads them over the three
            self.assertEqual(self.on_lb(top_hit, "127.0.0.1", BALANCER_PORT, vid, "ocean tides", "auto"), "tides.md")
        # A file detached through app3 is gone from app1's next search (its index brought up to date).
        status, files = self.on_lb(call, HOSTS["app3"], APP_PORT, "GET", f"/vector_stores/{vid}/files")
        bees = next(f["id"] for f in files["data"]
                    if self.on_lb(call, HOSTS["app3"], APP_PORT, "GET", f"/files/{f['id']}")[1]["filename"] == "bees.md")
        self.assertEqual(self.on_lb(call, HOSTS["app3"], APP_PORT, "DELETE", f"/vector_stores/{vid}/files/{bees}")[0], 200)
        self.assertNotEqual(self.on_lb(top_hit, HOSTS["app1"], APP_PORT, vid, "bees make honey", "vector"), "bees.md")


def load_tests(loader, standard_tests, pattern):
    return loader.loadTestsFromName("test_a_store_filled_through_one_host_is_searchable_on_all", RagCluster)


if __name__ == "__main__":
    unittest.main()
