#include "core/systemd_notify.hpp"

#include <systemd/sd-daemon.h>
#include <time.h>

namespace agente::core {

namespace {
void send(const std::string& message) { ::sd_notify(0, message.c_str()); }

unsigned long long monotonic_usec() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<unsigned long long>(ts.tv_sec) * 1'000'000ULL + ts.tv_nsec / 1000;
}
}  // namespace

void notify_ready(const std::string& status) { send("READY=1\nSTATUS=" + status); }

void notify_reloading(const std::string& status) {
    send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(monotonic_usec()) + "\nSTATUS=" + status);
}

void notify_stopping(const std::string& status) { send("STOPPING=1\nSTATUS=" + status); }
void notify_status(const std::string& status) { send("STATUS=" + status); }
void notify_mainpid(int pid) { send("MAINPID=" + std::to_string(pid)); }

// Read once and removed from the environment: workers must not inherit it, and a USR2 successor
// gets WATCHDOG_USEC alone (WATCHDOG_PID would name us, and it would stay silent).
unsigned long long watchdog_interval_usec() {
    uint64_t usec = 0;
    return ::sd_watchdog_enabled(1, &usec) > 0 ? usec : 0;
}

void notify_watchdog() { send("WATCHDOG=1"); }

}  // namespace agente::core
