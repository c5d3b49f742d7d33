// The master's state, shared by the files that implement it (internal to src/core; the entry point
// is master.hpp). Each file holds one of its responsibilities:
//   master.cpp              start and stop, the loop (a signal or a tick, then every decision in one
//                           fixed order), what it reports (systemd, the pidfile, workers' memory)
//   master_signals.cpp      signals (gunicorn's meanings), reloads (HUP, --reload), stopping, USR2
//   master_supervision.cpp  reaping and judging exits, stale workers, each pool's target
//   master_spawn.cpp        starting a worker, exec'd or forked without exec; the dirty socket
#pragma once

#include "core/arbiter.hpp"
#include "core/core_metrics.hpp"
#include "core/dirty_socket.hpp"
#include "core/listeners.hpp"
#include "core/owned_io_context.hpp"
#include "core/reload_watcher.hpp"
#include "core/scoreboard.hpp"
#include "core/spawn.hpp"
#include "core/systemd_notify.hpp"
#include "core/worker.hpp"

#include <agente/app.hpp>
#include <agente/config.hpp>

#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <signal.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace agente::core {

// Thrown in a worker forked without exec (spawn.hpp): it unwinds the master's objects out of
// the child, and run_master, past them, runs the worker with what the exec'd one would have read.
// Not a std::exception: no handler on the way may take it for an error.
struct ForkedWorker {
    Config config;
    WorkerSetup setup;
    std::vector<int> keep_fds;
    sigset_t mask;
};

class Master {
public:
    Master(Config config, std::vector<std::string> argv);  // master.cpp
    ~Master() { ioc_.destroy_pending(); }  // handlers left end while the members below still exist
    Master(const Master&) = delete;
    Master& operator=(const Master&) = delete;

    int run();

private:
    // One pool's own state: its target (TTIN/TTOU move the HTTP pool's) and its run of boot failures.
    struct PoolState {
        Pool pool;
        int target = 0;
        PoolHealth health;
    };
    enum class Stop { none, graceful, fast };

    // ---- master.cpp: start and stop, the loop, reporting ---------------------------------------
    void start();
    void mark_tls_listeners();
    void halt();
    void wait_for_signal();
    void schedule_tick();
    void cycle();
    std::string status_text();
    void note_worker_memory();
    void report_status();
    void title(const char* role);
    static int snapshot_config(const Config& config);
    void write_pidfile();
    void remove_pidfile();
    PoolLimits limits_of(Pool pool) const;
    PoolState& state_of(Pool pool) { return pool == Pool::dirty ? dirty_ : http_; }

    // ---- master_signals.cpp: signals, reloads, stopping, USR2 -----------------------------------
    void handle_signal(int sig);
    void handle_hup();
    void reload();
    void reload_on_change();
    void watch_for_reload();
    void handle_term();
    void handle_quit(int sig);
    void begin_stop(Stop how, int sig);
    void handle_ttin();
    void handle_ttou();
    void handle_usr1();
    void handle_usr2();
    void watch_successor();

    // ---- master_supervision.cpp: exits, stale workers, each pool's target -----------------------
    void reap_workers();
    void log_exit(const WorkerRecord& w, int status);
    static std::string lower_noun(Pool pool);
    void read_scoreboard();
    void murder_stale_workers();
    void manage_workers();
    bool manage_pool(PoolState& pool);
    void finish_transitions();
    void drain(WorkerRecord& w, ExitReason why);
    void stop_dirty_pool();

    // ---- master_spawn.cpp: starting workers, the dirty socket ------------------------------------
    bool spawn_worker(Pool pool);
    bool binary_unchanged() const;
    pid_t fork_worker_process(const WorkerSetup& setup, const std::vector<int>& keep);
    std::optional<DirtySocket> new_dirty_socket(const Config& config) const;
    void commit_dirty_socket(std::optional<DirtySocket> fresh, const Config& config);
    std::uint64_t jitter();

    Config config_;
    PoolState http_{Pool::http, 0, {}};
    PoolState dirty_{Pool::dirty, 0, {}};
    std::optional<DirtySocket> dirty_socket_;
    std::vector<std::string> argv_;
    std::string exe_;
    std::optional<BinaryStamp> exe_stamp_;   // exe_ as it was at start; nullopt: unknown, always exec
    std::unique_ptr<App> app_;
    OwnedIoContext ioc_{1};           // destroyed after the members below, see ~Master
    asio::signal_set signals_;
    asio::steady_timer tick_;
    std::deque<int> pending_signals_;
    std::unique_ptr<ReloadWatcher> reload_watcher_;   // --reload, while it is on
    std::vector<Listener> listeners_;
    SharedLayout layout_;             // the core's regions, then the app's (declared in the constructor)
    Scoreboard scoreboard_{layout_};
    CoreMetrics metrics_{layout_};
    int config_fd_ = -1;
    int tls_fd_ = -1;                 // the TLS files the master checked (tls.hpp), inherited by the workers' exec
    WorkerTable workers_;
    std::mt19937 rng_{std::random_device{}()};
    int generation_ = 1;
    bool reloading_ = false;
    bool announced_ready_ = false;
    Stop stop_ = Stop::none;
    pid_t successor_ = 0;
    bool quiet_ = false;              // retiring for a USR2 successor: systemd talks to it now
    pid_t old_master_ = 0;            // USR2: the master we replace, retired once we serve
    std::string last_error_;
    unsigned long long watchdog_usec_ = watchdog_interval_usec();
    Clock::time_point next_watchdog_{}, next_status_{}, next_memory_note_{};
    int exit_code_ = 0;
};

}  // namespace agente::core
