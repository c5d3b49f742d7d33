// What every HTTP worker's Redis link (redis_link.hpp) tells the others of its machine, in the shared
// memory they all map (agente/shared.hpp): each worker's view of Redis in a cell of its own, and the
// machine's outage record. So /metrics and /system/streaming-health answer for the whole server
// whichever worker takes the scrape (like every other family), and an outage is logged once per
// machine rather than once per worker. Only lock-free atomics: a worker may die at any instruction,
// and the core zeroes its cell (`linked` 0: it no longer counts).
#pragma once

#include "app/cluster/coordination.hpp"

#include <agente/shared.hpp>

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace agente::cluster {

struct LinkCell {
    std::atomic<std::int32_t> linked;          // 1 while this worker runs a link
    std::atomic<std::int32_t> state;           // its RedisState
    std::atomic<std::int32_t> streams_active;  // leases over the cluster at its last renewal or lease taken
    std::atomic<std::int32_t> hosts;           // machines Redis counted then
    std::atomic<std::int64_t> read_at_ms;      // steady clock (the same in every process): when; 0 never
    // Why it cannot reach Redis, for whichever worker answers: written under a sequence count (odd
    // while writing) so that a reader never takes half of two reasons.
    std::atomic<std::uint32_t> reason_seq;
    std::atomic<char> reason[160];
};

struct LinkBoard {
    std::atomic<std::uint32_t> outage_logged;  // a worker of this machine warned of the outage under way
    std::atomic<std::uint64_t> outages;        // outages this machine logged since the server started
};

struct LinkRegions {
    PerWorker<LinkCell> cells;
    Shared<LinkBoard> board;
};

// Every process, before the shared memory exists.
LinkRegions declare_link_regions(SharedLayout& layout);

// The cells of every worker that runs a link, as coordination.hpp's machine_link() reads them.
std::vector<WorkerLink> worker_links(const PerWorker<LinkCell>& cells);

// Sets a cell's reason (cut to fit), and reads it back: "" while it is being written, or when a
// worker died writing it.
void write_reason(LinkCell& cell, std::string_view reason);
std::string read_reason(const LinkCell& cell);

// The reason of a worker whose cell says Redis is down ("" when none does).
std::string down_reason(const PerWorker<LinkCell>& cells);

static_assert(std::atomic<std::int64_t>::is_always_lock_free && std::atomic<std::int32_t>::is_always_lock_free);

}  // namespace agente::cluster
