// What a worker decides about the state it shares with the other machines through Redis (issue 21):
// how many streams this machine may hold when Redis cannot be reached, when to renew its stream
// leases, when to warn that Redis is gone and when to say it is back, and how a breaker's state seen
// in Redis changes the local one. Pure functions of what was seen and the time, like
// core/arbiter.hpp: redis_link.cpp reads the world, asks these, and carries the answers out.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace agente::cluster {

// ---- deadlines that are not settings -------------------------------------------------------------

// How often a worker reads the breakers' records from Redis: a breaker opened on one machine is
// open on all of them within this plus one round trip (the issue asks for a second).
inline constexpr std::chrono::milliseconds breaker_poll_interval{250};
// After a failed call or connection, the wait before connecting again: Redis down costs each worker
// one connection attempt per interval, never a request's time.
inline constexpr std::chrono::milliseconds reconnect_interval{1000};
// How long a "closed" record stays in Redis after a probe succeeded or an admin reset a breaker:
// long enough for every machine to poll it a few times, short enough not to close a breaker that
// opens again later for failures of its own.
inline constexpr std::chrono::milliseconds closed_record_lifetime{3000};

// ---- the stream limit --------------------------------------------------------------------------

// The streams this machine may hold while it cannot reach Redis: its share of the cluster's limit,
// cluster_limit / hosts rounded down (so the shares never add up to more than the limit), at least
// one, and never more than its own max_concurrent_streams. `hosts`: the machines Redis counted at
// the last renewal (0 when this worker never reached it: then the machine's own limit, at most the
// cluster's). cluster_limit 0 (not shared): the machine's own limit.
int fallback_stream_share(int cluster_limit, int hosts, int local_limit);

// How often the leases of a worker's streams are renewed: a third of the lease, so that two renewals
// in a row may be lost to a slow Redis before a live stream's lease lapses, and a dead machine's
// leases are gone one lease after its last renewal.
std::chrono::milliseconds renewal_interval(std::chrono::milliseconds lease);

// ---- Redis up or down --------------------------------------------------------------------------

enum class RedisState { connecting, up, down };
const char* redis_state_name(RedisState s);

// What to write to the log about a call's outcome: one warning when Redis is lost (not one per
// failed call, nor per reconnection attempt), one line when it is back.
enum class HealthLog { none, connected, lost, recovered };

struct RedisHealth {
    RedisState state = RedisState::connecting;
    std::string reason;   // why it is down: the last failure
};

// A call (or the connection) succeeded / failed with `reason`.
HealthLog on_redis_success(RedisHealth& h);
HealthLog on_redis_failure(RedisHealth& h, std::string reason);

// ---- one machine's workers, seen as one --------------------------------------------------------

// One worker's link as its cell in shared memory says (link_board.hpp).
struct WorkerLink {
    RedisState state = RedisState::connecting;
    int streams_active = 0;
    int hosts = 0;
    std::int64_t read_at_ms = 0;   // when it last read the two figures above from Redis; 0 never
};

// The machine's view, for /metrics and /system/streaming-health whichever worker answers.
struct MachineLink {
    RedisState redis = RedisState::connecting;
    int workers = 0;           // workers running a link
    int workers_up = 0;        // of them, reaching Redis
    int streams_active = 0;    // the freshest reading of any worker
    int hosts = 0;
};

// Redis is up for the machine when every worker reaches it; down as soon as one cannot (that
// worker falls back to the machine's share, so the machine does); connecting while none has
// decided yet (or no worker runs a link). The cluster's figures are the freshest any worker read.
MachineLink machine_link(const std::vector<WorkerLink>& workers);

// A worker found Redis lost: does it write the machine's one warning? Yes unless another worker
// already did for this outage (`logged`: the machine's record says one was written, and
// `another_down`: a worker that may have written it is still down; a record left by workers that
// all died since is stale).
bool warns_of_outage(bool logged, bool another_down);

// ---- breakers ----------------------------------------------------------------------------------

// A breaker's record in Redis: written by the machine whose breaker opened (for its cool-down) or
// closed (for closed_record_lifetime), and read by the others.
struct RemoteBreaker {
    enum class Kind { none, open, closed } kind = Kind::none;
    std::int64_t ttl_ms = 0;   // what is left of the record (Redis' PTTL)
};

// The local breaker (its cell in shared memory) as the reconciliation sees it.
struct LocalBreaker {
    bool open = false;                 // open or half-open
    std::int64_t remaining_ms = 0;     // of its cool-down (0 or less: half-open)
    std::int64_t opened_ago_ms = 0;    // since it opened
};

struct BreakerAdoption {
    enum class Action { none, open, close } action = Action::none;
    std::int64_t remaining_ms = 0;     // open: for this long
};

// How a record read from Redis changes the local breaker. `slack_ms`: how far the two views of an
// open breaker's end may disagree without being corrected (so that it is not rewritten on every poll).
// - open, and the local breaker is closed or closes earlier: open it until the record ends;
// - closed (a probe succeeded or an admin reset it somewhere), and the local breaker opened before
//   that: close it; one that opened since, for failures of its own, stays open;
// - no record: nothing (each machine's breaker goes on by itself).
BreakerAdoption reconcile_breaker(const LocalBreaker& local, const RemoteBreaker& remote, std::int64_t slack_ms);

}  // namespace agente::cluster
