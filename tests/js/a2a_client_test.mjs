// The official A2A client (@a2a-js/sdk, pinned in package-lock.json), unchanged, against the agent:
// ClientFactory fetches /.well-known/agent-card.json and picks the JSON-RPC interface it declares,
// then a message is sent whole and streamed, the task read back, and a slow task cancelled.
// Prints one JSON summary; exits 1 on any mismatch.
// Usage: AGENTE_BASE_URL=http://127.0.0.1:PORT AGENTE_SLOW_AGENT=slow node a2a_client_test.mjs
import assert from "node:assert/strict";
import { Role, TaskState } from "@a2a-js/sdk";
import { ClientFactory } from "@a2a-js/sdk/client";

const base = process.env.AGENTE_BASE_URL;
const summary = {};

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

const factory = new ClientFactory();
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

console.log(JSON.stringify(summary));
