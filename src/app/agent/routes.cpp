// The agent's HTTP surface: the agent cards, JSON-RPC on /tasks/send (dispatched to
// rpc_methods.hpp) and the NDJSON stream (ndjson_stream.hpp). The service they share is
// service.hpp's: one per worker.
#include "app/agent/agent.hpp"

#include "app/agent/base_url.hpp"
#include "app/agent/ndjson_stream.hpp"
#include "app/agent/rpc_methods.hpp"
#include "app/json_text.hpp"

#include <agente/config.hpp>

#include <cstdio>

namespace agente::agent {

namespace {

int http_status_of_rpc(int code) {
    return code == rpc_code::parse_error || code == rpc_code::invalid_request ? 400 : 200;
}

std::string base_url_of(const Request& r) { return base_url_from_host(r.scheme(), r.header("Host")); }

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

// A limit's refusal (gateway/admission.hpp) as a JSON-RPC error: -32603 as for every LLM call that
// could not start, data.http_status 429, which limit and when to try again.
Response rpc_refusal(const json& id, const gateway::Refusal& r) {
    auto shape = [&](int status, std::string_view message) {
        return rpc_failure(id, rpc_code::upstream_error, message, status,
                           json{{"http_status", status}, {"limit", r.limit}, {"retry_after", r.retry_after}});
    };
    return gateway::shaped_refusal(r, shape);
}

// Every call counts as one request of the client key's; a streamed one takes its places in the
// stream limits here too, before the method reads its params.
asio::awaitable<void> tasks_send(std::shared_ptr<Service> s, Exchange& ex) {
    int client = -1;
    if (auto refusal = s->gw->gate.refuse_client(ex.request(), rpc_shape(ex.request()), client)) {
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
    Method method = method_of(call.method, d);
    gateway::Pass pass(*s->gw, client);
    std::function<Response(const gateway::Refusal&)> refusal_answer = [&call](const gateway::Refusal& r) {
        return rpc_refusal(call.id, r);
    };
    bool stream = method == Method::stream;
    bool go_on = co_await pass.admit(ex, stream, refusal_answer);
    if (!go_on) co_return;
    switch (method) {
    case Method::execute: co_await execute(*s, ex, call, pass); break;
    case Method::send: co_await send_message(s, ex, call, d, pass); break;
    case Method::stream: co_await send_streaming_message(s, ex, call, d, pass); break;
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
