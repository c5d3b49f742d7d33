"""Request framing through the real binary (RFC 9112 sections 2.2, 3.2, 5.2, 6.1-6.3).

A head whose body a proxy in front could frame otherwise than we do (Transfer-Encoding not ending in
chunked, with a Content-Length, in HTTP/1.0, chunked twice; several lengths; a folded line) is refused
and the connection closed, so that a request hidden in its body is never answered. HTTP/1.1 needs
one valid Host. An absolute-form target and empty lines before a request are served. A burst of bad
requests logs a bounded number of warnings. Each of these was wrong before (see
docs/architecture.md, "Request framing")."""
import json
import re
import socket
import time

from harness import TEST_BIN, ServerTest, wait_until

# What a smuggler hides behind the request a proxy sees: answered, it would show "smuggled".
HIDDEN = b"GET /items/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
CLOSE_DEADLINE = 10.0  # the server closes at once after a refusal; this only bounds a broken server


def exchange(port, pieces, pause=0.0):
    """Sends each piece (with `pause` between), then reads until the server closes. Returns (bytes,
    whether the server closed): a connection left open is reported, not waited on forever."""
    with socket.create_connection(("127.0.0.1", port), timeout=CLOSE_DEADLINE) as s:
        for i, piece in enumerate(pieces):
            if i and pause:
                time.sleep(pause)
            s.sendall(piece)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except socket.timeout:
            return out, False
        except ConnectionResetError:
            pass
        return out, True


def statuses(data):
    return [int(m) for m in re.findall(rb"HTTP/1\.[01] (\d{3}) ", data)]


