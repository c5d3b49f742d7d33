// A circuit breaker over a shared cell: `threshold` consecutive failures open it for `cooldown`; then
// one caller gets a half-open probe whose outcome closes it again or re-opens it.
#pragma once

#include "app/gateway/shared_state.hpp"

#include <chrono>
#include <functional>
#include <string_view>

namespace agente::gateway {

enum class BreakerState { closed, open, half_open };
std::string_view state_name(BreakerState s);

// What a call changed, for the log: each transition is reported to the one caller whose
// compare-and-swap made it, so racing workers log it once.
enum class BreakerChange { none, opened, reopened, closed };

// Milliseconds on a clock every process shares; injected by tests.
using ClockMs = std::function<std::int64_t()>;
std::int64_t steady_now_ms();

class Breaker {
public:
    Breaker(BreakerCell& cell, int threshold, std::chrono::milliseconds cooldown, ClockMs clock = steady_now_ms)
        : cell_(cell), threshold_(threshold), cooldown_ms_(cooldown.count()), clock_(std::move(clock)) {}

    // May a request go to this provider now? In half-open state only the one probe may.
    bool allow();
    BreakerChange record_success();
    BreakerChange record_failure();
    BreakerChange reset();

    BreakerState state() const;
    // The cluster's view (cluster/coordination.hpp): how it stands now, and opening it as another
    // machine's breaker is, for `remaining` more (never reported as a transition: it was there).
    struct Standing {
        bool open = false;                // open or half-open
        std::int64_t remaining_ms = 0;    // of the cool-down; 0 or less: half-open
        std::int64_t opened_ago_ms = 0;
    };
    Standing standing() const;
    void open_for(std::int64_t remaining_ms);

    std::uint32_t failures() const { return cell_.failures.load(std::memory_order_relaxed); }
    int threshold() const { return threshold_; }

private:
    BreakerCell& cell_;
    int threshold_;
    std::int64_t cooldown_ms_;
    ClockMs clock_;
};

}  // namespace agente::gateway
