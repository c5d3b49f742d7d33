"""The official A2A client (`@a2a-js/sdk` 1.x, pinned in tests/js/package-lock.json) talks to the agent
unchanged: ClientFactory reads the agent card, sends a message whole and streamed, reads the task
back and cancels a slow one; with its v0.3 compatibility on, it reads the seed's agent.json
and talks v0.3 (message/send, message/stream). Skipped when tests/js/node_modules is missing (scripts/install-deps
installs it with `npm ci` where npm exists)."""
import json
import os
import shutil
import subprocess
import unittest

from test_agent import CLIENT_KEY, AgentTest

JS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../js")


@unittest.skipUnless(shutil.which("node") and os.path.isdir(os.path.join(JS, "node_modules", "@a2a-js", "sdk")),
                     "node or tests/js/node_modules missing: run `npm ci --prefix tests/js` (scripts/install-deps does)")
class A2ANodeClientTest(AgentTest):
    def test_official_client_card_send_stream_and_cancel(self):
        s = self.start(workers=2, agents={"studly": [], "slow": ['model = "agent-slow"', "params = { fake_delay_ms = 4000 }"]})
        env = dict(os.environ, AGENTE_BASE_URL=f"http://127.0.0.1:{s.port}", AGENTE_SLOW_AGENT="slow",
                   AGENTE_API_KEY=CLIENT_KEY)
        out = subprocess.run(["node", "a2a_client_test.mjs"], cwd=JS, env=env, capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        summary = json.loads(out.stdout.strip().splitlines()[-1])
        self.assertEqual(summary["sent"]["text"], "Hello from the fake upstream.")
        self.assertEqual(summary["streamed"]["text"], "tok0 tok1 tok2 ")
        self.assertLess(summary["cancelled"]["ms"], 3000)
        self.assertIn("not found", summary["notFound"].lower())
        self.assertEqual(summary["legacy"]["streamed"], "tok0 tok1 tok2 ")
        # The stream continued the first message's context: its history went upstream.
        conversations = [[m["content"] for m in r["body"]["messages"] if m["role"] == "user"] for r in self.fake.requests("ok")]
        self.assertIn(["Help me learn Python", "And then?"], conversations)
        self.assertIn(["Stream over v0.3"], conversations)
        # The cancel closed the slow upstream call.
        self.assertIsNotNone(self.wait_upstream_closed())


if __name__ == "__main__":
    unittest.main()
