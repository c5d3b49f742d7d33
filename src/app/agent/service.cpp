// The agent service's shared pieces: the task bookkeeping, the small builders, and the store, off
// the loop.
#include "app/agent/service.hpp"

#include "app/json_text.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <spdlog/spdlog.h>

namespace agente::agent {

asio::awaitable<void> cancelled(std::shared_ptr<asio::steady_timer> t) {
    co_await t->async_wait(asio::as_tuple(asio::use_awaitable));
}

Response rpc_response(int status, std::string body, bool close) {
    Response r = Response::json(status, std::move(body));
    r.close = close;
    return r;
}

Response rpc_failure(const json& id, int code, std::string_view message, int status, const json& data) {
    return rpc_response(status, rpc_error(id, code, message, data));
}

Response rpc_store_unavailable(const json& id) {
    return rpc_failure(id, rpc_code::internal_error, "Service unavailable: " + std::string(store_unavailable), 503,
                       json{{"http_status", 503}});
}

json completion_body(const AgentDef& agent, const std::vector<ChatMessage>& history, const std::vector<ChatMessage>& fresh) {
    json body = json::parse(agent.params_json);
    json messages = json::array();
    if (!agent.system_prompt.empty()) messages.push_back({{"role", "system"}, {"content", agent.system_prompt}});
    for (auto* list : {&history, &fresh})
        for (auto& m : *list) messages.push_back({{"role", m.role}, {"content", m.content}});
    body["messages"] = std::move(messages);
    return body;
}

std::vector<ChatMessage> with_reply(std::vector<ChatMessage> fresh, const std::string& reply) {
    fresh.push_back({"assistant", reply});
    return fresh;
}

StoredTask stored(const std::string& id, const std::string& context_id, TaskState state, const std::string& reply,
                  const json& citations) {
    std::string kept;
    if (!citations.is_null()) kept = json_text(citations);
    return {id, context_id, std::string(state_name(state, Dialect::v03)), reply, now_iso8601(), false, std::move(kept)};
}

RunningTask::~RunningTask() {
    s.running.erase(id);
    if (recorded) return;
    StoredTask t = stored(id, context_id, TaskState::failed, "interrupted: the request deadline passed or the client left");
    s.store->put_task_later(t);
}

json task_from_store(Dialect d, const StoredTask& t) {
    TaskState st = parse_state(t.state).value_or(TaskState::failed);
    json citations;   // null unless the task kept some
    if (!t.citations.empty()) citations = parse_json(t.citations);
    if (citations.is_discarded()) citations = nullptr;
    return task_object(d, t.id, t.context_id, st, t.reply, t.updated, citations);
}

std::string param_string(const json& params, const char* a, const char* b) {
    if (!params.is_object()) return {};
    for (const char* k : {a, b})
        if (k && params.contains(k) && params[k].is_string()) return params[k].get<std::string>();
    return {};
}

// ---- The store, off the loop ------------------------------------------------------------------------

void log_store_error(Service& s, const std::string& what, const std::exception& e) {
    auto d = s.store_log.admit(app::LogLimit::Clock::now());
    if (d.left_out) spdlog::error("agent: {} more store errors in the last {} s were not logged", d.left_out,
                                  store_log_window.count());
    if (d.log) spdlog::error("agent: {}: {}", what, e.what());
}

asio::awaitable<std::optional<std::vector<ChatMessage>>> load_history(Service& s, std::string context_id) {
    try {
        auto messages = co_await s.store->history(context_id);
        co_return messages;
    } catch (const std::exception& e) {
        log_store_error(s, "reading context " + context_id, e);
    }
    co_return std::nullopt;
}

asio::awaitable<bool> save_turn(Service& s, std::string context_id, std::vector<ChatMessage> messages) {
    try {
        co_await s.store->append(context_id, std::move(messages));
        co_return true;
    } catch (const std::exception& e) {
        log_store_error(s, "saving context " + context_id, e);
    }
    co_return false;
}

asio::awaitable<bool> save_task(Service& s, StoredTask task) {
    try {
        co_await s.store->put_task(std::move(task));
        co_return true;
    } catch (const std::exception& e) {
        log_store_error(s, "saving task", e);
    }
    co_return false;
}

asio::awaitable<std::optional<StoredTask>> find_task(Service& s, std::string id, bool& failed) {
    failed = false;
    try {
        auto task = co_await s.store->get_task(id);
        co_return task;
    } catch (const std::exception& e) {
        log_store_error(s, "reading task " + id, e);
    }
    failed = true;
    co_return std::nullopt;
}

// While tasks run here, looks for cancel requests other workers stored for them.
asio::awaitable<void> watch_cancel_requests(std::shared_ptr<Service> s) {
    asio::steady_timer tick(s->executor);
    while (!s->running.empty()) {
        tick.expires_after(cancel_poll_interval);
        co_await tick.async_wait(asio::use_awaitable);
        std::vector<std::string> ids;
        for (auto& [id, _] : s->running) ids.push_back(id);
        if (ids.empty()) break;
        std::vector<std::string> wanted;
        try {
            wanted = co_await s->store->cancel_requests(ids);
        } catch (const std::exception& e) {
            spdlog::warn("agent: polling cancel requests: {}", e.what());
        }
        for (auto& id : wanted)
            if (auto it = s->running.find(id); it != s->running.end()) it->second->cancel();
    }
    s->watching = false;
}

void ensure_watcher(const std::shared_ptr<Service>& s) {
    if (s->watching) return;
    s->watching = true;
    asio::co_spawn(s->executor, watch_cancel_requests(s), [s](std::exception_ptr e) {
        s->watching = false;
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& x) {
            spdlog::warn("agent: cancel watcher stopped: {}", x.what());
        }
    });
}

const AgentDef* agent_for(Service& s, const json& params) {
    std::string id = param_string(params, "agent_id", "agentId");
    // A2A clients put it in the request's or the message's metadata.
    auto from_metadata = [](const json& holder) {
        return holder.is_object() && holder.contains("metadata") && holder["metadata"].is_object()
                   ? param_string(holder["metadata"], "agent_id", "agentId")
                   : std::string();
    };
    if (id.empty()) id = from_metadata(params);
    if (id.empty() && params.is_object() && params.contains("message")) id = from_metadata(params["message"]);
    return id.empty() ? s.settings.default_one() : s.settings.agent(id);
}

const gateway::ModelSettings* model_of(Service& s, const AgentDef& a) { return s.gw->settings.model(a.model); }

}  // namespace agente::agent
