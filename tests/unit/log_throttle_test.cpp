// The log throttle over made-up instants: which events get a line, and what the line says was left out.
#include "core/log_throttle.hpp"

#include <gtest/gtest.h>

using namespace agente::core;
using namespace std::chrono_literals;

namespace {
const LogThrottle::Clock::time_point t0{};
}

TEST(LogThrottle, TheFirstEventGetsItsLine) {
    LogThrottle t(10s);
    EXPECT_EQ(t.admit(t0 + 1h), 0u);
}

TEST(LogThrottle, TheRestOfTheIntervalIsCountedNotLogged) {
    LogThrottle t(10s);
    ASSERT_TRUE(t.admit(t0));
    for (int i = 0; i < 1000; ++i) EXPECT_FALSE(t.admit(t0 + 9s));
    EXPECT_EQ(t.admit(t0 + 10s), 1000u);  // the next line says how many it stands for
    EXPECT_FALSE(t.admit(t0 + 11s));
    EXPECT_EQ(t.admit(t0 + 60s), 1u);
    EXPECT_EQ(t.admit(t0 + 120s), 0u);     // a quiet interval: nothing was left out
}

TEST(LogThrottle, ABurstOfAnySizeGivesOneLinePerInterval) {
    LogThrottle t(10s);
    int lines = 0;
    for (int ms = 0; ms < 25'000; ms += 1) lines += t.admit(t0 + std::chrono::milliseconds(ms)).has_value();
    EXPECT_EQ(lines, 3);  // at 0, 10 and 20 s
}
