// The shared-memory scoreboard: one slot per worker, created by the master before any fork and
// inherited by every worker as a memfd. Workers stamp their own slot; the master reads all of them.
// Everything in it is a lock-free atomic, so a worker that dies mid-write corrupts nothing.
#pragma once

#include <agente/app.hpp>

#include <atomic>
#include <cstdint>

namespace agente::core {

enum class WorkerState : std::uint32_t { free = 0, booting, ready, draining };

struct Slot {
    std::atomic<std::int64_t> heartbeat_ns;   // CLOCK_MONOTONIC, stamped by a timer on the worker's loop
    std::atomic<std::uint32_t> state;         // WorkerState
    std::atomic<std::int32_t> pid;
    std::atomic<std::uint64_t> requests;      // served since boot
    std::atomic<std::uint32_t> connections;   // open right now
    std::atomic<std::uint32_t> retire;        // worker -> master: retire_* below
};

// Slot::retire. asked: max_requests is near, start my replacement (I serve on); at_limit: reached,
// I take no new connection and leave once my connections are answered.
inline constexpr std::uint32_t retire_asked = 1, retire_at_limit = 2;

class Scoreboard {
public:
    static constexpr int max_slots = 256;

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

    // Master: a free slot index (reset to booting for `pid`), or -1 when all are taken.
    int claim(std::int32_t pid);
    void release(int i);

    // Worker: whether another ready worker, heard from since `alive_since_ns`, holds less than half
    // of `mine` (less two): the next connection is better left to it. Loose on purpose: under a
    // new-connection-per-request load the counts always differ a little, and deferring then
    // only slows accepting down.
    bool fewer_elsewhere(int my_slot, std::uint32_t mine, std::int64_t alive_since_ns) const;

private:
    Slot* slots() const;
    int fd_ = -1;
    void* base_ = nullptr;
    std::size_t size_ = 0;
};

std::int64_t monotonic_ns();

}  // namespace agente::core
