// A worker: one process, one single-threaded io_context, serving connections accepted from the
// listening sockets it inherited. It stamps its heartbeat into the scoreboard, drains on TERM and
// leaves on its own when its master is gone.
#pragma once

#include "core/arbiter.hpp"
#include "core/listeners.hpp"

#include <agente/config.hpp>

#include <cstdint>
#include <sys/types.h>
#include <vector>

namespace agente::core {

// Named exit codes, read by the master to classify a worker's end (gunicorn's WORKER_BOOT_ERROR).
inline constexpr int worker_boot_error = 3;

// What the master hands a worker of either pool across exec, besides the configuration.
struct WorkerSetup {
    Pool pool = Pool::http;
    std::vector<Listener> listeners;  // a dirty worker: the dirty socket; `tls` marks those that serve TLS
    int tls_fd = -1;                  // the TLS files the master checked (tls.hpp); -1: none
    int scoreboard_fd = -1;
    int slot = -1;
    pid_t master_pid = 0;
    std::uint64_t max_requests = 0;   // with jitter applied; 0: no recycling
    std::string dirty_address;        // an HTTP worker: where to call the dirty pool; empty: no pool

    bool from_environment();          // true when this process was started as a worker
    std::vector<std::string> to_environment() const;
};

// Runs until the worker is told to stop; returns the process exit code.
int run_worker(const Config& config, const WorkerSetup& setup);

}  // namespace agente::core
