// The control block a connection's async handlers share, one request after another: what may stop
// a handler, and what may not (a completion armed for an earlier request, queued before it was
// cancelled).
#include "core/server_context.hpp"

#include <gtest/gtest.h>

#include <memory>

using namespace agente::core;
using agente::StopReason;
namespace asio = boost::asio;

namespace {

// A control over a signal that counts the cancellations it delivered.
class HandlerControls : public ::testing::Test {
protected:
    HandlerControls() { signal.slot().assign([this](asio::cancellation_type) { ++emitted; }); }

    // The control's reason, and how many times the running handler was told.
    void expect(StopReason reason, int times) {
        EXPECT_EQ(c.reason, reason);
        EXPECT_EQ(emitted, times);
    }

    asio::cancellation_signal signal;
    int emitted = 0;
    HandlerControl c{signal};
};

}  // namespace

TEST_F(HandlerControls, AStopReachesTheRunningHandlerOnce) {
    c.begin();
    c.stop(StopReason::client_gone);
    c.stop(StopReason::deadline);   // the first reason stands
    expect(StopReason::client_gone, 1);
}

TEST_F(HandlerControls, NothingIsStoppedBetweenRequests) {
    c.stop(StopReason::draining);   // no handler yet
    std::uint64_t first = c.begin();
    c.done = true;                  // its handler returned
    c.stop(StopReason::client_gone, first);
    expect(StopReason::none, 0);
}

TEST_F(HandlerControls, ACompletionArmedForAnEarlierRequestLeavesTheNextOneRunning) {
    std::uint64_t first = c.begin();
    c.done = true;
    std::uint64_t second = c.begin();
    ASSERT_NE(first, second);
    c.stop(StopReason::deadline, first);   // the first request's timer, fired before it was cancelled
    expect(StopReason::none, 0);
    c.stop(StopReason::deadline, second);
    expect(StopReason::deadline, 1);
}

TEST_F(HandlerControls, ANewRequestStartsUnstopped) {
    c.begin();
    c.stop(StopReason::client_gone);
    c.done = true;
    c.begin();
    EXPECT_EQ(c.reason, StopReason::none);
    EXPECT_FALSE(c.done);
}

TEST(RunningHandlers, ListAHandlerUntilItsRequestEndsOrItsControlGoes) {
    asio::cancellation_signal signal;
    RunningHandlers running;
    auto c = std::make_shared<HandlerControl>(signal);
    running.push_back(*c);
    EXPECT_EQ(&running.front(), c.get());
    c->unlink();
    EXPECT_TRUE(running.empty());
    running.push_back(*c);
    c.reset();   // auto-unlinked: the list never holds a freed control
    EXPECT_TRUE(running.empty());
}
