// JSON-RPC framing, message reading and A2A object building. Plain functions over JSON: all of it is
// unit-tested without a server.
#include "app/agent/protocol.hpp"

#include "app/json_text.hpp"

#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/uuid_io.hpp>

#include <chrono>
#include <cstdio>
#include <ctime>

namespace agente::agent {

namespace {

bool valid_id_type(const json& id) { return id.is_string() || id.is_number() || id.is_null(); }

json text_part(Dialect d, const std::string& text) {
    json p = json::object();
    if (d == Dialect::v03) p["kind"] = "text";
    p["text"] = text;
    return p;
}

// A2A's structured part: v1.0's Part with `data` (and its media type), v0.3's DataPart (kind "data",
// an object).
json data_part(Dialect d, json data) {
    json p = json::object();
    if (d == Dialect::v03) p["kind"] = "data";
    p["data"] = std::move(data);
    if (d == Dialect::v1) p["mediaType"] = "application/json";
    return p;
}

// The parts of a reply: its text, then its citations (when the agent is grounded) as structured data.
json reply_parts(Dialect d, const std::string& text, const json& citations) {
    json parts = json::array({text_part(d, text)});
    if (!citations.is_null()) parts.push_back(citations_part(d, citations));
    return parts;
}

// The text of a part in either shape: {"text": "..."} or {"kind": "text", "text": "..."}. Other
// kinds (files, data) carry no text for the model and are skipped.
std::optional<std::string> part_text(const json& part, std::string& out) {
    if (!part.is_object()) return "each part must be an object";
    if (part.contains("kind") && (!part["kind"].is_string())) return "a part's \"kind\" must be a string";
    std::string kind = part.value("kind", part.contains("text") ? "text" : "");
    if (kind != "text") return std::nullopt;
    if (!part.contains("text") || !part["text"].is_string()) return "a text part needs \"text\" (a string)";
    if (!out.empty()) out += "\n";
    out += part["text"].get<std::string>();
    return std::nullopt;
}

std::optional<std::string> parts_text(const json& parts, std::string& out) {
    if (!parts.is_array()) return "\"parts\" must be a list";
    for (auto& p : parts)
        if (auto e = part_text(p, out)) return e;
    return std::nullopt;
}

// "user", "ROLE_USER" → "user"; "agent", "assistant", "ROLE_AGENT" → "assistant".
std::optional<std::string> chat_role(const json& role) {
    if (!role.is_string()) return std::nullopt;
    std::string r = role.get<std::string>();
    if (r == "user" || r == "ROLE_USER") return "user";
    if (r == "agent" || r == "assistant" || r == "ROLE_AGENT") return "assistant";
    if (r == "system") return "system";
    return std::nullopt;
}

std::string string_field(const json& o, const char* camel, const char* snake) {
    for (const char* k : {camel, snake})
        if (o.contains(k) && o[k].is_string()) return o[k].get<std::string>();
    return {};
}

json skill_json(const Skill& s) {
    json j = {{"id", s.id}, {"name", s.name}, {"description", s.description}, {"tags", s.tags}};
    if (!s.examples.empty()) j["examples"] = s.examples;
    return j;
}

json skills_json(const AgentSettings& settings) {
    json out = json::array();
    for (auto& a : settings.agents) {
        if (a.skills.empty()) {
            out.push_back({{"id", a.id}, {"name", a.name}, {"description", a.description},
                           {"tags", json::array({"chat"})}});
            continue;
        }
        for (auto& s : a.skills) out.push_back(skill_json(s));
    }
    return out;
}

std::string interface_url(const AgentSettings& settings, const std::string& base_url) {
    return (settings.url.empty() ? base_url : settings.url) + std::string(rpc_path);
}

}  // namespace

std::variant<RpcCall, RpcError> parse_rpc(std::string_view body) {
    json j = parse_json(body);
    if (j.is_discarded()) return RpcError{rpc_code::parse_error, "Parse error", nullptr};
    if (!j.is_object()) return RpcError{rpc_code::invalid_request, "Invalid Request: expected a JSON-RPC object", nullptr};
    json id = j.contains("id") ? j["id"] : json(nullptr);
    if (!valid_id_type(id)) return RpcError{rpc_code::invalid_request, "Invalid Request: \"id\" must be a string, number or null", nullptr};
    if (!j.contains("jsonrpc") || j["jsonrpc"] != "2.0")
        return RpcError{rpc_code::invalid_request, "Invalid Request: \"jsonrpc\" must be \"2.0\"", id};
    if (!j.contains("method") || !j["method"].is_string())
        return RpcError{rpc_code::invalid_request, "Invalid Request: \"method\" (a string) is required", id};
    json params = j.contains("params") ? j["params"] : json(nullptr);
    if (!params.is_null() && !params.is_object() && !params.is_array())
        return RpcError{rpc_code::invalid_request, "Invalid Request: \"params\" must be an object or a list", id};
    return RpcCall{id, j["method"].get<std::string>(), params};
}

std::string rpc_result(const json& id, const json& result) {
    return json_text(json{{"jsonrpc", "2.0"}, {"id", id}, {"result", result}});
}

std::string rpc_error(const json& id, int code, std::string_view message, const json& data) {
    json err = {{"code", code}, {"message", message}};
    if (!data.is_null()) err["data"] = data;
    return json_text(json{{"jsonrpc", "2.0"}, {"id", id}, {"error", err}});
}

namespace {

// One pass of nlohmann's SAX parser that builds nothing (a tree of a large body costs ten times its
// size and seconds of the worker's loop) and reads the top-level "id" as parse_rpc's tree does: when
// the member comes twice, the last one counts (nlohmann keeps the last), and a value that is no valid
// id (an object, an array, a boolean) is no id. So it reads on to the end or the first error; stopping
// at the first "id" made an answer echo another id than the full parse on a body with two.
class IdFinder final : public nlohmann::json_sax<json> {
public:
    json id = nullptr;

