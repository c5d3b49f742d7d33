// The link's loop: connect, then each breaker_poll_interval read the breakers' records, and each
// renewal_interval renew this worker's leases; any failure is Redis down until a new connection
// answers. The keys, all under one prefix:
//   agente-hibrido:streams          sorted set: a lease per stream, scored by when it lapses
//   agente-hibrido:hosts            sorted set: a member per machine, scored likewise (the share's divisor)
//   agente-hibrido:breaker:NAME     "open" for the rest of the cool-down, or "closed" for a moment
// Times in Redis are Redis' own (TIME, inside the scripts), so the machines' clocks need not agree.
#include "app/cluster/redis_link.hpp"

#include "app/gateway/gateway.hpp"

#include <agente/metrics.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>
#include <unistd.h>

namespace agente::cluster {

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
const std::string prefix = "agente-hibrido:";
const std::string streams_key = prefix + "streams";
const std::string hosts_key = prefix + "hosts";

// Now in milliseconds on Redis' clock (scripts may call TIME since Redis 5's effects replication).
#define REDIS_NOW_MS "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "

// KEYS[1] streams; ARGV lease ms, limit, lease id. The leases held with this one (granted), or 0
// (the cluster is full).
const std::string acquire_script = REDIS_NOW_MS
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) "
    "if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end "
    "redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[3]) "
    "return redis.call('ZCARD', KEYS[1])";

// KEYS[1] streams, KEYS[2] hosts; ARGV lease ms, host id, then the worker's lease ids. Renews (or,
// after Redis lost them, adds back) every lease the worker holds: {leases over the cluster, hosts}.
const std::string renew_script = REDIS_NOW_MS
    "local lapse = now + tonumber(ARGV[1]) "
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) "
    "redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now) "
    "redis.call('ZADD', KEYS[2], lapse, ARGV[2]) "
    "for i = 3, #ARGV do redis.call('ZADD', KEYS[1], lapse, ARGV[i]) end "
    "return {redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2])}";

// KEYS: the breakers' records. For each, its value ("" when none) and its PTTL.
const std::string read_breakers_script =
    "local out = {} "
    "for _, k in ipairs(KEYS) do out[#out + 1] = redis.call('GET', k) or '' out[#out + 1] = redis.call('PTTL', k) end "
    "return out";

std::string breaker_key(const std::string& provider) { return prefix + "breaker:" + provider; }

std::string this_host() {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) != 0) name[0] = 0;
    // Two servers on one machine (a test, a blue-green pair) are two hosts: the master tells them apart.
    return std::string(name) + ":" + std::to_string(::getppid());
}

bool integer(const RedisReply& r) { return r.type == RedisReply::Type::integer; }

std::string failure(const std::optional<RedisReply>& r, const RedisConnection& c, const char* what) {
    if (!r) return c.why();
    if (r->type == RedisReply::Type::error) return std::string(what) + ": " + r->text;
    return std::string(what) + ": unexpected reply";
}

}  // namespace

StreamLease::~StreamLease() {
    if (link_) link_->release_stream(id_);
}

ClusterLink::ClusterLink(asio::any_io_executor executor, const ClusterSettings& settings,
                         std::weak_ptr<gateway::Gateway> gateway, int slot, const LinkRegions& regions)
    : executor_(std::move(executor)),
      address_(parse_redis_address(settings.redis_url)),
      where_(redacted_url(settings.redis_url)),
      timeout_(settings.redis_timeout),
      lease_(settings.stream_lease),
      cluster_limit_(settings.max_concurrent_streams),
      gateway_(std::move(gateway)),
      host_id_(this_host()),
      worker_id_(host_id_ + ":" + std::to_string(slot) + ":" + std::to_string(::getpid())),
      regions_(regions),
      slot_(slot) {}

