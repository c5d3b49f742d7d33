#include "core/master.hpp"

#include "core/bind_address.hpp"
#include "core/dirty_worker.hpp"
#include "core/log.hpp"
#include "core/master_state.hpp"
#include "core/proc_title.hpp"
#include "core/tls.hpp"

#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>

namespace agente::core {

namespace {

using namespace std::chrono_literals;
constexpr auto tick_interval = 100ms;
constexpr auto status_interval = 5s;        // systemd's STATUS= line refreshed this often
constexpr auto memory_note_interval = 1s;   // how often each worker's resident memory is read

}  // namespace

Master::Master(Config config, std::vector<std::string> argv)
    : config_(std::move(config)), argv_(std::move(argv)), exe_(exe_path()),
      exe_stamp_(stamp_of(exe_)), app_(make_app()), signals_(ioc_), tick_(ioc_) {
    http_.target = config_.workers;
    dirty_.target = config_.dirty_workers;
    app_->declare_shared(layout_);
}

int Master::run() {
    start();
    if (exit_code_ != 0) return exit_code_;
    wait_for_signal();
    schedule_tick();
    ioc_.run();
    halt();
    return exit_code_;
}

void Master::start() {
    title("master");
    spdlog::info("Starting agente-hibrido {}", AGENTE_VERSION);
    scoreboard_.create();   // the app's hooks find their shared regions mapped
    metrics_.supervision().started_unix = std::time(nullptr);
    metrics_.supervision().generation = std::uint32_t(generation_);
    try {
        app_->on_master_config(config_);   // a reload catches the same errors and serves on
    } catch (const std::exception& e) {
        // An app table the validators could not judge alone (an unset api_key_env, a database
        // schema behind the binary): a start refused with its reason, not an abort.
        spdlog::error("Error: {}", e.what());
        exit_code_ = 1;
        return;
    }
    std::optional<TlsFiles> tls;
    try {
        tls = read_tls_files(config_);
    } catch (const std::exception& e) {
        spdlog::error("TLS unusable: {}", e.what());
        exit_code_ = 1;
        return;
    }
    try {
        // Sockets passed by systemd are all served when `bind` was not set (as gunicorn does).
        listeners_ = inherited_listeners(config_.bind_given ? socket_addresses(config_) : std::vector<std::string>{});
        if (listeners_.empty()) listeners_ = bind_listeners(socket_addresses(config_), config_.backlog);
        commit_dirty_socket(new_dirty_socket(config_), config_);
    } catch (const std::exception& e) {
        spdlog::error("Connection in use or unusable: {}", e.what());
        exit_code_ = 1;
        return;
    }
    mark_tls_listeners();
    for (const auto& l : listeners_)
        spdlog::info("Listening at: {}{} ({})", l.tls ? "https://" : "", l.address, ::getpid());
    ::umask(mode_t(config_.umask));
    write_pidfile();
    config_fd_ = snapshot_config(config_);
    tls_fd_ = tls ? share_tls_files(*tls) : -1;
    if (const char* old = std::getenv("AGENTE_HIBRIDO_OLD_MASTER")) {
        old_master_ = std::atoi(old);
        ::unsetenv("AGENTE_HIBRIDO_OLD_MASTER");
    }
    watch_for_reload();
    manage_workers();
}

// Which listeners serve TLS follows from the configuration: worked out when the listeners or the
// configuration change (start, an applied reload), and copied into every worker's setup as it is.
void Master::mark_tls_listeners() {
    for (auto& l : listeners_) l.tls = serves_tls(config_, l.address);
}

void Master::halt() {
    close_listeners(listeners_);
    remove_pidfile();
    spdlog::info("Shutting down: Master");
}

void Master::wait_for_signal() {
    for (int s : {SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2, SIGWINCH, SIGCHLD})
        signals_.add(s);
    signals_.async_wait([this](error_code ec, int sig) {
        if (ec) return;
        if (sig != SIGCHLD) pending_signals_.push_back(sig);
        cycle();
        wait_for_signal();
    });
}

void Master::schedule_tick() {
    tick_.expires_after(tick_interval);
    tick_.async_wait([this](error_code ec) {
        if (ec) return;
        cycle();
        schedule_tick();
    });
}

void Master::cycle() {
    while (!pending_signals_.empty()) {
        int sig = pending_signals_.front();
        pending_signals_.pop_front();
        handle_signal(sig);
    }
    reload_on_change();
    read_scoreboard();  // first: a worker that served and then died is a crash, not a boot failure
    reap_workers();
    stop_dirty_pool();
    murder_stale_workers();
    manage_workers();
    watch_successor();
    note_worker_memory();
    report_status();
    if (stop_ != Stop::none && workers_.empty()) ioc_.stop();
}

std::string Master::status_text() {
    int ready = 0, dirty_ready = 0;
    std::uint64_t served = 0, jobs = 0;
    for (auto& [pid, w] : workers_) {
        bool serving = w.ready && !w.draining;
        auto count = scoreboard_.slot(w.slot).requests.load(std::memory_order_relaxed);
        if (w.pool == Pool::dirty) {
            dirty_ready += serving;
            jobs += count;
        } else {
            ready += serving;
            served += count;
        }
    }
    std::string s = std::to_string(ready) + " workers ready, generation " + std::to_string(generation_) + ", " +
                    std::to_string(served) + " requests served by live workers";
    if (dirty_.target > 0 || dirty_ready > 0)
        s += "; " + std::to_string(dirty_ready) + " dirty workers ready, " + std::to_string(jobs) + " jobs run";
    if (!last_error_.empty()) s += "; last error: " + last_error_;
    return s;
}

// Each worker's resident memory into its slot, for /metrics and /status (a worker reading its
// siblings' /proc files would read files on its loop).
void Master::note_worker_memory() {
    auto now = Clock::now();
    if (now < next_memory_note_) return;
    next_memory_note_ = now + memory_note_interval;
    static const long page = ::sysconf(_SC_PAGESIZE);
    for (auto& [pid, w] : workers_) {
        std::ifstream statm("/proc/" + std::to_string(pid) + "/statm");
        std::uint64_t size = 0, resident = 0;
        if (statm >> size >> resident) scoreboard_.slot(w.slot).memory_bytes = resident * std::uint64_t(page);
    }
}

void Master::report_status() {
    if (quiet_) return;
    auto now = Clock::now();
    if (watchdog_usec_ && now >= next_watchdog_) {
        notify_watchdog();
        next_watchdog_ = now + std::chrono::microseconds(watchdog_usec_ / 2);
    }
    if (now >= next_status_) {
        notify_status(status_text());
        next_status_ = now + status_interval;
    }
}

void Master::title(const char* role) {
    set_proc_title(std::string("agente-hibrido: ") + role + " [" + config_.display_name() + "]");
}

// Workers read the bytes this master validated, not the file: an edit saved without a HUP must
// not reach a worker that happens to start (a respawn, a recycle) and break it. Returns the
// snapshot's fd (-1 without a file), which the workers' exec inherits.
int Master::snapshot_config(const Config& config) {
    if (config.config_path.empty()) return -1;
    std::ifstream in(config.config_path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    int fd = ::memfd_create("agente-hibrido-config", 0);
    if (fd >= 0 && ::write(fd, bytes.data(), bytes.size()) == ssize_t(bytes.size())) return fd;
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("cannot snapshot the configuration");
}

// The file was checked with the configuration; one that still fails is said, not skipped.
void Master::write_pidfile() {
    if (config_.pidfile.empty()) return;
    std::ofstream out(config_.pidfile);
    if (!(out << ::getpid() << "\n" << std::flush))
        spdlog::error("Cannot write the pidfile {}: {}", config_.pidfile, std::strerror(errno));
}

// Only our own: after USR2 the file names the new master.
void Master::remove_pidfile() {
    if (config_.pidfile.empty()) return;
    std::ifstream in(config_.pidfile);
    pid_t pid = 0;
    if (in >> pid && pid == ::getpid()) ::unlink(config_.pidfile.c_str());
}

PoolLimits Master::limits_of(Pool pool) const {
    if (pool == Pool::dirty)
        return {std::chrono::seconds(config_.dirty_timeout), std::chrono::seconds(config_.boot_timeout),
                std::chrono::seconds(config_.dirty_graceful_timeout)};
    return {std::chrono::seconds(config_.timeout), std::chrono::seconds(config_.boot_timeout),
            std::chrono::seconds(config_.graceful_timeout)};
}

int run_master(Config config, std::vector<std::string> argv) {
    ::signal(SIGPIPE, SIG_IGN);
    std::optional<ForkedWorker> forked;
    try {
        Master master(std::move(config), std::move(argv));
        return master.run();
    } catch (ForkedWorker& child) {
        forked.emplace(std::move(child));
    }
    // A worker forked from the master (Master::fork_worker_process), as main() starts an exec'd one.
    // The master's error log goes first, while its file is still open here: let go after the fds
    // are closed, it would close whichever file had taken its number by then (the worker's own
    // log, opened next), and the worker's lines would go to the descriptor after that (its epoll).
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("agente-hibrido"));
    spdlog::drop_all();
    enter_forked_child(forked->keep_fds, forked->mask);
    close_systemd_library();
    try {
        setup_error_log(forked->config);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "Error: cannot open the error log: %s\n", e.what());
        return 1;
    }
    if (forked->setup.pool == Pool::dirty) return run_dirty_worker(forked->config, forked->setup);
    return run_worker(forked->config, forked->setup);
}

}  // namespace agente::core
