// Claim first, then check the sum: the claim is visible to everyone before anyone decides.
#include "app/gateway/stream_limiter.hpp"

namespace agente::gateway {

bool StreamLimiter::try_acquire() {
    auto& mine = cells_.of(slot_).active;
    mine.fetch_add(1);
    if (total(cells_) <= max_) return true;
    mine.fetch_sub(1);
    return false;
}

void StreamLimiter::release() { cells_.of(slot_).active.fetch_sub(1); }

int StreamLimiter::total(const PerWorker<StreamCell>& cells) {
    int sum = 0;
    cells.for_each_in_use([&](const StreamCell& c) { sum += c.active.load(); });
    return sum;
}

}  // namespace agente::gateway