std::shared_ptr<ClusterLink> ClusterLink::start(asio::any_io_executor executor, const ClusterSettings& settings,
                                                std::weak_ptr<gateway::Gateway> gateway, int slot,
                                                const LinkRegions& regions) {
    auto link = std::make_shared<ClusterLink>(executor, settings, std::move(gateway), slot, regions);
    link->apply_stream_limit();   // the share until Redis first answers
    link->publish();
    asio::co_spawn(executor, link->run(), [](std::exception_ptr e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& x) {
            spdlog::error("cluster: the Redis link stopped: {}", x.what());
        }
    });
    return link;
}

int ClusterLink::local_limit() const {
    auto gw = gateway_.lock();
    return gw ? gw->settings.max_concurrent_streams : 0;
}

int ClusterLink::fallback_share() const { return fallback_stream_share(cluster_limit_, hosts_, local_limit()); }

void ClusterLink::apply_stream_limit() {
    auto gw = gateway_.lock();
    if (!gw) return;
    int limit = gw->settings.max_concurrent_streams;
    if (health_.state != RedisState::up) limit = fallback_share();
    gw->limiter.set_max(limit);
}

void ClusterLink::publish() {
    LinkCell& c = regions_.cells.of(slot_);
    c.state.store(std::int32_t(health_.state));
    c.streams_active.store(streams_active_);
    c.hosts.store(hosts_);
    c.read_at_ms.store(read_at_ms_);
    if (read_reason(c) != health_.reason) write_reason(c, health_.reason);
    c.linked.store(1, std::memory_order_release);
}

bool ClusterLink::another_worker_down() const {
    int down = 0;
    for (const WorkerLink& w : worker_links(regions_.cells)) down += w.state == RedisState::down;
    return down > int(health_.state == RedisState::down);   // this worker's cell says down already
}

void ClusterLink::succeeded() {
    HealthLog log = on_redis_success(health_);
    publish();
    if (log == HealthLog::connected) spdlog::info("cluster: connected to Redis at {}", where_);
    // The machine's one line for the outage's end: written by the worker that clears the record.
    if (log == HealthLog::recovered && regions_.board->outage_logged.exchange(0) != 0)
        spdlog::warn("cluster: Redis at {} answers again: the stream limit and the breakers are shared again", where_);
    apply_stream_limit();
}

void ClusterLink::failed(const std::shared_ptr<RedisConnection>& c, const std::string& why) {
    if (c != conn_) return;   // another call saw this connection fail first
    conn_->close(why);
    conn_.reset();
    lost(why);
}

void ClusterLink::lost(const std::string& why) {
    HealthLog log = on_redis_failure(health_, why);
    publish();
    apply_stream_limit();
    if (log != HealthLog::lost) return;
    LinkBoard& board = *regions_.board;
    bool logged = board.outage_logged.exchange(1) != 0;
    if (!warns_of_outage(logged, another_worker_down())) {
        spdlog::debug("cluster: Redis at {} unreachable ({}) from this worker too", where_, why);
        return;
    }
    board.outages.fetch_add(1);
    if (shares_streams())
        spdlog::warn("cluster: Redis at {} unreachable ({}): this machine falls back to {} streams (its share of {}) "
                     "and its own breakers until it answers",
                     where_, why, fallback_share(), cluster_limit_);
    else
        spdlog::warn("cluster: Redis at {} unreachable ({}): this machine's breakers are its own until it answers",
                     where_, why);
}

asio::awaitable<void> ClusterLink::run() {
    auto self = shared_from_this();
    asio::steady_timer timer(executor_);
    auto renewal = renewal_interval(lease_);
    auto last_renewal = std::chrono::steady_clock::time_point{};
    for (;;) {
        std::chrono::milliseconds wait = breaker_poll_interval;
        if (!conn_) {
            std::string why;
            std::shared_ptr<RedisConnection> c = co_await RedisConnection::open(executor_, address_, timeout_, why);
            if (c) {
                conn_ = c;
                // Whatever this machine holds goes back into Redis at once: its leases (a
                // restarted Redis has none) and its open breakers.
                publish_open_breakers();
                if (co_await renew()) last_renewal = std::chrono::steady_clock::now();
            } else {
                lost(why);
            }
        }
        if (conn_) {
            co_await poll_breakers();
            if (conn_ && std::chrono::steady_clock::now() - last_renewal >= renewal && co_await renew())
                last_renewal = std::chrono::steady_clock::now();
        }
        if (!conn_) wait = reconnect_interval;
        timer.expires_after(wait);
        co_await timer.async_wait(use_tuple);
    }
}

