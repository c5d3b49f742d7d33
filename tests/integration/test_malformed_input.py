"""Bad input gets a clear error (4xx), never a crash: the real binary (2 workers, the gateway in front
of the fake upstream) is fed ~1500 byte-level mutants of valid HTTP requests and ~500 chat requests
whose JSON body is mutated inside a correct HTTP frame.

Seeded and reproducible: AGENTE_FUZZ_SEED picks the seed (default below); every mutant is made from it
before anything is sent, so a failure message's seed and mutant number name the same bytes again
(the message also carries those bytes, as a Python expression). The mutants go out in parallel, each
on its own loopback connection, so that the ones the server rightly waits on (an incomplete request)
cost no more than a couple of seconds of wall time together.

What must hold for every answer: it is HTTP (a `HTTP/1.x NNN` status line first, framed so it can be
read to its end); its status is no 5xx but the gateway's upstream-related 502/503/504, or 505 when the
request really names a version other than 1.0/1.1; a JSON body parses, and an error's body is an error
object. Silence, or a close without a byte after header_timeout, is allowed only for a request that is
not complete yet. And at the end, the assertion that matters most: no worker died (the same pids, no
death or respawn in the log) and each worker still answers /health."""
import concurrent.futures
import json
import os
import random
import re
import socket
import threading
import time

from harness import http_get
from test_gateway import CLIENT_KEY, GatewayTest, gateway_conf, gateway_env

SEED = int(os.environ.get("AGENTE_FUZZ_SEED", "20261124"))
HTTP_MUTANTS = 1500
BODY_MUTANTS = 500
PARALLEL = 32          # connections in flight: enough to overlap the waits, few enough for 2 cores
TIMEOUT = 2.0          # how long a mutant may go unanswered before we count it as "waiting for more"
GRACE = 0.3            # after a whole answer on a kept-alive connection: how long to wait for another
CHAT_TIMEOUT = 5.0     # a correct frame reaches the gateway, which may call the upstream
QUIET_CLOSE = 0.8      # a close with no answer sooner than this is no header_timeout (1 s): a drop

# What the master logs when a worker leaves other than by being told to (src/core/master.cpp,
# log_exit and murder_stale_workers), what a worker logs when an exception ends it (worker.cpp,
# run_worker), and what a session logs when an exception escapes it (http_session.cpp, spawn).
WORKER_DIED = re.compile(r"Worker \(pid:\d+\) (crashed with signal|exited unexpectedly|killed for timeout|"
                         r"booted and failed|did not boot)|WORKER TIMEOUT|Exception in worker process|"
                         r"Connection failed:")

CHAT_BODY = {"model": "fast", "messages": [{"role": "system", "content": "Be brief."},
                                          {"role": "user", "content": "Say hi."}],
             "temperature": 0.5, "max_tokens": 16, "stream": False}


# ---- the valid requests the mutants start from ---------------------------------------------------

def chat_request(body, extra=b"", close=True):
    """A correct POST /v1/chat/completions with `body` (bytes) as its Content-Length body."""
    return (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + CLIENT_KEY.encode() + b"\r\n" + extra
            + (b"Connection: close\r\n" if close else b"")
            + b"Content-Length: %d\r\n\r\n" % len(body) + body)


def chunked(body, sizes):
    """`body` cut into chunks of the given sizes (the rest in one more), then the last chunk."""
    out, pos = b"", 0
    for n in list(sizes) + [len(body)]:
        piece = body[pos:pos + n]
        if piece:
            out += b"%x\r\n" % len(piece) + piece + b"\r\n"
        pos += len(piece)
    return out + b"0\r\n\r\n"


