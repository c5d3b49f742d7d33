// The master's decisions over made-up worker tables and instants: no processes, no clock.
#include "core/arbiter.hpp"

#include <gtest/gtest.h>

using namespace agente::core;
using namespace std::chrono_literals;

namespace {

const Clock::time_point t0{};

WorkerRecord worker(pid_t pid, int generation, bool ready, Clock::time_point spawned = t0) {
    WorkerRecord w;
    w.pid = pid;
    w.generation = generation;
    w.ready = ready;
    w.spawned = spawned;
    return w;
}

WorkerTable table(std::initializer_list<WorkerRecord> ws) {
    WorkerTable t;
    for (const auto& w : ws) t[w.pid] = w;
    return t;
}

}  // namespace

TEST(PlanWorkers, StartsWhatIsMissingAllAtOnceOrOneAfterAFailure) {
    WorkerTargets t{1, 3, 1};
    EXPECT_EQ(plan_workers({}, t, true, false).spawn, 3);
    EXPECT_EQ(plan_workers({}, t, true, true).spawn, 1);    // backing off: one at a time
    EXPECT_EQ(plan_workers({}, t, false, false).spawn, 0);  // inside the backoff delay
}

TEST(PlanWorkers, ReloadDrainsTheOldGenerationOnlyOnceTheNewOneServes) {
    WorkerTargets t{2, 2, 1};
    auto booting = table({worker(1, 1, true), worker(2, 1, true), worker(3, 2, false), worker(4, 2, true)});
    WorkerPlan p = plan_workers(booting, t, true, false);
    EXPECT_EQ(p.spawn, 0);
    EXPECT_TRUE(p.drain.empty());           // pid 3 still boots: the old ones keep serving
    EXPECT_FALSE(p.settled);
    booting[3].ready = true;
    p = plan_workers(booting, t, true, false);
    EXPECT_EQ(p.drain, (std::vector<pid_t>{1, 2}));
    EXPECT_TRUE(p.settled);
}

TEST(PlanWorkers, RecyclingStartsTheReplacementFirstThenDrainsWithinMaxDraining) {
    WorkerTargets t{1, 2, 1};
    auto ws = table({worker(1, 1, true), worker(2, 1, true)});
    ws[1].retiring = ws[2].retiring = true;
    EXPECT_EQ(plan_workers(ws, t, true, false).spawn, 2);  // replacements for both
    ws[3] = worker(3, 1, true);
    ws[4] = worker(4, 1, true);
    WorkerPlan p = plan_workers(ws, t, true, false);
    EXPECT_EQ(p.recycle, (std::vector<pid_t>{1}));          // one drains at a time
    ws[1].draining = ws[1].recycled = true;
    EXPECT_TRUE(plan_workers(ws, t, true, false).recycle.empty());
    ws.erase(1);
    EXPECT_EQ(plan_workers(ws, t, true, false).recycle, (std::vector<pid_t>{2}));
}

TEST(PlanWorkers, AWorkerAtItsLimitIsReplacedLeavesByItselfAndCountsAsDraining) {
    WorkerTargets t{1, 2, 1};
    auto ws = table({worker(1, 1, true), worker(2, 1, true)});
    ws[1].retiring = ws[1].at_limit = true;   // reached max_requests before its replacement served
    ws[2].retiring = true;                    // asked for its replacement, serves on
    EXPECT_EQ(plan_workers(ws, t, true, false).spawn, 2);
    ws[3] = worker(3, 1, true);
    ws[4] = worker(4, 1, true);
    WorkerPlan p = plan_workers(ws, t, true, false);
    EXPECT_TRUE(p.settled);
    EXPECT_TRUE(p.recycle.empty());           // 1 is not told (it leaves), and it holds the one slot
    EXPECT_TRUE(p.drain.empty());
    ws.erase(1);
    EXPECT_EQ(plan_workers(ws, t, true, false).recycle, (std::vector<pid_t>{2}));
}

TEST(PlanWorkers, ExcessWorkersDrainOldestFirst) {
    WorkerTargets t{1, 1, 1};
    auto ws = table({worker(7, 1, true, t0 + 2s), worker(8, 1, true, t0 + 1s), worker(9, 1, true, t0 + 3s)});
    EXPECT_EQ(plan_workers(ws, t, true, false).drain, (std::vector<pid_t>{8, 7}));
}

TEST(PlanWorkers, DrainingWorkersAreNotCapacity) {
    WorkerTargets t{1, 2, 1};
    auto ws = table({worker(1, 1, true), worker(2, 1, true)});
    ws[2].draining = true;
    EXPECT_EQ(plan_workers(ws, t, true, false).spawn, 1);
}

TEST(StaleAction, HeartbeatTimeoutAbortsThenKillsASecondLater) {
    StaleLimits l{3s, 30s};
    WorkerRecord w = worker(1, 1, true);
    w.heartbeat_ns = 0;
    std::int64_t ns = 2'900'000'000;
    EXPECT_EQ(stale_action(w, t0, ns, l), StaleAction::none);
    ns = 3'100'000'000;
    EXPECT_EQ(stale_action(w, t0, ns, l), StaleAction::abort_hung);
    w.timeout_stage = 1;
    w.abort_sent = t0;
    EXPECT_EQ(stale_action(w, t0 + 500ms, ns, l), StaleAction::none);
    EXPECT_EQ(stale_action(w, t0 + 1s, ns, l), StaleAction::kill_hung);
    w.timeout_stage = 2;
    EXPECT_EQ(stale_action(w, t0 + 5s, ns, l), StaleAction::none);  // killed: only reaping is left
}

TEST(StaleAction, TimeoutZeroChecksNoHeartbeat) {
    WorkerRecord w = worker(1, 1, true);
    EXPECT_EQ(stale_action(w, t0, 1'000'000'000'000, {0s, 30s}), StaleAction::none);
}

TEST(StaleAction, BootDeadlineAppliesUntilReady) {
    StaleLimits l{3s, 10s};
    WorkerRecord w = worker(1, 1, false);
    EXPECT_EQ(stale_action(w, t0 + 9s, 0, l), StaleAction::none);
    EXPECT_EQ(stale_action(w, t0 + 11s, 0, l), StaleAction::kill_unbooted);
    w.ready = true;
    w.heartbeat_ns = 11'000'000'000;
    EXPECT_EQ(stale_action(w, t0 + 11s, 11'000'000'000, l), StaleAction::none);
}

TEST(StaleAction, DrainingPastItsDeadlineIsKilledAndAHungDrainerIsATimeout) {
    StaleLimits l{3s, 10s};
    WorkerRecord w = worker(1, 1, true);
    w.draining = true;
    w.kill_at = t0 + 35s;
    w.heartbeat_ns = 0;
    EXPECT_EQ(stale_action(w, t0 + 1s, 1'000'000'000, l), StaleAction::none);
    EXPECT_EQ(stale_action(w, t0 + 1s, 4'000'000'000, l), StaleAction::abort_hung);
    EXPECT_EQ(stale_action(w, t0 + 35s, 0, l), StaleAction::kill_undrained);
}

TEST(BootBackoff, DoublesFromATenthOfASecondUpToThirtySeconds) {
    EXPECT_EQ(boot_backoff(0), Clock::duration::zero());
    EXPECT_EQ(boot_backoff(1), 100ms);
    EXPECT_EQ(boot_backoff(2), 200ms);
    EXPECT_EQ(boot_backoff(4), 800ms);
    EXPECT_EQ(boot_backoff(9), 25600ms);
    EXPECT_EQ(boot_backoff(10), 30s);
    EXPECT_EQ(boot_backoff(50), 30s);
}
