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

WorkerRecord dirty(pid_t pid, int generation, bool ready) {
    WorkerRecord w = worker(pid, generation, ready);
    w.pool = Pool::dirty;
    return w;
}

WorkerTable table(std::initializer_list<WorkerRecord> ws) {
    WorkerTable t;
    for (const auto& w : ws) t[w.pid] = w;
    return t;
}

// A master that carries plans out at once over a made-up table, one cycle per step: a worker
// spawned at one step is ready at the next, one told to drain is reaped at the next.
struct Simulation {
    WorkerTable table;
    Pool pool = Pool::http;
    pid_t next_pid = 1;
    int steps = 0;
    int min_serving = 1 << 30;   // ready workers not draining, after each plan
    int max_slots = 0;           // processes of the pool alive at once

    Simulation(Pool p, int workers, int generation) : pool(p) {
        for (int i = 0; i < workers; ++i) add(generation, true);
    }

    void add(int generation, bool ready) {
        WorkerRecord w = worker(next_pid, generation, ready, t0 + std::chrono::seconds(next_pid));
        w.pool = pool;
        table[next_pid++] = w;
    }

    // Steps until the plan says settled and nothing is left draining; false past `limit` steps.
    bool settle(const PoolTargets& t, int limit) {
        for (steps = 0; steps < limit; ++steps) {
            std::erase_if(table, [](const auto& kv) { return kv.second.draining; });
            for (auto& [pid, w] : table) w.ready = true;
            WorkerPlan p = plan_pool(table, pool, t, true, false);
            for (int i = 0; i < p.spawn; ++i) add(t.generation, false);
            for (pid_t pid : p.drain) table[pid].draining = true;
            for (pid_t pid : p.recycle) table[pid].draining = table[pid].recycled = true;
            int serving = 0;
            for (auto& [pid, w] : table) serving += w.ready && !w.draining;
            min_serving = std::min(min_serving, serving);
            max_slots = std::max(max_slots, int(table.size()));
            if (p.settled && p.drain.empty() && p.recycle.empty()) return true;
        }
        return false;
    }
};

}  // namespace

TEST(PlanWorkers, StartsWhatIsMissingAllAtOnceOrOneAfterAFailure) {
    PoolTargets t{1, 3, 1};
    EXPECT_EQ(plan_pool({}, Pool::http, t, true, false).spawn, 3);
    EXPECT_EQ(plan_pool({}, Pool::http, t, true, true).spawn, 1);    // backing off: one at a time
    EXPECT_EQ(plan_pool({}, Pool::http, t, false, false).spawn, 0);  // inside the backoff delay
}

TEST(PlanWorkers, ReloadDrainsTheOldGenerationOnlyOnceTheNewOneServes) {
    PoolTargets t{2, 2, 1};
    auto booting = table({worker(1, 1, true), worker(2, 1, true), worker(3, 2, false), worker(4, 2, true)});
    WorkerPlan p = plan_pool(booting, Pool::http, t, true, false);
    EXPECT_EQ(p.spawn, 0);
    EXPECT_TRUE(p.drain.empty());           // pid 3 still boots: the old ones keep serving
    EXPECT_FALSE(p.settled);
    booting[3].ready = true;
    p = plan_pool(booting, Pool::http, t, true, false);
    EXPECT_EQ(p.drain, (std::vector<pid_t>{1, 2}));
    EXPECT_TRUE(p.settled);
}

TEST(PlanWorkers, RecyclingStartsTheReplacementFirstThenDrainsWithinMaxDraining) {
    PoolTargets t{1, 2, 1};
    auto ws = table({worker(1, 1, true), worker(2, 1, true)});
    ws[1].retiring = ws[2].retiring = true;
    EXPECT_EQ(plan_pool(ws, Pool::http, t, true, false).spawn, 2);  // replacements for both
    ws[3] = worker(3, 1, true);
    ws[4] = worker(4, 1, true);
    WorkerPlan p = plan_pool(ws, Pool::http, t, true, false);
    EXPECT_EQ(p.recycle, (std::vector<pid_t>{1}));          // one drains at a time
    ws[1].draining = ws[1].recycled = true;
    EXPECT_TRUE(plan_pool(ws, Pool::http, t, true, false).recycle.empty());
    ws.erase(1);
    EXPECT_EQ(plan_pool(ws, Pool::http, t, true, false).recycle, (std::vector<pid_t>{2}));
}

