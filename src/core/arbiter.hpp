// The master's decisions as functions of the worker table and the time: no syscalls and no clock of
// their own, so unit tests drive them with made-up tables and instants (as gunicorn's test_arbiter
// mocks waitpid). master.cpp reads the world, asks these, and carries the answers out.
//
// The master supervises two pools of processes with the same rules: HTTP workers, and the dirty
// workers that run the app's blocking jobs (docs/dirty.md). Each has its own targets, limits,
// scoreboard slots and boot-failure count; one table holds both, each record naming its pool.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <sys/types.h>
#include <vector>

namespace agente::core {

using Clock = std::chrono::steady_clock;

enum class Pool : std::uint8_t { http, dirty };

// "Worker" / "Dirty worker": how the journal names a process of the pool.
const char* pool_noun(Pool pool);

// ---- deadlines that are not settings -------------------------------------------------------------

// A hung worker gets SIGABRT (a core dump, a stack in the journal), then SIGKILL this much later.
inline constexpr Clock::duration abort_to_kill = std::chrono::seconds{1};
// A draining worker ends itself once its graceful timeout has passed (after giving its streams a
// last chunk, see worker.cpp); the master's SIGKILL comes this much later, for one that cannot.
inline constexpr Clock::duration kill_margin = std::chrono::seconds{2};
// INT/QUIT (and giving up at start-up): workers stop at once; SIGKILL for those still there then.
inline constexpr Clock::duration fast_stop_grace = std::chrono::seconds{2};
// Consecutive boot failures before a start-up (nothing ever served) is given up.
inline constexpr int startup_boot_attempts = 3;

// Why a worker is gone, finer than ExitKind: its counter in /metrics (agente_worker_exits_total).
enum class ExitReason : std::uint8_t {
    boot_failure,      // ended before it ever served: the master backs off before the next spawn
    timeout,           // killed for a missed heartbeat (or a boot that took too long)
    crash,             // killed by a signal while serving
    exited,            // ended on its own while serving
    max_requests,      // drained after max_requests (recycled), or left at its limit
    reload,            // drained: an older generation after a reload
    scale_down,        // drained: more workers than wanted (TTOU)
    shutdown,          // drained: the server stops
};
inline constexpr int exit_reasons = int(ExitReason::shutdown) + 1;

// Its label value in /metrics: "boot_failure", "timeout", ...
const char* exit_reason_name(ExitReason r);

// ---- the table -----------------------------------------------------------------------------------

struct WorkerRecord {
    pid_t pid = 0;
    Pool pool = Pool::http;
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
    ExitReason drain_reason = ExitReason::shutdown;   // why it was told to drain
    Clock::time_point kill_at;        // draining: SIGKILL when still alive by then
    int timeout_stage = 0;            // 1: SIGABRT sent for a missed heartbeat, 2: SIGKILL sent
    Clock::time_point abort_sent;
};

using WorkerTable = std::map<pid_t, WorkerRecord>;

// ---- how many, and which to replace --------------------------------------------------------------

struct PoolTargets {
    int generation = 1;               // the current one: older generations are drained
    int workers = 1;
    int max_draining = 1;             // recycled workers draining (or leaving at their limit) at once
    int slot_budget = 256;            // scoreboard slots of this pool: every live process holds one
};

struct WorkerPlan {
    int spawn = 0;                    // start this many now
    std::vector<pid_t> drain;         // old generation and excess: tell them to drain
    std::vector<pid_t> recycle;       // near max_requests, replacement serving: drain
    bool settled = false;             // `workers` of the current generation serve
};

// The plan for one pool (records of the other pool are ignored). Replacements start first; only
// when they serve are old, recycled and excess workers drained, so capacity never drops. A worker
// asks for its replacement ahead of its max_requests; one that reached the limit anyway takes no new
// connection and leaves by itself: it is not drained, but it counts against max_draining (and as a
// slot about to be freed) while it finishes. When the
// slot budget cannot hold the old generation and the whole new one (a reload of more than half the
// budget), the replacement rolls: old workers drain as new ones become ready, serving stays at
// `workers`, and when not one slot is free nor about to be, one old worker drains first (capacity
// dips by one for a moment rather than the reload never settling). `may_spawn` is false during a
// boot backoff; `one_at_a_time` after a failure (nothing is then drained to make room).
WorkerPlan plan_pool(const WorkerTable& workers, Pool pool, const PoolTargets& targets, bool may_spawn,
                     bool one_at_a_time);

// ---- hung, unbooted, undrained -------------------------------------------------------------------

struct PoolLimits {
    std::chrono::seconds timeout{30};           // heartbeat silence before a kill; 0: not checked
    std::chrono::seconds boot_timeout{30};
    std::chrono::seconds graceful_timeout{30};  // a draining worker's time to finish
};

enum class StaleAction {
    none,
    abort_hung,        // heartbeat older than timeout: SIGABRT, log WORKER TIMEOUT
    kill_hung,         // SIGABRT abort_to_kill ago and still there: SIGKILL
    kill_unbooted,     // not ready within boot_timeout
    kill_undrained,    // still draining past its deadline
};

StaleAction stale_action(const WorkerRecord& w, Clock::time_point now, std::int64_t now_ns, const PoolLimits& limits);

// When a worker told to drain now is killed if it is still there.
Clock::time_point drain_deadline(const PoolLimits& limits, Clock::time_point now);

// ---- exits ---------------------------------------------------------------------------------------


enum class ExitKind {
    boot_failure,      // ended before it ever served: backoff, maybe give up
    timed_out,         // killed for a missed heartbeat
    recycled,          // drained after max_requests
    stopped,           // drained: reload, excess, stop
    crashed,           // killed by a signal while serving
    exited,            // ended on its own while serving
};

// A pool's run of boot failures. Reset by the first worker that reports ready.
struct PoolHealth {
    int boot_failures = 0;
    bool ever_ready = false;          // some worker of this pool has served since the master started
    Clock::time_point next_spawn{};   // backoff: no spawn before this
};

struct ExitVerdict {
    ExitKind kind = ExitKind::exited;
    std::string how;                  // "killed by SIGKILL", "exit code 3"
    Clock::duration retry_in{};       // boot_failure: the backoff before the next spawn
    bool give_up = false;             // boot_failure at start-up, startup_boot_attempts in a row
    ExitReason reason = ExitReason::exited;   // for /metrics: a stopped worker's drain reason
};

// Classifies the exit of `w` (waitpid's `status`) and updates the pool's health: the backoff after a
// boot failure, and whether start-up must be given up (never while the master is stopping).
ExitVerdict judge_exit(PoolHealth& health, const WorkerRecord& w, int status, bool stopping, Clock::time_point now);

// A worker of the pool reported ready: the run of failures is over.
void note_ready(PoolHealth& health);

// Why a drained worker is drained: `recycled` after max_requests, else an older generation than the
// current one (a reload) or one too many of it (TTOU).
ExitReason drain_reason(const WorkerRecord& w, int current_generation, bool recycled);


// Delay before the next spawn after `failures` consecutive boot failures: 0.1 s doubling, up to 30 s.
Clock::duration boot_backoff(int failures);

// "SIGKILL", or "signal 77" for one without a name.
std::string signal_name(int sig);

}  // namespace agente::core
