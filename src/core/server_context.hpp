// What every connection of a worker shares: settings, routes, counters, the draining flag and the
// exchanges that must be told when the worker stops. One per worker, owned by Worker.
#pragma once

#include "core/access_log.hpp"
#include "core/log_throttle.hpp"
#include "core/router.hpp"
#include "core/scoreboard.hpp"

#include <agente/config.hpp>
#include <agente/handler.hpp>

#include <boost/asio/cancellation_signal.hpp>

#include <cstdint>
#include <ctime>
#include <functional>
#include <list>
#include <memory>
#include <string>

namespace agente::core {

// The control block of one running async handler: shared with the timers and the peer watch that
// may stop it, so that their late completions never touch a finished exchange. `cancel` is the
// signal bound to the session's coroutine, in which the handler runs; it is emitted only while
// the handler runs (`done` false), so never after the session is gone. stop() is for the worker's
// own thread: from another, Asio would post the emit, and it could land on the next request.
struct HandlerControl {
    explicit HandlerControl(asio::cancellation_signal& session_cancel) : cancel(session_cancel) {}

    asio::cancellation_signal& cancel;
    StopReason reason = StopReason::none;
    bool done = false;

    void stop(StopReason why) {
        if (done || reason != StopReason::none) return;
        reason = why;
        cancel.emit(asio::cancellation_type::terminal);
    }
};

struct ServerContext {
    ServerContext(const Config& c, RouteTable& r, AccessLog& a, Slot& s, std::uint64_t max)
        : config(c), routes(r), access_log(a), slot(s), max_requests(max) {}

    const Config& config;
    RouteTable& routes;
    AccessLog& access_log;
    Slot& slot;
    std::uint64_t max_requests = 0;          // this worker's limit with jitter applied; 0: none
    std::uint64_t requests = 0;              // answered
    std::uint64_t begun = 0;                 // heads read: max_requests counts these
    std::uint64_t checkpoint = UINT64_MAX;   // begin_request() consults on_checkpoint from this count on
    int connections = 0;
    bool draining = false;
    bool retiring = false;                   // max_requests reached: accepts nothing, closes after each answer
    std::list<std::shared_ptr<HandlerControl>> running;   // stopped when draining runs out of time
    std::function<void()> on_connection_closed;           // the worker checks whether it may exit
    // One "Invalid request" warning per interval; the others are logged at debug level.
    static constexpr std::chrono::seconds invalid_request_warning_interval{10};
    LogThrottle invalid_request_warnings{invalid_request_warning_interval};
    std::function<bool()> on_checkpoint;                  // the worker's recycling (recycling.hpp)

    // A request's head was read. False once this worker reached max_requests: that answer closes
    // its connection, so every connection open then serves at most one request more.
    bool begin_request() { return ++begun < checkpoint || on_checkpoint(); }

    bool trusts_forwarded(std::string_view peer) const;
    std::string_view fixed_fields();                      // "Server: ...\r\nDate: ...\r\n", cached per second

private:
    static constexpr std::string_view server_and_date = "Server: agente-hibrido\r\nDate: ";
    std::time_t date_second_ = 0;
    std::string fixed_fields_;
};

}  // namespace agente::core
