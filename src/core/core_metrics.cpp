#include "core/core_metrics.hpp"

#include <map>
#include <tuple>
#include <string>

namespace agente::core {

namespace {

constexpr std::string_view fixed_route_names[] = {"unmatched", "invalid", "other"};
constexpr std::string_view worker_state_names[] = {"free", "booting", "ready", "draining"};

// Requests and durations of one route label, summed over workers (and over entries of the route
// table that name the same pattern: two workers registering it at once may each have added one).
struct RouteTotals {
    std::uint64_t requests[method_labels][status_classes] = {};
    std::uint64_t buckets[latency_buckets] = {};
    std::uint64_t sum_us = 0;

    void add(const RequestCounters& c, int label) {
        for (int m = 0; m < method_labels; ++m)
            for (int s = 0; s < status_classes; ++s) requests[m][s] += c.requests[label][m][s].load();
        for (std::size_t b = 0; b < latency_buckets; ++b) buckets[b] += c.duration_buckets[label][b].load();
        sum_us += c.duration_sum_us[label].load();
    }
};

}  // namespace

std::string_view worker_state_name(WorkerState state) {
    if (std::size_t(state) >= std::size(worker_state_names)) return "unknown";
    return worker_state_names[std::size_t(state)];
}

std::vector<WorkerView> live_workers(const Scoreboard& scoreboard) {
    std::vector<WorkerView> out;
    for (int i = 0; i < Scoreboard::all_slots; ++i) {
        const Slot& s = scoreboard.slot(i);
        std::uint32_t state = s.state.load(std::memory_order_relaxed);
        if (state == std::uint32_t(WorkerState::free) || state >= std::size(worker_state_names)) continue;
        WorkerView& w = out.emplace_back();
        w.slot = i;
        if (i >= Scoreboard::first_dirty_slot) w.pool = Pool::dirty;
        w.state = WorkerState(state);
        w.pid = s.pid.load(std::memory_order_relaxed);
        w.generation = s.generation.load(std::memory_order_relaxed);
        w.requests = s.requests.load(std::memory_order_relaxed);
        w.connections = s.connections.load(std::memory_order_relaxed);
        w.in_flight = s.in_flight.load(std::memory_order_relaxed);
        w.started_ns = s.started_ns.load(std::memory_order_relaxed);
        w.memory_bytes = s.memory_bytes.load(std::memory_order_relaxed);
    }
    return out;
}

CoreMetrics::CoreMetrics(SharedLayout& layout)
    : requests_(layout.declare_per_worker<RequestCounters>("core.requests", OnExit::fold)),
      routes_(layout.declare<RouteNames>("core.routes")),
      supervision_(layout.declare<Supervision>("core.supervision")),
      dirty_calls_(layout.declare_per_worker<DirtyCallCounters>("core.dirty_calls", OnExit::fold)),
      dirty_pending_(layout.declare_per_worker<DirtyCallsPending>("core.dirty_pending")) {}

void CoreMetrics::write_dirty(MetricsText& out, std::uint64_t jobs_running) const {
    auto calls = dirty_calls_.total();
    out.family("agente_dirty_calls_total", "counter",
               "Calls HTTP workers made to the dirty pool, by outcome (ok, timeout, unavailable, job_failed, "
               "worker_died, cancelled).");
    for (int o = 0; o < dirty_outcomes; ++o) {
        std::string_view outcome = "ok";
        if (DirtyErrc(o) != DirtyErrc::none) outcome = to_string(DirtyErrc(o));
        out.sample("agente_dirty_calls_total", {{"outcome", outcome}}, calls->calls[o].load());
    }
    out.family("agente_dirty_call_duration_seconds", "histogram",
               "A dirty-pool call from the caller's side: connect, queue, job and answer.");
    std::uint64_t buckets[latency_buckets];
    for (std::size_t b = 0; b < latency_buckets; ++b) buckets[b] = calls->duration_buckets[b].load();
    out.histogram("agente_dirty_call_duration_seconds", {}, latency_bounds_s, buckets,
                  double(calls->duration_sum_us.load()) / 1e6);
    std::uint64_t pending = 0;
    for (int i = 0; i < Scoreboard::max_slots; ++i) pending += dirty_pending_.of(i).pending.load(std::memory_order_relaxed);
    out.family("agente_dirty_calls_pending", "gauge", "Dirty-pool calls under way now (queued or running).");
    out.sample("agente_dirty_calls_pending", {}, pending);
    out.family("agente_dirty_queue_depth", "gauge",
               "Dirty-pool calls waiting for a free dirty thread: pending calls less the jobs running.");
    std::uint64_t queued = 0;
    if (pending > jobs_running) queued = pending - jobs_running;
    out.sample("agente_dirty_queue_depth", {}, queued);
}

int CoreMetrics::route_label(std::string_view pattern) {
    int i = routes_->intern(pattern);
    return i < 0 ? int(RouteLabel::overflow) : i;
}

void CoreMetrics::write(MetricsText& out, const Scoreboard& scoreboard) const {
    auto total = requests_.total();
    std::map<std::string, RouteTotals, std::less<>> routes;
    for (int i = 0; i < route_labels; ++i) {
        std::string_view name = i < max_route_labels ? routes_->name(i) : fixed_route_names[i - max_route_labels];
        if (!name.empty()) routes[std::string(name)].add(*total, i);
    }

    out.family("agente_http_requests_total", "counter",
               "Requests answered, by route pattern (unmatched: no route; invalid: refused before routing), method "
               "and status class (none: the client left before the answer).");
    for (const auto& [route, t] : routes)
        for (int m = 0; m < method_labels; ++m)
            for (int s = 0; s < status_classes; ++s)
                if (t.requests[m][s])
                    out.sample("agente_http_requests_total",
                               {{"route", route}, {"method", method_names[m]}, {"status", status_class_names[s]}},
                               t.requests[m][s]);

    out.family("agente_http_request_duration_seconds", "histogram",
               "Time from a request's head read to its answer written, by route pattern.");
    for (const auto& [route, t] : routes) {
        std::uint64_t count = 0;
        for (auto b : t.buckets) count += b;
        if (count)
            out.histogram("agente_http_request_duration_seconds", {{"route", route}}, latency_bounds_s, t.buckets,
                          double(t.sum_us) / 1e6);
    }

    std::uint64_t in_flight = 0, connections = 0, jobs = 0, memory[pools] = {};
    // (pool, generation, state) -> count
    std::map<std::tuple<int, std::uint32_t, std::uint32_t>, std::uint64_t> workers;
    for (const WorkerView& w : live_workers(scoreboard)) {
        int pool = int(w.pool);
        if (w.pool == Pool::http) {
            in_flight += w.in_flight;
            connections += w.connections;
        } else {
            jobs += w.connections;   // a dirty worker's: jobs running
        }
        memory[pool] += w.memory_bytes;
        ++workers[{pool, w.generation, std::uint32_t(w.state)}];
    }
    out.family("agente_http_requests_in_flight", "gauge", "Requests being answered now, over every worker.");
    out.sample("agente_http_requests_in_flight", {}, in_flight);
    out.family("agente_http_connections", "gauge", "Client connections open now, over every worker.");
    out.sample("agente_http_connections", {}, connections);
    out.family("agente_dirty_jobs_running", "gauge", "Jobs running now in the dirty pool, over every dirty worker.");
    out.sample("agente_dirty_jobs_running", {}, jobs);
    out.family("agente_workers", "gauge", "Worker processes alive, by pool (http, dirty), generation and state.");
    for (const auto& [key, n] : workers) {
        std::string generation = std::to_string(std::get<1>(key));
        out.sample("agente_workers",
                   {{"pool", pool_names[std::get<0>(key)]}, {"generation", generation},
                    {"state", worker_state_names[std::get<2>(key)]}},
                   n);
    }
    out.family("agente_workers_resident_memory_bytes", "gauge",
               "Resident memory of the worker processes, summed by pool (read by the master every second).");
    for (int p = 0; p < pools; ++p) out.sample("agente_workers_resident_memory_bytes", {{"pool", pool_names[p]}}, memory[p]);

    write_dirty(out, jobs);

    const Supervision& sv = *supervision_;
    out.family("agente_worker_starts_total", "counter", "Worker processes started by the master.");
    for (int p = 0; p < pools; ++p)
        out.sample("agente_worker_starts_total", {{"pool", pool_names[p]}}, sv.worker_starts[p].load());
    out.family("agente_worker_exits_total", "counter",
               "Worker processes ended, by reason: boot_failure (the master backs off), timeout, crash, exited, "
               "max_requests, reload, scale_down, shutdown.");
    for (int p = 0; p < pools; ++p)
        for (int r = 0; r < exit_reasons; ++r)
            out.sample("agente_worker_exits_total", {{"pool", pool_names[p]}, {"reason", exit_reason_name(ExitReason(r))}},
                       sv.worker_exits[p][r].load());
    out.family("agente_generation", "gauge", "The current generation of workers (1 at start, one more per reload).");
    out.sample("agente_generation", {}, std::uint64_t(sv.generation.load()));
    out.family("agente_reloads_total", "counter", "Reloads (HUP, or a change seen with reload = true), by result.");
    out.sample("agente_reloads_total", {{"result", "applied"}}, sv.reloads_applied.load());
    out.sample("agente_reloads_total", {{"result", "refused"}}, sv.reloads_refused.load());
    out.family("agente_last_reload_refused", "gauge",
               "1 when the last reload was refused (the previous configuration still serves), else 0.");
    out.sample("agente_last_reload_refused", {}, std::uint64_t(sv.last_reload_refused.load()));
    out.family("agente_last_reload_timestamp_seconds", "gauge", "When the last reload was tried (0: never).");
    out.sample("agente_last_reload_timestamp_seconds", {}, sv.last_reload_unix.load());
    out.family("agente_start_time_seconds", "gauge", "When the master started, in seconds since the epoch.");
    out.sample("agente_start_time_seconds", {}, sv.started_unix.load());
}

}  // namespace agente::core
