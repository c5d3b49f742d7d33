// What every connection of a worker shares: settings, routes, counters, the draining flag and the
// exchanges that must be told when the worker stops. One per worker, owned by Worker.
#pragma once

#include "core/access_log.hpp"
#include "core/core_metrics.hpp"
#include "core/log_throttle.hpp"
#include "core/router.hpp"
#include "core/scoreboard.hpp"

#include <agente/config.hpp>
#include <agente/handler.hpp>

#include <boost/asio/cancellation_signal.hpp>
#include <boost/intrusive/list.hpp>

#include <chrono>
#include <cstdint>
#include <ctime>
#include <functional>
#include <memory>
#include <string>

namespace agente::core {

// The control block of a connection's running async handler: shared with the timers and the peer
// watch that may stop it, so that their late completions never touch a finished exchange. `cancel`
// is the signal bound to the session's coroutine, in which the handler runs; it is emitted only
// while the handler runs (`done` false), so never after the session is gone. stop() is for the
// worker's own thread: from another, Asio would post the emit, and it could land on the next request.
// One per connection, made for its first async request and reused by the next ones (two allocations
// fewer per request); `request` tells them apart, so that a completion armed for an earlier request
// (cancelled, but already queued) never stops a later one.
struct HandlerControl
    : boost::intrusive::list_base_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>>,
      std::enable_shared_from_this<HandlerControl> {
    explicit HandlerControl(asio::cancellation_signal& session_cancel) : cancel(session_cancel) {}

    asio::cancellation_signal& cancel;
    StopReason reason = StopReason::none;
    bool done = true;
    std::uint64_t request = 0;   // the handler calls begun on this connection

    // A handler starts; returns its number, for the completions armed for it.
    std::uint64_t begin() {
        reason = StopReason::none;
        done = false;
        return ++request;
    }

    void stop(StopReason why) {
        if (done || reason != StopReason::none) return;
        reason = why;
        cancel.emit(asio::cancellation_type::terminal);
    }

    // stop(), from a completion armed for handler number `armed`: nothing once another one began.
    void stop(StopReason why, std::uint64_t armed) {
        if (armed == request) stop(why);
    }
};

// The handlers running on a worker's connections; each leaves the list when it ends.
using RunningHandlers = boost::intrusive::list<HandlerControl, boost::intrusive::constant_time_size<false>>;

// A connection waiting for a request's head: a new one, or one idle between keep-alive requests.
// When its worker is full, the one that has waited longest is closed to make room for a new client
// (as nginx reuses idle connections): it has no request in flight, at most part of a slow head.
class HeaderWait
    : public boost::intrusive::list_base_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>> {
public:
    virtual void evict() = 0;
    std::chrono::steady_clock::time_point since;   // when it began to wait

protected:
    ~HeaderWait() = default;
};

// Oldest first: a connection joins at the back when it starts waiting and leaves when its head is in.
using HeaderWaits = boost::intrusive::list<HeaderWait, boost::intrusive::constant_time_size<false>>;

// Only a connection idle this long is closed to make room: one just accepted, or just answered,
// may have its request on the way (and closing it would lose that request).
inline constexpr std::chrono::steady_clock::duration idle_before_closing = std::chrono::seconds(1);

struct ServerContext {
    ServerContext(const Config& c, RouteTable& r, AccessLog& a, Slot& s, std::uint64_t max)
        : config(c), routes(r), access_log(a), slot(s), max_requests(max) {}

    const Config& config;
    RouteTable& routes;
    AccessLog& access_log;
    Slot& slot;
    std::uint64_t max_requests = 0;          // this worker's limit with jitter applied; 0: none
    CoreMetrics* metrics = nullptr;          // this worker's request counters (set by Worker)
    std::uint64_t requests = 0;              // answered
    std::uint64_t begun = 0;                 // heads read: max_requests counts these
    std::uint64_t checkpoint = UINT64_MAX;   // begin_request() consults on_checkpoint from this count on
    int connections = 0;
    bool draining = false;
    bool retiring = false;                   // max_requests reached: accepts nothing, closes after each answer
    HeaderWaits header_waits;
    RunningHandlers running;                              // stopped when draining runs out of time
    std::function<void()> on_connection_closed;           // the worker checks whether it may exit
    // One "Invalid request" warning per interval; the others are logged at debug level.
    static constexpr std::chrono::seconds invalid_request_warning_interval{10};
    LogThrottle invalid_request_warnings{invalid_request_warning_interval};
    LogThrottle tls_handshake_warnings{invalid_request_warning_interval};  // failed handshakes, alike
    std::function<bool()> on_checkpoint;                  // the worker's recycling (recycling.hpp)

    // A request's head was read. False once this worker reached max_requests: that answer closes
    // its connection, so every connection open then serves at most one request more.
    bool begin_request() { return ++begun < checkpoint || on_checkpoint(); }

    void wait_for_head(HeaderWait& w) {
        w.since = std::chrono::steady_clock::now();
        header_waits.push_back(w);
    }

    // The connection to close to make room: the one waiting longest for a request head, when it
    // has waited idle_before_closing; null when there is none.
    HeaderWait* idle_to_close(std::chrono::steady_clock::time_point now) {
        if (header_waits.empty() || now - header_waits.front().since < idle_before_closing) return nullptr;
        return &header_waits.front();
    }

    bool trusts_forwarded(std::string_view peer) const;
    std::string_view fixed_fields();                      // "Server: ...\r\nDate: ...\r\n", cached per second

private:
    static constexpr std::string_view server_and_date = "Server: agente-hibrido\r\nDate: ";
    std::time_t date_second_ = 0;
    std::string fixed_fields_;
};

}  // namespace agente::core
