#include "core/http_session.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <array>
#include <charconv>
#include <chrono>
#include <optional>

namespace agente::core {

namespace beast = boost::beast;
namespace http = beast::http;
using asio::use_awaitable;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;
constexpr auto tuple_awaitable = asio::as_tuple(use_awaitable);

namespace {

// A request as the handler interface shows it, over Beast's parsed message.
class BeastRequest final : public Request {
public:
    BeastRequest(const http::request<http::string_body>& m, std::string_view remote, std::string_view scheme)
        : m_(m), remote_(remote), scheme_(scheme) {}
    std::string_view method() const override { return m_.method_string(); }
    std::string_view target() const override { return m_.target(); }
    std::string_view header(std::string_view name) const override {
        auto it = m_.find(name);
        return it == m_.end() ? std::string_view() : std::string_view(it->value());
    }
    std::string_view body() const override { return m_.body(); }
    std::string_view remote_addr() const override { return remote_; }
    std::string_view scheme() const override { return scheme_; }
    std::string_view path_param() const override { return param_; }
    void set_param(std::string_view p) { param_ = p; }

private:
    const http::request<http::string_body>& m_;
    std::string_view remote_, scheme_, param_;
};

std::string_view version_text(unsigned v) { return v == 10 ? "HTTP/1.0" : "HTTP/1.1"; }

std::string peer_address(const asio::ip::tcp::socket& s) {
    error_code ec;
    auto ep = s.remote_endpoint(ec);
    if (ec) return "-";
    auto a = ep.address();
    return a.is_v6() && a.to_v6().is_v4_mapped()
               ? asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).to_string()
               : a.to_string();
}
std::string peer_address(const asio::local::stream_protocol::socket&) { return "unix"; }

template <class Protocol>
class Session;

// The Exchange an async handler sees; its writes go straight to the session's stream.
template <class Protocol>
class SessionExchange final : public Exchange {
public:
    SessionExchange(Session<Protocol>& s, const BeastRequest& req, std::shared_ptr<HandlerControl> control)
        : s_(s), req_(req), control_(std::move(control)) {}

    const Request& request() const override { return req_; }
    asio::any_io_executor executor() const override { return s_.stream_.get_executor(); }
    Clock::time_point received_at() const override { return s_.received_at_; }
    StopReason stop_reason() const override { return control_->reason; }
    bool started() const override { return started_; }
    void on_stop(std::function<std::string(StopReason)> f) override { final_chunk_ = std::move(f); }
    void add_header(std::string name, std::string value) override {
        extra_.push_back({std::move(name), std::move(value)});
    }

    asio::awaitable<error_code> respond(Response r) override {
        if (started_) co_return asio::error::already_started;
        started_ = finished_ = true;
        for (auto& h : extra_) r.headers.push_back(std::move(h));
        co_return co_await s_.write_response(std::move(r));
    }

    asio::awaitable<error_code> start_stream(int status, std::string content_type, std::vector<Header> headers) override {
        if (started_) co_return asio::error::already_started;
        started_ = true;
        status_ = status;
        for (auto& h : extra_) headers.push_back(std::move(h));
        co_return co_await s_.write_stream_header(status, content_type, headers);
    }

    asio::awaitable<error_code> write(std::string_view chunk) override {
        if (!started_ || finished_) co_return asio::error::not_connected;
        if (chunk.empty()) co_return error_code{};
        bytes_ += chunk.size();
        co_return co_await s_.write_chunk(chunk);
    }

    asio::awaitable<error_code> finish() override {
        if (!started_ || finished_) co_return error_code{};
        finished_ = true;
        co_return co_await s_.write_last_chunk();
    }

    // After the handler unwound: end what it left open, as the handler interface promises.
    asio::awaitable<void> complete(const Route& route, bool failed) {
        StopReason why = control_->reason;
        if (!started_) {
            Response r = why == StopReason::deadline && route.options.on_deadline ? route.options.on_deadline(req_)
                       : why == StopReason::deadline ? Response::error(504, "request deadline exceeded")
                       : Response::error(500, failed ? "internal server error" : "handler sent no response");
            if (why != StopReason::none) r.close = true;
            if (why != StopReason::client_gone) co_await respond(std::move(r));
            co_return;
        }
        if (finished_) co_return;
        if (why != StopReason::client_gone && !failed) {
            if (final_chunk_ && why != StopReason::none) co_await write(final_chunk_(why));
            co_await finish();
        }
        s_.keep_alive_ = false;  // a stream cut short leaves the connection in no state to reuse
    }

