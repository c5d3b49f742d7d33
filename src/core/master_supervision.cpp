#include "core/master_state.hpp"

#include <spdlog/spdlog.h>
#include <sys/wait.h>

#include <algorithm>
#include <cctype>
#include <chrono>

namespace agente::core {

void Master::reap_workers() {
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
void Master::log_exit(const WorkerRecord& w, int status) {
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

std::string Master::lower_noun(Pool pool) {
    std::string noun = pool_noun(pool);
    noun[0] = char(std::tolower(static_cast<unsigned char>(noun[0])));
    return noun;
}

void Master::read_scoreboard() {
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
void Master::murder_stale_workers() {
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
void Master::manage_workers() {
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
bool Master::manage_pool(PoolState& pool) {
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
void Master::finish_transitions() {
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

void Master::drain(WorkerRecord& w, ExitReason why) {
    ::kill(w.pid, SIGTERM);
    w.draining = true;
    w.recycled = why == ExitReason::max_requests;
    w.drain_reason = why;
    w.kill_at = drain_deadline(limits_of(w.pool), Clock::now());
}

void Master::stop_dirty_pool() {
    if (stop_ != Stop::graceful) return;
    bool http_left = std::any_of(workers_.begin(), workers_.end(), [](auto& kv) { return kv.second.pool == Pool::http; });
    if (http_left) return;
    for (auto& [pid, w] : workers_)
        if (!w.draining) drain(w, ExitReason::shutdown);
}

}  // namespace agente::core
