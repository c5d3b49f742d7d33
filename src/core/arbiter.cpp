#include "core/arbiter.hpp"

#include <sys/wait.h>

#include <algorithm>
#include <cstring>

namespace agente::core {

using namespace std::chrono_literals;

const char* pool_noun(Pool pool) { return pool == Pool::dirty ? "Dirty worker" : "Worker"; }

namespace {

// One pool's records, sorted by what the plan needs of them.
struct PoolView {
    std::vector<const WorkerRecord*> capacity;     // current generation, staying: serving or booting
    std::vector<const WorkerRecord*> replaceable;  // to go once replaced: older generation, or retiring
    int in_use = 0;                                // slots held, draining workers' too
    int draining = 0;                              // draining or leaving at their limit: slots to come
    int draining_recycles = 0;

    PoolView(const WorkerTable& workers, Pool pool, int generation) {
        for (const auto& [pid, w] : workers) {
            if (w.pool != pool) continue;
            ++in_use;
            if (w.draining) {
                ++draining;
                draining_recycles += w.recycled;
            } else if (w.at_limit) {   // leaves by itself; only an older generation's is drained
                ++draining;
                ++draining_recycles;
                if (w.generation != generation) replaceable.push_back(&w);
            } else if (w.generation == generation && !w.retiring) {
                capacity.push_back(&w);
            } else {
                replaceable.push_back(&w);
            }
        }
    }