TEST(PlanWorkers, AWorkerAtItsLimitIsReplacedLeavesByItselfAndCountsAsDraining) {
    PoolTargets t{1, 2, 1};
    auto ws = table({worker(1, 1, true), worker(2, 1, true)});
    ws[1].retiring = ws[1].at_limit = true;   // reached max_requests before its replacement served
    ws[2].retiring = true;                    // asked for its replacement, serves on
    EXPECT_EQ(plan_pool(ws, Pool::http, t, true, false).spawn, 2);
    ws[3] = worker(3, 1, true);
    ws[4] = worker(4, 1, true);
    WorkerPlan p = plan_pool(ws, Pool::http, t, true, false);
    EXPECT_TRUE(p.settled);
    EXPECT_TRUE(p.recycle.empty());           // 1 is not told (it leaves), and it holds the one slot
    EXPECT_TRUE(p.drain.empty());
    ws.erase(1);
    EXPECT_EQ(plan_pool(ws, Pool::http, t, true, false).recycle, (std::vector<pid_t>{2}));
}

TEST(PlanWorkers, ExcessWorkersDrainOldestFirst) {
    PoolTargets t{1, 1, 1};
    auto ws = table({worker(7, 1, true, t0 + 2s), worker(8, 1, true, t0 + 1s), worker(9, 1, true, t0 + 3s)});
    EXPECT_EQ(plan_pool(ws, Pool::http, t, true, false).drain, (std::vector<pid_t>{8, 7}));
}

TEST(PlanWorkers, DrainingWorkersAreNotCapacity) {
    PoolTargets t{1, 2, 1};
    auto ws = table({worker(1, 1, true), worker(2, 1, true)});
    ws[2].draining = true;
    EXPECT_EQ(plan_pool(ws, Pool::http, t, true, false).spawn, 1);
}

TEST(PlanPool, EachPoolIsPlannedWithItsOwnTargetsAndIgnoresTheOther) {
    auto ws = table({worker(1, 1, true), worker(2, 1, true), dirty(3, 1, true)});
    PoolTargets http{1, 2, 1}, pool{1, 3, 1};
    WorkerPlan p = plan_pool(ws, Pool::http, http, true, false);
    EXPECT_EQ(p.spawn, 0);
    EXPECT_TRUE(p.settled);
    EXPECT_EQ(plan_pool(ws, Pool::dirty, pool, true, false).spawn, 2);
    pool.workers = 0;                       // dirty_workers = 0 after a reload: the pool drains away
    p = plan_pool(ws, Pool::dirty, pool, true, false);
    EXPECT_EQ(p.drain, (std::vector<pid_t>{3}));
    EXPECT_TRUE(p.settled);
}

TEST(PlanPool, AReloadOfTheDirtyPoolWaitsForItsOwnNewGenerationOnly) {
    auto ws = table({worker(1, 2, true), dirty(2, 1, true), dirty(3, 2, false)});
    PoolTargets pool{2, 1, 1};
    EXPECT_TRUE(plan_pool(ws, Pool::dirty, pool, true, false).drain.empty());  // pid 3 still boots
    ws[3].ready = true;
    EXPECT_EQ(plan_pool(ws, Pool::dirty, pool, true, false).drain, (std::vector<pid_t>{2}));
}

TEST(SlotBudget, SpawnsNoMoreThanTheFreeSlots) {
    PoolTargets t{2, 200, 1, 256};
    Simulation sim(Pool::http, 200, 1);
    EXPECT_EQ(plan_pool(sim.table, Pool::http, t, true, false).spawn, 56);
}

TEST(SlotBudget, AReloadOf200WorkersRollsWithoutDroppingBelow200) {
    Simulation sim(Pool::http, 200, 1);
    ASSERT_TRUE(sim.settle({2, 200, 1, 256}, 100));
    EXPECT_EQ(sim.min_serving, 200);
    EXPECT_LE(sim.max_slots, 256);
    for (auto& [pid, w] : sim.table) EXPECT_EQ(w.generation, 2);
    EXPECT_EQ(sim.table.size(), 200u);
}

