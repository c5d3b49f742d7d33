// At most one line per interval for something a client can cause at will: a malformed request was a
// warning each, 178,000 lines in 25 s of fuzzing, which buried everything else in the journal. The
// first of a burst gets its line; the rest are counted, and the next line admitted says how many
// were left out. A function of the instants it is given, with no clock of its own.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <utility>

namespace agente::core {

class LogThrottle {
public:
    using Clock = std::chrono::steady_clock;

    explicit LogThrottle(Clock::duration interval) : interval_(interval) {}

    // For an event at `now`: whether it gets its line and, when it does, how many events were left
    // out since the last line.
    std::optional<std::uint64_t> admit(Clock::time_point now) {
        if (logged_ && now - last_ < interval_) {
            ++left_out_;
            return std::nullopt;
        }
        logged_ = true;
        last_ = now;
        return std::exchange(left_out_, 0);
    }

private:
    Clock::duration interval_;
    Clock::time_point last_{};
    bool logged_ = false;
    std::uint64_t left_out_ = 0;
};

}  // namespace agente::core
