// The core's figures in the shared memory, and their text for GET /metrics: requests by route
// pattern, method and status class with their durations (per worker, folded into the retired cell
// when a worker dies), the route patterns workers registered, and the master's supervision counters
// (worker starts, exits by reason, reloads). Gauges (connections, requests in flight, workers by
// generation, memory) are read from the scoreboard's slots.
#pragma once

#include "core/arbiter.hpp"
#include "core/scoreboard.hpp"

#include <agente/dirty.hpp>
#include <agente/metrics.hpp>
#include <agente/shared.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string_view>
#include <vector>

namespace agente::core {

// Route patterns with a label of their own; a worker registering more counts the rest as "other".
inline constexpr int max_route_labels = 64;

// The labels after the patterns: what no route pattern names.
enum class RouteLabel : int {
    unmatched = max_route_labels,   // 404 and 405: no route has this path (or this method)
    invalid,                        // refused by the core before routing: malformed, too large
    overflow,                       // more route patterns than labels
    end
};
inline constexpr int route_labels = int(RouteLabel::end);

// A closed set of methods, the rest "other".
inline constexpr std::string_view method_names[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other"};
inline constexpr int method_labels = int(std::size(method_names));

// 1xx to 5xx, and "none" for a request whose client left before any answer.
inline constexpr std::string_view status_class_names[] = {"1xx", "2xx", "3xx", "4xx", "5xx", "none"};
inline constexpr int status_classes = int(std::size(status_class_names));

struct RequestCounters {
    static constexpr bool counters_only = true;
    std::atomic<std::uint64_t> requests[route_labels][method_labels][status_classes];
    std::atomic<std::uint64_t> duration_buckets[route_labels][latency_buckets];
    std::atomic<std::uint64_t> duration_sum_us[route_labels];
};

using RouteNames = NameTable<max_route_labels, 95>;

// Calls an HTTP worker made to the dirty pool, by outcome (DirtyErrc: ok, timeout, unavailable,
// job_failed, worker_died, cancelled), and how long each took from the caller's side (a queued
// call's wait included). Folded when the worker dies.
inline constexpr int dirty_outcomes = int(DirtyErrc::cancelled) + 1;
struct DirtyCallCounters {
    static constexpr bool counters_only = true;
    std::atomic<std::uint64_t> calls[dirty_outcomes];
    std::atomic<std::uint64_t> duration_buckets[latency_buckets];
    std::atomic<std::uint64_t> duration_sum_us;
};

// The calls an HTTP worker has under way (sent, not yet answered): zeroed when it dies. Their sum
// less the jobs the dirty workers run is the pool's queue (calls waiting in its socket's backlog).
struct DirtyCallsPending {
    std::atomic<std::uint32_t> pending;
};

// One HTTP worker's view of its own cells, for its DirtyClient.
class DirtyCallMeter {
public:
    DirtyCallMeter(DirtyCallCounters& counters, DirtyCallsPending& pending) : counters_(counters), pending_(pending) {}
    void begin() { pending_.pending.store(pending_.pending.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed); }
    void end(DirtyErrc outcome, std::chrono::microseconds duration) {
        pending_.pending.store(pending_.pending.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
        bump(counters_.calls[int(outcome)]);
        bump(counters_.duration_buckets[latency_bucket(duration)]);
        bump(counters_.duration_sum_us, std::uint64_t(duration.count()));
    }

private:
    DirtyCallCounters& counters_;
    DirtyCallsPending& pending_;
};

// The pools, as Pool numbers them, and their label values.
inline constexpr std::string_view pool_names[] = {"http", "dirty"};
inline constexpr int pools = int(std::size(pool_names));
static_assert(int(Pool::http) == 0 && int(Pool::dirty) == 1);

// Written by the master only.
struct Supervision {
    std::atomic<std::uint64_t> worker_starts[pools];
    std::atomic<std::uint64_t> worker_exits[pools][exit_reasons];
    std::atomic<std::uint64_t> reloads_applied;
    std::atomic<std::uint64_t> reloads_refused;
    std::atomic<std::uint32_t> last_reload_refused;   // 1 while the last reload is the refused one
    std::atomic<std::uint32_t> generation;
    std::atomic<std::int64_t> last_reload_unix;       // seconds since the epoch, 0: none yet
    std::atomic<std::int64_t> started_unix;
};

// One live worker as its slot reads now: what GET /metrics sums and GET /status lists, read the same
// way for both.
struct WorkerView {
    int slot = 0;
    Pool pool = Pool::http;
    WorkerState state = WorkerState::booting;
    std::int32_t pid = 0;
    std::uint32_t generation = 0;
    std::uint64_t requests = 0;      // served since boot (a dirty worker: jobs run)
    std::uint32_t connections = 0;   // open now (a dirty worker: jobs running)
    std::uint32_t in_flight = 0;
    std::int64_t started_ns = 0;     // CLOCK_MONOTONIC
    std::uint64_t memory_bytes = 0;
};
// Every slot in use, HTTP workers first, in slot order.
std::vector<WorkerView> live_workers(const Scoreboard& scoreboard);
std::string_view worker_state_name(WorkerState state);

class CoreMetrics {
public:
    explicit CoreMetrics(SharedLayout& layout);

    // ---- a worker ----
    // This worker's cells, once the memory is mapped.
    void bind(int slot) { mine_ = &requests_.of(slot); }
    // The label of a route pattern, at registration (not per request).
    int route_label(std::string_view pattern);
    // One answered request: a load and a store into this worker's own cells.
    void record(int route, int method, int status, std::chrono::microseconds duration) {
        RequestCounters& c = *mine_;
        int cls = status >= 100 && status < 600 ? status / 100 - 1 : status_classes - 1;
        bump(c.requests[route][method][cls]);
        bump(c.duration_buckets[route][latency_bucket(duration)]);
        bump(c.duration_sum_us[route], std::uint64_t(duration.count()));
    }

    // This worker's dirty-call cells (after bind()).
    DirtyCallMeter dirty_meter(int slot) { return DirtyCallMeter(dirty_calls_.of(slot), dirty_pending_.of(slot)); }

    // ---- the master ----
    Supervision& supervision() { return *supervision_; }
    const Supervision& supervision() const { return *supervision_; }

    // ---- whoever answers GET /metrics ----
    void write(MetricsText& out, const Scoreboard& scoreboard) const;

private:
    PerWorker<RequestCounters> requests_;
    Shared<RouteNames> routes_;
    Shared<Supervision> supervision_;
    PerWorker<DirtyCallCounters> dirty_calls_;
    PerWorker<DirtyCallsPending> dirty_pending_;
    RequestCounters* mine_ = nullptr;
    void write_dirty(MetricsText& out, std::uint64_t jobs_running) const;
};

}  // namespace agente::core
