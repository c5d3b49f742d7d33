// GET /metrics: Prometheus' text for the whole server (the core's families, then the app's), from
// whichever worker the scrape reaches, to whoever may read it.
#pragma once

#include "core/core_metrics.hpp"
#include "core/listeners.hpp"
#include "core/router.hpp"
#include "core/scoreboard.hpp"

#include <agente/app.hpp>
#include <agente/config.hpp>
#include <agente/secret.hpp>

#include <optional>
#include <vector>

namespace agente::core {

// Who may read /metrics: with metrics_token set, a request bearing it; without one, anyone when
// every listening socket is loopback or a unix socket, else nobody (a 403 that says what to set):
// figures about the server are not for the whole network by default.
class MetricsAccess {
public:
    MetricsAccess(const Config& config, const std::vector<Listener>& listeners);
    // Nothing when `request` may read /metrics; else the answer.
    std::optional<Response> refuse(const Request& request) const;
    bool open() const { return !token_ && all_local_; }

private:
    std::optional<SecretDigest> token_;
    bool all_local_ = true;
};

// Whether the socket behind `fd` can only be reached from this host: a loopback address or a unix
// socket.
bool local_only(int fd);

void add_metrics_route(RouteTable& routes, MetricsAccess access, const CoreMetrics& metrics,
                       const Scoreboard& scoreboard, App& app);

}  // namespace agente::core
