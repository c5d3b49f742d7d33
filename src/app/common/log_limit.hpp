// A log line that anyone on the network can cause (a wrong key, a refused request) must not let them
// fill the disk or bury the other lines: at most `burst` such lines per `window`, and the count of
// those left out is told with the first line of the next window.
#pragma once

#include <chrono>
#include <cstdint>

namespace agente::app {

class LogLimit {
public:
    using Clock = std::chrono::steady_clock;

    LogLimit(int burst, Clock::duration window) : burst_(burst), window_(window) {}

    struct Decision {
        bool log = false;           // write this line
        std::uint64_t left_out = 0; // lines of the window that ended, not written: say so with this one
    };

    // One event at `now`: whether to log it, and how many the previous window left out.
    Decision admit(Clock::time_point now) {
        Decision d;
        if (count_ == 0 || now - window_start_ >= window_) {
            d.left_out = left_out_;
            window_start_ = now;
            count_ = 0;
            left_out_ = 0;
        }
        if (count_ < burst_) {
            ++count_;
            d.log = true;
        } else {
            ++left_out_;
        }
        return d;
    }

private:
    int burst_;
    Clock::duration window_;
    Clock::time_point window_start_{};
    int count_ = 0;
    std::uint64_t left_out_ = 0;
};

}  // namespace agente::app
