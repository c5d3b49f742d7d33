"""The systemd protocols, without systemd: a fake NOTIFY_SOCKET records what the master announces
(READY / RELOADING / STOPPING / STATUS / WATCHDOG / MAINPID, with the sender's pid from
SCM_CREDENTIALS), sockets are passed the way systemd passes them (LISTEN_FDS from fd 3, LISTEN_PID),
and JOURNAL_STREAM names stderr so that each error-log line carries a syslog priority.

The real systemd (a booted container) is tests/integration/test_systemd_container.py."""
import os
import re
import signal
import socket
import struct
import sys
import threading
import time
import unittest

from harness import BIN, Server, ServerTest, http_get, wait_until

# Runs in the child between fork and the server's exec, as systemd's own exec does: moves the sockets
# to fds 3.. and sets LISTEN_FDS, and sets LISTEN_PID / WATCHDOG_PID to the pid the server will
# have (ours: exec keeps it).
WRAPPER = r"""
import fcntl, os, sys
fds = [int(f) for f in os.environ.pop("AGENTE_TEST_PASS_FDS", "").split(",") if f]
# Out of the way of 3, 4, ... first (a plain dup() may return 3 itself, then closed below).
high = [fcntl.fcntl(f, fcntl.F_DUPFD_CLOEXEC, 100) for f in fds]
for f in fds:
    os.close(f)                            # the server must hold fds 3.. and nothing else of ours
for i, f in enumerate(high):
    os.dup2(f, 3 + i, inheritable=True)
    os.close(f)
if fds:
    os.environ["LISTEN_FDS"] = str(len(fds))
for name in os.environ.pop("AGENTE_TEST_SELF_PID", "").split(","):
    if name:
        os.environ[name] = str(os.getpid())
os.execv(sys.argv[1], sys.argv[1:])
"""