asio::awaitable<bool> ClusterLink::renew() {
    std::shared_ptr<RedisConnection> c = conn_;
    std::vector<std::string> argv{"EVAL", renew_script, "2", streams_key, hosts_key, std::to_string(lease_.count()),
                                  host_id_};
    argv.insert(argv.end(), held_.begin(), held_.end());
    std::optional<RedisReply> r = co_await c->call(argv);
    if (!r || r->type != RedisReply::Type::array || r->elements.size() != 2 || !integer(r->elements[0]) ||
        !integer(r->elements[1])) {
        failed(c, failure(r, *c, "renewing the stream leases"));
        co_return false;
    }
    streams_active_ = int(r->elements[0].integer);
    hosts_ = int(r->elements[1].integer);
    read_at_ms_ = gateway::steady_now_ms();
    succeeded();
    co_return true;
}

asio::awaitable<bool> ClusterLink::poll_breakers() {
    auto gw = gateway_.lock();
    if (!gw) co_return false;
    std::shared_ptr<RedisConnection> c = conn_;
    const auto& providers = gw->settings.providers;
    std::vector<std::string> argv{"EVAL", read_breakers_script, std::to_string(providers.size())};
    for (const auto& p : providers) argv.push_back(breaker_key(p.name));
    std::optional<RedisReply> r = co_await c->call(argv);
    if (!r || r->type != RedisReply::Type::array || r->elements.size() != 2 * providers.size()) {
        failed(c, failure(r, *c, "reading the breakers"));
        co_return false;
    }
    succeeded();
    // Two polls' worth: what the views may differ by while a record travels.
    std::int64_t slack = 2 * breaker_poll_interval.count();
    for (std::size_t i = 0; i < providers.size(); ++i) {
        RemoteBreaker remote;
        const std::string& value = r->elements[2 * i].text;
        if (value == "open") remote.kind = RemoteBreaker::Kind::open;
        if (value == "closed") remote.kind = RemoteBreaker::Kind::closed;
        remote.ttl_ms = r->elements[2 * i + 1].integer;
        gateway::Breaker& b = gw->breakers[i];
        gateway::Breaker::Standing s = b.standing();
        BreakerAdoption a = reconcile_breaker({s.open, s.remaining_ms, s.opened_ago_ms}, remote, slack);
        if (a.action == BreakerAdoption::Action::open) {
            if (!s.open)
                spdlog::warn("gateway: circuit breaker {} opened: open on another machine; {} ms until a probe",
                             providers[i].name, a.remaining_ms);
            b.open_for(a.remaining_ms);
        } else if (a.action == BreakerAdoption::Action::close) {
            spdlog::info("gateway: circuit breaker {} closed: closed on another machine", providers[i].name);
            b.reset();
        }
    }
    co_return true;
}

void ClusterLink::publish_open_breakers() {
    auto gw = gateway_.lock();
    if (!gw || !conn_) return;
    for (std::size_t i = 0; i < gw->settings.providers.size(); ++i) {
        gateway::Breaker::Standing s = gw->breakers[i].standing();
        if (s.open && s.remaining_ms > 0)
            conn_->send({"SET", breaker_key(gw->settings.providers[i].name), "open", "PX",
                         std::to_string(s.remaining_ms)});
    }
}

void ClusterLink::breaker_changed(const std::string& provider, gateway::BreakerChange change) {
    auto gw = gateway_.lock();
    if (!gw || !conn_ || health_.state != RedisState::up) return;   // put back by publish_open_breakers()
    switch (change) {
    case gateway::BreakerChange::opened:
    case gateway::BreakerChange::reopened:
        conn_->send({"SET", breaker_key(provider), "open", "PX",
                     std::to_string(gw->settings.circuit_breaker_cooldown.count())});
        break;
    case gateway::BreakerChange::closed:
        conn_->send({"SET", breaker_key(provider), "closed", "PX", std::to_string(closed_record_lifetime.count())});
        break;
    case gateway::BreakerChange::none: break;
    }
}

