"""Several machines on one: network namespaces (`ip netns`) joined by a bridge, each a host with its
own address and loopback, for tests of agente-hibrido run as a cluster (test_cluster_netns.py).

    10.213.0.2   lb     the balancer (HAProxy, health checks); the test's clients run here
    10.213.0.5   db     PostgreSQL, the fake LLM upstream
    10.213.0.11  app1   agente-hibrido, 2 workers          (app2 .12, app3 .13)

The bridge lives in a namespace of its own: nothing is added to the machine's own network, and names
carry the test process's pid, so two runs never meet. Everything is torn down by the test's cleanup
(processes first, then the namespaces). Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN); a test skips
without it. Every wait is on readiness, bounded."""
import concurrent.futures
import ctypes
import os
import signal
import subprocess

from harness import children, recv_until, wait_until

SUBNET = "10.213.0"
CLONE_NEWNET = 0x40000000
SETUP_TIMEOUT = 30


def can_use_netns():
    """Why namespaces cannot be used here, or None."""
    if os.geteuid() != 0:
        return "needs root for ip netns"
    probe = f"agprobe{os.getpid()}"
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if r.returncode != 0:
        return "ip netns add failed: " + r.stderr.strip()
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=SETUP_TIMEOUT, check=check)


class Network:
    """The bridge and the hosts; `host(name)` is the namespace's name for `ip netns exec`."""

    def __init__(self, hosts):
        tag = str(os.getpid())
        self.switch = f"ag{tag}-sw"
        self.names = {h: f"ag{tag}-{h}" for h in hosts}
        self.addresses = dict(hosts)
        self.executors = {}
        ip("netns", "add", self.switch)
        ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        ip("-n", self.switch, "link", "set", "br0", "up")
        for i, (h, address) in enumerate(hosts.items()):
            ns = self.names[h]
            ip("netns", "add", ns)
            ip("-n", ns, "link", "set", "lo", "up")
            # One veth pair, created straight in the two namespaces (never in the machine's own).
            ip("link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", f"p{i}", "netns", self.switch)
            ip("-n", self.switch, "link", "set", f"p{i}", "master", "br0", "up")
            ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")

    def host(self, name):
        return self.names[name]

    def address(self, name):
        return self.addresses[name]

    def exec_argv(self, name, argv):
        return ["ip", "netns", "exec", self.names[name], *argv]

    def executor(self, name, threads=32):
        """Threads whose sockets are `name`'s: the test's clients on that host."""
        if name not in self.executors:
            path = f"/var/run/netns/{self.names[name]}"

            def enter():
                fd = os.open(path, os.O_RDONLY)
                try:
                    if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), "setns " + path)
                finally:
                    os.close(fd)
            self.executors[name] = concurrent.futures.ThreadPoolExecutor(threads, initializer=enter)
        return self.executors[name]

    def on(self, name, fn, *args, **kwargs):
        """fn(*args, **kwargs) run on host `name`; its result."""
        return self.executor(name).submit(fn, *args, **kwargs).result()

    def teardown(self):
        for e in self.executors.values():
            e.shutdown(wait=True, cancel_futures=True)
        for ns in list(self.names.values()) + [self.switch]:
            # Whatever still runs in it (a test that failed half-way) goes first.
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except OSError:
                    pass
            ip("netns", "del", ns, check=False)


def kill_host_processes(master_pid):
    """SIGKILL a host's agente-hibrido: its master and every worker, as a machine that dies."""
    pids = [master_pid] + children(master_pid)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return pids