class NotifySocket:
    """An AF_UNIX datagram socket standing in for systemd's notification socket."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.settimeout(0.2)
        self.messages = []  # (monotonic receive time, sender pid, {field: value})
        self.lock = threading.Lock()
        self.closed = False
        self.thread = threading.Thread(target=self._receive, daemon=True)
        self.thread.start()

    def _receive(self):
        while not self.closed:
            try:
                data, anc, _, _ = self.sock.recvmsg(65536, socket.CMSG_SPACE(12))
            except socket.timeout:
                continue
            except OSError:
                return
            pid = None
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("iII", payload[:12])[0]
            fields = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
            with self.lock:
                self.messages.append((time.monotonic(), pid, fields))

    def all(self):
        with self.lock:
            return list(self.messages)

    def states(self):
        """The state changes in order: READY, RELOADING, STOPPING (STATUS-only messages left out)."""
        out = []
        for _, _, f in self.all():
            for key in ("RELOADING", "STOPPING", "READY"):
                if f.get(key) == "1":
                    out.append(key)
        return out

    def wait_states(self, expected, timeout=10):
        return wait_until(lambda: self.states() == expected, timeout)

    def wait(self, predicate, timeout=10):
        """The first message (time, pid, fields) for which predicate(pid, fields) holds."""
        def find():
            return next((m for m in self.all() if predicate(m[1], m[2])), None)
        return wait_until(find, timeout)

    def close(self):
        self.closed = True
        self.thread.join(2)
        self.sock.close()


class SystemdServer(Server):
    """A Server started through WRAPPER: sockets passed as fds 3.., env vars naming its own pid."""

    def __init__(self, settings=(), passed=(), self_pid_vars=(), **kwargs):
        super().__init__(settings, **kwargs)
        self.passed = list(passed)
        self.self_pid_vars = list(self_pid_vars)
        if self.passed:
            self.self_pid_vars.append("LISTEN_PID")

    def spawn(self):
        import subprocess
        env = dict(self.env)
        env["AGENTE_TEST_PASS_FDS"] = ",".join(str(s.fileno()) for s in self.passed)
        env["AGENTE_TEST_SELF_PID"] = ",".join(self.self_pid_vars)
        return subprocess.Popen([sys.executable, "-c", WRAPPER, self.binary, "-c", self.conf] + self.args,
                                stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                pass_fds=[s.fileno() for s in self.passed])


def listening_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(128)
    return s


def environ_of(pid):
    with open(f"/proc/{pid}/environ", "rb") as f:
        return dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except ConnectionRefusedError:
        return True


class SystemdTest(ServerTest):
    def notify_server(self, settings=(), **kwargs):
        s = self.server_of(SystemdServer, settings, **kwargs)
        n = NotifySocket(s.dir)
        self.addCleanup(n.close)
        s.env["NOTIFY_SOCKET"] = n.path
        return s, n

    def server_of(self, cls, settings=(), **kwargs):
        s = cls(settings, **kwargs)
        self.addCleanup(s.stop)
        return s


class Notify(SystemdTest):
    def test_ready_reloading_ready_stopping_in_order(self):
        s, n = self.notify_server(["workers = 2", "graceful_timeout = 5"])
        s.start(workers=2)
        ready = n.wait(lambda pid, f: f.get("READY") == "1")
        self.assertTrue(ready, n.all())
        self.assertEqual(ready[1], s.pid)  # from the master itself
        self.assertRegex(ready[2].get("STATUS", ""), r"^2 workers ready, generation 1\b")
        first = s.workers()

        s.signal(signal.SIGHUP)
        self.assertTrue(n.wait_states(["READY", "RELOADING", "READY"]), n.states())
        reloading = n.wait(lambda pid, f: f.get("RELOADING") == "1")
        # MONOTONIC_USEC is CLOCK_MONOTONIC when the reload began (systemd >= 253 checks it).
        self.assertLess(abs(int(reloading[2]["MONOTONIC_USEC"]) / 1e6 - reloading[0]), 2.0)
        ready2 = [m for m in n.all() if m[2].get("READY") == "1"][1]
        self.assertRegex(ready2[2].get("STATUS", ""), r"workers ready, generation 2\b")
        # READY=1 again means the new generation serves: the old one is on its way out.
        self.assertTrue(s.healthy())
        self.assertTrue(wait_until(lambda: not set(first) & set(s.workers()), 10), (first, s.workers()))

        s.signal(signal.SIGTERM)
        self.assertEqual(s.wait_exit(15), 0, s.read_log())
        self.assertEqual(n.states(), ["READY", "RELOADING", "READY", "STOPPING"])
        # STATUS= goes with every state change, and on its own every few seconds.
        statuses = [f["STATUS"] for _, _, f in n.all() if "STATUS" in f]
        self.assertGreaterEqual(len(statuses), 4)
        self.assertTrue(all(pid == s.pid for _, pid, _ in n.all()), n.all())

    def test_ready_only_when_workers_serve(self):
        s, n = self.notify_server(["workers = 3"])
        s.start(wait=False)
        ready = n.wait(lambda pid, f: f.get("READY") == "1", 15)
        self.assertTrue(ready, s.read_log())
        # Once READY=1 is out, a request must succeed at once: no retry loop here.
        self.assertEqual(http_get(s.port, timeout=2)[0], 200)
        self.assertRegex(ready[2]["STATUS"], r"^3 workers ready")

    def test_broken_config_on_hup_is_refused_and_reported(self):
        s, n = self.notify_server(["workers = 2"])
        s.start(workers=2)
        self.assertTrue(n.wait_states(["READY"]))
        before = s.workers()
        with open(s.conf, "a") as f:
            f.write('workers = "many"\n')  # a duplicate key and a wrong type: refused either way
        s.signal(signal.SIGHUP)
        self.assertTrue(n.wait_states(["READY", "RELOADING", "READY"]), n.states())
        refused_ready = [m for m in n.all() if m[2].get("READY") == "1"][1]
        self.assertIn("last error", refused_ready[2].get("STATUS", ""))
        self.assertRegex(refused_ready[2]["STATUS"], r"generation 1\b")
        self.assertTrue(s.wait_log(r"Reload refused"), s.read_log())
        # The running generation is untouched: same pids, still serving, nothing draining.
        time.sleep(0.5)  # give a wrongly started new generation the time to show up
        self.assertEqual(s.workers(), before)
        self.assertTrue(s.healthy())
        for p in before:
            with open(f"/proc/{p}/cmdline") as f:
                self.assertNotIn("draining", f.read())

    def test_watchdog_pings_from_the_master(self):
        s, n = self.notify_server(["workers = 1"], self_pid_vars=["WATCHDOG_PID"],
                                  env={"WATCHDOG_USEC": "1000000"})
        s.start(workers=1)
        t0 = time.monotonic()
        self.assertTrue(wait_until(lambda: sum(1 for m in n.all() if m[2].get("WATCHDOG") == "1"
                                               and m[0] > t0) >= 3, 3), n.all())
        self.assertTrue(all(m[1] == s.pid for m in n.all() if m[2].get("WATCHDOG") == "1"))

    def usr2(self, s, n):
        """USR2, then the new master's pid once it announced itself with MAINPID= and the old one left."""
        old = s.pid
        s.signal(signal.SIGUSR2)
        mainpid = n.wait(lambda pid, f: "MAINPID" in f, 15)
        self.assertTrue(mainpid, s.read_log())
        new = int(mainpid[2]["MAINPID"])
        self.addCleanup(lambda: os.path.exists(f"/proc/{new}") and os.kill(new, signal.SIGQUIT))
        self.assertNotEqual(new, old)
        self.assertEqual(mainpid[1], new)  # sent by the new master itself: the unit needs NotifyAccess=all
        self.assertEqual(s.wait_exit(15), 0, s.read_log())
        return new, mainpid[0]

    def stop_new_master(self, new):
        os.kill(new, signal.SIGTERM)
        self.assertTrue(wait_until(lambda: not os.path.exists(f"/proc/{new}"), 15))

    # The old master, told to retire by its successor, drains with begin_stop(), which sends
    # STOPPING=1. By then systemd's MAINPID is the new master, and STOPPING=1 (NotifyAccess=all) puts
    # the unit in "deactivating": TimeoutStopSec later systemd kills the whole service. See the report.
    def test_usr2_old_master_retires_without_telling_systemd_it_stops(self):
        s, n = self.notify_server(["workers = 1", "graceful_timeout = 5"])
        s.start(workers=1)
        old = s.pid
        new, switched = self.usr2(s, n)
        after = [f for t, pid, f in n.all() if pid == old and t >= switched]
        self.assertFalse([f for f in after if f.get("STOPPING") == "1"],
                         "the retiring old master sent STOPPING=1 after the new master's MAINPID=")
        self.stop_new_master(new)

    # The new master inherits WATCHDOG_PID naming the old master, so sd_watchdog_enabled() is false
    # in it and it never pings: with WatchdogSec= systemd would kill the service after an upgrade.
    def test_usr2_new_master_takes_over_the_watchdog(self):
        s, n = self.notify_server(["workers = 1", "graceful_timeout = 5"], self_pid_vars=["WATCHDOG_PID"],
                                  env={"WATCHDOG_USEC": "1000000"})
        s.start(workers=1)
        new, _ = self.usr2(s, n)
        t0 = time.monotonic()
        # systemd now watches the new MAINPID: without its pings it would kill the service.
        pings = wait_until(lambda: [m for m in n.all() if m[2].get("WATCHDOG") == "1" and m[0] > t0], 3)
        self.assertTrue(pings and all(m[1] == new for m in pings),
                        "no WATCHDOG=1 from the new master after USR2:\n" + s.read_log())
        self.stop_new_master(new)


