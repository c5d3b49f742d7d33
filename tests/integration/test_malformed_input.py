"""Bad input gets a clear error (4xx), never a crash: the real binary (2 workers, the gateway in front
of the fake upstream) is fed ~1500 byte-level mutants of valid HTTP requests and ~500 chat requests
whose JSON body is mutated inside a correct HTTP frame; then, with agents configured, the app's other
routes that read a body, a path parameter or an echoed header get a few hundred mutants each in a
correct frame: the A2A JSON-RPC endpoint /tasks/send, the NDJSON /agent/stream/{agent_id},
/v1/embeddings, /system/circuit-breaker/reset/{name} and the two agent cards, each held to the answers
docs/agent.md and docs/gateway.md give it (see "the app's other JSON endpoints" below).

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
import copy
import json
import math
import os
import random
import re
import shutil
import socket
import tempfile
import threading
import time

from harness import http_get, scaled, wait_until
from test_agent import agent_conf
from test_gateway import ADMIN_TOKEN, CLIENT_KEY, GatewayTest, gateway_conf, gateway_env

SEED = int(os.environ.get("AGENTE_FUZZ_SEED", "20261124"))
HTTP_MUTANTS = 1500
BODY_MUTANTS = 500
PARALLEL = 32          # connections in flight: enough to overlap the waits, few enough for 2 cores
TIMEOUT = 2.0          # how long a mutant may go unanswered before we count it as "waiting for more"
GRACE = 0.3            # after a whole answer on a kept-alive connection: how long to wait for another
CHAT_TIMEOUT = scaled(5.0)  # a correct frame reaches the gateway, which may call the upstream
QUIET_CLOSE = 0.8      # a close with no answer sooner than this is no header_timeout (1 s): a drop

# What the master logs when a worker leaves other than by being told to (src/core/master_supervision.cpp,
# log_exit and murder_stale_workers), what a worker logs when an exception ends it (worker.cpp,
# run_worker), and what a session logs when an exception escapes it (session.hpp, spawn).
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
    """The exact bytes as a Python expression, with long repetitions written as b'v' * 70000,
    b'{"a":' * 100000 or b'{"role": "user", "content": "x"},' * 20000, so that an oversized or
    deeply nested mutant still fits in a failure message (every mutant here: 1.3 KB at most), in
    well under a second for a 1 MB one."""
    return " + ".join(compact_parts(raw)) or repr(b"")


def compact_parts(raw):
    run = periodic_stretch(raw)
    if not run:
        return short_unit_parts(raw)
    start, unit, count = run
    return compact_parts(raw[:start]) + [f"{unit!r} * {count}"] + compact_parts(raw[start + len(unit) * count:])


def periodic_stretch(raw, least=4096):
    """(start, unit, count) of a stretch of at least `least` bytes that repeats one unit of 9 bytes to
    `least` bytes, or None. Where a 32-byte window next occurs gives the period; looking once per KB
    keeps this cheap, and a stretch it misses is only written out longhand, exact all the same."""
    for p in range(0, len(raw) - least, 1024):
        q = raw.find(raw[p:p + 32], p + 1, p + least + 32)
        period = q - p
        if q < 0 or period <= 8 or raw[q:q + 7 * period] != raw[p:q] * 7:
            continue   # no period here, or a short unit: short_unit_parts' business
        start = p
        while start >= period and raw[start - period:start] == raw[p:q]:
            start -= period
        while start > 0 and raw[start - 1] == raw[start - 1 + period]:
            start -= 1   # the stretch may begin part-way into a unit
        unit, count = raw[start:start + period], 1
        while raw[start + count * period:start + (count + 1) * period] == unit:
            count += 1
        if count * period >= least:
            return start, unit, count
    return None


def short_unit_parts(raw):
    """Runs of a unit of 1-8 bytes, 8 times or more and 64 bytes at least, as unit * count."""
    parts, start = [], 0
    for m in re.finditer(rb"(.{1,8}?)\1{7,}", raw, re.S):
        unit = m.group(1)
        count = len(m.group(0)) // len(unit)
        if count * len(unit) < 64:
            continue   # short: stays in the plain text around it
        if m.start() > start:
            parts.append(repr(raw[start:m.start()]))
        parts.append(f"{unit!r} * {count}")
        start = m.start() + count * len(unit)
    if start < len(raw):
        parts.append(repr(raw[start:]))
    return parts


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

def byte_edits(rng, text):
    """One to five bytes of `text` replaced, JSON punctuation inserted, or a few bytes deleted."""
    b = bytearray(text)
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
    return bytes(b)


def body_byte_edits(rng):
    return "byte edits", byte_edits(rng, json.dumps(CHAT_BODY).encode())


def body_truncated(rng):
    text = json.dumps(CHAT_BODY).encode()
    return "truncated", text[:rng.randrange(len(text))]


def nested_value(rng, depths=(999, 1000, 1001, 1023, 1024, 1025, 2000, 100000)):
    """(name, a JSON value nested `depth` levels deep): arrays, objects, both in turn, or arrays never
    closed. The default depths lie around the gateway's bound (1000) and simdjson's own (1024), and
    far past both."""
    depth = rng.choice(depths)
    kind = rng.randrange(4)
    if kind == 0:
        inner = b"[" * depth + b"]" * depth
    elif kind == 1:
        inner = b'{"a":' * depth + b"1" + b"}" * depth
    elif kind == 2:
        inner = b"[" * depth  # never closed
    else:
        inner = b'[{"a":' * (depth // 2) + b"0" + b"}]" * (depth // 2)
    return f"nested {depth} ({kind})", inner


def body_deep(rng):
    name, inner = nested_value(rng)
    where = rng.choice([b"messages", b"metadata", b"model"])
    return f"{name} in {where.decode()}", b'{"model": "fast", "' + where + b'": ' + inner + b"}"


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


# ---- the app's other JSON endpoints ------------------------------------------------------------
# The same rule on every other route that reads a body, a path parameter, or a header it echoes back:
# the A2A JSON-RPC endpoint, the NDJSON agent stream, embeddings, the breaker reset and the agent
# cards. Each mutant is a correct HTTP frame (with the key or token the route asks for) around one
# mutated body, path parameter, credential or header, so that what is judged is the route's own
# reading of it. The server runs test_agent's configuration (agent_conf): agents "studly" and
# "coach" on model "agent-ok" (the fake upstream's "ok"), providers "fake" and "patient".

AGENT_ID = b"studly"
BREAKER = b"fake"      # a provider of agent_conf's: a breaker the reset route knows
CARD_PATHS = [b"/.well-known/agent-card.json", b"/.well-known/agent.json"]
RPC_MUTANTS, NDJSON_MUTANTS, EMBEDDINGS_MUTANTS, RESET_MUTANTS, CARD_MUTANTS = 1200, 500, 500, 250, 250
# Around the gateway's bound (1000, which /v1/embeddings' body check has) and simdjson's (1024), and
# far past both: the agent's routes read JSON with nlohmann, which has no bound of its own.
APP_DEPTHS = (999, 1000, 1001, 1025, 100000)


def frame(method, target, body=b"", headers=(), content_type=b"application/json", host=b"127.0.0.1"):
    """A correct HTTP/1.1 request: Host (none when host is None), Content-Type (none when None), the
    given fields, Connection: close (the server's close ends our read at once) and Content-Length."""
    lines = [method + b" " + target + b" HTTP/1.1"]
    lines += [b"Host: " + host] if host is not None else []
    lines += [b"Content-Type: " + content_type] if content_type is not None else []
    lines += list(headers) + [b"Connection: close", b"Content-Length: %d" % len(body)]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def bearer(token):
    return b"Authorization: Bearer " + token.encode()


def body_of(raw):
    return raw.split(b"\r\n\r\n", 1)[1]


# -- mutations of a valid JSON body, given as a Python object --
# Values are put in as raw bytes, so that what no Python object serializes to (bad UTF-8, 1e999,
# 100000 levels, a lone surrogate escape) can go anywhere. Each returns (what was done, body bytes).

MARK = "@@fuzz-value@@"


def json_paths(value, prefix=()):
    """Every place a field or an element sits in `value`, as a tuple of keys and indexes."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        yield prefix + (k,)
        yield from json_paths(v, prefix + (k,))


def value_at(value, path):
    for k in path:
        value = value[k]
    return value


def path_name(path):
    return ".".join(str(k) for k in path) or "(body)"


def replaced(base, path, raw):
    """`base` as JSON, with the value at `path` replaced by the bytes `raw`, or removed if raw is None."""
    obj = copy.deepcopy(base)
    parent = value_at(obj, path[:-1])
    if raw is None:
        del parent[path[-1]]
        return json.dumps(obj).encode()
    parent[path[-1]] = MARK
    return json.dumps(obj).encode().replace(json.dumps(MARK).encode(), raw)


def renamed(base, path, raw_key):
    """`base` as JSON, with the key at `path` (a field of an object) spelled as the bytes `raw_key`."""
    obj = copy.deepcopy(base)
    parent = value_at(obj, path[:-1])
    parent[MARK] = parent.pop(path[-1])
    return json.dumps(obj).encode().replace(json.dumps(MARK).encode(), raw_key)


def field_edits(rng, base):
    return "byte edits", byte_edits(rng, json.dumps(base).encode())


def field_truncated(rng, base):
    text = json.dumps(base).encode()
    return "truncated", text[:rng.randrange(len(text))]


def field_wrong_type(rng, base):
    path = rng.choice(list(json_paths(base)))
    value = rng.choice(WRONG)
    return f"{path_name(path)} = {value.decode()}", replaced(base, path, value)


def field_missing(rng, base):
    path = rng.choice(list(json_paths(base)))
    return f"{path_name(path)} missing", replaced(base, path, None)


def field_huge(rng, base):
    """A string of 100 KB or 1 MB, a list of 10000 copies of a value, or a key of 100 KB."""
    path = rng.choice(list(json_paths(base)))
    kind = rng.randrange(3)
    if kind == 0:
        n = rng.choice([100_000, 1_000_000])
        return f"{path_name(path)} = {n}-byte string", replaced(base, path, b'"' + b"x" * n + b'"')
    if kind == 1:
        item = json.dumps(value_at(base, path)).encode()
        return f"{path_name(path)} = 10000 copies", replaced(base, path, b"[" + b", ".join([item] * 10000) + b"]")
    keys = [p for p in json_paths(base) if isinstance(p[-1], str)]
    path = rng.choice(keys)
    return f"{path_name(path)} as a 100000-byte key", renamed(base, path, b'"' + b"k" * 100_000 + b'"')


def field_deep(rng, base):
    path = rng.choice(list(json_paths(base)))
    name, inner = nested_value(rng, APP_DEPTHS)
    return f"{path_name(path)} = {name}", replaced(base, path, inner)


def field_bad_utf8(rng, base):
    """Invalid UTF-8 inside a string value or a key: JSON text must be UTF-8 (RFC 8259)."""
    bad = rng.choice(INVALID_UTF8)
    path = rng.choice(list(json_paths(base)))
    if isinstance(path[-1], str) and rng.random() < 0.3:
        return f"bad UTF-8 {bad!r} in the key {path_name(path)}", renamed(base, path, b'"k' + bad + b'"')
    return f"bad UTF-8 {bad!r} in {path_name(path)}", replaced(base, path, b'"a' + bad + b'b"')


ODD_STRINGS = [b'""', b'" "', b'"\\u0000"', b'"a\\u0000b"', b'"\\ud800"', b'"\\udc00\\ud800"', b'"\\ud83d\\ude00"',
               b'"\\""', b'"\\\\"', b'"\\q"', b'"\\u12"', b'"tab\there"', b'"new\nline"', b'"%00"', b'"%ff"',
               b'"..\\/..\\/etc\\/passwd"', b'"\\u202e\\u200b"', b'"\xc3\xa9\xe2\x80\x8b\xf0\x9f\x92\xa5"',
               b'"' + b"\\u00e9" * 20000 + b'"', b"'single'", b"unquoted"]


def field_odd_string(rng, base):
    path = rng.choice([p for p in json_paths(base) if isinstance(value_at(base, p), str)])
    value = rng.choice(ODD_STRINGS)
    return f"{path_name(path)} = {compact_repr(value)[:60]}", replaced(base, path, value)


def field_number(rng, base):
    path = rng.choice(list(json_paths(base)))
    value = rng.choice(NUMBERS)
    return f"{path_name(path)} = {compact_repr(value)[:60]}", replaced(base, path, value)


def field_odd_body(rng, base):
    valid = json.dumps(base).encode()
    odd = [b"", b" ", b"\r\n", b"null", b"[]", b'"x"', b"1", b"true", b"{}", b"{", b"}", b"[", b"\0",
           b"\xef\xbb\xbf" + valid, valid + b" trailing", valid + b"{}", valid + b"\0", valid[:-1] + b",}",
           valid.replace(b'"', b"'"), b"\xff\xfe" + valid.decode().encode("utf-16-le")]
    return "odd body", rng.choice(odd)


BODY_FIELD_MUTATIONS = [field_edits, field_edits, field_truncated, field_wrong_type, field_wrong_type, field_missing,
                        field_huge, field_deep, field_deep, field_bad_utf8, field_odd_string, field_number,
                        field_odd_body]

CONTENT_TYPES = [None, b"text/plain", b"application/x-www-form-urlencoded", b"multipart/form-data; boundary=x",
                 b"application/json; charset=utf-16", b"application/xml", b"", b"\xff", b"*/*"]


def body_mutation(rng, base, mutations=BODY_FIELD_MUTATIONS):
    """(what was done, body, Content-Type): one mutation of the valid JSON `base`, or, one time in
    ten, the valid body (or a form body) under another Content-Type or none: the routes read JSON
    whatever the header says, or refuse it; neither may break them."""
    if rng.random() < 0.1:
        ctype = rng.choice(CONTENT_TYPES)
        body = json.dumps(base).encode() if rng.random() < 0.7 else b"a=1&messages=%5B%5D"
        return f"Content-Type {ctype!r}, {len(body)}-byte body", body, ctype
    name, body = rng.choice(mutations)(rng, base)
    return name, body, b"application/json"


# -- JSON-RPC's own ways to be wrong --

RPC_VERSIONS = [b'"1.0"', b'"2"', b"2.0", b"2", b"null", b'"2.0 "', b'" 2.0"', b'["2.0"]', b'"2.00"', b'"\\u0032.0"']
RPC_IDS = [b'"x"', b'""', b"0", b"-1", b"1.5", b"-0", b"1e999", b"123456789012345678901234567890", b"18446744073709551615",
           b"null", b"true", b"false", b"[]", b"{}", b"[1]", b'{"a": 1}', b'"\\u0000"', b'"' + b"i" * 100_000 + b'"']
RPC_METHODS = [b'""', b'"nope"', b'"execute "', b'"EXECUTE"', b'"rpc.discover"', b'"tasks/get/x"', b'"message/"',
               b'"tasks/pushNotificationConfig/set"', b'"CreateTaskPushNotificationConfig"', b'"ListTasks"',
               b'"tasks/resubscribe"', b'"SubscribeToTask"', b'"GetExtendedAgentCard"', b'"\\u0000"', b"1", b"null",
               b"[]", b'{"name": "execute"}', b'"' + b"m" * 100_000 + b'"']
RPC_PARAMS = [b"[]", b"[1]", b'[{"messages": []}]', b'"x"', b"1", b"null", b"true", b"{}"]


def rpc_version(rng, base):
    value = rng.choice(RPC_VERSIONS + [None])
    return f"jsonrpc = {value!r}", replaced(base, ("jsonrpc",), value)


def rpc_id(rng, base):
    value = rng.choice(RPC_IDS + [None])   # None: no id at all, a notification
    what = "a notification (no id)" if value is None else f"id = {compact_repr(value)[:60]}"
    return what, replaced(base, ("id",), value)


def rpc_method(rng, base):
    value = rng.choice(RPC_METHODS + [None])
    return f"method = {compact_repr(value)[:60] if value else 'missing'}", replaced(base, ("method",), value)


def rpc_params(rng, base):
    value = rng.choice(RPC_PARAMS + [None])
    return f"params = {value!r}", replaced(base, ("params",), value)


def rpc_batch(rng, base):
    """A batch (docs/agent.md: none supported, an array is -32600) or another array."""
    valid = json.dumps(base).encode()
    return "batch", rng.choice([b"[" + valid + b"]", b"[" + valid + b", " + valid + b"]", b"[]", b"[1]",
                                b"[[" + valid + b"]]", b"[" + valid + b", 1]", b"[" + valid * 2 + b"]"])


RPC_MUTATIONS = BODY_FIELD_MUTATIONS + [rpc_version, rpc_id, rpc_id, rpc_method, rpc_params, rpc_batch]

# A valid params object per method (docs/agent.md), "@ctx" standing for a context id of the mutant's
# own: conversations of mutants must not grow into each other (a 1 MB message stored in a shared one
# would be sent upstream again with every later turn). The task ids name no task: GetTask and
# CancelTask go to the store all the same.
RPC_BASES = {
    "execute": {"messages": [{"kind": "message", "role": "user", "parts": [{"kind": "text", "text": "Help me"}]}],
                "context_id": "@ctx", "agent_id": "studly"},
    "execute (OpenAI messages)": {"messages": [{"role": "system", "content": "Be brief."},
                                               {"role": "user", "content": "Say hi."}], "contextId": "@ctx"},
    "SendMessage": {"message": {"messageId": "m-1", "role": "ROLE_USER", "parts": [{"text": "hi"}], "contextId": "@ctx"},
                    "metadata": {"agent_id": "coach"}},
    "message/send": {"message": {"kind": "message", "messageId": "m-2", "role": "user",
                                 "parts": [{"kind": "text", "text": "hi"}], "contextId": "@ctx"}},
    "SendStreamingMessage": {"message": {"messageId": "m-3", "role": "ROLE_USER", "parts": [{"text": "hi"}],
                                         "contextId": "@ctx"}},
    "message/stream": {"message": {"kind": "message", "messageId": "m-4", "role": "user",
                                   "parts": [{"kind": "text", "text": "hi"}], "contextId": "@ctx"}},
    "GetTask": {"id": "fuzz-task"}, "tasks/get": {"id": "fuzz-task"},
    "CancelTask": {"id": "fuzz-task"}, "tasks/cancel": {"taskId": "fuzz-task"},
}


def rpc_request_object(name, index):
    """The valid request `name` of RPC_BASES for mutant `index`: its id a string or a number in turn."""
    params = json.loads(json.dumps(RPC_BASES[name]).replace("@ctx", f"fuzz-ctx-{index}"))
    return {"jsonrpc": "2.0", "id": f"fuzz-{index}" if index % 2 else index, "method": name.split(" ")[0], "params": params}


def rpc_mutants(rng, n):
    out = []
    for i in range(n):
        name = rng.choice(sorted(RPC_BASES))
        what, body, ctype = body_mutation(rng, rpc_request_object(name, i), RPC_MUTATIONS)
        raw = frame(b"POST", b"/tasks/send", body, [bearer(CLIENT_KEY)], content_type=ctype)
        out.append(Mutant(i, f"POST /tasks/send {name}", raw, True, [what]))
    return out


# -- path parameters and credentials --

def odd_path_params(valid):
    """A path segment's odd spellings: empty, dot segments, percent-encodings (the router decodes
    none), bytes no URL should carry raw, lengths around limit_request_line (4094), a query or a
    fragment after it, a slash inside it."""
    return [b"", b".", b"..", b"%2e%2e", b"..%2f..%2fetc%2fpasswd", b"%2F", valid[:-1] + b"%%%02X" % valid[-1],
            b"%00", b"%ff", b"%", b"%zz", b"%c3%a9", b"\xff", b"\xc3\xa9", b"\xe2\x80\x8b", b"\x80" + valid,
            valid + b"\xc3", b"\x00", b"\x7f", b" ", b"\t", b"a" * 3000, b"a" * 4090, b"a" * 5000, valid + b"?x=1",
            valid + b"?", valid + b"?q=\xff", valid + b"#frag", valid + b"/", valid + b"/x", b"/" + valid,
            valid + b"%20", b"+", b";", valid + b";x=1", b"~", b"*", b"'", b'"', b"<script>", b"\\", valid.upper(),
            valid + b".", b"nobody", b"{agent_id}", b"{name}"]


def path_mutation(rng, valid):
    param = rng.choice(odd_path_params(valid))
    return f"path parameter {compact_repr(param)[:60]}", param


def odd_credentials(token):
    t = token.encode()
    return [None, b"Bearer ", b"Bearer", b"Bearer wrong", b"bearer " + t, b"BEARER " + t, b"Basic " + t,
            b"Bearer " + t + b" ", b"Bearer  " + t, b"Bearer " + t + b"x", b"Bearer " + t[:-1], b"Bearer \xff",
            b"Bearer " + t + b"\xc3", b"Bearer " + b"k" * 7000, b"Token " + t, b"Bearer " + t + b", Bearer x"]


def auth_mutation(rng, token):
    """(what, header lines): the Authorization field missing, wrong, odd, or sent twice."""
    value = rng.choice(odd_credentials(token))
    if value is None:
        return "no Authorization", []
    if rng.random() < 0.2:
        return f"Authorization twice, then {value[:40]!r}", [bearer(token), b"Authorization: " + value]
    return f"Authorization {value[:40]!r}", [b"Authorization: " + value]


# -- the NDJSON agent stream --

NDJSON_BASES = [{"messages": [{"role": "user", "content": "Hello"}], "context_id": "@ctx", "stream_workflows": True},
                {"messages": [{"kind": "message", "role": "user", "parts": [{"kind": "text", "text": "Hello"}]}],
                 "contextId": "@ctx"}]


def ndjson_mutants(rng, n):
    """Mostly bodies; one in six a path parameter, one in ten the bearer token."""
    out = []
    for i in range(n):
        base = json.loads(json.dumps(rng.choice(NDJSON_BASES)).replace("@ctx", f"fuzz-ndjson-{i}"))
        agent, auth, ctype, r = AGENT_ID, [bearer(CLIENT_KEY)], b"application/json", rng.random()
        if r < 1 / 6:
            what, agent = path_mutation(rng, AGENT_ID)
            body = json.dumps(base).encode()
        elif r < 1 / 6 + 0.1:
            what, auth = auth_mutation(rng, CLIENT_KEY)
            body = json.dumps(base).encode()
        else:
            what, body, ctype = body_mutation(rng, base)
        raw = frame(b"POST", b"/agent/stream/" + agent, body, auth, ctype)
        out.append(Mutant(i, "POST /agent/stream/{agent_id}", raw, True, [what]))
    return out


# -- embeddings --

EMBEDDINGS_BASES = [{"model": "agent-ok", "input": ["a", "b"], "encoding_format": "float", "dimensions": 3, "user": "fuzz"},
                    {"model": "agent-ok", "input": "one text", "stream": False}]


def embeddings_mutants(rng, n):
    out = []
    for i in range(n):
        base, auth, ctype = rng.choice(EMBEDDINGS_BASES), [bearer(CLIENT_KEY)], b"application/json"
        if rng.random() < 0.1:
            what, auth = auth_mutation(rng, CLIENT_KEY)
            body = json.dumps(base).encode()
        else:
            what, body, ctype = body_mutation(rng, base)
        out.append(Mutant(i, "POST /v1/embeddings", frame(b"POST", b"/v1/embeddings", body, auth, ctype), True, [what]))
    return out


# -- the breaker reset: its path parameter and its admin token (its body is not read) --

def reset_mutants(rng, n):
    out = []
    for i in range(n):
        name, auth, body, r = BREAKER, [bearer(ADMIN_TOKEN)], b"", rng.random()
        if r < 0.6:
            what, name = path_mutation(rng, BREAKER)
        elif r < 0.85:
            what, auth = auth_mutation(rng, ADMIN_TOKEN)
            name = rng.choice([BREAKER, b"nope", b"\xff"])
            what += f", breaker {name!r}"
        else:
            what, body, _ = body_mutation(rng, {"name": "fake", "force": True})
        raw = frame(b"POST", b"/system/circuit-breaker/reset/" + name, body, auth)
        out.append(Mutant(i, "POST /system/circuit-breaker/reset/{name}", raw, False, [what]))
    return out


# -- the agent cards: they echo the request's Host (and a trusted X-Forwarded-Proto) as their URL --

ODD_HOSTS = [b"", b"\xff", b"\xc3\xa9xample.com", b"\xe2\x80\x8bhost", b"ex\x80ample", b"a" * 8000, b"example.com:99999",
             b"[::1]:8000", b"[::1", b'ev"il', b"a\\b", b"%ff", b"h o s t", b"127.0.0.1:80/path?q#f", b"<script>",
             b"x\x01y", b"\xf0\x9f\x92\xa5.example"]
ODD_PROTOS = [b"https", b"", b"\xff", b"\xc3", b"javascript", b"h" * 5000, b"https, http", b'"', b"\xe2\x80\x8b"]
ODD_QUERIES = [b"?x=1", b"?%ff", b"?\xff", b"?" + b"q" * 3000, b"?", b"#", b"?a=1&a=2", b"/", b"?url=http://evil"]


def card_mutants(rng, n):
    """Host odd or missing (half), X-Forwarded-Proto odd (a quarter; loopback is a trusted proxy by
    default), a query or a trailing slash on the path (the rest)."""
    out = []
    for i in range(n):
        card = path = rng.choice(CARD_PATHS)
        host, headers, r = b"127.0.0.1", [], rng.random()
        if r < 0.5:
            host = rng.choice(ODD_HOSTS + [None])
            what = f"Host {host[:60]!r}" if host is not None else "no Host"
        elif r < 0.75:
            proto = rng.choice(ODD_PROTOS)
            headers, what = [b"X-Forwarded-Proto: " + proto], f"X-Forwarded-Proto {proto[:60]!r}"
        else:
            query = rng.choice(ODD_QUERIES)
            path, what = path + query, f"target {path + query!r}"
        raw = frame(b"GET", path, b"", headers, None, host)
        out.append(Mutant(i, f"GET {card.decode()}", raw, False, [what]))
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
        while raw.startswith(b"\r\n", pos):  # empty lines before a request are skipped (RFC 9112 2.2)
            pos += 2
        if pos == len(raw):
            return True  # the request after them has not come
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
# A Transfer-Encoding list with a coding before another: 501 when chunked comes last.
UNSUPPORTED_CODING = re.compile(rb"(?i)\r\ntransfer-encoding:[^\r\n]*[!#$%&'*+.^_`|~0-9a-z-][ \t]*,")


def status_problem(answer, mutant):
    """5xx is the server's fault; the only ones allowed are the gateway's upstream-related 502/503/504,
    and 505 when the request names a well-formed version the server does not speak, 501 when it
    applies a transfer coding other than chunked (what HTTP prescribes). A 505 for a malformed request line, e.g. one ended by a bare LF, tells the client
    the wrong thing: that is a 400."""
    if answer.status < 500:
        return None
    if mutant.gateway and answer.status in (502, 503, 504):
        return None
    if answer.status == 505 and UNSUPPORTED_VERSION.search(mutant.raw):
        return None
    if answer.status == 501 and UNSUPPORTED_CODING.search(mutant.raw):
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


def whole_answer(data, how, elapsed):
    """(the one final answer to a complete request, None) or (None, what is wrong): it must be HTTP,
    come, and come whole."""
    answers, problem = parse_answers(data)
    if problem:
        return None, problem
    finals = [a for a in answers if a.status is not None and a.status >= 200]
    if not finals:
        return None, f"no answer ({how} after {elapsed:.2f} s): {data[:200]!r}"
    if not finals[0].complete:
        return None, f"answer cut short ({how}): {data[-200:]!r}"
    return finals[0], None


def rest_problem(a, upstream, openai):
    """2xx, or a 4xx with a JSON error object (OpenAI's when `openai`), or, where an upstream LLM call
    is involved, 502/503/504; never another 5xx."""
    if not (200 <= a.status < 300 or 400 <= a.status < 500 or (upstream and a.status in (502, 503, 504))):
        return f"status {a.status} {a.reason!r}: {a.body[:200]!r}"
    if a.status >= 400 and not a.headers.get("content-type", "").startswith("application/json"):
        return f"{a.status} without a JSON error object: {a.body[:200]!r}"
    return json_problem(a, openai)


def judge_openai(mutant, data, how, elapsed):
    """A /v1 request in a correct frame (chat, embeddings) gets one whole answer: 2xx, a 4xx with
    OpenAI's error object, or 502/503/504; never nothing, never another 5xx."""
    a, problem = whole_answer(data, how, elapsed)
    return problem or rest_problem(a, upstream=True, openai=True)


def judge_system(mutant, data, how, elapsed):
    """/system/circuit-breaker/reset/{name} calls no upstream: 2xx, or a 4xx with an error object."""
    a, problem = whole_answer(data, how, elapsed)
    return problem or rest_problem(a, upstream=False, openai=False)


def judge_card(mutant, data, how, elapsed):
    """An agent card (200, a JSON object with a name and the interface URL) or a 4xx error object."""
    a, problem = whole_answer(data, how, elapsed)
    problem = problem or rest_problem(a, upstream=False, openai=False)
    if problem or a.status != 200:
        return problem
    try:
        card = json.loads(a.body)
    except ValueError as e:
        return f"the card does not parse ({e}): {a.body[:200]!r}"
    if not (isinstance(card, dict) and isinstance(card.get("name"), str)
            and (isinstance(card.get("url"), str) or isinstance(card.get("supportedInterfaces"), list))):
        return f"200 without an agent card: {a.body[:200]!r}"
    return None


def judge_ndjson(mutant, data, how, elapsed):
    """docs/agent.md, "NDJSON streams": a 200 stream of start, content..., then done or error; or,
    before it starts, a 4xx (401, 404, 400, 429) or 503 (breakers open) with an error object."""
    a, problem = whole_answer(data, how, elapsed)
    if problem:
        return problem
    if a.status == 200:
        if not a.headers.get("content-type", "").startswith("application/x-ndjson"):
            return f"200 that is no NDJSON stream: {a.headers.get('content-type')!r} {a.body[:200]!r}"
        return ndjson_problem(a.body)
    if not (400 <= a.status < 500 or a.status == 503):
        return f"status {a.status} {a.reason!r}: {a.body[:200]!r}"
    return rest_problem(a, upstream=True, openai=False)


def ndjson_problem(body):
    if not body.endswith(b"\n"):
        return f"NDJSON stream not ended by a whole line: {body[-200:]!r}"
    events = []
    for line in body.split(b"\n")[:-1]:
        try:
            events.append(json.loads(line))
        except ValueError as e:
            return f"NDJSON line does not parse ({e}): {line[:200]!r}"
    types = [e.get("type") if isinstance(e, dict) else None for e in events]
    if not types or types[0] != "start" or types[-1] not in ("done", "error") or set(types[1:-1]) - {"content"}:
        return f"NDJSON events out of order: {types[:10]}: {body[:200]!r}"
    last = events[-1]
    if last["type"] == "error" and not (isinstance(last.get("error"), str) and isinstance(last.get("status"), int)):
        return f"NDJSON error event without error/status: {last!r:.200}"
    return None


# docs/agent.md, "JSON-RPC errors": the HTTP status each code comes with.
RPC_ERROR_STATUS = {-32700: {400}, -32600: {400}, -32601: {200}, -32602: {200}, -32000: {408}, -32001: {200},
                    -32002: {200}, -32003: {200}, -32004: {200}, -32603: {429, 502, 503}, -32090: {401}}
UNKNOWN = object()   # an id Python cannot tell for certain (a body only nlohmann reads)


def expected_rpc_id(body):
    """The id an answer to `body` must carry (docs/agent.md: the request's id, null when it had none or
    could not be read; a batch or an invalid id type is "none"). UNKNOWN when Python does not read the
    body (a byte-order mark: nlohmann skips it, Python refuses it)."""
    def refuse(name):
        raise ValueError(name)   # NaN and Infinity are no JSON; Python would take them
    try:
        obj = json.loads(body.decode("utf-8"), parse_constant=refuse)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return UNKNOWN
    if not isinstance(obj, dict) or "id" not in obj:
        return None
    return obj["id"] if valid_rpc_id(obj["id"]) else None


def valid_rpc_id(value):
    """JSON-RPC 2.0: an id is a string, a number or null (a boolean is none of them)."""
    return value is None or isinstance(value, str) or (isinstance(value, (int, float)) and not isinstance(value, bool))


def as_float(n):
    try:
        return float(n)
    except OverflowError:   # an integer past the double range: nlohmann reads it as infinity
        return math.inf if n > 0 else -math.inf


def same_rpc_id(got, want):
    """Numbers compare as doubles (nlohmann keeps a big integer or 1.0 as a double); one that no double
    holds (1e999) can only come back null: a JSON number cannot be infinite."""
    if isinstance(want, (int, float)):
        if not math.isfinite(as_float(want)):
            return got is None
        return isinstance(got, (int, float)) and not isinstance(got, bool) and as_float(got) == as_float(want)
    return type(got) is type(want) and got == want


def rpc_object_problem(obj, want, status):
    """Why `obj` is not a JSON-RPC 2.0 response carrying the id `want` (None if it is); `status` is the
    HTTP status it came with, held to docs/agent.md's table (None: an event inside an SSE stream)."""
    if not (isinstance(obj, dict) and obj.get("jsonrpc") == "2.0" and "id" in obj and ("result" in obj) != ("error" in obj)):
        return f"not a JSON-RPC 2.0 response: {json.dumps(obj)[:200]}"
    error = obj.get("error")
    if error is not None:
        if not (isinstance(error, dict) and type(error.get("code")) is int and isinstance(error.get("message"), str)):
            return f"not a JSON-RPC error object: {json.dumps(obj)[:200]}"
        if status is not None and status not in RPC_ERROR_STATUS.get(error["code"], ()):
            return (f"JSON-RPC error {error['code']} came with HTTP {status}: docs/agent.md says "
                    f"{sorted(RPC_ERROR_STATUS.get(error['code'], ())) or 'no such code'}; {json.dumps(obj)[:200]}")
        if error["code"] == -32700:
            want = None   # not JSON: nothing was read, the id neither
    elif status is not None and status != 200:
        return f"a result with HTTP {status}: {json.dumps(obj)[:200]}"
    if want is UNKNOWN:   # then any valid id will do
        want = obj["id"] if valid_rpc_id(obj["id"]) else "a string, number or null"
    if not same_rpc_id(obj["id"], want):
        return (f"id not echoed: {json.dumps(obj['id'])[:80]}, the request's was {json.dumps(want)[:80]}; "
                f"{json.dumps(obj)[:200]}")
    return None


def sse_rpc_problem(body, want):
    """A streamed A2A answer: events whose data are JSON-RPC responses with the request's id, the last
    an error or the final status update (v1.0 `statusUpdate`, v0.3 `final: true`)."""
    if not body.endswith(b"\n\n"):
        return f"SSE stream not ended by a whole event: {body[-200:]!r}"
    objects = []
    for event in body.split(b"\n\n")[:-1]:
        data = b"".join(line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:"))
        if not data:
            continue   # a comment (keep-alive)
        try:
            objects.append(json.loads(data))
        except ValueError as e:
            return f"SSE event data does not parse ({e}): {data[:200]!r}"
        if problem := rpc_object_problem(objects[-1], want, None):
            return f"SSE event: {problem}"
    last = objects[-1] if objects else {}
    result = last.get("result") if isinstance(last.get("result"), dict) else {}
    if "error" not in last and "statusUpdate" not in result and result.get("final") is not True:
        return f"SSE stream does not end with a final status or an error: {body[-200:]!r}"
    return None


def judge_rpc(mutant, data, how, elapsed):
    """POST /tasks/send: one whole answer, a JSON-RPC response (docs/agent.md: "Always") with the
    request's id and the HTTP status its error code comes with, or an SSE stream of them."""
    a, problem = whole_answer(data, how, elapsed)
    if problem:
        return problem
    want = expected_rpc_id(body_of(mutant.raw))
    content_type = a.headers.get("content-type", "")
    if content_type.startswith("text/event-stream"):
        return sse_rpc_problem(a.body, want) if a.status == 200 else f"an SSE stream with status {a.status}"
    if not content_type.startswith("application/json"):
        return f"{a.status} that is no JSON-RPC response ({content_type!r}): {a.body[:200]!r}"
    try:
        obj = json.loads(a.body)
    except ValueError as e:
        return f"{a.status} JSON body does not parse ({e}): {a.body[:200]!r}"
    return rpc_object_problem(obj, want, a.status)


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


class FuzzTest(GatewayTest):
    """What every fuzzing test here shares: the server (started by a subclass's setUp), sending the
    mutants, and the verdict. No tests of its own."""

    def start_fuzzed_server(self, conf):
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

        failures, self.unanswered = [], []
        try:
            with concurrent.futures.ThreadPoolExecutor(PARALLEL) as pool:
                for m, problem, outcome in pool.map(one, mutants):
                    counts[outcome] = counts.get(outcome, 0) + 1
                    if problem:
                        failures.append(f"{problem}\n    for {m.describe()}")
                    if problem and not isinstance(outcome, int):
                        self.unanswered.append(m)   # a suspect should a worker have died
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
        if any(WORKER_DIED.search(line) for line in log.splitlines()):
            problems += [f"this one kills a worker when sent alone: {m.describe()}" for m in self.killers()]
        if problems:
            self.fail(f"seed={SEED} (AGENTE_FUZZ_SEED):\n" + "\n".join(problems))

    def killers(self, budget=20.0):
        """Of the mutants left without an answer, the ones that kill a worker when sent alone, one
        after another: every connection the dying worker held went unanswered too, and the failure
        must name the mutant that did it, not the ones that happened to share its worker. A mutant
        answered on its own is no killer and costs no wait; `budget` s bound the whole replay (a
        mutant that hangs costs CHAT_TIMEOUT)."""
        found, end = [], time.monotonic() + budget
        for m in self.unanswered:
            if time.monotonic() > end:
                break
            deaths = len(WORKER_DIED.findall(self.s.read_log()))
            data, _ = exchange(self.s.port, m.raw, CHAT_TIMEOUT)
            if not whole_answer(data, "", 0)[0] and wait_until(
                    lambda: len(WORKER_DIED.findall(self.s.read_log())) > deaths, timeout=2):
                found.append(m)
        return found


class MalformedInputTest(FuzzTest):
    def setUp(self):
        super().setUp()
        # header_timeout 1: a head that never ends is dropped by the server after 1 s (the client
        # would wait TIMEOUT otherwise). A high breaker threshold keeps the upstream being asked, so
        # that mutated bodies keep reaching the proxy path rather than a 503 in front of it.
        self.start_fuzzed_server(["header_timeout = 1"] + gateway_conf(
            self.fake.url, 2, gateway=["circuit_breaker_threshold = 1000000"],
            providers={"main": []}, models={"fast": [("main", "ok")]}))

    def test_byte_level_http_mutants_get_an_http_answer_and_no_worker_dies(self):
        mutants = http_mutants(random.Random(SEED), HTTP_MUTANTS)
        self.verdict(self.send_all(mutants, judge_http, TIMEOUT))

    def test_mutated_chat_bodies_get_openai_errors_and_no_worker_dies(self):
        mutants = body_mutants(random.Random(SEED + 1), BODY_MUTANTS)
        self.verdict(self.send_all(mutants, judge_openai, CHAT_TIMEOUT))


class AppEndpointsMalformedInputTest(FuzzTest):
    """The app's other routes that read a body, a path parameter or an echoed header, each fed
    mutants in a correct frame and held to its own documented answers (see "the app's other JSON
    endpoints" above). One server per route, so that the verdict names the route that killed a worker."""

    def setUp(self):
        super().setUp()
        state_dir = tempfile.mkdtemp(prefix="agente-fuzz-state-")
        self.addCleanup(shutil.rmtree, state_dir, True)
        # As test_agent configures agents. A high breaker threshold keeps calls going upstream (no
        # 503 in front), more stream slots than mutants in flight keep streams streaming (no 429).
        # The route deadline stays the default 6 s, above CHAT_TIMEOUT: a hang is a missing answer
        # (in the sanitizer build CHAT_TIMEOUT is scaled past it, and a hang is the deadline's answer).
        self.start_fuzzed_server(["header_timeout = 1"] + agent_conf(
            self.fake.url, state_dir, 2, gateway=["circuit_breaker_threshold = 1000000", "max_concurrent_streams = 64"],
            agents={"studly": [], "coach": ['name = "Coach"']}))

    def fuzz(self, make_mutants, seed_offset, count, judge):
        """One endpoint's mutants, from their own stream of the seed, sent and judged."""
        mutants = make_mutants(random.Random(SEED + seed_offset), count)
        self.verdict(self.send_all(mutants, judge, CHAT_TIMEOUT))

    def test_json_rpc_mutants_get_json_rpc_errors_and_no_worker_dies(self):
        self.fuzz(rpc_mutants, 2, RPC_MUTANTS, judge_rpc)

    def test_ndjson_stream_mutants_get_a_stream_or_an_error_and_no_worker_dies(self):
        self.fuzz(ndjson_mutants, 3, NDJSON_MUTANTS, judge_ndjson)

    def test_embeddings_mutants_get_openai_errors_and_no_worker_dies(self):
        self.fuzz(embeddings_mutants, 4, EMBEDDINGS_MUTANTS, judge_openai)

    def test_breaker_reset_path_and_token_mutants_get_errors_and_no_worker_dies(self):
        self.fuzz(reset_mutants, 5, RESET_MUTANTS, judge_system)

    def test_agent_card_header_mutants_get_a_card_or_an_error_and_no_worker_dies(self):
        self.fuzz(card_mutants, 6, CARD_MUTANTS, judge_card)

if __name__ == "__main__":
    import unittest
    unittest.main()
