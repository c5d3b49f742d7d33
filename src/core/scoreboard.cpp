#include "core/scoreboard.hpp"

#include <algorithm>
#include <ctime>

namespace agente::core {

std::int64_t monotonic_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::chrono::milliseconds heartbeat_interval(int timeout_seconds) {
    return std::chrono::milliseconds(std::clamp<std::int64_t>(std::int64_t(timeout_seconds) * 250, 100, 1000));
}

std::uint64_t kind_hash(std::string_view kind) {
    std::uint64_t h = 14695981039346656037ull;
    for (unsigned char c : kind) h = (h ^ c) * 1099511628211ull;
    return h ? h : 1;
}

bool Scoreboard::any_dirty_ready() const {
    for (int s = first_dirty_slot; s < first_dirty_slot + dirty_slots; ++s)   // claimed lowest first
        if (slot(s).state.load(std::memory_order_relaxed) == std::uint32_t(WorkerState::ready)) return true;
    return false;
}

void Scoreboard::list_idempotent(int slot, const std::vector<std::uint64_t>& hashes) {
    DirtyKinds& k = kinds_of(slot);
    for (int i = 0; i < DirtyKinds::max_kinds; ++i)
        k.idempotent[i].store(i < int(hashes.size()) ? hashes[i] : 0, std::memory_order_relaxed);
}

bool Scoreboard::idempotent(std::uint64_t hash) const {
    for (int s = first_dirty_slot; s < first_dirty_slot + dirty_slots; ++s) {
        if (slot(s).state.load(std::memory_order_relaxed) == std::uint32_t(WorkerState::free)) continue;
        const DirtyKinds& k = kinds_of(s);
        for (const auto& cell : k.idempotent) {
            std::uint64_t h = cell.load(std::memory_order_relaxed);
            if (h == 0) break;
            if (h == hash) return true;
        }
    }
    return false;
}

int Scoreboard::claim(std::int32_t pid, std::uint32_t generation) {
    int i = claim_in(0, max_slots, pid, generation);
    if (i >= in_use_->http_end.load(std::memory_order_relaxed)) in_use_->http_end.store(i + 1);  // master only
    return i;
}

int Scoreboard::claim_dirty(std::int32_t pid, std::uint32_t generation) {
    int i = claim_in(first_dirty_slot, first_dirty_slot + dirty_slots, pid, generation);
    if (i >= 0) list_idempotent(i, {});
    return i;
}

int Scoreboard::claim_in(int first, int end, std::int32_t pid, std::uint32_t generation) {
    for (int i = first; i < end; ++i) {
        Slot& s = slot(i);
        if (s.state.load() != std::uint32_t(WorkerState::free)) continue;
        // Free means zeroed (release), so only what a new worker starts with is written.
        s.pid = pid;
        s.generation = generation;
        s.started_ns = monotonic_ns();
        s.heartbeat_ns = s.started_ns.load();
        s.state = std::uint32_t(WorkerState::booting);
        memory_.occupy(i);
        return i;
    }
    return -1;
}

void Scoreboard::release(int i) { memory_.retire_slot(i); }

std::uint32_t Scoreboard::fewest_elsewhere(int my_slot, std::int64_t alive_since_ns) const {
    std::uint32_t fewest = UINT32_MAX;
    int end = in_use_->http_end.load(std::memory_order_relaxed);
    for (int i = 0; i < end; ++i) {
        const Slot& s = slot(i);
        if (i == my_slot || s.state.load(std::memory_order_relaxed) != std::uint32_t(WorkerState::ready)) continue;
        if (s.heartbeat_ns.load(std::memory_order_relaxed) < alive_since_ns) continue;  // stuck: no help
        fewest = std::min(fewest, s.connections.load(std::memory_order_relaxed));
    }
    return fewest;
}

bool Scoreboard::fewer_elsewhere(int my_slot, std::uint32_t mine, std::int64_t alive_since_ns) const {
    std::uint64_t fewest = fewest_elsewhere(my_slot, alive_since_ns);  // 64 bits: none is UINT32_MAX
    return 2 * fewest + 2 < mine;
}

bool Scoreboard::room_elsewhere(int my_slot, std::uint32_t limit, std::int64_t alive_since_ns) const {
    return fewest_elsewhere(my_slot, alive_since_ns) < limit;
}

}  // namespace agente::core
