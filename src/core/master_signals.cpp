#include "core/bind_address.hpp"
#include "core/log.hpp"
#include "core/master_state.hpp"
#include "core/tls.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <filesystem>

namespace agente::core {

void Master::handle_signal(int sig) {
    switch (sig) {
        case SIGHUP: return handle_hup();
        case SIGTERM: return handle_term();
        case SIGINT: case SIGQUIT: return handle_quit(sig);
        case SIGTTIN: return handle_ttin();
        case SIGTTOU: return handle_ttou();
        case SIGUSR1: return handle_usr1();
        case SIGUSR2: return handle_usr2();
        case SIGWINCH: return;  // gunicorn ignores WINCH unless daemonized; we never daemonize
    }
}

void Master::handle_hup() {
    if (stop_ != Stop::none) return;
    spdlog::info("Handling signal: hup");
    reload();
}

// Reload: everything new is read, validated, bound and opened first, and only when all of it
// succeeded does anything the master holds change. A refused reload leaves the sockets, the
// log, the app's settings and the workers' config snapshot exactly as they were.
void Master::reload() {
    notify_reloading("reloading configuration");
    int snapshot = -1, tls_snapshot = -1;
    Supervision& counters = metrics_.supervision();
    counters.last_reload_unix = std::time(nullptr);
    try {
        Config next = reload_config(config_);
        check_config_environment(next);
        auto tls = read_tls_files(next);  // re-read: a renewed certificate served, a broken one refused
        ListenerUpdate listeners(listeners_, socket_addresses(next), next.backlog);
        auto error_log = open_error_log(next);
        snapshot = snapshot_config(next);
        std::optional<DirtySocket> dirty_socket = new_dirty_socket(next);
        if (tls) tls_snapshot = share_tls_files(*tls);
        app_->on_master_config(next);  // last: it validates, then takes the new settings
        listeners.commit(listeners_);  // from here on nothing throws
        std::swap(config_fd_, snapshot);
        std::swap(tls_fd_, tls_snapshot);
        commit_dirty_socket(std::move(dirty_socket), next);
        config_ = std::move(next);
        spdlog::set_default_logger(std::move(error_log));
    } catch (const std::exception& e) {
        if (snapshot >= 0) ::close(snapshot);
        if (tls_snapshot >= 0) ::close(tls_snapshot);
        spdlog::error("Reload refused, still serving with the previous configuration: {}", e.what());
        last_error_ = e.what();
        bump(counters.reloads_refused);
        counters.last_reload_refused = 1;
        notify_ready(status_text());
        return;
    }
    if (snapshot >= 0) ::close(snapshot);  // the previous generation's
    if (tls_snapshot >= 0) ::close(tls_snapshot);
    bump(counters.reloads_applied);
    counters.last_reload_refused = 0;
    mark_tls_listeners();
    title("master");
    write_pidfile();
    http_.target = config_.workers;
    dirty_.target = config_.dirty_workers;
    ++generation_;
    counters.generation = std::uint32_t(generation_);
    reloading_ = true;
    spdlog::info("Hang up: Master (generation {})", generation_);
    watch_for_reload();
}

// --reload: the binary, the config file or an extra file saved is a HUP. The watcher only
// records; the decision is taken here, in the cycle, like a signal's.
void Master::reload_on_change() {
    if (!reload_watcher_ || stop_ != Stop::none) return;
    std::optional<ReloadCause> cause = reload_watcher_->take_due(Clock::now());
    if (!cause) return;
    spdlog::info("Changed on disk: {}; reloading", cause->describe());
    // New workers are exec'd from the file on disk: a rebuilt app and worker run at once. The
    // master's own code (supervision, config parsing) stays what it started with.
    if (cause->binary())
        spdlog::info("The binary changed: the new workers run it; the master itself changes on a restart "
                     "(or USR2)");
    reload();
}

// Starts, changes or ends the watch to match the configuration now in force (and after a
// reload that changed reload, reload_extra_files or the config file's place).
void Master::watch_for_reload() {
    std::error_code ec;
    std::string cwd = std::filesystem::current_path(ec).string();
    std::vector<WatchedFile> files = reload_watch_list(config_, exe_, cwd);
    if (reload_watcher_ && reload_watcher_->files() == files) return;
    reload_watcher_.reset();
    if (files.empty()) return;
    try {
        reload_watcher_ = std::make_unique<ReloadWatcher>(ioc_, files);
    } catch (const std::exception& e) {
        spdlog::error("reload: cannot watch for changes, reload on SIGHUP only: {}", e.what());
        return;
    }
    std::string names;
    for (const auto& f : files) names += (names.empty() ? "" : ", ") + f.path;
    spdlog::info("reload: watching {}", names);
}

void Master::handle_term() {
    if (stop_ == Stop::graceful) return;
    spdlog::info("Handling signal: term");
    // TERM from our USR2 successor, which systemd now knows as MAINPID: retire without a word,
    // or STOPPING=1 would make systemd stop the whole service.
    if (successor_ > 0) quiet_ = true;
    begin_stop(Stop::graceful, SIGTERM);
}

void Master::handle_quit(int sig) {
    spdlog::info("Handling signal: {}", sig == SIGINT ? "int" : "quit");
    begin_stop(Stop::fast, SIGQUIT);
}

// A graceful stop drains the HTTP workers first: the dirty pool serves their last requests'
// calls, and is told to stop once no HTTP worker is left (stop_dirty_pool). A fast one stops all.
void Master::begin_stop(Stop how, int sig) {
    stop_ = how;
    if (!quiet_) notify_stopping("stopping");
    close_listeners(listeners_);  // new connections are refused rather than queued and reset
    auto now = Clock::now();
    for (auto& [pid, w] : workers_) {
        if (how == Stop::graceful && w.pool == Pool::dirty) continue;
        ::kill(pid, sig);
        if (!w.draining) w.drain_reason = ExitReason::shutdown;   // one draining for a reload stays one
        w.draining = true;
        w.kill_at = how == Stop::graceful ? drain_deadline(limits_of(w.pool), now) : now + fast_stop_grace;
    }
    stop_dirty_pool();
}

void Master::handle_ttin() {
    if (http_.target < Scoreboard::max_slots) ++http_.target;
    spdlog::info("Handling signal: ttin; workers now {}", http_.target);
}

void Master::handle_ttou() {
    if (http_.target > 1) --http_.target;
    spdlog::info("Handling signal: ttou; workers now {}", http_.target);
}

void Master::handle_usr1() {
    spdlog::info("Handling signal: usr1");
    setup_error_log(config_);
    for (auto& [pid, w] : workers_) ::kill(pid, SIGUSR1);
}

// Upgrade the binary in place: a new master inherits the sockets; we retire once it serves.
void Master::handle_usr2() {
    if (successor_ > 0 || stop_ != Stop::none) return;
    spdlog::info("Handling signal: usr2");
    std::vector<std::string> env = {"AGENTE_HIBRIDO_LISTEN_FDS=" + format_fds(listeners_),
                                    "AGENTE_HIBRIDO_OLD_MASTER=" + std::to_string(::getpid())};
    if (watchdog_usec_) env.push_back("WATCHDOG_USEC=" + std::to_string(watchdog_usec_));  // no PID: it's theirs
    std::vector<int> keep;
    for (const auto& l : listeners_) keep.push_back(l.fd);
    successor_ = exec_child(exe_, argv_, env, keep, Child::detached_master);
    spdlog::info("Started new master with pid: {}", successor_);
}

// The successor is not our child (see Child::detached_master): look for it instead of reaping.
void Master::watch_successor() {
    if (successor_ <= 0 || ::kill(successor_, 0) == 0 || errno != ESRCH) return;
    spdlog::error("New master (pid:{}) exited before it took over; still serving", successor_);
    successor_ = 0;
}

}  // namespace agente::core
