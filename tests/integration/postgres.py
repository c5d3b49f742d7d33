"""A throwaway PostgreSQL server for tests, as harness.Server is for agente-hibrido: initdb into a
temporary directory, a loopback port and a Unix socket in that directory, password authentication
over TCP (so the URL carries a secret, as in production), torn down by the test's cleanup.

PostgreSQL refuses to run as root: as root, the server runs as the unprivileged `postgres` user
(Debian's postgresql package creates it), which then owns the directory. Every wait is on readiness
(pg_ctl -w, a query answering), bounded."""
import glob
import os
import pwd
import shutil
import subprocess
import tempfile

from harness import free_port, wait_until

USER = "agente"
PASSWORD = "s3cr%t"                      # percent-encoded in URLs
PASSWORD_IN_URL = "s3cr%25t"
START_TIMEOUT = 60                        # a loaded machine's initdb and first start


def bindir():
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, timeout=10).stdout.strip()
        if out and os.path.exists(os.path.join(out, "initdb")):
            return out
    except OSError:
        pass
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("no PostgreSQL server binaries (Debian: apt-get install postgresql-15)")
    return os.path.dirname(found[-1])


class Postgres:
    """`netns`: run in that network namespace (tests/integration/netns.py), listening on `host`."""

    def __init__(self, netns=None, host="127.0.0.1", port=None, clients=None):
        self.netns = netns
        self.clients = clients   # a network (10.213.0.0/24) whose hosts may log in with the password
        self.host = host
        self.bin = bindir()
        self.dir = tempfile.mkdtemp(prefix="agente-pg-")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "postgres.log")
        self.port = port or free_port()
        self.account = None
        if os.geteuid() == 0:
            self.account = pwd.getpwnam("postgres")
            os.chown(self.dir, self.account.pw_uid, self.account.pw_gid)
        os.chmod(self.dir, 0o755)   # the Unix socket is reached by root's clients too

    def run(self, *argv, check=True, timeout=START_TIMEOUT, input=None):
        kwargs = {}
        if self.netns:   # entering a namespace needs root: the switch of user comes after it
            argv = ("ip", "netns", "exec", self.netns) + (("runuser", "-u", "postgres", "--") if self.account else ()) + argv
        elif self.account:
            kwargs = {"user": self.account.pw_uid, "group": self.account.pw_gid, "extra_groups": []}
        env = dict(os.environ, PGPASSWORD=PASSWORD, LC_ALL="C.UTF-8")
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=check, env=env,
                              cwd=self.dir, input=input, **kwargs)

    def tool(self, name):
        return os.path.join(self.bin, name)

    def init(self):
        pwfile = os.path.join(self.dir, "pw")
        with open(pwfile, "w") as f:
            f.write(PASSWORD + "\n")
        if self.account:
            os.chown(pwfile, self.account.pw_uid, self.account.pw_gid)
        self.run(self.tool("initdb"), "-D", self.data, "-U", USER, "--pwfile", pwfile, "--auth-local=trust",
                 "--auth-host=scram-sha-256", "-E", "UTF8", "--no-instructions")
        os.remove(pwfile)
        if self.clients:
            with open(os.path.join(self.data, "pg_hba.conf"), "a") as f:
                f.write(f"host all all {self.clients} scram-sha-256\n")
        return self

    def start(self):
        # fsync off: a test's data only has to survive PostgreSQL's own stop and start, not the machine's.
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses={self.host} -c fsync=off "
                   "-c full_page_writes=off -c max_connections=100")
        self.run(self.tool("pg_ctl"), "-D", self.data, "-l", self.log, "-w", "-t", str(START_TIMEOUT),
                 "-o", options, "start")
        return self

    def stop(self, mode="fast"):
        self.run(self.tool("pg_ctl"), "-D", self.data, "-m", mode, "-w", "-t", str(START_TIMEOUT), "stop",
                 check=False)

    def cleanup(self):
        self.stop("immediate")
        shutil.rmtree(self.dir, True)

    def url(self, database="postgres"):
        return f"postgresql://{USER}:{PASSWORD_IN_URL}@{self.host}:{self.port}/{database}"

    def psql(self, sql, database="postgres"):
        """The rows of `sql` as lists of strings (through the Unix socket, trusted)."""
        out = self.run(self.tool("psql"), "-h", self.dir, "-p", str(self.port), "-U", USER, "-d", database,
                       "-X", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql).stdout
        return [line.split("\t") for line in out.splitlines() if line]

    def create_database(self, name):
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def ready(self):
        return self.run(self.tool("pg_isready"), "-h", self.host, "-p", str(self.port), check=False,
                        timeout=10).returncode == 0

    def read_log(self):
        try:
            with open(self.log) as f:
                return f.read()
        except OSError:
            return ""


def start_postgres(add_cleanup, **kwargs):
    """A started server, torn down by `add_cleanup` (a test's addCleanup, a class's addClassCleanup)."""
    pg = Postgres(**kwargs)
    add_cleanup(pg.cleanup)
    pg.init().start()
    assert wait_until(pg.ready, timeout=START_TIMEOUT), pg.read_log()
    return pg
