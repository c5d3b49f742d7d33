// GET /status: the whole server for a person, as HTML (agente/status.hpp), from whichever worker
// answers, read from the same shared memory and with the same helpers as GET /metrics; the admin
// token required (the app's, App::refuse_admin).
#pragma once

#include "core/core_metrics.hpp"
#include "core/router.hpp"
#include "core/scoreboard.hpp"

#include <agente/app.hpp>
#include <agente/status.hpp>

#include <chrono>
#include <cstdint>
#include <ctime>

namespace agente::core {

// How often the page reloads itself.
inline constexpr int status_refresh_seconds = 5;

// The core's sections: the server (generation, reloads, uptime), HTTP workers, dirty workers.
// `now_ns` is CLOCK_MONOTONIC (the slots' clock), `now_unix` the wall clock (the master's start).
void write_core_status(StatusPage& page, const CoreMetrics& metrics, const Scoreboard& scoreboard,
                       std::int64_t now_ns, std::time_t now_unix);

void add_status_route(RouteTable& routes, const CoreMetrics& metrics, const Scoreboard& scoreboard, App& app);

}  // namespace agente::core
