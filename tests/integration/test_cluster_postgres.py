"""Conversations and A2A tasks in PostgreSQL ([cluster] postgres_url): two servers, as two machines,
share them through one database; the schema is migrated by `agente-hibrido db migrate` and checked at
start; PostgreSQL stopped mid-test makes the agent answer 503 while the gateway proxies on, and once
it is back nothing written before is lost. The database is a real PostgreSQL started for the test
(postgres.py)."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading

from harness import BIN, ServerTest, dirty_workers, http_workers, wait_until
from postgres import PASSWORD, PASSWORD_IN_URL, start_postgres
from test_agent import FAKE_REPLY, a2a_message, agent_conf, execute, rpc
from test_gateway import FakeUpstream, gateway_env, post

CLI_TIMEOUT = 60
URL_ENV = "AGENTE_TEST_PG_URL"


class ClusterTest(ServerTest):
    @classmethod
    def setUpClass(cls):
        cls.pg = start_postgres(cls.addClassCleanup)   # one server per class, a database per test

    def setUp(self):
        self.fake = FakeUpstream()
        self.addCleanup(self.fake.stop)
        self.db_name = "t_" + self._testMethodName[-40:].lower()
        self.url = self.pg.create_database(self.db_name)
        self.state_dir = os.path.join(self.make_dir(), "state")

    def make_dir(self):
        d = tempfile.mkdtemp(prefix="agente-cluster-")
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def conf(self, workers=2, dirty=0, cluster=None, agent=(), agents=None):
        lines = agent_conf(self.fake.url, self.state_dir, workers, agent=agent, agents=agents)
        if dirty:
            lines = [f"dirty_workers = {dirty}"] + lines
        lines += ["", "[cluster]", *(cluster if cluster is not None else [f'postgres_url_env = "{URL_ENV}"'])]
        return lines

    def env(self):
        return dict(gateway_env(), **{URL_ENV: self.url})

    def start(self, workers=2, dirty=0, **kwargs):
        s = self.server(self.conf(workers, dirty, **kwargs), env=self.env())
        s.start(workers=workers + dirty)
        self.addCleanup(self.assert_no_worker_crashed, s)
        return s

    def assert_no_worker_crashed(self, server):
        if os.path.exists(server.log_path):
            self.assertNotRegex(server.read_log(), r"crashed with signal|exited unexpectedly|killed for timeout")

    def db(self, *command, conf=None):
        """`agente-hibrido -c CONF db COMMAND`: (exit code, stdout, stderr)."""
        if conf is None:
            s = self.server(self.conf(), env=self.env())   # its server.conf only; never started
            conf = s.conf
        r = subprocess.run([BIN, "-c", conf, "db", *command], capture_output=True, text=True,
                           timeout=CLI_TIMEOUT, env=dict(os.environ, **self.env()))
        return r.returncode, r.stdout, r.stderr

    def migrate(self):
        code, out, err = self.db("migrate")
        self.assertEqual(code, 0, out + err)
        return out

    def upstream_turns(self):
        return [m["content"] for m in self.fake.requests("ok")[-1]["body"]["messages"] if m["role"] != "system"]


def maps_libpq(pid):
    with open(f"/proc/{pid}/maps") as f:
        return "libpq.so" in f.read()


class Migrations(ClusterTest):
    def test_db_migrate_creates_the_schema_once_and_again_changes_nothing(self):
        code, out, _ = self.db("status")
        self.assertEqual(code, 1)
        self.assertIn("never created", out)
        out = self.migrate()
        self.assertIn("applied 1 agent_conversations", out)
        self.assertIn("applied 2 rag_store", out)
        self.assertIn("schema at version 4 (was 0)", out)
        tables = {r[0] for r in self.pg.psql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'", self.db_name)}
        self.assertTrue({"agente_schema_migrations", "agent_contexts", "agent_messages", "agent_tasks",
                         "rag_files", "rag_stores", "rag_attachments", "rag_chunks", "rag_embeddings"} <= tables, tables)
        code, out, err = self.db("migrate")
        self.assertEqual((code, out, err), (0, "schema at version 4: up to date\n", ""))
        self.assertEqual(self.pg.psql("SELECT version, name FROM agente_schema_migrations", self.db_name),
                         [["1", "agent_conversations"], ["2", "rag_store"], ["3", "rag_pgvector"],
                          ["4", "agent_task_citations"]])
        code, out, _ = self.db("status")
        self.assertEqual(code, 0, out)

    def test_two_hosts_migrating_at_once_apply_each_migration_once(self):
        s = self.server(self.conf(), env=self.env())
        results = []

        def run():
            results.append(self.db("migrate", conf=s.conf))
        threads = [threading.Thread(target=run) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(CLI_TIMEOUT)
        self.assertEqual([r[0] for r in results], [0, 0, 0], results)
        self.assertEqual(sum("applied 1" in r[1] for r in results), 1, results)
        self.assertEqual(self.pg.psql("SELECT COUNT(*) FROM agente_schema_migrations", self.db_name), [["4"]])

    def test_a_server_refuses_to_start_on_a_schema_behind_it(self):
        s = self.server(self.conf(), env=self.env())
        s.start(wait=False)
        self.assertEqual(s.wait_exit(30), 1, s.read_log())
        log = s.read_log()
        self.assertIn("the PostgreSQL schema was never created (this build needs version 4): "
                      "run `agente-hibrido -c server.conf db migrate`", log)
        self.assertNotIn(PASSWORD, log)
        self.assertNotIn(PASSWORD_IN_URL, log)
        self.assertIn(f"postgresql://agente:***@127.0.0.1:{self.pg.port}/{self.db_name}", log)

    def test_db_without_postgres_configured_says_so(self):
        s = self.server(self.conf(cluster=[]), env=self.env())
        code, _, err = self.db("migrate", conf=s.conf)
        self.assertEqual(code, 1)
        self.assertIn("no PostgreSQL configured", err)
        code, _, err = self.db("frobnicate", conf=s.conf)
        self.assertEqual(code, 2)
        self.assertIn("expected `migrate` or `status`", err)

    def test_an_unset_url_variable_refuses_the_start_with_its_line_not_an_abort(self):
        s = self.server(self.conf(cluster=['postgres_url_env = "AGENTE_TEST_UNSET_URL"']), env=self.env())
        s.start(wait=False)
        self.assertEqual(s.wait_exit(30), 1, s.read_log())
        self.assertRegex(s.read_log(), r"server\.conf:\d+: cluster\.postgres_url_env: environment variable "
                                       r"AGENTE_TEST_UNSET_URL is not set")


class SharedConversations(ClusterTest):
    def setUp(self):
        super().setUp()
        self.migrate()

    def test_a_conversation_started_on_one_server_continues_on_another(self):
        a = self.start(workers=2)
        b = self.start(workers=1, dirty=1)   # one through a store thread, one through the dirty pool
        self.assertEqual(execute(a.port, "first, on a", context_id="shared-1")[0], 200)
        status, _, answer = execute(b.port, "second, on b", context_id="shared-1")
        self.assertEqual(status, 200, answer)
        self.assertEqual(self.upstream_turns(), ["first, on a", FAKE_REPLY, "second, on b"])
        status, _, answer = execute(a.port, "third, on a", context_id="shared-1")
        self.assertEqual(status, 200, answer)
        self.assertEqual(self.upstream_turns(), ["first, on a", FAKE_REPLY, "second, on b", FAKE_REPLY, "third, on a"])
        self.assertEqual(self.pg.psql("SELECT COUNT(*) FROM agent_messages WHERE context_id = 'shared-1'", self.db_name),
                         [["6"]])
        # Nothing in SQLite: the state directory was never even created.
        self.assertFalse(os.path.exists(os.path.join(self.state_dir, "agent-contexts.sqlite3")))
        # libpq is loaded where the store runs: b's dirty worker, not its HTTP worker.
        self.assertTrue(any(maps_libpq(pid) for pid in dirty_workers(b)))
        self.assertFalse(any(maps_libpq(pid) for pid in http_workers(b)))
        # Nor after a reload, whose checks load libpq into the master again: HTTP workers are forked
        # from it (core/spawn.hpp), and the master unloads it after its checks.
        old = set(http_workers(b))
        os.kill(b.pid, signal.SIGHUP)
        self.assertTrue(b.wait_log(r"1 workers and 1 dirty workers serving \(generation 2\)", 30), b.read_log())
        self.assertTrue(wait_until(lambda: http_workers(b) and not old & set(http_workers(b)), 30))
        self.assertFalse(any(maps_libpq(pid) for pid in http_workers(b)))

    def test_a_task_sent_to_one_server_is_found_on_another(self):
        a = self.start(workers=1)
        b = self.start(workers=1)
        status, _, answer = rpc(a.port, "SendMessage", {"message": a2a_message("plan my week")}, "s")
        self.assertEqual(status, 200, answer)
        task = answer["result"]["task"]
        status, _, got = rpc(b.port, "GetTask", {"id": task["id"]}, "g")
        self.assertEqual(status, 200, got)
        self.assertEqual(got["result"]["status"]["state"], "TASK_STATE_COMPLETED")
        self.assertEqual(got["result"]["contextId"], task["contextId"])


class Bounds(ClusterTest):
    def setUp(self):
        super().setUp()
        self.migrate()

    def rows(self, sql):
        return self.pg.psql(sql, self.db_name)

    def test_the_stores_bounds_hold_across_servers(self):
        limits = ["max_contexts = 2", "max_messages = 4", "max_context_bytes = 1024", "max_tasks = 3"]
        a = self.start(workers=1, agent=limits)
        b = self.start(workers=1, agent=limits)
        # max_messages: the oldest go.
        for i, s in enumerate((a, b, a)):
            self.assertEqual(execute(s.port, f"turn {i}", context_id="one")[0], 200)
        self.assertEqual(self.rows("SELECT content FROM agent_messages WHERE context_id = 'one' ORDER BY seq"),
                         [["turn 1"], [FAKE_REPLY], ["turn 2"], [FAKE_REPLY]])
        # max_context_bytes: a turn bigger than the bound keeps only what fits, newest first.
        self.assertEqual(execute(b.port, "x" * 2000, context_id="one")[0], 200)
        self.assertEqual(self.rows("SELECT content FROM agent_messages WHERE context_id = 'one' ORDER BY seq"),
                         [[FAKE_REPLY]])
        # max_contexts: the least recently used goes, with its messages and tasks, whichever
        # server used it last ("one" is read again through b, so "two" is the oldest).
        self.assertEqual(execute(a.port, "hello", context_id="two")[0], 200)
        self.assertEqual(execute(b.port, "again", context_id="one")[0], 200)
        self.assertEqual(execute(a.port, "new", context_id="three")[0], 200)
        self.assertEqual(self.rows("SELECT id FROM agent_contexts ORDER BY id"), [["one"], ["three"]])
        self.assertEqual(self.rows("SELECT COUNT(*) FROM agent_messages WHERE context_id = 'two'"), [["0"]])
        # max_tasks: the oldest go.
        ids = []
        for i in range(5):
            status, _, answer = rpc((a, b)[i % 2].port, "SendMessage", {"message": a2a_message(f"task {i}", "three")}, i)
            self.assertEqual(status, 200, answer)
            ids.append(answer["result"]["task"]["id"])
        self.assertEqual(sorted(r[0] for r in self.rows("SELECT id FROM agent_tasks")), sorted(ids[2:]))
        status, _, got = rpc(b.port, "GetTask", {"id": ids[0]}, "g")
        self.assertEqual(got["error"]["code"], -32001, got)   # Task not found


class PostgresDown(ClusterTest):
    def setUp(self):
        super().setUp()
        self.migrate()

    def tearDown(self):
        if not self.pg.ready():   # a failed test must not leave the shared server stopped
            self.pg.start()

    def chat(self, port):
        return post(port, "/v1/chat/completions", {"model": "agent-ok", "messages": [{"role": "user", "content": "hi"}]})

    def test_the_agent_answers_503_while_postgres_is_down_the_gateway_proxies_and_nothing_is_lost(self):
        for dirty in (0, 1):
            with self.subTest(dirty_workers=dirty):
                s = self.start(workers=1, dirty=dirty)
                context = f"survives-{dirty}"
                self.assertEqual(execute(s.port, "before the outage", context_id=context)[0], 200)

                self.pg.stop()
                status, _, answer = execute(s.port, "during the outage", context_id=context)
                self.assertEqual(status, 503, answer)
                self.assertEqual(answer["error"]["message"],
                                 "Service unavailable: conversation store unavailable: try again later")
                status, _, got = rpc(s.port, "SendMessage", {"message": a2a_message("a task", context)}, "s")
                self.assertEqual(status, 503, got)
                status, _, body = post(s.port, "/agent/stream/studly", {"messages": [{"role": "user", "content": "x"}],
                                                                         "context_id": context})
                self.assertEqual(status, 503, body)
                status, _, completion = self.chat(s.port)   # the gateway needs no database
                self.assertEqual(status, 200, completion)
                self.assertRegex(s.read_log(), r"agent: reading context survives-\d: .*PostgreSQL at "
                                               r"postgresql://agente:\*\*\*@127\.0\.0\.1")
                self.assertNotIn(PASSWORD_IN_URL, s.read_log())

                self.pg.start()
                # The first request after the restart is served: the stale connection is replaced.
                status, _, answer = execute(s.port, "after the outage", context_id=context)
                self.assertEqual(status, 200, answer)
                self.assertEqual(self.upstream_turns(), ["before the outage", FAKE_REPLY, "after the outage"])
                s.stop()

    def test_a_turn_whose_store_went_away_while_the_llm_answered_is_never_answered_as_done(self):
        # The upstream's "slow" model answers after 2 s; PostgreSQL is stopped while it thinks. The
        # answer cannot be stored, so it is not given as a success: the client sends the turn again.
        s = self.start(workers=1, agents={"studly": [], "slowpoke": ['model = "agent-slow"']})
        calls = {
            "execute": lambda: rpc(s.port, "execute", {"agent_id": "slowpoke", "context_id": "lost-execute",
                                                       "messages": [{"kind": "message", "role": "user",
                                                                     "parts": [{"kind": "text", "text": "q"}]}]}),
            "SendMessage": lambda: rpc(s.port, "SendMessage", {"message": a2a_message("q", "lost-send"),
                                                               "metadata": {"agent_id": "slowpoke"}}, "s"),
            "stream": lambda: post(s.port, "/agent/stream/slowpoke", {"messages": [{"role": "user", "content": "q"}],
                                                                      "context_id": "lost-stream"}),
        }
        for name, call in calls.items():
            with self.subTest(call=name):
                seen = len(self.fake.requests("slow"))
                got = {}
                t = threading.Thread(target=lambda: got.update(answer=call()))
                t.start()
                self.assertTrue(wait_until(lambda: len(self.fake.requests("slow")) > seen), "the upstream was not asked")
                self.pg.stop()
                try:
                    t.join()
                    status, _, body = got["answer"]
                    if name == "execute":
                        self.assertEqual(status, 503, body)
                    elif name == "SendMessage":
                        self.assertEqual(status, 200, body)   # A2A: the task's own state says it failed
                        self.assertEqual(body["result"]["task"]["status"]["state"], "TASK_STATE_FAILED", body)
                    else:
                        last = [json.loads(line) for line in body.decode().splitlines() if line][-1]
                        self.assertNotEqual(last.get("type"), "done", last)
                        self.assertEqual(last.get("status"), 503, last)
                finally:
                    self.pg.start()
                self.assertEqual(self.pg.psql("SELECT COUNT(*) FROM agent_messages WHERE context_id LIKE 'lost-%'",
                                              self.db_name), [["0"]])
        s.stop()

    def test_a_server_started_while_postgres_is_down_serves_the_gateway_and_recovers(self):
        self.pg.stop()
        s = self.start(workers=1)
        self.assertRegex(s.read_log(), r"cluster: PostgreSQL at postgresql://agente:\*\*\*@.*the agent answers 503")
        self.assertEqual(execute(s.port, "nobody home", context_id="late")[0], 503)
        self.assertEqual(self.chat(s.port)[0], 200)
        self.pg.start()
        status, _, answer = execute(s.port, "now", context_id="late")
        self.assertEqual(status, 200, answer)
        self.assertEqual(self.pg.psql("SELECT COUNT(*) FROM agent_messages WHERE context_id = 'late'", self.db_name),
                         [["2"]])
