#include "app/cluster/coordination.hpp"

#include <algorithm>

namespace agente::cluster {

int fallback_stream_share(int cluster_limit, int hosts, int local_limit) {
    if (cluster_limit <= 0) return local_limit;
    if (hosts <= 0) return std::min(local_limit, cluster_limit);
    return std::min(local_limit, std::max(1, cluster_limit / hosts));
}

std::chrono::milliseconds renewal_interval(std::chrono::milliseconds lease) {
    return std::max(std::chrono::milliseconds(1), lease / 3);
}

const char* redis_state_name(RedisState s) {
    switch (s) {
    case RedisState::connecting: return "connecting";
    case RedisState::up: return "up";
    case RedisState::down: return "down";
    }
    return "?";
}

HealthLog on_redis_success(RedisHealth& h) {
    RedisState was = h.state;
    h.state = RedisState::up;
    h.reason.clear();
    if (was == RedisState::connecting) return HealthLog::connected;
    return was == RedisState::down ? HealthLog::recovered : HealthLog::none;
}

HealthLog on_redis_failure(RedisHealth& h, std::string reason) {
    RedisState was = h.state;
    h.state = RedisState::down;
    h.reason = std::move(reason);
    return was == RedisState::down ? HealthLog::none : HealthLog::lost;
}

MachineLink machine_link(const std::vector<WorkerLink>& workers) {
    MachineLink m;
    bool down = false, connecting = workers.empty();
    std::int64_t freshest = 0;
    for (const auto& w : workers) {
        ++m.workers;
        if (w.state == RedisState::up) ++m.workers_up;
        down = down || w.state == RedisState::down;
        connecting = connecting || w.state == RedisState::connecting;
        if (w.read_at_ms > freshest) {
            freshest = w.read_at_ms;
            m.streams_active = w.streams_active;
            m.hosts = w.hosts;
        }
    }
    m.redis = RedisState::up;
    if (connecting) m.redis = RedisState::connecting;
    if (down) m.redis = RedisState::down;
    return m;
}

bool warns_of_outage(bool logged, bool another_down) { return !logged || !another_down; }

BreakerAdoption reconcile_breaker(const LocalBreaker& local, const RemoteBreaker& remote, std::int64_t slack_ms) {
    BreakerAdoption a;
    switch (remote.kind) {
    case RemoteBreaker::Kind::none: break;
    case RemoteBreaker::Kind::open:
        if (remote.ttl_ms <= 0) break;
        if (!local.open || local.remaining_ms < remote.ttl_ms - slack_ms) {
            a.action = BreakerAdoption::Action::open;
            a.remaining_ms = remote.ttl_ms;
        }
        break;
    case RemoteBreaker::Kind::closed: {
        // The record was written this long ago (its lifetime is fixed).
        std::int64_t closed_ago = closed_record_lifetime.count() - remote.ttl_ms;
        // No slack here: a reset a moment after the opening must still close it (what is compared is
        // two ages measured a round trip apart, not two clocks).
        if (local.open && local.opened_ago_ms > closed_ago) a.action = BreakerAdoption::Action::close;
        break;
    }
    }
    return a;
}

}  // namespace agente::cluster
