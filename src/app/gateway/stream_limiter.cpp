// Claim first, then check the sum: the claim is visible to everyone before anyone decides.
#include "app/gateway/stream_limiter.hpp"

namespace agente::gateway {

bool StreamLimiter::try_acquire() {
    auto& mine = cells_.per_slot[slot_];
    mine.fetch_add(1);
    if (total(cells_) <= max_) return true;
    mine.fetch_sub(1);
    return false;
}

void StreamLimiter::release() { cells_.per_slot[slot_].fetch_sub(1); }

int StreamLimiter::active() const { return total(cells_); }

int StreamLimiter::total(const StreamCells& cells) {
    int sum = 0;
    for (const auto& c : cells.per_slot) sum += c.load();
    return sum;
}

void StreamLimiter::reclaim(StreamCells& cells, int slot) {
    if (slot >= 0 && slot < max_worker_slots) cells.per_slot[slot].store(0);
}

}  // namespace agente::gateway