    int status() const { return status_; }
    std::uint64_t bytes() const { return bytes_; }

private:
    Session<Protocol>& s_;
    const BeastRequest& req_;
    std::shared_ptr<HandlerControl> control_;
    std::function<std::string(StopReason)> final_chunk_;
    std::vector<Header> extra_;
    bool started_ = false, finished_ = false;
    int status_ = 200;
    std::uint64_t bytes_ = 0;
};

template <class Protocol>
class Session {
public:
    using Stream = beast::basic_stream<Protocol>;

    Session(typename Protocol::socket socket, ServerContext& ctx)
        : remote_(peer_address(socket)), stream_(std::move(socket)), ctx_(ctx) {}

    asio::awaitable<void> run() {
        bool first = true;
        while (keep_alive_) {
            if (!co_await serve_one(first)) break;
            first = false;
        }
        co_await close_gracefully();
    }

private:
    friend class SessionExchange<Protocol>;

    // Reads one request and answers it; false when the connection is over.
    asio::awaitable<bool> serve_one(bool first) {
        parser_.emplace();
        const Config& c = ctx_.config;
        parser_->header_limit(header_limit());
        if (c.limit_request_body) parser_->body_limit(c.limit_request_body);
        else parser_->body_limit(boost::none);
        // Idle keep-alive wait, then the whole header within header_timeout (slow clients).
        stream_.expires_after(seconds(first ? c.header_timeout : std::max(1, c.keepalive)));
        auto [ec, n] = co_await http::async_read_header(stream_, buffer_, *parser_, tuple_awaitable);
        if (ec) co_return co_await reject_read(ec);
        received_at_ = Clock::now();
        auto& m = parser_->get();
        if (auto bad = check_header(m)) co_return co_await reject(bad->first, bad->second);
        if (parser_->content_length() && c.limit_request_body && *parser_->content_length() > c.limit_request_body)
            co_return co_await reject(413, "request body too large");
        if (beast::iequals(m[http::field::expect], "100-continue") && !parser_->is_done()) {
            http::response<http::empty_body> cont{http::status::continue_, m.version()};
            auto [wec, wn] = co_await http::async_write(stream_, cont, tuple_awaitable);
            if (wec) co_return false;
        }
        if (!parser_->is_done()) {
            stream_.expires_after(io_timeout());
            auto [bec, bn] = co_await http::async_read(stream_, buffer_, *parser_, tuple_awaitable);
            if (bec) co_return co_await reject_read(bec);
        }
        stream_.expires_never();
        co_await dispatch(m);
        co_return keep_alive_;
    }

    // Body reads and response writes: `timeout` bounds them too (a peer that stops reading is as
    // stuck as a hung worker); timeout = 0 turns off the heartbeat kill, not this, so fall back.
    std::chrono::seconds io_timeout() const {
        return seconds(ctx_.config.timeout > 0 ? ctx_.config.timeout : 60);
    }

    std::size_t header_limit() const {
        const Config& c = ctx_.config;
        std::size_t line = c.limit_request_line ? c.limit_request_line : 8190;
        std::size_t fields = c.limit_request_fields ? c.limit_request_fields : 32768;
        std::size_t size = c.limit_request_field_size ? c.limit_request_field_size : 65536;
        return line + 4 + fields * (size + 2) + 2;
    }

    // gunicorn's limits, checked on the parsed header: line length, field count, field size.
    std::optional<std::pair<int, std::string>> check_header(const http::request<http::string_body>& m) const {
        const Config& c = ctx_.config;
        if (m.version() != 10 && m.version() != 11) return std::pair{505, "HTTP version not supported"};
        std::size_t line = m.method_string().size() + m.target().size() + 10;
        if (c.limit_request_line && line > std::size_t(c.limit_request_line) + 2)
            return std::pair{414, "request line too long"};
        int count = 0;
        for (const auto& f : m) {
            if (c.limit_request_fields && ++count > c.limit_request_fields)
                return std::pair{431, "too many header fields"};
            if (c.limit_request_field_size &&
                f.name_string().size() + f.value().size() + 2 > std::size_t(c.limit_request_field_size))
                return std::pair{431, "header field too large"};
        }
        return std::nullopt;
    }

