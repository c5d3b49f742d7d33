// One worker's agent service and what its route families share: the settings, the gateway view
// (shared breakers and stream limit), the store thread, the tasks running on this worker (task id →
// the timer whose cancellation stops them), the store calls made off the loop, and the small JSON
// builders every family answers with. JSON is built in plain functions: g++ 12 miscompiles braced
// initializer lists inside coroutine bodies.
#pragma once

#include "app/agent/answer.hpp"
#include "app/agent/protocol.hpp"
#include "app/agent/settings.hpp"
#include "app/agent/store_access.hpp"
#include "app/common/log_limit.hpp"
#include "app/gateway/gateway.hpp"

#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace agente::agent {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// How often a worker running tasks looks for cancel requests other workers stored for them, and
// how long a CancelTask for another worker's task waits to see it canceled.
constexpr auto cancel_poll_interval = std::chrono::milliseconds(100);
constexpr auto remote_cancel_wait = std::chrono::milliseconds(2000);

// A store that cannot answer (its database down) fails every request: anyone who can send one can
// cause these lines, so at most this many per window per worker; the count of the others follows.
constexpr int store_log_burst = 5;
constexpr auto store_log_window = std::chrono::seconds(10);

struct Service {
    AgentSettings settings;
    app::LogLimit store_log{store_log_burst, store_log_window};
    std::shared_ptr<gateway::Gateway> gw;
    std::unique_ptr<StoreAccess> store;
    asio::any_io_executor executor;
    std::unordered_map<std::string, std::shared_ptr<asio::steady_timer>> running;
    bool watching = false;
};

// Removes a task from the running map however its handler ends. A handler stopped from outside
// (the deadline, the client gone, draining) never reaches its own bookkeeping: the task is recorded
// as failed here, so GetTask does not report it working forever.
struct RunningTask {
    Service& s;
    std::string id;
    std::string context_id;
    std::shared_ptr<asio::steady_timer> cancel;
    bool recorded = false;   // the handler stored the final state itself
    RunningTask(Service& svc, std::string task_id, std::string context)
        : s(svc), id(std::move(task_id)), context_id(std::move(context)) {
        cancel = std::make_shared<asio::steady_timer>(s.executor, Clock::time_point::max());
        s.running[id] = cancel;
    }
    ~RunningTask();
    RunningTask(const RunningTask&) = delete;
    RunningTask& operator=(const RunningTask&) = delete;
};

// Completes when the task's timer is cancelled (CancelTask), never otherwise.
asio::awaitable<void> cancelled(std::shared_ptr<asio::steady_timer> t);

// ---- Small builders (outside coroutines) ----------------------------------------------------------

Response rpc_response(int status, std::string body, bool close = false);
Response rpc_failure(const json& id, int code, std::string_view message, int status = 200, const json& data = nullptr);
// The seed's plain error body, as the NDJSON stream answers before it starts.
inline Response plain_error(int status, std::string_view message) { return Response::error(status, message); }

// The conversation store cannot answer (its database down, its file unwritable): a turn without
// its history would be a wrong answer, and one not stored would be lost, so the request is refused
// before the LLM is called; the client may try again. The log has the reason.
constexpr std::string_view store_unavailable = "conversation store unavailable: try again later";

Response rpc_store_unavailable(const json& id);

// The upstream request: the system prompt, the stored conversation, the new messages, the agent's
// extra fields.
json completion_body(const AgentDef& agent, const std::vector<ChatMessage>& history, const std::vector<ChatMessage>& fresh);
std::vector<ChatMessage> with_reply(std::vector<ChatMessage> fresh, const std::string& reply);
// `citations`: a grounded task's (null: none), kept for GetTask.
StoredTask stored(const std::string& id, const std::string& context_id, TaskState state, const std::string& reply,
                  const json& citations = nullptr);
json task_from_store(Dialect d, const StoredTask& t);
// The first of the keys `a`, `b` that params has as a string; "" for none.
std::string param_string(const json& params, const char* a, const char* b);

const AgentDef* agent_for(Service& s, const json& params);
const gateway::ModelSettings* model_of(Service& s, const AgentDef& a);

// ---- The store, off the loop: failures logged (rate-limited) and answered as nothing -------------

asio::awaitable<std::optional<std::vector<ChatMessage>>> load_history(Service& s, std::string context_id);
asio::awaitable<bool> save_turn(Service& s, std::string context_id, std::vector<ChatMessage> messages);
asio::awaitable<bool> save_task(Service& s, StoredTask task);
asio::awaitable<std::optional<StoredTask>> find_task(Service& s, std::string id, bool& failed);
// Starts looking for cancel requests other workers stored for the tasks running here, while any runs.
void ensure_watcher(const std::shared_ptr<Service>& s);

}  // namespace agente::agent
