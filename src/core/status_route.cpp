#include "core/status_route.hpp"

#include <string>
#include <vector>

namespace agente::core {

namespace {

std::string n(std::uint64_t v) { return std::to_string(v); }

void worker_table(StatusPage& page, const std::vector<WorkerView>& workers, Pool pool, std::int64_t now_ns) {
    bool http = pool == Pool::http;
    if (http) {
        page.table({"pid", "generation", "state", "age", "requests", "connections", "in flight", "memory"});
    } else {
        page.table({"pid", "generation", "state", "age", "jobs run", "jobs running", "memory"});
    }
    for (const WorkerView& w : workers) {
        if (w.pool != pool) continue;
        std::string age = "-";
        if (w.started_ns > 0) age = human_duration((now_ns - w.started_ns) / 1'000'000'000);
        std::string memory = "-";   // the master reads it once a second: none yet for a new worker
        if (w.memory_bytes) memory = human_bytes(w.memory_bytes);
        std::vector<std::string> cells = {n(std::uint64_t(w.pid)), n(w.generation), std::string(worker_state_name(w.state)),
                                          age, n(w.requests), n(w.connections)};
        if (http) cells.push_back(n(w.in_flight));
        cells.push_back(memory);
        page.row(cells);
    }
}

}  // namespace

void write_core_status(StatusPage& page, const CoreMetrics& metrics, const Scoreboard& scoreboard,
                       std::int64_t now_ns, std::time_t now_unix) {
    const Supervision& sv = metrics.supervision();
    std::vector<WorkerView> workers = live_workers(scoreboard);
    std::size_t http = 0;
    for (const auto& w : workers) http += w.pool == Pool::http;

    page.section("Server");
    std::int64_t started = sv.started_unix.load();
    std::string up = "-";
    if (started > 0) up = human_duration(now_unix - started);
    std::string reloads = n(sv.reloads_applied.load()) + " applied, " + n(sv.reloads_refused.load()) + " refused";
    if (sv.last_reload_refused.load()) reloads += " (the last one was refused: the previous configuration serves)";
    page.table({"generation", "up", "reloads", "HTTP workers", "dirty workers"});
    page.row({n(sv.generation.load()), up, reloads, n(http), n(workers.size() - http)});

    page.section("HTTP workers");
    worker_table(page, workers, Pool::http, now_ns);
    page.section("Dirty workers");
    if (workers.size() == http) {
        page.note("No dirty worker (dirty_workers = 0).");
    } else {
        worker_table(page, workers, Pool::dirty, now_ns);
    }
}

void add_status_route(RouteTable& routes, const CoreMetrics& metrics, const Scoreboard& scoreboard, App& app) {
    routes.add("GET", "/status", SyncHandler([&metrics, &scoreboard, &app](const Request& request) {
                   if (auto refusal = app.refuse_admin(request)) return std::move(*refusal);
                   StatusPage page;
                   write_core_status(page, metrics, scoreboard, monotonic_ns(), std::time(nullptr));
                   app.write_status(page);
                   Response r;
                   r.content_type = std::string(StatusPage::content_type);
                   r.body = page.finish("agente-hibrido status", status_refresh_seconds);
                   r.headers.push_back({"Content-Security-Policy", std::string(StatusPage::content_security_policy)});
                   // The token may be in the address: never cached, never sent on as a Referer.
                   r.headers.push_back({"Cache-Control", "no-store"});
                   r.headers.push_back({"Referrer-Policy", "no-referrer"});
                   r.headers.push_back({"X-Content-Type-Options", "nosniff"});
                   return r;
               }));
}

}  // namespace agente::core