    // A read that ended early: a quiet close for an idle or vanished peer, a 4xx for bad input.
    asio::awaitable<bool> reject_read(error_code ec) {
        if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == beast::error::timeout ||
            ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
            ec == http::error::partial_message)
            co_return false;
        if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
            std::string_view data(static_cast<const char*>(buffer_.data().data()), buffer_.size());
            auto eol = data.find("\r\n");
            std::size_t limit = ctx_.config.limit_request_line ? ctx_.config.limit_request_line : 8190;
            bool line_too_long = (eol == std::string_view::npos ? data.size() : eol) > limit;
            co_return co_await reject(line_too_long ? 414 : 431,
                                      line_too_long ? "request line too long" : "request header too large");
        }
        if (ec == http::error::body_limit) co_return co_await reject(413, "request body too large");
        if (ec == http::error::bad_version) co_return co_await reject(505, "HTTP version not supported");
        if (ec.category() == make_error_code(http::error::bad_method).category())
            co_return co_await reject(400, ec.message());
        co_return false;  // a socket error: nobody to answer
    }

    asio::awaitable<bool> reject(int status, std::string message) {
        spdlog::warn("Invalid request from {}: {} ({})", remote_, message, status);
        Response r = Response::error(status, message);
        r.close = true;
        keep_alive_ = false;
        version_ = 11;
        head_ = false;
        co_await write_response(std::move(r));
        co_return false;
    }

    std::string_view client_address(const http::request<http::string_body>& m) {
        if (!ctx_.trusts_forwarded(remote_)) return remote_;
        std::string_view xff = m["X-Forwarded-For"];
        if (xff.empty()) return remote_;
        auto comma = xff.find(',');
        auto first = xff.substr(0, comma);
        while (!first.empty() && first.front() == ' ') first.remove_prefix(1);
        while (!first.empty() && first.back() == ' ') first.remove_suffix(1);
        return first.empty() ? std::string_view(remote_) : first;
    }

    std::string_view scheme(const http::request<http::string_body>& m) {
        std::string_view proto = m["X-Forwarded-Proto"];
        return !proto.empty() && ctx_.trusts_forwarded(remote_) ? proto : std::string_view("http");
    }

    asio::awaitable<void> dispatch(http::request<http::string_body>& m) {
        version_ = m.version();
        head_ = m.method() == http::verb::head;
        keep_alive_ = m.keep_alive() && !ctx_.draining && ctx_.config.keepalive > 0;  // 0: off, as gunicorn
        BeastRequest req(m, client_address(m), scheme(m));
        RouteMatch match = ctx_.routes.find(m.method_string(), req.path());
        status_ = 0;
        bytes_ = 0;
        if (!match.route) {
            co_await write_response(match.path_known ? Response::error(405, "method not allowed")
                                                     : Response::error(404, "not found"));
        } else if (match.route->sync) {
            req.set_param(match.param);
            co_await write_response(call_sync(*match.route, req));
        } else {
            req.set_param(match.param);
            co_await call_async(*match.route, req);
        }
        count_request(req);
    }

    Response call_sync(const Route& route, const Request& req) {
        try {
            return route.sync(req);
        } catch (const std::exception& e) {
            spdlog::error("Error handling request {} {}: {}", req.method(), req.target(), e.what());
            return Response::error(500, "internal server error");
        }
    }

    asio::awaitable<void> call_async(const Route& route, const BeastRequest& req) {
        auto control = std::make_shared<HandlerControl>();
        auto executor = co_await asio::this_coro::executor;
        SessionExchange<Protocol> ex(*this, req, control);
        auto running = ctx_.running.insert(ctx_.running.end(), control);
        asio::steady_timer deadline(executor);
        if (route.options.deadline.count()) {
            deadline.expires_after(route.options.deadline);
            deadline.async_wait([control](error_code ec) { if (!ec) control->stop(StopReason::deadline); });
        }
        watch_peer(control);
        bool failed = false;
        try {
            co_await asio::co_spawn(executor, route.async(ex),
                                    asio::bind_cancellation_slot(control->cancel.slot(), use_awaitable));
        } catch (const std::exception& e) {
            if (control->reason == StopReason::none) {
                spdlog::error("Error handling request {} {}: {}", req.method(), req.target(), e.what());
                failed = true;
            }
        }
        control->done = true;
        deadline.cancel();
        error_code ignored;
        stream_.socket().cancel(ignored);  // ends the peer watch; nothing else is pending now
        ctx_.running.erase(running);
        co_await ex.complete(route, failed);
        if (control->reason != StopReason::none) keep_alive_ = false;
        status_ = status_ ? status_ : ex.status();
        bytes_ = bytes_ ? bytes_ : ex.bytes();
    }

    // While a handler runs nobody reads the socket; readable-with-nothing-to-read means the peer left.
    void watch_peer(std::shared_ptr<HandlerControl> control) {
        stream_.socket().async_wait(Protocol::socket::wait_read, [this, control](error_code ec) {
            if (control->done) return;
            if (!ec) {
                char byte;
                ssize_t n = ::recv(stream_.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
                if (n > 0) return;                       // a pipelined request: the peer is still there
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return watch_peer(control);
            }
            control->stop(StopReason::client_gone);
        });
    }

    void count_request(const Request& req) {
        ++ctx_.requests;
        ctx_.slot.requests.store(ctx_.requests, std::memory_order_relaxed);
        if (ctx_.max_requests && ctx_.requests >= ctx_.max_requests && !ctx_.slot.retire.load(std::memory_order_relaxed)) {
            ctx_.slot.retire.store(1);
            spdlog::info("Autorestarting worker after current request.");
        }
        if (ctx_.access_log.enabled()) {
            AccessRecord r;
            r.request = &req;
            r.version = version_text(version_);
            r.status = status_;
            r.bytes = bytes_;
            r.duration = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - received_at_);
            ctx_.access_log.write(r);
        }
    }

    template <class Message>
    void common_headers(Message& res, const std::vector<Header>& headers) {
        res.set(http::field::server, "agente-hibrido");
        res.set(http::field::date, ctx_.http_date());
        for (const auto& h : headers) res.insert(h.name, h.value);
        res.keep_alive(keep_alive_);
    }

    // Whole responses are the hot path: the head goes into one reused buffer and leaves with the
    // body in a single gather write (Beast's generic serializer cost half our CPU per request).
    asio::awaitable<error_code> write_response(Response r) {
        if (r.close) keep_alive_ = false;
        head_buffer_.clear();
        append_status_line(r.status);
        append_field("Server", "agente-hibrido");
        append_field("Date", ctx_.http_date());
        if (!r.content_type.empty()) append_field("Content-Type", r.content_type);
        char length[24];
        auto [end, _] = std::to_chars(length, length + sizeof length, r.body.size());
        append_field("Content-Length", std::string_view(length, std::size_t(end - length)));
        for (const auto& h : r.headers) append_field(h.name, h.value);
        if (!keep_alive_) append_field("Connection", "close");
        else if (version_ == 10) append_field("Connection", "keep-alive");
        head_buffer_ += "\r\n";
        status_ = r.status;
        bytes_ = head_ ? 0 : r.body.size();  // HEAD keeps GET's Content-Length, without the body
        std::array<asio::const_buffer, 2> parts{asio::buffer(head_buffer_),
                                                asio::buffer(r.body.data(), head_ ? 0 : r.body.size())};
        stream_.expires_after(io_timeout());
        auto [ec, n] = co_await asio::async_write(stream_, parts, tuple_awaitable);
        if (ec) keep_alive_ = false;
        co_return ec;
    }

    void append_status_line(int status) {
        head_buffer_ += version_ == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
        char code[8];
        auto [end, _] = std::to_chars(code, code + sizeof code, status);
        head_buffer_.append(code, end);
        head_buffer_ += ' ';
        head_buffer_ += std::string_view(http::obsolete_reason(http::int_to_status(unsigned(status))));
        head_buffer_ += "\r\n";
    }

    // A CR or LF in a handler's header would let it forge headers or split the response: drop it.
    void append_field(std::string_view name, std::string_view value) {
        if (name.find_first_of("\r\n:") != std::string_view::npos || value.find_first_of("\r\n") != std::string_view::npos) {
            spdlog::error("Dropped response header {:?} with a CR, LF or colon in it", name);
            return;
        }
        head_buffer_.append(name).append(": ").append(value).append("\r\n");
    }

    asio::awaitable<error_code> write_stream_header(int status, const std::string& content_type,
                                                    const std::vector<Header>& headers) {
        http::response<http::empty_body> res{http::int_to_status(status), version_};
        res.result(status);
        common_headers(res, headers);
        res.set(http::field::content_type, content_type);
        res.set(http::field::cache_control, "no-cache");
        res.chunked(true);
        http::response_serializer<http::empty_body> sr{res};
        status_ = status;
        stream_.expires_after(io_timeout());
        auto [ec, n] = co_await http::async_write_header(stream_, sr, tuple_awaitable);
        if (ec) keep_alive_ = false;
        co_return ec;
    }

    asio::awaitable<error_code> write_chunk(std::string_view chunk) {
        stream_.expires_after(io_timeout());
        auto [ec, n] = co_await asio::async_write(stream_, http::make_chunk(asio::buffer(chunk)), tuple_awaitable);
        if (ec) keep_alive_ = false;
        co_return ec;
    }

    asio::awaitable<error_code> write_last_chunk() {
        stream_.expires_after(io_timeout());
        auto [ec, n] = co_await asio::async_write(stream_, http::make_chunk_last(), tuple_awaitable);
        if (ec) keep_alive_ = false;
        co_return ec;
    }

    // Half-close, then read what the peer still sends until it closes: closing with unread input
    // would make the kernel answer with a reset that can destroy the response we just sent.
    asio::awaitable<void> close_gracefully() {
        error_code ec;
        stream_.socket().shutdown(Protocol::socket::shutdown_send, ec);
        if (!ec) {
            stream_.expires_after(seconds(1));
            char scratch[1024];
            for (;;) {
                auto [rec, n] = co_await stream_.async_read_some(asio::buffer(scratch), tuple_awaitable);
                if (rec) break;
            }
        }
        stream_.socket().close(ec);
    }

    std::string remote_;
    Stream stream_;
    ServerContext& ctx_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    std::string head_buffer_;
    Clock::time_point received_at_;
    unsigned version_ = 11;
    bool head_ = false;
    bool keep_alive_ = true;
    int status_ = 0;
    std::uint64_t bytes_ = 0;
};

