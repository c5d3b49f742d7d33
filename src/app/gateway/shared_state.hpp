// The gateway's part of the shared memory every worker maps: circuit breakers and stream counters.
// Only lock-free atomics: a worker may die at any instruction and the others go on.
#pragma once

#include "app/gateway/settings.hpp"

#include <atomic>
#include <cstdint>

namespace agente::gateway {

inline constexpr int max_worker_slots = 256;

// One provider's breaker. The name is written by the master (before forking the workers that use
// it); workers only read it to find their cell.
struct BreakerCell {
    char name[max_provider_name + 1];
    std::atomic<std::uint32_t> failures;        // consecutive failed attempts
    std::atomic<std::int64_t> opened_at_ms;     // steady clock (CLOCK_MONOTONIC, same in every process); 0: closed
    std::atomic<std::int64_t> probe_at_ms;      // when the half-open probe started; 0: none in flight
};

// Streams held by each worker slot. There is deliberately no separate global counter: the total is
// the sum, so a worker killed between two updates cannot leave a count behind.
struct StreamCells {
    std::atomic<std::int32_t> per_slot[max_worker_slots];
};

struct SharedState {
    StreamCells streams;
    BreakerCell breakers[max_providers];
};

static_assert(std::atomic<std::int64_t>::is_always_lock_free && std::atomic<std::int32_t>::is_always_lock_free);

}  // namespace agente::gateway
