"""Serving TLS as gunicorn's certfile/keyfile/ca_certs/cert_reqs/ciphers do, through the real binary:
curl and openssl s_client as clients (TLS 1.2 and 1.3, host names, expired certificates, client
certificates), plain and TLS sockets side by side, a stalled handshake cut by header_timeout, and
certificates re-read on HUP (a broken one refused, the old one served on). Certificates are made
at test time with the openssl CLI (certs.py)."""
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

from certs import Authority
from harness import TEST_BIN, Server, ServerTest, free_port, raw_request, recv_until, status_of, wait_until

# Resumed connections held open at most, waiting for both workers to have taken one (see its test).
MAX_RESUMED = 40


class TlsServer(Server):
    """`bind` holds a plain address (the harness's health checks use it) and a TLS one beside it,
    unless `binds` says otherwise ({port} and {tls_port} are filled in)."""

    def __init__(self, settings=(), binds=("127.0.0.1:{port}", "https://127.0.0.1:{tls_port}"), **kwargs):
        self.tls_port = free_port()
        self.binds = binds
        super().__init__(settings, **kwargs)

    def write_conf(self, settings, port=None):
        binds = [b.format(port=port or self.port, tls_port=self.tls_port) for b in self.binds]
        with open(self.conf, "w") as f:
            f.write(f"bind = {json.dumps(binds)}\n")
            for line in settings:
                f.write(line + "\n")


def client_context(ca, cert=None):
    ctx = ssl.create_default_context(cafile=ca)
    if cert:
        ctx.load_cert_chain(*cert)
    return ctx


