// Units of the core that need no process: routes, request and response helpers, the scoreboard's slots.
#include "core/router.hpp"
#include "core/scoreboard.hpp"
#include "fake_request.hpp"

#include <gtest/gtest.h>

using namespace agente;
using namespace agente::core;

namespace {

Response ok(const Request&) { return Response::json(200, "{}"); }

}  // namespace

TEST(Router, ExactParamHeadAndMethodMismatch) {
    RouteTable t;
    t.add("GET", "/health", SyncHandler(ok));
    t.add("POST", "/agent/stream/{agent_id}", SyncHandler(ok));
    EXPECT_NE(t.find("GET", "/health").route, nullptr);
    EXPECT_NE(t.find("HEAD", "/health").route, nullptr);  // HEAD is served as GET
    auto m = t.find("POST", "/agent/stream/kimi");
    ASSERT_NE(m.route, nullptr);
    EXPECT_EQ(m.param, "kimi");
    EXPECT_EQ(t.find("POST", "/agent/stream/").route, nullptr);       // the segment may not be empty
    EXPECT_EQ(t.find("POST", "/agent/stream/a/b").route, nullptr);    // nor span segments
    auto wrong = t.find("DELETE", "/health");
    EXPECT_EQ(wrong.route, nullptr);
    EXPECT_TRUE(wrong.path_known);                                    // 405, not 404
    EXPECT_FALSE(t.find("GET", "/nope").path_known);
}

TEST(Router, RejectsAParamThatIsNotTheLastSegment) {
    RouteTable t;
    EXPECT_THROW(t.add("GET", "/x/{id}/y", SyncHandler(ok)), std::invalid_argument);
}

TEST(RequestHelpers, PathAndQuery) {
    FakeRequest r;
    EXPECT_EQ(r.path(), "/a/b");
    EXPECT_EQ(r.query(), "x=1");
    r.target_ = "/plain";
    EXPECT_EQ(r.query(), "");
}

TEST(ResponseHelpers, ErrorIsJsonWithMessageAndCode) {
    auto r = Response::error(413, "too \"big\"");
    EXPECT_EQ(r.status, 413);
    EXPECT_EQ(r.body, R"({"error":{"code":413,"message":"too \"big\""}})");
}

TEST(Scoreboard, SlotsAreClaimedReleasedAndSharedThroughTheFd) {
    Scoreboard master = Scoreboard::create(128);
    int a = master.claim(100), b = master.claim(101);
    EXPECT_EQ(a, 0);
    EXPECT_EQ(b, 1);
    EXPECT_EQ(master.app_area().size, 128u);
    Scoreboard worker = Scoreboard::attach(::dup(master.fd()));  // what an exec'd worker does
    worker.slot(b).requests = 7;
    worker.slot(b).state = std::uint32_t(WorkerState::ready);
    static_cast<char*>(worker.app_area().data)[5] = 'x';
    EXPECT_EQ(master.slot(b).requests.load(), 7u);
    EXPECT_EQ(master.slot(b).state.load(), std::uint32_t(WorkerState::ready));
    EXPECT_EQ(static_cast<char*>(master.app_area().data)[5], 'x');
    master.release(a);
    EXPECT_EQ(master.claim(102), 0);  // a released slot is reused, its counters reset
    EXPECT_EQ(master.slot(0).requests.load(), 0u);
}

TEST(Scoreboard, AConnectionIsLeftToALiveReadySiblingWithTwoFewer) {
    Scoreboard s = Scoreboard::create(0);
    int me = s.claim(100), sibling = s.claim(101), draining = s.claim(102);
    for (int i : {me, sibling, draining}) s.slot(i).state = std::uint32_t(WorkerState::ready);
    s.slot(draining).state = std::uint32_t(WorkerState::draining);
    s.slot(sibling).heartbeat_ns = 1000;
    s.slot(sibling).connections = 3;
    EXPECT_FALSE(s.fewer_elsewhere(me, 8, 500));  // within a factor of two: not worth the wait
    EXPECT_TRUE(s.fewer_elsewhere(me, 9, 500));
    EXPECT_FALSE(s.fewer_elsewhere(me, 9, 2000));  // not heard from lately: maybe stuck
    s.slot(sibling).state = std::uint32_t(WorkerState::booting);
    EXPECT_FALSE(s.fewer_elsewhere(me, 50, 0));  // not serving yet; a draining one and my own never count
}