    bool start_object(std::size_t) override { return enter(true); }
    bool start_array(std::size_t) override { return enter(false); }
    bool end_object() override { return leave(); }
    bool end_array() override { return leave(); }
    bool key(string_t& k) override {
        at_id_ = depth_ == 1 && k == "id";
        return true;
    }
    bool null() override { return scalar(nullptr); }
    bool boolean(bool b) override { return scalar(b); }
    bool number_integer(number_integer_t n) override { return scalar(n); }
    bool number_unsigned(number_unsigned_t n) override { return scalar(n); }
    bool number_float(number_float_t n, const string_t&) override { return scalar(n); }
    bool string(string_t& v) override { return scalar(std::move(v)); }
    bool binary(binary_t&) override { return true; }
    bool parse_error(std::size_t, const std::string&, const nlohmann::json::exception&) override { return false; }

private:
    // Only a top-level object has an id; an object or array as the id's value is no id.
    bool enter(bool object) {
        if (depth_ == 0 && !object) return false;
        if (at_id_) {
            id = nullptr;
            at_id_ = false;
        }
        ++depth_;
        return true;
    }
    bool leave() {
        --depth_;
        return true;
    }
    // The id's value is built (the last one counts); any other value is passed over without a copy.
    template <typename T>
    bool scalar(T&& v) {
        if (at_id_) {
            json value(std::forward<T>(v));
            id = nullptr;
            if (valid_id_type(value)) id = std::move(value);
            at_id_ = false;
        }
        return depth_ > 0;  // a top-level scalar has no id
    }

