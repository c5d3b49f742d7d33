// The gateway's HTTP surface: OpenAI's /v1 endpoints and the /system endpoints of the seed's
// streaming protections (health, breaker reset).
#include "app/cluster/redis_link.hpp"
#include "app/gateway/admission.hpp"
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
// A /v1 handler gets the client key's index in settings.clients (-1: the endpoints are open).
using Handler = std::function<asio::awaitable<void>(Gateway&, Exchange&, int client)>;

Response openai_error(int status, std::string_view message) { return error_response(status, message); }
// A refusal of the admission (admission.hpp) in OpenAI's error object; named, as a coroutine
// argument must be.
const std::function<Response(const Refusal&)> openai_answer = openai_refusal;

asio::awaitable<void> answer(Exchange& ex, Response r) { co_await ex.respond(std::move(r)); }

// Wraps a /v1 handler with the client-key check. Not a coroutine itself: it hands over the
// handler's (or the refusal's), one coroutine frame fewer per request.
AsyncHandler with_client_key(std::shared_ptr<Gateway> gw, Handler h) {
    return [gw, h](Exchange& ex) -> asio::awaitable<void> {
        int client = -1;
        if (auto refusal = gw->gate.refuse_client(ex.request(), openai_error, client)) return answer(ex, std::move(*refusal));
        return h(*gw, ex, client);
    };
}

// The client's JSON body and its model; when it has none, null and the 400 or 404 to answer in
// `refusal`. Not a coroutine: it rarely refuses, and a coroutine frame costs every request.
const ModelSettings* parse_body(const Gateway& gw, const Request& request, std::optional<RequestBody>& body,
                                std::optional<Response>& refusal) {
    std::string problem;
    body = RequestBody::parse(request.body(), problem, request.body_padding());
    if (!body) {
        refusal = error_response(400, problem);
        return nullptr;
    }
    const ModelSettings* m = gw.settings.model(body->model());
    if (!m) refusal = error_response(404, "The model `" + body->model() + "` does not exist");
    return m;
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

// The model list calls no provider: no limit applies.
asio::awaitable<void> list_models(Gateway& gw, Exchange& ex, int) { co_await ex.respond(models_response(gw)); }

// An admitted chat request: a grounded model (vector_stores) is answered by the RAG part, streamed
// or not, through the same admission as a plain one (a grounded stream is a stream like any other);
// any other is relayed to its model's targets.
asio::awaitable<void> relay_chat(Gateway& gw, Exchange& ex, int client, const ModelSettings& model, RequestBody body) {
    bool stream = body.stream();
    Pass pass(gw, client);   // what it takes is given back however this coroutine ends
    bool go_on = co_await pass.admit(ex, stream, openai_answer);
    if (!go_on) co_return;
    if (stream) {
        ex.on_stop([](StopReason why) {
            return error_event(why == StopReason::deadline ? "stream stopped: deadline" : "stream stopped: server shutting down",
                               "stream_stopped");
        });
    }
    if (model.retrieval.grounded()) {
        TokenUsage used = co_await gw.grounded_chat(ex, model);
        pass.charge(used);
        co_return;
    }
    ClientRelay relay(ex, body.wants_usage());
    UpstreamRequest up = proxy_request(&model, "/chat/completions", body);
    co_await try_targets(gw, std::move(up), relay);
    pass.charge(relay.usage);
}

// Not a coroutine: a refusal hands over answer()'s frame, and relay_chat()'s, without a refusal's
// locals, stays under the size Asio recycles frames up to (~1 KiB; a larger one is a malloc).
asio::awaitable<void> chat_completions(Gateway& gw, Exchange& ex, int client) {
    std::optional<RequestBody> body;
    std::optional<Response> refusal;
    const ModelSettings* model = parse_body(gw, ex.request(), body, refusal);
    if (!model) return answer(ex, std::move(*refusal));
    if (model->retrieval.grounded() && !gw.grounded_chat)
        return answer(ex, error_response(503, "this model answers from vector stores, which need the [rag] table"));
    return relay_chat(gw, ex, client, *model, std::move(*body));
}

asio::awaitable<void> relay_embeddings(Gateway& gw, Exchange& ex, int client, const ModelSettings& model, RequestBody body) {
    Pass pass(gw, client);
    bool go_on = co_await pass.admit(ex, false, openai_answer);
    if (!go_on) co_return;
    ClientRelay relay(ex, body.wants_usage());
    UpstreamRequest up = proxy_request(&model, "/embeddings", body);
    co_await try_targets(gw, std::move(up), relay);
    pass.charge(relay.usage);
}

// Not a coroutine, as chat_completions().
asio::awaitable<void> embeddings(Gateway& gw, Exchange& ex, int client) {
    std::optional<RequestBody> body;
    std::optional<Response> refusal;
    const ModelSettings* model = parse_body(gw, ex.request(), body, refusal);
    if (!model) return answer(ex, std::move(*refusal));
    // OpenAI's embeddings have no stream; an upstream must not be asked for one.
    if (body->stream()) return answer(ex, error_response(400, "\"stream\" is not supported for embeddings"));
    return relay_embeddings(gw, ex, client, *model, std::move(*body));
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
    json j = {{"circuit_breakers", breakers},
              {"web_worker_streams", {{"active", active}, {"max", max}, {"available", std::max(0, max - active)}}}};
    if (gw.cluster) {
        // Redis down: this machine's own limits, so not "healthy" even with every breaker closed.
        cluster::ClusterView v = gw.cluster->view();
        healthy = healthy && v.redis == cluster::RedisState::up;
        json c = {{"redis", cluster::redis_state_name(v.redis)},
                  {"hosts", v.hosts},
                  {"fallback_share", v.fallback_share},
                  {"streams", {{"active", v.streams_active}, {"max", v.streams_limit}}}};
        if (!v.reason.empty()) c["reason"] = v.reason;
        j["cluster"] = c;
    }
    j["status"] = healthy ? "healthy" : "degraded";
    return Response::json(200, json_text(j));
}

Response reset_breaker(Gateway& gw, const Request& r) {
    if (auto refusal = gw.gate.refuse_admin(r, openai_error)) return std::move(*refusal);
    Breaker* b = gw.breaker_named(r.path_param());
    if (!b) return error_response(404, "no circuit breaker named \"" + std::string(r.path_param()) + "\"", "not_found");
    BreakerState was = b->state();
    b->reset();
    if (gw.cluster) gw.cluster->breaker_changed(std::string(r.path_param()), BreakerChange::closed);   // everywhere
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
