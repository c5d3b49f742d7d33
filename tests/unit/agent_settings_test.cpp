// [agent] and [agents.ID]: values read, and every error naming server.conf's file:line.
#include "app/agent/settings.hpp"

#include <agente/config.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace agente::agent {
namespace {

toml::table parse(std::string_view text) { return toml::parse(text, std::string_view("server.conf")); }

std::string error_of(std::string_view text) {
    toml::table t = parse(text);
    try {
        if (auto* a = t.get_as<toml::table>("agent")) validate_agent_section(*a, "server.conf");
        if (auto* a = t.get_as<toml::table>("agents")) validate_agents_section(*a, "server.conf");
        load_agent_settings(t, "server.conf");
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "";
}

constexpr std::string_view good = R"(
[models."kimi-k2"]
targets = []

[agent]
name = "Studly"
url = "https://agents.example.com/"
request_deadline = 5.5
max_contexts = 200
default_agent = "planner"

[agents.chat]
model = "kimi-k2"

[agents.planner]
name = "Planner"
model = "kimi-k2"
system_prompt = "Plan."
vector_stores = ["handbook"]
max_sources = 3
params = { temperature = 0.3, max_tokens = 500 }
skills = [{ id = "plan", name = "Plans", tags = ["study"], examples = ["Help me learn Python"] }]
)";

TEST(AgentSettings, ReadsBothTables) {
    auto s = load_agent_settings(parse(good), "server.conf");
    EXPECT_EQ(s.name, "Studly");
    EXPECT_EQ(s.url, "https://agents.example.com");
    EXPECT_EQ(s.request_deadline.count(), 5500);
    EXPECT_EQ(s.max_contexts, 200);
    EXPECT_EQ(s.max_messages, 50);
    ASSERT_EQ(s.agents.size(), 2u);
    ASSERT_NE(s.default_one(), nullptr);
    EXPECT_EQ(s.default_one()->id, "planner");
    const AgentDef* p = s.agent("planner");
    EXPECT_EQ(p->skills[0].examples[0], "Help me learn Python");
    auto params = nlohmann::json::parse(p->params_json);
    EXPECT_EQ(params["max_tokens"], 500);
    EXPECT_EQ(s.agent("chat")->name, "chat");
    // The same retrieval settings as a [models."NAME"] (app/common/retrieval.hpp).
    EXPECT_EQ(p->retrieval.vector_stores, (std::vector<std::string>{"handbook"}));
    EXPECT_EQ(p->retrieval.max_sources, 3);
    EXPECT_EQ(p->retrieval.retrieval_turns, 4);
    EXPECT_FALSE(s.agent("chat")->retrieval.grounded());
}

TEST(AgentSettings, Defaults) {
    auto s = load_agent_settings(parse(""), "server.conf");
    EXPECT_EQ(s.request_deadline.count(), 6000);   // the seed's hard limit
    EXPECT_EQ(s.max_contexts, 1000);               // the seed's max_contexts
    EXPECT_EQ(s.state_dir, "./var");
    EXPECT_EQ(s.max_context_bytes, 512 * 1024);
    EXPECT_EQ(s.default_one(), nullptr);
}

TEST(AgentSettings, ErrorsNameFileAndLine) {
    EXPECT_EQ(error_of("[agent]\nmax_contexts = 0\n"), "server.conf:2: agent.max_contexts: expected 1..100000000, got 0");
    EXPECT_EQ(error_of("[agent]\n\nrequest_deadline = \"6\"\n"),
              "server.conf:3: agent.request_deadline: expected seconds (a number), got '6'");
    EXPECT_EQ(error_of("[agent]\nmax_context = 3\n"), "server.conf:2: agent.max_context: unknown setting");
    EXPECT_EQ(error_of("[agent]\nmax_context_bytes = 10\n"),
              "server.conf:2: agent.max_context_bytes: expected 1024..1073741824, got 10");
    EXPECT_EQ(error_of("[agent]\nurl = \"example.com\"\n"),
              "server.conf:2: agent.url: expected an http:// or https:// URL, got \"example.com\"");
    EXPECT_EQ(error_of("[agents.a]\nname = \"x\"\n"),
              "server.conf:1: agents.a.model: required: a public model name of the gateway ([models.\"NAME\"])");
    EXPECT_EQ(error_of("[agents.a]\nmodel = \"m\"\nparams = { stream = true }\n"),
              "server.conf:3: agents.a.params: \"stream\" is set by the agent itself");
    EXPECT_EQ(error_of("[agents.a]\nmodel = \"m\"\nskills = [{ id = \"bad id\" }]\n"),
              "server.conf:3: agents.a.skills.id: expected an id of letters, digits, '-', '_' or '.'");
    EXPECT_EQ(error_of("[agents.a]\nmodel = \"m\"\nvector_stores = \"handbook\"\n"),
              "server.conf:3: agents.a.vector_stores: expected a list of strings, got 'handbook'");
    EXPECT_EQ(error_of("[agents.a]\nmodel = \"m\"\nretrieval_turns = 51\n"),
              "server.conf:3: agents.a.retrieval_turns: expected 0..50, got 51");
    EXPECT_EQ(error_of("[models.m]\ntargets = []\n[agents.a]\nmodel = \"nope\"\n"),
              "server.conf:4: agents.a.model: unknown model \"nope\" (add a [models.\"nope\"] table)");
    EXPECT_EQ(error_of("[models.m]\ntargets = []\n[agent]\ndefault_agent = \"b\"\n[agents.a]\nmodel = \"m\"\n"),
              "server.conf:4: agent.default_agent: no [agents.b] table defines that agent");
}

TEST(AgentSettings, StateDirectoryPrefersSystemds) {
    AgentSettings s;
    s.state_dir = "/srv/agent";
    ::unsetenv("STATE_DIRECTORY");
    EXPECT_EQ(state_directory(s), "/srv/agent");
    ::setenv("STATE_DIRECTORY", "/var/lib/agente:/var/lib/other", 1);
    EXPECT_EQ(state_directory(s), "/var/lib/agente");
    ::unsetenv("STATE_DIRECTORY");
}

}  // namespace
}  // namespace agente::agent

