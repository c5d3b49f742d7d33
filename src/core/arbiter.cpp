#include "core/arbiter.hpp"

#include <algorithm>

namespace agente::core {

using namespace std::chrono_literals;

WorkerPlan plan_workers(const WorkerTable& workers, const WorkerTargets& t, bool may_spawn, bool one_at_a_time) {
    WorkerPlan plan;
    std::vector<const WorkerRecord*> capacity;   // current generation, serving or booting, staying
    int draining_recycles = 0;
    for (const auto& [pid, w] : workers) {
        if (w.draining) draining_recycles += w.recycled;
        else if (w.at_limit) ++draining_recycles;
        else if (w.generation == t.generation && !w.retiring) capacity.push_back(&w);
    }
    if (int(capacity.size()) < t.workers) {
        if (may_spawn) plan.spawn = one_at_a_time ? 1 : t.workers - int(capacity.size());
        return plan;
    }
    int ready = int(std::count_if(capacity.begin(), capacity.end(), [](auto* w) { return w->ready; }));
    if (ready < t.workers) return plan;
    plan.settled = true;
    for (const auto& [pid, w] : workers) {
        if (w.draining) continue;
        if (w.generation != t.generation) {
            plan.drain.push_back(pid);
        } else if (w.retiring && !w.at_limit && draining_recycles < t.max_draining) {
            plan.recycle.push_back(pid);
            ++draining_recycles;
        }
    }
    std::sort(capacity.begin(), capacity.end(), [](auto* a, auto* b) { return a->spawned < b->spawned; });
    for (int i = 0; i < int(capacity.size()) - t.workers; ++i) plan.drain.push_back(capacity[i]->pid);
    return plan;
}

StaleAction stale_action(const WorkerRecord& w, Clock::time_point now, std::int64_t now_ns, const StaleLimits& l) {
    if (w.timeout_stage == 2) return StaleAction::none;  // SIGKILL sent: waiting to reap it
    if (w.timeout_stage == 1) return now - w.abort_sent >= 1s ? StaleAction::kill_hung : StaleAction::none;
    if (w.draining && now >= w.kill_at) return StaleAction::kill_undrained;
    if (!w.ready)
        return !w.draining && now - w.spawned > l.boot_timeout ? StaleAction::kill_unbooted : StaleAction::none;
    auto silent = std::chrono::nanoseconds(now_ns - w.heartbeat_ns);
    return l.timeout.count() > 0 && silent > l.timeout ? StaleAction::abort_hung : StaleAction::none;
}

Clock::duration boot_backoff(int failures) {
    if (failures <= 0) return Clock::duration::zero();
    return std::min<Clock::duration>(100ms * (1 << std::min(failures - 1, 9)), 30s);
}

}  // namespace agente::core
