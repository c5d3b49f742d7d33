"""The official `openai` Node client (pinned in tests/js/package-lock.json) uses the files and vector
stores API unchanged: upload, create a store, attach and poll, search with and without filters,
delete. Skipped when tests/js/node_modules is missing (scripts/install-deps installs it)."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from postgres import start_postgres
from test_gateway import CLIENT_KEY
from test_rag_api import RagApiTest
from test_rag_postgres import migrate_database

JS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../js")


@unittest.skipUnless(shutil.which("node") and os.path.isdir(os.path.join(JS, "node_modules", "openai")),
                     "node or tests/js/node_modules missing: run `npm ci --prefix tests/js` (scripts/install-deps does)")
class OpenAiNodeRagTest(RagApiTest):
    def start_store(self):
        return self.start_rag()

    def test_official_client_uploads_attaches_polls_searches_and_deletes(self):
        s = self.start_store()
        env = dict(os.environ, AGENTE_BASE_URL=f"http://127.0.0.1:{s.port}/v1", AGENTE_API_KEY=CLIENT_KEY)
        out = subprocess.run(["node", "openai_rag_test.mjs"], cwd=JS, env=env, capture_output=True, text=True,
                             timeout=120)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr + s.read_log()[-3000:])
        summary = json.loads(out.stdout.strip().splitlines()[-1])
        self.assertEqual((summary["top"], summary["filtered"], summary["deleted"]), ("bees.md", 1, "ok"))
        self.assertLess(summary["poll_ms"], 15000)   # polled at the server's pace, not every 5 s


class OpenAiNodeRagPostgresTest(OpenAiNodeRagTest):
    """The same, with the RAG store in PostgreSQL ([cluster] postgres_url; test_rag_postgres.py)."""

    def start_store(self):
        pg = start_postgres(self.addCleanup)
        url = pg.create_database("openai_js")
        with tempfile.NamedTemporaryFile("w", prefix="agente-pg-url-", delete=False) as f:
            f.write(url + "\n")
        self.addCleanup(os.unlink, f.name)
        migrate_database(self, f.name)
        s = self.start_rag(rag=["", "[cluster]", f'postgres_url_file = "{f.name}"'])
        self.assertIn("rag: store postgresql://agente:***@", s.read_log())
        return s


if __name__ == "__main__":
    unittest.main()
