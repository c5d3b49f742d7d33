"""The server core through the real binary: serving, HTTP/1.1 details, bad input, stop signals."""
import json
import os
import signal
import socket
import subprocess
import threading
import time

from harness import (BIN, TEST_BIN, ServerTest, cmdline, concurrent_gets, free_port, http_get, raw_request,
                     recv_until, slow_reader_exchanges, status_of, wait_until)


class Serving(ServerTest):
    def test_two_workers_titled_and_both_take_connections(self):
        s = self.server(["workers = 2", 'proc_name = "it"']).start(workers=2)
        self.assertIn("agente-hibrido: master [it]", cmdline(s.pid))
        for w in s.workers():
            self.assertIn("agente-hibrido: worker [it]", cmdline(w))
        status, headers, body = http_get(s.port)
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["status"], "ok")
        self.assertEqual(headers["content-type"], "application/json")
        seen = set()
        # Parallel fresh connections: both workers accept from the one shared socket.
        def hit():
            for _ in range(40):
                seen.add(json.loads(http_get(s.port)[2])["pid"])
        threads = [threading.Thread(target=hit) for _ in range(8)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        self.assertEqual(seen, set(s.workers()))

    def test_a_burst_of_keepalive_connections_is_shared_by_the_workers(self):
        # Every worker is woken for the shared socket; the first awake used to take nearly all.
        s = self.server(["workers = 2"]).start(workers=2)
        conns = [socket.create_connection(("127.0.0.1", s.port), timeout=5) for _ in range(40)]
        try:
            pids = []
            for c in conns:
                c.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            for c in conns:
                data = b""
                while not data.endswith(b"}"):
                    data += c.recv(4096)
                pids.append(json.loads(data.split(b"\r\n\r\n", 1)[1])["pid"])
        finally:
            for c in conns:
                c.close()
        counts = sorted(pids.count(p) for p in set(pids))
        self.assertEqual(len(counts), 2, counts)
        # Shared, not split exactly: 14 of 40 was seen on an idle machine; the old behaviour gave the
        # first worker awake all but one or two.
        self.assertGreaterEqual(counts[0], 10, counts)

    def test_keepalive_pipelining_head_and_404(self):
        s = self.server(binary=TEST_BIN).start()
        two = raw_request(s.port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
                                  b"GET /items/42 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertEqual(two.count(b"HTTP/1.1 200"), 2, two)
        self.assertIn(b'"id":"42"', two)
        head = raw_request(s.port, b"HEAD /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertEqual(status_of(head), 200)
        self.assertTrue(head.endswith(b"\r\n\r\n"), head)  # no body after the header
        self.assertIn(b"Content-Length: ", head)
        self.assertEqual(status_of(raw_request(s.port, b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")), 404)
        self.assertEqual(status_of(raw_request(s.port, b"DELETE /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")), 405)
        http10 = raw_request(s.port, b"GET /health HTTP/1.0\r\n\r\n")
        self.assertTrue(http10.startswith(b"HTTP/1.0 200"), http10)

    def test_request_pipelined_behind_an_async_handler_is_not_taken_for_a_disconnect(self):
        s = self.server(binary=TEST_BIN).start()
        with socket.create_connection(("127.0.0.1", s.port), timeout=5) as c:
            c.sendall(b"GET /slow?ms=500 HTTP/1.1\r\nHost: x\r\n\r\n")
            time.sleep(0.2)  # so that the next request arrives while the handler runs, not with it
            c.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            both = b""
            while chunk := c.recv(65536):
                both += chunk
        self.assertEqual(both.count(b"HTTP/1.1 200"), 2, both)
        self.assertIn(b'"slept_ms":500', both)

    def test_chunked_body_and_expect_continue(self):
        s = self.server(binary=TEST_BIN).start()
        chunked = raw_request(s.port, b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                                      b"Connection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        self.assertEqual(status_of(chunked), 200)
        self.assertTrue(chunked.endswith(b"hello world"), chunked)
        with socket.create_connection(("127.0.0.1", s.port), timeout=5) as c:
            c.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n"
                      b"Connection: close\r\n\r\n")
            self.assertTrue(c.recv(100).startswith(b"HTTP/1.1 100 Continue"))
            c.sendall(b"abc")
            rest = b""
            while chunk := c.recv(4096):
                rest += chunk
            self.assertTrue(rest.endswith(b"abc"), rest)

    def test_a_large_body_and_the_request_pipelined_behind_it(self):
        # The body is read into room made for it, which is given back after: what came with the
        # body's last bytes (the next request) must survive that.
        s = self.server(binary=TEST_BIN).start()
        body = bytes(range(256)) * 400  # 100 KiB, more than one read's worth
        both = raw_request(s.port, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
                           + body + b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        first, rest = both.split(b"\r\n\r\n", 1)
        self.assertTrue(first.startswith(b"HTTP/1.1 200"), first)
        self.assertEqual(rest[:len(body)], body)
        self.assertIn(b"HTTP/1.1 200", rest[len(body):])
        self.assertTrue(rest.endswith(b"}"), rest[-200:])

    def test_a_small_body_and_requests_pipelined_behind_it_in_one_send(self):
        # A body that came whole with its head is read from the buffer without a read of its own:
        # no more than the body may be taken, and the next requests, a POST among them, are answered.
        s = self.server(binary=TEST_BIN).start()
        post = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n"
        both = raw_request(s.port, post + b"abc" + post + b"xyz"
                           + b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertEqual(both.count(b"HTTP/1.1 200"), 3, both)
        first, second = both.split(b"HTTP/1.1 200")[1:3]
        self.assertTrue(first.endswith(b"\r\n\r\nabc"), first)
        self.assertTrue(second.endswith(b"\r\n\r\nxyz"), second)

    def test_forwarded_headers_trusted_only_from_allowed_ips(self):
        s = self.server(binary=TEST_BIN).start()
        _, _, body = http_get(s.port, "/items/1", headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"})
        self.assertEqual(json.loads(body)["remote"], "203.0.113.9")
        self.assertEqual(json.loads(body)["scheme"], "https")
        s2 = self.server(['forwarded_allow_ips = "10.1.1.1"'], binary=TEST_BIN).start()
        _, _, body = http_get(s2.port, "/items/1", headers={"X-Forwarded-For": "203.0.113.9"})
        self.assertEqual(json.loads(body)["remote"], "127.0.0.1")

    def test_handler_exception_is_a_500_not_a_dead_worker(self):
        s = self.server(binary=TEST_BIN).start(workers=1)
        before = s.workers()
        self.assertEqual(http_get(s.port, "/throw")[0], 500)
        self.assertEqual(s.workers(), before)

    def test_access_log_in_gunicorns_format(self):
        s = self.server(['accesslog = "-"'])
        s.start()
        http_get(s.port, "/health?x=1", headers={"User-Agent": "it-agent"})
        line = s.wait_log(r'127\.0\.0\.1 - - \[[^\]]+\] "GET /health\?x=1 HTTP/1\.1" 200 \d+ "-" "it-agent"')
        self.assertTrue(line, s.read_log())

    def test_error_log_lines_in_gunicorns_shape(self):
        s = self.server(["workers = 1"]).start()
        self.assertRegex(s.read_log(), r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[\d+\] \[INFO\] Booting worker with pid: \d+")


class HandlerInterface(ServerTest):
    def test_route_deadline_answers_on_time_and_stops_the_handler(self):
        s = self.server(binary=TEST_BIN).start()
        self.assertEqual(http_get(s.port, "/deadline?ms=50")[0], 200)  # well within the deadline
        t0 = time.monotonic()
        out = raw_request(s.port, b"GET /deadline?ms=5000 HTTP/1.1\r\nHost: x\r\n\r\n")
        elapsed = time.monotonic() - t0
        self.assertEqual(status_of(out), 408, out)
        self.assertIn(b"Connection: close", out)
        self.assertLess(elapsed, 0.3 + 0.1 + 0.5)  # deadline 300 ms; the connection then closes

    def test_a_handler_answering_after_its_stop_still_gets_the_stop_answer(self):
        # The handler catches the stop and answers, or ends its stream: awaiting that throws (its
        # coroutine stays cancelled), and the route's stop answer (or the end of the stream) goes out.
        s = self.server(binary=TEST_BIN).start()
        out = raw_request(s.port, b"GET /deadline?ms=5000&late=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(status_of(out), 408, out)
        out = raw_request(s.port, b"GET /deadline?ms=5000&late=2 HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(status_of(out), 200, out)
        self.assertTrue(out.endswith(b"0\r\n\r\n"), out[-60:])   # the chunked body properly ended
        self.assertNotIn(b"data: late", out)

    def test_client_going_away_cancels_the_handler_promptly(self):
        events = os.path.join(self._tmp(), "events")
        s = self.server(binary=TEST_BIN, env={"AGENTE_TEST_EVENTS": events}).start()
        c = socket.create_connection(("127.0.0.1", s.port))
        c.sendall(b"GET /slow?ms=10000 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.2)  # the handler is now waiting on its timer
        t0 = time.monotonic()
        c.close()
        def told_events():
            if not os.path.exists(events):
                return False
            with open(events) as f:
                return "slow stopped 1" in f.read()  # 1: StopReason::client_gone
        told = wait_until(told_events, 2, interval=0.01)
        self.assertTrue(told, "the handler was not told that the client left")
        self.assertLess(time.monotonic() - t0, 0.2)

    def test_nothing_follows_a_chunk_cut_short_when_the_handler_finishes_the_stream(self):
        # The client reads nothing until the handler's 16 MB write has lost its race to a timer and
        # the handler has called finish(): what then arrives must be the start of that one chunk.
        events = os.path.join(self._tmp(), "events")
        s = self.server(binary=TEST_BIN, env={"AGENTE_TEST_EVENTS": events}).start()
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as c:
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            c.sendall(b"GET /stream-race?ms=200 HTTP/1.1\r\nHost: x\r\n\r\n")
            def finished():
                return os.path.exists(events) and "finished" in open(events).read()
            self.assertTrue(wait_until(finished, 5, interval=0.01), "the handler never finished")
            data = b""
            while chunk := c.recv(1 << 20):
                data += chunk
        told = open(events).read()
        self.assertIn("raced 1", told)  # the timer won
        self.assertNotIn("finished Success", told)
        head, _, body = data.partition(b"\r\n\r\n")
        self.assertIn(b"Transfer-Encoding: chunked", head)
        size_line, _, payload = body.partition(b"\r\n")
        self.assertEqual(int(size_line, 16), 16 << 20)
        self.assertLess(len(payload), 16 << 20)
        self.assertEqual(payload.strip(b"x"), b"", "bytes after the cut chunk: %r" % payload.strip(b"x")[:80])

    def test_stream_chunks_arrive_as_written(self):
        s = self.server(binary=TEST_BIN).start()
        with socket.create_connection(("127.0.0.1", s.port), timeout=5) as c:
            c.sendall(b"GET /stream?n=3&ms=300 HTTP/1.1\r\nHost: x\r\n\r\n")
            arrivals, data = [], b""
            while not data.endswith(b"0\r\n\r\n"):
                chunk = c.recv(4096)
                if not chunk:
                    break
                data += chunk
                arrivals.append((time.monotonic(), chunk))
        self.assertIn(b"Transfer-Encoding: chunked", data)
        self.assertIn(b"text/event-stream", data)
        # Every stream says so to caches and to an nginx in front (which would hold chunks back).
        self.assertIn(b"Cache-Control: no-cache\r\n", data)
        self.assertIn(b"X-Accel-Buffering: no\r\n", data)
        self.assertGreaterEqual(len(arrivals), 3)  # not buffered into one write
        self.assertGreater(arrivals[-1][0] - arrivals[0][0], 0.5)
        self.assertIn(b"data: [DONE]", data)
        # The head waits for the first chunk and leaves with it: one send, one wake-up of the client.
        self.assertIn(b"HTTP/1.1 200", arrivals[0][1])
        self.assertIn(b"data: 0", arrivals[0][1])

    def test_stream_to_head_and_http10_requests(self):
        s = self.server(['accesslog = "-"'], binary=TEST_BIN).start()
        with socket.create_connection(("127.0.0.1", s.port), timeout=5) as c:
            # HEAD: GET's head alone, and the connection stays usable.
            c.sendall(b"HEAD /stream?n=2&ms=10 HTTP/1.1\r\nHost: x\r\n\r\n")
            head = recv_until(c, b"\r\n\r\n")
            self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
            c.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertTrue(recv_until(c, b"\r\n\r\n").startswith(b"HTTP/1.1 200"))
        logged = s.wait_log(r'"HEAD /stream\?n=2&ms=10 HTTP/1\.1" 200 (\S+)')
        self.assertTrue(logged, s.read_log())
        self.assertIn(logged.group(1), ("0", "-"))  # no body was sent, so none is logged
        with socket.create_connection(("127.0.0.1", s.port), timeout=5) as c:
            # HTTP/1.0 knows no chunked encoding: bare events, then the server closes.
            c.sendall(b"GET /stream?n=2&ms=10 HTTP/1.0\r\n\r\n")
            data = recv_until(c, None)
        head, _, body = data.partition(b"\r\n\r\n")
        self.assertNotIn(b"chunked", head.lower())
        self.assertEqual(body, b"data: 0\n\ndata: 1\n\ndata: [DONE]\n\n")

    def test_a_stream_may_pause_longer_than_the_write_timeout(self):
        # `timeout` bounds each write; between chunks the handler sets the pace (an LLM may think for
        # minutes). The deadline used to stay armed after a chunk and cut the stream.
        s = self.server(["timeout = 2"], binary=TEST_BIN).start()
        status, _, body = http_get(s.port, "/stream?n=2&ms=4000", timeout=15)
        self.assertEqual(status, 200)
        self.assertIn(b"data: 1", body)
        self.assertIn(b"data: [DONE]", body)

    def test_stream_that_fails_before_its_first_chunk_gets_a_500(self):
        s = self.server(binary=TEST_BIN).start()
        status, _, body = http_get(s.port, "/stream?fail=1")
        self.assertEqual(status, 500, body)
        self.assertIn(b"internal server error", body)

    def test_a_handler_throwing_what_is_no_std_exception_gets_a_500_and_the_worker_lives(self):
        s = self.server(binary=TEST_BIN).start()
        pid = json.loads(http_get(s.port, "/health")[2])["pid"]
        status, _, body = http_get(s.port, "/stream?fail=2")
        self.assertEqual(status, 500, body)
        self.assertIn(b"internal server error", body)
        self.assertEqual(json.loads(http_get(s.port, "/health")[2])["pid"], pid)
        self.assertIn("unknown exception", s.read_log())

    def _tmp(self):
        import tempfile, shutil
        d = tempfile.mkdtemp(prefix="agente-it-ev-")
        self.addCleanup(shutil.rmtree, d, True)
        return d


class BadInput(ServerTest):
    CASES = {
        "garbage": (b"HELLO\r\n\r\n", {400}),
        "bad version": (b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", {505}),
        # Faults Beast reports as a bad version, though the line names none it does not speak.
        "bare LF": (b"GET / HTTP/1.1\nHost: x\n\n", {400}),
        "blank after version": (b"GET / HTTP/1.1 \r\nHost: x\r\n\r\n", {400}),
        "malformed version": (b"GET / HTTP/1.q\r\nHost: x\r\n\r\n", {400}),
        "blank in the target": (b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", {400}),
        "long line": (b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", {414}),
        "huge line": (b"GET /" + b"a" * 2000000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", {414}),
        "many headers": (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(300)) + b"\r\n", {431}),
        "huge header": (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"z" * 20000 + b"\r\n\r\n", {431}),
        # Past what Beast can store of one field (64 KiB): it threw, and the worker died with it.
        "field Beast cannot store": (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"z" * 65534 + b"\r\n\r\n", {431}),
        "name Beast cannot store": (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"N" * 65534 + b": v\r\n\r\n", {431}),
        "bad content-length": (b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", {400}),
        "null byte": (b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n", {400}),
        "body too large": (b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 2048\r\n\r\n", {413}),
        # Waited for whole in the buffer, out of Beast's header limit: bounded by the buffer's size.
        "endless chunk extension": (b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;"
                                    + b"e" * 1000000, {431}),
        "endless trailer": (b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: "
                            + b"t" * 1000000, {431}),
        "chunked too large": (b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n" + b"a" * 2048 + b"\r\n0\r\n\r\n", {413}),
    }

    def test_each_case_is_a_4xx_with_close_and_json_and_no_worker_dies(self):
        s = self.server(["workers = 2", "limit_request_body = 1024"]).start(workers=2)
        before = s.workers()
        for name, (raw, codes) in self.CASES.items():
            with self.subTest(name):
                out = raw_request(s.port, raw)
                self.assertIn(status_of(out), codes, out[:200])
                self.assertIn(b"Connection: close", out)
                self.assertIn(b'{"error":', out)
        self.assertEqual(s.workers(), before)
        self.assertTrue(s.healthy())
        self.assertIn("[WARNING] Invalid request", s.read_log())

    def test_with_the_limits_off_no_input_ends_a_worker(self):
        # 0 turns a limit off (as in gunicorn); Beast's own ceilings must then still answer, not throw.
        s = self.server(["limit_request_field_size = 0", "limit_request_fields = 0", "limit_request_line = 0",
                         "limit_request_body = 0"]).start()
        before = s.workers()
        out = raw_request(s.port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"z" * 70000 + b"\r\n\r\n")
        self.assertEqual(status_of(out), 431, out[:200])
        # A declared length far past any memory: the body is awaited, not reserved at once.
        out = raw_request(s.port, b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000000\r\n\r\nabc",
                          timeout=1)
        self.assertEqual(out, b"")
        self.assertEqual(s.workers(), before)
        self.assertTrue(s.healthy())
        self.assertNotIn("Exception in worker", s.read_log())

    def test_slow_client_header_deadline(self):
        s = self.server(["header_timeout = 1"]).start()
        with socket.create_connection(("127.0.0.1", s.port), timeout=5) as c:
            c.sendall(b"GET /health HTTP/1.1\r\n")  # and never the rest
            t0 = time.monotonic()
            self.assertEqual(c.recv(100), b"")
            self.assertLess(time.monotonic() - t0, 3)

    def test_idle_keepalive_connection_closed_after_keepalive_seconds(self):
        s = self.server(["keepalive = 2"]).start()
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as c:
            c.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertIn(b"200 OK", c.recv(4096))
            t0 = time.monotonic()
            self.assertEqual(c.recv(100), b"")  # closed by the server, not by our timeout
            waited = time.monotonic() - t0
        self.assertGreater(waited, 1.5)
        self.assertLess(waited, 4)

    def test_slow_reader_gets_a_large_answer_whole_and_the_connection_goes_on(self):
        # 8 MB does not fit the socket buffers: the server writes what they take at once and the rest
        # as the client reads; the next request on the connection must find it in order.
        s = self.server(["limit_request_body = 0"], binary=TEST_BIN).start()
        body = bytes(range(256)) * (8 << 12)
        got = slow_reader_exchanges(s.port, [("POST", "/echo", body, {}), ("GET", "/health", None, {})])
        self.assertEqual(got[0][0], 200)
        self.assertTrue(got[0][1] == body, f"{len(got[0][1])} bytes back of {len(body)}")
        self.assertEqual(got[1][0], 200)
        self.assertEqual(json.loads(got[1][1])["status"], "ok")

    def test_peer_that_stops_reading_is_cut_after_timeout(self):
        # A 16 MB echo the client never reads: the write stalls once the socket buffers are full,
        # and `timeout` seconds later the server gives up on it (the access log line says when).
        s = self.server(["timeout = 2", "limit_request_body = 0", 'accesslog = "-"'], binary=TEST_BIN).start()
        body = b"x" * (16 << 20)
        with socket.create_connection(("127.0.0.1", s.port), timeout=15) as c:
            c.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            t0 = time.monotonic()
            line = s.wait_log(r'"POST /echo HTTP/1\.1" 200 (\d+)', timeout=10)
            self.assertTrue(line, s.read_log())
            self.assertGreater(time.monotonic() - t0, 1.5)
            self.assertLess(int(line.group(1)), len(body))  # the log says what was really sent
            got = 0
            try:
                while chunk := c.recv(1 << 20):
                    got += len(chunk)
            except ConnectionResetError:
                pass
            self.assertLess(got, len(body))  # cut short, not delivered late
        self.assertTrue(s.healthy())


class Processes(ServerTest):
    def test_term_finishes_requests_in_flight_and_exits_zero(self):
        s = self.server(["workers = 2", "graceful_timeout = 10"], binary=TEST_BIN).start(workers=2)
        threads, results = concurrent_gets(s.port, "/slow?ms=1500", 10)
        time.sleep(0.5)  # let the requests reach the workers before the signal
        s.signal(signal.SIGTERM)
        [t.join() for t in threads]
        self.assertEqual(results, [200] * 10)
        self.assertEqual(s.wait_exit(), 0)

    def test_int_stops_fast(self):
        s = self.server(["graceful_timeout = 30"], binary=TEST_BIN).start()
        threading.Thread(target=lambda: self._ignore(lambda: http_get(s.port, "/slow?ms=20000", timeout=30))).start()
        time.sleep(0.3)
        t0 = time.monotonic()
        s.signal(signal.SIGINT)
        self.assertEqual(s.wait_exit(10), 0)
        self.assertLess(time.monotonic() - t0, 5)

    def test_term_past_graceful_timeout_answers_a_response_never_started_with_503(self):
        # It was "500 handler sent no response": the server stopped the handler, which did nothing
        # wrong. (A route's on_stop answers in its own shape: the app's tests check theirs.)
        s = self.server(["graceful_timeout = 1"], binary=TEST_BIN).start()
        with socket.create_connection(("127.0.0.1", s.port), timeout=15) as c:
            # Sent before the signal: the worker has it, or takes it from the listen queue as it
            # begins to drain (no sleep that a loaded machine could outlast).
            c.sendall(b"GET /slow?ms=20000 HTTP/1.1\r\nHost: x\r\n\r\n")
            s.signal(signal.SIGTERM)
            answer = b""
            while chunk := c.recv(65536):
                answer += chunk
        self.assertEqual(status_of(answer), 503, answer)
        self.assertIn(b"server shutting down", answer)
        self.assertEqual(s.wait_exit(), 0)

    @staticmethod
    def _ignore(f):
        try:
            f()
        except OSError:
            pass

    def test_port_in_use_fails_at_once(self):
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            s = self.server()
            s.write_conf([], port=port)
            s.start(wait=False)
            self.assertEqual(s.wait_exit(5), 1)
            self.assertIn(f"127.0.0.1:{port}: Address already in use", s.read_log())

    def test_broken_config_names_file_and_line(self):
        s = self.server(["workers = 2", 'workers = "three"'])
        s.write_conf(["workers = \"three\""])
        r = subprocess.run([BIN, "-c", s.conf], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, r"server\.conf:2: workers: expected a positive integer")
        r = subprocess.run([BIN, "-c", s.conf, "--check-config"], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 1)
        s.write_conf(["workers = 3"])
        r = subprocess.run([BIN, "-c", s.conf, "--check-config"], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_workers_leave_when_the_master_is_killed(self):
        s = self.server(["workers = 2"]).start(workers=2)
        kids = s.workers()
        s.proc.kill()
        s.proc.wait()
        gone = wait_until(lambda: not any(os.path.exists(f"/proc/{k}") and "Z" not in open(f"/proc/{k}/stat").read().split()[2] for k in kids), 5)
        self.assertTrue(gone, f"orphaned workers: {kids}")

    def test_unix_socket_and_ipv6_bind(self):
        s = self.server()
        sock = os.path.join(s.dir, "s.sock")
        v6 = free_port()
        with open(s.conf, "w") as f:
            f.write(f'bind = ["127.0.0.1:{s.port}", "unix:{sock}", "[::1]:{v6}"]\n')
        s.start()
        out = subprocess.run(["curl", "-s", "--unix-socket", sock, "http://x/health"], capture_output=True, text=True).stdout
        self.assertEqual(json.loads(out)["status"], "ok")
        out = subprocess.run(["curl", "-s", f"http://[::1]:{v6}/health"], capture_output=True, text=True).stdout
        self.assertEqual(json.loads(out)["status"], "ok")

    def test_an_answer_before_unread_input_is_not_cut_by_a_reset(self):
        # Closing a socket with input unread makes the kernel send a reset, which can destroy the
        # answer before the client reads it; the worker closes at once only when nothing is unread.
        s = self.server().start(workers=1)
        close_then_more = (b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                           + b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 200_000)
        too_large = b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 400000000\r\n\r\n" + b"b" * 300_000
        for raw, status in ((close_then_more, b"200"), (too_large, b"413")):
            with socket.create_connection(("127.0.0.1", s.port), timeout=10) as c:
                try:
                    c.sendall(raw)
                except OSError:
                    pass   # the server may have answered and stopped reading: the answer must still come
                got = recv_until(c, None)
            self.assertTrue(got.startswith(b"HTTP/1.1 " + status), got[:100])
            self.assertTrue(got.endswith(b"}"), got[-100:])

    def test_the_peer_address_each_kind_of_listener_reports(self):
        # What accept() returned, as the access log's %(h)s and X-Forwarded-For's trust see it.
        s = self.server(binary=TEST_BIN)
        sock = os.path.join(s.dir, "s.sock")
        v6 = free_port()
        with open(s.conf, "w") as f:
            f.write(f'bind = ["127.0.0.1:{s.port}", "unix:{sock}", "[::1]:{v6}"]\nforwarded_allow_ips = "10.1.1.1"\n')
        s.start()
        self.assertEqual(json.loads(http_get(s.port, "/items/1")[2])["remote"], "127.0.0.1")
        for where in (["--unix-socket", sock, "http://x/items/1"], [f"http://[::1]:{v6}/items/1"]):
            out = subprocess.run(["curl", "-s", *where], capture_output=True, text=True).stdout
            self.assertEqual(json.loads(out)["remote"], "unix" if "--unix-socket" in where else "::1", out)


if __name__ == "__main__":
    import unittest
    unittest.main()