def tls_get(port, ca, path="/health", timeout=10):
    """One request on a fresh TLS connection to 127.0.0.1 (verified): (status, body)."""
    c = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=client_context(ca))
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def served_certificate(port):
    """The SHA-256 of the certificate the server presents (no verification: only which one)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            return hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()


def fingerprint(pem_path):
    with open(pem_path) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    return hashlib.sha256(der).hexdigest()


def curl(port, ca, path="/health", host="localhost", cert=None, extra=()):
    """curl over https with `host` resolved to 127.0.0.1: (exit code, body, stderr)."""
    args = ["curl", "-sS", "--max-time", "10", "--cacert", ca, "--resolve", f"{host}:{port}:127.0.0.1", *extra]
    if cert:
        args += ["--cert", cert[0], "--key", cert[1]]
    p = subprocess.run(args + [f"https://{host}:{port}{path}"], capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def s_client(port, ca, *options, request=b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"):
    """openssl s_client with a request on its stdin, kept open until the server closes: its output."""
    p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
                        "-CAfile", ca, "-verify_return_error", "-ign_eof", *options],
                       input=request, capture_output=True, timeout=30)
    return (p.stdout + p.stderr).decode(errors="replace")


class TlsTest(ServerTest):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="agente-tls-it-")
        cls.ca = Authority(cls.dir, "ca")
        rogue = Authority(cls.dir, "rogue")
        cls.good = cls.ca.issue("server", dns=["localhost"], ips=["127.0.0.1"])
        cls.renewed = cls.ca.issue("renewed", dns=["localhost"], ips=["127.0.0.1"])
        cls.expired = cls.ca.issue("expired", dns=["localhost"], ips=["127.0.0.1"], expired=True)
        cls.client = cls.ca.issue("client", client=True)
        cls.expired_client = cls.ca.issue("old-client", client=True, expired=True)
        cls.rogue_client = rogue.issue("rogue-client", client=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, True)

    def tls_server(self, extra=(), cert=None, **kwargs):
        """A server whose certificate and key are copies in its own directory (a test may change them)."""
        s = TlsServer(**kwargs)
        self.addCleanup(s.stop)
        cert = cert or self.good
        s.certfile, s.keyfile = os.path.join(s.dir, "cert.pem"), os.path.join(s.dir, "key.pem")
        shutil.copy(cert[0], s.certfile)
        shutil.copy(cert[1], s.keyfile)
        s.write_conf([f'certfile = "{s.certfile}"', f'keyfile = "{s.keyfile}"', *extra])
        return s

    # ---- serving ---------------------------------------------------------------------------------

    def test_curl_over_https_beside_plain_http(self):
        s = self.tls_server(binary=TEST_BIN, extra=["workers = 2"]).start(workers=2)
        self.assertIn(f"Listening at: https://127.0.0.1:{s.tls_port}", s.read_log())
        rc, body, err = curl(s.tls_port, self.ca.cert, "/items/7")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(body)["scheme"], "https")  # the Request's scheme() over TLS
        # The certificate names the address too.
        rc, body, err = curl(s.tls_port, self.ca.cert, "/items/8", host="127.0.0.1", extra=["--noproxy", "*"])
        self.assertEqual(rc, 0, err)
        # The plain socket beside it still speaks plain HTTP.
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=5)
        c.request("GET", "/items/9")
        self.assertEqual(json.loads(c.getresponse().read())["scheme"], "http")
        c.close()
        # A trusted proxy's X-Forwarded-Proto cannot make a TLS connection plain.
        rc, body, err = curl(s.tls_port, self.ca.cert, "/items/10", extra=["-H", "X-Forwarded-Proto: http"])
        self.assertEqual(json.loads(body)["scheme"], "https")

    def test_tls_1_2_and_1_3_with_openssl_s_client_and_nothing_older(self):
        s = self.tls_server().start()
        for version, name in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
            out = s_client(s.tls_port, self.ca.cert, version, "-brief")
            self.assertIn(f"Protocol version: {name}", out)
            self.assertIn("Verification: OK", out)
            self.assertIn("HTTP/1.1 200 OK", out)
        # A client that offers TLS 1.1 at most (its own security level lowered so that it may) gets the
        # server's protocol_version alert.
        out = s_client(s.tls_port, self.ca.cert, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
        self.assertIn("alert protocol version", out)
        self.assertNotIn("HTTP/1.1 200", out)
        # `ciphers` ranks and limits TLS 1.2's: one suite is all a TLS 1.2 client can get.
        s.stop()
        s = self.tls_server(extra=['ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256"']).start()
        out = s_client(s.tls_port, self.ca.cert, "-tls1_2", "-brief")
        self.assertIn("Ciphersuite: ECDHE-ECDSA-AES128-GCM-SHA256", out)
        out = s_client(s.tls_port, self.ca.cert, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384")
        self.assertIn("alert handshake failure", out)

    def test_a_wrong_host_name_is_refused_by_curls_verification(self):
        s = self.tls_server().start()
        rc, _, err = curl(s.tls_port, self.ca.cert, host="wrong.example")
        self.assertEqual(rc, 60, err)  # CURLE_PEER_FAILED_VERIFICATION
        self.assertIn("wrong.example", err)

    def test_an_expired_certificate_is_served_with_a_warning_and_refused_by_curl(self):
        s = self.tls_server(cert=self.expired).start()
        self.assertIn(f'certfile "{s.certfile}": the certificate expired on Jan  2 00:00:00 2020 GMT', s.read_log())
        rc, _, err = curl(s.tls_port, self.ca.cert)
        self.assertEqual(rc, 60, err)
        self.assertIn("expired", err)

    def test_client_certificates_when_cert_reqs_asks_for_them(self):
        s = self.tls_server(extra=["cert_reqs = 2", f'ca_certs = "{self.ca.cert}"']).start()
        rc, body, err = curl(s.tls_port, self.ca.cert, cert=self.client)
        self.assertEqual(rc, 0, err)
        self.assertIn('"status":"ok"', body)
        for cert in (None, self.rogue_client, self.expired_client):
            rc, _, err = curl(s.tls_port, self.ca.cert, cert=cert)
            self.assertNotEqual(rc, 0, (cert, err))
        out = s_client(s.tls_port, self.ca.cert, "-tls1_3")
        self.assertIn("alert certificate required", out)
        out = s_client(s.tls_port, self.ca.cert, "-tls1_2", "-cert", self.client[0], "-key", self.client[1])
        self.assertIn("HTTP/1.1 200 OK", out)
        self.assertTrue(s.wait_log(r"TLS handshake with 127\.0\.0\.1 failed: peer did not return a certificate"))
        # cert_reqs = 1: no certificate is fine, a bad one is not.
        s.stop()
        s = self.tls_server(extra=["cert_reqs = 1", f'ca_certs = "{self.ca.cert}"']).start()
        self.assertEqual(curl(s.tls_port, self.ca.cert)[0], 0)
        self.assertEqual(curl(s.tls_port, self.ca.cert, cert=self.client)[0], 0)
        self.assertNotEqual(curl(s.tls_port, self.ca.cert, cert=self.rogue_client)[0], 0)

    def test_every_bind_serves_tls_with_certfile_alone_as_in_gunicorn(self):
        s = self.tls_server(binds=("127.0.0.1:{port}", "127.0.0.1:{tls_port}"))
        s.healthy = lambda: curl(s.port, self.ca.cert)[0] == 0
        s.start()
        for port in (s.port, s.tls_port):
            self.assertEqual(tls_get(port, self.ca.cert)[0], 200)

    def test_plain_http_to_the_tls_socket_gets_a_plain_400_and_tls_to_the_plain_one_a_400(self):
        s = self.tls_server().start()
        answer = raw_request(s.tls_port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(status_of(answer), 400, answer)
        self.assertIn(b"use https://", answer)
        with socket.create_connection(("127.0.0.1", s.port), timeout=5) as raw:
            ctx = client_context(self.ca.cert)
            with self.assertRaises((ssl.SSLError, OSError)):
                ctx.wrap_socket(raw, server_hostname="localhost")
        self.assertTrue(s.healthy())

    def test_keep_alive_pipelining_big_bodies_and_streams_over_tls(self):
        s = self.tls_server(binary=TEST_BIN).start()
        ctx = client_context(self.ca.cert)
        with socket.create_connection(("127.0.0.1", s.tls_port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as t:
                t.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /items/2 HTTP/1.1\r\nHost: x\r\n"
                          b"Connection: close\r\n\r\n")
                data = recv_until(t, None)
        self.assertEqual(data.count(b"HTTP/1.1 200 OK"), 2, data)
        c = http.client.HTTPSConnection("127.0.0.1", s.tls_port, timeout=20, context=ctx)
        try:
            body = os.urandom(3 * 1024 * 1024)  # far more than a TLS record and the socket buffers
            c.request("POST", "/echo", body=body, headers={"Host": "localhost"})
            r = c.getresponse()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.read(), body)
            c.request("GET", "/stream?n=3&ms=50", headers={"Host": "localhost"})  # the same connection
            r = c.getresponse()
            self.assertEqual(r.getheader("Transfer-Encoding"), "chunked")
            self.assertEqual(r.read(), b"data: 0\n\ndata: 1\n\ndata: 2\n\ndata: [DONE]\n\n")
        finally:
            c.close()

    def test_a_client_gone_during_a_handler_over_tls_stops_it(self):
        events = os.path.join(tempfile.mkdtemp(prefix="agente-tls-ev-"), "events")
        self.addCleanup(shutil.rmtree, os.path.dirname(events), True)
        s = self.tls_server(binary=TEST_BIN, env={"AGENTE_TEST_EVENTS": events}).start()
        raw = socket.create_connection(("127.0.0.1", s.tls_port), timeout=10)
        t = client_context(self.ca.cert).wrap_socket(raw, server_hostname="localhost")
        t.sendall(b"GET /slow?ms=5000 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.3)
        t.close()

        def stopped():
            if not os.path.exists(events):
                return False
            with open(events) as f:
                return "slow stopped 1" in f.read()  # 1: StopReason::client_gone
        self.assertTrue(wait_until(stopped, 4))

    def test_a_session_resumes_with_whichever_worker_accepts_it(self):
        s = self.tls_server(extra=["workers = 2"]).start(workers=2)
        ctx = client_context(self.ca.cert)

        def connect(session=None):
            raw = socket.create_connection(("127.0.0.1", s.tls_port), timeout=10)
            t = ctx.wrap_socket(raw, server_hostname="localhost", session=session)
            t.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            data = recv_until(t, b"}")   # /health's body is flat JSON: its one "}" ends it
            return t, json.loads(data.split(b"\r\n\r\n", 1)[1])["pid"]
        first, _ = connect()
        session = first.session  # TLS 1.3: the tickets came after the handshake, with the answer
        first.close()
        # Held open, so that both workers take some: which one accepts is the kernel's choice, and
        # on a loaded machine one can take ten in a row, so connect until both have answered.
        held = []
        try:
            while len(held) < MAX_RESUMED and {pid for _, pid in held} != set(s.workers()):
                held.append(connect(session))
            self.assertEqual({pid for _, pid in held}, set(s.workers()))
            self.assertEqual([t.session_reused for t, _ in held], [True] * len(held))
        finally:
            for t, _ in held:
                t.close()

    # ---- slow clients ----------------------------------------------------------------------------

    def test_a_stalled_handshake_is_cut_by_header_timeout(self):
        s = self.tls_server(extra=["header_timeout = 2"]).start()
        hello = ssl_client_hello(self.ca.cert)

        def held_for(first_bytes):
            with socket.create_connection(("127.0.0.1", s.tls_port), timeout=15) as c:
                started = time.monotonic()
                c.sendall(first_bytes)
                try:
                    while c.recv(65536):
                        pass
                except ConnectionResetError:
                    pass
                return time.monotonic() - started
        for first_bytes in (b"", hello[:20]):  # silent; half a ClientHello
            held = held_for(first_bytes)
            self.assertGreater(held, 1.0, first_bytes)
            self.assertLess(held, 6.0, first_bytes)  # header_timeout, checked once a second, on a loaded machine
        # The handshake and the first head share header_timeout from the accept.
        with socket.create_connection(("127.0.0.1", s.tls_port), timeout=15) as raw:
            started = time.monotonic()
            with client_context(self.ca.cert).wrap_socket(raw, server_hostname="localhost") as t:
                t.sendall(b"GET /health HTTP/1.1\r\n")
                try:
                    self.assertEqual(t.recv(65536), b"")
                except (ssl.SSLError, ConnectionResetError):
                    pass
            self.assertLess(time.monotonic() - started, 6.0)
        self.assertTrue(s.wait_log(r"TLS handshake with 127\.0\.0\.1 failed: no handshake within header_timeout"))
        self.assertTrue(s.healthy())

    # ---- start and reload ------------------------------------------------------------------------

    def test_hup_serves_a_renewed_certificate_from_new_workers_only(self):
        s = self.tls_server(extra=["workers = 2"]).start(workers=2)
        old, new = fingerprint(self.good[0]), fingerprint(self.renewed[0])
        self.assertEqual(served_certificate(s.tls_port), old)
        shutil.copy(self.renewed[0], s.certfile)
        shutil.copy(self.renewed[1], s.keyfile)
        # A worker that merely restarts serves what the master checked, not the files as they are now.
        first = s.workers()
        os.kill(first[0], signal.SIGKILL)
        self.assertTrue(wait_until(lambda: len(s.workers()) == 2 and first[0] not in s.workers(), 15))
        self.assertTrue(wait_until(s.healthy, 10))
        self.assertEqual({served_certificate(s.tls_port) for _ in range(6)}, {old})
        before = set(s.workers())
        s.signal(signal.SIGHUP)
        self.assertTrue(s.wait_log(r"Hang up: Master \(generation 2\)"))
        self.assertTrue(wait_until(lambda: len(s.workers()) == 2 and not before & set(s.workers()), 20))
        self.assertEqual({served_certificate(s.tls_port) for _ in range(6)}, {new})

    def test_hup_that_adds_an_https_bind_serves_tls_on_it(self):
        # The master marks which listeners serve TLS at start and on each applied reload (not per
        # worker): a listener a reload adds must reach the new workers marked.
        s = self.tls_server(binds=("127.0.0.1:{port}",))
        s.write_conf([])   # no TLS at start: certfile alone would make the bare address serve it
        s.start()
        s.binds = ("127.0.0.1:{port}", "https://127.0.0.1:{tls_port}")
        s.write_conf([f'certfile = "{s.certfile}"', f'keyfile = "{s.keyfile}"'])
        s.signal(signal.SIGHUP)
        self.assertTrue(s.wait_log(r"Hang up: Master \(generation 2\)"), s.read_log())
        self.assertTrue(s.wait_log(r"workers serving \(generation 2\)"))
        rc, body, err = curl(s.tls_port, self.ca.cert)
        self.assertEqual(rc, 0, err)
        self.assertIn('"status":"ok"', body)
        self.assertTrue(s.healthy())   # the bare address stays plain beside an https:// one

    def test_hup_with_a_broken_key_is_refused_and_the_old_certificate_served(self):
        s = self.tls_server(extra=["workers = 2"]).start(workers=2)
        old = fingerprint(self.good[0])
        workers = s.workers()
        with open(s.keyfile, "w") as f:
            f.write("-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n")
        s.signal(signal.SIGHUP)
        self.assertTrue(s.wait_log(r'Reload refused, still serving with the previous configuration: keyfile "'
                                   + s.keyfile.replace(".", r"\.") + r'": cannot read its private key'))
        # A key of another certificate: refused as well.
        shutil.copy(self.renewed[1], s.keyfile)
        s.signal(signal.SIGHUP)
        self.assertTrue(s.wait_log(r'keyfile "[^"]+": does not match the certificate of certfile'))
        self.assertEqual(s.workers(), workers)
        self.assertEqual({served_certificate(s.tls_port) for _ in range(4)}, {old})
        rc, _, err = curl(s.tls_port, self.ca.cert)
        self.assertEqual(rc, 0, err)

    def test_a_broken_certificate_stops_the_start_and_check_config_with_its_path(self):
        s = self.tls_server()
        with open(s.certfile, "w") as f:
            f.write("not a certificate\n")
        check = subprocess.run([s.binary, "-c", s.conf, "--check-config"], capture_output=True, text=True, timeout=30)
        self.assertEqual(check.returncode, 1)
        self.assertIn(f'Error: certfile "{s.certfile}": no PEM certificate in it', check.stderr)
        s.start(wait=False)
        self.assertEqual(s.wait_exit(), 1)
        self.assertIn(f'TLS unusable: certfile "{s.certfile}": no PEM certificate in it', s.read_log())


def ssl_client_hello(ca):
    """The first bytes a TLS client sends (its ClientHello), taken from a memory BIO."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_context(ca).wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


if __name__ == "__main__":
    import unittest
    unittest.main()
