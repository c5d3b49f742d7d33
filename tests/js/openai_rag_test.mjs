// The official openai client, unchanged, against the files and vector stores API: upload, create a
// store, attach and poll (createAndPoll, uploadAndPoll, file batches), search with and without
// filters, delete. Prints one JSON summary; exits 1 on any mismatch.
// Usage: AGENTE_BASE_URL=http://127.0.0.1:PORT/v1 AGENTE_API_KEY=... node openai_rag_test.mjs
import assert from "node:assert/strict";
import OpenAI, { toFile } from "openai";

const client = new OpenAI({ baseURL: process.env.AGENTE_BASE_URL, apiKey: process.env.AGENTE_API_KEY, maxRetries: 0 });
const summary = {};
const docs = {
  "bees.md": "# Bees\n\nHoney bees live in hives and make honey from the nectar of flowers.\n",
  "rust.md": "# Rust\n\nRust is a systems programming language with ownership and borrowing.\n",
  "tides.md": "# Tides\n\nOcean tides rise and fall twice a day, pulled by the gravity of the moon.\n",
};
const asFile = (name) => toFile(Buffer.from(docs[name]), name, { type: "text/markdown" });

const bees = await client.files.create({ file: await asFile("bees.md"), purpose: "assistants" });
assert.equal(bees.object, "file");
assert.equal(bees.filename, "bees.md");
const store = await client.vectorStores.create({ name: "js" });
assert.equal(store.object, "vector_store");

const started = Date.now();
const attached = await client.vectorStores.files.createAndPoll(store.id, { file_id: bees.id, attributes: { topic: "bees" } });
assert.equal(attached.status, "completed");
const uploaded = await client.vectorStores.files.uploadAndPoll(store.id, await asFile("rust.md"));
assert.equal(uploaded.status, "completed");
const batch = await client.vectorStores.fileBatches.uploadAndPoll(store.id, { files: [await asFile("tides.md")] });
assert.equal(batch.status, "completed");
assert.equal(batch.file_counts.completed, 1);
summary.poll_ms = Date.now() - started;   // the server's openai-poll-after-ms, not the client's 5 s default

const hits = await client.vectorStores.search(store.id, { query: "how do bees make honey", max_num_results: 2 });
assert.equal(hits.data[0].filename, "bees.md");
summary.top = hits.data[0].filename;
const filtered = await client.vectorStores.search(store.id, {
  query: "gravity of the moon",
  filters: { type: "eq", key: "topic", value: "bees" },
});
assert.deepEqual(filtered.data.map((d) => d.filename), ["bees.md"]);
summary.filtered = filtered.data.length;

const listed = await client.vectorStores.files.list(store.id);
assert.equal(listed.data.length, 3);
assert.equal((await client.vectorStores.files.del(store.id, bees.id)).deleted, true);
assert.equal((await client.files.del(bees.id)).deleted, true);
await assert.rejects(client.files.retrieve(bees.id), OpenAI.NotFoundError);
assert.equal((await client.vectorStores.del(store.id)).deleted, true);
await assert.rejects(client.vectorStores.retrieve(store.id), OpenAI.NotFoundError);
const stranger = new OpenAI({ baseURL: process.env.AGENTE_BASE_URL, apiKey: "wrong", maxRetries: 0 });
await assert.rejects(stranger.vectorStores.list(), OpenAI.AuthenticationError);
summary.deleted = "ok";

console.log(JSON.stringify(summary));
