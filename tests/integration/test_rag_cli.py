"""The operators' `rag` command through the real binary: `agente-hibrido -c server.conf rag ingest|search`,
embedding through the gateway's model against the fake upstream (tests/fake_upstream/fake_openai.py's
bag-of-words vectors), with and without a server running on the same state directory."""
import json
import os
import pty
import shutil
import subprocess
import tempfile
import unittest

from harness import BIN as RELATIVE_BIN, ServerTest, http_get
from test_gateway import FakeUpstream, gateway_conf, gateway_env

BIN = os.path.abspath(RELATIVE_BIN)   # the CLI runs from a scratch directory
# Deadline for one CLI run (a loaded machine: the fake upstream answers at once otherwise).
CLI_TIMEOUT = 60

BEES = """# Bees

## The colony

A honey bee colony has one queen, thousands of workers and, in summer, some drones.

## Pollination

Bees carry pollen from flower to flower; many crops depend on them.
"""
DEBIAN = """# Debian

## Installing packages

Use apt install followed by the package name; apt resolves the dependencies.
"""
TRAINS = "Steam locomotives burn coal to boil water; the steam drives the pistons.\n"


class RagCliTest(ServerTest):
    def setUp(self):
        self.fake = FakeUpstream()
        self.addCleanup(self.fake.stop)
        self.dir = tempfile.mkdtemp(prefix="agente-rag-cli-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.state = os.path.join(self.dir, "state")
        self.docs = os.path.join(self.dir, "docs")
        self.write("bees.md", BEES)
        self.write("sub/debian.md", DEBIAN)
        self.write("sub/deeper/trains.txt", TRAINS)
        self.write(".hidden/secret.md", "# Secret\n\nnever ingested\n")
        self.settings = gateway_conf(self.fake.url, workers=1, providers={"fake": []},
                                     models={"embed": [("fake", "ok")]})
        self.settings += ["", "[rag]", 'embedding_model = "embed"', f'state_dir = "{self.state}"']
        self.conf = os.path.join(self.dir, "server.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(self.settings) + "\n")

    def write(self, relative, text):
        path = os.path.join(self.docs, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    def rag(self, *args, config=True, stderr=subprocess.PIPE, binary=BIN):
        argv = [binary] + (["-c", self.conf] if config else []) + ["rag", *args]
        env = dict(os.environ, **gateway_env())
        env.pop("STATE_DIRECTORY", None)
        return subprocess.run(argv, stdout=subprocess.PIPE, stderr=stderr, env=env, timeout=CLI_TIMEOUT, text=True,
                              cwd=self.dir)

    def ingest_json(self, *paths, binary=BIN):
        r = self.rag("ingest", "--store", "docs", "--json", *paths, binary=binary)
        return r, json.loads(r.stdout)

    def search_json(self, question, *extra):
        r = self.rag("search", "--store", "docs", "--json", *extra, question)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_ingest_walks_folders_and_summarises(self):
        r, summary = self.ingest_json(self.docs)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual((summary["files"], summary["skipped"], summary["failed"]), (3, 0, 0))
        self.assertGreaterEqual(summary["chunks"], 3)
        self.assertEqual(summary["embedded"], summary["chunks"])
        names = {h["filename"] for h in self.search_json("never ingested secret", "--ranker", "bm25")["data"]}
        self.assertFalse(any(".hidden" in n for n in names), names)
        # Plain progress lines when stderr is not a terminal.
        self.assertIn("rag: ingest 1/3 ", r.stderr)

    def test_an_unchanged_file_is_skipped_and_a_changed_one_reembeds_only_its_change(self):
        self.assertEqual(self.ingest_json(self.docs)[0].returncode, 0)
        r, again = self.ingest_json(self.docs)
        self.assertEqual((again["files"], again["skipped"], again["embedded"]), (0, 3, 0), r.stderr)
        self.write("bees.md", BEES + "\n## Honey\n\nWorkers turn nectar into honey and store it in wax cells.\n")
        r, changed = self.ingest_json(self.docs)
        self.assertEqual((changed["files"], changed["skipped"]), (1, 2), r.stderr)
        self.assertEqual(changed["embedded"], 1)   # the new section only: the others are cached
        hits = self.search_json("nectar honey wax", "--ranker", "bm25")["data"]
        self.assertTrue(hits[0]["filename"].endswith("bees.md"))
        # The old version is gone: one bees.md in the store.
        names = [h["filename"] for h in self.search_json("bees colony pollen honey", "--max-results", "50")["data"]]
        self.assertEqual(len({n for n in names if n.endswith("bees.md")}), 1)

    def test_a_failed_file_is_reported_and_sets_the_exit_code(self):
        broken = self.write("broken.pdf", "%PDF-1.4 this is not a PDF at all")
        r, summary = self.ingest_json(self.docs)
        self.assertEqual(r.returncode, 1)
        self.assertEqual((summary["files"], summary["failed"]), (3, 1))
        self.assertIn(broken, summary["failures"][0])
        self.assertIn("rag: failed: " + broken, r.stderr)

    def test_the_parsers_module_is_found_where_scripts_install_puts_it_and_its_absence_is_clear(self):
        # The layout of scripts/install: <prefix>/bin/agente-hibrido, <prefix>/lib/agente-hibrido/*.so.
        prefix = os.path.join(self.dir, "prefix")
        os.makedirs(os.path.join(prefix, "bin"))
        os.makedirs(os.path.join(prefix, "lib", "agente-hibrido"))
        binary = os.path.join(prefix, "bin", "agente-hibrido")
        shutil.copy2(BIN, binary)
        module = os.path.join(prefix, "lib", "agente-hibrido", "agente-hibrido-formats.so")
        shutil.copy2(os.path.join(os.path.dirname(BIN), "agente-hibrido-formats.so"), module)
        r, summary = self.ingest_json(self.docs, binary=binary)
        self.assertEqual((r.returncode, summary["files"], summary["failed"]), (0, 3, 0), r.stderr)
        # Without it, Markdown fails with a reason and plain text is still read.
        os.remove(module)
        self.write("bees.md", BEES + "\nchanged, so that it is parsed again\n")
        self.write("more.txt", "plain text needs no module\n")
        r, summary = self.ingest_json(self.docs, binary=binary)
        self.assertEqual((r.returncode, summary["files"], summary["failed"]), (1, 1, 1), r.stderr)   # more.txt in, bees.md not
        self.assertIn("agente-hibrido-formats.so is not installed", r.stderr)

    def test_search_ranks_the_matching_section_first(self):
        self.assertEqual(self.ingest_json(self.docs)[0].returncode, 0)
        page = self.search_json("which crops depend on bees carrying pollen")
        self.assertEqual(page["object"], "vector_store.search_results.page")
        top = page["data"][0]
        self.assertTrue(top["filename"].endswith("bees.md"))
        self.assertEqual(top["chunk"]["section"], "Bees > Pollination")
        self.assertIn("crops", top["content"][0]["text"])
        text = self.rag("search", "--store", "docs", "--max-results", "2", "how do I install a package with apt")
        self.assertEqual(text.returncode, 0, text.stderr)
        first = text.stdout.splitlines()[0]
        self.assertRegex(first, r"^1\. .*debian\.md § Debian > Installing packages  score [0-9.]+$")
        self.assertIn("apt install", text.stdout.splitlines()[1])
        self.assertNotIn("3. ", text.stdout)
        for ranker in ("vector", "bm25"):
            self.assertTrue(self.search_json("apt install package", "--ranker", ranker)["data"])

    def test_the_progress_bar_is_drawn_on_a_terminal(self):
        leader, follower = pty.openpty()
        try:
            r = self.rag("ingest", "--store", "docs", self.docs, stderr=follower)
            os.close(follower)
            follower = None
            drawn = b""
            while True:
                try:
                    piece = os.read(leader, 65536)
                except OSError:   # EIO: the terminal's other end is closed
                    break
                if not piece:
                    break
                drawn += piece
        finally:
            if follower is not None:
                os.close(follower)
            os.close(leader)
        self.assertEqual(r.returncode, 0)
        self.assertIn(b"[#############.......] 2/3 ", drawn)
        self.assertIn(b"\r\x1b[K", drawn)
        self.assertNotIn(b"rag: ingest", drawn)
        self.assertRegex(r.stdout, r'^store "docs": 3 files ingested, \d+ chunks, \d+ embedded, 0 skipped as unchanged, 0 failed\n$')

    def test_usage_errors_exit_2_and_unknown_stores_exit_1(self):
        for args, message in ((("ingest", self.docs), "--store NAME is required"),
                              (("search", "--store", "docs"), "expected the question"),
                              (("search", "--store", "docs", "--max-results", "0", "q"), "--max-results expects"),
                              (("search", "--store", "docs", "--ranker", "magic", "q"), "--ranker expects"),
                              (("frobnicate",), 'unknown rag command "frobnicate"')):
            r = self.rag(*args)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn(message, r.stderr)
        r = self.rag("search", "--store", "nowhere", "q")
        self.assertEqual(r.returncode, 1)
        self.assertIn('no vector store named "nowhere"', r.stderr)
        r = self.rag("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("rag ingest --store NAME", r.stdout)
        other = subprocess.run([BIN, "-c", self.conf, "frobnicate"], capture_output=True, text=True, timeout=CLI_TIMEOUT)
        self.assertEqual(other.returncode, 2)
        self.assertIn('unknown command "frobnicate"', other.stderr)

    def test_the_config_file_may_follow_the_command(self):
        r = subprocess.run([BIN, "rag", "ingest", "--store", "docs", "-c", self.conf, "--json", self.docs],
                           capture_output=True, text=True, env=dict(os.environ, **gateway_env()), timeout=CLI_TIMEOUT,
                           cwd=self.dir)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.exists(os.path.join(self.state, "rag.sqlite3")))   # [rag] state_dir was read

    def test_works_while_the_server_runs_on_the_same_state(self):
        server = self.server(self.settings, env=gateway_env()).start()
        r, summary = self.ingest_json(self.docs)
        self.assertEqual((r.returncode, summary["files"]), (0, 3), r.stderr)
        self.assertTrue(self.search_json("steam locomotive coal")["data"][0]["filename"].endswith("trains.txt"))
        self.assertEqual(http_get(server.port)[0], 200)


if __name__ == "__main__":
    unittest.main()