class SocketActivation(SystemdTest):
    def test_passed_socket_matching_bind_is_served(self):
        passed = listening_socket()
        self.addCleanup(passed.close)
        port = passed.getsockname()[1]
        s = self.server_of(SystemdServer, ["workers = 2"], passed=[passed])
        s.port = port
        s.write_conf(["workers = 2"], port=port)
        # Our copy stays open: had the server tried to bind the port itself, it would have failed
        # with "Address already in use". Serving proves it took the socket it was given.
        s.start(workers=2)
        self.assertTrue(s.wait_log(rf"Listening at: 127\.0\.0\.1:{port} "), s.read_log())
        for w in s.workers():  # sd_listen_fds() consumed the variables: a worker must not see them
            env = environ_of(w)
            self.assertNotIn(b"LISTEN_FDS", env)
            self.assertNotIn(b"LISTEN_PID", env)
        # A reload keeps the socket (same address in bind).
        s.signal(signal.SIGHUP)
        self.assertTrue(s.wait_log(r"generation 2"), s.read_log())
        self.assertTrue(s.healthy())

    def test_passed_socket_without_listen_pid_match_is_ignored(self):
        passed = listening_socket()
        self.addCleanup(passed.close)
        s = self.server_of(SystemdServer, ["workers = 1"], passed=[passed])
        s.self_pid_vars = []  # LISTEN_PID unset...
        s.env["LISTEN_PID"] = "1"  # ...and then naming another process: not for us
        s.start(workers=1)  # binds its own ephemeral port from `bind`
        self.assertTrue(s.wait_log(rf"Listening at: 127\.0\.0\.1:{s.port} "), s.read_log())

    def test_passed_socket_not_named_by_bind_is_closed(self):
        passed = listening_socket()
        self.addCleanup(passed.close)
        port = passed.getsockname()[1]
        s = self.server_of(SystemdServer, ["workers = 1"], passed=[passed])
        s.start(workers=1)  # bind names s.port, another one
        self.assertNotEqual(port, s.port)
        passed.close()  # ours gone too: if the server had kept its copy, the port would still accept
        self.assertTrue(wait_until(lambda: refused(port), 3))
        self.assertTrue(s.healthy())

    def test_passed_socket_is_served_when_bind_is_not_set(self):
        """With socket activation and no `bind` in server.conf, the sockets systemd passes are the
        ones to serve (gunicorn ignores bind altogether then). Today the default bind,
        127.0.0.1:8000, is matched against them: the passed one is closed and 8000 bound instead."""
        passed = listening_socket()
        self.addCleanup(passed.close)
        port = passed.getsockname()[1]
        s = self.server_of(SystemdServer, passed=[passed])
        with open(s.conf, "w") as f:
            f.write("workers = 1\n")
        s.port = port
        s.start(wait=False)
        self.assertTrue(s.wait_log(r"Listening at|Connection in use", 10), s.read_log())
        self.assertTrue(wait_until(s.healthy, 3), s.read_log())