TEST(SlotBudget, AReloadOf256WorkersSettlesOneDipAtATime) {
    Simulation sim(Pool::http, 256, 1);
    ASSERT_TRUE(sim.settle({2, 256, 1, 256}, 256 * 3 + 3));
    EXPECT_EQ(sim.min_serving, 255);        // one slot must be freed before a new worker fits
    EXPECT_LE(sim.max_slots, 256);
    for (auto& [pid, w] : sim.table) EXPECT_EQ(w.generation, 2);
}

TEST(SlotBudget, AReloadThatFitsStillReplacesAllAtOnce) {
    Simulation sim(Pool::dirty, 4, 1);
    ASSERT_TRUE(sim.settle({2, 4, 1, 128}, 10));
    EXPECT_EQ(sim.steps, 2);                // spawn 4; drain the old 4 once they serve; settled
    EXPECT_EQ(sim.min_serving, 4);
}

TEST(SlotBudget, AFullBudgetStillRecyclesAWorkerThatReachedMaxRequests) {
    Simulation sim(Pool::http, 4, 1);
    sim.table[1].retiring = true;
    ASSERT_TRUE(sim.settle({1, 4, 1, 4}, 10));
    EXPECT_EQ(sim.table.count(1), 0u);
    EXPECT_EQ(sim.min_serving, 3);
}

TEST(SlotBudget, NothingServingIsDrainedForRoomWhileBootsFail) {
    Simulation sim(Pool::http, 4, 1);
    PoolTargets t{2, 4, 1, 4};
    EXPECT_TRUE(plan_pool(sim.table, Pool::http, t, true, true).drain.empty());   // one_at_a_time
    EXPECT_TRUE(plan_pool(sim.table, Pool::http, t, false, true).drain.empty());  // backing off
    EXPECT_EQ(plan_pool(sim.table, Pool::http, t, true, false).drain.size(), 1u);
}

TEST(SlotBudget, OldWorkersStillBootingGoFirstAndCostNoCapacity) {
    auto ws = table({worker(1, 1, true), worker(2, 1, true), worker(3, 1, false)});
    PoolTargets t{2, 3, 1, 3};
    WorkerPlan p = plan_pool(ws, Pool::http, t, true, false);
    EXPECT_EQ(p.drain, (std::vector<pid_t>{3}));
}

TEST(StaleAction, HeartbeatTimeoutAbortsThenKillsASecondLater) {
    PoolLimits l{3s, 30s};
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
    EXPECT_EQ(stale_action(w, t0, 1'000'000'000'000, PoolLimits{0s, 30s}), StaleAction::none);
}