    static int ready(const std::vector<const WorkerRecord*>& ws) {
        return int(std::count_if(ws.begin(), ws.end(), [](auto* w) { return w->ready; }));
    }
};

void retire(WorkerPlan& plan, const WorkerRecord& w, int generation) {
    if (w.generation == generation && w.retiring) plan.recycle.push_back(w.pid);
    else plan.drain.push_back(w.pid);
}

// The budget cannot hold the rest of the new generation: make room by draining replaceable workers,
// those not serving first, then as many serving ones as the new generation's ready workers replace.
void make_room(WorkerPlan& plan, PoolView& v, const PoolTargets& t) {
    auto& old = v.replaceable;
    std::sort(old.begin(), old.end(), [](auto* a, auto* b) {
        return a->ready != b->ready ? !a->ready : a->spawned < b->spawned;
    });
    int ready_new = PoolView::ready(v.capacity);
    int replaced = ready_new + PoolView::ready(old) - t.workers;  // serving beyond the target
    std::size_t drained = 0;
    for (auto* w : old) {
        if (w->ready && replaced-- <= 0) break;
        retire(plan, *w, t.generation);
        ++drained;
    }
    // Not one slot free (nothing spawned), none about to be, no replacement booting: one serving
    // worker goes first.
    bool stuck = plan.spawn == 0 && v.draining == 0 && ready_new == int(v.capacity.size());
    if (drained == 0 && stuck && !old.empty()) retire(plan, *old.front(), t.generation);
}

}  // namespace

WorkerPlan plan_pool(const WorkerTable& workers, Pool pool, const PoolTargets& t, bool may_spawn, bool one_at_a_time) {
    WorkerPlan plan;
    PoolView v(workers, pool, t.generation);
    int missing = t.workers - int(v.capacity.size());
    if (missing > 0) {
        int free_slots = std::max(0, t.slot_budget - v.in_use);
        if (may_spawn) plan.spawn = std::min(one_at_a_time ? 1 : missing, free_slots);
        // After a boot failure nothing serving is given up for a replacement that may fail again.
        if (free_slots < missing && may_spawn && !one_at_a_time) make_room(plan, v, t);
        return plan;
    }
    if (PoolView::ready(v.capacity) < t.workers) return plan;
    plan.settled = true;
    int draining_recycles = v.draining_recycles;
    for (auto* w : v.replaceable) {
        if (w->generation != t.generation) {
            plan.drain.push_back(w->pid);
        } else if (draining_recycles < t.max_draining) {
            plan.recycle.push_back(w->pid);
            ++draining_recycles;
        }
    }
    auto& staying = v.capacity;
    std::sort(staying.begin(), staying.end(), [](auto* a, auto* b) { return a->spawned < b->spawned; });
    for (int i = 0; i < int(staying.size()) - t.workers; ++i) plan.drain.push_back(staying[i]->pid);
    return plan;
}

StaleAction stale_action(const WorkerRecord& w, Clock::time_point now, std::int64_t now_ns, const PoolLimits& l) {
    if (w.timeout_stage == 2) return StaleAction::none;  // SIGKILL sent: waiting to reap it
    if (w.timeout_stage == 1) return now - w.abort_sent >= abort_to_kill ? StaleAction::kill_hung : StaleAction::none;
    if (w.draining && now >= w.kill_at) return StaleAction::kill_undrained;
    if (!w.ready)
        return !w.draining && now - w.spawned > l.boot_timeout ? StaleAction::kill_unbooted : StaleAction::none;
    auto silent = std::chrono::nanoseconds(now_ns - w.heartbeat_ns);
    return l.timeout.count() > 0 && silent > l.timeout ? StaleAction::abort_hung : StaleAction::none;
}

Clock::time_point drain_deadline(const PoolLimits& limits, Clock::time_point now) {
    return now + limits.graceful_timeout + kill_margin;
}

ExitVerdict judge_exit(PoolHealth& health, const WorkerRecord& w, int status, bool stopping, Clock::time_point now) {
    ExitVerdict v;
    v.how = WIFSIGNALED(status) ? "killed by " + signal_name(WTERMSIG(status))
                                : "exit code " + std::to_string(WEXITSTATUS(status));
    bool left_at_limit = w.at_limit && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!w.ready && !w.draining) {
        v.kind = ExitKind::boot_failure;
        ++health.boot_failures;
        v.retry_in = boot_backoff(health.boot_failures);
        health.next_spawn = now + v.retry_in;
        v.give_up = !stopping && !health.ever_ready && health.boot_failures >= startup_boot_attempts;
    } else if (w.timeout_stage && !w.draining) {
        v.kind = ExitKind::timed_out;
    } else if (w.draining || left_at_limit) {
        v.kind = w.recycled || w.at_limit ? ExitKind::recycled : ExitKind::stopped;
    } else {
        v.kind = WIFSIGNALED(status) ? ExitKind::crashed : ExitKind::exited;
    }
    switch (v.kind) {
        case ExitKind::boot_failure: v.reason = ExitReason::boot_failure; break;
        case ExitKind::timed_out: v.reason = ExitReason::timeout; break;
        case ExitKind::recycled: v.reason = ExitReason::max_requests; break;
        case ExitKind::stopped: v.reason = w.drain_reason; break;
        case ExitKind::crashed: v.reason = ExitReason::crash; break;
        case ExitKind::exited: v.reason = ExitReason::exited; break;
    }
    return v;
}

void note_ready(PoolHealth& health) {
    health.ever_ready = true;
    health.boot_failures = 0;
}

const char* exit_reason_name(ExitReason r) {
    switch (r) {
        case ExitReason::boot_failure: return "boot_failure";
        case ExitReason::timeout: return "timeout";
        case ExitReason::crash: return "crash";
        case ExitReason::exited: return "exited";
        case ExitReason::max_requests: return "max_requests";
        case ExitReason::reload: return "reload";
        case ExitReason::scale_down: return "scale_down";
        case ExitReason::shutdown: return "shutdown";
    }
    return "exited";
}

ExitReason drain_reason(const WorkerRecord& w, int current_generation, bool recycled) {
    if (recycled) return ExitReason::max_requests;
    return w.generation != current_generation ? ExitReason::reload : ExitReason::scale_down;
}

Clock::duration boot_backoff(int failures) {
    if (failures <= 0) return Clock::duration::zero();
    return std::min<Clock::duration>(100ms * (1 << std::min(failures - 1, 9)), 30s);
}

std::string signal_name(int sig) {
    const char* abbrev = ::sigabbrev_np(sig);
    return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

}  // namespace agente::core
