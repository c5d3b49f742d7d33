// The gateway's figures for GET /metrics, per upstream target (provider and model): requests by
// outcome, retries, fallbacks, skips by an open breaker, time to first byte and duration, tokens in
// and out. Each worker counts into its own cells (a per-worker shared region, folded by the core
// when a worker dies); the (provider, model) labels are a shared table that workers add to at boot.
#pragma once

#include "app/gateway/http_client.hpp"
#include "app/gateway/usage.hpp"

#include <agente/metrics.hpp>
#include <agente/shared.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace agente::gateway {

// (provider, model) pairs with a label of their own; more are counted under provider="other".
inline constexpr int max_upstream_labels = 64;
inline constexpr int upstream_overflow_label = max_upstream_labels;

// How one attempt at an upstream ended.
enum class Outcome : int {
    ok,                // a 2xx (or 3xx) answer, read to its end
    client_error,      // a 4xx other than 429: the request was refused, the provider works
    rate_limited,      // 429
    server_error,      // 5xx
    timeout,           // connect, first byte or whole call took too long
    connect_error,     // no connection
    transport_error,   // the connection failed, a bad answer, a refused certificate
    cancelled,         // the client left first; the call was closed
    end
};
inline constexpr int outcomes = int(Outcome::end);
const char* outcome_name(Outcome o);
// The outcome of an attempt that got `status` (0: none) or failed with `error`.
Outcome outcome_of(int status, CallError error);

struct UpstreamCounters {
    std::atomic<std::uint64_t> attempts[outcomes];
    std::atomic<std::uint64_t> retries;        // attempts after the first at this target
    std::atomic<std::uint64_t> fallbacks;      // requests that moved on from this target to the next
    std::atomic<std::uint64_t> skipped;        // not sent: the provider's breaker was open
    std::atomic<std::uint64_t> ttfb_buckets[latency_buckets];
    std::atomic<std::uint64_t> ttfb_sum_us;
    std::atomic<std::uint64_t> duration_buckets[latency_buckets];
    std::atomic<std::uint64_t> duration_sum_us;
    std::atomic<std::uint64_t> tokens_in;
    std::atomic<std::uint64_t> tokens_out;
};

struct GatewayCounters {
    static constexpr bool counters_only = true;
    UpstreamCounters upstreams[max_upstream_labels + 1];   // the last: labels past the table
};

// "provider\x1fmodel": a separator no configured name holds.
using UpstreamNames = NameTable<max_upstream_labels, 127>;
std::string upstream_key(std::string_view provider, std::string_view model);

// One attempt, measured from its start: its first byte, its end (once), its tokens.
class AttemptMeter {
public:
    AttemptMeter(UpstreamCounters* cells) : cells_(cells), start_(std::chrono::steady_clock::now()) {}
    void first_byte();
    void end(Outcome outcome);
    void tokens(const TokenUsage& usage);

private:
    UpstreamCounters* cells_;   // null: not counted (unit tests)
    std::chrono::steady_clock::time_point start_;
    bool ended_ = false;
};

// The families, summed over every worker. `names` and `total` are the shared table and the summed
// counters.
void write_upstream_metrics(MetricsText& out, const UpstreamNames& names, const GatewayCounters& total);

}  // namespace agente::gateway
