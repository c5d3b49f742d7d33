// One turn's LLM call for an agent: plain (the gateway's attempts: targets, fallback, retries,
// breakers), or grounded in vector stores with citations when the agent names stores (or its model
// does), through the gateway's grounded path (Gateway::grounded_complete, rag/grounded_chat.cpp):
// the very one POST /v1/chat/completions takes for a grounded model, so that the two answer alike.
#pragma once

#include "app/agent/settings.hpp"
#include "app/gateway/completion.hpp"

#include <nlohmann/json.hpp>

namespace agente::agent {

struct Answer {
    gateway::CompletionResult completion;
    nlohmann::json citations;   // null: not grounded; a list (empty when nothing was cited) otherwise
};

// The stores an agent answers from: its own, else its model's; null when neither names any.
const app::Retrieval* retrieval_of(const AgentDef& agent, const gateway::ModelSettings& model);

// `body`: the upstream request without "model" (the agent's system prompt, the conversation, its
// params). Deltas to `on_delta` when it is not null.
asio::awaitable<Answer> answer_turn(gateway::Gateway& gw, const AgentDef& agent, const gateway::ModelSettings& model,
                                    nlohmann::json body, const gateway::DeltaCallback* on_delta);

}  // namespace agente::agent
