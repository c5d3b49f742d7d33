#!/usr/bin/env python3
"""A fake OpenAI-compatible upstream for the gateway's tests (Python stdlib asyncio only).

Behaviour is chosen per request by the upstream model name (what the gateway's [models] targets
say), optionally tuned by extra fields of the JSON body, which the gateway passes through:

  ok            answers at once; with "stream": true, `fake_chunks` events `fake_interval_ms` apart
  slow          answers after `fake_delay_ms` (default 2000) — streamed: waits before the first event
  hang          reads the request and never answers
  fail500       500 with an OpenAI error object         fail429   429 with Retry-After: 1
  reject400     400 with an OpenAI error object (a request the provider refuses)
  flaky         500 for the first `fake_fail` requests (per model name), then like ok
  drop          streamed: two events, then the connection is cut without ending the chunked body
  silent        streamed: headers at once, `fake_delay_ms` of silence, then like ok
  closing       like ok, with "fake_close": "next"

/embeddings answers each input with a deterministic bag-of-words vector (`dimensions`, default 8);
flaky, fail500 and hang behave there as above; `held` answers like ok, except while held: after POST
/_hold, its requests wait (counted in /_log's "held") until POST /_release.

A stream request with "stream_options": {"include_usage": true} gets OpenAI's last chunk with the
usage (prompt_tokens 4, completion_tokens = the number of chunks) before [DONE], and, as OpenAI,
"usage":null on every other chunk. Whole answers
always carry a usage (3 in, 6 out; embeddings 1 in). The `cite` model (a grounded answer with [n]
markers) counts words instead: every word of the messages it was sent, and of its answer.

With "fake_json_stream": true, a stream request gets a plain JSON answer (an upstream that cannot
stream). With "fake_content_bytes": N, an `ok` answer's content (streamed: each event's) is `padding(N)`. Any answer is preceded by the interim (1xx) responses listed in the body's `fake_interim`, e.g.
[103, 100], each with a header, sent in one write with the start of the answer when possible.

A request whose path has a segment "early413" (a provider whose base_url ends in /early413/v1) is
refused from its head alone, as a server with a body size limit does: 413, the write side closed,
and after a moment the connection closed with the body still unread, which resets it.

Connections are kept alive (HTTP/1.1), unless the body's `fake_close` says otherwise: true or
"after" closes right after the answer, "next" reads the connection's next request and closes
without answering (an upstream whose idle timeout fired as a request was on its way), "reset" the
same with a TCP reset. Neither announces it with Connection: close.

Each connection is recorded (when it opened, when it closed, requests on it, whether it was the
gateway's rather than a /_ control connection, requests refused by fake_close, the TLS SNI name),
and so is each request (model, headers, body, connection). GET /_log returns them as JSON;
POST /_reset clears them.
Usage: fake_openai.py [--host ADDR] [--port N] [--tls-cert PEM --tls-key PEM] — prints "PORT <n>" on stdout once
it listens (the readiness line)."""
import argparse
import asyncio
import hashlib
import itertools
import json
import re
import socket
import ssl
import struct
import sys
import time

connections = {}   # id -> {"opened", "closed", "requests", "api", "dropped", "sni"}
requests = []
server_names = {}  # id(TLS object) -> the SNI name the client sent, until its connection is recorded
counters = {}
ids = itertools.count(1)
release = None     # an asyncio.Event while /_hold is in force
held = 0           # requests waiting on it


def now():
    return time.time()


def completion(model, content="Hello from the fake upstream."):
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(now()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 6, "total_tokens": 9}}


def cite_usage(body, answer):
    """The `cite` model's usage: prompt tokens are the words of every message sent, completion tokens
    the answer's, so that a test can tell what the prompt held."""
    prompt = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []) if isinstance(m, dict))
    out = len(answer.split())
    return {"prompt_tokens": prompt, "completion_tokens": out, "total_tokens": prompt + out}


def bag_of_words(text, dims):
    """A deterministic embedding: words hashed into `dims` signed buckets, so texts sharing words are near."""
    v = [0.0] * dims
    for w in re.findall(r"\w+", str(text).lower()):
        h = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=4).digest(), "little")
        v[h % dims] += 1.0 if h & 0x80000000 else -1.0
    return v


