// A connection's I/O deadline, lazily enforced. Beast's basic_stream arms and cancels a timer around
// every read and write, which cost about a tenth of our CPU per keep-alive request; here setting a
// deadline is a store, and one timer per connection wakes at most once a second to compare.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>

namespace agente::core {

namespace asio = boost::asio;

class IoDeadline {
public:
    using Clock = std::chrono::steady_clock;

    explicit IoDeadline(const asio::any_io_executor& executor) : timer_(executor) {}

    // `owner` is kept alive while the timer waits; `on_expire` runs once per passed deadline.
    void watch(std::weak_ptr<void> owner, std::function<void()> on_expire) {
        owner_ = std::move(owner);
        on_expire_ = std::move(on_expire);
    }

    void expires_after(Clock::duration d) {
        deadline_ = Clock::now() + d;
        if (!armed_ && !stopped_) arm(deadline_);
    }

    void expires_never() { deadline_ = Clock::time_point::max(); }

    // The connection is over: let go of the owner.
    void stop() {
        stopped_ = true;
        timer_.cancel();
    }

private:
    static constexpr Clock::duration tick = std::chrono::seconds(1);

    // Never later than a tick from now, so a deadline set shorter meanwhile is seen within a tick.
    void arm(Clock::time_point deadline) {
        armed_ = true;
        timer_.expires_at(std::min(deadline, Clock::now() + tick));
        timer_.async_wait([this, keep = owner_.lock()](boost::system::error_code ec) {
            if (!ec) fire();
        });
    }

    void fire() {
        armed_ = false;
        if (stopped_ || deadline_ == Clock::time_point::max()) return;  // re-armed by the next deadline
        if (Clock::now() < deadline_) return arm(deadline_);
        deadline_ = Clock::time_point::max();
        on_expire_();
    }

    asio::steady_timer timer_;
    std::weak_ptr<void> owner_;
    std::function<void()> on_expire_;
    Clock::time_point deadline_ = Clock::time_point::max();
    bool armed_ = false;
    bool stopped_ = false;
};

}  // namespace agente::core
