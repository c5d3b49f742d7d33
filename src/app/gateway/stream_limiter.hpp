// The limit on concurrent streams across all workers, kept as one counter per worker (a per-worker
// shared region), so that a dead worker's streams are given back when the core zeroes its cells.
#pragma once

#include "app/gateway/shared_state.hpp"

namespace agente::gateway {

class StreamLimiter {
public:
    StreamLimiter(PerWorker<StreamCell> cells, int slot, int max) : cells_(cells), slot_(slot), max_(max) {}

    // Takes a slot if the total stays within max. Two workers racing for the last slot may both be
    // refused (each sees the other's claim); never both admitted.
    bool try_acquire();
    void release();

    int active() const { return total(cells_); }
    int max() const { return max_; }
    // The cluster's link lowers it to this machine's share while Redis is unreachable, and puts
    // max_concurrent_streams back when it answers again (cluster/redis_link.hpp).
    void set_max(int max) { max_ = max; }

    static int total(const PerWorker<StreamCell>& cells);

private:
    PerWorker<StreamCell> cells_;
    int slot_;
    int max_;
};

// Releases its slot when it goes out of scope: completion, error, cancellation alike.
class StreamPermit {
public:
    explicit StreamPermit(StreamLimiter* limiter) : limiter_(limiter) {}
    StreamPermit(StreamPermit&& o) noexcept : limiter_(o.limiter_) { o.limiter_ = nullptr; }
    StreamPermit& operator=(StreamPermit&&) = delete;
    ~StreamPermit() { if (limiter_) limiter_->release(); }
    explicit operator bool() const { return limiter_ != nullptr; }

private:
    StreamLimiter* limiter_;
};

}  // namespace agente::gateway
