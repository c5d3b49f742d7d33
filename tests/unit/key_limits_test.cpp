// The rules of a client key's limits, over made-up instants and cell values: no clock, no shared
// memory. A minute's allowance refills continuously; what a refused request asks spends nothing.
#include "app/gateway/key_limits.hpp"

#include <gtest/gtest.h>

using namespace agente::gateway;
using namespace std::chrono_literals;

namespace {

const nanoseconds t0 = 1000s;   // any instant of the steady clock

KeyLimits rpm(std::int64_t n) {
    KeyLimits l;
    l.requests_per_minute = n;
    return l;
}

KeyLimits tpm(std::int64_t n) {
    KeyLimits l;
    l.tokens_per_minute = n;
    return l;
}

KeyLimits streams(int n) {
    KeyLimits l;
    l.max_streams = n;
    return l;
}

// Sends `n` requests at `now`, storing what each admission says, as the shared cell would; returns
// how many got in.
int send(const KeyLimits& limits, KeyState& state, nanoseconds now, int n) {
    int admitted = 0;
    for (int i = 0; i < n; ++i) {
        Admission a = admit(limits, state, now, false);
        if (a.refused != Limit::none) continue;
        state.requests_full_at = a.requests_full_at;
        ++admitted;
    }
    return admitted;
}

}  // namespace

TEST(KeyLimits, AKeyWithoutLimitsIsNeverRefused) {
    KeyState busy{t0 + 1h, t0 + 1h, 1000};
    Admission a = admit(KeyLimits{}, busy, t0, true);
    EXPECT_EQ(a.refused, Limit::none);
    EXPECT_EQ(a.requests.limit, 0);   // no headers for limits the key does not have
    EXPECT_EQ(a.tokens.limit, 0);
}

TEST(KeyLimits, AFullMinuteOfRequestsMayComeAtOnceAndTheNextIsRefused) {
    KeyState s;
    EXPECT_EQ(send(rpm(3), s, t0, 3), 3);
    Admission fourth = admit(rpm(3), s, t0, false);
    EXPECT_EQ(fourth.refused, Limit::requests);
    EXPECT_EQ(fourth.retry_after, 20s);   // one request's share of the minute refills first
    EXPECT_EQ(fourth.requests.remaining, 0);
    EXPECT_EQ(fourth.requests_full_at, s.requests_full_at);   // refused: nothing spent
}

TEST(KeyLimits, TheAllowanceRefillsContinuouslyNotOnTheMinute) {
    KeyState s;
    EXPECT_EQ(send(rpm(60), s, t0, 60), 60);
    EXPECT_EQ(send(rpm(60), s, t0 + 999ms, 1), 0);
    EXPECT_EQ(send(rpm(60), s, t0 + 1s, 1), 1);    // one per second comes back
    EXPECT_EQ(send(rpm(60), s, t0 + 1s, 1), 0);
    EXPECT_EQ(send(rpm(60), s, t0 + 11s, 20), 10);
    EXPECT_EQ(send(rpm(60), s, t0 + 2h, 100), 60);  // an idle key never saves up more than a minute
}

// A reload that changes a key's limit keeps the share of the minute it has spent, not the count.
TEST(KeyLimits, AChangedLimitKeepsTheShareOfTheMinuteSpent) {
    KeyState s;
    EXPECT_EQ(send(rpm(2), s, t0, 1), 1);          // half the minute spent
    EXPECT_EQ(send(rpm(10), s, t0, 20), 5);        // half of the new allowance is left
    KeyState full;
    EXPECT_EQ(send(rpm(2), full, t0, 2), 2);
    EXPECT_EQ(send(rpm(3), full, t0, 1), 0);       // all of it spent: all of the new one too
}

TEST(KeyLimits, HeadersCountTheRequestBeingAdmitted) {
    KeyState s;
    Admission first = admit(rpm(10), s, t0, false);
    EXPECT_EQ(first.requests.limit, 10);
    EXPECT_EQ(first.requests.remaining, 9);
    EXPECT_EQ(first.requests.reset, 6s);   // full again once this one's share has refilled
    s.requests_full_at = first.requests_full_at;
    Admission second = admit(rpm(10), s, t0 + 1s, false);
    EXPECT_EQ(second.requests.remaining, 8);
    EXPECT_EQ(second.requests.reset, 11s);
}

