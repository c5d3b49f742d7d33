// The handler interface: what the core hands a linked app for each request, and what the app hands
// back. Beast stays out of this header; the core adapts its parser and serializer to it.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace agente {

namespace asio = boost::asio;
using boost::system::error_code;

struct Header {
    std::string name;
    std::string value;
};

// What the core leaves allocated after a request's non-empty body (Request::body_padding()):
// simdjson's padding.
inline constexpr std::size_t min_body_padding = 64;

// A received request. Views are valid for the whole life of the handler call.
class Request {
public:
    virtual ~Request() = default;
    virtual std::string_view method() const = 0;
    virtual std::string_view target() const = 0;          // as sent: path plus query
    virtual std::string_view header(std::string_view name) const = 0;  // "" when absent
    virtual std::string_view body() const = 0;
    // Allocated bytes that follow body()'s last: a parser that reads past a text's end in blocks
    // (simdjson) reads the body in place when there are enough, else copies it. A non-empty body
    // from the core has at least min_body_padding; 0 promises none.
    virtual std::size_t body_padding() const { return 0; }
    virtual std::string_view remote_addr() const = 0;     // X-Forwarded-For applied when trusted
    virtual std::string_view scheme() const = 0;          // "http", or X-Forwarded-Proto when trusted
    virtual std::string_view path_param() const = 0;      // the route's last {name} segment, "" if none
    // The route's {name} segments in order ("/a/{x}/b/{y}": 0 is x, 1 is y); "" past the last.
    virtual std::string_view path_param(std::size_t index) const { return index == 0 ? path_param() : ""; }

    std::string_view path() const;
    std::string_view query() const;
};

// A whole response, for handlers that answer in one piece.
struct Response {
    int status = 200;
    std::string content_type = "application/json";
    std::vector<Header> headers;
    std::string body;
    bool close = false;                                    // end the connection after it

    static Response json(int status, std::string body);
    static Response error(int status, std::string_view message);  // {"error": {"message", "code"}}
};

// Why the server stopped an async handler before it finished on its own.
enum class StopReason {
    none,
    client_gone,   // the peer closed its connection: cancel upstream work, nobody will read the answer
    deadline,      // the route's deadline passed
    draining,      // the worker is stopping and graceful_timeout has run out
};

// An answer that is ready: for a function that hands over another's coroutine (and so makes no
// frame of its own) but knows the result at once on some paths.
inline asio::awaitable<error_code> at_once(error_code ec) { co_return ec; }

// One request/response exchange for an async handler. The handler's coroutine is cancelled
// (terminal cancellation of whatever it awaits) when stop_reason() becomes non-none.
class Exchange {
public:
    virtual ~Exchange() = default;
    virtual const Request& request() const = 0;
    virtual asio::any_io_executor executor() const = 0;
    virtual std::chrono::steady_clock::time_point received_at() const = 0;
    virtual StopReason stop_reason() const = 0;

    // The whole response at once.
    virtual asio::awaitable<error_code> respond(Response response) = 0;

    // A streamed response: chunked transfer, each write flushed to the client as it is made. The
    // head leaves with the first write or finish(), in the same send (start_stream is then awaited
    // with nothing sent); finish(last) sends `last` and the end of the body together. What is ready
    // at once goes out at once, in as few sends as possible: each costs a wake-up on both sides.
    virtual asio::awaitable<error_code> start_stream(int status, std::string content_type,
                                                     std::vector<Header> headers = {}) = 0;
    virtual asio::awaitable<error_code> write(std::string_view chunk) = 0;
    virtual asio::awaitable<error_code> finish(std::string_view last) = 0;
    asio::awaitable<error_code> finish() { return finish({}); }
    virtual bool started() const = 0;

    // The last chunk to send when the server ends a started stream itself (deadline, draining);
    // the core writes it and terminates the chunked body after the handler has unwound.
    virtual void on_stop(std::function<std::string(StopReason)> final_chunk) = 0;

    // Streams count against draining: a draining worker waits for them until graceful_timeout.
    // Extra response headers added to every response of this exchange (e.g. timing headers).
    virtual void add_header(std::string name, std::string value) = 0;
};

using SyncHandler = std::function<Response(const Request&)>;
using AsyncHandler = std::function<asio::awaitable<void>(Exchange&)>;

struct RouteOptions {
    std::chrono::milliseconds deadline{0};                 // 0: none
    // The answer when the server stops the handler (StopReason::deadline or ::draining) before its
    // response started, in the route's own shape. Unset: the core's 504 for a deadline, 503 for
    // draining. (A started stream ends with its on_stop chunk instead.)
    std::function<Response(const Request&, StopReason)> on_stop;
};

// Routes: exact paths, or patterns with whole "{name}" segments ("/items/{id}/parts/{part}", at most
// four) that become path_param(0), path_param(1)... (path_param(): the last).
// Sync handlers run inline on the worker's loop and must not block; async ones are coroutines.
class Router {
public:
    virtual ~Router() = default;
    virtual void add(std::string method, std::string pattern, SyncHandler handler) = 0;
    virtual void add(std::string method, std::string pattern, AsyncHandler handler,
                     RouteOptions options = {}) = 0;
};

}  // namespace agente
