// The shared cells behind the client keys' limits. The decision is key_limits.cpp's; here, reading
// the cells, storing its answer with a compare-and-swap, and counting.
#include "app/gateway/client_limits.hpp"

#include <spdlog/spdlog.h>

#include <map>
#include <stdexcept>

namespace agente::gateway {

namespace {

using namespace std::chrono_literals;

// A compare-and-swap fails only when another worker stored in the same instant: each failure is
// someone else's progress. Past this many in a row the request is refused rather than spin on.
constexpr int max_swap_attempts = 64;

nanoseconds now_ns() {
    return std::chrono::duration_cast<nanoseconds>(std::chrono::steady_clock::now().time_since_epoch());
}

}  // namespace

ClientRegions declare_client_regions(SharedLayout& layout) {
    return {layout.declare<ClientNames>("gateway.client_names"), layout.declare<ClientRates>("gateway.client_rates"),
            layout.declare_per_worker<ClientStreamCells>("gateway.client_streams"),
            layout.declare_per_worker<ClientCounters>("gateway.client_counters", OnExit::fold)};
}

void assign_client_cells(ClientNames& names, const GatewaySettings& settings) {
    for (const auto& c : settings.clients)
        if (names.intern(c.name) < 0)
            throw std::runtime_error("gateway: " + std::to_string(max_client_labels) +
                                     " client key names since the master started, no cell left for \"" + c.name +
                                     "\"; restart the master (USR2) to start an empty table");
}

ClientLimiter::ClientLimiter(const ClientRegions& regions, int slot, const std::vector<ClientKey>& clients)
    : regions_(regions), slot_(slot) {
    for (const auto& c : clients) {
        Bound b;
        b.limits = c.limits;
        b.cell = regions_.names->intern(c.name);   // the master interned it: found
        if (b.cell < 0) spdlog::error("gateway: no shared cell for client key \"{}\": its limits are not applied", c.name);
        clients_.push_back(b);
    }
}

int ClientLimiter::streams_of(int cell) const {
    int sum = 0;
    for (int i = 0; i < regions_.streams.slots(); ++i) sum += regions_.streams.of(i).active[cell].load();
    return sum;
}

ClientUsage* ClientLimiter::usage(int client) {
    if (client < 0 || clients_[std::size_t(client)].cell < 0) return nullptr;
    return &regions_.counters.of(slot_).clients[clients_[std::size_t(client)].cell];
}

Admission ClientLimiter::admit(int client, bool stream) {
    Admission a;
    ClientUsage* counted = usage(client);
    if (!counted) return a;
    const Bound& b = clients_[std::size_t(client)];
    std::atomic<std::int32_t>& mine = regions_.streams.of(slot_).active[b.cell];
    // Claim the stream first, then look: two workers racing for a key's last slot may both be
    // refused, never both admitted (as the server-wide stream limit).
    if (stream) mine.fetch_add(1);
    if (b.limits.any()) {
        ClientRateCell& cell = regions_.rates->cells[b.cell];
        for (int attempt = 0;; ++attempt) {
            std::int64_t seen = cell.requests_full_at_ns.load();
            KeyState state{nanoseconds(seen), nanoseconds(cell.tokens_full_at_ns.load()), 0};
            if (stream) state.streams = streams_of(b.cell) - 1;
            a = gateway::admit(b.limits, state, now_ns(), stream);
            if (a.refused != Limit::none || a.requests_full_at.count() == seen) break;
            if (cell.requests_full_at_ns.compare_exchange_strong(seen, a.requests_full_at.count())) break;
            if (attempt == max_swap_attempts) {
                a.refused = Limit::requests;
                a.retry_after = 1s;
                break;
            }
        }
    }
    if (a.refused == Limit::none) {
        bump(counted->requests);
        return a;
    }
    if (stream) mine.fetch_sub(1);
    bump(counted->refused[int(a.refused) - 1]);
    return a;
}

void ClientLimiter::release_stream(int client) {
    if (usage(client)) regions_.streams.of(slot_).active[clients_[std::size_t(client)].cell].fetch_sub(1);
}

void ClientLimiter::charge(int client, const TokenUsage& used) {
    ClientUsage* counted = usage(client);
    if (!counted) return;
    bump(counted->tokens_in, used.in);
    bump(counted->tokens_out, used.out);
    const Bound& b = clients_[std::size_t(client)];
    if (!b.limits.tokens_per_minute) return;
    std::atomic<std::int64_t>& cell = regions_.rates->cells[b.cell].tokens_full_at_ns;
    for (int attempt = 0; attempt < max_swap_attempts; ++attempt) {
        std::int64_t seen = cell.load();
        nanoseconds next = charge_tokens(b.limits, nanoseconds(seen), now_ns(), used.in + used.out);
        if (cell.compare_exchange_strong(seen, next.count())) return;
    }
}

void ClientLimiter::write_metrics(MetricsText& out) const {
    const ClientNames& names = *regions_.names;
    auto total = regions_.counters.total();
    // Table entries that name the same key (NameTable may hold a name twice) are summed.
    std::map<std::string, std::vector<int>> cells;
    for (int i = 0; i < max_client_labels; ++i)
        if (std::string_view n = names.name(i); !n.empty()) cells[std::string(n)].push_back(i);
    auto sum = [&](const std::vector<int>& of, auto field) {
        std::uint64_t n = 0;
        for (int i : of) n += field(total->clients[i]);
        return n;
    };
    out.family("agente_client_requests_total", "counter",
               "Requests admitted per client key, by the key's configured name (api_keys: the flat list's keys).");
    for (const auto& [name, of] : cells)
        out.sample("agente_client_requests_total", {{"client", name}}, sum(of, [](const ClientUsage& u) { return u.requests.load(); }));
    out.family("agente_client_tokens_total", "counter",
               "Tokens the upstream reported for each client key's requests, by direction (in: prompt, out: completion).");
    for (const auto& [name, of] : cells) {
        out.sample("agente_client_tokens_total", {{"client", name}, {"direction", "in"}},
                   sum(of, [](const ClientUsage& u) { return u.tokens_in.load(); }));
        out.sample("agente_client_tokens_total", {{"client", name}, {"direction", "out"}},
                   sum(of, [](const ClientUsage& u) { return u.tokens_out.load(); }));
    }
    out.family("agente_client_rejections_total", "counter",
               "Requests refused (429) by a client key's own limit, by the limit: requests, tokens or streams.");
    for (const auto& [name, of] : cells)
        for (int l = 0; l < limit_kinds; ++l)
            out.sample("agente_client_rejections_total", {{"client", name}, {"limit", limit_name(Limit(l + 1))}},
                       sum(of, [l](const ClientUsage& u) { return u.refused[l].load(); }));
    out.family("agente_client_streams_active", "gauge", "Streamed answers open now per client key, over every worker.");
    for (const auto& [name, of] : cells) {
        std::int64_t open = 0;
        for (int i : of) open += streams_of(i);
        out.sample("agente_client_streams_active", {{"client", name}}, open);
    }
}

std::vector<ClientLimiter::Row> ClientLimiter::rows(const std::vector<ClientKey>& clients) const {
    std::vector<Row> out;
    if (!regions_.counters.mapped()) return out;
    auto total = regions_.counters.total();
    for (std::size_t i = 0; i < clients.size() && i < clients_.size(); ++i) {
        int cell = clients_[i].cell;
        if (cell < 0 || (!out.empty() && out.back().name == clients[i].name)) continue;   // the flat list: one row
        const ClientUsage& u = total->clients[cell];
        Row r;
        r.name = clients[i].name;
        r.limits = clients[i].limits;
        r.streams = streams_of(cell);
        r.requests = u.requests.load();
        r.tokens_in = u.tokens_in.load();
        r.tokens_out = u.tokens_out.load();
        for (const auto& n : u.refused) r.refused += n.load();
        out.push_back(std::move(r));
    }
    return out;
}

std::vector<Header> rate_headers(const Admission& a) {
    std::vector<Header> h;
    for (auto [kind, figures] : {std::pair{"requests", &a.requests}, std::pair{"tokens", &a.tokens}}) {
        if (!figures->limit) continue;
        std::string k(kind);
        h.push_back({"x-ratelimit-limit-" + k, std::to_string(figures->limit)});
        h.push_back({"x-ratelimit-remaining-" + k, std::to_string(figures->remaining)});
        h.push_back({"x-ratelimit-reset-" + k, reset_text(figures->reset)});
    }
    return h;
}

}  // namespace agente::gateway
