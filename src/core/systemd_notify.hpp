// sd_notify(3) messages to the service manager, and socket activation's sd_listen_fds(3), through
// libsystemd opened on first use (only the master uses it); each is a no-op outside systemd.
#pragma once

#include <string>

namespace agente::core {

void notify_ready(const std::string& status);
void notify_reloading(const std::string& status);   // RELOADING=1 with MONOTONIC_USEC
void notify_stopping(const std::string& status);
void notify_status(const std::string& status);
void notify_mainpid(int pid);
// WatchdogSec's interval in microseconds, 0 when off; call once (it clears WATCHDOG_*).
unsigned long long watchdog_interval_usec();
void notify_watchdog();
// sd_listen_fds(1): how many sockets socket activation passed, from SD_LISTEN_FDS_START (it clears
// LISTEN_*); 0 without socket activation.
int listen_fds();

// In a worker forked from the master (spawn.hpp): closes libsystemd if the master had opened it, so
// that the worker does not map it and the libraries it pulls in; every call above is then a no-op.
void close_systemd_library();

}  // namespace agente::core
