#include "core/recycling.hpp"

#include <algorithm>

namespace agente::core {

namespace {

// Samples per lifetime: often enough to follow the pace of a worker that lives a fraction of a
// second, rare enough that the clock reads cost nothing.
constexpr std::uint64_t samples_per_lifetime = 32;

}  // namespace

Recycling::Recycling(std::uint64_t limit, Clock::duration lead, Clock::time_point start)
    : limit_(limit),
      sample_every_(std::max<std::uint64_t>(1, limit / samples_per_lifetime)),
      lead_(lead),
      sampled_at_(start),
      due_(limit) {
    next_ = std::min(limit_, sample_every_);
}

Recycling::Step Recycling::at(std::uint64_t begun, Clock::time_point now) {
    if (begun >= limit_) {
        next_ = begun;  // every request from here on is answered with Connection: close
        return Step::stop;
    }
    if (begun >= sampled_begun_ + sample_every_ && now > sampled_at_) {
        double per_tick = double(begun - sampled_begun_) / double((now - sampled_at_).count());
        double ahead = per_tick * double(lead_.count());  // requests begun while a replacement boots
        due_ = ahead >= double(limit_) ? 0 : limit_ - std::uint64_t(ahead);
        sampled_begun_ = begun;
        sampled_at_ = now;
    }
    Step step = Step::none;
    if (!asked_ && begun >= due_) {
        asked_ = true;
        step = Step::ask_for_replacement;
    }
    next_ = std::min(limit_, sampled_begun_ + sample_every_);
    if (!asked_) next_ = std::min(next_, due_);
    return step;
}

}  // namespace agente::core
