// The breaker's state machine and what counts against it, and the stream limiter, over cells laid
// out as in shared memory.
#include "app/gateway/attempts.hpp"
#include "app/gateway/breaker.hpp"
#include "app/gateway/stream_limiter.hpp"
#include "core/shared_memory.hpp"

#include <gtest/gtest.h>

#include <memory>

namespace agente::gateway {
namespace {

struct BreakerFixture : ::testing::Test {
    std::unique_ptr<BreakerCell> cell = std::make_unique<BreakerCell>();
    std::int64_t now = 1000;
    Breaker make() { return Breaker(*cell, 3, std::chrono::milliseconds(500), [this] { return now; }); }
};

TEST_F(BreakerFixture, OpensAfterThresholdConsecutiveFailures) {
    Breaker b = make();
    b.record_failure();
    b.record_failure();
    EXPECT_EQ(b.state(), BreakerState::closed);
    EXPECT_TRUE(b.allow());
    b.record_failure();
    EXPECT_EQ(b.state(), BreakerState::open);
    EXPECT_FALSE(b.allow());
    EXPECT_EQ(b.failures(), 3u);
}

TEST_F(BreakerFixture, SuccessResetsTheCount) {
    Breaker b = make();
    b.record_failure();
    b.record_failure();
    b.record_success();
    b.record_failure();
    b.record_failure();
    EXPECT_EQ(b.state(), BreakerState::closed);
}

TEST_F(BreakerFixture, HalfOpenLetsOneProbeThrough) {
    Breaker b = make();
    for (int i = 0; i < 3; ++i) b.record_failure();
    now += 499;
    EXPECT_FALSE(b.allow());
    now += 1;
    EXPECT_EQ(b.state(), BreakerState::half_open);
    EXPECT_TRUE(b.allow());
    EXPECT_FALSE(b.allow());   // the second caller waits for the probe's outcome
    b.record_success();
    EXPECT_EQ(b.state(), BreakerState::closed);
    EXPECT_TRUE(b.allow());
}

TEST_F(BreakerFixture, FailedProbeReopensForAWholeCooldown) {
    Breaker b = make();
    for (int i = 0; i < 3; ++i) b.record_failure();
    now += 600;
    ASSERT_TRUE(b.allow());
    b.record_failure();
    EXPECT_EQ(b.state(), BreakerState::open);
    now += 499;
    EXPECT_FALSE(b.allow());
    now += 1;
    EXPECT_TRUE(b.allow());
}

TEST_F(BreakerFixture, AProbeThatNeverReportsIsReplacedAfterACooldown) {
    Breaker b = make();
    for (int i = 0; i < 3; ++i) b.record_failure();
    now += 500;
    ASSERT_TRUE(b.allow());    // its worker dies before reporting
    now += 499;
    EXPECT_FALSE(b.allow());
    now += 1;
    EXPECT_TRUE(b.allow());
}

TEST_F(BreakerFixture, StateIsSharedThroughTheCell) {
    Breaker worker_a = make(), worker_b = make();
    for (int i = 0; i < 3; ++i) worker_a.record_failure();
    EXPECT_FALSE(worker_b.allow());
    worker_b.reset();
    EXPECT_TRUE(worker_a.allow());
    EXPECT_EQ(worker_a.failures(), 0u);
}

TEST_F(BreakerFixture, EachTransitionIsReportedOnceToTheCallerThatMadeIt) {
    Breaker a = make(), b = make();
    EXPECT_EQ(a.record_failure(), BreakerChange::none);
    EXPECT_EQ(b.record_failure(), BreakerChange::none);
    EXPECT_EQ(a.record_failure(), BreakerChange::opened);   // the third: the threshold
    EXPECT_EQ(b.record_failure(), BreakerChange::none);     // a straggler of the closed period
    now += 500;
    ASSERT_TRUE(b.allow());                                  // the half-open probe
    EXPECT_EQ(b.record_failure(), BreakerChange::reopened);
    EXPECT_EQ(a.record_failure(), BreakerChange::none);     // already re-opened, by b
    now += 500;
    ASSERT_TRUE(a.allow());
    EXPECT_EQ(a.record_success(), BreakerChange::closed);
    EXPECT_EQ(b.record_success(), BreakerChange::none);
    EXPECT_EQ(a.reset(), BreakerChange::none);
}

// What counts against a provider (docs/gateway.md, "Breakers"): a client must not be able to open
// a breaker for every other client with requests the provider refuses.
TEST(CountsAgainstProvider, TransportFailures5xxAnd429NeverAnotherAnswer) {
    for (CallError e : {CallError::connect, CallError::timeout, CallError::io, CallError::protocol, CallError::tls})
        EXPECT_TRUE(counts_against_provider(0, e)) << call_error_name(e);
    for (int status : {500, 502, 503, 504, 529, 429}) EXPECT_TRUE(counts_against_provider(status, CallError::none)) << status;
    for (int status : {200, 201, 204, 301, 400, 401, 403, 404, 408, 409, 413, 415, 422, 451})
        EXPECT_FALSE(counts_against_provider(status, CallError::none)) << status;
}

// The stream cells as the core lays them out: one per worker slot.
struct StreamFixture : ::testing::Test {
    SharedLayout layout{8};
    SharedState shared = declare_shared_state(layout);
    core::SharedMemory memory = core::SharedMemory::create(layout);
    // As the master does before it starts a worker: only the slots in use are summed.
    StreamFixture() {
        memory.occupy(0);
        memory.occupy(1);
    }
};

TEST_F(StreamFixture, HoldsTheLimitAcrossSlots) {
    StreamLimiter w0(shared.streams, 0, 3), w1(shared.streams, 1, 3);
    EXPECT_TRUE(w0.try_acquire());
    EXPECT_TRUE(w1.try_acquire());
    EXPECT_TRUE(w1.try_acquire());
    EXPECT_FALSE(w0.try_acquire());
    EXPECT_EQ(w0.active(), 3);
    w1.release();
    EXPECT_TRUE(w0.try_acquire());
}

TEST_F(StreamFixture, ADeadWorkersStreamsAreGivenBackWhenTheCoreRetiresItsSlot) {
    StreamLimiter w0(shared.streams, 0, 2), w7(shared.streams, 7, 2);
    memory.occupy(7);
    ASSERT_TRUE(w7.try_acquire());
    ASSERT_TRUE(w7.try_acquire());
    EXPECT_FALSE(w0.try_acquire());
    memory.retire_slot(7);
    EXPECT_EQ(StreamLimiter::total(shared.streams), 0);
    EXPECT_TRUE(w0.try_acquire());
}

TEST_F(StreamFixture, PermitReleasesOnScopeExit) {
    StreamLimiter w(shared.streams, 0, 1);
    {
        ASSERT_TRUE(w.try_acquire());
        StreamPermit p(&w);
        EXPECT_EQ(w.active(), 1);
    }
    EXPECT_EQ(w.active(), 0);
}

}  // namespace
}  // namespace agente::gateway
