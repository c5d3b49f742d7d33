"""The breakers and the stream limit shared through Redis ([cluster] redis_url): two servers, as two
machines, on loopback and one real redis-server started for the test (its own port and directory,
stopped and started again by the test). The stream limit holds over both; a breaker opened on one is
open on the other within a second; Redis stopped or hung, both fall back to their share and say so in
/metrics and /system/streaming-health; Redis back, they recover by themselves; a machine killed
leaves no stream lease behind past the lease."""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

from harness import ServerTest, free_port, http_get, scaled, wait_until
from test_gateway import ADMIN_TOKEN, CHAT, FakeUpstream, SseClient, gateway_conf, gateway_env, health, post

READY_TIMEOUT = 10
# How many fresh requests must agree before a machine's state is taken as every worker's: each
# worker has its own Redis connection, and a request lands on any of them.
AGREEING = 8
STREAM = {"model": "m", "stream": True, "fake_chunks": 1000, "fake_interval_ms": 100}
STREAMS_KEY = "agente-hibrido:streams"


class RedisServer:
    """redis-server on 127.0.0.1 and an ephemeral port, in its own directory, saving nothing."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="agente-redis-")
        self.port = free_port()
        self.proc = None
        self.start()

    def start(self):
        log = open(os.path.join(self.dir, "redis.log"), "ab")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir, "--save", "",
             "--appendonly", "no", "--daemonize", "no"], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        if not wait_until(lambda: self.cli("PING") == "PONG", scaled(READY_TIMEOUT)):
            raise AssertionError("redis-server never answered PING")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(scaled(READY_TIMEOUT))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cli(self, *args):
        """redis-cli's answer as text ("" when Redis does not answer)."""
        r = subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True, timeout=5)
        return r.stdout.strip() if r.returncode == 0 else ""

    def clients(self):
        for line in self.cli("INFO", "clients").splitlines():
            if line.startswith("connected_clients:"):
                return int(line.split(":")[1]) - 1   # less redis-cli itself
        return 0

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def maps_hiredis(pid):
    with open(f"/proc/{pid}/maps") as f:
        return "libhiredis.so" in f.read()


def metric(port, name):
    for line in http_get(port, "/metrics")[2].decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def workers_down(server, n):
    """`n` workers of `server` cannot reach Redis (the whole server's figure, from any worker)."""
    return metric(server.port, 'agente_cluster_workers{redis="down"}') == n


def every_worker(port, predicate):
    """`predicate(health)` holds for AGREEING fresh requests in a row."""
    return all(predicate(health(port)) for _ in range(AGREEING))


class RedisClusterTest(ServerTest):
    WORKERS = 2

    @classmethod
    def setUpClass(cls):
        cls.redis = RedisServer()
        cls.addClassCleanup(cls.redis.cleanup)

    def setUp(self):
        if self.redis.proc.poll() is not None:
            self.redis.start()
        self.redis.cli("FLUSHALL")
        self.fake = FakeUpstream()
        self.addCleanup(self.fake.stop)

    def start_pair(self, gateway=(), cluster=(), upstream_model="ok"):
        """Two servers sharing the Redis, once every worker of both is connected to it; model "m" is
        the fake upstream's `upstream_model` through provider "main"."""
        lines = gateway_conf(self.fake.url, self.WORKERS, gateway, {"main": []}, {"m": [("main", upstream_model)]})
        lines += ["", "[cluster]", f'redis_url = "redis://127.0.0.1:{self.redis.port}/0"', *cluster]
        servers = []
        for _ in range(2):
            s = self.server(lines, env=gateway_env())
            s.start(workers=self.WORKERS)
            self.addCleanup(self.assert_no_worker_crashed, s)
            servers.append(s)
        self.assertTrue(wait_until(lambda: self.redis.clients() >= 2 * self.WORKERS, scaled(READY_TIMEOUT)),
                        self.redis.cli("CLIENT", "LIST"))
        # Up, and each machine counts both (its share, should Redis go, is of two).
        for s in servers:
            self.assertTrue(wait_until(lambda: every_worker(s.port, lambda h: h["cluster"]["redis"] == "up"
                                                            and h["cluster"]["hosts"] == 2),
                                       scaled(READY_TIMEOUT)), health(s.port))
        return servers

    def assert_no_worker_crashed(self, server):
        if os.path.exists(server.log_path):
            self.assertNotRegex(server.read_log(), r"crashed with signal|exited unexpectedly|killed for timeout")

    def hold_stream(self, server):
        c = SseClient(server.port, STREAM)
        self.addCleanup(c.close)
        self.assertEqual(c.status, 200)
        return c

    def leases(self):
        return int(self.redis.cli("ZCARD", STREAMS_KEY) or -1)


