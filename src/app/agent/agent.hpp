// The agent endpoints, on top of the LLM gateway: the A2A agent cards, JSON-RPC on /tasks/send (the
// seed's "execute" and A2A's SendMessage, SendStreamingMessage, GetTask, CancelTask, v1.0 and v0.3
// names), and the NDJSON stream POST /agent/stream/{agent_id}. docs/agent.md tells the whole story.
#pragma once

#include <agente/app.hpp>

#include <memory>
#include <string>

namespace toml { inline namespace v3 { class table; } }

namespace agente::gateway { struct Gateway; }

namespace agente::agent {

// register_app_section() validators of [agent] and [agents.ID].
void validate_agent_section(const toml::table& section, const std::string& file);
void validate_agents_section(const toml::table& section, const std::string& file);

// A worker: reads the settings, opens its connection to the shared context store (on a thread of
// its own), and adds the routes; LLM calls go through the worker's gateway `gw` (its pool, its
// views of the shared breakers and stream limit).
void add_agent_routes(Router& router, const WorkerContext& context, std::shared_ptr<gateway::Gateway> gw);

}  // namespace agente::agent
