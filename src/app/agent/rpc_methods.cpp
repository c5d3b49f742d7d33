// The JSON-RPC methods (rpc_methods.hpp).
#include "app/agent/rpc_methods.hpp"

#include "app/gateway/completion.hpp"
#include "app/gateway/errors.hpp"
#include "app/gateway/sse.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <spdlog/spdlog.h>

namespace agente::agent {

namespace {

using namespace boost::asio::experimental::awaitable_operators;
using gateway::CompletionResult;

std::string sse(const json& id, const json& result) { return gateway::data_event(rpc_result(id, result)); }
std::string sse_error(const json& id, int code, std::string_view message) {
    return gateway::data_event(rpc_error(id, code, message));
}

// Small conversions kept out of coroutine bodies, where g++ 12 mishandles conditional expressions
// and initializer lists of class type.
std::vector<ChatMessage> just(const ChatMessage& m) { return std::vector<ChatMessage>{m}; }
template <class Outcome>
Answer answer_of(const Outcome& outcome) {
    return outcome.index() == 1 ? Answer{} : std::get<0>(outcome);
}

Response upstream_failure(const json& id, const CompletionResult& r) {
    json data = {{"http_status", r.status}};
    int status = r.status == 503 || r.status == 429 ? r.status : 502;
    return rpc_failure(id, rpc_code::upstream_error, "LLM call failed: " + r.error, status, data);
}

}  // namespace

// The seed's method: params.messages in, an agent message out; the conversation continues under
// params.context_id (or a message's contextId) when given.
asio::awaitable<void> execute(Service& s, Exchange& ex, const RpcCall& call, gateway::Pass& pass) {
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
    if (!history) {
        co_await ex.respond(rpc_store_unavailable(call.id));
        co_return;
    }
    json body = completion_body(*agent, *history, fresh);
    Answer answer = co_await answer_turn(*s.gw, *agent, *model, std::move(body), nullptr);
    pass.charge(answer.completion.usage);
    const CompletionResult& r = answer.completion;
    if (!r.ok) {
        co_await ex.respond(upstream_failure(call.id, r));
        co_return;
    }
    // An answer is given only once the turn is stored: a 200 whose turn is missing from the next
    // call's history would lose it silently; a 503 tells the client to send the turn again.
    bool saved = co_await save_turn(s, context_id, with_reply(std::move(fresh), r.content));
    if (!saved) {
        co_await ex.respond(rpc_store_unavailable(call.id));
        co_return;
    }
    co_await ex.respond(rpc_response(200, rpc_result(call.id, execute_result(r.content, context_id, answer.citations))));
}

namespace {

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

// How an A2A task ended, as stored (a grounded one's citations too: GetTask answers them as
// SendMessage did).
struct TaskEnd {
    TaskState state = TaskState::failed;
    std::string text;
    json citations;   // a grounded agent's, when it completed
    json usage;       // the upstream's usage object (null: none reported, or no call made)
};

TaskEnd task_end(bool was_cancelled, const Answer& a) {
    TaskEnd end;
    end.state = final_state(was_cancelled, a.completion);
    end.text = task_text(end.state, a.completion);
    if (end.state == TaskState::completed) end.citations = a.citations;
    end.usage = a.completion.usage;
    return end;
}

TaskEnd store_failure() {
    TaskEnd end;
    end.text = store_unavailable;
    return end;
}

// The LLM call of a task: deltas to `on_delta` when it streams.
asio::awaitable<Answer> llm_call(Service& s, const A2ATurn& t, json body, const gateway::DeltaCallback* on_delta) {
    return answer_turn(*s.gw, *t.agent, *t.model, std::move(body), on_delta);
}

// The task is working: stored so, and watched for cancel requests from other workers. False when
// the store cannot take it (nothing else is tried then: the task is not recorded as failed either).
asio::awaitable<bool> start_task(std::shared_ptr<Service> sp, RunningTask& running, const A2ATurn& t) {
    StoredTask working = stored(t.task_id, t.context_id, TaskState::working, "");
    bool saved = co_await save_task(*sp, std::move(working));
    if (!saved) {
        running.recorded = true;
        co_return false;
    }
    ensure_watcher(sp);
    co_return true;
}

// One A2A turn, streamed or not: the LLM call raced against CancelTask, then the outcome stored
// (and the turn added to the conversation when it completed) before anyone is told.
asio::awaitable<TaskEnd> run_task(Service& s, RunningTask& running, const A2ATurn& t, const gateway::DeltaCallback* on_delta) {
    auto history = co_await load_history(s, t.context_id);
    if (!history) {   // the store went away since the task was stored: it fails rather than forget
        TaskEnd end = store_failure();
        co_await save_task(s, stored(t.task_id, t.context_id, end.state, end.text));
        running.recorded = true;
        co_return end;
    }
    std::vector<ChatMessage> fresh = just(t.in.chat);
    json body = completion_body(*t.agent, *history, fresh);
    auto outcome = co_await (llm_call(s, t, std::move(body), on_delta) || cancelled(running.cancel));
    Answer answer = answer_of(outcome);
    TaskEnd end = task_end(outcome.index() == 1, answer);
    if (end.state == TaskState::completed) {
        bool saved = co_await save_turn(s, t.context_id, with_reply(std::move(fresh), answer.completion.content));
        if (!saved) {   // completed only if the conversation holds the turn; the tokens were spent
            json usage = std::move(end.usage);
            end = store_failure();
            end.usage = std::move(usage);
        }
    }
    co_await save_task(s, stored(t.task_id, t.context_id, end.state, end.text, end.citations));
    running.recorded = true;
    co_return end;
}

// A2A's turn read and its task stored as working, held by `running` until the method ends; the
// error answered here and false returned when either fails.
asio::awaitable<bool> begin_task(std::shared_ptr<Service> sp, Exchange& ex, const RpcCall& call, A2ATurn& t,
                                 std::optional<RunningTask>& running) {
    bool read = co_await read_turn(*sp, ex, call, t);
    if (!read) co_return false;
    running.emplace(*sp, t.task_id, t.context_id);
    bool started = co_await start_task(sp, *running, t);
    if (!started) co_await ex.respond(rpc_store_unavailable(call.id));
    co_return started;
}

}  // namespace

asio::awaitable<void> send_message(std::shared_ptr<Service> sp, Exchange& ex, const RpcCall& call, Dialect d,
                                   gateway::Pass& pass) {
    Service& s = *sp;
    A2ATurn t;
    std::optional<RunningTask> running;
    bool begun = co_await begin_task(sp, ex, call, t, running);   // named: g++ 12 and co_await in a condition
    if (!begun) co_return;
    TaskEnd end = co_await run_task(s, *running, t, nullptr);
    pass.charge(end.usage);
    json task = task_object(d, t.task_id, t.context_id, end.state, end.text, now_iso8601(), end.citations);
    co_await ex.respond(rpc_response(200, rpc_result(call.id, send_result(d, std::move(task)))));
}

namespace {

// A stream's last artifact update: the citations part of a grounded agent (A2A's structured data, at
// the end of the stream), else an empty text that only closes the artifact.
json last_artifact_event(Dialect d, const A2ATurn& t, const std::string& artifact_id, bool append, const json& citations) {
    if (citations.is_null()) return artifact_update_event(d, t.task_id, t.context_id, artifact_id, "", append, true);
    json parts = json::array({citations_part(d, citations)});
    return artifact_parts_event(d, t.task_id, t.context_id, artifact_id, std::move(parts), append, true);
}

}  // namespace

// g++ 12 warns -Wmismatched-new-delete on this coroutine's frame (asio's recycling allocator seen
// through inlining); a false positive, as for the NDJSON stream.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
asio::awaitable<void> send_streaming_message(std::shared_ptr<Service> sp, Exchange& ex, const RpcCall& call, Dialect d,
                                             gateway::Pass& pass) {
    Service& s = *sp;
    A2ATurn t;
    std::optional<RunningTask> running;
    bool begun = co_await begin_task(sp, ex, call, t, running);   // named: g++ 12 and co_await in a condition
    if (!begun) co_return;
    json id = call.id;
    ex.on_stop([id](StopReason why) {
        return sse_error(id, rpc_code::timeout, why == StopReason::deadline ? "Request timed out" : "Server shutting down");
    });
    if (co_await ex.start_stream(200, "text/event-stream")) co_return;
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
    TaskEnd end = co_await run_task(s, *running, t, &on_delta);
    pass.charge(end.usage);
    if (end.state == TaskState::completed && (!first || !end.citations.is_null()))
        co_await ex.write(sse(id, last_artifact_event(d, t, artifact_id, !first, end.citations)));
    std::string note = end.state == TaskState::failed ? end.text : std::string();
    std::string last = sse(id, status_update_event(d, t.task_id, t.context_id, end.state, true, note));
    co_await ex.finish(last);
}
#pragma GCC diagnostic pop

namespace {

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
    if (failed) co_await ex.respond(rpc_store_unavailable(call.id));
    else if (!task) co_await ex.respond(rpc_failure(call.id, rpc_code::task_not_found, "Task not found"));
    co_return task;
}

asio::awaitable<void> pause(milliseconds d) {
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    co_await t.async_wait(asio::use_awaitable);
}

}  // namespace

asio::awaitable<void> get_task(Service& s, Exchange& ex, const RpcCall& call, Dialect d) {
    auto task = co_await lookup_task(s, ex, call);
    if (task) co_await ex.respond(rpc_response(200, rpc_result(call.id, task_from_store(d, *task))));
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

}  // namespace agente::agent
