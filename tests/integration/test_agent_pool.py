"""The agent with a dirty pool (dirty_workers > 0): its conversation store runs in the dirty workers,
not on a thread of each HTTP worker; conversations, A2A tasks and cancellation work as without it,
and a dirty worker's death costs no conversation."""
import os
import signal
import time

from harness import ChunkedReader, dirty_workers, http_workers, wait_until
from test_agent import AUTH, FAKE_REPLY, AgentTest, a2a_message, agent_conf, execute, rpc


def open_files(pid):
    out = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return out


class PoolAgentTest(AgentTest):
    def start_pool(self, workers=2, dirty=1, **kwargs):
        # No access log: its writer thread is the access log's business, not the store's.
        conf = [line for line in agent_conf(self.fake.url, self.state_dir, workers, **kwargs)
                if not line.startswith("accesslog")]
        s = self.server([f"dirty_workers = {dirty}"] + conf, env=self.env())
        s.start(workers=workers + dirty)
        self.addCleanup(self.assert_no_worker_crashed, s)
        return s

    def env(self):
        from test_gateway import gateway_env
        return gateway_env()


class StoreInThePool(PoolAgentTest):
    def test_conversations_are_stored_by_the_dirty_workers_and_http_workers_keep_one_thread_of_their_own(self):
        s = self.start_pool(workers=2, dirty=1)
        for i in range(3):
            status, _, answer = execute(s.port, f"turn {i}", context_id="pooled", rpc_id=i)
            self.assertEqual(status, 200, answer)
        self.assertEqual([m["content"] for m in self.last_upstream_messages() if m["role"] == "user"],
                         ["turn 0", "turn 1", "turn 2"], s.read_log())
        for pid in http_workers(s):
            self.assertFalse([f for f in open_files(pid) if "agent-contexts" in f], "an HTTP worker opened the store")
            # The loop, and asio's resolver thread (the gateway's DNS lookups): no store thread.
            self.assertLessEqual(len(os.listdir(f"/proc/{pid}/task")), 2)
        self.assertTrue([f for f in open_files(dirty_workers(s)[0]) if f.endswith("agent-contexts.sqlite3")])
        rows = self.db().execute("SELECT COUNT(*) FROM messages WHERE context_id = 'pooled'").fetchone()[0]
        self.assertEqual(rows, 6)

    def test_a_task_is_stored_found_and_its_cancel_goes_through_the_pool(self):
        s = self.start_pool(workers=2, dirty=2,
                            agents={"studly": ['model = "agent-slow"', "params = { fake_delay_ms = 4000 }"]})
        r = ChunkedReader(s.port, "/tasks/send", {"jsonrpc": "2.0", "id": 7, "method": "SendStreamingMessage",
                                                  "params": {"message": a2a_message("plan my week")}}, AUTH)
        self.addCleanup(r.close)
        _, first = r.sse_event()
        task_id = first["result"]["task"]["id"]
        self.assertTrue(wait_until(lambda: self.fake.requests("slow"), timeout=5, interval=0.01))
        _, _, got = rpc(s.port, "GetTask", {"id": task_id}, "g")
        self.assertIn(got["result"]["status"]["state"], ("TASK_STATE_SUBMITTED", "TASK_STATE_WORKING"))
        t0 = time.monotonic()
        status, _, answer = rpc(s.port, "CancelTask", {"id": task_id}, "c")
        self.assertEqual((status, answer["result"]["status"]["state"]), (200, "TASK_STATE_CANCELED"))
        self.assertLess(time.monotonic() - t0, 1.0)
        self.assertIsNotNone(self.wait_upstream_closed(), "the upstream call was not stopped")

    def test_a_dirty_worker_killed_between_turns_loses_no_conversation(self):
        s = self.start_pool(workers=1, dirty=2)
        self.assertEqual(execute(s.port, "before", context_id="survivor")[0], 200)
        victim = dirty_workers(s)[0]
        os.kill(victim, signal.SIGKILL)
        self.assertTrue(wait_until(lambda: len(dirty_workers(s)) == 2 and victim not in dirty_workers(s), 5))
        status, _, answer = execute(s.port, "after", context_id="survivor")
        self.assertEqual(status, 200, answer)
        self.assertEqual([m["content"] for m in self.last_upstream_messages() if m["role"] != "system"],
                         ["before", FAKE_REPLY, "after"])
        self.assertRegex(s.read_log(), rf"Dirty worker \(pid:{victim}\) crashed with signal SIGKILL")

    def assert_no_worker_crashed(self, server):
        if os.path.exists(server.log_path):   # the SIGKILL above is the test's own
            log = server.read_log().replace("crashed with signal SIGKILL", "")
            self.assertNotRegex(log, r"crashed with signal|exited unexpectedly|killed for timeout")