TEST(KeyLimits, TokensAdmitWhileAnyIsLeftAndAreChargedWhenTheAnswerEnds) {
    KeyState s;
    Admission a = admit(tpm(1000), s, t0, false);
    EXPECT_EQ(a.refused, Limit::none);
    EXPECT_EQ(a.tokens.remaining, 1000);
    s.tokens_full_at = charge_tokens(tpm(1000), s.tokens_full_at, t0, 999);
    EXPECT_EQ(admit(tpm(1000), s, t0, false).tokens.remaining, 1);
    EXPECT_EQ(admit(tpm(1000), s, t0, false).refused, Limit::none);   // one token left is room
    s.tokens_full_at = charge_tokens(tpm(1000), s.tokens_full_at, t0, 1500);   // the answer was longer
    Admission refused = admit(tpm(1000), s, t0, false);
    EXPECT_EQ(refused.refused, Limit::tokens);
    EXPECT_EQ(refused.tokens.remaining, 0);
    EXPECT_EQ(refused.retry_after, 90s);    // 2499 spent of 1000: the 1499 over and one more refill at 1000/min
    EXPECT_EQ(refused.tokens.reset, 149'940ms);
    EXPECT_EQ(admit(tpm(1000), s, t0 + 89s, false).refused, Limit::tokens);
    EXPECT_EQ(admit(tpm(1000), s, t0 + 90s, false).refused, Limit::none);
}

TEST(KeyLimits, NoTokensChargedChangesNothing) {
    EXPECT_EQ(charge_tokens(tpm(1000), t0, t0 + 5s, 0), t0);
    EXPECT_EQ(charge_tokens(KeyLimits{}, t0, t0 + 5s, 100), t0);
    EXPECT_EQ(charge_tokens(tpm(60), t0 - 1h, t0, 1), t0 + 1s);   // spent from now, not from the past
}

TEST(KeyLimits, HugeUsageDoesNotOverflow) {
    nanoseconds later = charge_tokens(tpm(1), t0, t0, ~std::uint64_t(0));
    EXPECT_GT(later, t0);
    EXPECT_EQ(admit(tpm(1), KeyState{0ns, later, 0}, t0, false).refused, Limit::tokens);
}

TEST(KeyLimits, StreamsCountOnlyForStreamedRequests) {
    KeyState two_open{0ns, 0ns, 2};
    EXPECT_EQ(admit(streams(2), two_open, t0, false).refused, Limit::none);
    Admission a = admit(streams(2), two_open, t0, true);
    EXPECT_EQ(a.refused, Limit::streams);
    EXPECT_EQ(a.retry_after, 1s);
    EXPECT_EQ(admit(streams(3), two_open, t0, true).refused, Limit::none);
}

TEST(KeyLimits, ARequestRefusedForItsStreamSpendsNoRequest) {
    KeyLimits l = rpm(1);
    l.max_streams = 1;
    KeyState s{0ns, 0ns, 1};
    Admission a = admit(l, s, t0, true);
    EXPECT_EQ(a.refused, Limit::streams);
    EXPECT_EQ(a.requests_full_at, 0ns);
    s.streams = 0;
    EXPECT_EQ(admit(l, s, t0, true).refused, Limit::none);
}

TEST(KeyLimits, SeveralLimitsExceededNameTheLongestWaitAndRetryAfterCoversAll) {
    KeyLimits l;
    l.requests_per_minute = 2;    // 30 s per request
    l.tokens_per_minute = 60;     // 1 s per token
    l.max_streams = 1;
    KeyState s{t0 + 60s, t0 + 65s, 1};   // requests: 30 s to wait; tokens: 6 s; streams: 1 s
    Admission a = admit(l, s, t0, true);
    EXPECT_EQ(a.refused, Limit::requests);
    EXPECT_EQ(a.retry_after, 30s);
    s.requests_full_at = t0;
    a = admit(l, s, t0, true);
    EXPECT_EQ(a.refused, Limit::tokens);
    EXPECT_EQ(a.retry_after, 6s);
}

TEST(KeyLimits, RetryAfterIsWholeSecondsRoundedUpAndAtLeastOne) {
    KeyState s{t0 + 60s + 1ms, 0ns, 0};   // a request's 60 ms share would end 61 ms past the minute
    Admission a = admit(rpm(1000), s, t0, false);
    EXPECT_EQ(a.refused, Limit::requests);
    EXPECT_EQ(a.retry_after, 1s);
    s.requests_full_at = t0 + 61s + 500ms;
    EXPECT_EQ(admit(rpm(1000), s, t0, false).retry_after, 2s);
}

TEST(KeyLimits, ResetIsWrittenAsOpenAIWritesIt) {
    EXPECT_EQ(reset_text(0ns), "0ms");
    EXPECT_EQ(reset_text(20ms), "20ms");
    EXPECT_EQ(reset_text(1ns), "1ms");   // rounded up: never "0ms" while something is spent
    EXPECT_EQ(reset_text(1s), "1s");
    EXPECT_EQ(reset_text(1500ms), "1.5s");
    EXPECT_EQ(reset_text(6min), "6m0s");
    EXPECT_EQ(reset_text(149'940ms), "2m29.94s");
    EXPECT_EQ(reset_text(-5s), "0ms");
}
