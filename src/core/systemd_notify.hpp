// sd_notify(3) messages to the service manager; each call is a no-op without NOTIFY_SOCKET.
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

}  // namespace agente::core