def haproxy_conf(servers, port, stats_socket, check_interval_ms=500):
    """HAProxy in front of `servers` [(name, address:port)]: round robin, /health checked every
    check_interval_ms (down after 2 failures, up after 1 success), a refused connection retried on
    another server (redispatch): only requests a server had taken are lost with it."""
    lines = [
        "global", "    maxconn 2000", f"    stats socket {stats_socket} level admin",
        "defaults", "    mode http", "    timeout connect 1s", "    timeout client 30s", "    timeout server 30s",
        "    retries 3", "    option redispatch", "    option http-server-close",
        "frontend agente", f"    bind 127.0.0.1:{port}", "    default_backend app",
        "backend app", "    balance roundrobin", "    option httpchk GET /health", "    http-check expect status 200",
        f"    default-server inter {check_interval_ms}ms fall 2 rise 1",
    ]
    lines += [f"    server {name} {address} check" for name, address in servers]
    return "\n".join(lines) + "\n"


def haproxy_states(stats_socket):
    """{server name: status} from HAProxy's stats socket ("UP", "DOWN", ...)."""
    import socket
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(stats_socket)
        s.sendall(b"show stat\n")
        data = recv_until(s, None)
    lines = data.decode().splitlines()
    header = lines[0].lstrip("# ").split(",")
    out = {}
    for line in lines[1:]:
        row = dict(zip(header, line.split(",")))
        if row.get("pxname") == "app" and row.get("svname") not in ("FRONTEND", "BACKEND"):
            out[row["svname"]] = row["status"]
    return out


def wait_states(stats_socket, want, timeout=SETUP_TIMEOUT):
    def ok():
        try:
            states = haproxy_states(stats_socket)
        except OSError:
            return False
        return all(states.get(k, "").startswith(v) for k, v in want.items()) and states
    return wait_until(ok, timeout, 0.05)


def start_balancer(test, net, directory, servers, port):
    """HAProxy on host "lb" (haproxy_conf) in front of `servers` [(name, address:port)], killed by
    `test`'s cleanup; its stats socket, once HAProxy sees every server up."""
    stats = os.path.join(directory, "haproxy.sock")
    conf = os.path.join(directory, "haproxy.cfg")
    with open(conf, "w") as f:
        f.write(haproxy_conf(servers, port, stats))
    log = open(os.path.join(directory, "haproxy.log"), "wb")
    test.addCleanup(log.close)
    balancer = subprocess.Popen(net.exec_argv("lb", ["haproxy", "-db", "-f", conf]), stdout=log,
                                stderr=subprocess.STDOUT)
    test.addCleanup(balancer.wait)
    test.addCleanup(balancer.kill)
    test.assertTrue(wait_states(stats, {name: "UP" for name, _ in servers}), "HAProxy never saw every host up")
    return stats


class Redis:
    """redis-server on host `host` of `net`, `address`:`port`, in `directory`, saving nothing (a restart
    starts empty, as a Redis that lost its memory); stopped and started again by the fault tests, and
    killed by `cleanup` (addClassCleanup or addCleanup)."""

    def __init__(self, net, host, address, port, directory, cleanup):
        self.net, self.host, self.address, self.port, self.dir = net, host, address, port, directory
        self.proc = None
        cleanup(self.stop)

    def start(self):
        with open(os.path.join(self.dir, "redis.log"), "ab") as log:
            self.proc = subprocess.Popen(self.net.exec_argv(self.host, [
                "redis-server", "--bind", self.address, "--port", str(self.port), "--protected-mode", "no",
                "--dir", self.dir, "--save", "", "--appendonly", "no"]), stdout=log, stderr=subprocess.STDOUT)
        if not wait_until(lambda: self.cli("PING") == "PONG", SETUP_TIMEOUT):
            raise AssertionError("redis-server never answered")
        return self

    def stop(self):
        """SIGTERM, as systemctl stop: clients see their connections closed."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(SETUP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cli(self, *args):
        """redis-cli's answer as text, from host "lb" ("" when Redis does not answer)."""
        r = subprocess.run(self.net.exec_argv("lb", ["redis-cli", "-h", self.address, "-p", str(self.port), *args]),
                           capture_output=True, text=True, timeout=10)
        return r.stdout.strip() if r.returncode == 0 else ""