namespace agente::agent {
namespace {

// config/server.conf's commented [agent] and [agents.ID] example, uncommented, must load (with the
// gateway's example models it names).
TEST(AgentSettings, ExampleConfigLoads) {
    auto example = std::filesystem::path(AGENTE_SOURCE_DIR) / "config/server.conf";
    std::ifstream in(example);
    ASSERT_TRUE(in) << "no " << example;
    std::string text, line;
    bool in_agent = false, in_models = false;
    while (std::getline(in, line)) {
        if (line.rfind("# [models.", 0) == 0) in_models = true;
        if (line.rfind("# [agent]", 0) == 0) in_agent = true;
        if (line.rfind("# ---- The agent", 0) == 0) in_models = false;
        if (in_agent && line.rfind("# ---- ", 0) == 0) break;  // the next section is not the agent's
        if ((in_agent || in_models) && line.rfind("# ", 0) == 0) text += line.substr(2) + "\n";
        else if (in_models && line == "#") text += "\n";
    }
    toml::table t = toml::parse(text, std::string_view("server.conf"));
    AgentSettings s = load_agent_settings(t, "server.conf");
    ASSERT_NE(s.agent("studly"), nullptr) << text;
    EXPECT_EQ(s.agent("studly")->model, "gemini-flash");
    EXPECT_EQ(s.agent("studly")->skills.at(0).examples.at(0), "Help me learn Python");
    EXPECT_EQ(s.request_deadline.count(), 6000);
    EXPECT_EQ(s.max_contexts, 1000);
}

}  // namespace
}  // namespace agente::agent