class JournalStream(SystemdTest):
    def journal_server(self, settings, stream=None):
        s = self.server(settings)
        open(s.log_path, "ab").close()
        st = os.stat(s.log_path)
        s.env["JOURNAL_STREAM"] = stream or f"{st.st_dev}:{st.st_ino}"
        return s

    def test_priorities_when_stderr_is_the_journal(self):
        s = self.journal_server(["workers = 2", "timeout = 2"])
        s.start(workers=2)
        hung = s.workers()[0]
        os.kill(hung, signal.SIGSTOP)
        self.assertTrue(s.wait_log(rf"killed for timeout", 8), s.read_log())
        lines = [l for l in s.read_log().splitlines() if l.strip()]
        bad = [l for l in lines if not re.match(r"<[0-7]>\[\d+\] \[[A-Z]+\] ", l)]
        self.assertEqual(bad, [], "lines without a priority prefix")
        self.assertTrue(any(re.match(r"<6>\[\d+\] \[INFO\] Listening at: ", l) for l in lines), lines)
        self.assertIn(f"<2>[{s.pid}] [CRITICAL] WORKER TIMEOUT (pid:{hung})", lines)
        self.assertTrue(any(re.match(rf"<3>\[{s.pid}\] \[ERROR\] Worker \(pid:{hung}\) killed for timeout", l)
                            for l in lines), lines)
        # The journal stamps its own time: no gunicorn timestamp in these lines.
        self.assertFalse(any(re.search(r"\[\d{4}-\d\d-\d\d ", l) for l in lines))

    def test_workers_prefix_too(self):
        s = self.journal_server(["workers = 1"])
        s.start(workers=1)
        worker = s.workers()[0]
        os.kill(worker, signal.SIGUSR1)  # a worker logs "Handling signal: usr1" itself
        self.assertTrue(s.wait_log(rf"(?m)^<6>\[{worker}\] \[INFO\] Handling signal: usr1"), s.read_log())

    def test_no_prefix_when_journal_stream_names_another_file(self):
        s = self.journal_server(["workers = 1"], stream="1:1")
        s.start(workers=1)
        lines = [l for l in s.read_log().splitlines() if l.strip()]
        self.assertTrue(lines)
        self.assertTrue(all(re.match(r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[\d+\] \[[A-Z]+\] ", l)
                            for l in lines), lines)


if __name__ == "__main__":
    unittest.main()
