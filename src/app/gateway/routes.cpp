// The gateway's HTTP surface: OpenAI's /v1 endpoints and the /system endpoints of the seed's
// streaming protections (health, breaker reset).
#include "app/gateway/errors.hpp"
#include "app/gateway/gateway.hpp"
#include "app/gateway/proxy.hpp"
#include "app/gateway/request_body.hpp"
#include "app/json_text.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace agente::gateway {

namespace {

using nlohmann::json;
using Handler = std::function<asio::awaitable<void>(Gateway&, Exchange&)>;

Response openai_error(int status, std::string_view message) { return error_response(status, message); }

// Wraps a /v1 handler with the client-key check.
AsyncHandler with_client_key(std::shared_ptr<Gateway> gw, Handler h) {
    return [gw, h](Exchange& ex) -> asio::awaitable<void> {
        if (auto refusal = gw->gate.refuse_client(ex.request(), openai_error)) {
            co_await ex.respond(std::move(*refusal));
            co_return;
        }
        co_await h(*gw, ex);
    };
}

// A /v1 request the server stopped before its answer started (the worker draining past
// graceful_timeout): OpenAI's error object, not the core's.
RouteOptions openai_stop() {
    RouteOptions o;
    o.on_stop = [](const Request&, StopReason why) {
        if (why == StopReason::deadline) return error_response(504, "request deadline exceeded", "deadline_exceeded");
        return error_response(503, "server shutting down", "server_shutting_down");
    };
    return o;
}

Response too_many_streams(const Gateway& gw) {
    auto shape = [](int status, std::string_view message) { return error_response(status, message, "too_many_streams"); };
    return streams_full(shape, gw.limiter.max());
}

// The client's JSON body and its model; answers 400/404 itself and returns null when it did.
asio::awaitable<const ModelSettings*> parse_body(Gateway& gw, Exchange& ex, std::optional<RequestBody>& body) {
    std::string problem;
    body = RequestBody::parse(ex.request().body(), problem);
    if (!body) {
        co_await ex.respond(error_response(400, problem));
        co_return nullptr;
    }
    const ModelSettings* m = gw.settings.model(body->model());
    if (!m) co_await ex.respond(error_response(404, "The model `" + body->model() + "` does not exist"));
    co_return m;
}

// Braced lists of string literals stay out of coroutine bodies: g++ 12 miscompiles them there.
Response models_response(const Gateway& gw) {
    json data = json::array();
    for (auto& m : gw.settings.models)
        data.push_back({{"id", m.name}, {"object", "model"}, {"created", 0}, {"owned_by", "agente-hibrido"}});
    return Response::json(200, json_text(json{{"object", "list"}, {"data", data}}));
}

UpstreamRequest proxy_request(const ModelSettings* model, const char* path, const RequestBody& body) {
    UpstreamRequest r;
    r.model = model;
    r.path = path;
    r.body = &body;
    return r;
}

asio::awaitable<void> list_models(Gateway& gw, Exchange& ex) { co_await ex.respond(models_response(gw)); }

asio::awaitable<void> chat_completions(Gateway& gw, Exchange& ex) {
    std::optional<RequestBody> body;
    const ModelSettings* model = co_await parse_body(gw, ex, body);
    if (!model) co_return;
    bool stream = body->stream();
    if (!stream) {
        co_await proxy(gw, ex, proxy_request(model, "/chat/completions", *body));
        co_return;
    }
    if (!gw.limiter.try_acquire()) {
        co_await ex.respond(too_many_streams(gw));
        co_return;
    }
    StreamPermit permit(&gw.limiter);   // released however this coroutine ends
    ex.on_stop([](StopReason why) {
        return error_event(why == StopReason::deadline ? "stream stopped: deadline" : "stream stopped: server shutting down",
                           "stream_stopped");
    });
    co_await proxy(gw, ex, proxy_request(model, "/chat/completions", *body));
}

asio::awaitable<void> embeddings(Gateway& gw, Exchange& ex) {
    std::optional<RequestBody> body;
    const ModelSettings* model = co_await parse_body(gw, ex, body);
    if (!model) co_return;
    if (body->stream()) {   // OpenAI's embeddings have no stream; an upstream must not be asked for one
        co_await ex.respond(error_response(400, "\"stream\" is not supported for embeddings"));
        co_return;
    }
    co_await proxy(gw, ex, proxy_request(model, "/embeddings", *body));
}


// The seed's shape: status, circuit_breakers{name: state, failure_count, threshold},
// web_worker_streams{active, max, available}.
Response streaming_health(Gateway& gw) {
    json breakers = json::object();
    bool healthy = true;
    for (auto& p : gw.settings.providers) {
        Breaker& b = gw.breaker_of(p);
        BreakerState st = b.state();
        healthy = healthy && st == BreakerState::closed;
        breakers[p.name] = {{"state", state_name(st)}, {"failure_count", b.failures()}, {"threshold", b.threshold()}};
    }
    int active = gw.limiter.active(), max = gw.limiter.max();
    json j = {{"status", healthy ? "healthy" : "degraded"},
              {"circuit_breakers", breakers},
              {"web_worker_streams", {{"active", active}, {"max", max}, {"available", std::max(0, max - active)}}}};
    return Response::json(200, json_text(j));
}

Response reset_breaker(Gateway& gw, const Request& r) {
    if (auto refusal = gw.gate.refuse_admin(r, openai_error)) return std::move(*refusal);
    Breaker* b = gw.breaker_named(r.path_param());
    if (!b) return error_response(404, "no circuit breaker named \"" + std::string(r.path_param()) + "\"", "not_found");
    BreakerState was = b->state();
    b->reset();
    spdlog::info("gateway: circuit breaker {} reset ({} before) by an admin from {}", r.path_param(), state_name(was),
                 r.remote_addr());
    return Response::json(200, json_text(json{{"message", "circuit breaker reset"}, {"circuit_breaker", r.path_param()},
                                              {"state", "closed"}}));
}

}  // namespace

void add_gateway_routes(Router& router, std::shared_ptr<Gateway> gw) {
    router.add("POST", "/v1/chat/completions", with_client_key(gw, chat_completions), openai_stop());
    router.add("POST", "/v1/embeddings", with_client_key(gw, embeddings), openai_stop());
    router.add("GET", "/v1/models", with_client_key(gw, list_models), openai_stop());
    router.add("GET", "/system/streaming-health", SyncHandler([gw](const Request&) { return streaming_health(*gw); }));
    router.add("POST", "/system/circuit-breaker/reset/{name}",
               SyncHandler([gw](const Request& r) { return reset_breaker(*gw, r); }));
}

}  // namespace agente::gateway
