#include "core/systemd_notify.hpp"

#include <dlfcn.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include <cstdlib>
#include <optional>

namespace agente::core {

namespace {

// libsystemd, opened on first use rather than linked: only the master talks to systemd, and the
// workers (exec'd from the same binary) were loading it and the five libraries it pulls in (gcrypt,
// gpg-error, lz4, lzma, zstd, cap) for nothing: their relocated pages were ~150 KB of each worker's
// PSS. systemd's own tools open their optional libraries the same way.
struct Systemd {
    void* library = nullptr;
    decltype(&::sd_notify) notify = nullptr;
    decltype(&::sd_watchdog_enabled) watchdog_enabled = nullptr;
    decltype(&::sd_listen_fds) listen_fds = nullptr;
};

std::optional<Systemd>& opened() {
    static std::optional<Systemd> once;  // empty: not tried yet
    return once;
}

const Systemd& systemd() {
    std::optional<Systemd>& once = opened();
    if (once) return *once;
    once = [] {
        Systemd s;
        void* library = ::dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
        if (!library) {
            // Under systemd this library is always there; without it nothing asks for these calls.
            if (std::getenv("NOTIFY_SOCKET") || std::getenv("LISTEN_FDS"))
                spdlog::error("Cannot load libsystemd.so.0 ({}): no readiness notification, no socket activation",
                              ::dlerror());
            return s;
        }
        s.library = library;
        s.notify = reinterpret_cast<decltype(s.notify)>(::dlsym(library, "sd_notify"));
        s.watchdog_enabled = reinterpret_cast<decltype(s.watchdog_enabled)>(::dlsym(library, "sd_watchdog_enabled"));
        s.listen_fds = reinterpret_cast<decltype(s.listen_fds)>(::dlsym(library, "sd_listen_fds"));
        return s;
    }();
    return *once;
}

void send(const std::string& message) {
    if (!std::getenv("NOTIFY_SOCKET")) return;  // sd_notify's own first test, without loading it
    if (auto notify = systemd().notify) notify(0, message.c_str());
}

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
    if (!std::getenv("WATCHDOG_USEC") && !std::getenv("WATCHDOG_PID")) return 0;  // nothing to read or clear
    auto enabled = systemd().watchdog_enabled;
    uint64_t usec = 0;
    return enabled && enabled(1, &usec) > 0 ? usec : 0;
}

int listen_fds() {
    if (!std::getenv("LISTEN_FDS") && !std::getenv("LISTEN_PID")) return 0;  // nothing to read or clear
    auto listen = systemd().listen_fds;
    return listen ? listen(1) : 0;
}

void notify_watchdog() { send("WATCHDOG=1"); }

void close_systemd_library() {
    std::optional<Systemd>& once = opened();
    if (once && once->library) ::dlclose(once->library);
    once = Systemd{};  // tried, and nothing to call: not opened again
}

}  // namespace agente::core
