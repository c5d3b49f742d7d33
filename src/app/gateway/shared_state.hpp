// The gateway's regions of the shared memory every process maps (agente/shared.hpp): the circuit
// breakers, one per provider for the whole server, the streams each worker holds, the upstream
// figures, and the client keys' limits and usage. Only
// lock-free atomics: a worker may die at any instruction and the others go on.
#pragma once

#include "app/cluster/link_board.hpp"
#include "app/gateway/client_limits.hpp"
#include "app/gateway/metrics.hpp"
#include "app/gateway/settings.hpp"

#include <agente/shared.hpp>

#include <atomic>
#include <cstdint>

namespace agente::gateway {

// One provider's breaker. The name is written by the master (before forking the workers that use
// it); workers only read it to find their cell.
struct BreakerCell {
    char name[max_provider_name + 1];
    std::atomic<std::uint32_t> failures;        // consecutive failed attempts
    std::atomic<std::int64_t> opened_at_ms;     // steady clock (CLOCK_MONOTONIC, same in every process); 0: closed
    std::atomic<std::int64_t> probe_at_ms;      // when the half-open probe started; 0: none in flight
};

struct BreakerCells {
    BreakerCell cells[max_providers];
};

// The streams one worker holds. There is deliberately no global counter: the total is the sum over
// the workers, and the core zeroes a dead worker's cell, so a worker killed between two updates
// cannot leave a count behind.
struct StreamCell {
    std::atomic<std::int32_t> active;
};

struct SharedState {
    Shared<BreakerCells> breakers;
    PerWorker<StreamCell> streams;
    PerWorker<GatewayCounters> counters;   // folded into the retired cell when a worker dies
    Shared<UpstreamNames> upstream_names;
    ClientRegions clients;                 // the client keys' limits and usage (client_limits.hpp)
    cluster::LinkRegions cluster;          // the workers' Redis links, one view per machine (link_board.hpp)
};

// Every process, before the shared memory exists.
SharedState declare_shared_state(SharedLayout& layout);

static_assert(std::atomic<std::int64_t>::is_always_lock_free && std::atomic<std::int32_t>::is_always_lock_free);

}  // namespace agente::gateway
