// What every worker process does first, HTTP or dirty: its title, the signals only the master
// handles, and switching to `user` and `group` after the master bound the sockets (as gunicorn's
// workers do); and the boot-error exit when its set-up throws.
#pragma once

#include <agente/config.hpp>

#include <boost/asio/signal_set.hpp>

#include <functional>
#include <string>

namespace agente::core {

// "agente-hibrido: <role> [name]", with " (draining)" once it drains.
std::string worker_title(const char* role, const Config& config, bool draining = false);

// Throws std::runtime_error naming the user or group that cannot be switched to.
void drop_privileges(const Config& config);

// Sets the process up as a worker of `role` ("worker", "dirty worker"), then runs `body`; an
// exception on the way is logged and becomes worker_boot_error, which the master counts as a
// failed boot.
int run_worker_process(const char* role, const Config& config, const std::function<int()>& body);

// A worker's signals, from its own loop: TERM drains, USR1 reopens the logs, INT and QUIT stop now.
// Keeps listening until the loop stops.
struct WorkerSignals {
    std::function<void()> drain, reopen_logs, stop_now;
};
void watch_worker_signals(boost::asio::signal_set& signals, WorkerSignals on);

}  // namespace agente::core
