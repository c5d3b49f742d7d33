// Reading and checking [agent] and [agents.ID]. Every error names the line of the offending value.
#include "app/agent/settings.hpp"

#include "app/common/state_dir.hpp"
#include "app/settings_reader.hpp"

#include <agente/config.hpp>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <toml++/toml.h>

#include <cstdlib>
#include <set>
#include <sstream>

namespace agente::agent {

namespace {

using namespace agente::app;


// TOML values as JSON, for an agent's params (numbers, strings, booleans, lists, tables).
nlohmann::json to_json(const toml::node& n, const std::string& file, const std::string& path) {
    if (auto* v = n.as_string()) return v->get();
    if (auto* v = n.as_integer()) return v->get();
    if (auto* v = n.as_floating_point()) return v->get();
    if (auto* v = n.as_boolean()) return v->get();
    if (auto* a = n.as_array()) {
        nlohmann::json j = nlohmann::json::array();
        for (auto&& e : *a) j.push_back(to_json(e, file, path));
        return j;
    }
    if (auto* t = n.as_table()) {
        nlohmann::json j = nlohmann::json::object();
        for (auto&& [k, v] : *t) j[std::string(k.str())] = to_json(v, file, path + "." + std::string(k.str()));
        return j;
    }
    fail(file, n, path, "dates and times are not allowed here, got " + show(n));
}

bool valid_id(std::string_view id) {
    if (id.empty() || id.size() > 64) return false;
    for (char c : id)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') return false;
    return true;
}

const std::set<std::string> agent_keys{"name", "description", "version", "url", "organization", "organization_url",
                                       "default_agent", "request_deadline", "state_dir", "max_contexts",
                                       "max_messages", "max_context_bytes", "max_tasks", "busy_timeout"};
std::set<std::string> agent_def_keys() {
    std::set<std::string> keys = retrieval_keys();
    keys.insert({"name", "description", "model", "system_prompt", "params", "skills"});
    return keys;
}
const std::set<std::string> skill_keys{"id", "name", "description", "tags", "examples"};

AgentSettings read_agent(const toml::table& t, const std::string& file) {
    const std::string prefix = "agent.";
    check_keys(t, file, prefix, agent_keys);
    AgentSettings s;
    s.name = get_string(t, file, prefix, "name", s.name, true);
    s.description = get_string(t, file, prefix, "description", s.description);
    s.version = get_string(t, file, prefix, "version", s.version, true);
    s.url = get_string(t, file, prefix, "url");
    if (!s.url.empty() && s.url.rfind("http://", 0) != 0 && s.url.rfind("https://", 0) != 0)
        fail(file, *t.get("url"), prefix + "url", "expected an http:// or https:// URL, got \"" + s.url + "\"");
    while (!s.url.empty() && s.url.back() == '/') s.url.pop_back();
    s.organization = get_string(t, file, prefix, "organization");
    s.organization_url = get_string(t, file, prefix, "organization_url");
    s.default_agent = get_string(t, file, prefix, "default_agent");
    s.request_deadline = get_seconds(t, file, prefix, "request_deadline", s.request_deadline, 0.05, 3600);
    s.state_dir = get_string(t, file, prefix, "state_dir", s.state_dir, true);
    s.max_contexts = int(get_int(t, file, prefix, "max_contexts", s.max_contexts, 1, 100'000'000));
    s.max_messages = int(get_int(t, file, prefix, "max_messages", s.max_messages, 2, 100'000));
    s.max_context_bytes = get_int(t, file, prefix, "max_context_bytes", s.max_context_bytes, 1024, 1L << 30);
    s.max_tasks = int(get_int(t, file, prefix, "max_tasks", s.max_tasks, 1, 100'000'000));
    s.busy_timeout = get_seconds(t, file, prefix, "busy_timeout", s.busy_timeout, 0.001, 60);
    return s;
}

Skill read_skill(const toml::node& n, const std::string& file, const std::string& path) {
    const toml::table* t = n.as_table();
    if (!t) fail(file, n, path, "expected a table { id, name, description, tags, examples }, got " + show(n));
    const std::string prefix = path + ".";
    check_keys(*t, file, prefix, skill_keys);
    Skill s;
    s.id = get_string(*t, file, prefix, "id");
    if (!valid_id(s.id)) fail(file, n, prefix + "id", "expected an id of letters, digits, '-', '_' or '.'");
    s.name = get_string(*t, file, prefix, "name", s.id);
    s.description = get_string(*t, file, prefix, "description", s.name);
    s.tags = get_strings(*t, file, prefix, "tags");
    s.examples = get_strings(*t, file, prefix, "examples");
    return s;
}

std::vector<AgentDef> read_agents(const toml::table& section, const std::string& file) {
    std::vector<AgentDef> out;
    for (auto&& [k, v] : section) {
        std::string id(k.str());
        std::string prefix = "agents." + id + ".";
        const toml::table* t = v.as_table();
        if (!t) fail(file, v, "agents." + id, "expected a table [agents." + id + "]");
        if (!valid_id(id)) fail(file, v, "agents." + id, "an agent id is letters, digits, '-', '_' or '.'");
        check_keys(*t, file, prefix, agent_def_keys());
        AgentDef a;
        a.id = id;
        a.name = get_string(*t, file, prefix, "name", id, true);
        a.description = get_string(*t, file, prefix, "description", a.name);
        const toml::node* model = t->get("model");
        if (!model) fail(file, *t, prefix + "model", "required: a public model name of the gateway ([models.\"NAME\"])");
        a.model = get_string(*t, file, prefix, "model", {}, true);
        a.system_prompt = get_string(*t, file, prefix, "system_prompt");
        a.retrieval = read_retrieval(*t, file, prefix);
        if (const toml::node* p = t->get("params")) {
            if (!p->is_table()) fail(file, *p, prefix + "params", "expected a table of request fields, got " + show(*p));
            nlohmann::json j = to_json(*p, file, prefix + "params");
            for (const char* reserved : {"model", "messages", "stream"})
                if (j.contains(reserved))
                    fail(file, *p, prefix + "params", std::string("\"") + reserved + "\" is set by the agent itself");
            a.params_json = j.dump();
        }
        if (const toml::node* sk = t->get("skills")) {
            const toml::array* arr = sk->as_array();
            if (!arr) fail(file, *sk, prefix + "skills", "expected a list of { id, name, description } tables");
            for (auto&& e : *arr) a.skills.push_back(read_skill(e, file, prefix + "skills"));
        }
        out.push_back(std::move(a));
    }
    return out;
}

}  // namespace

const AgentDef* AgentSettings::agent(const std::string& id) const {
    for (auto& a : agents)
        if (a.id == id) return &a;
    return nullptr;
}

const AgentDef* AgentSettings::default_one() const {
    if (!default_agent.empty()) return agent(default_agent);
    return agents.empty() ? nullptr : &agents.front();
}

void validate_agent_section(const toml::table& section, const std::string& file) { read_agent(section, file); }

// The core hands a validator its own table only; an agent's model lives in the gateway's [models].
// So the master's check re-reads the file (already parsed fine once) for the cross-check, and an
// agent naming a model the gateway does not serve refuses the start or the reload, at its line.
void validate_agents_section(const toml::table& section, const std::string& file) {
    std::vector<AgentDef> agents = read_agents(section, file);
    toml::table whole;
    try {
        whole = toml::parse_file(file);
    } catch (const toml::parse_error&) {
        return;   // not a file we can read again (a test's name): the worker checks at boot
    }
    const toml::table* models = whole.get_as<toml::table>("models");
    for (auto& a : agents)
        if (!models || !models->get(a.model))
            fail(file, *section.get_as<toml::table>(a.id)->get("model"), "agents." + a.id + ".model",
                 "unknown model \"" + a.model + "\" (add a [models.\"" + a.model + "\"] table)");
}

AgentSettings load_agent_settings(const toml::table& app, const std::string& file, bool check_models) {
    AgentSettings s;
    const toml::table* agent = app.get_as<toml::table>("agent");
    if (agent) s = read_agent(*agent, file);
    if (const toml::table* agents = app.get_as<toml::table>("agents")) s.agents = read_agents(*agents, file);
    if (!s.default_agent.empty() && !s.agent(s.default_agent))
        fail(file, *agent->get("default_agent"), "agent.default_agent",
             "no [agents." + s.default_agent + "] table defines that agent");
    // Every agent's model must be one the gateway serves.
    const toml::table* models = app.get_as<toml::table>("models");
    const toml::table* agents = app.get_as<toml::table>("agents");
    for (auto& a : s.agents)
        if (check_models && (!models || !models->get(a.model))) {
            const toml::node* at = agents->get_as<toml::table>(a.id)->get("model");
            fail(file, *at, "agents." + a.id + ".model",
                 "unknown model \"" + a.model + "\" (add a [models.\"" + a.model + "\"] table)");
        }
    return s;
}

AgentSettings worker_agent_settings(const Config& config) {
    try {
        return load_agent_settings(*config.app, config.app_source);
    } catch (const ConfigError& e) {
        spdlog::error("agent: {}", e.what());
        return load_agent_settings(*config.app, config.app_source, false);
    }
}

std::string state_directory(const AgentSettings& settings) { return app::state_directory(settings.state_dir); }

}  // namespace agente::agent
