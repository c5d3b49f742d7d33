// One worker's gateway: its settings, its upstream connections, and its views of the shared breakers
// and stream counters. Everything here lives on the worker's single loop thread.
#pragma once

#include "app/common/auth.hpp"
#include "app/gateway/breaker.hpp"
#include "app/gateway/client_limits.hpp"
#include "app/gateway/http_client.hpp"
#include "app/gateway/settings.hpp"
#include "app/gateway/stream_limiter.hpp"

#include <agente/app.hpp>

#include <nlohmann/json_fwd.hpp>

#include <functional>
#include <memory>
#include <vector>

namespace agente::cluster { class ClusterLink; }

namespace agente::gateway {

struct GroundedResult;   // completion.hpp
using DeltaCallback = std::function<asio::awaitable<bool>(std::string_view delta)>;

struct Gateway {
    GatewaySettings settings;
    std::shared_ptr<ConnectionPool> pool;
    std::vector<Breaker> breakers;      // in the order of settings.providers
    StreamLimiter limiter;
    ClientLimiter clients;              // the client keys' own limits, in the order of settings.clients
    app::Gatekeeper gate;               // the client keys and the admin token, for the agent's routes too
    // A chat completion to a model with vector_stores: answered from them with citations, after
    // the route's admission (admission.hpp); the tokens the upstream reported come back. Set by the
    // RAG part (rag/grounded_chat.cpp), which the gateway does not depend on.
    std::function<asio::awaitable<TokenUsage>(Exchange&, const ModelSettings&)> grounded_chat;
    // The same answer as text for code inside the server (the agent): completion.hpp's
    // GroundedCompletion. The HTTP route above is built on it.
    std::function<asio::awaitable<GroundedResult>(const ModelSettings&, const app::Retrieval&, nlohmann::json,
                                                  const DeltaCallback*)>
        grounded_complete;
    SharedState shared;                 // for /metrics: every worker's counters, the breakers
    GatewayCounters* counters = nullptr;   // this worker's
    std::vector<std::vector<int>> target_labels;   // [model][target]: the pair's label in the counters
    // [cluster] redis_url: the breakers and the stream limit shared with the other machines; null
    // without it (and in dirty workers and commands), where nothing of this costs a thing.
    std::shared_ptr<cluster::ClusterLink> cluster;

    Breaker& breaker_of(const ProviderSettings& p) { return breakers[&p - settings.providers.data()]; }
    Breaker* breaker_named(std::string_view name);
    // This worker's counters for a model's target: `model` one of settings.models or a copy of one.
    UpstreamCounters* cells_of(const ModelSettings& model, const Target& target);
    int label_of(const ModelSettings& model, const Target& target) const;
};

// The master: names a breaker cell for every configured provider (keeping the cells of providers
// that stay), before the workers that look them up are forked.
void assign_breaker_cells(BreakerCells& cells, const GatewaySettings& settings);

// A worker: reads the settings (secrets included) and binds to the shared cells.
std::shared_ptr<Gateway> make_gateway(const WorkerContext& context, const SharedState& shared);
// The same for code that runs the attempt loop outside an HTTP worker (a dirty worker's embedding
// calls, the CLI): on `executor`, with the breaker cells of `shared` (the master's, so that every
// process counts against the same breakers, or memory of the caller's own) and the stream slot `slot`.
std::shared_ptr<Gateway> make_gateway(asio::any_io_executor executor, const Config& config, const SharedState& shared,
                                      int slot);

// The gateway's families for GET /metrics, summed over every worker.
void write_gateway_metrics(Gateway& gateway, MetricsText& out);

// The gateway's sections of GET /status (streams, breakers with a reset button, providers, models).
void write_gateway_status(Gateway& gateway, StatusPage& page);

// POST /v1/chat/completions, POST /v1/embeddings, GET /v1/models, and the /system endpoints.
void add_gateway_routes(Router& router, std::shared_ptr<Gateway> gateway);

}  // namespace agente::gateway
