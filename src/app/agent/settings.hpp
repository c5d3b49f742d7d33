// The agent's settings: [agent] (the card, the defaults, the conversation store) and [agents.ID]
// (one table per agent) of server.conf. Validation errors name server.conf's file:line.
#pragma once

#include "app/common/retrieval.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace toml { inline namespace v3 { class table; } }

namespace agente { struct Config; }

namespace agente::agent {

using std::chrono::milliseconds;

struct Skill {
    std::string id;
    std::string name;
    std::string description;
    std::vector<std::string> tags;
    std::vector<std::string> examples;
};

struct AgentDef {
    std::string id;                     // [agents.ID]; the {agent_id} of /agent/stream/{agent_id}
    std::string name;
    std::string description;
    std::string model;                  // a public model name of the gateway ([models."NAME"])
    std::string system_prompt;
    std::string params_json = "{}";     // extra fields of the upstream request (temperature, max_tokens...)
    // Answers grounded in these vector stores, with citations, as a [models."NAME"] with the same
    // keys (docs/agent.md); none: the model's own (grounded when it names stores), else plain.
    app::Retrieval retrieval;
    std::vector<Skill> skills;
};

struct AgentSettings {
    // The card.
    std::string name = "agente-hibrido";
    std::string description = "An A2A agent in front of an OpenAI-compatible LLM gateway";
    std::string version = "1.0.0";
    std::string url;                    // the public base URL; "": from the request's Host and scheme
    std::string organization;           // provider.organization of the card; "": no provider
    std::string organization_url;
    std::string default_agent;          // the agent /tasks/send talks to; "": the first [agents.ID] by name

    // Requests.
    milliseconds request_deadline{6000};   // the seed's 6 s hard limit on /tasks/send

    // Conversation contexts.
    std::string state_dir = "./var";    // $STATE_DIRECTORY wins when set
    int max_contexts = 1000;            // the seed's max_contexts; least recently used evicted
    int max_messages = 50;              // per context; the oldest dropped
    // Bytes of one context's stored messages; the oldest dropped. 512 KiB is about 128k tokens of
    // English, the context window of most models: a longer history would be refused upstream anyway.
    long max_context_bytes = 512 * 1024;
    int max_tasks = 10000;              // A2A tasks kept for GetTask; the oldest dropped
    milliseconds busy_timeout{2000};    // SQLite's wait for another worker's write lock

    std::vector<AgentDef> agents;

    const AgentDef* agent(const std::string& id) const;
    const AgentDef* default_one() const;
};

// Section validators for register_app_section(): each throws ConfigError(file, line, ...).
void validate_agent_section(const toml::table& section, const std::string& file);
void validate_agents_section(const toml::table& section, const std::string& file);

// Both tables from the app tables (either may be absent). With check_models, an agent whose model
// is not one of the gateway's [models."NAME"] is an error naming its line.
AgentSettings load_agent_settings(const toml::table& app, const std::string& file, bool check_models = true);

// A worker's settings from the configuration the master accepted. A model the gateway does not serve
// is logged, not fatal: the master accepted the tables one by one, and the agent answers errors for
// that agent rather than keeping the worker from booting.
AgentSettings worker_agent_settings(const Config& config);

// The database directory: $STATE_DIRECTORY (its first entry) when set, else state_dir.
std::string state_directory(const AgentSettings& settings);

}  // namespace agente::agent
