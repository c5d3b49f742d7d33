// The official openai client, unchanged, against the gateway: whole and streamed chat completions,
// models, embeddings, and OpenAI's error classes. Prints one JSON summary; exits 1 on any mismatch.
// Usage: AGENTE_BASE_URL=http://127.0.0.1:PORT/v1 AGENTE_API_KEY=... AGENTE_MODEL=... node openai_client_test.mjs
import assert from "node:assert/strict";
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.env.AGENTE_BASE_URL, apiKey: process.env.AGENTE_API_KEY, maxRetries: 0 });
const model = process.env.AGENTE_MODEL;
const summary = {};

const whole = await client.chat.completions.create({ model, messages: [{ role: "user", content: "hi" }] });
assert.equal(whole.choices[0].message.content, "Hello from the fake upstream.");
summary.whole = whole.choices[0].message.content;

const stream = await client.chat.completions.create({ model, stream: true, messages: [{ role: "user", content: "hi" }] });
let text = "";
let chunks = 0;
for await (const chunk of stream) {
  chunks += 1;
  text += chunk.choices[0]?.delta?.content ?? "";
}
assert.equal(text, "tok0 tok1 tok2 ");
summary.streamed = { chunks, text };

const models = await client.models.list();
summary.models = models.data.map((m) => m.id);
assert.ok(summary.models.includes(model));

const emb = await client.embeddings.create({ model, input: ["a", "b"] });
assert.equal(emb.data.length, 2);
summary.embeddings = emb.data.length;

await assert.rejects(client.chat.completions.create({ model: "no-such-model", messages: [] }), OpenAI.NotFoundError);
const stranger = new OpenAI({ baseURL: process.env.AGENTE_BASE_URL, apiKey: "wrong", maxRetries: 0 });
await assert.rejects(stranger.models.list(), OpenAI.AuthenticationError);
summary.errors = "ok";

console.log(JSON.stringify(summary));
