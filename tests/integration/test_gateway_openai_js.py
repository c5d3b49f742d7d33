"""The official `openai` npm client (pinned in tests/js/package-lock.json) talks to the gateway
unchanged, streamed and not. Skipped when tests/js/node_modules is missing (scripts/install-deps
installs it with `npm ci` where npm exists)."""
import json
import os
import shutil
import subprocess
import unittest

from test_gateway import CLIENT_KEY, GatewayTest

JS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../js")


@unittest.skipUnless(shutil.which("node") and os.path.isdir(os.path.join(JS, "node_modules", "openai")),
                     "node or tests/js/node_modules missing: run `npm ci --prefix tests/js` (scripts/install-deps does)")
class OpenAiNodeClientTest(GatewayTest):
    def test_official_client_unchanged(self):
        s = self.start(workers=2, providers={"main": []}, models={"fake-gpt": [("main", "ok")]})
        env = dict(os.environ, AGENTE_BASE_URL=f"http://127.0.0.1:{s.port}/v1", AGENTE_API_KEY=CLIENT_KEY,
                   AGENTE_MODEL="fake-gpt")
        out = subprocess.run(["node", "openai_client_test.mjs"], cwd=JS, env=env, capture_output=True, text=True,
                             timeout=60)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        summary = json.loads(out.stdout.strip().splitlines()[-1])
        self.assertEqual(summary["streamed"]["text"], "tok0 tok1 tok2 ")
        self.assertEqual(summary["errors"], "ok")


if __name__ == "__main__":
    unittest.main()
