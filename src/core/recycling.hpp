// max_requests as a limit that holds under load without a dip in capacity (issue 16). A worker asks
// the master for its replacement ahead of its limit, by the requests it will begin while one boots
// at its current pace, and stops at the limit itself: no new connection, each open one closed after
// its next answer. A pure decision over counts and instants, as the arbiter's are: the worker asks
// at() only when its count of begun requests reaches next_checkpoint(), so its hot path is one
// comparison and a clock read every few requests.
#pragma once

#include <chrono>
#include <cstdint>

namespace agente::core {

class Recycling {
public:
    using Clock = std::chrono::steady_clock;
    enum class Step { none, ask_for_replacement, stop };

    // `limit` is max_requests with the jitter applied (> 0); `lead` how long a replacement takes to
    // serve once asked for; `start` when the worker began to serve.
    Recycling(std::uint64_t limit, Clock::duration lead, Clock::time_point start);

    // `begun` requests begun, the last one now. stop: this request is past the limit (the limit's
    // own included): its connection closes after the answer; every later call says stop too.
    Step at(std::uint64_t begun, Clock::time_point now);

    std::uint64_t next_checkpoint() const { return next_; }
    std::uint64_t replacement_due() const { return due_; }

private:
    std::uint64_t limit_;
    std::uint64_t sample_every_;      // the pace is measured over this many requests
    Clock::duration lead_;
    std::uint64_t sampled_begun_ = 0;
    Clock::time_point sampled_at_;
    std::uint64_t due_;               // ask for the replacement at this count
    bool asked_ = false;
    std::uint64_t next_ = 0;
};

}  // namespace agente::core
