// What a machine decides about the state it shares through Redis (app/cluster/coordination.hpp):
// its share of the stream limit when Redis is gone, how often its leases are renewed, what it logs
// when Redis goes and comes back, and how a breaker's record in Redis moves the local breaker.
#include "app/cluster/coordination.hpp"
#include "app/gateway/breaker.hpp"

#include <gtest/gtest.h>

#include <memory>

namespace agente::cluster {
namespace {

using namespace std::chrono_literals;
using Action = BreakerAdoption::Action;

// ---- the fallback share ----

TEST(FallbackShare, IsTheClusterLimitDividedByTheMachinesRoundedDown) {
    EXPECT_EQ(fallback_stream_share(30, 3, 10), 10);   // the seed's 3 x 10 = 30
    EXPECT_EQ(fallback_stream_share(30, 4, 10), 7);    // 4 x 7 = 28: never more than the limit together
    EXPECT_EQ(fallback_stream_share(4, 2, 10), 2);
}

TEST(FallbackShare, NeverAboveTheMachinesOwnLimit) {
    EXPECT_EQ(fallback_stream_share(30, 1, 10), 10);   // alone, still at most its max_concurrent_streams
}

TEST(FallbackShare, AtLeastOneStreamEvenWhenMachinesOutnumberTheLimit) {
    EXPECT_EQ(fallback_stream_share(2, 5, 10), 1);
}

TEST(FallbackShare, AMachineThatNeverReachedRedisTakesItsOwnLimitAtMostTheClusters) {
    EXPECT_EQ(fallback_stream_share(30, 0, 10), 10);
    EXPECT_EQ(fallback_stream_share(4, 0, 10), 4);
}

TEST(FallbackShare, AnUnsharedLimitIsTheMachinesOwn) {
    EXPECT_EQ(fallback_stream_share(0, 3, 10), 10);
}

// ---- lease renewal ----

TEST(LeaseRenewal, AThirdOfTheLeaseSoTwoLostRenewalsDoNotLapseALiveStream) {
    EXPECT_EQ(renewal_interval(10s), 3333ms);
    EXPECT_LT(2 * renewal_interval(1s), 1s);
}

// ---- Redis up and down ----

TEST(RedisHealth, TheFirstAnswerSaysConnectedThenNothingWhileItAnswers) {
    RedisHealth h;
    EXPECT_EQ(h.state, RedisState::connecting);
    EXPECT_EQ(on_redis_success(h), HealthLog::connected);
    EXPECT_EQ(on_redis_success(h), HealthLog::none);
    EXPECT_EQ(h.state, RedisState::up);
}

TEST(RedisHealth, LosingItWarnsOnceForTheWholeOutageAndItsReturnIsSaidOnce) {
    RedisHealth h;
    on_redis_success(h);
    EXPECT_EQ(on_redis_failure(h, "no reply within 500 ms"), HealthLog::lost);
    EXPECT_EQ(on_redis_failure(h, "Connection refused"), HealthLog::none);   // each reconnection attempt
    EXPECT_EQ(on_redis_failure(h, "Connection refused"), HealthLog::none);
    EXPECT_EQ(h.state, RedisState::down);
    EXPECT_EQ(h.reason, "Connection refused");
    EXPECT_EQ(on_redis_success(h), HealthLog::recovered);
    EXPECT_EQ(h.reason, "");
    EXPECT_EQ(on_redis_success(h), HealthLog::none);
}

TEST(RedisHealth, AServerStartedWhileRedisIsDownWarnsOnce) {
    RedisHealth h;
    EXPECT_EQ(on_redis_failure(h, "Connection refused"), HealthLog::lost);
    EXPECT_EQ(on_redis_failure(h, "Connection refused"), HealthLog::none);
    EXPECT_EQ(on_redis_success(h), HealthLog::recovered);
}

// ---- breakers ----

constexpr std::int64_t slack = 500;
RemoteBreaker open_record(std::int64_t ttl) { return {RemoteBreaker::Kind::open, ttl}; }
RemoteBreaker closed_record(std::int64_t ttl) { return {RemoteBreaker::Kind::closed, ttl}; }
LocalBreaker closed_here() { return {}; }
LocalBreaker open_here(std::int64_t remaining, std::int64_t ago) { return {true, remaining, ago}; }

TEST(BreakerReconcile, AnOpenRecordOpensAClosedBreakerUntilTheRecordEnds) {
    BreakerAdoption a = reconcile_breaker(closed_here(), open_record(29'000), slack);
    EXPECT_EQ(a.action, Action::open);
    EXPECT_EQ(a.remaining_ms, 29'000);
}

TEST(BreakerReconcile, ABreakerAlreadyOpenAsLongIsLeftAlone) {
    EXPECT_EQ(reconcile_breaker(open_here(28'800, 1200), open_record(29'000), slack).action, Action::none);
    EXPECT_EQ(reconcile_breaker(open_here(30'000, 0), open_record(29'000), slack).action, Action::none);
}

TEST(BreakerReconcile, AHalfOpenBreakerReopensWhenAnotherMachinesProbeFailed) {
    BreakerAdoption a = reconcile_breaker(open_here(-200, 30'200), open_record(30'000), slack);
    EXPECT_EQ(a.action, Action::open);
    EXPECT_EQ(a.remaining_ms, 30'000);
}

TEST(BreakerReconcile, AClosedRecordClosesABreakerThatOpenedBeforeIt) {
    // Closed 1 s ago (the record lives 3 s: 2 s left); this one opened 10 s ago.
    EXPECT_EQ(reconcile_breaker(open_here(20'000, 10'000), closed_record(2'000), slack).action, Action::close);
}

TEST(BreakerReconcile, ABreakerThatOpenedSinceForItsOwnFailuresStaysOpen) {
    // Closed 2 s ago; this one opened 100 ms ago.
    EXPECT_EQ(reconcile_breaker(open_here(29'900, 100), closed_record(1'000), slack).action, Action::none);
}

TEST(BreakerReconcile, AResetAMomentAfterTheOpeningStillClosesIt) {
    // Opened 100 ms ago, closed 50 ms ago.
    EXPECT_EQ(reconcile_breaker(open_here(29'900, 100), closed_record(2'950), slack).action, Action::close);
}

TEST(BreakerReconcile, AClosedRecordLeavesAClosedBreakerClosed) {
    EXPECT_EQ(reconcile_breaker(closed_here(), closed_record(2'000), slack).action, Action::none);
}

TEST(BreakerReconcile, NoRecordChangesNothing) {
    EXPECT_EQ(reconcile_breaker(closed_here(), {}, slack).action, Action::none);
    EXPECT_EQ(reconcile_breaker(open_here(1000, 29'000), {}, slack).action, Action::none);
}

TEST(BreakerReconcile, AnOpenRecordWithNoTimeLeftIsNone) {
    EXPECT_EQ(reconcile_breaker(closed_here(), open_record(0), slack).action, Action::none);
    EXPECT_EQ(reconcile_breaker(closed_here(), open_record(-2), slack).action, Action::none);   // no TTL
}

// ---- one machine's workers, seen as one ----

WorkerLink worker(RedisState state, int streams = 0, int hosts = 0, std::int64_t read_at = 0) {
    return {state, streams, hosts, read_at};
}

TEST(MachineLink, UpWhenEveryWorkerReachesRedis) {
    MachineLink m = machine_link({worker(RedisState::up), worker(RedisState::up)});
    EXPECT_EQ(m.redis, RedisState::up);
    EXPECT_EQ(m.workers, 2);
    EXPECT_EQ(m.workers_up, 2);
}

TEST(MachineLink, DownAsSoonAsOneWorkerCannotReachIt) {
    // That worker is on the machine's share: whichever worker answers a scrape says so.
    MachineLink m = machine_link({worker(RedisState::up), worker(RedisState::down)});
    EXPECT_EQ(m.redis, RedisState::down);
    EXPECT_EQ(m.workers_up, 1);
    EXPECT_EQ(machine_link({worker(RedisState::connecting), worker(RedisState::down)}).redis, RedisState::down);
}

TEST(MachineLink, ConnectingWhileAWorkerHasNotDecidedOrNoneRunsALink) {
    EXPECT_EQ(machine_link({worker(RedisState::up), worker(RedisState::connecting)}).redis, RedisState::connecting);
    MachineLink none = machine_link({});
    EXPECT_EQ(none.redis, RedisState::connecting);
    EXPECT_EQ(none.workers, 0);
}

TEST(MachineLink, TheClusterFiguresAreTheFreshestAnyWorkerRead) {
    MachineLink m = machine_link({worker(RedisState::up, 12, 3, 5000), worker(RedisState::up, 17, 2, 7000),
                                  worker(RedisState::up, 9, 3, 6000)});
    EXPECT_EQ(m.streams_active, 17);
    EXPECT_EQ(m.hosts, 2);
    EXPECT_EQ(machine_link({worker(RedisState::down)}).hosts, 0);   // never read: nothing known
}

TEST(OutageWarning, OnceForTheMachine) {
    EXPECT_TRUE(warns_of_outage(false, false));    // the first worker to see it
    EXPECT_TRUE(warns_of_outage(false, true));     // the record was cleared: a new outage
    EXPECT_FALSE(warns_of_outage(true, true));     // another worker warned and is still down
}

TEST(OutageWarning, ARecordLeftByWorkersThatAreGoneIsStale) {
    // Every worker that was down died (a reload during the outage): the new ones warn again.
    EXPECT_TRUE(warns_of_outage(true, false));
}

// ---- the breaker's side: opening as another machine's is ----

TEST(BreakerOpenFor, OpensForTheRemainingTimeAndThenLetsOneProbe) {
    auto cell = std::make_unique<gateway::BreakerCell>();
    std::int64_t now = 100'000;
    gateway::Breaker b(*cell, 3, std::chrono::milliseconds(30'000), [&now] { return now; });
    b.open_for(1000);
    EXPECT_EQ(b.state(), gateway::BreakerState::open);
    EXPECT_FALSE(b.allow());
    EXPECT_EQ(b.standing().remaining_ms, 1000);
    EXPECT_EQ(b.standing().opened_ago_ms, 29'000);
    now += 1000;
    EXPECT_EQ(b.state(), gateway::BreakerState::half_open);
    EXPECT_TRUE(b.allow());
    EXPECT_FALSE(b.allow());
}

}  // namespace
}  // namespace agente::cluster
