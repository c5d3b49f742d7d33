"""The seed's scale-out (issue 21): three hosts, each agente-hibrido with 2 workers and [gateway]
max_concurrent_streams = 10, sharing one Redis on a fourth host with [cluster]
max_concurrent_streams = 30, HAProxy in front, all in network namespaces (netns.py). Streams opened
through the balancer stop at 30 over the cluster; a host SIGKILLed holding 10 leaves no lease past
[cluster] stream_lease; restarted, it takes its 10 again."""
import sys
import time
import unittest

from harness import wait_until
from netns import Redis, kill_host_processes, start_balancer, wait_states
from test_cluster_netns import (APP_PORT, APPS, BALANCER_PORT, FAKE_PORT, HOSTS, HostServer, open_network, running,
                                start_fake_upstream)
from test_gateway import SseClient, gateway_conf, gateway_env

REDIS_PORT = 6379
PER_HOST = 10
CLUSTER = 30
LEASE_S = 2
SETUP_TIMEOUT = 30
STREAM = {"model": "m", "stream": True, "fake_chunks": 1000, "fake_interval_ms": 100}


class RedisClusterNetnsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        open_network(cls, "agente-netns-redis-")
        cls.redis = Redis(cls.net, "db", HOSTS["db"], REDIS_PORT, cls.dir, cls.addClassCleanup).start()
        start_fake_upstream(cls)

    @classmethod
    def redis_cli(cls, *args):
        return cls.redis.cli(*args)

    def leases(self):
        return int(self.redis_cli("ZCARD", "agente-hibrido:streams") or -1)

    def setUp(self):
        lines = gateway_conf(f"http://{HOSTS['db']}:{FAKE_PORT}/v1", 2, [f"max_concurrent_streams = {PER_HOST}"],
                             {"main": []}, {"m": [("main", "ok")]})
        lines += ["", "[cluster]", f'redis_url = "redis://{HOSTS["db"]}:{REDIS_PORT}/0"',
                  f"max_concurrent_streams = {CLUSTER}", f"stream_lease = {LEASE_S}"]
        self.apps = {}
        for host in APPS:
            s = HostServer(self.net, host, [f'proc_name = "{host}"'] + lines, gateway_env())
            self.addCleanup(s.stop)
            self.apps[host] = s
            s.start(wait=False)
        for host, s in self.apps.items():
            self.assertTrue(wait_until(s.healthy, SETUP_TIMEOUT), f"{host} never answered /health:\n" + s.read_log())
        # Every worker of the three connected (2 each).
        self.assertTrue(wait_until(lambda: self.redis_cli("CLIENT", "LIST").count("\n") + 1 >= 2 * len(APPS) + 1,
                                   SETUP_TIMEOUT), self.redis_cli("CLIENT", "LIST"))
        self.stats = start_balancer(self, self.net, self.dir, [(h, f"{HOSTS[h]}:{APP_PORT}") for h in APPS],
                                    BALANCER_PORT)

    def open_streams(self, attempts):
        """Tries `attempts` streams through the balancer: the ones it got (held open), the refusals."""
        held, refused = [], 0
        for _ in range(attempts):
            c = self.net.on("lb", SseClient, BALANCER_PORT, STREAM)
            if c.status == 200:
                held.append(c)
                self.addCleanup(c.close)
            else:
                self.assertEqual(c.status, 429, c.head)
                refused += 1
                c.close()
        return held, refused

    def test_thirty_streams_over_three_hosts_and_a_dead_hosts_leases_lapse(self):
        held, refused = self.open_streams(CLUSTER + 6)
        self.assertEqual(len(held), CLUSTER)
        self.assertEqual(refused, 6)
        self.assertEqual(self.leases(), CLUSTER)
        victim = self.apps["app2"]
        pids = kill_host_processes(victim.pid)
        killed = time.monotonic()
        self.assertTrue(wait_until(lambda: not any(running(p) for p in pids), 10))
        victim.proc.wait(5)
        # Its 10 leases lapse within a lease of their last renewal (a third of a lease before).
        self.assertTrue(wait_until(lambda: self.leases() == CLUSTER - PER_HOST, 3 * LEASE_S), self.leases())
        lapsed = time.monotonic() - killed
        self.assertLess(lapsed, LEASE_S + 1)
        self.assertTrue(wait_states(self.stats, {"app2": "DOWN"}, timeout=10))
        # The other two are full on their own caps; app2 restarted takes its 10 again (round robin
        # gives it a third of the attempts: enough of them for 10 and a few refused).
        victim.start(wait=False)
        self.assertTrue(wait_until(victim.healthy, SETUP_TIMEOUT), victim.read_log())
        self.assertTrue(wait_states(self.stats, {"app2": "UP"}, timeout=10))
        more, _ = self.open_streams(3 * PER_HOST + 6)
        self.assertEqual(len(more), PER_HOST)
        self.assertEqual(self.leases(), CLUSTER)
        print(f"\ncluster streams: {CLUSTER} held over 3 hosts, {refused} refused; a killed host's "
              f"{PER_HOST} leases lapsed {lapsed:.2f} s after the kill (stream_lease = {LEASE_S} s)", file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
