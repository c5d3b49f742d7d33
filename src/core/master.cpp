#include "core/master.hpp"

#include "core/arbiter.hpp"
#include "core/bind_address.hpp"
#include "core/owned_io_context.hpp"
#include "core/core_metrics.hpp"
#include "core/dirty_socket.hpp"
#include "core/dirty_worker.hpp"
#include "core/listeners.hpp"
#include "core/log.hpp"
#include "core/proc_title.hpp"
#include "core/reload_watcher.hpp"
#include "core/scoreboard.hpp"
#include "core/spawn.hpp"
#include "core/systemd_notify.hpp"
#include "core/tls.hpp"
#include "core/worker.hpp"
#include "core/worker_process.hpp"

#include <agente/app.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <random>

namespace agente::core {

namespace {

using namespace std::chrono_literals;
constexpr auto tick_interval = 100ms;
constexpr auto status_interval = 5s;        // systemd's STATUS= line refreshed this often
constexpr auto memory_note_interval = 1s;   // how often each worker's resident memory is read

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
    Master(Config config, std::vector<std::string> argv)
        : config_(std::move(config)), argv_(std::move(argv)), exe_(exe_path()),
          exe_stamp_(stamp_of(exe_)), app_(make_app()), signals_(ioc_), tick_(ioc_) {
        http_.target = config_.workers;
        dirty_.target = config_.dirty_workers;
        app_->declare_shared(layout_);
    }
    ~Master() { ioc_.destroy_pending(); }  // handlers left end while the members below still exist
    Master(const Master&) = delete;
    Master& operator=(const Master&) = delete;

    int run() {
        start();
        if (exit_code_ != 0) return exit_code_;
        wait_for_signal();
        schedule_tick();
        ioc_.run();
        halt();
        return exit_code_;
    }

private:
    // One pool's own state: its target (TTIN/TTOU move the HTTP pool's) and its run of boot failures.
    struct PoolState {
        Pool pool;
        int target = 0;
        PoolHealth health;
    };

