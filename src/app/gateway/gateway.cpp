// Building a worker's gateway, and the master's side of the shared state.
#include "app/gateway/gateway.hpp"

#include <spdlog/spdlog.h>
#include <toml++/toml.h>

#include <cstring>
#include <new>

namespace agente::gateway {

namespace {

SharedState& shared_of(SharedArea area) { return *static_cast<SharedState*>(area.data); }

bool named(const BreakerCell& c, const std::string& name) {
    return std::strncmp(c.name, name.c_str(), sizeof c.name) == 0;
}

BreakerCell* find_cell(SharedState& s, const std::string& name) {
    for (auto& c : s.breakers)
        if (c.name[0] && named(c, name)) return &c;
    return nullptr;
}

void claim_cell(BreakerCell& c, const std::string& name) {
    c.failures.store(0);
    c.opened_at_ms.store(0);
    c.probe_at_ms.store(0);
    std::memset(c.name, 0, sizeof c.name);
    std::memcpy(c.name, name.data(), std::min(name.size(), sizeof c.name - 1));
}

}  // namespace

Breaker* Gateway::breaker_named(std::string_view name) {
    for (std::size_t i = 0; i < settings.providers.size(); ++i)
        if (settings.providers[i].name == name) return &breakers[i];
    return nullptr;
}

std::size_t shared_state_size() { return sizeof(SharedState); }

void assign_breaker_cells(SharedArea area, const GatewaySettings& settings) {
    if (!area.data || area.size < sizeof(SharedState)) return;
    SharedState& s = shared_of(area);
    std::vector<bool> wanted(max_providers, false);
    for (auto& p : settings.providers)
        if (BreakerCell* c = find_cell(s, p.name)) wanted[c - s.breakers] = true;
    for (auto& p : settings.providers) {
        if (find_cell(s, p.name)) continue;
        // A free cell, else one of a provider no longer configured.
        for (int i = 0; i < max_providers; ++i)
            if (!wanted[i] && (!s.breakers[i].name[0] || !settings.provider(s.breakers[i].name))) {
                claim_cell(s.breakers[i], p.name);
                wanted[i] = true;
                break;
            }
    }
}

void reclaim_worker_streams(SharedArea area, int slot) {
    if (!area.data || area.size < sizeof(SharedState)) return;
    StreamLimiter::reclaim(shared_of(area).streams, slot);
}

std::shared_ptr<Gateway> make_gateway(const WorkerContext& context) {
    return make_gateway(context.executor, context.config, context.shared, context.slot);
}

std::shared_ptr<Gateway> make_gateway(asio::any_io_executor executor, const Config& config, SharedArea area, int slot) {
    GatewaySettings settings = load_gateway_settings(*config.app, config.app_source);
    if (!area.data || area.size < sizeof(SharedState))
        throw std::runtime_error("gateway: shared memory area too small");
    SharedState& shared = shared_of(area);
    std::vector<std::string> private_cas;
    for (const auto& p : settings.providers)
        if (!p.endpoint.tls_ca_file.empty()) private_cas.push_back(p.endpoint.tls_ca_file);
    auto pool = make_connection_pool(executor, settings.upstream_keepalive_connections, private_cas);
    StreamLimiter limiter(shared.streams, slot, settings.max_concurrent_streams);
    app::Gatekeeper gate(settings.api_keys, settings.admin_token);
    auto g = std::make_shared<Gateway>(Gateway{std::move(settings), std::move(pool), {}, limiter, std::move(gate)});
    for (auto& p : g->settings.providers) {
        BreakerCell* cell = find_cell(shared, p.name);
        if (!cell) throw std::runtime_error("gateway: no shared breaker cell for provider " + p.name);
        g->breakers.emplace_back(*cell, g->settings.circuit_breaker_threshold, g->settings.circuit_breaker_cooldown);
    }
    return g;
}

}  // namespace agente::gateway
