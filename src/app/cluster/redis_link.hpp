// A worker's link to the Redis that the machines of a cluster share ([cluster] redis_url): the
// stream limit over all of them (each stream holds a lease in Redis that its worker renews, so a
// machine that dies leaves nothing held past a lease) and the breakers (a breaker that opens here is
// written to Redis; every worker reads the records each breaker_poll_interval and opens its own).
// The shared-memory breakers and stream counters stay the fast path: a request reads them as on one
// machine, and the link reconciles them with Redis in the background (cluster/coordination.hpp).
//
// Redis unreachable or slow (a call past redis_timeout): the machine falls back to its share of the
// stream limit and its own breakers, logs one warning (one for the machine, whichever worker sees
// it first: link_board.hpp), says so in /metrics and /system/streaming-health (the machine's view,
// whichever worker answers), and connects again each reconnect_interval until Redis answers.
#pragma once

#include "app/cluster/coordination.hpp"
#include "app/cluster/link_board.hpp"
#include "app/cluster/redis.hpp"
#include "app/cluster/settings.hpp"

#include <agente/handler.hpp>

#include <cstdint>
#include <memory>
#include <set>
#include <string>

namespace agente { class MetricsText; }
namespace agente::gateway { struct Gateway; enum class BreakerChange; }

namespace agente::cluster {

class ClusterLink;

// A stream's place in the cluster's limit, given back however the stream ends (empty: refused).
class StreamLease {
public:
    StreamLease() = default;
    StreamLease(std::shared_ptr<ClusterLink> link, std::string id) : link_(std::move(link)), id_(std::move(id)) {}
    StreamLease(StreamLease&& o) noexcept : link_(std::move(o.link_)), id_(std::move(o.id_)) {}
    StreamLease& operator=(StreamLease&&) = delete;
    ~StreamLease();
    explicit operator bool() const { return link_ != nullptr; }

private:
    std::shared_ptr<ClusterLink> link_;
    std::string id_;
};

// What /system/streaming-health and /metrics show of the links: the whole machine's, whichever
// worker answers (its workers' cells in shared memory, coordination.hpp's machine_link()).
struct ClusterView {
    RedisState redis = RedisState::connecting;
    std::string reason;        // why Redis is down
    int streams_limit = 0;     // [cluster] max_concurrent_streams (0: not shared)
    int streams_active = 0;    // leases held over the cluster at the freshest renewal or lease taken
    int hosts = 0;             // machines Redis counted then
    int fallback_share = 0;    // what this machine may hold while Redis is down
    int workers = 0;           // this machine's workers running a link
    int workers_up = 0;        // of them, reaching Redis
    std::uint64_t outages = 0; // outages this machine logged since it started
};

class ClusterLink : public std::enable_shared_from_this<ClusterLink> {
public:
    // Starts the link's loop on `executor` (the worker's); `gateway` is the worker's, whose
    // breakers and stream limiter it reconciles.
    // `regions`: the machine's link cells (link_board.hpp), this worker's at `slot`.
    static std::shared_ptr<ClusterLink> start(asio::any_io_executor executor, const ClusterSettings& settings,
                                              std::weak_ptr<gateway::Gateway> gateway, int slot,
                                              const LinkRegions& regions);

    bool shares_streams() const { return cluster_limit_ > 0; }
    int streams_limit() const { return cluster_limit_; }
    // A lease for one more stream, which this worker's limiter already counts: from Redis, or
    // while Redis cannot be reached, a place in this machine's share. Empty: the cluster is full.
    asio::awaitable<StreamLease> acquire_stream();
    void release_stream(const std::string& id);

    // A breaker here changed (attempts.cpp, an admin's reset): written to Redis for the others.
    void breaker_changed(const std::string& provider, gateway::BreakerChange change);

    ClusterView view() const;
    void write_metrics(MetricsText& out) const;

    ClusterLink(asio::any_io_executor executor, const ClusterSettings& settings,
                std::weak_ptr<gateway::Gateway> gateway, int slot, const LinkRegions& regions);

private:
    asio::awaitable<void> run();
    asio::awaitable<bool> renew();
    asio::awaitable<bool> poll_breakers();
    void publish_open_breakers();
    void succeeded();
    // A call on `c` failed: closes it (once, whichever call saw it first), then lost().
    void failed(const std::shared_ptr<RedisConnection>& c, const std::string& why);
    // Redis is down: the share, and one warning for the whole outage.
    void lost(const std::string& why);
    void apply_stream_limit();
    // This worker's cell: its state and figures, for the machine's view.
    void publish();
    bool another_worker_down() const;
    int fallback_share() const;
    int local_limit() const;

    asio::any_io_executor executor_;
    RedisAddress address_;
    std::string where_;   // the URL, password masked
    std::chrono::milliseconds timeout_;
    std::chrono::milliseconds lease_;
    int cluster_limit_;
    std::weak_ptr<gateway::Gateway> gateway_;
    std::string host_id_;   // this machine: its host name and master's pid
    std::string worker_id_;
    std::uint64_t next_lease_ = 0;
    std::shared_ptr<RedisConnection> conn_;
    RedisHealth health_;
    std::set<std::string> held_;   // this worker's leases, renewed while their streams live
    int streams_active_ = 0;
    int hosts_ = 0;
    std::int64_t read_at_ms_ = 0;
    LinkRegions regions_;
    int slot_;
};

}  // namespace agente::cluster