class SharedStreamLimit(RedisClusterTest):
    def test_the_stream_limit_holds_across_both_machines(self):
        a, b = self.start_pair(gateway=["max_concurrent_streams = 3"], cluster=["max_concurrent_streams = 3"])
        held = [self.hold_stream(a), self.hold_stream(a), self.hold_stream(b)]
        self.assertEqual(self.leases(), 3)
        for s in (a, b, a, b):
            status, headers, body = post(s.port, CHAT, STREAM)
            self.assertEqual(status, 429, body)
            self.assertEqual(body["error"]["code"], "too_many_streams")
            self.assertEqual(headers["retry-after"], "1")
        # libhiredis is opened by the workers that talk to Redis, never by the master.
        self.assertTrue(all(maps_hiredis(pid) for pid in a.workers()))
        self.assertFalse(maps_hiredis(a.pid))
        h = health(b.port)
        self.assertEqual(h["cluster"]["streams"]["max"], 3)
        self.assertEqual(h["web_worker_streams"]["max"], 3)   # the machine's own cap, under the cluster's
        held[0].close()   # a slot given back on one machine is free on the other
        self.assertTrue(wait_until(lambda: self.leases() == 2, scaled(READY_TIMEOUT)))
        self.hold_stream(b)
        self.assertEqual(self.leases(), 3)

    def test_a_killed_machine_leaves_no_lease_past_the_lease(self):
        a, b = self.start_pair(gateway=["max_concurrent_streams = 3"],
                               cluster=["max_concurrent_streams = 3", "stream_lease = 2"])
        self.hold_stream(a)
        self.hold_stream(a)
        self.hold_stream(b)
        self.assertEqual(post(b.port, CHAT, STREAM)[0], 429)
        for pid in [a.pid, *a.workers()]:
            os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        short = dict(STREAM, fake_chunks=1)
        self.assertEqual(post(b.port, CHAT, short)[0], 429)   # a's leases outlive it, for a lease
        # Renewed by b, lapsed for a: its two leases are gone one lease (2 s) after their last renewal.
        self.assertTrue(wait_until(lambda: post(b.port, CHAT, short)[0] == 200,
                                   scaled(READY_TIMEOUT)), self.redis.cli("ZRANGE", STREAMS_KEY, "0", "-1"))
        self.assertLess(time.monotonic() - killed, scaled(2 + 2 + 1))
        self.assertTrue(wait_until(lambda: self.leases() == 1, scaled(READY_TIMEOUT)))   # b's own, still renewed
        a.proc.wait()


class SharedBreakers(RedisClusterTest):
    def test_a_breaker_opened_on_one_machine_is_open_on_the_other_within_a_second(self):
        a, b = self.start_pair(gateway=["circuit_breaker_threshold = 2", "circuit_breaker_cooldown = 60", "retries = 0"],
                               upstream_model="fail500")
        for _ in range(2):
            self.assertEqual(post(a.port, CHAT, {"model": "m"})[0], 502)
        opened = time.monotonic()
        self.assertTrue(wait_until(lambda: every_worker(b.port, lambda h: h["circuit_breakers"]["main"]["state"] == "open"),
                                   scaled(5), interval=0.02), health(b.port))
        self.assertLess(time.monotonic() - opened, scaled(1.0))
        for _ in range(6):   # b never asks the failing provider
            self.assertEqual(post(b.port, CHAT, {"model": "m"})[0], 503)
        self.assertEqual(len(self.fake.requests()), 2)
        self.assertEqual(health(b.port)["status"], "degraded")
        # An admin's reset on b closes it on a too.
        reset = post(b.port, "/system/circuit-breaker/reset/main", b"", key=ADMIN_TOKEN)
        self.assertEqual(reset[0], 200)
        self.assertTrue(wait_until(lambda: every_worker(a.port, lambda h: h["circuit_breakers"]["main"]["state"] == "closed"),
                                   scaled(5)), (health(a.port), a.read_log()[-3000:], b.read_log()[-3000:]))
        self.assertEqual(post(a.port, CHAT, {"model": "m"})[0], 502)   # asked again
        self.assertEqual(len(self.fake.requests()), 3)


