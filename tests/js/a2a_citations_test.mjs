// The official A2A client (@a2a-js/sdk, pinned in package-lock.json), unchanged, against an agent
// grounded in vector stores: the citations arrive where A2A v1.0 carries structured data, a Part
// whose content is `data`, after the reply's text; whole (the task's artifact, and GetTask's of the
// same task) and streamed (the last artifact update). Prints one JSON summary (the text and citations of each); exits 1 on a
// mismatch. Usage: AGENTE_BASE_URL=http://127.0.0.1:PORT AGENTE_API_KEY=sk-... node a2a_citations_test.mjs
import assert from "node:assert/strict";
import { Role, TaskState } from "@a2a-js/sdk";
import {
  ClientFactory,
  ClientFactoryOptions,
  JsonRpcTransportFactory,
  createAuthenticatingFetchWithRetry,
} from "@a2a-js/sdk/client";

const keyed = createAuthenticatingFetchWithRetry(fetch, {
  headers: async () => ({ Authorization: `Bearer ${process.env.AGENTE_API_KEY}` }),
  shouldRetryWithHeaders: async () => undefined,
});
const factory = new ClientFactory(
  ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
    transports: [new JsonRpcTransportFactory({ fetchImpl: keyed })],
  }),
);
const client = await factory.createFromUrl(process.env.AGENTE_BASE_URL);

function message(text) {
  return {
    messageId: `m-${Date.now()}-${Math.random()}`,
    contextId: "",
    taskId: "",
    role: Role.ROLE_USER,
    parts: [{ content: { $case: "text", value: text }, filename: "", mediaType: "" }],
    metadata: undefined,
    extensions: [],
    referenceTaskIds: [],
  };
}

const textOf = (parts) => parts.map((p) => (p.content?.$case === "text" ? p.content.value : "")).join("");
const citationsOf = (parts) => parts.filter((p) => p.content?.$case === "data").map((p) => p.content.value.citations);

const summary = {};
const sent = await client.sendMessage({ tenant: "", message: message("How do bees make honey?") });
assert.equal(sent.status.state, TaskState.TASK_STATE_COMPLETED, JSON.stringify(sent));
const parts = sent.artifacts[0].parts;
assert.equal(parts[1].mediaType, "application/json");
summary.sent = { text: textOf(parts), citations: citationsOf(parts) };

// GetTask answers the task as SendMessage did, its citations part included (from the task store).
const got = await client.getTask({ tenant: "", id: sent.id });
assert.equal(got.status.state, TaskState.TASK_STATE_COMPLETED, JSON.stringify(got));
summary.got = { text: textOf(got.artifacts[0].parts), citations: citationsOf(got.artifacts[0].parts) };

let text = "";
const updates = [];
for await (const event of client.sendMessageStream({ tenant: "", message: message("How do bees make honey?") })) {
  const { $case, value } = event.payload;
  if ($case !== "artifactUpdate") continue;
  text += textOf(value.artifact.parts);
  updates.push({ lastChunk: value.lastChunk, citations: citationsOf(value.artifact.parts) });
}
const last = updates[updates.length - 1];
assert.equal(last.lastChunk, true);
summary.streamed = { text, citations: last.citations };
console.log(JSON.stringify(summary));