class Refused(ServerTest):
    # name: (the request with HIDDEN behind it, the status it gets)
    SMUGGLING = {
        "unknown coding with a length": (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n"
                                         b"Content-Length: 0\r\n\r\n", 400),
        "identity with a length": (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n"
                                   b"Content-Length: 0\r\n\r\n", 400),
        "chunked then identity with a length": (b"POST /echo HTTP/1.1\r\nHost: x\r\n"
                                                b"Transfer-Encoding: chunked, identity\r\nContent-Length: 0\r\n\r\n", 400),
        "unknown coding without a length": (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n", 400),
        "identity without a length": (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n", 400),
        "chunked twice": (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400),
        "chunked in HTTP/1.0 keep-alive": (b"POST /echo HTTP/1.0\r\nConnection: keep-alive\r\n"
                                           b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        "another coding before chunked": (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                                          b"5\r\nhello\r\n0\r\n\r\n", 501),
        "two equal lengths": (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n", 400),
        "a list of equal lengths": (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0, 0\r\n\r\n", 400),
        # Read as one field "X-A: a Transfer-Encoding: chunked" by Beast, as two by a proxy that does
        # not fold: each frames the rest its own way.
        "a folded field line": (b"POST /echo HTTP/1.1\r\nHost: x\r\nX-A: a\r\n Transfer-Encoding: chunked\r\n\r\n", 400),
        "a folded line after an empty value": (b"GET /health HTTP/1.1\r\nHost: x\r\nX-A:\r\n\tb\r\n\r\n", 400),
        "no Host in HTTP/1.1": (b"GET /health HTTP/1.1\r\n\r\n", 400),
        "two Hosts": (b"GET /health HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400),
        "a Host with a blank": (b"GET /health HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
        "a Host with userinfo": (b"GET /health HTTP/1.1\r\nHost: user@x\r\n\r\n", 400),
        "a Host with a broken IPv6 literal": (b"GET /health HTTP/1.1\r\nHost: [::1\r\n\r\n", 400),
        "an absolute target that is not http": (b"GET ftp://x/health HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        "an asterisk without OPTIONS": (b"GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    }

    def test_each_ambiguous_head_is_refused_closed_and_what_it_hides_never_answered(self):
        s = self.server(binary=TEST_BIN).start()
        for name, (head, status) in self.SMUGGLING.items():
            with self.subTest(name):
                out, closed = exchange(s.port, [head + HIDDEN])
                self.assertEqual(statuses(out), [status], out[:300])
                self.assertTrue(closed, "the connection was left open")
                self.assertIn(b"Connection: close", out)
                self.assertIn(b'{"error":', out)
                self.assertNotIn(b"smuggled", out)
        self.assertTrue(s.healthy())

    def test_a_refusal_that_arrives_before_the_hidden_request_still_closes(self):
        # The hidden request comes later, in a packet of its own, as a proxy would forward it.
        s = self.server(binary=TEST_BIN).start()
        out, closed = exchange(s.port, [b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n",
                                        HIDDEN], pause=0.2)
        self.assertEqual(statuses(out), [400], out)
        self.assertTrue(closed)
        self.assertNotIn(b"smuggled", out)


class Served(ServerTest):
    def test_an_absolute_form_target_is_routed_on_its_path_and_its_authority_is_the_host(self):
        s = self.server(binary=TEST_BIN).start()
        out, _ = exchange(s.port, [b"GET http://api.example:8080/items/7?x=1 HTTP/1.1\r\nHost: other.example\r\n"
                                   b"Connection: close\r\n\r\n"])
        self.assertEqual(statuses(out), [200], out)
        body = json.loads(out.split(b"\r\n\r\n", 1)[1])
        self.assertEqual(body["id"], "7")
        self.assertEqual(body["query"], "x=1")
        self.assertEqual(body["host"], "api.example:8080")  # RFC 9112 section 3.2.2
        out, _ = exchange(s.port, [b"GET HTTP://api.example/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"])
        self.assertEqual(statuses(out), [200], out)

    def test_empty_lines_before_a_request_are_ignored(self):
        # RFC 9112 section 2.2: a client may send CRLF after a POST's body; or before its request.
        s = self.server(binary=TEST_BIN).start()
        out, _ = exchange(s.port, [b"\r\nGET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"])
        self.assertEqual(statuses(out), [200], out)
        out, _ = exchange(s.port, [b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\r\n",
                                   b"\r\nGET /items/after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"], pause=0.2)
        self.assertEqual(statuses(out), [200, 200], out)
        self.assertIn(b'"id":"after"', out)

    def test_only_the_request_lines_worth_of_empty_lines_is_ignored(self):
        s = self.server(["limit_request_line = 100"], binary=TEST_BIN).start()
        out, closed = exchange(s.port, [b"\r\n" * 51 + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"])
        self.assertEqual(statuses(out), [400], out)
        self.assertTrue(closed)

    def test_http10_needs_no_host_and_chunked_http11_with_one_host_is_served(self):
        s = self.server(binary=TEST_BIN).start()
        out, _ = exchange(s.port, [b"GET /health HTTP/1.0\r\n\r\n"])
        self.assertEqual(statuses(out), [200], out)
        out, _ = exchange(s.port, [b"POST /echo HTTP/1.1\r\nHost: [::1]:8000\r\nTransfer-Encoding: chunked\r\n\r\n"
                                   b"5\r\nhello\r\n0\r\n\r\nGET /items/next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"])
        self.assertEqual(statuses(out), [200, 200], out)
        self.assertIn(b"hello", out)


class Logging(ServerTest):
    BAD = b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"

    def burst(self, port, n):
        for _ in range(n):
            out, _ = exchange(port, [self.BAD])
            self.assertEqual(statuses(out), [400], out)

    def test_a_burst_of_bad_requests_logs_a_bounded_number_of_warnings(self):
        # It logged a warning each: 178,000 lines in 25 s of fuzzing.
        s = self.server(["workers = 2"]).start(workers=2)
        t0 = time.monotonic()
        self.burst(s.port, 300)
        elapsed = time.monotonic() - t0
        self.assertTrue(s.wait_log(r"\[WARNING\] Invalid request from 127\.0\.0\.1: .* \(400\)"))
        lines = re.findall(r"Invalid request", s.read_log())
        # One per worker and 10 s, plus the first of each worker.
        self.assertLessEqual(len(lines), 2 * (2 + int(elapsed / 10)), s.read_log()[-2000:])

    def test_at_debug_level_each_bad_request_is_logged(self):
        s = self.server(["workers = 1", 'loglevel = "debug"']).start(workers=1)
        self.burst(s.port, 20)
        self.assertTrue(wait_until(lambda: len(re.findall(r"Invalid request", s.read_log())) == 20, 10),
                        s.read_log()[-2000:])
