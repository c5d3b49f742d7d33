// The scoreboard: one slot per worker in the shared memory the master creates before any fork
// (shared_memory.hpp), beside the regions the core's metrics and the app declare. Workers stamp
// their own slot; the master reads all of them. Everything in it is a lock-free atomic, so a worker
// that dies mid-write corrupts nothing.
//
// Each pool has its own range of slots (its budget): HTTP workers 0..max_slots-1, dirty workers
// the dirty_slots after them. Beside each dirty slot, its worker lists its idempotent job kinds,
// so that an HTTP worker can tell, after a dirty worker died mid-call, whether to retry.
#pragma once

#include "core/shared_memory.hpp"

#include <agente/shared.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string_view>
#include <vector>

namespace agente::core {

enum class WorkerState : std::uint32_t { free = 0, booting, ready, draining };

// A per-worker cell: zeroed by the master when its worker dies, which makes it free.
struct Slot {
    // CLOCK_MONOTONIC, stamped by a timer on the worker's loop. A dirty worker holds it back to the
    // start of its oldest running job: a job stuck past dirty_timeout is a hung worker too.
    std::atomic<std::int64_t> heartbeat_ns;
    std::atomic<std::uint32_t> state;         // WorkerState
    std::atomic<std::int32_t> pid;
    std::atomic<std::uint64_t> requests;      // served since boot (a dirty worker: jobs run)
    std::atomic<std::uint32_t> connections;   // open right now (a dirty worker: jobs running)
    std::atomic<std::uint32_t> retire;        // worker -> master: retire_* below
    std::atomic<std::uint32_t> generation;    // master: the generation it was started for
    std::atomic<std::uint32_t> in_flight;     // requests being answered right now
    std::atomic<std::int64_t> started_ns;     // master: CLOCK_MONOTONIC when it was started
    std::atomic<std::uint64_t> memory_bytes;  // master: its resident memory, read from /proc now and then
};

// Slot::retire. asked: max_requests is near, start my replacement (I serve on); at_limit: reached,
// I take no new connection and leave once my connections are answered.
inline constexpr std::uint32_t retire_asked = 1, retire_at_limit = 2;

// The idempotent job kinds of one dirty worker, as kind_hash() values; 0 ends the list.
struct DirtyKinds {
    static constexpr int max_kinds = 32;
    std::atomic<std::uint64_t> idempotent[max_kinds];
};

// Every dirty slot's list, a whole-server region.
struct DirtyKindsTable {
    DirtyKinds of[max_dirty_slots];
};

// One past the highest HTTP slot ever claimed: slots are claimed lowest first, so a worker looking
// for a less loaded peer on every accept reads these few slots, not all max_http_slots.
struct SlotsInUse {
    std::atomic<std::int32_t> http_end;
};

// FNV-1a of a job kind's name, never 0.
std::uint64_t kind_hash(std::string_view kind);

class Scoreboard {
public:
    static constexpr int max_slots = max_http_slots;       // HTTP workers: the `workers` bound
    static constexpr int dirty_slots = max_dirty_slots;    // dirty workers: the `dirty_workers` bound
    static constexpr int first_dirty_slot = max_slots;
    static constexpr int all_slots = max_worker_slots;

    // Declares the slots in `layout`; the memory comes with create() or attach().
    explicit Scoreboard(SharedLayout& layout)
        : layout_(layout),
          slots_(layout.declare_per_worker<Slot>("core.slots")),
          kinds_(layout.declare<DirtyKindsTable>("core.dirty_kinds")),
          in_use_(layout.declare<SlotsInUse>("core.slots_in_use")) {}

    // Master: the shared memory for every region declared so far (the app's too).
    void create() { memory_ = SharedMemory::create(layout_); }
    // Worker: the master's, behind an inherited fd.
    void attach(int fd) { memory_ = SharedMemory::attach(fd, layout_); }

    int fd() const { return memory_.fd(); }
    Slot& slot(int i) { return slots_.of(i); }
    const Slot& slot(int i) const { return slots_.of(i); }
    SharedMemory& memory() { return memory_; }

    // Master: a free slot index of the HTTP pool / the dirty pool (booting, for `pid` of
    // `generation`), or -1 when all are taken.
    int claim(std::int32_t pid, std::uint32_t generation = 0);
    int claim_dirty(std::int32_t pid, std::uint32_t generation = 0);
    // Master, once its worker is reaped: counters folded, every per-worker cell zeroed, slot free.
    void release(int i);

    // Whether some dirty worker has said it is ready (and not yet draining): when none has, an HTTP
    // worker tells its caller at once that a call cannot be served. Read from the workers' own
    // states, which they set themselves: no lag behind the master's cycle at boot.
    bool any_dirty_ready() const;

    // A dirty worker at boot: lists its idempotent kinds beside its slot (those past max_kinds are
    // not listed: their calls are not retried). HTTP workers: whether a live dirty worker lists it.
    void list_idempotent(int slot, const std::vector<std::uint64_t>& hashes);
    bool idempotent(std::uint64_t hash) const;

    // Worker: whether another ready worker, heard from since `alive_since_ns`, holds less than half
    // of `mine` (less two): the next connection is better left to it. Loose on purpose: under a
    // new-connection-per-request load the counts always differ a little, and deferring then
    // only slows accepting down.
    bool fewer_elsewhere(int my_slot, std::uint32_t mine, std::int64_t alive_since_ns) const;
    // Worker: whether another ready worker, heard from since `alive_since_ns`, holds fewer than
    // `limit` (worker_connections): a full worker leaves the next connection to it.
    bool room_elsewhere(int my_slot, std::uint32_t limit, std::int64_t alive_since_ns) const;

private:
    // The fewest connections a ready worker other than `my_slot`, heard from since
    // `alive_since_ns`, holds; UINT32_MAX when there is none.
    std::uint32_t fewest_elsewhere(int my_slot, std::int64_t alive_since_ns) const;
    DirtyKinds& kinds_of(int slot) const { return kinds_->of[slot - first_dirty_slot]; }
    int claim_in(int first, int end, std::int32_t pid, std::uint32_t generation);
    SharedLayout& layout_;
    PerWorker<Slot> slots_;
    Shared<DirtyKindsTable> kinds_;
    Shared<SlotsInUse> in_use_;
    SharedMemory memory_;
};

std::int64_t monotonic_ns();

// How often a worker with heartbeat timeout `timeout_seconds` stamps its slot: a quarter of it,
// within 0.1..1 s (the master looks every 0.1 s).
std::chrono::milliseconds heartbeat_interval(int timeout_seconds);

}  // namespace agente::core
