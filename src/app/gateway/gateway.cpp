// Building a worker's gateway, and the master's side of the shared state.
#include "app/gateway/gateway.hpp"

#include "app/cluster/redis_link.hpp"
#include "app/cluster/settings.hpp"

#include <spdlog/spdlog.h>
#include <toml++/toml.h>

#include <cstring>
#include <functional>
#include <new>

namespace agente::gateway {

namespace {

bool named(const BreakerCell& c, const std::string& name) {
    return std::strncmp(c.name, name.c_str(), sizeof c.name) == 0;
}

BreakerCell* find_cell(BreakerCells& s, const std::string& name) {
    for (auto& c : s.cells)
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

SharedState declare_shared_state(SharedLayout& layout) {
    return {layout.declare<BreakerCells>("gateway.breakers"), layout.declare_per_worker<StreamCell>("gateway.streams"),
            layout.declare_per_worker<GatewayCounters>("gateway.counters", OnExit::fold),
            layout.declare<UpstreamNames>("gateway.upstream_names"), declare_client_regions(layout),
            cluster::declare_link_regions(layout)};
}

UpstreamCounters* Gateway::cells_of(const ModelSettings& model, const Target& target) {
    if (!counters) return nullptr;
    return &counters->upstreams[label_of(model, target)];
}

int Gateway::label_of(const ModelSettings& model, const Target& target) const {
    // A route's request points into settings.models: its labels were looked up at boot. A caller
    // may hold a copy instead (the embedder keeps its model's settings across a reload), whose
    // address says nothing about its index: that one is found by name.
    const ModelSettings* first = settings.models.data();
    std::less<const ModelSettings*> before;
    if (!before(&model, first) && before(&model, first + settings.models.size()))
        return target_labels[std::size_t(&model - first)][std::size_t(&target - model.targets.data())];
    int label = shared.upstream_names->find(upstream_key(target.provider, target.model));
    return label < 0 ? upstream_overflow_label : label;
}

void assign_breaker_cells(BreakerCells& s, const GatewaySettings& settings) {
    std::vector<bool> wanted(max_providers, false);
    for (auto& p : settings.providers)
        if (BreakerCell* c = find_cell(s, p.name)) wanted[c - s.cells] = true;
    for (auto& p : settings.providers) {
        if (find_cell(s, p.name)) continue;
        // A free cell, else one of a provider no longer configured.
        for (int i = 0; i < max_providers; ++i)
            if (!wanted[i] && (!s.cells[i].name[0] || !settings.provider(s.cells[i].name))) {
                claim_cell(s.cells[i], p.name);
                wanted[i] = true;
                break;
            }
    }
}

std::shared_ptr<Gateway> make_gateway(const WorkerContext& context, const SharedState& shared) {
    auto g = make_gateway(context.executor, context.config, shared, context.slot);
    // HTTP workers only: a dirty worker's or a command's gateway takes no streams and its breakers
    // are the same shared cells, which these links keep in step.
    cluster::ClusterSettings cluster = cluster::worker_redis_settings(context.config);
    if (!cluster.redis_url.empty())
        g->cluster = cluster::ClusterLink::start(context.executor, cluster, g, context.slot, shared.cluster);
    return g;
}

std::shared_ptr<Gateway> make_gateway(asio::any_io_executor executor, const Config& config, const SharedState& shared,
                                      int slot) {
    GatewaySettings settings = load_gateway_settings(*config.app, config.app_source);
    std::vector<std::string> private_cas;
    for (const auto& p : settings.providers)
        if (!p.endpoint.tls_ca_file.empty()) private_cas.push_back(p.endpoint.tls_ca_file);
    auto pool = make_connection_pool(executor, settings.upstream_keepalive_connections, private_cas);
    StreamLimiter limiter(shared.streams, slot, settings.max_concurrent_streams);
    BreakerCells& breakers = *shared.breakers;
    app::Gatekeeper gate(settings.client_keys(), settings.admin_token);
    ClientLimiter clients(shared.clients, slot, settings.clients);
    auto g = std::make_shared<Gateway>(
        Gateway{std::move(settings), std::move(pool), {}, limiter, std::move(clients), std::move(gate), {}, {}, shared, nullptr, {}, nullptr});
    g->counters = &shared.counters.of(slot);
    for (const auto& m : g->settings.models) {
        auto& labels = g->target_labels.emplace_back();
        for (const auto& t : m.targets) {
            int label = shared.upstream_names->intern(upstream_key(t.provider, t.model));
            labels.push_back(label < 0 ? upstream_overflow_label : label);
        }
    }
    for (auto& p : g->settings.providers) {
        BreakerCell* cell = find_cell(breakers, p.name);
        if (!cell) throw std::runtime_error("gateway: no shared breaker cell for provider " + p.name);
        g->breakers.emplace_back(*cell, g->settings.circuit_breaker_threshold, g->settings.circuit_breaker_cooldown);
    }
    return g;
}

void write_gateway_metrics(Gateway& gw, MetricsText& out) {
    write_upstream_metrics(out, *gw.shared.upstream_names, *gw.shared.counters.total());
    out.family("agente_upstream_breaker_state", "gauge",
               "Each provider's circuit breaker: 1 for its current state (closed, open, half_open), 0 for the others.");
    for (const auto& p : gw.settings.providers) {
        BreakerState now = gw.breaker_of(p).state();
        for (BreakerState st : {BreakerState::closed, BreakerState::open, BreakerState::half_open})
            out.sample("agente_upstream_breaker_state", {{"provider", p.name}, {"state", state_name(st)}},
                       std::uint64_t(st == now));
    }
    out.family("agente_upstream_breaker_failures", "gauge", "Consecutive failed attempts counted by each breaker.");
    for (const auto& p : gw.settings.providers)
        out.sample("agente_upstream_breaker_failures", {{"provider", p.name}}, std::uint64_t(gw.breaker_of(p).failures()));
    out.family("agente_streams_active", "gauge", "Streamed answers open now, over every worker.");
    out.sample("agente_streams_active", {}, std::int64_t(gw.limiter.active()));
    out.family("agente_streams_limit", "gauge", "max_concurrent_streams: streams beyond it are refused (429).");
    out.sample("agente_streams_limit", {}, std::int64_t(gw.limiter.max()));
    gw.clients.write_metrics(out);
    if (gw.cluster) gw.cluster->write_metrics(out);
}

}  // namespace agente::gateway