    // ---- start and stop ------------------------------------------------------------------------
    void start() {
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
        for (const auto& l : listeners_)
            spdlog::info("Listening at: {}{} ({})", serves_tls(config_, l.address) ? "https://" : "", l.address, ::getpid());
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

    void halt() {
        close_listeners(listeners_);
        remove_pidfile();
        spdlog::info("Shutting down: Master");
    }

    // ---- the loop: a signal or a tick, then every decision in one fixed order ----------------------
    void wait_for_signal() {
        for (int s : {SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2, SIGWINCH, SIGCHLD})
            signals_.add(s);
        signals_.async_wait([this](error_code ec, int sig) {
            if (ec) return;
            if (sig != SIGCHLD) pending_signals_.push_back(sig);
            cycle();
            wait_for_signal();
        });
    }

    void schedule_tick() {
        tick_.expires_after(tick_interval);
        tick_.async_wait([this](error_code ec) {
            if (ec) return;
            cycle();
            schedule_tick();
        });
    }

    void cycle() {
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

    // ---- signals (gunicorn's meanings) -----------------------------------------------------------
    void handle_signal(int sig) {
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

    void handle_hup() {
        if (stop_ != Stop::none) return;
        spdlog::info("Handling signal: hup");
        reload();
    }

    // Reload: everything new is read, validated, bound and opened first, and only when all of it
    // succeeded does anything the master holds change. A refused reload leaves the sockets, the
    // log, the app's settings and the workers' config snapshot exactly as they were.
    void reload() {
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

    // ---- --reload: the binary, the config file or an extra file saved is a HUP -------------------
    // The watcher only records; the decision is taken here, in the cycle, like a signal's.
    void reload_on_change() {
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
    void watch_for_reload() {
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

    void handle_term() {
        if (stop_ == Stop::graceful) return;
        spdlog::info("Handling signal: term");
        // TERM from our USR2 successor, which systemd now knows as MAINPID: retire without a word,
        // or STOPPING=1 would make systemd stop the whole service.
        if (successor_ > 0) quiet_ = true;
        begin_stop(Stop::graceful, SIGTERM);
    }

    void handle_quit(int sig) {
        spdlog::info("Handling signal: {}", sig == SIGINT ? "int" : "quit");
        begin_stop(Stop::fast, SIGQUIT);
    }

    enum class Stop { none, graceful, fast };
    // A graceful stop drains the HTTP workers first: the dirty pool serves their last requests'
    // calls, and is told to stop once no HTTP worker is left (stop_dirty_pool). A fast one stops all.
    void begin_stop(Stop how, int sig) {
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

    void stop_dirty_pool() {
        if (stop_ != Stop::graceful) return;
        bool http_left = std::any_of(workers_.begin(), workers_.end(), [](auto& kv) { return kv.second.pool == Pool::http; });
        if (http_left) return;
        for (auto& [pid, w] : workers_)
            if (!w.draining) drain(w, ExitReason::shutdown);
    }

    void handle_ttin() {
        if (http_.target < Scoreboard::max_slots) ++http_.target;
        spdlog::info("Handling signal: ttin; workers now {}", http_.target);
    }

    void handle_ttou() {
        if (http_.target > 1) --http_.target;
        spdlog::info("Handling signal: ttou; workers now {}", http_.target);
    }

    void handle_usr1() {
        spdlog::info("Handling signal: usr1");
        setup_error_log(config_);
        for (auto& [pid, w] : workers_) ::kill(pid, SIGUSR1);
    }

    // Upgrade the binary in place: a new master inherits the sockets; we retire once it serves.
    void handle_usr2() {
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
    void watch_successor() {
        if (successor_ <= 0 || ::kill(successor_, 0) == 0 || errno != ESRCH) return;
        spdlog::error("New master (pid:{}) exited before it took over; still serving", successor_);
        successor_ = 0;
    }

    // ---- supervision -----------------------------------------------------------------------------
    void reap_workers() {
        int status = 0;
        pid_t pid;
        while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
            auto it = workers_.find(pid);
            if (it == workers_.end()) continue;
            log_exit(it->second, status);
            scoreboard_.release(it->second.slot);   // its counters kept, its other cells zeroed
            workers_.erase(it);
        }
    }

    // Every exit is classified (arbiter.cpp), logged and counted: booted and failed, killed for
    // timeout, recycled, stopped, crashed, exited.
    void log_exit(const WorkerRecord& w, int status) {
        PoolState& pool = state_of(w.pool);
        ExitVerdict v = judge_exit(pool.health, w, status, stop_ != Stop::none, Clock::now());
        bump(metrics_.supervision().worker_exits[int(w.pool)][int(v.reason)]);
        const char* who = pool_noun(w.pool);
        switch (v.kind) {
            case ExitKind::boot_failure:
                spdlog::error("{} (pid:{}) booted and failed: {}; retry in {} ms (failure {})", who, w.pid, v.how,
                              std::chrono::duration_cast<std::chrono::milliseconds>(v.retry_in).count(),
                              pool.health.boot_failures);
                break;
            case ExitKind::timed_out: spdlog::error("{} (pid:{}) killed for timeout: {}", who, w.pid, v.how); break;
            case ExitKind::recycled: spdlog::info("{} (pid:{}) recycled: {}", who, w.pid, v.how); break;
            case ExitKind::stopped: spdlog::info("{} (pid:{}) stopped: {}", who, w.pid, v.how); break;
            case ExitKind::crashed:
                spdlog::error("{} (pid:{}) crashed with signal {}", who, w.pid, signal_name(WTERMSIG(status)));
                break;
            case ExitKind::exited: spdlog::error("{} (pid:{}) exited unexpectedly: {}", who, w.pid, v.how); break;
        }
        if (!v.give_up) return;
        spdlog::critical("No {} could boot; giving up ({} attempts). See the errors above.", lower_noun(w.pool),
                         pool.health.boot_failures);
        last_error_ = "no " + lower_noun(w.pool) + " could boot";
        exit_code_ = worker_boot_error;
        begin_stop(Stop::fast, SIGQUIT);
    }

    static std::string lower_noun(Pool pool) {
        std::string noun = pool_noun(pool);
        noun[0] = char(std::tolower(static_cast<unsigned char>(noun[0])));
        return noun;
    }

    void read_scoreboard() {
        for (auto& [pid, w] : workers_) {
            Slot& slot = scoreboard_.slot(w.slot);
            w.heartbeat_ns = slot.heartbeat_ns.load();
            std::uint32_t retire = slot.retire.load();
            w.retiring = retire != 0;
            w.at_limit = retire == retire_at_limit;
            if (w.ready || slot.state.load() < std::uint32_t(WorkerState::ready)) continue;
            w.ready = true;
            note_ready(state_of(w.pool).health);
        }
    }

    // A worker whose loop stopped beating is aborted, then killed on the next pass (gunicorn's murder).
    void murder_stale_workers() {
        auto now = Clock::now();
        std::int64_t now_ns = monotonic_ns();
        for (auto& [pid, w] : workers_) {
            switch (stale_action(w, now, now_ns, limits_of(w.pool))) {
                case StaleAction::none: continue;
                case StaleAction::abort_hung:
                    spdlog::critical("{}WORKER TIMEOUT (pid:{})", w.pool == Pool::dirty ? "DIRTY " : "", pid);
                    ::kill(pid, SIGABRT);
                    w.timeout_stage = 1;
                    w.abort_sent = now;
                    continue;
                case StaleAction::kill_hung: break;
                case StaleAction::kill_unbooted:
                    spdlog::error("{} (pid:{}) did not boot within {} s", pool_noun(w.pool), pid, config_.boot_timeout);
                    break;
                case StaleAction::kill_undrained:
                    spdlog::warn("{} (pid:{}) still running after its graceful timeout; killing it", pool_noun(w.pool), pid);
                    break;
            }
            ::kill(pid, SIGKILL);
            w.timeout_stage = 2;
        }
    }

    // Keep each pool's target serving, of the current generation (the plan: arbiter.cpp).
    void manage_workers() {
        if (stop_ != Stop::none) return;
        bool dirty_settled = manage_pool(dirty_);
        // HTTP workers of a new generation (the first, or a reload's) start once the dirty pool serves:
        // an HTTP worker that answers /health while the app's jobs have nowhere to run would fail its
        // first calls (a conversation turn not stored). Old workers serve meanwhile on a reload.
        bool transitioning = !announced_ready_ || reloading_;
        if (transitioning && !dirty_settled) return;
        bool http_settled = manage_pool(http_);
        if (http_settled && dirty_settled) finish_transitions();
    }

    // True when the pool is settled.
    bool manage_pool(PoolState& pool) {
        int budget = pool.pool == Pool::dirty ? Scoreboard::dirty_slots : Scoreboard::max_slots;
        PoolTargets targets{generation_, pool.target, config_.max_draining, budget};
        bool may_spawn = Clock::now() >= pool.health.next_spawn;
        WorkerPlan plan = plan_pool(workers_, pool.pool, targets, may_spawn, pool.health.boot_failures > 0);
        for (int i = 0; i < plan.spawn; ++i)
            if (!spawn_worker(pool.pool)) break;
        for (pid_t pid : plan.drain) drain(workers_[pid], drain_reason(workers_[pid], generation_, false));
        for (pid_t pid : plan.recycle) drain(workers_[pid], drain_reason(workers_[pid], generation_, true));
        return plan.settled;
    }

    // The first generation serving, or a reload complete: tell systemd, retire a USR2 predecessor.
    void finish_transitions() {
        if (!announced_ready_ || reloading_) {
            if (dirty_.target > 0)
                spdlog::info("{} workers and {} dirty workers serving (generation {})", http_.target, dirty_.target,
                             generation_);
            else
                spdlog::info("{} workers serving (generation {})", http_.target, generation_);
            announced_ready_ = true;
            reloading_ = false;
            notify_ready(status_text());
        }
        if (old_master_ > 0) {
            spdlog::info("Retiring the old master (pid:{})", old_master_);
            notify_mainpid(::getpid());
            ::kill(old_master_, SIGTERM);
            old_master_ = 0;
        }
    }

    void drain(WorkerRecord& w, ExitReason why) {
        ::kill(w.pid, SIGTERM);
        w.draining = true;
        w.recycled = why == ExitReason::max_requests;
        w.drain_reason = why;
        w.kill_at = drain_deadline(limits_of(w.pool), Clock::now());
    }

    bool spawn_worker(Pool pool) {
        bool dirty = pool == Pool::dirty;
        auto generation = std::uint32_t(generation_);
        int slot = dirty ? scoreboard_.claim_dirty(0, generation) : scoreboard_.claim(0, generation);
        if (slot < 0) {
            spdlog::error("No free scoreboard slot for a new {}", lower_noun(pool));
            return false;
        }
        WorkerSetup setup;
        setup.pool = pool;
        setup.scoreboard_fd = scoreboard_.fd();
        setup.slot = slot;
        setup.master_pid = ::getpid();
        std::vector<int> keep = {scoreboard_.fd()};
        if (config_fd_ >= 0) keep.push_back(config_fd_);
        if (dirty) {
            setup.listeners = {Listener{dirty_socket_->address, dirty_socket_->fd, true}};
        } else {
            setup.listeners = listeners_;
            for (auto& l : setup.listeners) l.tls = serves_tls(config_, l.address);
            setup.tls_fd = tls_fd_;
            if (tls_fd_ >= 0) keep.push_back(tls_fd_);
            setup.max_requests = config_.max_requests ? config_.max_requests + jitter() : 0;
            if (dirty_socket_ && config_.dirty_workers > 0) setup.dirty_address = dirty_socket_->address;
        }
        for (const auto& l : setup.listeners) keep.push_back(l.fd);
        std::vector<std::string> argv = argv_;
        argv[0] = worker_title(dirty ? "dirty worker" : "worker", config_);
        std::vector<std::string> env = setup.to_environment();
        if (config_fd_ >= 0) {
            env.push_back("AGENTE_WORKER_CONFIG=/proc/self/fd/" + std::to_string(config_fd_));
            env.push_back("AGENTE_WORKER_CONFIG_PATH=" + config_.config_path);
        }
        pid_t pid = binary_unchanged() ? fork_worker_process(setup, keep)
                                       : exec_child(exe_, argv, env, keep, Child::worker);
        if (pid < 0) {
            scoreboard_.release(slot);
            return false;
        }
        scoreboard_.slot(slot).pid = pid;
        WorkerRecord w;
        w.pid = pid;
        w.pool = pool;
        w.slot = slot;
        w.generation = generation_;
        w.spawned = Clock::now();
        workers_[pid] = w;
        bump(metrics_.supervision().worker_starts[int(pool)]);
        spdlog::info("Booting {} with pid: {}", lower_noun(pool), pid);
        return true;
    }

    // The file this master was started from is still the one on disk: a worker forked from us runs
    // the code an exec'd one would. Once a rebuild or an install replaced it, workers are exec'd.
    bool binary_unchanged() const {
        if (!exe_stamp_) return false;
        return stamp_of(exe_) == exe_stamp_;
    }

    // In the child, this throws: the master's objects are destroyed on the way out (their fds
    // closed, asio's signal registrations removed), except two fds the worker needs and their
    // owners would close (~Scoreboard, ~DirtySocket), hence duplicates. The config snapshot is not
    // needed: the worker takes this master's validated Config as it is.
    pid_t fork_worker_process(const WorkerSetup& setup, const std::vector<int>& keep) {
        sigset_t mask;
        pid_t pid = fork_worker(ioc_, mask);
        if (pid != 0) return pid;
        ForkedWorker child{config_, setup, keep, mask};
        std::erase(child.keep_fds, config_fd_);
        auto keep_copy = [&child](int& fd) {
            int copy = ::dup(fd);
            std::replace(child.keep_fds.begin(), child.keep_fds.end(), fd, copy);
            fd = copy;
        };
        keep_copy(child.setup.scoreboard_fd);
        if (setup.pool == Pool::dirty) keep_copy(child.setup.listeners.front().fd);
        throw child;
    }

    // The dirty socket is bound once the pool is wanted (at start, or by the first reload that asks
    // for dirty workers) and kept: callers of every generation reach the pool through it. Binding a
    // new one may throw (a start fails, a reload is refused); taking it, or a new backlog, does not.
    std::optional<DirtySocket> new_dirty_socket(const Config& config) const {
        if (config.dirty_workers == 0 || dirty_socket_) return std::nullopt;
        return bind_dirty_socket(config.dirty_backlog);
    }

    void commit_dirty_socket(std::optional<DirtySocket> fresh, const Config& config) {
        if (fresh) {
            dirty_socket_ = std::move(fresh);
            spdlog::info("Dirty pool at: {}", dirty_socket_->address);
        } else if (dirty_socket_) {
            set_dirty_backlog(*dirty_socket_, config.dirty_backlog);
        }
    }

    std::uint64_t jitter() {
        if (config_.max_requests_jitter <= 0) return 0;
        std::uniform_int_distribution<int> d(0, config_.max_requests_jitter);
        return std::uint64_t(d(rng_));
    }

    // ---- reporting -------------------------------------------------------------------------------
    std::string status_text() {
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
    void note_worker_memory() {
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

    void report_status() {
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

    void title(const char* role) {
        set_proc_title(std::string("agente-hibrido: ") + role + " [" + config_.display_name() + "]");
    }

    // Workers read the bytes this master validated, not the file: an edit saved without a HUP must
    // not reach a worker that happens to start (a respawn, a recycle) and break it. Returns the
    // snapshot's fd (-1 without a file), which the workers' exec inherits.
    static int snapshot_config(const Config& config) {
        if (config.config_path.empty()) return -1;
        std::ifstream in(config.config_path, std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        int fd = ::memfd_create("agente-hibrido-config", 0);
        if (fd >= 0 && ::write(fd, bytes.data(), bytes.size()) == ssize_t(bytes.size())) return fd;
        if (fd >= 0) ::close(fd);
        throw std::runtime_error("cannot snapshot the configuration");
    }

    // The file was checked with the configuration; one that still fails is said, not skipped.
    void write_pidfile() {
        if (config_.pidfile.empty()) return;
        std::ofstream out(config_.pidfile);
        if (!(out << ::getpid() << "\n" << std::flush))
            spdlog::error("Cannot write the pidfile {}: {}", config_.pidfile, std::strerror(errno));
    }

    // Only our own: after USR2 the file names the new master.
    void remove_pidfile() {
        if (config_.pidfile.empty()) return;
        std::ifstream in(config_.pidfile);
        pid_t pid = 0;
        if (in >> pid && pid == ::getpid()) ::unlink(config_.pidfile.c_str());
    }

    PoolState& state_of(Pool pool) { return pool == Pool::dirty ? dirty_ : http_; }

    PoolLimits limits_of(Pool pool) const {
        if (pool == Pool::dirty)
            return {std::chrono::seconds(config_.dirty_timeout), std::chrono::seconds(config_.boot_timeout),
                    std::chrono::seconds(config_.dirty_graceful_timeout)};
        return {std::chrono::seconds(config_.timeout), std::chrono::seconds(config_.boot_timeout),
                std::chrono::seconds(config_.graceful_timeout)};
    }

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

}  // namespace

int run_master(Config config, std::vector<std::string> argv) {
    ::signal(SIGPIPE, SIG_IGN);
    std::optional<ForkedWorker> forked;
    try {
        Master master(std::move(config), std::move(argv));
        return master.run();
    } catch (ForkedWorker& child) {
        forked.emplace(std::move(child));
    }
    // A worker forked from the master (Master::fork_http_worker), as main() starts an exec'd one.
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