template <class Protocol>
void spawn(typename Protocol::socket socket, ServerContext& ctx) {
    ++ctx.connections;
    ctx.slot.connections.store(ctx.connections, std::memory_order_relaxed);
    auto executor = socket.get_executor();
    auto session = std::make_shared<Session<Protocol>>(std::move(socket), ctx);
    asio::co_spawn(executor, session->run(),
                   [session, &ctx](std::exception_ptr e) {
                       if (e) {
                           try { std::rethrow_exception(e); }
                           catch (const std::exception& ex) { spdlog::error("Connection failed: {}", ex.what()); }
                       }
                       --ctx.connections;
                       ctx.slot.connections.store(ctx.connections, std::memory_order_relaxed);
                       if (ctx.on_connection_closed) ctx.on_connection_closed();
                   });
}

}  // namespace

void start_session(asio::ip::tcp::socket socket, ServerContext& context) {
    socket.set_option(asio::ip::tcp::no_delay(true));
    spawn<asio::ip::tcp>(std::move(socket), context);
}

void start_session(asio::local::stream_protocol::socket socket, ServerContext& context) {
    spawn<asio::local::stream_protocol>(std::move(socket), context);
}

bool ServerContext::trusts_forwarded(std::string_view peer) const {
    for (const auto& ip : config.forwarded_allow_ips)
        if (ip == "*" || ip == peer) return true;
    return false;
}

std::string_view ServerContext::http_date() {
    std::time_t now = std::time(nullptr);
    if (now != date_second_) {
        date_second_ = now;
        std::tm tm{};
        ::gmtime_r(&now, &tm);
        char buf[40];
        std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        date_ = buf;
    }
    return date_;
}

}  // namespace agente::core
