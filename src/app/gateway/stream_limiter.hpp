// The limit on concurrent streams across all workers, kept as one counter per worker slot so the
// master can give back a dead worker's streams (reclaim) without any bookkeeping of its own.
#pragma once

#include "app/gateway/shared_state.hpp"

namespace agente::gateway {

class StreamLimiter {
public:
    StreamLimiter(StreamCells& cells, int slot, int max) : cells_(cells), slot_(slot), max_(max) {}

    // Takes a slot if the total stays within max. Two workers racing for the last slot may both be
    // refused (each sees the other's claim); never both admitted.
    bool try_acquire();
    void release();

    int active() const;
    int max() const { return max_; }

    // The master, after the worker in `slot` died.
    static void reclaim(StreamCells& cells, int slot);
    static int total(const StreamCells& cells);

private:
    StreamCells& cells_;
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