asio::awaitable<StreamLease> ClusterLink::acquire_stream() {
    auto self = shared_from_this();
    std::string id = worker_id_ + ":" + std::to_string(++next_lease_);
    if (std::shared_ptr<RedisConnection> c = conn_; c && health_.state == RedisState::up) {
        std::vector<std::string> argv{"EVAL", acquire_script, "1", streams_key, std::to_string(lease_.count()),
                                      std::to_string(cluster_limit_), id};
        std::optional<RedisReply> r = co_await c->call(argv);
        if (r && integer(*r)) {
            if (r->integer < 1) co_return StreamLease();
            streams_active_ = int(r->integer);
            read_at_ms_ = gateway::steady_now_ms();
            publish();
            held_.insert(id);
            co_return StreamLease(self, id);
        }
        failed(c, failure(r, *c, "taking a stream lease"));
    }
    // Redis unreachable: this machine's share, which the limiter counts (this stream included).
    auto gw = gateway_.lock();
    if (!gw || gw->limiter.active() > fallback_share()) co_return StreamLease();
    held_.insert(id);   // put into Redis by the first renewal once it answers
    co_return StreamLease(self, id);
}

void ClusterLink::release_stream(const std::string& id) {
    held_.erase(id);
    if (conn_ && health_.state == RedisState::up) conn_->send({"ZREM", streams_key, id});
}

ClusterView ClusterLink::view() const {
    MachineLink m = machine_link(worker_links(regions_.cells));
    ClusterView v;
    v.redis = m.redis;
    v.reason = health_.reason;   // this worker's, else another's that cannot reach Redis
    if (v.reason.empty() && m.redis == RedisState::down) v.reason = down_reason(regions_.cells);
    v.streams_limit = cluster_limit_;
    v.streams_active = m.streams_active;
    v.hosts = m.hosts;
    v.fallback_share = fallback_stream_share(cluster_limit_, m.hosts, local_limit());
    v.workers = m.workers;
    v.workers_up = m.workers_up;
    v.outages = regions_.board->outages.load();
    return v;
}

void ClusterLink::write_metrics(MetricsText& out) const {
    ClusterView v = view();
    out.family("agente_cluster_redis_up", "gauge",
               "1 when every worker of this server reaches the cluster's Redis; 0: this machine uses its own limits.");
    out.sample("agente_cluster_redis_up", {}, std::int64_t(v.redis == RedisState::up));
    out.family("agente_cluster_workers", "gauge", "Workers of this server linked to the cluster's Redis, by whether they reach it.");
    out.sample("agente_cluster_workers", {{"redis", "up"}}, std::int64_t(v.workers_up));
    out.sample("agente_cluster_workers", {{"redis", "down"}}, std::int64_t(v.workers - v.workers_up));
    out.family("agente_cluster_redis_outages_total", "counter",
               "Times this server lost the cluster's Redis (one warning in the log each).");
    out.sample("agente_cluster_redis_outages_total", {}, v.outages);
    out.family("agente_cluster_streams_limit", "gauge",
               "[cluster] max_concurrent_streams: streams open at once over every machine (0: not shared).");
    out.sample("agente_cluster_streams_limit", {}, std::int64_t(v.streams_limit));
    out.family("agente_cluster_streams_active", "gauge", "Stream leases held over the cluster when a worker of this server last renewed or took one.");
    out.sample("agente_cluster_streams_active", {}, std::int64_t(v.streams_active));
    out.family("agente_cluster_hosts", "gauge", "Machines holding the cluster's Redis at the last renewal.");
    out.sample("agente_cluster_hosts", {}, std::int64_t(v.hosts));
    out.family("agente_cluster_fallback_share", "gauge",
               "Streams this machine may hold while Redis is unreachable: its share of the cluster's limit.");
    out.sample("agente_cluster_fallback_share", {}, std::int64_t(v.fallback_share));
}

}  // namespace agente::cluster