def padding(n):
    """n bytes of a pattern a test can check for cuts, repeats and reordering."""
    unit = "".join(f"{i:07x}," for i in range(n // 8 + 1))
    return unit[:n]


def chunk(model, i, content):
    return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(now()), "model": model,
            "sent_at": now(), "index": i,
            "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}]}


def head(status, ctype, extra=(), chunked=False, length=0):
    reason = {200: "OK", 400: "Bad Request", 413: "Content Too Large", 429: "Too Many Requests",
              500: "Internal Server Error", 404: "Not Found"}.get(status, "X")
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Type: {ctype}"]
    lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {length}")
    lines += list(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def send_json(writer, status, obj, extra=()):
    body = json.dumps(obj).encode()
    writer.write(head(status, "application/json", extra, length=len(body)) + body)
    await writer.drain()


async def send_event(writer, text):
    data = text.encode()
    writer.write(b"%x\r\n%s\r\n" % (len(data), data))
    await writer.drain()


async def stream(writer, model, body, chunks=None, delay_before=0.0):
    writer.write(head(200, "text/event-stream", chunked=True))
    await writer.drain()
    if delay_before:
        await asyncio.sleep(delay_before)
    n = chunks if chunks is not None else int(body.get("fake_chunks", 3))
    interval = body.get("fake_interval_ms", 0) / 1000.0
    include_usage = (body.get("stream_options") or {}).get("include_usage")
    for i in range(n):
        if i and interval:
            await asyncio.sleep(interval)
        content = padding(body["fake_content_bytes"]) if "fake_content_bytes" in body else f"tok{i} "
        c = chunk(model, i, content)
        if include_usage:   # as OpenAI, on every chunk, in its compact spelling
            c["usage"] = None
            await send_event(writer, "data: " + json.dumps(c, separators=(",", ":")) + "\n\n")
        else:
            await send_event(writer, "data: " + json.dumps(c) + "\n\n")
    if include_usage:   # OpenAI's last chunk: no choices, the usage
        usage = {"prompt_tokens": 4, "completion_tokens": n, "total_tokens": 4 + n}
        await send_event(writer, "data: " + json.dumps({"id": "chatcmpl-fake", "object": "chat.completion.chunk",
                                                        "model": model, "choices": [], "usage": usage}) + "\n\n")
    await send_event(writer, "data: [DONE]\n\n")
    writer.write(b"0\r\n\r\n")
    await writer.drain()


async def respond(path, body, writer):
    """Returns False when the connection must be closed afterwards."""
    global held
    model = body.get("model", "ok")
    is_stream = bool(body.get("stream"))
    for status in body.get("fake_interim", []):
        writer.write(f"HTTP/1.1 {status} Interim\r\nLink: </style.css>; rel=preload\r\n\r\n".encode())
    if path.endswith("/embeddings"):
        if model == "flaky":
            counters[model] = counters.get(model, 0) + 1
            model = "fail500" if counters[model] <= int(body.get("fake_fail", 1)) else "ok"
        if model == "fail500":
            await send_json(writer, 500, {"error": {"message": "fake failure", "type": "server_error", "code": None}})
            return True
        if model == "hang":
            await asyncio.Event().wait()
        if model == "held" and release is not None:
            held += 1
            try:
                await release.wait()
            finally:
                held -= 1
        inputs = body.get("input", "")
        inputs = inputs if isinstance(inputs, list) else [inputs]
        dims = int(body.get("dimensions", 8))
        await send_json(writer, 200, {"object": "list", "model": model, "usage": {"prompt_tokens": 1, "total_tokens": 1},
                                      "data": [{"object": "embedding", "index": i, "embedding": bag_of_words(t, dims)}
                                               for i, t in enumerate(inputs)]})
        return True
    if model == "flaky":
        counters[model] = counters.get(model, 0) + 1
        model = "fail500" if counters[model] <= int(body.get("fake_fail", 1)) else "ok"
    if model == "fail500":
        await send_json(writer, 500, {"error": {"message": "fake failure", "type": "server_error", "code": None}})
    elif model == "reject400":
        await send_json(writer, 400, {"error": {"message": "fake refusal", "type": "invalid_request_error",
                                                "code": None}})
    elif model == "fail429":
        await send_json(writer, 429, {"error": {"message": "slow down", "type": "rate_limit", "code": None}},
                        ["Retry-After: 1"])
    elif model == "hang":
        await asyncio.Event().wait()
    elif model == "slow":
        delay = body.get("fake_delay_ms", 2000) / 1000.0
        if is_stream:
            await stream(writer, model, body, delay_before=delay)
        else:
            await asyncio.sleep(delay)
            await send_json(writer, 200, completion(model))
    elif model == "silent":
        await stream(writer, model, body, delay_before=body.get("fake_delay_ms", 1000) / 1000.0)
    elif model == "drop":
        writer.write(head(200, "text/event-stream", chunked=True))
        for i in range(2):
            await send_event(writer, "data: " + json.dumps(chunk(model, i, f"tok{i} ")) + "\n\n")
        await asyncio.sleep(0.05)
        return False
    elif model == "cite":
        # A grounded answer (docs/rag.md): cites source 1, then 2 and a number no source has. Its
        # usage counts words: every word of every message it was sent in (the sources included),
        # and the answer's.
        words = "Honey bees make honey from nectar [1]. The moon pulls the tides [2, 9]."
        usage = cite_usage(body, words)
        if is_stream:
            writer.write(head(200, "text/event-stream", chunked=True))
            for i, w in enumerate(words.split(" ")):
                await send_event(writer, "data: " + json.dumps(chunk(model, i, w if i == 0 else " " + w)) + "\n\n")
            if (body.get("stream_options") or {}).get("include_usage"):
                await send_event(writer, "data: " + json.dumps({"id": "chatcmpl-fake", "object": "chat.completion.chunk",
                                                                "model": model, "choices": [], "usage": usage}) + "\n\n")
            await send_event(writer, "data: [DONE]\n\n")
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        else:
            await send_json(writer, 200, dict(completion(model, words), usage=usage))
    elif is_stream and not body.get("fake_json_stream"):
        await stream(writer, model, body)
    elif "fake_content_bytes" in body:
        await send_json(writer, 200, completion(model, padding(body["fake_content_bytes"])))
    else:
        await send_json(writer, 200, completion(model))
    return True


async def read_request(reader):
    line = await reader.readline()
    if not line:
        return None
    method, target, _ = line.decode().split(" ", 2)
    headers = {}
    while True:
        h = await reader.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        k, v = h.decode().split(":", 1)
        headers[k.strip().lower()] = v.strip()
    if "/early413/" in target:
        return method, target, headers, None   # refused before the body is read
    data = await reader.readexactly(int(headers.get("content-length", 0)))
    return method, target, headers, data


async def read_requests(reader, inbox):
    """The connection's only reader: every request in turn into `inbox`, then None when the peer
    closed (or sent something that is not HTTP). One reader for the connection's life means a
    request is never half-read by a task that was cancelled."""
    try:
        while (req := await read_request(reader)) is not None:
            await inbox.put(req)
            if req[3] is None:
                return   # the rest of the connection is left unread
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        pass
    await inbox.put(None)


async def answer(method, target, headers, body, cid, writer, inbox):
    """Answers one request while watching `inbox`: None there means the peer closed, and the answer
    is abandoned at once (the gateway cancelled). Returns (keep the connection?, a request that
    arrived meanwhile — pipelined — or None)."""
    requests.append({"connection": cid, "at": now(), "method": method, "path": target,
                     "headers": headers, "body": body})
    work = asyncio.ensure_future(respond(target, body, writer))
    peer = asyncio.ensure_future(inbox.get())
    done, _ = await asyncio.wait({work, peer}, return_when=asyncio.FIRST_COMPLETED)
    if peer in done and peer.result() is None:
        work.cancel()
        return False, None
    keep = await work
    if peer in done:
        return keep, peer.result()
    peer.cancel()   # Queue.get() gives up cleanly: an item put meanwhile stays queued
    return keep, None


async def handle(reader, writer):
    cid = next(ids)
    tls = writer.get_extra_info("ssl_object")
    conn = connections[cid] = {"id": cid, "opened": now(), "closed": None, "requests": 0, "api": False,
                               "dropped": 0, "sni": server_names.pop(id(tls), None) if tls else None}
    inbox = asyncio.Queue()
    reading = asyncio.ensure_future(read_requests(reader, inbox))
    close_on_next = None   # after a fake_close "next"/"reset" answer: how to refuse the next request
    try:
        req = await inbox.get()
        while req is not None:
            method, target, headers, data = req
            conn["requests"] += 1
            if target.startswith("/_"):
                await control(target, writer)
                req = await inbox.get()
                continue
            if close_on_next:
                # An upstream whose idle timeout fired as the request was on its way: it reads the
                # request and closes without a byte of answer (or resets).
                conn["dropped"] += 1
                if close_on_next == "reset":
                    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                                               struct.pack("ii", 1, 0))
                break
            conn["api"] = True
            if data is None:
                requests.append({"connection": cid, "at": now(), "method": method, "path": target,
                                 "headers": headers, "body": {}})
                await send_json(writer, 413, {"error": {"message": "request body too large",
                                                        "type": "invalid_request_error", "code": None}},
                                ["Connection: close"])
                writer.write_eof()
                await asyncio.sleep(0.2)
                break
            body = json.loads(data or b"{}")
            keep, req = await answer(method, target, headers, body, cid, writer, inbox)
            if not keep:
                break
            close = body.get("fake_close") or ("next" if body.get("model") == "closing" else None)
            if close in (True, "after"):
                break   # closes right after the answer, without a Connection: close
            close_on_next = close
            if req is None:
                req = await inbox.get()
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        pass
    finally:
        reading.cancel()
        conn["closed"] = now()
        writer.close()


async def control(target, writer):
    global release
    if target.startswith("/_log"):
        await send_json(writer, 200, {"connections": list(connections.values()), "requests": requests, "held": held})
    elif target.startswith("/_hold"):
        release = release or asyncio.Event()
        await send_json(writer, 200, {})
    elif target.startswith("/_release"):
        if release is not None:
            release.set()
        release = None
        await send_json(writer, 200, {})
    elif target.startswith("/_reset"):
        requests.clear()
        counters.clear()
        for k in [k for k, c in connections.items() if c["closed"]]:
            del connections[k]
        await send_json(writer, 200, {})
    else:
        await send_json(writer, 404, {})


def tls_context(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)

    def note_sni(tls, name, _ctx):
        server_names[id(tls)] = name
    ctx.sni_callback = note_sni
    return ctx


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--host", default="127.0.0.1", help="the address to listen on (a cluster test's host)")
    p.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate (chain)")
    p.add_argument("--tls-key", help="and this PEM key")
    args = p.parse_args()
    ctx = tls_context(args.tls_cert, args.tls_key) if args.tls_cert else None
    server = await asyncio.start_server(handle, args.host, args.port, ssl=ctx)
    print("PORT", server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