    int depth_ = 0;
    bool at_id_ = false;
};

}  // namespace

json rpc_id(std::string_view body, std::size_t within) {
    IdFinder finder;
    json::sax_parse(body.substr(0, within), &finder, json::input_format_t::json, false);
    return finder.id;
}

Method method_of(std::string_view name, Dialect& dialect) {
    dialect = Dialect::v1;
    if (name == "execute") return Method::execute;
    if (name == "SendMessage") return Method::send;
    if (name == "SendStreamingMessage") return Method::stream;
    if (name == "GetTask") return Method::get;
    if (name == "CancelTask") return Method::cancel;
    dialect = Dialect::v03;
    if (name == "message/send") return Method::send;
    if (name == "message/stream") return Method::stream;
    if (name == "tasks/get") return Method::get;
    if (name == "tasks/cancel") return Method::cancel;
    // A2A methods this agent does not offer (its card says so): their own error codes.
    if (name.find("PushNotificationConfig") != std::string_view::npos || name.rfind("tasks/pushNotificationConfig/", 0) == 0)
        return Method::push_config;
    for (std::string_view m : {"SubscribeToTask", "ListTasks", "GetExtendedAgentCard", "tasks/resubscribe",
                               "tasks/list", "agent/getAuthenticatedExtendedCard"})
        if (name == m) return Method::unsupported;
    return Method::unknown;
}

std::optional<std::string> read_messages(const json& messages, std::vector<ChatMessage>& out) {
    if (!messages.is_array() || messages.empty()) return "\"messages\" must be a non-empty list";
    for (auto& m : messages) {
        if (!m.is_object()) return "each message must be an object";
        auto role = chat_role(m.contains("role") ? m["role"] : json());
        if (!role) return "a message's \"role\" must be \"user\" or \"agent\" (or \"assistant\", \"system\")";
        if (m.contains("kind") && m["kind"] != "message") return "a message's \"kind\" must be \"message\"";
        ChatMessage c{*role, {}};
        if (m.contains("parts")) {
            if (auto e = parts_text(m["parts"], c.content)) return e;
        } else if (m.contains("content") && m["content"].is_string()) {
            c.content = m["content"].get<std::string>();
        } else {
            return "a message needs \"parts\" (or \"content\", a string)";
        }
        out.push_back(std::move(c));
    }
    return std::nullopt;
}

std::optional<std::string> read_a2a_message(const json& message, IncomingMessage& out) {
    if (!message.is_object()) return "\"message\" (an object) is required";
    auto role = chat_role(message.contains("role") ? message["role"] : json());
    if (!role || *role == "system") return "\"message.role\" must be \"ROLE_USER\" (or \"user\")";
    if (!message.contains("parts")) return "\"message.parts\" is required";
    out.chat.role = *role;
    if (auto e = parts_text(message["parts"], out.chat.content)) return e;
    if (out.chat.content.empty()) return "\"message.parts\" has no text part";
    out.message_id = string_field(message, "messageId", "message_id");
    out.context_id = string_field(message, "contextId", "context_id");
    out.task_id = string_field(message, "taskId", "task_id");
    if (auto e = id_problem("message.messageId", out.message_id)) return e;
    if (auto e = id_problem("message.contextId", out.context_id)) return e;
    return id_problem("message.taskId", out.task_id);
}

std::optional<std::string> id_problem(std::string_view field, std::string_view id) {
    if (id.size() > max_id_length)
        return "\"" + std::string(field) + "\" is longer than " + std::to_string(max_id_length) + " bytes";
    for (unsigned char c : id)
        if (c < 0x20 || c == 0x7f) return "\"" + std::string(field) + "\" has a control character";
    return std::nullopt;
}

// getrandom(2) for every id: whoever knows a context id reads and continues its conversation, so
// it must not be predictable from other ids (mt19937_64 is, from 312 outputs).
std::string new_id() {
    thread_local boost::uuids::random_generator generate;
    return boost::uuids::to_string(generate());
}

std::string now_iso8601() {
    auto now = std::chrono::system_clock::now();
    std::time_t t = std::chrono::system_clock::to_time_t(now);
    int ms = int(std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char s[80];
    std::snprintf(s, sizeof s, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
    return s;
}

std::string_view state_name(TaskState s, Dialect d) {
    bool v1 = d == Dialect::v1;
    switch (s) {
    case TaskState::submitted: return v1 ? "TASK_STATE_SUBMITTED" : "submitted";
    case TaskState::working: return v1 ? "TASK_STATE_WORKING" : "working";
    case TaskState::completed: return v1 ? "TASK_STATE_COMPLETED" : "completed";
    case TaskState::failed: return v1 ? "TASK_STATE_FAILED" : "failed";
    case TaskState::canceled: return v1 ? "TASK_STATE_CANCELED" : "canceled";
    }
    return "";
}

std::optional<TaskState> parse_state(std::string_view stored) {
    for (TaskState s : {TaskState::submitted, TaskState::working, TaskState::completed, TaskState::failed,
                        TaskState::canceled})
        if (state_name(s, Dialect::v03) == stored) return s;
    return std::nullopt;
}

json citations_part(Dialect d, const json& citations) { return data_part(d, json{{"citations", citations}}); }

json execute_result(const std::string& text, const std::string& context_id, const json& citations) {
    return json{{"kind", "message"}, {"messageId", new_id()}, {"role", "agent"}, {"contextId", context_id},
                {"parts", reply_parts(Dialect::v03, text, citations)}};
}

json agent_message(Dialect d, const std::string& text, const std::string& context_id, const std::string& task_id) {
    json m = json::object();
    if (d == Dialect::v03) m["kind"] = "message";
    m["messageId"] = new_id();
    m["role"] = d == Dialect::v1 ? "ROLE_AGENT" : "agent";
    m["parts"] = json::array({text_part(d, text)});
    m["contextId"] = context_id;
    if (!task_id.empty()) m["taskId"] = task_id;
    return m;
}

json task_object(Dialect d, const std::string& id, const std::string& context_id, TaskState state,
                 const std::string& reply, const std::string& timestamp, const json& citations) {
    json status = {{"state", state_name(state, d)}, {"timestamp", timestamp}};
    json t = json::object();
    if (d == Dialect::v03) t["kind"] = "task";
    t["id"] = id;
    t["contextId"] = context_id;
    if (state == TaskState::failed && !reply.empty()) status["message"] = agent_message(d, reply, context_id, id);
    t["status"] = status;
    if (state == TaskState::completed || (state == TaskState::canceled && !reply.empty())) {
        json artifact = {{"artifactId", id + "-reply"}, {"name", "reply"}, {"parts", reply_parts(d, reply, citations)}};
        t["artifacts"] = json::array({artifact});
    }
    return t;
}

json send_result(Dialect d, json task) {
    if (d == Dialect::v03) return task;
    return json{{"task", std::move(task)}};
}

json stream_task_event(Dialect d, json task) { return send_result(d, std::move(task)); }

json status_update_event(Dialect d, const std::string& task_id, const std::string& context_id, TaskState state,
                         bool final, const std::string& message_text) {
    json status = {{"state", state_name(state, d)}, {"timestamp", now_iso8601()}};
    if (!message_text.empty()) status["message"] = agent_message(d, message_text, context_id, task_id);
    json e = {{"taskId", task_id}, {"contextId", context_id}, {"status", status}};
    if (d == Dialect::v1) return json{{"statusUpdate", e}};
    e["kind"] = "status-update";
    e["final"] = final;
    return e;
}

json artifact_update_event(Dialect d, const std::string& task_id, const std::string& context_id,
                           const std::string& artifact_id, const std::string& text, bool append, bool last_chunk) {
    return artifact_parts_event(d, task_id, context_id, artifact_id, json::array({text_part(d, text)}), append, last_chunk);
}

json artifact_parts_event(Dialect d, const std::string& task_id, const std::string& context_id,
                          const std::string& artifact_id, json parts, bool append, bool last_chunk) {
    json artifact = {{"artifactId", artifact_id}, {"name", "reply"}, {"parts", std::move(parts)}};
    json e = {{"taskId", task_id}, {"contextId", context_id}, {"artifact", artifact}, {"append", append},
              {"lastChunk", last_chunk}};
    if (d == Dialect::v1) return json{{"artifactUpdate", e}};
    e["kind"] = "artifact-update";
    return e;
}

json agent_card(const AgentSettings& s, const std::string& base_url) {
    std::string url = interface_url(s, base_url);
    json card = {
        {"name", s.name},
        {"description", s.description},
        {"version", s.version},
        {"supportedInterfaces", json::array({{{"url", url}, {"protocolBinding", "JSONRPC"}, {"protocolVersion", "1.0"}},
                                             {{"url", url}, {"protocolBinding", "JSONRPC"}, {"protocolVersion", "0.3"}}})},
        {"capabilities", {{"streaming", true}, {"pushNotifications", false}, {"extendedAgentCard", false}}},
        {"defaultInputModes", json::array({"text/plain"})},
        {"defaultOutputModes", json::array({"text/plain"})},
        {"skills", skills_json(s)},
    };
    if (!s.organization.empty()) card["provider"] = {{"organization", s.organization}, {"url", s.organization_url}};
    return card;
}

json legacy_agent_card(const AgentSettings& s, const std::string& base_url) {
    json card = {
        {"name", s.name},
        {"description", s.description},
        {"version", s.version},
        {"url", interface_url(s, base_url)},
        {"protocolVersion", "0.3.0"},
        {"preferredTransport", "JSONRPC"},
        {"capabilities", {{"streaming", true}, {"pushNotifications", false}, {"stateTransitionHistory", false}}},
        {"defaultInputModes", json::array({"text/plain"})},
        {"defaultOutputModes", json::array({"text/plain"})},
        {"skills", skills_json(s)},
    };
    if (!s.organization.empty()) card["provider"] = {{"organization", s.organization}, {"url", s.organization_url}};
    return card;
}

}  // namespace agente::agent