class RedisDown(RedisClusterTest):
    def test_redis_stopped_both_fall_back_and_say_so_then_recover_by_themselves(self):
        a, b = self.start_pair(gateway=["max_concurrent_streams = 3"],
                               cluster=["max_concurrent_streams = 4", "redis_timeout = 0.2"])
        self.hold_stream(a)
        self.assertEqual(metric(a.port, "agente_cluster_redis_up"), 1)
        self.redis.stop()
        for s in (a, b):
            self.assertTrue(wait_until(lambda: workers_down(s, self.WORKERS),
                                       scaled(READY_TIMEOUT)), health(s.port))
            h = health(s.port)
            self.assertEqual(h["status"], "degraded")
            self.assertEqual(h["cluster"]["fallback_share"], 2)   # 4 streams over 2 machines
            self.assertEqual(h["web_worker_streams"]["max"], 2)
            self.assertIn("reason", h["cluster"])
            self.assertEqual(metric(s.port, "agente_cluster_redis_up"), 0)
            self.assertEqual(metric(s.port, "agente_cluster_fallback_share"), 2)
        # Each machine holds its share, no more; the gateway keeps answering.
        self.hold_stream(a)
        self.assertEqual(post(a.port, CHAT, STREAM)[0], 429)
        self.hold_stream(b)
        self.hold_stream(b)
        self.assertEqual(post(b.port, CHAT, STREAM)[0], 429)
        self.assertEqual(post(b.port, CHAT, {"model": "m"})[0], 200)
        for s in (a, b):   # one warning per machine for the whole outage, not one per worker or attempt
            self.assertEqual(len(re.findall(r"unreachable .*falls back", s.read_log())), 1, s.read_log()[-3000:])
        self.redis.start()   # the same port, empty: nothing of before survived
        for s in (a, b):
            self.assertTrue(wait_until(lambda: every_worker(s.port, lambda h: h["cluster"]["redis"] == "up"),
                                       scaled(READY_TIMEOUT)), health(s.port))
            self.assertEqual(health(s.port)["status"], "healthy")
            self.assertEqual(health(s.port)["web_worker_streams"]["max"], 3)
            self.assertEqual(metric(s.port, "agente_cluster_redis_up"), 1)
            self.assertRegex(s.read_log(), "answers again")
        for s in (a, b):
            self.assertEqual(len(re.findall("answers again", s.read_log())), 1)
            # One scrape gives the whole server's figures, whichever worker answers it.
            for _ in range(AGREEING):
                self.assertEqual(metric(s.port, 'agente_cluster_workers{redis="up"}'), self.WORKERS)
                self.assertEqual(metric(s.port, 'agente_cluster_workers{redis="down"}'), 0)
                self.assertEqual(metric(s.port, "agente_cluster_redis_outages_total"), 1)
        # The streams that lived through the outage are leased again (renewal puts them back).
        self.assertTrue(wait_until(lambda: self.leases() == 4, scaled(READY_TIMEOUT)), self.leases())
        self.assertEqual(post(a.port, CHAT, STREAM)[0], 429)

    def test_a_hung_redis_is_redis_down_after_redis_timeout_and_costs_a_stream_no_more(self):
        a, b = self.start_pair(gateway=["max_concurrent_streams = 3"],
                               cluster=["max_concurrent_streams = 4", "redis_timeout = 0.2"])
        os.kill(self.redis.proc.pid, signal.SIGSTOP)   # accepts nothing, answers nothing: a hung Redis
        self.addCleanup(os.kill, self.redis.proc.pid, signal.SIGCONT)
        started = time.monotonic()
        short = dict(STREAM, fake_chunks=1)
        self.assertEqual(post(a.port, CHAT, short)[0], 200)   # a lease asked for, then the share
        self.assertLess(time.monotonic() - started, scaled(2))
        for s in (a, b):
            self.assertTrue(wait_until(lambda: workers_down(s, self.WORKERS),
                                       scaled(READY_TIMEOUT)), health(s.port))
            self.assertRegex(health(s.port)["cluster"]["reason"], "within 200 ms")
        os.kill(self.redis.proc.pid, signal.SIGCONT)
        for s in (a, b):
            self.assertTrue(wait_until(lambda: every_worker(s.port, lambda h: h["cluster"]["redis"] == "up"),
                                       scaled(READY_TIMEOUT)), health(s.port))

    def test_a_machine_started_while_redis_is_down_serves_and_joins_when_it_is_up(self):
        self.redis.stop()
        lines = gateway_conf(self.fake.url, self.WORKERS, ["max_concurrent_streams = 3"], {"main": []},
                             {"m": [("main", "ok")]})
        lines += ["", "[cluster]", f'redis_url = "redis://127.0.0.1:{self.redis.port}/0"', "max_concurrent_streams = 2"]
        s = self.server(lines, env=gateway_env())
        s.start(workers=self.WORKERS)
        self.assertTrue(wait_until(lambda: workers_down(s, self.WORKERS),
                                   scaled(READY_TIMEOUT)), health(s.port))
        self.assertEqual(health(s.port)["web_worker_streams"]["max"], 2)   # no peers known: at most the cluster's
        self.assertEqual(post(s.port, CHAT, {"model": "m"})[0], 200)
        self.redis.start()
        self.assertTrue(wait_until(lambda: every_worker(s.port, lambda h: h["cluster"]["redis"] == "up"),
                                   scaled(READY_TIMEOUT)), health(s.port))
        self.assertEqual(health(s.port)["cluster"]["hosts"], 1)


if __name__ == "__main__":
    import unittest
    unittest.main()
