// The gateway's sections of GET /status: streams, client keys (by name), breakers (with their reset
// button), providers and models; the same shared cells that write_gateway_metrics reads.
#include "app/gateway/gateway.hpp"

#include <string>
#include <vector>

namespace agente::gateway {

namespace {

std::string endpoint_url(const Endpoint& e) {
    std::string url = e.tls ? "https://" : "http://";
    return url + e.host + ":" + e.port + e.base_path;
}

}  // namespace

void write_gateway_status(Gateway& gw, StatusPage& page) {
    page.section("Streams");
    int active = gw.limiter.active(), max = gw.limiter.max();
    page.table({"active", "limit"});
    page.row({std::to_string(active), std::to_string(max)});

    page.section("Client keys");
    auto limit_text = [](std::int64_t n) { return n ? std::to_string(n) : std::string("-"); };
    if (gw.settings.clients.empty()) page.note("No client key configured: /v1 is open.");
    else page.table({"name", "rpm", "tpm", "max streams", "streams", "requests", "tokens in", "tokens out", "refused"});
    for (const auto& r : gw.clients.rows(gw.settings.clients))   // by name, never the key
        page.row({r.name, limit_text(r.limits.requests_per_minute), limit_text(r.limits.tokens_per_minute),
                  limit_text(r.limits.max_streams), std::to_string(r.streams), std::to_string(r.requests),
                  std::to_string(r.tokens_in), std::to_string(r.tokens_out), std::to_string(r.refused)});

    page.section("Circuit breakers");
    if (gw.settings.providers.empty()) page.note("No provider configured.");
    else page.table({"provider", "state", "failures", "threshold", ""});
    for (const auto& p : gw.settings.providers) {
        Breaker& b = gw.breaker_of(p);
        StatusAction reset{"Reset", "/system/circuit-breaker/reset/", p.name};
        page.row({p.name, std::string(state_name(b.state())), std::to_string(b.failures()), std::to_string(b.threshold())}, &reset);
    }

    page.section("Providers");
    if (!gw.settings.providers.empty()) page.table({"provider", "endpoint", "API key"});
    for (const auto& p : gw.settings.providers) {
        std::string key = "none";
        if (!p.api_key.empty()) key = "set";   // never the key itself
        page.row({p.name, endpoint_url(p.endpoint), key});
    }

    page.section("Models");
    if (gw.settings.models.empty()) page.note("No model configured.");
    else page.table({"model", "targets (first healthy serves)", "vector stores"});
    for (const auto& m : gw.settings.models) {
        std::string targets, stores;
        for (const auto& t : m.targets) targets += (targets.empty() ? "" : ", ") + t.provider + "/" + t.model;
        for (const auto& s : m.retrieval.vector_stores) stores += (stores.empty() ? "" : ", ") + s;
        page.row({m.name, targets, stores});
    }
}

}  // namespace agente::gateway
