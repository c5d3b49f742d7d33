"""A refused reload leaves the server exactly as it was (issue 16): its sockets, its workers' ability
to serve, the next reload. And a worker with no socket to accept on fails its boot instead of
reporting ready and serving nobody."""
import os
import signal
import socket
import subprocess

from harness import TEST_BIN, ServerTest, free_port, http_get, open_scoreboard, scaled, scoreboard_slots, wait_until


def health_checks(port, n, timeout=3):
    """n GETs of /health, each on a fresh connection; the number answered 200 (gives up after three
    misses, so that a server that lost its sockets fails the test in seconds, not minutes)."""
    answered = missed = 0
    for _ in range(n):
        try:
            answered += http_get(port, timeout=timeout)[0] == 200
        except OSError:
            missed += 1
            if missed == 3:
                break
    return answered


def open_fds(pid):
    return sorted(os.listdir(f"/proc/{pid}/fd"))


class RefusedReload(ServerTest):
    def setUp(self):
        self.taken = socket.socket()  # somebody else's listening socket, without SO_REUSEADDR
        self.taken.bind(("127.0.0.1", 0))
        self.taken.listen()
        self.addCleanup(self.taken.close)
        self.taken_port = self.taken.getsockname()[1]

    def refuse_a_reload(self, s):
        """A HUP whose `bind` adds the taken port: refused, with the reason logged."""
        with open(s.conf, "w") as f:
            f.write(f'bind = ["127.0.0.1:{s.port}", "127.0.0.1:{self.taken_port}"]\n'
                    'workers = 2\nmax_requests = 50\n')
        s.signal(signal.SIGHUP)
        self.assertTrue(s.wait_log(rf"Reload refused.*127\.0\.0\.1:{self.taken_port}: Address already in use"),
                        s.read_log())

    def test_the_server_keeps_its_sockets_and_replacement_workers_serve(self):
        s = self.server(["workers = 2", "max_requests = 50"]).start(workers=2)
        self.assertTrue(s.wait_log(r"2 workers serving"))
        fds = open_fds(s.pid)
        self.refuse_a_reload(s)
        self.assertEqual(open_fds(s.pid), fds)  # nothing closed, nothing leaked
        self.assertTrue(s.healthy())
        for victim in s.workers():  # replacements for crashed workers must get the sockets
            os.kill(victim, signal.SIGKILL)
            self.assertTrue(wait_until(lambda: victim not in s.workers() and len(s.workers()) == 2, 5))
        self.assertEqual(health_checks(s.port, 20), 20, s.read_log()[-3000:])
        # 300 requests recycle every worker several times: so must the replacements for those.
        self.assertEqual(health_checks(s.port, 300), 300, s.read_log()[-3000:])
        # Logged as the master reaps each one, which can come after the last answer (later still
        # under the sanitizers, where a worker's exit includes LeakSanitizer's scan).
        self.assertTrue(wait_until(lambda: s.read_log().count("recycled") >= 3, scaled(10)), s.read_log()[-3000:])
        self.assertNotIn("Exception in worker process", s.read_log())

    def test_a_later_valid_reload_works_and_binds_what_it_adds(self):
        s = self.server(["workers = 2"]).start(workers=2)
        self.refuse_a_reload(s)
        before = set(s.workers())
        extra = free_port()
        with open(s.conf, "w") as f:
            f.write(f'bind = ["127.0.0.1:{s.port}", "127.0.0.1:{extra}"]\nworkers = 2\n')
        s.signal(signal.SIGHUP)
        self.assertTrue(s.wait_log(r"Hang up: Master \(generation 2\)"), s.read_log())
        self.assertTrue(wait_until(lambda: len(s.workers()) == 2 and not before & set(s.workers()), 10))
        self.assertEqual(http_get(s.port)[0], 200)
        self.assertEqual(http_get(extra)[0], 200)
        self.assertEqual(s.read_log().count("Address already in use"), 1, s.read_log())

    def test_a_refused_reload_changes_no_setting(self):
        s = self.server(["workers = 2"]).start(workers=2)
        with open(s.conf, "w") as f:  # a valid worker count beside the bind that cannot be had
            f.write(f'bind = ["127.0.0.1:{s.port}", "127.0.0.1:{self.taken_port}"]\nworkers = 3\n')
        s.signal(signal.SIGHUP)
        self.assertTrue(s.wait_log(r"Reload refused"))
        victim = s.workers()[0]
        os.kill(victim, signal.SIGKILL)  # the replacement follows the settings still in force
        self.assertTrue(wait_until(lambda: victim not in s.workers() and len(s.workers()) == 2, 5))
        self.assertFalse(s.wait_workers(3, 1.5))
        self.assertEqual(health_checks(s.port, 20), 20)


    def test_a_refused_reload_leaves_no_unix_socket_file_behind(self):
        # What the refused reload bound is closed again, and a unix socket's file removed with it:
        # the refused address binds cleanly later, and nothing on disk says a server is there.
        s = self.server(["workers = 1"]).start(workers=1)
        path = os.path.join(s.dir, "new.sock")
        with open(s.conf, "w") as f:  # the unix socket binds, then the taken port fails
            f.write(f'bind = ["127.0.0.1:{s.port}", "unix:{path}", "127.0.0.1:{self.taken_port}"]\nworkers = 1\n')
        s.signal(signal.SIGHUP)
        self.assertTrue(s.wait_log(r"Reload refused.*Address already in use"), s.read_log())
        self.assertFalse(os.path.exists(path))
        # Refused by a later step (the app's settings), after every address was bound.
        with open(s.conf, "w") as f:
            f.write(f'bind = ["127.0.0.1:{s.port}", "unix:{path}"]\nworkers = 1\n'
                    '[models.m]\ntargets = [{ provider = "nowhere", model = "x" }]\n')
        s.signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: s.read_log().count("Reload refused") == 2, 10), s.read_log())
        self.assertFalse(os.path.exists(path))
        self.assertTrue(s.healthy())


class WorkerWithoutSocket(ServerTest):
    def test_fails_its_boot_instead_of_reporting_ready(self):
        # A worker as the master starts one, in a slot of a running master's shared memory that
        # this master leaves unused, but handed no listening socket.
        s = self.server(["workers = 1"], binary=TEST_BIN).start(workers=1)
        shared = open_scoreboard(s.pid)
        env = dict(os.environ, AGENTE_WORKER_SLOT="255", AGENTE_WORKER_FDS="",
                   AGENTE_WORKER_SCOREBOARD=str(shared), AGENTE_WORKER_MASTER=str(os.getpid()),
                   AGENTE_WORKER_MAX_REQUESTS="0")
        try:
            r = subprocess.run([TEST_BIN, "-b", f"127.0.0.1:{free_port()}"], env=env, pass_fds=(shared,),
                               capture_output=True, text=True, timeout=15)
        finally:
            os.close(shared)
        self.assertEqual(r.returncode, 3, r.stderr)  # worker_boot_error
        self.assertIn("no listening socket", r.stderr)
        self.assertEqual(scoreboard_slots(s.pid)[255][0], 0)  # never WorkerState::ready, nor booting


if __name__ == "__main__":
    import unittest
    unittest.main()
