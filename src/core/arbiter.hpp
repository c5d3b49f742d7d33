// The master's decisions as functions of the worker table and the time: no syscalls and no clock of
// their own, so unit tests drive them with made-up tables and instants (as gunicorn's test_arbiter
// mocks waitpid). master.cpp reads the world, asks these, and carries the answers out.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <sys/types.h>
#include <vector>

namespace agente::core {

using Clock = std::chrono::steady_clock;

struct WorkerRecord {
    pid_t pid = 0;
    int slot = -1;
    int generation = 0;
    Clock::time_point spawned;
    // Read from the scoreboard each cycle.
    bool ready = false;
    bool retiring = false;            // near or at max_requests: wants a replacement
    bool at_limit = false;            // reached max_requests: serves out its connections and leaves
    std::int64_t heartbeat_ns = 0;
    // The master's own marks.
    bool draining = false;            // TERM sent: finishing its requests
    bool recycled = false;            // drained because it reached max_requests
    Clock::time_point kill_at;        // draining: SIGKILL when still alive by then
    int timeout_stage = 0;            // 1: SIGABRT sent for a missed heartbeat, 2: SIGKILL sent
    Clock::time_point abort_sent;
};

using WorkerTable = std::map<pid_t, WorkerRecord>;

struct WorkerTargets {
    int generation = 1;               // the current one: older generations are drained
    int workers = 1;
    int max_draining = 1;             // recycled workers draining (or leaving at their limit) at once
};

struct WorkerPlan {
    int spawn = 0;                    // start this many now
    std::vector<pid_t> drain;         // old generation and excess: tell them to drain
    std::vector<pid_t> recycle;       // near max_requests, replacement serving: drain
    bool settled = false;             // `workers` of the current generation serve
};

// Replacements start first; only when they serve are old, recycled and excess workers drained, so
// capacity never drops. A worker asks for its replacement ahead of its max_requests; one that reached
// the limit anyway takes no new connection and leaves by itself: it is not drained, but it counts
// against max_draining while it finishes. `may_spawn` is false during a boot backoff;
// `one_at_a_time` after a failure.
WorkerPlan plan_workers(const WorkerTable& workers, const WorkerTargets& targets, bool may_spawn, bool one_at_a_time);

enum class StaleAction {
    none,
    abort_hung,        // heartbeat older than timeout: SIGABRT, log WORKER TIMEOUT
    kill_hung,         // SIGABRT a second ago and still there: SIGKILL
    kill_unbooted,     // not ready within boot_timeout
    kill_undrained,    // still draining past its deadline
};

struct StaleLimits {
    std::chrono::seconds timeout{30};       // 0: heartbeats are not checked
    std::chrono::seconds boot_timeout{30};
};

StaleAction stale_action(const WorkerRecord& w, Clock::time_point now, std::int64_t now_ns, const StaleLimits& limits);

// Delay before the next spawn after `failures` consecutive boot failures: 0.1 s doubling, up to 30 s.
Clock::duration boot_backoff(int failures);

}  // namespace agente::core
