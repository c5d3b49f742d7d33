// The shared-memory scoreboard: one slot per worker, created by the master before any fork and
// inherited by every worker as a memfd. Workers stamp their own slot; the master reads all of them.
// Everything in it is a lock-free atomic, so a worker that dies mid-write corrupts nothing.
//
// Each pool has its own range of slots (its budget): HTTP workers 0..max_slots-1, dirty workers
// the dirty_slots after them. Beside each dirty slot, its worker lists its idempotent job kinds,
// so that an HTTP worker can tell, after a dirty worker died mid-call, whether to retry.
#pragma once

#include <agente/app.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string_view>
#include <vector>

namespace agente::core {

enum class WorkerState : std::uint32_t { free = 0, booting, ready, draining };

struct Slot {
    // CLOCK_MONOTONIC, stamped by a timer on the worker's loop. A dirty worker holds it back to the
    // start of its oldest running job: a job stuck past dirty_timeout is a hung worker too.
    std::atomic<std::int64_t> heartbeat_ns;
    std::atomic<std::uint32_t> state;         // WorkerState
    std::atomic<std::int32_t> pid;
    std::atomic<std::uint64_t> requests;      // served since boot (a dirty worker: jobs run)
    std::atomic<std::uint32_t> connections;   // open right now (a dirty worker: jobs running)
    std::atomic<std::uint32_t> retire;        // worker -> master: retire_* below
};

// Slot::retire. asked: max_requests is near, start my replacement (I serve on); at_limit: reached,
// I take no new connection and leave once my connections are answered.
inline constexpr std::uint32_t retire_asked = 1, retire_at_limit = 2;

// The idempotent job kinds of one dirty worker, as kind_hash() values; 0 ends the list.
struct DirtyKinds {
    static constexpr int max_kinds = 32;
    std::atomic<std::uint64_t> idempotent[max_kinds];
};

// FNV-1a of a job kind's name, never 0.
std::uint64_t kind_hash(std::string_view kind);

class Scoreboard {
public:
    static constexpr int max_slots = 256;         // HTTP workers: the `workers` bound
    static constexpr int dirty_slots = 128;       // dirty workers: the `dirty_workers` bound
    static constexpr int first_dirty_slot = max_slots;

    // Master: a fresh zeroed region with `app_bytes` for the app behind the slots.
    static Scoreboard create(std::size_t app_bytes);
    // Worker: map the region behind an inherited fd.
    static Scoreboard attach(int fd);

    Scoreboard() = default;
    Scoreboard(Scoreboard&& other) noexcept;
    Scoreboard& operator=(Scoreboard&& other) noexcept;
    ~Scoreboard();

    int fd() const { return fd_; }
    Slot& slot(int i) { return slots()[i]; }
    SharedArea app_area() const;

    // Master: a free slot index of the HTTP pool / the dirty pool (reset to booting for `pid`), or -1
    // when all are taken.
    int claim(std::int32_t pid);
    int claim_dirty(std::int32_t pid);
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


    Slot* slots() const;
    DirtyKinds& kinds_of(int slot) const;
    int claim_in(int first, int end, std::int32_t pid);
    int fd_ = -1;
    void* base_ = nullptr;
    std::size_t size_ = 0;
};

std::int64_t monotonic_ns();

// How often a worker with heartbeat timeout `timeout_seconds` stamps its slot: a quarter of it,
// within 0.1..1 s (the master looks every 0.1 s).
std::chrono::milliseconds heartbeat_interval(int timeout_seconds);

}  // namespace agente::core