def base_requests():
    """(name, raw bytes, whether it reaches the gateway, which may answer 502/503/504)."""
    body = json.dumps(CHAT_BODY).encode()
    health = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: fuzz\r\nAccept: */*\r\n\r\n"
    chunked_post = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    b"Authorization: Bearer " + CLIENT_KEY.encode() + b"\r\nTransfer-Encoding: chunked\r\n"
                    b"Connection: close\r\n\r\n" + chunked(body, [7, 30]))
    expect = chat_request(body, b"Expect: 100-continue\r\n")  # body sent at once: the server must cope
    pipelined = (b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" + chat_request(body))
    return [("health", health, False), ("chat", chat_request(body, close=False), True),
            ("chunked", chunked_post, True), ("expect", expect, True), ("pipelined", pipelined, True)]


# ---- byte-level mutations of a request -----------------------------------------------------------
# Each takes the rng and the bytes and returns new bytes. The structural ones work on the first
# request's head; where one does not apply, it falls back to a blind byte flip.

SPICE = [b"\r", b"\n", b"\r\n", b"\r\n\r\n", b":", b" ", b"\t", b"\0", b"\x7f", b"\x80", b"\xff", b"\xc3\xa9",
         b";", b",", b"-", b"0", b"9", b"f", b'"', b"%", b"%00", b"/", b"?", b"#", b"HTTP/1.1"]


def split_head(raw):
    """(lines of the first request's head, everything after its blank line), or None."""
    end = raw.find(b"\r\n\r\n")
    return None if end < 0 else (raw[:end].split(b"\r\n"), raw[end + 4:])


def join_head(lines, rest):
    return b"\r\n".join(lines) + b"\r\n\r\n" + rest


def flip_bits(rng, raw):
    b = bytearray(raw)
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


def insert_bytes(rng, raw):
    i = rng.randrange(len(raw) + 1)
    piece = rng.choice(SPICE) if rng.random() < 0.7 else rng.randbytes(rng.randint(1, 8))
    return raw[:i] + piece + raw[i:]


def delete_bytes(rng, raw):
    i = rng.randrange(len(raw))
    return raw[:i] + raw[i + rng.randint(1, 8):]


def truncate(rng, raw):
    return raw[:rng.randrange(len(raw))]


def duplicate_header(rng, raw):
    parts = split_head(raw)
    if not parts or len(parts[0]) < 2:
        return flip_bits(rng, raw)
    lines, rest = parts
    line = lines[rng.randrange(1, len(lines))]
    if rng.random() < 0.5:  # the same name with another value: conflicting framing, auth, host
        line = line.split(b":")[0] + b": " + rng.choice([b"0", b"1", b"7", b"99999", b"chunked", b"close",
                                                          b"100-continue", b"Bearer x", b""])
    lines.insert(rng.randrange(1, len(lines) + 1), line)
    return join_head(lines, rest)


def oversize_header(rng, raw):
    """A value around and past limit_request_field_size (8190), and past 64 KiB, the most one field
    of Beast's header can hold."""
    parts = split_head(raw)
    if not parts:
        return flip_bits(rng, raw)
    lines, rest = parts
    value = b"v" * rng.choice([8000, 8180, 8188, 8189, 8190, 8200, 20000, 70000])
    if len(lines) > 1 and rng.random() < 0.5:
        k = rng.randrange(1, len(lines))
        lines[k] = lines[k].split(b":")[0] + b": " + value
    else:
        lines.insert(1, b"X-Big: " + value)
    return join_head(lines, rest)


FRAMINGS = [
    [b"Content-Length: 5", b"Transfer-Encoding: chunked"], [b"Transfer-Encoding: chunked", b"Content-Length: 5"],
    [b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked"], [b"Transfer-Encoding: gzip"],
    [b"Transfer-Encoding: chunked, gzip"], [b"Transfer-Encoding: gzip, chunked"], [b"Transfer-Encoding: identity"],
    [b"Transfer-Encoding: xchunked"], [b"Transfer-Encoding:  chunked "], [b"Transfer-Encoding\t: chunked"],
    [b"Transfer-Encoding:", b" chunked"], [b"Transfer-Encoding: \x80chunked"],
    [b"Content-Length: -1"], [b"Content-Length: +5"], [b"Content-Length: 0x10"], [b"Content-Length: 1e3"],
    [b"Content-Length: 5, 5"], [b"Content-Length: 5", b"Content-Length: 6"], [b"Content-Length: 5", b"Content-Length: 5"],
    [b"Content-Length: 99999999999999999999999"], [b"Content-Length: 18446744073709551615"],
    [b"Content-Length: 18446744073709551616"], [b"Content-Length: "], [b"Content-Length: 3 4"],
    [b"Content-Length: 0"], [b"Content-Length: 16777216"], [b"Content-Length: 16777217"], [b"Content-Length: \xd9\xa5"],
]


def bogus_framing(rng, raw):
    """The first request's own Content-Length / Transfer-Encoding replaced by a contradictory or invalid set."""
    parts = split_head(raw)
    if not parts:
        return flip_bits(rng, raw)
    lines, rest = parts
    lines = [l for l in lines if not re.match(rb"(?i)(content-length|transfer-encoding):", l)]
    for l in rng.choice(FRAMINGS):
        lines.insert(rng.randrange(1, len(lines) + 1), l)
    return join_head(lines, rest)


CHUNK_SIZES = [b"zz", b"-1", b"ffffffffffffffffffff", b"8000000000000000", b"7fffffffffffffff", b"ffffffff",
               b" 5", b"5 ", b"0x5", b"5;", b'5;a="b', b"5;\0", b"", b"1" * 100, b"fffffff", b"0", b"\xff"]


def bad_chunk(rng, raw):
    """A chunked body (the first request's body made chunked if it was not) with one chunk broken:
    a size that is no hex, overflows, is bigger than the data; a missing CRLF; no last chunk."""
    parts = split_head(raw)
    if not parts:
        return flip_bits(rng, raw)
    lines, rest = parts
    if not any(re.match(rb"(?i)transfer-encoding:", l) for l in lines):
        length = next((int(m.group(1)) for l in lines if (m := re.match(rb"(?i)content-length: *(\d+)$", l))), 0)
        body, rest = rest[:length], rest[length:]
        lines = [l for l in lines if not re.match(rb"(?i)content-length:", l)] + [b"Transfer-Encoding: chunked"]
        rest = chunked(body, [rng.randint(1, 20)]) + rest
    pieces = rest.split(b"\r\n")
    sizes = [i for i, p in enumerate(pieces) if re.fullmatch(rb"[0-9a-f]+", p)]
    if not sizes:
        return flip_bits(rng, raw)
    i = rng.choice(sizes)
    how = rng.randrange(3)
    if how == 0:
        pieces[i] = rng.choice(CHUNK_SIZES)
    elif how == 1 and i + 1 < len(pieces):
        pieces[i + 1] += b"X"  # data longer than its size: no CRLF where one must be
    else:
        pieces = pieces[:i]   # cut before the last chunk (or any): the body never ends
    return join_head(lines, b"\r\n".join(pieces))


NON_ASCII = [b"\x80", b"\xff", b"\xc3\xa9", b"\x00", b"\x7f", b"\xe2\x80\x8b", b"\x1b[0m", b"\xf0\x9f\x92\xa5"]


def non_ascii_token(rng, raw):
    """Non-ASCII or control bytes in the method, the target or a header name."""
    parts = split_head(raw)
    if not parts:
        return flip_bits(rng, raw)
    lines, rest = parts
    junk = rng.choice(NON_ASCII)
    where = rng.randrange(3)
    if where == 0:
        i = rng.randrange(len(lines[0].split(b" ")[0]) + 1)
        lines[0] = lines[0][:i] + junk + lines[0][i:]
    elif where == 1:
        i = lines[0].find(b"/") + 1
        lines[0] = lines[0][:i] + junk + lines[0][i:]
    elif len(lines) > 1:
        k = rng.randrange(1, len(lines))
        i = rng.randrange(max(1, lines[k].find(b":")))
        lines[k] = lines[k][:i] + junk + lines[k][i:]
    return join_head(lines, rest)


def bare_line_ends(rng, raw):
    """LF alone (or CR alone) where CRLF belongs: everywhere, once, or only in the head."""
    how = rng.randrange(4)
    if how == 0:
        return raw.replace(b"\r\n", b"\n")
    if how == 1:
        return raw.replace(b"\r\n", b"\n", 1)
    if how == 2:
        parts = split_head(raw)
        return raw if not parts else b"\n".join(parts[0]) + b"\n\n" + parts[1]
    return raw.replace(b"\r\n", b"\r", 1)


def long_request_line(rng, raw):
    """A target around limit_request_line (4094) and far past it."""
    i = raw.find(b" /")
    if i < 0:
        return flip_bits(rng, raw)
    n = rng.choice([4060, 4070, 4076, 4077, 4078, 4090, 4094, 4100, 8190, 9000, 65536, 300000])
    return raw[:i + 2] + b"a" * n + raw[i + 2:]


HTTP_MUTATIONS = [flip_bits, insert_bytes, delete_bytes, truncate, duplicate_header, oversize_header,
                  bogus_framing, bad_chunk, non_ascii_token, bare_line_ends, long_request_line]


class Mutant:
    def __init__(self, index, base, raw, gateway, steps):
        self.index, self.base, self.raw, self.gateway, self.steps = index, base, raw, gateway, steps

    def describe(self):
        return (f"seed={SEED} mutant #{self.index} ({self.base} + {' + '.join(self.steps)}), "
                f"{len(self.raw)} bytes: {compact_repr(self.raw)}")


def compact_repr(raw):
    """The exact bytes as a Python expression, with long runs of one byte written as b'v' * 70000 so
    that an oversized mutant still fits in a failure message."""
    parts, plain = [], b""
    for m in re.finditer(rb"(.)\1*", raw, re.S):  # runs of one byte
        run = m.group(0)
        if len(run) < 64:
            plain += run
            continue
        if plain:
            parts.append(repr(plain))
            plain = b""
        parts.append(f"{run[:1]!r} * {len(run)}")
    if plain or not parts:
        parts.append(repr(plain))
    return " + ".join(parts)


def http_mutants(rng, n):
    """n mutants: each a base request with one to three mutations stacked (mostly one)."""
    bases = base_requests()
    out = []
    for i in range(n):
        name, raw, gateway = bases[i % len(bases)]
        steps = []
        for _ in range(rng.choices([1, 2, 3], [6, 3, 1])[0]):
            if not raw:
                break  # truncated to nothing: no byte left to mutate
            op = rng.choice(HTTP_MUTATIONS)
            raw = op(rng, raw)
            steps.append(op.__name__)
        out.append(Mutant(i, name, raw, gateway, steps))
    return out


# ---- body-level mutations of a chat request ------------------------------------------------------
# Each returns (name, body bytes); the HTTP frame around it is always correct.

def body_byte_edits(rng):
    b = bytearray(json.dumps(CHAT_BODY).encode())
    for _ in range(rng.randint(1, 5)):
        i = rng.randrange(len(b))
        kind = rng.randrange(3)
        if kind == 0:
            b[i] = rng.randrange(256)
        elif kind == 1:
            b[i:i] = rng.choice([b"{", b"}", b"[", b"]", b'"', b",", b":", b"\\", b"\\u", b"0", b"-", b"e", b"\0",
                                 b"\xff", b"null", b"true"])
        else:
            del b[i:i + rng.randint(1, 4)]
    return "byte edits", bytes(b)


def body_truncated(rng):
    text = json.dumps(CHAT_BODY).encode()
    return "truncated", text[:rng.randrange(len(text))]


def body_deep(rng):
    """Nesting around the gateway's bound (1000) and simdjson's own (1024), and far past both."""
    depth = rng.choice([999, 1000, 1001, 1023, 1024, 1025, 2000, 100000])
    kind = rng.randrange(4)
    if kind == 0:
        inner = b"[" * depth + b"]" * depth
    elif kind == 1:
        inner = b'{"a":' * depth + b"1" + b"}" * depth
    elif kind == 2:
        inner = b"[" * depth  # never closed
    else:
        inner = b'[{"a":' * (depth // 2) + b"0" + b"}]" * (depth // 2)
    where = rng.choice([b"messages", b"metadata", b"model"])
    return f"nested {depth} ({kind}) in {where.decode()}", b'{"model": "fast", "' + where + b'": ' + inner + b"}"


INVALID_UTF8 = [b"\xff", b"\xc3", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\x80\x80", b"\xfe\xfe"]


def body_bad_utf8(rng):
    bad = rng.choice(INVALID_UTF8)
    where = rng.randrange(3)
    if where == 0:
        return "bad UTF-8 in content", b'{"model": "fast", "messages": [{"role": "user", "content": "a' + bad + b'b"}]}'
    if where == 1:
        return "bad UTF-8 in model", b'{"model": "fa' + bad + b'st", "messages": []}'
    return "bad UTF-8 in a key", b'{"model": "fast", "k' + bad + b'": 1, "messages": []}'


NUMBERS = [b"1e999999", b"-1e999999", b"1e-999999", b"123456789012345678901234567890123456789", b"-0", b"0.0e0",
           b"1" * 5000, b"1." + b"0" * 5000 + b"1", b"NaN", b"Infinity", b"-Infinity", b"01", b"1.", b".5", b"+1",
           b"0x10", b"1e", b"1e+", b"-", b"18446744073709551616", b"-9223372036854775809", b"4.9e-324", b"1.8e308"]


def body_numbers(rng):
    key = rng.choice([b"temperature", b"max_tokens", b"n", b"seed", b"top_p"])
    return "number", b'{"model": "fast", "messages": [], "' + key + b'": ' + rng.choice(NUMBERS) + b"}"


WRONG = [b"1", b"null", b"true", b"[]", b"{}", b'""', b'"x"', b"-1.5e3", b'["fast"]', b'{"name": "fast"}']


def body_wrong_types(rng):
    field = rng.choice([b"model", b"stream", b"messages"])
    value = rng.choice(WRONG + ([b'"true"', b'"false"', b"0", b"1"] if field == b"stream" else []))
    fields = {b"model": b'"fast"', b"stream": b"false", b"messages": b'[{"role": "user", "content": "hi"}]'}
    fields[field] = value
    if rng.random() < 0.2:
        del fields[field]  # missing altogether
    return f"{field.decode()} = {value.decode()}", b"{" + b", ".join(b'"%s": %s' % kv for kv in fields.items()) + b"}"


ODD_BODIES = [b"", b" ", b"null", b"[]", b'"fast"', b"1", b"{}", b"{", b"}", b"\xef\xbb\xbf" + json.dumps(CHAT_BODY).encode(),
              json.dumps(CHAT_BODY).encode() + b" trailing", json.dumps(CHAT_BODY).encode() + b"{}",
              json.dumps(CHAT_BODY).encode() + b"\0", b'{"model": "fast", "model": 1}', b'{"model": 1, "model": "fast"}',
              b'{"model": "fast", "stream": true, "stream": "yes"}', b'{"model": "f\\u0061st", "messages": []}',
              b'{"model": "\\ud800", "messages": []}', b'{"model": "fast\\u0000", "messages": []}',
              b'{"model": "fast", "messages": ["\\ud83d\\ude00", "\\udc00\\ud800"]}', b'{"model": "fast", "x": "\\q"}',
              b'{"model": "fast", "x": "\\u12"}', b'{"model": "fast", "x": "tab\there"}', b'{"model": "fast" "x": 1}',
              b'{"model": "fast",}', b"{'model': 'fast'}", b'{"model": "fast", "messages": [1,]}',
              b'{"model": "' + b"f" * 100000 + b'"}', b'{"model": "fast", "' + b"k" * 100000 + b'": 1}',
              b'{"model": "fast", "messages": [' + b'{"role": "user", "content": "x"},' * 20000 + b"1]}",
              b'{"model": "fast", "stream": true, "messages": []}', b'{"model": "fast", "stream": null}']


def body_odd(rng):
    return "odd body", rng.choice(ODD_BODIES)


BODY_MUTATIONS = [body_byte_edits, body_byte_edits, body_byte_edits, body_truncated, body_deep, body_bad_utf8,
                  body_numbers, body_wrong_types, body_odd]


def body_mutants(rng, n):
    out = []
    for i in range(n):
        name, body = rng.choice(BODY_MUTATIONS)(rng)
        out.append(Mutant(i, "chat body", chat_request(body), True, [name]))
    return out


# ---- talking to the server -----------------------------------------------------------------------

def exchange(port, raw, timeout=TIMEOUT, grace=GRACE):
    """Sends `raw` on a fresh connection and reads the answer until the server closes, or the answer is
    whole and nothing more comes for `grace` s (a kept-alive connection), or `timeout` s pass.
    Returns (bytes received, how it ended: closed, reset, idle or timeout)."""
    data = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(raw)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            pass  # the server answered (a limit hit) and stopped reading: what it said is still to read
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return data, "timeout"
            whole = answer_is_whole(data)
            s.settimeout(min(left, grace) if whole else left)
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                return data, "idle" if whole else "timeout"
            except ConnectionResetError:
                return data, "reset"
            if not chunk:
                return data, "closed"
            data += chunk


class Answer:
    def __init__(self, status, reason, headers, body, complete):
        self.status, self.reason, self.headers, self.body, self.complete = status, reason, headers, body, complete


STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([1-5]\d\d) ([^\r\n]*)\r\n")


def parse_answers(data):
    """What the server sent, split into responses. Returns (answers, problem): problem says why the
    bytes are not HTTP (None when they are, so far); the last answer may be incomplete."""
    answers, pos = [], 0
    while pos < len(data):
        end = data.find(b"\r\n\r\n", pos)
        head = data[pos:] if end < 0 else data[pos:end + 2]
        m = STATUS_LINE.match(head)
        if not m:
            if could_become_status_line(head):
                answers.append(Answer(None, b"", {}, b"", False))  # a status line still arriving
                return answers, None
            return answers, f"not an HTTP status line at byte {pos}: {head[:120]!r}"
        if end < 0:
            answers.append(Answer(int(m.group(1)), m.group(2), {}, b"", False))
            return answers, None
        headers = {}
        for line in head[m.end():].split(b"\r\n"):
            if line:
                name, sep, value = line.partition(b":")
                if not sep or not name or name != name.strip():
                    return answers, f"not a header field: {line[:120]!r}"
                headers[name.decode("latin-1").lower()] = value.strip().decode("latin-1")
        status, pos = int(m.group(1)), end + 4
        if status < 200:
            answers.append(Answer(status, m.group(2), headers, b"", True))
            continue
        if "chunked" in headers.get("transfer-encoding", ""):
            body, used, complete = dechunk(data[pos:])
            if used is None:
                return answers, f"bad chunked framing in the answer: {data[pos:pos + 120]!r}"
        elif "content-length" in headers:
            length = int(headers["content-length"])
            body = data[pos:pos + length]
            used, complete = len(body), len(body) == length
        else:
            body = data[pos:]  # runs to the close (an HTTP/1.0 stream)
            used, complete = len(body), False
        answers.append(Answer(status, m.group(2), headers, body, complete))
        pos += used
    return answers, None


def could_become_status_line(head):
    """What came so far is the start of a `HTTP/1.x NNN reason` line that has not ended yet."""
    sample = b"HTTP/1.1 200 "
    padded = head + sample[len(head):]
    return b"\r\n" not in head and re.match(rb"HTTP/1\.[01] [1-5]\d\d ", padded) is not None


def dechunk(data):
    """Reads a chunked body the way Beast's parser does (boost/beast/http/impl/basic_parser.ipp), to
    tell "wrong" from "not finished": returns (body, bytes used, whether it ended), bytes used None
    where the framing is wrong. After the last chunk, trailer fields run to a blank line."""
    body, pos = b"", 0
    while True:
        if pos:  # the CRLF that ends the previous chunk's data, judged once 4 bytes are there
            if len(data) < pos + 4:
                return body, len(data), False
            if data[pos:pos + 2] != b"\r\n":
                return body, None, False
            pos += 2
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            return body, len(data), False
        size = re.match(rb"[0-9a-fA-F]*", data[pos:eol]).group(0)
        if not size:
            return body, None, False
        if int(size, 16) == 0:
            end = data.find(b"\r\n\r\n", eol)
            return (body, len(data), False) if end < 0 else (body, end + 4, True)
        start, pos = eol + 2, eol + 2 + int(size, 16)
        if len(data) < pos:
            return body, len(data), False
        body += data[start:pos]


def answer_is_whole(data):
    """At least one final response, and nothing after it half-received."""
    answers, problem = parse_answers(data)
    return (not problem and bool(answers) and all(a.complete for a in answers)
            and any(a.status >= 200 for a in answers))


def looks_incomplete(raw):
    """Whether a server may rightly wait for more of this: a request whose head has not ended, or whose
    body is shorter than its Content-Length or chunked framing says. Requests are followed one after
    another (pipelining); anything left after the last whole one counts as the start of another."""
    if not raw:
        return True  # nothing sent yet
    pos = 0
    while pos < len(raw):
        end = raw.find(b"\r\n\r\n", pos)
        if end < 0:
            return True
        head = re.sub(rb"\r\n[ \t]+", b" ", raw[pos:end])  # folded lines (obs-fold) joined, as Beast does
        fields = [l.split(b":", 1) for l in head.split(b"\r\n")[1:] if b":" in l]
        te = [v.strip() for n, v in fields if n.lower() == b"transfer-encoding"]
        cl = [v.strip() for n, v in fields if n.lower() == b"content-length"]
        pos = end + 4
        if te and te[-1].lower().endswith(b"chunked"):
            _, used, complete = dechunk(raw[pos:])
            if used is None:
                return False  # a framing error: the server can tell at once
            if not complete:
                return True
            pos += used
        elif cl and all(re.fullmatch(rb"\d+( *, *\d+)*", v) for v in cl):  # "5, 5" is a valid list
            length = max(int(n) for v in cl for n in re.findall(rb"\d+", v))
            if len(raw) - pos < length:
                return True
            pos += length
    return False


def json_problem(answer, openai):
    """Why a JSON answer's body is not what it must be (None if fine): it parses, an error status comes
    with an error object, and `openai`: that object has OpenAI's message, type and code."""
    if not answer.headers.get("content-type", "").startswith("application/json"):
        return None
    try:
        obj = json.loads(answer.body)
    except ValueError as e:
        return f"JSON body does not parse ({e}): {answer.body[:200]!r}"
    if answer.status < 400:
        return None
    error = obj.get("error") if isinstance(obj, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return f"{answer.status} without an error object: {answer.body[:200]!r}"
    if openai and not (isinstance(error.get("type"), str) and "code" in error):
        return f"{answer.status} error object lacks OpenAI's type/code: {answer.body[:200]!r}"
    return None


UNSUPPORTED_VERSION = re.compile(rb" HTTP/(?!1\.[01]\r\n)\d\.\d\r\n")


def status_problem(answer, mutant):
    """5xx is the server's fault; the only ones allowed are the gateway's upstream-related 502/503/504,
    and 505 when the request names a well-formed version the server does not speak (what HTTP
    prescribes). A 505 for a malformed request line, e.g. one ended by a bare LF, tells the client
    the wrong thing: that is a 400."""
    if answer.status < 500:
        return None
    if mutant.gateway and answer.status in (502, 503, 504):
        return None
    if answer.status == 505 and UNSUPPORTED_VERSION.search(mutant.raw):
        return None
    return f"status {answer.status} {answer.reason!r}: {answer.body[:200]!r}"


def judge_http(mutant, data, how, elapsed):
    """None if the server's answer to a byte-level mutant obeys the rule, else what is wrong."""
    answers, problem = parse_answers(data)
    if problem:
        return problem
    if answers and not answers[-1].complete and b"HEAD " not in mutant.raw:  # HEAD: no body to wait for
        return f"answer cut short ({how}): {data[-200:]!r}"
    finals = [a for a in answers if a.status is not None and a.status >= 200]
    if not finals:  # silence, or only a 100 Continue: right only when the request is not whole yet,
        if not looks_incomplete(mutant.raw):
            return f"no answer ({how} after {elapsed:.2f} s) to a complete request: {data[:200]!r}"
        if how in ("closed", "reset") and elapsed < QUIET_CLOSE:  # and only until header_timeout
            return f"connection dropped without an answer ({how} after {elapsed:.2f} s): {data[:200]!r}"
        return None
    for a in finals:
        if problem := status_problem(a, mutant):
            return problem
        if a.complete and (problem := json_problem(a, False)):
            return problem
    return None


def judge_chat(mutant, data, how, elapsed):
    """A chat request in a correct frame gets one whole answer: 2xx, a 4xx with OpenAI's error object,
    or 502/503/504; never nothing, never another 5xx."""
    answers, problem = parse_answers(data)
    if problem:
        return problem
    finals = [a for a in answers if a.status is not None and a.status >= 200]
    if not finals:
        return f"no answer ({how} after {elapsed:.2f} s): {data[:200]!r}"
    a = finals[0]
    if not a.complete:
        return f"answer cut short ({how}): {data[-200:]!r}"
    if not (200 <= a.status < 300 or 400 <= a.status < 500 or a.status in (502, 503, 504)):
        return f"status {a.status} {a.reason!r}: {a.body[:200]!r}"
    if a.status >= 400 and not a.headers.get("content-type", "").startswith("application/json"):
        return f"{a.status} without a JSON error object: {a.body[:200]!r}"
    return json_problem(a, True)


def summarize(failures, per_kind=3):
    """The failures grouped by kind (their first words, numbers left out), a few of each: one kind
    of failure repeated many times must not hide another."""
    kinds = {}
    for f in failures:
        kinds.setdefault(re.sub(r"[\d.]+", "N", f.split(":")[0]), []).append(f)
    return "\n".join(f"[{len(fs)} x {kind}]\n" + "\n".join(fs[:per_kind]) for kind, fs in kinds.items())


class HealthProbe(threading.Thread):
    """GET /health every 0.2 s while the mutants run: the service must keep answering, and promptly,
    whatever the mutants do to it. (Which worker answers is checked at the end: a stuck worker can
    hide behind the other, which takes the new connections.)"""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.stop, self.failures, self.slowest, self.count = port, threading.Event(), [], 0.0, 0

    def run(self):
        while not self.stop.wait(0.2):
            t0 = time.monotonic()
            try:
                status = http_get(self.port, timeout=5)[0]
                if status != 200:
                    self.failures.append(f"status {status}")
            except OSError as e:
                self.failures.append(repr(e))
            self.slowest = max(self.slowest, time.monotonic() - t0)
            self.count += 1


class MalformedInputTest(GatewayTest):
    def setUp(self):
        super().setUp()
        # header_timeout 1: a head that never ends is dropped by the server after 1 s (the client
        # would wait TIMEOUT otherwise). A high breaker threshold keeps the upstream being asked, so
        # that mutated bodies keep reaching the proxy path rather than a 503 in front of it.
        conf = ["header_timeout = 1"] + gateway_conf(
            self.fake.url, 2, gateway=["circuit_breaker_threshold = 1000000"],
            providers={"main": []}, models={"fast": [("main", "ok")]})
        self.s = self.server(conf, env=gateway_env()).start(workers=2)
        self.addCleanup(self.assert_no_secret_in_log, self.s)
        self.workers_before = self.s.workers()
        self.assertEqual(len(self.workers_before), 2)

    def send_all(self, mutants, judge, timeout):
        """Sends every mutant (PARALLEL at a time) and judges its answer; returns the failures."""
        probe = HealthProbe(self.s.port)
        probe.start()
        counts = {}

        def one(m):
            t0 = time.monotonic()
            try:
                data, how = exchange(self.s.port, m.raw, timeout)
            except OSError as e:
                return m, f"could not talk to the server: {e!r}", "error"
            problem = judge(m, data, how, time.monotonic() - t0)
            answers, _ = parse_answers(data)
            statuses = [a.status for a in answers if a.status and a.status >= 200]
            return m, problem, statuses[0] if statuses else f"none ({how})"

        failures = []
        try:
            with concurrent.futures.ThreadPoolExecutor(PARALLEL) as pool:
                for m, problem, outcome in pool.map(one, mutants):
                    counts[outcome] = counts.get(outcome, 0) + 1
                    if problem:
                        failures.append(f"{problem}\n    for {m.describe()}")
        finally:
            probe.stop.set()
            probe.join()
        failures += [f"seed={SEED}: /health failed while mutants ran: {f}" for f in probe.failures]
        if probe.slowest > 3:
            failures.append(f"seed={SEED}: /health took {probe.slowest:.1f} s while mutants ran (a worker stuck?)")
        print(f"\n  seed={SEED}: {len(mutants)} mutants, outcomes {sorted(counts.items(), key=str)}; "
              f"{probe.count} health probes, slowest {probe.slowest * 1000:.0f} ms")
        return failures

    def answering_workers(self, deadline=5.0):
        """The pids that answer /health on fresh connections, asked 16 at a time until every worker has
        answered or `deadline` s pass. A worker stuck on a mutant leaves the others to take new
        connections, so the service as a whole looks fine; only asking which worker answers shows it."""
        def pid():
            try:
                status, _, body = http_get(self.s.port, timeout=2)
                return json.loads(body)["pid"] if status == 200 else None
            except (OSError, ValueError, KeyError):
                return None
        seen, end = set(), time.monotonic() + deadline
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            while not set(self.s.workers()) <= seen and time.monotonic() < end:
                seen |= set(pool.map(lambda _: pid(), range(16))) - {None}
        return seen

    def verdict(self, failures):
        """The real assertion: the same two workers serve as at the start, nothing in the log says a
        worker died or was respawned, and each of them still answers /health. Reported in one message
        with the mutants' own failures, since a mutant that kills a worker shows up there, bytes and
        all, as a connection dropped without an answer."""
        log = self.s.read_log()
        problems = [f"a worker died: {line}" for line in log.splitlines() if WORKER_DIED.search(line)]
        boots = re.findall(r"Booting worker with pid: (\d+)", log)
        now = self.s.workers()
        if len(boots) != 2 or now != self.workers_before:
            problems.append(f"workers respawned: {self.workers_before} at the start, {now} now, "
                            f"{len(boots)} boots logged")
        answering = self.answering_workers()
        if answering != set(now):
            problems.append(f"/health answered by workers {sorted(answering)} of {now}: one is stuck or gone")
        if failures:
            problems.append(f"{len(failures)} mutant(s) broke the rule:\n" + summarize(failures))
        if problems:
            self.fail(f"seed={SEED} (AGENTE_FUZZ_SEED):\n" + "\n".join(problems))

    def test_byte_level_http_mutants_get_an_http_answer_and_no_worker_dies(self):
        mutants = http_mutants(random.Random(SEED), HTTP_MUTANTS)
        self.verdict(self.send_all(mutants, judge_http, TIMEOUT))

    def test_mutated_chat_bodies_get_openai_errors_and_no_worker_dies(self):
        mutants = body_mutants(random.Random(SEED + 1), BODY_MUTANTS)
        self.verdict(self.send_all(mutants, judge_chat, CHAT_TIMEOUT))


if __name__ == "__main__":
    import unittest
    unittest.main()