TEST(StaleAction, BootDeadlineAppliesUntilReady) {
    PoolLimits l{3s, 10s};
    WorkerRecord w = worker(1, 1, false);
    EXPECT_EQ(stale_action(w, t0 + 9s, 0, l), StaleAction::none);
    EXPECT_EQ(stale_action(w, t0 + 11s, 0, l), StaleAction::kill_unbooted);
    w.ready = true;
    w.heartbeat_ns = 11'000'000'000;
    EXPECT_EQ(stale_action(w, t0 + 11s, 11'000'000'000, l), StaleAction::none);
}

TEST(StaleAction, DrainingPastItsDeadlineIsKilledAndAHungDrainerIsATimeout) {
    PoolLimits l{3s, 10s};
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

TEST(DrainDeadline, IsTheGracefulTimeoutPlusTheKillMargin) {
    PoolLimits l{30s, 30s, 7s};
    EXPECT_EQ(drain_deadline(l, t0), t0 + 7s + kill_margin);
}

namespace {

int exited_with(int code) { return code << 8; }   // waitpid's status, as WEXITSTATUS reads it
int killed_by(int sig) { return sig; }             // as WTERMSIG reads it

}  // namespace

TEST(JudgeExit, ClassifiesEveryWayAWorkerEnds) {
    struct Case {
        bool ready, draining, recycled;
        int timeout_stage, status;
        ExitKind kind;
        std::string how;
    };
    const Case cases[] = {
        {false, false, false, 0, exited_with(3), ExitKind::boot_failure, "exit code 3"},
        {false, false, false, 2, killed_by(9), ExitKind::boot_failure, "killed by SIGKILL"},   // boot_timeout
        {true, false, false, 2, killed_by(9), ExitKind::timed_out, "killed by SIGKILL"},
        {true, false, false, 1, killed_by(6), ExitKind::timed_out, "killed by SIGABRT"},
        {true, true, true, 0, exited_with(0), ExitKind::recycled, "exit code 0"},
        {true, true, false, 0, exited_with(0), ExitKind::stopped, "exit code 0"},
        {false, true, false, 0, killed_by(15), ExitKind::stopped, "killed by SIGTERM"},
        {true, false, false, 0, killed_by(11), ExitKind::crashed, "killed by SIGSEGV"},
        {true, false, false, 0, exited_with(1), ExitKind::exited, "exit code 1"},
    };
    for (const auto& c : cases) {
        PoolHealth h;
        h.ever_ready = true;
        WorkerRecord w = worker(1, 1, c.ready);
        w.draining = c.draining;
        w.recycled = c.recycled;
        w.timeout_stage = c.timeout_stage;
        ExitVerdict v = judge_exit(h, w, c.status, false, t0);
        EXPECT_EQ(v.kind, c.kind) << c.how;
        EXPECT_EQ(v.how, c.how);
        EXPECT_EQ(h.boot_failures, c.kind == ExitKind::boot_failure ? 1 : 0) << c.how;
    }
}

TEST(JudgeExit, AWorkerThatLeftAtItsLimitWasRecycledUnlessItFailed) {
    PoolHealth h;
    WorkerRecord w = worker(1, 1, true);
    w.retiring = w.at_limit = true;
    EXPECT_EQ(judge_exit(h, w, exited_with(0), false, t0).kind, ExitKind::recycled);
    EXPECT_EQ(judge_exit(h, w, killed_by(11), false, t0).kind, ExitKind::crashed);
    EXPECT_EQ(judge_exit(h, w, exited_with(1), false, t0).kind, ExitKind::exited);
}

TEST(SlotBudget, AWorkerLeavingAtItsLimitIsASlotAboutToBeFreed) {
    Simulation sim(Pool::http, 4, 1);
    sim.table[1].retiring = sim.table[1].at_limit = true;
    WorkerPlan p = plan_pool(sim.table, Pool::http, {1, 4, 1, 4}, true, false);
    EXPECT_EQ(p.spawn, 0);
    EXPECT_TRUE(p.drain.empty());             // no serving worker drained for room: 1 leaves by itself
    EXPECT_TRUE(p.recycle.empty());
}

TEST(JudgeExit, BootFailuresBackOffAndStartUpGivesUpAfterThreeInARow) {
    PoolHealth h;
    WorkerRecord w = worker(1, 1, false);
    ExitVerdict v = judge_exit(h, w, exited_with(3), false, t0);
    EXPECT_EQ(v.retry_in, 100ms);
    EXPECT_EQ(h.next_spawn, t0 + 100ms);
    EXPECT_FALSE(v.give_up);
    v = judge_exit(h, w, exited_with(3), false, t0 + 1s);
    EXPECT_EQ(v.retry_in, 200ms);
    EXPECT_FALSE(v.give_up);
    v = judge_exit(h, w, exited_with(3), false, t0 + 2s);
    EXPECT_EQ(h.boot_failures, startup_boot_attempts);
    EXPECT_TRUE(v.give_up);
}

TEST(JudgeExit, APoolThatHasServedNeverGivesUpItBacksOff) {
    PoolHealth h;
    note_ready(h);
    WorkerRecord w = worker(1, 1, false);
    for (int i = 0; i < 10; ++i) EXPECT_FALSE(judge_exit(h, w, exited_with(3), false, t0).give_up);
    EXPECT_EQ(h.boot_failures, 10);
    EXPECT_EQ(judge_exit(h, w, exited_with(3), false, t0).retry_in, 30s);
    note_ready(h);                          // a worker served again: the run is over
    EXPECT_EQ(h.boot_failures, 0);
}

TEST(JudgeExit, NoGivingUpWhileTheMasterIsStoppingAnyway) {
    PoolHealth h;
    h.boot_failures = 5;
    EXPECT_FALSE(judge_exit(h, worker(1, 1, false), exited_with(3), true, t0).give_up);
}

TEST(PoolNoun, NamesEachPoolInTheJournal) {
    EXPECT_STREQ(pool_noun(Pool::http), "Worker");
    EXPECT_STREQ(pool_noun(Pool::dirty), "Dirty worker");
}
