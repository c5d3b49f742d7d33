// WorkerSetup across exec: the environment an exec'd worker (of either pool) reads its setup from.
#include "core/worker.hpp"

#include <algorithm>
#include <cstdlib>
#include <iterator>
#include <string>
#include <string_view>

namespace agente::core {

namespace {

const char* env(const char* name) {
    const char* v = std::getenv(name);
    return v ? v : "";
}

}  // namespace

bool WorkerSetup::from_environment() {
    if (std::string(env("AGENTE_WORKER_SLOT")).empty()) return false;
    pool = std::string_view(env("AGENTE_WORKER_POOL")) == "dirty" ? Pool::dirty : Pool::http;
    listeners = parse_fds(env("AGENTE_WORKER_FDS"));
    for (const auto& tls : parse_fds(env("AGENTE_WORKER_TLS_FDS")))
        for (auto& l : listeners) l.tls = l.tls || l.fd == tls.fd;
    tls_fd = std::string(env("AGENTE_WORKER_TLS")).empty() ? -1 : std::atoi(env("AGENTE_WORKER_TLS"));
    scoreboard_fd = std::atoi(env("AGENTE_WORKER_SCOREBOARD"));
    slot = std::atoi(env("AGENTE_WORKER_SLOT"));
    master_pid = std::atoi(env("AGENTE_WORKER_MASTER"));
    max_requests = std::strtoull(env("AGENTE_WORKER_MAX_REQUESTS"), nullptr, 10);
    dirty_address = env("AGENTE_WORKER_DIRTY");
    for (const char* name : {"AGENTE_WORKER_POOL", "AGENTE_WORKER_FDS", "AGENTE_WORKER_TLS_FDS", "AGENTE_WORKER_TLS",
                             "AGENTE_WORKER_SCOREBOARD", "AGENTE_WORKER_SLOT", "AGENTE_WORKER_MASTER",
                             "AGENTE_WORKER_MAX_REQUESTS", "AGENTE_WORKER_DIRTY"})
        ::unsetenv(name);
    return true;
}

std::vector<std::string> WorkerSetup::to_environment() const {
    std::vector<Listener> tls;
    std::copy_if(listeners.begin(), listeners.end(), std::back_inserter(tls), [](const Listener& l) { return l.tls; });
    return {std::string("AGENTE_WORKER_POOL=") + (pool == Pool::dirty ? "dirty" : "http"),
            "AGENTE_WORKER_FDS=" + format_fds(listeners),
            "AGENTE_WORKER_TLS_FDS=" + format_fds(tls),
            "AGENTE_WORKER_TLS=" + (tls_fd >= 0 ? std::to_string(tls_fd) : std::string()),
            "AGENTE_WORKER_SCOREBOARD=" + std::to_string(scoreboard_fd),
            "AGENTE_WORKER_SLOT=" + std::to_string(slot),
            "AGENTE_WORKER_MASTER=" + std::to_string(master_pid),
            "AGENTE_WORKER_MAX_REQUESTS=" + std::to_string(max_requests),
            "AGENTE_WORKER_DIRTY=" + dirty_address};
}

}  // namespace agente::core
