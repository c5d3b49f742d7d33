// The agent's HTTP surface. Each worker has its own Service: settings, a gateway view (shared
// breakers and stream limit), the store thread, and the tasks running on this worker (task id →
// the timer whose cancellation stops them). JSON is built in plain functions: g++ 12 miscompiles
// braced initializer lists inside coroutine bodies.
#include "app/agent/agent.hpp"

#include "app/agent/base_url.hpp"
#include "app/agent/protocol.hpp"
#include "app/agent/settings.hpp"
#include "app/agent/store_access.hpp"
#include "app/gateway/completion.hpp"
#include "app/gateway/errors.hpp"
#include "app/gateway/gateway.hpp"
#include "app/gateway/sse.hpp"
#include "app/json_text.hpp"

#include <agente/config.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>
#include <toml++/toml.h>

#include <unordered_map>

namespace agente::agent {

namespace {

using namespace boost::asio::experimental::awaitable_operators;
using gateway::CompletionResult;
using Clock = std::chrono::steady_clock;

// How often a worker running tasks looks for cancel requests other workers stored for them, and
// how long a CancelTask for another worker's task waits to see it canceled.
constexpr auto cancel_poll_interval = std::chrono::milliseconds(100);
constexpr auto remote_cancel_wait = std::chrono::milliseconds(2000);

struct Service {
    AgentSettings settings;
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
asio::awaitable<void> cancelled(std::shared_ptr<asio::steady_timer> t) {
    co_await t->async_wait(asio::as_tuple(asio::use_awaitable));
}

// ---- Small builders (outside coroutines) ----------------------------------------------------------

Response rpc_response(int status, std::string body, bool close = false) {
    Response r = Response::json(status, std::move(body));
    r.close = close;
    return r;
}

Response rpc_failure(const json& id, int code, std::string_view message, int status = 200, const json& data = nullptr) {
    return rpc_response(status, rpc_error(id, code, message, data));
}

int http_status_of_rpc(int code) {
    return code == rpc_code::parse_error || code == rpc_code::invalid_request ? 400 : 200;
}

std::string base_url_of(const Request& r) { return base_url_from_host(r.scheme(), r.header("Host")); }

std::string ndjson(const json& event) { return json_text(event) + "\n"; }

json ndjson_start(const std::string& agent_id, const std::string& context_id, const std::string& model) {
    return {{"type", "start"}, {"agent_id", agent_id}, {"context_id", context_id}, {"model", model},
            {"timestamp", now_iso8601()}};
}
json ndjson_content(std::string_view delta) { return {{"type", "content"}, {"content", delta}}; }
json ndjson_done(const std::string& context_id, const std::string& text) {
    return {{"type", "done"}, {"context_id", context_id}, {"content", text}, {"timestamp", now_iso8601()}};
}
json ndjson_error(std::string_view message, int status) {
    return {{"type", "error"}, {"error", message}, {"status", status}, {"timestamp", now_iso8601()}};
}

std::string sse(const json& id, const json& result) { return gateway::data_event(rpc_result(id, result)); }
std::string sse_error(const json& id, int code, std::string_view message) {
    return gateway::data_event(rpc_error(id, code, message));
}

Response plain_error(int status, std::string_view message) { return Response::error(status, message); }

// The stream limit is full, as a JSON-RPC error for /tasks/send (A2A clients read the body as one).
Response rpc_too_many_streams(const json& id, const gateway::Gateway& gw) {
    auto shape = [&id](int status, std::string_view message) {
        return rpc_failure(id, rpc_code::upstream_error, message, status, json{{"http_status", status}});
    };
    return gateway::streams_full(shape, gw.limiter.max());
}

// The upstream request: the system prompt, the stored conversation, the new messages, the agent's
// extra fields.
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

// Small conversions kept out of coroutine bodies, where g++ 12 mishandles conditional expressions
// and initializer lists of class type.
std::vector<ChatMessage> past_of(const std::optional<std::vector<ChatMessage>>& history) {
    return history ? *history : std::vector<ChatMessage>();
}
std::vector<ChatMessage> just(const ChatMessage& m) { return std::vector<ChatMessage>{m}; }
template <class Outcome>
CompletionResult result_of(const Outcome& outcome) {
    return outcome.index() == 1 ? CompletionResult{} : std::get<0>(outcome);
}

StoredTask stored(const std::string& id, const std::string& context_id, TaskState state, const std::string& reply) {
    return {id, context_id, std::string(state_name(state, Dialect::v03)), reply, now_iso8601(), false};
}

RunningTask::~RunningTask() {
    s.running.erase(id);
    if (recorded) return;
    StoredTask t = stored(id, context_id, TaskState::failed, "interrupted: the request deadline passed or the client left");
    s.store->put_task_later(t);
}

json task_from_store(Dialect d, const StoredTask& t) {
    TaskState st = parse_state(t.state).value_or(TaskState::failed);
    return task_object(d, t.id, t.context_id, st, t.reply, t.updated);
}

std::string param_string(const json& params, const char* a, const char* b) {
    if (!params.is_object()) return {};
    for (const char* k : {a, b})
        if (k && params.contains(k) && params[k].is_string()) return params[k].get<std::string>();
    return {};
}

// ---- The store, off the loop ------------------------------------------------------------------------

asio::awaitable<std::optional<std::vector<ChatMessage>>> load_history(Service& s, std::string context_id) {
    try {
        auto messages = co_await s.store->history(context_id);
        co_return messages;
    } catch (const std::exception& e) {
        spdlog::error("agent: reading context {}: {}", context_id, e.what());
    }
    co_return std::nullopt;
}

asio::awaitable<bool> save_turn(Service& s, std::string context_id, std::vector<ChatMessage> messages) {
    try {
        co_await s.store->append(context_id, std::move(messages));
        co_return true;
    } catch (const std::exception& e) {
        spdlog::error("agent: saving context {}: {}", context_id, e.what());
    }
    co_return false;
}

asio::awaitable<bool> save_task(Service& s, StoredTask task) {
    try {
        co_await s.store->put_task(std::move(task));
        co_return true;
    } catch (const std::exception& e) {
        spdlog::error("agent: saving task: {}", e.what());
    }
    co_return false;
}

asio::awaitable<std::optional<StoredTask>> find_task(Service& s, std::string id, bool& failed) {
    failed = false;
    try {
        auto task = co_await s.store->get_task(id);
        co_return task;
    } catch (const std::exception& e) {
        spdlog::error("agent: reading task {}: {}", id, e.what());
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

// ---- JSON-RPC methods -------------------------------------------------------------------------------

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

Response upstream_failure(const json& id, const CompletionResult& r) {
    json data = {{"http_status", r.status}};
    int status = r.status == 503 || r.status == 429 ? r.status : 502;
    return rpc_failure(id, rpc_code::upstream_error, "LLM call failed: " + r.error, status, data);
}

// The seed's method: params.messages in, an agent message out; the conversation continues under
// params.context_id (or a message's contextId) when given.
asio::awaitable<void> execute(Service& s, Exchange& ex, const RpcCall& call) {
    std::vector<ChatMessage> fresh;
    if (!call.params.is_object() || !call.params.contains("messages")) {
        co_await ex.respond(rpc_failure(call.id, rpc_code::invalid_params, "Invalid params: \"messages\" is required"));
        co_return;
    }
    if (auto problem = read_messages(call.params["messages"], fresh)) {
        co_await ex.respond(rpc_failure(call.id, rpc_code::invalid_params, "Invalid params: " + *problem));
        co_return;
    }
    const AgentDef* agent = agent_for(s, call.params);
    const gateway::ModelSettings* model = agent ? model_of(s, *agent) : nullptr;
    if (!agent || !model) {
        co_await ex.respond(rpc_failure(call.id, rpc_code::invalid_params,
                                        agent ? "Invalid params: the agent's model is not configured"
                                              : "Invalid params: no such agent"));
        co_return;
    }
    std::string context_id = param_string(call.params, "context_id", "contextId");
    for (auto& m : call.params["messages"])
        if (context_id.empty() && m.is_object()) context_id = param_string(m, "contextId", "context_id");
    if (auto problem = id_problem("context_id", context_id)) {
        co_await ex.respond(rpc_failure(call.id, rpc_code::invalid_params, "Invalid params: " + *problem));
        co_return;
    }
    if (context_id.empty()) context_id = new_id();

    auto history = co_await load_history(s, context_id);
    json body = completion_body(*agent, past_of(history), fresh);
    CompletionResult r = co_await gateway::complete(*s.gw, *model, std::move(body));
    if (!r.ok) {
        co_await ex.respond(upstream_failure(call.id, r));
        co_return;
    }
    co_await save_turn(s, context_id, with_reply(std::move(fresh), r.content));
    co_await ex.respond(rpc_response(200, rpc_result(call.id, execute_result(r.content, context_id))));
}

struct A2ATurn {
    IncomingMessage in;
    const AgentDef* agent = nullptr;
    const gateway::ModelSettings* model = nullptr;
    std::string task_id;
    std::string context_id;
};

// Reads SendMessage's params; answers the error itself and returns false when they are wrong.
asio::awaitable<bool> read_turn(Service& s, Exchange& ex, const RpcCall& call, A2ATurn& t) {
    std::optional<std::string> problem;
    if (!call.params.is_object() || !call.params.contains("message")) problem = "\"message\" is required";
    else problem = read_a2a_message(call.params["message"], t.in);
    if (!problem) {
        t.agent = agent_for(s, call.params);
        t.model = t.agent ? model_of(s, *t.agent) : nullptr;
        if (!t.agent) problem = "no such agent";
        else if (!t.model) problem = "the agent's model is not configured";
    }
    if (problem) {
        co_await ex.respond(rpc_failure(call.id, rpc_code::invalid_params, "Invalid params: " + *problem));
        co_return false;
    }
    t.context_id = t.in.context_id.empty() ? new_id() : t.in.context_id;
    t.task_id = new_id();
    co_return true;
}

TaskState final_state(bool was_cancelled, const CompletionResult& r) {
    return was_cancelled ? TaskState::canceled : r.ok ? TaskState::completed : TaskState::failed;
}

std::string task_text(TaskState st, const CompletionResult& r) {
    return st == TaskState::failed ? "LLM call failed: " + r.error : r.content;
}

// How an A2A task ended, as stored.
struct TaskEnd {
    TaskState state = TaskState::failed;
    std::string text;
};

TaskEnd task_end(bool was_cancelled, const CompletionResult& r) {
    TaskEnd end;
    end.state = final_state(was_cancelled, r);
    end.text = task_text(end.state, r);
    return end;
}

// The LLM call of a task: deltas to `on_delta` when it streams.
asio::awaitable<CompletionResult> llm_call(Service& s, const A2ATurn& t, json body, const gateway::DeltaCallback* on_delta) {
    if (on_delta) return gateway::complete_stream(*s.gw, *t.model, std::move(body), *on_delta);
    return gateway::complete(*s.gw, *t.model, std::move(body));
}

// The task is working: stored so, and watched for cancel requests from other workers.
asio::awaitable<void> start_task(std::shared_ptr<Service> sp, const A2ATurn& t) {
    co_await save_task(*sp, stored(t.task_id, t.context_id, TaskState::working, ""));
    ensure_watcher(sp);
}

// One A2A turn, streamed or not: the LLM call raced against CancelTask, then the outcome stored
// (and the turn added to the conversation when it completed) before anyone is told.
asio::awaitable<TaskEnd> run_task(Service& s, RunningTask& running, const A2ATurn& t, const gateway::DeltaCallback* on_delta) {
    auto history = co_await load_history(s, t.context_id);
    std::vector<ChatMessage> fresh = just(t.in.chat);
    json body = completion_body(*t.agent, past_of(history), fresh);
    auto outcome = co_await (llm_call(s, t, std::move(body), on_delta) || cancelled(running.cancel));
    CompletionResult r = result_of(outcome);
    TaskEnd end = task_end(outcome.index() == 1, r);
    if (end.state == TaskState::completed) co_await save_turn(s, t.context_id, with_reply(std::move(fresh), r.content));
    co_await save_task(s, stored(t.task_id, t.context_id, end.state, end.text));
    running.recorded = true;
    co_return end;
}

asio::awaitable<void> send_message(std::shared_ptr<Service> sp, Exchange& ex, const RpcCall& call, Dialect d) {
    Service& s = *sp;
    A2ATurn t;
    if (!co_await read_turn(s, ex, call, t)) co_return;
    RunningTask running(s, t.task_id, t.context_id);
    co_await start_task(sp, t);
    TaskEnd end = co_await run_task(s, running, t, nullptr);
    co_await ex.respond(rpc_response(200, rpc_result(call.id, send_result(d, task_object(d, t.task_id, t.context_id, end.state, end.text, now_iso8601())))));
}

asio::awaitable<void> send_streaming_message(std::shared_ptr<Service> sp, Exchange& ex, const RpcCall& call, Dialect d) {
    Service& s = *sp;
    A2ATurn t;
    if (!co_await read_turn(s, ex, call, t)) co_return;
    if (!s.gw->limiter.try_acquire()) {
        co_await ex.respond(rpc_too_many_streams(call.id, *s.gw));
        co_return;
    }
    gateway::StreamPermit permit(&s.gw->limiter);
    RunningTask running(s, t.task_id, t.context_id);
    co_await start_task(sp, t);
    json id = call.id;
    ex.on_stop([id](StopReason why) {
        return sse_error(id, rpc_code::timeout, why == StopReason::deadline ? "Request timed out" : "Server shutting down");
    });
    if (co_await ex.start_stream(200, "text/event-stream", gateway::stream_headers())) co_return;
    if (co_await ex.write(sse(id, stream_task_event(d, task_object(d, t.task_id, t.context_id, TaskState::submitted, "", now_iso8601())))))
        co_return;
    if (co_await ex.write(sse(id, status_update_event(d, t.task_id, t.context_id, TaskState::working, false, ""))))
        co_return;

    std::string artifact_id = t.task_id + "-reply";
    bool first = true;
    gateway::DeltaCallback on_delta = [&](std::string_view delta) -> asio::awaitable<bool> {
        std::string event = sse(id, artifact_update_event(d, t.task_id, t.context_id, artifact_id, std::string(delta), !first, false));
        first = false;
        co_return !co_await ex.write(event);
    };
    TaskEnd end = co_await run_task(s, running, t, &on_delta);
    if (end.state == TaskState::completed && !first)
        co_await ex.write(sse(id, artifact_update_event(d, t.task_id, t.context_id, artifact_id, "", true, true)));
    std::string note = end.state == TaskState::failed ? end.text : std::string();
    std::string last = sse(id, status_update_event(d, t.task_id, t.context_id, end.state, true, note));
    co_await ex.finish(last);
}

std::string task_id_param(const json& params) { return param_string(params, "id", "taskId"); }

// The task params.id names, from the store. Answers the error itself (no id, the store unavailable,
// no such task) and returns nothing then.
asio::awaitable<std::optional<StoredTask>> lookup_task(Service& s, Exchange& ex, const RpcCall& call) {
    std::string id = task_id_param(call.params);
    std::optional<std::string> problem = id_problem("id", id);
    if (id.empty()) problem = "\"id\" (the task id) is required";
    if (problem) {
        co_await ex.respond(rpc_failure(call.id, rpc_code::invalid_params, "Invalid params: " + *problem));
        co_return std::nullopt;
    }
    bool failed = false;
    auto task = co_await find_task(s, id, failed);
    if (failed) co_await ex.respond(rpc_failure(call.id, rpc_code::internal_error, "Internal error: task store unavailable"));
    else if (!task) co_await ex.respond(rpc_failure(call.id, rpc_code::task_not_found, "Task not found"));
    co_return task;
}

asio::awaitable<void> get_task(Service& s, Exchange& ex, const RpcCall& call, Dialect d) {
    auto task = co_await lookup_task(s, ex, call);
    if (task) co_await ex.respond(rpc_response(200, rpc_result(call.id, task_from_store(d, *task))));
}

asio::awaitable<void> pause(milliseconds d) {
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    co_await t.async_wait(asio::use_awaitable);
}

// A task running here is stopped at once (its upstream call closed). One running on another worker
// gets a cancel request in the store, which that worker sees within cancel_poll_interval; the answer
// waits (briefly) for it to say canceled.
asio::awaitable<void> cancel_task(Service& s, Exchange& ex, const RpcCall& call, Dialect d) {
    auto task = co_await lookup_task(s, ex, call);
    if (!task) co_return;
    std::string id = task->id;
    bool failed = false;
    TaskState st = parse_state(task->state).value_or(TaskState::failed);
    if (st != TaskState::submitted && st != TaskState::working) {
        co_await ex.respond(rpc_failure(call.id, rpc_code::task_not_cancelable, "Task cannot be canceled: it is " + task->state));
        co_return;
    }
    if (auto it = s.running.find(id); it != s.running.end()) {
        it->second->cancel();
    } else {
        try {
            co_await s.store->request_cancel(id);
        } catch (const std::exception& e) {
            spdlog::error("agent: cancel request for {}: {}", id, e.what());
        }
    }
    // Wait for the running side to record the outcome (at once here, one poll away elsewhere).
    auto until = Clock::now() + remote_cancel_wait;
    while (Clock::now() < until) {
        task = co_await find_task(s, id, failed);
        if (failed || !task) break;
        st = parse_state(task->state).value_or(TaskState::failed);
        if (st != TaskState::submitted && st != TaskState::working) break;
        co_await pause(std::chrono::milliseconds(20));
    }
    if (!task) {
        co_await ex.respond(rpc_failure(call.id, rpc_code::task_not_found, "Task not found"));
        co_return;
    }
    co_await ex.respond(rpc_response(200, rpc_result(call.id, task_from_store(d, *task))));
}

// Where a keyless request's id is looked for: anyone can send one, of up to limit_request_body
// (16 MiB), so its answer reads no more than a request's start; an id further on is answered null.
constexpr std::size_t refused_id_within = 64 * 1024;

// The client-key refusal as a JSON-RPC error, with the request's id when it has one near the start.
// Used at once, while `r` lives.
app::ErrorShape rpc_shape(const Request& r) {
    return [&r](int status, std::string_view message) {
        return rpc_failure(rpc_id(r.body(), refused_id_within), rpc_code::unauthorized, message, status,
                           json{{"http_status", status}});
    };
}

asio::awaitable<void> tasks_send(std::shared_ptr<Service> s, Exchange& ex) {
    if (auto refusal = s->gw->gate.refuse_client(ex.request(), rpc_shape(ex.request()))) {
        co_await ex.respond(std::move(*refusal));
        co_return;
    }
    auto parsed = parse_rpc(ex.request().body());
    if (auto* err = std::get_if<RpcError>(&parsed)) {
        co_await ex.respond(rpc_failure(err->id, err->code, err->message, http_status_of_rpc(err->code)));
        co_return;
    }
    const RpcCall& call = std::get<RpcCall>(parsed);
    Dialect d;
    switch (method_of(call.method, d)) {
    case Method::execute: co_await execute(*s, ex, call); break;
    case Method::send: co_await send_message(s, ex, call, d); break;
    case Method::stream: co_await send_streaming_message(s, ex, call, d); break;
    case Method::get: co_await get_task(*s, ex, call, d); break;
    case Method::cancel: co_await cancel_task(*s, ex, call, d); break;
    case Method::push_config:
        co_await ex.respond(rpc_failure(call.id, rpc_code::push_not_supported, "Push notifications are not supported"));
        break;
    case Method::unsupported:
        co_await ex.respond(rpc_failure(call.id, rpc_code::unsupported_operation, "Unsupported operation: " + call.method));
        break;
    case Method::unknown:
        co_await ex.respond(rpc_failure(call.id, rpc_code::method_not_found, "Method not found: " + call.method));
        break;
    }
}

// /tasks/send stopped by the server before its answer started: the seed's 408 / -32000 for the
// deadline; a 503 for a worker that stopped past graceful_timeout.
Response stopped_response(const Request& r, StopReason why, milliseconds deadline) {
    if (why != StopReason::deadline)
        return rpc_response(503, rpc_error(rpc_id(r.body()), rpc_code::upstream_error, "Server shutting down",
                                           json{{"http_status", 503}}), true);
    char secs[32];
    std::snprintf(secs, sizeof secs, "%.3g", double(deadline.count()) / 1000.0);
    return rpc_response(408, rpc_error(rpc_id(r.body()), rpc_code::timeout, std::string("Request timed out after ") + secs + " s"),
                        true);
}

// ---- The seed's NDJSON stream -----------------------------------------------------------------------

Response too_many_streams(const gateway::Gateway& gw) { return gateway::streams_full(plain_error, gw.limiter.max()); }

// g++ 12 warns -Wmismatched-new-delete on this coroutine's frame (asio's recycling allocator seen
// through inlining); a false positive.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
asio::awaitable<void> agent_stream(std::shared_ptr<Service> sp, Exchange& ex) {
    Service& s = *sp;
    const Request& req = ex.request();
    if (auto refusal = s.gw->gate.refuse_client(req, plain_error)) {
        co_await ex.respond(std::move(*refusal));
        co_return;
    }
    const AgentDef* agent = s.settings.agent(std::string(req.path_param()));
    if (!agent) {
        co_await ex.respond(plain_error(404, "no agent \"" + std::string(req.path_param()) + "\""));
        co_return;
    }
    const gateway::ModelSettings* model = model_of(s, *agent);
    json body = parse_json(req.body());
    std::vector<ChatMessage> fresh;
    std::optional<std::string> problem;
    if (!model) problem = "the agent's model is not configured";
    else if (body.is_discarded()) problem = "request body is not valid JSON, or nests deeper than 1000 levels";
    else if (!body.is_object() || !body.contains("messages")) problem = "\"messages\" is required";
    else problem = read_messages(body["messages"], fresh);
    if (!problem) problem = id_problem("context_id", param_string(body, "context_id", "contextId"));
    if (problem) {
        int status = model ? 400 : 500;
        co_await ex.respond(plain_error(status, *problem));
        co_return;
    }
    if (gateway::all_breakers_open(*s.gw, *model)) {
        co_await ex.respond(plain_error(503, "circuit breaker open: service temporarily unavailable"));
        co_return;
    }
    if (!s.gw->limiter.try_acquire()) {
        co_await ex.respond(too_many_streams(*s.gw));
        co_return;
    }
    gateway::StreamPermit permit(&s.gw->limiter);
    std::string context_id = param_string(body, "context_id", "contextId");
    if (context_id.empty()) context_id = new_id();
    ex.on_stop([](StopReason why) {
        return ndjson(ndjson_error(why == StopReason::deadline ? "stream stopped: deadline" : "stream stopped: server shutting down", 503));
    });
    auto history = co_await load_history(s, context_id);
    if (co_await ex.start_stream(200, "application/x-ndjson", gateway::stream_headers())) co_return;
    std::string start = ndjson(ndjson_start(agent->id, context_id, model->name));   // named: g++ 12 and co_await
    if (co_await ex.write(start)) co_return;
    gateway::DeltaCallback on_delta = [&ex](std::string_view delta) -> asio::awaitable<bool> {
        std::string line = ndjson(ndjson_content(delta));
        co_return !co_await ex.write(line);
    };
    json request = completion_body(*agent, past_of(history), fresh);
    CompletionResult r = co_await gateway::complete_stream(*s.gw, *model, std::move(request), on_delta);
    std::string last;
    if (r.ok) {
        co_await save_turn(s, context_id, with_reply(std::move(fresh), r.content));
        last = ndjson(ndjson_done(context_id, r.content));
    } else if (r.status != 499) {
        last = ndjson(ndjson_error(r.error, r.status));
    }
    co_await ex.finish(last);
}
#pragma GCC diagnostic pop

std::shared_ptr<Service> make_service(const WorkerContext& context, std::shared_ptr<gateway::Gateway> gw) {
    auto s = std::make_shared<Service>();
    s->settings = worker_agent_settings(context.config);
    s->gw = std::move(gw);  // the worker's one gateway: one upstream pool, the same shared cells
    s->executor = context.executor;
    s->store = make_store_access(context, s->settings);
    return s;
}

}  // namespace

void add_agent_routes(Router& router, const WorkerContext& context, std::shared_ptr<gateway::Gateway> gw) {
    auto s = make_service(context, std::move(gw));
    router.add("GET", "/.well-known/agent-card.json", SyncHandler([s](const Request& r) {
        return Response::json(200, json_text(agent_card(s->settings, base_url_of(r))));
    }));
    router.add("GET", "/.well-known/agent.json", SyncHandler([s](const Request& r) {
        return Response::json(200, json_text(legacy_agent_card(s->settings, base_url_of(r))));
    }));
    milliseconds deadline = s->settings.request_deadline;
    RouteOptions options;
    options.deadline = deadline;
    options.on_stop = [deadline](const Request& r, StopReason why) { return stopped_response(r, why, deadline); };
    router.add("POST", std::string(rpc_path), AsyncHandler([s](Exchange& ex) { return tasks_send(s, ex); }), options);
    RouteOptions stream_options;
    stream_options.on_stop = [](const Request&, StopReason) { return plain_error(503, "server shutting down"); };
    router.add("POST", "/agent/stream/{agent_id}", AsyncHandler([s](Exchange& ex) { return agent_stream(s, ex); }),
               stream_options);
}

}  // namespace agente::agent
