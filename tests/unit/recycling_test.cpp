// A worker's max_requests over made-up counts and instants: when it asks for its replacement, when
// it stops, and how rarely it needs to look at the clock.
#include "core/recycling.hpp"

#include <gtest/gtest.h>

using namespace agente::core;
using namespace std::chrono_literals;
using Step = Recycling::Step;

namespace {

const Recycling::Clock::time_point t0{};

// Feeds `r` requests begun evenly, `per_request` apart, from `from` up to `to`, calling at() only at
// its checkpoints as the worker does; returns the count at which it asked for a replacement (0: never).
std::uint64_t run(Recycling& r, std::uint64_t from, std::uint64_t to, Recycling::Clock::duration per_request) {
    std::uint64_t asked = 0;
    for (std::uint64_t begun = from; begun <= to; ++begun) {
        if (begun < r.next_checkpoint()) continue;
        if (r.at(begun, t0 + per_request * begun) == Step::ask_for_replacement) asked = begun;
    }
    return asked;
}

}  // namespace

TEST(Recycling, AsksForItsReplacementWhatABootTakesAheadOfItsLimitAtItsPace) {
    Recycling r(10'000, 500ms, t0);
    // 1,000 requests a second: a replacement takes 500 of them to serve, so ask at 9,500.
    std::uint64_t asked = run(r, 1, 9'999, 1ms);
    EXPECT_NEAR(double(asked), 9'500, 350);   // the pace is sampled every 312 requests
}

TEST(Recycling, AFastWorkerAsksAtOnceASlowOneOnlyAtItsLimit) {
    Recycling fast(300, 500ms, t0);
    EXPECT_LE(run(fast, 1, 299, 50us), 20u);  // 300 requests take 15 ms, a boot 500 ms
    Recycling idle(300, 500ms, t0);
    EXPECT_EQ(run(idle, 1, 299, 10s), 0u);    // a request every 10 s: the replacement can wait
    EXPECT_EQ(idle.at(300, t0 + 3000s), Step::stop);
}

TEST(Recycling, StopsAtTheLimitAndForEveryRequestAfterIt) {
    Recycling r(100, 0ms, t0);
    run(r, 1, 99, 1ms);
    EXPECT_EQ(r.at(100, t0 + 100ms), Step::stop);   // the limit's own request closes its connection
    EXPECT_LE(r.next_checkpoint(), 101u);           // the worker keeps asking
    EXPECT_EQ(r.at(101, t0 + 101ms), Step::stop);
    EXPECT_EQ(r.at(140, t0 + 140ms), Step::stop);
}

TEST(Recycling, LooksAtTheClockAboutThirtyTimesALifetime) {
    Recycling r(32'000, 0ms, t0);
    int checkpoints = 0;
    for (std::uint64_t begun = 1; begun < 32'000; ++begun) {
        if (begun < r.next_checkpoint()) continue;
        ++checkpoints;
        r.at(begun, t0 + 1ms * begun);
    }
    EXPECT_LE(checkpoints, 33);
}

TEST(Recycling, ALimitOfOneStopsAtTheFirstRequest) {
    Recycling r(1, 1s, t0);
    EXPECT_EQ(r.next_checkpoint(), 1u);
    EXPECT_EQ(r.at(1, t0), Step::stop);
}
