// The official A2A client (@a2a-js/sdk, pinned in package-lock.json), unchanged, against the agent:
// ClientFactory fetches /.well-known/agent-card.json and picks the JSON-RPC interface it declares,
// then a message is sent whole and streamed, the task read back, and a slow task cancelled; and the
// same client with its v0.3 compatibility on reads the seed's /.well-known/agent.json and talks v0.3.
// The client key goes in an Authorization header, through the SDK's own authenticating fetch.
// Prints one JSON summary; exits 1 on any mismatch.
// Usage: AGENTE_BASE_URL=http://127.0.0.1:PORT AGENTE_SLOW_AGENT=slow AGENTE_API_KEY=sk-... node a2a_client_test.mjs
import assert from "node:assert/strict";
import { Role, TaskState } from "@a2a-js/sdk";
import {
  ClientFactory,
  ClientFactoryOptions,
  DefaultAgentCardResolver,
  JsonRpcTransportFactory,
  createAuthenticatingFetchWithRetry,
} from "@a2a-js/sdk/client";

const base = process.env.AGENTE_BASE_URL;
const summary = {};
const keyed = createAuthenticatingFetchWithRetry(fetch, {
  headers: async () => (process.env.AGENTE_API_KEY ? { Authorization: `Bearer ${process.env.AGENTE_API_KEY}` } : {}),
  shouldRetryWithHeaders: async () => undefined,
});

function message(text, contextId = "", metadata = undefined) {
  return {
    messageId: `m-${Date.now()}-${Math.random()}`,
    contextId,
    taskId: "",
    role: Role.ROLE_USER,
    parts: [{ content: { $case: "text", value: text }, filename: "", mediaType: "" }],
    metadata,
    extensions: [],
    referenceTaskIds: [],
  };
}

function textOf(parts) {
  return parts.map((p) => (p.content?.$case === "text" ? p.content.value : "")).join("");
}

const factory = new ClientFactory(
  ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
    transports: [new JsonRpcTransportFactory({ fetchImpl: keyed })],
  }),
);
const client = await factory.createFromUrl(base);
summary.protocol = client.protocolVersion ?? null;

// Whole.
const sent = await client.sendMessage({ tenant: "", message: message("Help me learn Python") });
assert.equal(sent.status.state, TaskState.TASK_STATE_COMPLETED, JSON.stringify(sent));
assert.equal(textOf(sent.artifacts[0].parts), "Hello from the fake upstream.");
summary.sent = { id: sent.id, contextId: sent.contextId, text: textOf(sent.artifacts[0].parts) };

const got = await client.getTask({ tenant: "", id: sent.id });
assert.equal(got.id, sent.id);
assert.equal(got.status.state, TaskState.TASK_STATE_COMPLETED);

// Streamed, continuing the same context.
const kinds = [];
let streamed = "";
let last = null;
for await (const event of client.sendMessageStream({ tenant: "", message: message("And then?", sent.contextId) })) {
  const { $case, value } = event.payload;
  kinds.push($case);
  if ($case === "artifactUpdate") streamed += textOf(value.artifact.parts);
  if ($case === "statusUpdate") last = value.status.state;
  if ($case === "task") assert.equal(value.contextId, sent.contextId);
}
assert.equal(streamed, "tok0 tok1 tok2 ");
assert.equal(last, TaskState.TASK_STATE_COMPLETED);
assert.equal(kinds[0], "task");
summary.streamed = { kinds, text: streamed };

// Cancel a slow task from a second call while its stream is open.
const slow = client.sendMessageStream({
  tenant: "",
  message: message("Plan a whole semester", "", { agent_id: process.env.AGENTE_SLOW_AGENT }),
});
const first = await slow.next();
assert.equal(first.value.payload.$case, "task");
const taskId = first.value.payload.value.id;
const t0 = Date.now();
const cancelled = await client.cancelTask({ tenant: "", id: taskId });
assert.equal(cancelled.status.state, TaskState.TASK_STATE_CANCELED, JSON.stringify(cancelled));
let finalState = null;
for await (const event of slow) {
  if (event.payload.$case === "statusUpdate") finalState = event.payload.value.status.state;
}
assert.equal(finalState, TaskState.TASK_STATE_CANCELED);
summary.cancelled = { id: taskId, ms: Date.now() - t0 };

// A task that does not exist: the client raises A2A's TaskNotFound.
let notFound = null;
try {
  await client.getTask({ tenant: "", id: "no-such-task" });
} catch (e) {
  notFound = e.constructor.name + ": " + e.message;
}
assert.ok(notFound, "getTask of an unknown id must fail");
summary.notFound = notFound;

// v0.3: the seed's card, message/send and message/stream through the SDK's legacy transport.
const legacyFactory = new ClientFactory({
  transports: [new JsonRpcTransportFactory({ legacyCompat: { enabled: true }, fetchImpl: keyed })],
  cardResolver: new DefaultAgentCardResolver({ legacyCompat: { enabled: true } }),
});
const legacy = await legacyFactory.createFromUrl(base, "/.well-known/agent.json");
const legacySent = await legacy.sendMessage({ tenant: "", message: message("Hi over v0.3") });
assert.equal(legacySent.status.state, TaskState.TASK_STATE_COMPLETED, JSON.stringify(legacySent));
assert.equal(textOf(legacySent.artifacts[0].parts), "Hello from the fake upstream.");
let legacyStreamed = "";
let legacyLast = null;
for await (const event of legacy.sendMessageStream({ tenant: "", message: message("Stream over v0.3") })) {
  const { $case, value } = event.payload;
  if ($case === "artifactUpdate") legacyStreamed += textOf(value.artifact.parts);
  if ($case === "statusUpdate") legacyLast = value.status.state;
}
assert.equal(legacyStreamed, "tok0 tok1 tok2 ");
assert.equal(legacyLast, TaskState.TASK_STATE_COMPLETED);
summary.legacy = { protocol: legacy.protocolVersion ?? null, text: textOf(legacySent.artifacts[0].parts), streamed: legacyStreamed };

console.log(JSON.stringify(summary));
