// The breaker's transitions, each one compare-and-swap so workers racing on the same cell agree.
#include "app/gateway/breaker.hpp"

#include <algorithm>

namespace agente::gateway {

std::string_view state_name(BreakerState s) {
    switch (s) {
    case BreakerState::closed: return "closed";
    case BreakerState::open: return "open";
    case BreakerState::half_open: return "half_open";
    }
    return "?";
}

std::int64_t steady_now_ms() {
    using namespace std::chrono;
    // +1 keeps 0 free to mean "never" even on a freshly booted clock.
    return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count() + 1;
}

BreakerState Breaker::state() const {
    std::int64_t opened = cell_.opened_at_ms.load();
    if (opened == 0) return BreakerState::closed;
    return clock_() < opened + cooldown_ms_ ? BreakerState::open : BreakerState::half_open;
}

bool Breaker::allow() {
    std::int64_t now = clock_(), opened = cell_.opened_at_ms.load();
    if (opened == 0) return true;
    if (now < opened + cooldown_ms_) return false;
    // Half-open: one probe. A probe whose worker died never reports, so after another cool-down the
    // next caller may probe instead.
    std::int64_t probe = cell_.probe_at_ms.load();
    if (probe != 0 && now < probe + cooldown_ms_) return false;
    return cell_.probe_at_ms.compare_exchange_strong(probe, now);
}

BreakerChange Breaker::record_success() {
    cell_.failures.store(0);
    std::int64_t was_open = cell_.opened_at_ms.exchange(0);
    cell_.probe_at_ms.store(0);
    return was_open ? BreakerChange::closed : BreakerChange::none;
}

BreakerChange Breaker::record_failure() {
    std::int64_t now = clock_();
    std::uint32_t n = cell_.failures.fetch_add(1) + 1;
    std::int64_t opened = cell_.opened_at_ms.load();
    if (opened != 0) {
        // A failed probe (or a straggler of the closed period) re-opens for a whole new cool-down.
        if (now >= opened + cooldown_ms_ && cell_.opened_at_ms.compare_exchange_strong(opened, now)) {
            cell_.probe_at_ms.store(0);
            return BreakerChange::reopened;
        }
        return BreakerChange::none;
    }
    if (n >= std::uint32_t(threshold_) && cell_.opened_at_ms.compare_exchange_strong(opened, now))
        return BreakerChange::opened;
    return BreakerChange::none;
}

BreakerChange Breaker::reset() { return record_success(); }

Breaker::Standing Breaker::standing() const {
    std::int64_t now = clock_(), opened = cell_.opened_at_ms.load();
    if (opened == 0) return {};
    return {true, opened + cooldown_ms_ - now, now - opened};
}

void Breaker::open_for(std::int64_t remaining_ms) {
    // Backdated so that the cool-down ends when the other machine's does; 1 at least, 0 being
    // "closed" (a machine booted less than a cool-down ago ends it a little earlier).
    std::int64_t opened = std::max<std::int64_t>(1, clock_() + remaining_ms - cooldown_ms_);
    cell_.opened_at_ms.store(opened);
    cell_.probe_at_ms.store(0);
}

}  // namespace agente::gateway
