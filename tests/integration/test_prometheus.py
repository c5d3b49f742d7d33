"""A real Prometheus (Debian's prometheus package) scraping the real binary every second while it
serves load: its query API shows the request rate, and a worker SIGKILLed mid-load as one crash,
one more start and no drop in the request counter."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse
import urllib.request

from harness import ServerTest, free_port, http_get, wait_until

PROMETHEUS = shutil.which("prometheus")


class Prometheus:
    """On a loopback port, its data in a temp dir, scraping `target` (host:port) every second."""

    def __init__(self, target, token=None):
        self.dir = tempfile.mkdtemp(prefix="agente-prom-")
        self.port = free_port()
        auth = ""
        if token:
            with open(os.path.join(self.dir, "token"), "w") as f:
                f.write(token)
            auth = f"    authorization:\n      credentials_file: {self.dir}/token\n"
        with open(os.path.join(self.dir, "prometheus.yml"), "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: agente\n    scrape_timeout: 1s\n" + auth +
                    f"    static_configs:\n      - targets: ['{target}']\n")
        self.log = open(os.path.join(self.dir, "prometheus.log"), "wb")
        self.proc = subprocess.Popen([PROMETHEUS, f"--config.file={self.dir}/prometheus.yml",
                                      f"--storage.tsdb.path={self.dir}/data",
                                      f"--web.listen-address=127.0.0.1:{self.port}"],
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def ready(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def query(self, expr):
        """The instant vector's values, as floats (empty when there is no series)."""
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=5) as r:
            data = json.load(r)["data"]["result"]
        return [float(x["value"][1]) for x in data]

    def scalar(self, expr):
        values = self.query(expr)
        return values[0] if values else None

    def target_health(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v1/targets", timeout=5) as r:
            targets = json.load(r)["data"]["activeTargets"]
        return [(t["health"], t.get("lastError", "")) for t in targets]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@unittest.skipUnless(PROMETHEUS, "prometheus (Debian's package) is not installed")
class RealPrometheus(ServerTest):
    def test_request_rate_and_a_worker_restart_after_a_sigkill(self):
        s = self.server(["workers = 2", 'metrics_token = "prom-scrape-token"']).start(workers=2)
        prom = Prometheus(f"127.0.0.1:{s.port}", token="prom-scrape-token")
        self.addCleanup(prom.stop)
        self.assertTrue(wait_until(prom.ready, 60), "prometheus never became ready")

        stop = threading.Event()
        errors = []

        def load():   # a steady stream of requests, new connections, so both workers serve
            while not stop.is_set():
                try:
                    http_get(s.port, "/health", timeout=5)
                except OSError as e:
                    errors.append(repr(e))
                time.sleep(0.005)
        loader = threading.Thread(target=load)
        loader.start()
        self.addCleanup(loader.join)
        self.addCleanup(stop.set)

        rate = 'sum(rate(agente_http_requests_total{route="/health",status="2xx"}[5s]))'
        self.assertTrue(wait_until(lambda: (prom.scalar(rate) or 0) > 1, 60),
                        f"no request rate: targets {prom.target_health()}")
        before = prom.scalar('sum(agente_http_requests_total{route="/health"})')

        victim = s.workers()[0]
        os.kill(victim, signal.SIGKILL)
        self.assertTrue(wait_until(lambda: len(s.workers()) == 2 and victim not in s.workers(), 10))
        crashes = 'agente_worker_exits_total{pool="http",reason="crash"}'
        self.assertTrue(wait_until(lambda: prom.scalar(crashes) == 1, 30), f"crash not seen: {prom.query(crashes)}")
        self.assertTrue(wait_until(lambda: prom.scalar('agente_worker_starts_total{pool="http"}') == 3, 30))
        # The dead worker's requests were folded, not lost: Prometheus saw no counter reset.
        self.assertEqual(prom.scalar('sum(resets(agente_http_requests_total{route="/health"}[2m]))'), 0)
        self.assertGreater(prom.scalar('sum(agente_http_requests_total{route="/health"})'), before)
        self.assertTrue(wait_until(lambda: (prom.scalar(rate) or 0) > 1, 30))
        stop.set()
        loader.join()
        self.assertLessEqual(len(errors), 2, errors)   # at most what the killed worker had in hand


if __name__ == "__main__":
    unittest.main()
