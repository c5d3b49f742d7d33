// The client keys' limits and usage, kept for the whole server in the shared memory: one cell per
// key name for its allowances (key_limits.hpp decides), one per worker for its open streams (given
// back by the core when a worker dies) and for its counters (folded, so totals never go back).
// Cells are found by the key's configured name, never by the key.
#pragma once

#include "app/gateway/key_limits.hpp"
#include "app/gateway/settings.hpp"
#include "app/gateway/usage.hpp"

#include <agente/handler.hpp>
#include <agente/metrics.hpp>
#include <agente/shared.hpp>

#include <atomic>
#include <cstdint>
#include <vector>

namespace agente::gateway {

// Names with cells over the master's life: every name configured since it started. A reload that
// renames keys adds names; none is forgotten, so that a name's counters never pass to another.
inline constexpr int max_client_labels = 128;
using ClientNames = NameTable<max_client_labels, max_client_name>;

struct ClientRateCell {
    std::atomic<std::int64_t> requests_full_at_ns;   // KeyState, on CLOCK_MONOTONIC (the same in every process)
    std::atomic<std::int64_t> tokens_full_at_ns;
};

struct ClientRates {
    ClientRateCell cells[max_client_labels];
};

struct ClientStreamCells {   // one worker's open streams per name
    std::atomic<std::int32_t> active[max_client_labels];
};

struct ClientUsage {
    std::atomic<std::uint64_t> requests;   // admitted
    std::atomic<std::uint64_t> tokens_in;
    std::atomic<std::uint64_t> tokens_out;
    std::atomic<std::uint64_t> refused[limit_kinds];   // by the limit that refused: requests, tokens, streams
};

struct ClientCounters {
    static constexpr bool counters_only = true;
    ClientUsage clients[max_client_labels];
};

struct ClientRegions {
    Shared<ClientNames> names;
    Shared<ClientRates> rates;
    PerWorker<ClientStreamCells> streams;
    PerWorker<ClientCounters> counters;
};

ClientRegions declare_client_regions(SharedLayout& layout);

// The master, on every start and reload before forking: a cell for every configured name. Throws
// when the table is full (the reload is refused; a new master, USR2, starts an empty table).
void assign_client_cells(ClientNames& names, const GatewaySettings& settings);

// One worker's side. Single-threaded, like the worker.
class ClientLimiter {
public:
    ClientLimiter() = default;
    ClientLimiter(const ClientRegions& regions, int slot, const std::vector<ClientKey>& clients);

    // Client `client` (an index into the settings' clients; -1 when the endpoints are open) asks to
    // go on. Admitted: counted, its share of the requests allowance spent and, for a stream, a slot
    // of its own taken (give it back with release_stream). Refused: the refusal counted.
    Admission admit(int client, bool stream);
    void release_stream(int client);
    // The tokens an admitted request used, once it ended.
    void charge(int client, const TokenUsage& usage);
    bool limited(int client) const { return client >= 0 && clients_[std::size_t(client)].limits.any(); }

    // The families of GET /metrics, summed over every worker, labelled with the keys' names.
    void write_metrics(MetricsText& out) const;
    // Per name now (for /status): name, limits, streams open, requests, tokens in and out, refusals.
    struct Row {
        std::string name;
        KeyLimits limits;
        int streams = 0;
        std::uint64_t requests = 0, tokens_in = 0, tokens_out = 0, refused = 0;
    };
    std::vector<Row> rows(const std::vector<ClientKey>& clients) const;

private:
    struct Bound {
        int cell = -1;    // in the shared tables; -1: no cell (full), neither limited nor counted
        KeyLimits limits;
    };
    int streams_of(int cell) const;
    ClientUsage* usage(int client);

    std::vector<Bound> clients_;
    ClientRegions regions_;
    int slot_ = 0;
};

// Holds an admitted client's stream slot until the request ends, however it ends.
class ClientStreamSlot {
public:
    // `held`: admit() took a slot (the request asked for a stream and was admitted).
    ClientStreamSlot(ClientLimiter& limiter, int client, bool held) : limiter_(held ? &limiter : nullptr), client_(client) {}
    ClientStreamSlot(const ClientStreamSlot&) = delete;
    ClientStreamSlot& operator=(const ClientStreamSlot&) = delete;
    ~ClientStreamSlot() { if (limiter_) limiter_->release_stream(client_); }

private:
    ClientLimiter* limiter_;
    int client_;
};

// OpenAI's x-ratelimit-{limit,remaining,reset}-{requests,tokens} headers for the limits the key has.
std::vector<Header> rate_headers(const Admission& admission);

}  // namespace agente::gateway
