// One worker's gateway: its settings, its upstream connections, and its views of the shared breakers
// and stream counters. Everything here lives on the worker's single loop thread.
#pragma once

#include "app/common/auth.hpp"
#include "app/gateway/breaker.hpp"
#include "app/gateway/http_client.hpp"
#include "app/gateway/settings.hpp"
#include "app/gateway/stream_limiter.hpp"

#include <agente/app.hpp>

#include <memory>
#include <vector>

namespace agente::gateway {

struct Gateway {
    GatewaySettings settings;
    std::shared_ptr<ConnectionPool> pool;
    std::vector<Breaker> breakers;      // in the order of settings.providers
    StreamLimiter limiter;
    app::Gatekeeper gate;               // the client keys and the admin token, for the agent's routes too

    Breaker& breaker_of(const ProviderSettings& p) { return breakers[&p - settings.providers.data()]; }
    Breaker* breaker_named(std::string_view name);
};

std::size_t shared_state_size();

// The master: names a breaker cell for every configured provider (keeping the cells of providers
// that stay), before the workers that look them up are forked.
void assign_breaker_cells(SharedArea area, const GatewaySettings& settings);

// The master: gives back the streams a dead worker held.
void reclaim_worker_streams(SharedArea area, int slot);

// A worker: reads the settings (secrets included) and binds to the shared cells.
std::shared_ptr<Gateway> make_gateway(const WorkerContext& context);
// The same for code that runs the attempt loop outside an HTTP worker (a dirty worker's embedding
// calls, the CLI): on `executor`, with the breaker cells of `area` (the master's, so that every
// process counts against the same breakers, or an area of the caller's own) and the stream slot `slot`.
std::shared_ptr<Gateway> make_gateway(asio::any_io_executor executor, const Config& config, SharedArea area, int slot);

// POST /v1/chat/completions, POST /v1/embeddings, GET /v1/models, and the /system endpoints.
void add_gateway_routes(Router& router, std::shared_ptr<Gateway> gateway);

}  // namespace agente::gateway
