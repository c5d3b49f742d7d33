// The agent's wire formats: JSON-RPC 2.0 framing, the seed's "execute" messages, and A2A objects in
// both dialects a client may speak (v1.0: "SendMessage", ROLE_USER, TASK_STATE_COMPLETED, parts
// {text}; v0.3: "message/send", kind/role/parts with "kind": "text"), plus the agent cards.
#pragma once

#include "app/agent/settings.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace agente::agent {

using nlohmann::json;

// JSON-RPC 2.0 error codes, and A2A's.
namespace rpc_code {
inline constexpr int parse_error = -32700;
inline constexpr int invalid_request = -32600;
inline constexpr int method_not_found = -32601;
inline constexpr int invalid_params = -32602;
inline constexpr int internal_error = -32603;
inline constexpr int timeout = -32000;               // the seed's: the request deadline passed
inline constexpr int task_not_found = -32001;        // A2A TaskNotFoundError
inline constexpr int task_not_cancelable = -32002;   // A2A TaskNotCancelableError
inline constexpr int push_not_supported = -32003;    // A2A PushNotificationNotSupportedError
inline constexpr int unsupported_operation = -32004; // A2A UnsupportedOperationError
// No valid client key (HTTP 401). A2A leaves authentication to HTTP and has no code for it; this one
// is of JSON-RPC's implementation-defined range, clear of the codes A2A uses.
inline constexpr int unauthorized = -32090;
// The LLM call failed or could not start: JSON-RPC's internal error, the HTTP status the gateway
// would have answered in data.http_status. (A2A reserves -32001 and up for its own errors.)
inline constexpr int upstream_error = internal_error;
}  // namespace rpc_code

struct RpcCall {
    json id;            // string, number or null (a notification is answered all the same)
    std::string method;
    json params;        // object or array; null when absent
};

struct RpcError {
    int code;
    std::string message;
    json id;            // echoed when the request got far enough to have one
};

std::variant<RpcCall, RpcError> parse_rpc(std::string_view body);
std::string rpc_result(const json& id, const json& result);
std::string rpc_error(const json& id, int code, std::string_view message, const json& data = nullptr);
// The id of a request body, for answers made without a full parse (a refused key, a stopped
// handler): null when there is none or it is no valid id, or when it does not come within the
// first `within` bytes (JSON-RPC answers null when the id cannot be told). Read without building a
// tree, and a repeated "id" reads as its first.
json rpc_id(std::string_view body, std::size_t within = std::string_view::npos);

enum class Method { execute, send, stream, get, cancel, push_config, unsupported, unknown };
enum class Dialect { v1, v03 };
// "SendMessage" and "message/send" alike; the dialect says which shapes to answer in.
Method method_of(std::string_view name, Dialect& dialect);

struct ChatMessage {
    std::string role;       // OpenAI's: "user", "assistant", "system"
    std::string content;
};

// The seed's params.messages ([{kind, role, parts: [{kind, text}]}]), or OpenAI-style
// [{role, content}] (the NDJSON endpoint's). Returns what is wrong, or nothing.
std::optional<std::string> read_messages(const json& messages, std::vector<ChatMessage>& out);

// An A2A message (v1.0 or v0.3 shape): its text, context and task ids. Returns what is wrong.
struct IncomingMessage {
    ChatMessage chat;
    std::string message_id;
    std::string context_id;
    std::string task_id;
};
std::optional<std::string> read_a2a_message(const json& message, IncomingMessage& out);

// Ids a client chooses (context, task and message ids) are stored, looked up and logged: at most
// max_id_length bytes and no control characters. What is wrong with `id`, named `field`, or nothing.
inline constexpr std::size_t max_id_length = 128;
std::optional<std::string> id_problem(std::string_view field, std::string_view id);

std::string new_id();       // a random UUID (v4) from the OS's CSPRNG: a context id is a capability
std::string now_iso8601();  // "2026-11-23T17:00:00.123Z"

enum class TaskState { submitted, working, completed, failed, canceled };
std::string_view state_name(TaskState s, Dialect d);
std::optional<TaskState> parse_state(std::string_view stored);   // the names store.cpp keeps (v0.3's)

// A grounded agent's citations (docs/rag.md's objects) as A2A structured data: a Part with `data`
// {"citations": [...]} (v1.0, media type application/json), a DataPart (v0.3). A2A puts structured
// results in data parts; a reply's parts are its text, then this one when the agent is grounded.
json citations_part(Dialect d, const json& citations);

// The reply of "execute": a v0.3-shaped agent message, as the seed's clients read it. `citations`
// null: the agent is not grounded, the message has its text part only.
json execute_result(const std::string& text, const std::string& context_id, const json& citations = nullptr);

json agent_message(Dialect d, const std::string& text, const std::string& context_id, const std::string& task_id);
// A completed task's artifact "reply" holds the text, and the citations part when `citations` is
// not null.
json task_object(Dialect d, const std::string& id, const std::string& context_id, TaskState state,
                 const std::string& reply, const std::string& timestamp, const json& citations = nullptr);
// SendMessage's result: v1.0 wraps the task ({"task": ...}); v0.3 is the task itself.
json send_result(Dialect d, json task);
// Stream events. v1.0 wraps each ({"task"}, {"statusUpdate"}, {"artifactUpdate"}); v0.3 tags it.
json stream_task_event(Dialect d, json task);
json status_update_event(Dialect d, const std::string& task_id, const std::string& context_id, TaskState state,
                         bool final, const std::string& message_text);
json artifact_update_event(Dialect d, const std::string& task_id, const std::string& context_id,
                           const std::string& artifact_id, const std::string& text, bool append, bool last_chunk);
// The same with any parts (a stream's last update: the citations part).
json artifact_parts_event(Dialect d, const std::string& task_id, const std::string& context_id,
                          const std::string& artifact_id, json parts, bool append, bool last_chunk);

// The cards. `base_url` is where clients reach us ("http://127.0.0.1:8000").
json agent_card(const AgentSettings& settings, const std::string& base_url);          // A2A v1.0
json legacy_agent_card(const AgentSettings& settings, const std::string& base_url);   // the seed's agent.json (v0.3)

inline constexpr std::string_view rpc_path = "/tasks/send";

}  // namespace agente::agent
