// The NDJSON stream (ndjson_stream.hpp).
#include "app/agent/ndjson_stream.hpp"

#include "app/gateway/admission.hpp"
#include "app/gateway/completion.hpp"
#include "app/gateway/errors.hpp"
#include "app/gateway/sse.hpp"
#include "app/json_text.hpp"

namespace agente::agent {

namespace {

using gateway::CompletionResult;

std::string ndjson(const json& event) { return json_text(event) + "\n"; }

json ndjson_start(const std::string& agent_id, const std::string& context_id, const std::string& model) {
    return {{"type", "start"}, {"agent_id", agent_id}, {"context_id", context_id}, {"model", model},
            {"timestamp", now_iso8601()}};
}
json ndjson_content(std::string_view delta) { return {{"type", "content"}, {"content", delta}}; }
// A grounded agent's done line carries the citations of its answer (docs/agent.md).
json ndjson_done(const std::string& context_id, const std::string& text, const json& citations) {
    json done = {{"type", "done"}, {"context_id", context_id}, {"content", text}, {"timestamp", now_iso8601()}};
    if (!citations.is_null()) done["citations"] = citations;
    return done;
}
json ndjson_error(std::string_view message, int status) {
    return {{"type", "error"}, {"error", message}, {"status", status}, {"timestamp", now_iso8601()}};
}

Response plain_refusal(const gateway::Refusal& r) { return gateway::shaped_refusal(r, plain_error); }

}  // namespace

// g++ 12 warns -Wmismatched-new-delete on this coroutine's frame (asio's recycling allocator seen
// through inlining); a false positive.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
asio::awaitable<void> agent_stream(std::shared_ptr<Service> sp, Exchange& ex) {
    Service& s = *sp;
    const Request& req = ex.request();
    int client = -1;
    if (auto refusal = s.gw->gate.refuse_client(req, plain_error, client)) {
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
    gateway::Pass pass(*s.gw, client);   // its places in the stream limits, held until the stream ends
    std::function<Response(const gateway::Refusal&)> refusal_answer = plain_refusal;
    bool go_on = co_await pass.admit(ex, true, refusal_answer);
    if (!go_on) co_return;
    std::string context_id = param_string(body, "context_id", "contextId");
    if (context_id.empty()) context_id = new_id();
    ex.on_stop([](StopReason why) {
        return ndjson(ndjson_error(why == StopReason::deadline ? "stream stopped: deadline" : "stream stopped: server shutting down", 503));
    });
    auto history = co_await load_history(s, context_id);
    if (!history) {
        co_await ex.respond(plain_error(503, store_unavailable));
        co_return;
    }
    if (co_await ex.start_stream(200, "application/x-ndjson")) co_return;
    std::string start = ndjson(ndjson_start(agent->id, context_id, model->name));   // named: g++ 12 and co_await
    if (co_await ex.write(start)) co_return;
    gateway::DeltaCallback on_delta = [&ex](std::string_view delta) -> asio::awaitable<bool> {
        std::string line = ndjson(ndjson_content(delta));
        co_return !co_await ex.write(line);
    };
    json request = completion_body(*agent, *history, fresh);
    Answer answer = co_await answer_turn(*s.gw, *agent, *model, std::move(request), &on_delta);
    pass.charge(answer.completion.usage);
    const CompletionResult& r = answer.completion;
    std::string last;
    bool saved = false;
    if (r.ok) saved = co_await save_turn(s, context_id, with_reply(std::move(fresh), r.content));
    if (r.ok && saved) {
        last = ndjson(ndjson_done(context_id, r.content, answer.citations));
    } else if (r.ok) {   // streamed already, but not stored: the stream ends in an error, not "done"
        last = ndjson(ndjson_error(store_unavailable, 503));
    } else if (r.status != 499) {
        last = ndjson(ndjson_error(r.error, r.status));
    }
    co_await ex.finish(last);
}
#pragma GCC diagnostic pop

}  // namespace agente::agent