TEST(Scoreboard, AFullWorkerLeavesAConnectionToALiveReadySiblingWithRoom) {
    Scoreboard s = Scoreboard::create(0);
    int me = s.claim(100), sibling = s.claim(101), draining = s.claim(102);
    for (int i : {me, sibling}) s.slot(i).state = std::uint32_t(WorkerState::ready);
    s.slot(draining).state = std::uint32_t(WorkerState::draining);  // a draining one never counts
    s.slot(sibling).heartbeat_ns = 1000;
    s.slot(sibling).connections = 9;
    EXPECT_TRUE(s.room_elsewhere(me, 10, 500));    // one place left there
    EXPECT_FALSE(s.room_elsewhere(me, 9, 500));    // full too
    EXPECT_FALSE(s.room_elsewhere(me, 10, 2000));  // not heard from lately: maybe stuck
    s.slot(sibling).state = std::uint32_t(WorkerState::booting);
    EXPECT_FALSE(s.room_elsewhere(me, 10, 0));     // not serving yet
}

TEST(Scoreboard, RunsOutOfSlotsCleanly) {
    Scoreboard s = Scoreboard::create(0);
    for (int i = 0; i < Scoreboard::max_slots; ++i) ASSERT_GE(s.claim(i + 1), 0);
    EXPECT_EQ(s.claim(999), -1);
}

TEST(Scoreboard, EachPoolHasItsOwnSlotsAndAReadyDirtySiblingNeverDefersAnAccept) {
    Scoreboard s = Scoreboard::create(64);
    for (int i = 0; i < Scoreboard::max_slots; ++i) ASSERT_GE(s.claim(i + 1), 0);
    EXPECT_EQ(s.claim(999), -1);                           // HTTP slots full...
    int dirty = s.claim_dirty(1000);
    EXPECT_EQ(dirty, Scoreboard::first_dirty_slot);      // ...the dirty pool's are its own
    for (int i = 1; i < Scoreboard::dirty_slots; ++i) ASSERT_GE(s.claim_dirty(1000 + i), 0);
    EXPECT_EQ(s.claim_dirty(2000), -1);
    s.slot(dirty).state = std::uint32_t(WorkerState::ready);
    s.slot(dirty).heartbeat_ns = 1000;
    s.slot(0).state = std::uint32_t(WorkerState::ready);
    EXPECT_FALSE(s.fewer_elsewhere(0, 50, 0));            // a dirty worker holds no connections to take
    EXPECT_EQ(s.app_area().size, 64u);
}

TEST(Scoreboard, DirtyReadinessAndIdempotentKindsAreReadFromTheDirtySlots) {
    Scoreboard master = Scoreboard::create(0);
    Scoreboard http = Scoreboard::attach(::dup(master.fd()));
    EXPECT_FALSE(http.any_dirty_ready());
    int a = master.claim_dirty(10), b = master.claim_dirty(11);
    EXPECT_FALSE(http.any_dirty_ready());                 // booting
    master.slot(b).state = std::uint32_t(WorkerState::ready);
    EXPECT_TRUE(http.any_dirty_ready());
    master.slot(b).state = std::uint32_t(WorkerState::draining);
    EXPECT_FALSE(http.any_dirty_ready());                 // taking no more calls
    master.list_idempotent(a, {kind_hash("rag.search"), kind_hash("agent.store.history")});
    EXPECT_TRUE(http.idempotent(kind_hash("rag.search")));
    EXPECT_FALSE(http.idempotent(kind_hash("agent.store.append")));
    master.release(a);
    EXPECT_FALSE(http.idempotent(kind_hash("rag.search")));   // a dead worker's list no longer counts
    EXPECT_EQ(master.claim_dirty(12), a);
    EXPECT_FALSE(http.idempotent(kind_hash("rag.search")));   // nor does it leak into its slot's next worker
    EXPECT_NE(kind_hash(""), 0u);
}
