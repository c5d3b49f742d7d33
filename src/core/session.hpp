// The Session template: one HTTP/1.1 connection over a stream (session_stream.hpp), its exchange
// with async handlers, and its spawn. Included by plain_session.cpp and tls_session.cpp only, each
// instantiating it for its own streams: compiled in one unit, the TLS instantiation made the
// compiler inline less of the plain one (28 more instructions per keep-alive request, callgrind).
// Everything is in an unnamed namespace: each of the two units has its own.
#pragma once

#include "core/http_session.hpp"

#include "core/chunk_frame.hpp"
#include "core/io_deadline.hpp"
#include "core/request_framing.hpp"
#include "core/request_parser.hpp"
#include "core/session_stream.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/container/small_vector.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <optional>

namespace agente::core {

namespace beast = boost::beast;
namespace http = beast::http;
using std::chrono::seconds;
using namespace std::string_view_literals;
using Clock = std::chrono::steady_clock;
// Awaiting a deferred operation needs no coroutine frame of its own (use_awaitable allocates one
// per operation).
constexpr auto tuple_deferred = asio::as_tuple(asio::deferred);
// The most of a body read at once (the buffer makes room for it before the read).
constexpr std::size_t body_read_ahead = 64 * 1024;

namespace {

// A request as the handler interface shows it, over Beast's parsed message. An absolute-form
// target ("GET http://host/path HTTP/1.1") shows as its path and query, and its authority as the
// Host (RFC 9112 section 3.2.2); `framing` holds them, and outlives the request.
class BeastRequest final : public Request {
public:
    BeastRequest(const ParsedRequest& m, const Framing& framing, std::string_view remote, std::string_view scheme)
        : m_(m), framing_(framing), remote_(remote), scheme_(scheme) {}
    std::string_view method() const override { return m_.method_string(); }
    std::string_view target() const override {
        return framing_.target.empty() ? std::string_view(m_.target()) : std::string_view(framing_.target);
    }
    std::string_view header(std::string_view name) const override {
        if (!framing_.target.empty() && beast::iequals(name, "Host")) return framing_.host;
        return m_[name];
    }
    std::string_view body() const override { return m_.body(); }
    std::size_t body_padding() const override { return m_.body_padding(); }
    std::string_view remote_addr() const override { return remote_; }
    std::string_view scheme() const override { return scheme_; }
    std::string_view path_param() const override { return param_; }
    std::string_view path_param(std::size_t i) const override { return i < params_.size() ? params_[i] : ""; }
    void set_params(const RouteMatch& m) {
        param_ = m.param;
        params_ = m.params;
    }

private:
    const ParsedRequest& m_;
    const Framing& framing_;
    std::string_view remote_, scheme_, param_;
    std::array<std::string_view, max_path_params> params_{};
};

std::string_view version_text(unsigned v) { return v == 10 ? "HTTP/1.0" : "HTTP/1.1"; }

// The method's label in the request counters, from the parsed verb: no string compares per request.
static_assert(method_names[0] == "GET" && method_names[1] == "HEAD" && method_names[2] == "POST" &&
              method_names[3] == "PUT" && method_names[4] == "DELETE" && method_names[5] == "PATCH" &&
              method_names[6] == "OPTIONS" && method_labels == 8);
int method_label_of(http::verb v) {
    switch (v) {
        case http::verb::get: return 0;
        case http::verb::head: return 1;
        case http::verb::post: return 2;
        case http::verb::put: return 3;
        case http::verb::delete_: return 4;
        case http::verb::patch: return 5;
        case http::verb::options: return 6;
        default: return method_labels - 1;
    }
}

// The peer's address as the access log and X-Forwarded-For's trust see it, from the endpoint that
// accept() filled in (no getpeername per connection). IPv4, mapped or not, in dotted form through
// fmt: glibc's inet_ntop formats it with sprintf, ~1,300 instructions a connection.
std::string peer_address(const asio::ip::tcp::endpoint& peer) {
    auto a = peer.address();
    if (a.is_v6() && a.to_v6().is_v4_mapped()) a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
    if (!a.is_v4()) return a.to_string();
    auto b = a.to_v4().to_bytes();
    return fmt::format("{}.{}.{}.{}", b[0], b[1], b[2], b[3]);
}

// A request being answered, counted in this worker's slot for as long as it lives (an exception
// that ends the connection too). Only this worker writes its slot: a load and a store.
class InFlight {
public:
    explicit InFlight(Slot& slot) : n_(slot.in_flight) { n_.store(n_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed); }
    ~InFlight() { n_.store(n_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed); }
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;

private:
    std::atomic<std::uint32_t>& n_;
};

template <class Stream>
class Session;

// The Exchange an async handler sees; its writes go straight to the session's stream.
template <class Stream>
class SessionExchange final : public Exchange {
public:
    SessionExchange(Session<Stream>& s, const BeastRequest& req, const HandlerControl& control)
        : s_(s), req_(req), control_(control) {}

    const Request& request() const override { return req_; }
    asio::any_io_executor executor() const override { return s_.stream_.get_executor(); }
    Clock::time_point received_at() const override { return s_.received_at_; }
    StopReason stop_reason() const override { return control_.reason; }
    bool started() const override { return started_; }
    void on_stop(std::function<std::string(StopReason)> f) override { final_chunk_ = std::move(f); }
    void add_header(std::string name, std::string value) override {
        extra_.push_back({std::move(name), std::move(value)});
    }

    // Not a coroutine: it hands over write_response()'s (which holds the response), one coroutine
    // frame fewer for every whole answer. So it runs when called, not when awaited: after a stop the
    // handler's coroutine stays cancelled, and awaiting anything throws before it starts. Nothing
    // is marked sent then, and complete() gives the answer the route gives to a stop.
    asio::awaitable<error_code> respond(Response r) override {
        if (control_.reason != StopReason::none) return at_once(asio::error::operation_aborted);
        return send_whole(std::move(r));
    }

    asio::awaitable<error_code> start_stream(int status, std::string content_type, std::vector<Header> headers) override {
        if (started_) co_return asio::error::already_started;
        started_ = true;
        status_ = status;
        append_extra_headers(headers);
        s_.hold_stream_head(status, content_type, headers);
        co_return error_code{};
    }

    // After a failed write (a cancelled one too) part of a chunk may be on the wire: any byte more
    // would be read as that chunk's data, so the stream takes none. Neither is a coroutine: each
    // hands over write_chunks()'s, one frame fewer for every chunk of every stream.
    asio::awaitable<error_code> write(std::string_view chunk) override {
        if (!started_ || finished_) return at_once(asio::error::not_connected);
        if (s_.stream_write_failed_) return at_once(asio::error::broken_pipe);
        if (chunk.empty()) return at_once(error_code{});
        return s_.write_chunks(chunk, false);
    }

    using Exchange::finish;
    asio::awaitable<error_code> finish(std::string_view last) override {
        if (control_.reason != StopReason::none) return at_once(asio::error::operation_aborted);  // as respond()
        return send_last(last);
    }

    // Whether the handler ended what it began, as nearly every one does: then complete() has
    // nothing to do, and its coroutine frame is not made.
    bool completed() const { return started_ && finished_; }

    // After the handler unwound: end what it left open, as the handler interface promises.
    asio::awaitable<void> complete(const Route& route, bool failed) {
        StopReason why = control_.reason;
        // A failed stream whose head never left can still get a proper error response instead.
        if (started_ && !finished_ && s_.head_held_ && failed) {
            started_ = false;
            s_.head_held_ = false;
        }
        if (!started_) {
            Response r = unstarted_answer(route, why, failed);
            if (why != StopReason::none) r.close = true;
            if (why != StopReason::client_gone) co_await send_whole(std::move(r));
            co_return;
        }
        if (finished_) co_return;
        // Not after a failed stream write: what is on the wire is unknown, and bytes after it would
        // only corrupt it further.
        if (why != StopReason::client_gone && !failed && !s_.stream_write_failed_) {
            std::string closing = closing_chunk(why);   // named: g++ 12 and temporaries in co_await
            co_await send_last(closing);
        }
        s_.keep_alive_ = false;  // a stream cut short leaves the connection in no state to reuse
    }

    int status() const { return status_; }

private:
    // respond() and finish() for the handler, and for complete() after a stop.
    asio::awaitable<error_code> send_whole(Response r) {
        if (started_) return at_once(asio::error::already_started);
        started_ = finished_ = true;
        append_extra_headers(r.headers);
        return s_.write_response(std::move(r));
    }

    // add_header()'s headers after the handler's own: moved over whole when it has none, as
    // nearly always (no allocation).
    void append_extra_headers(std::vector<Header>& headers) {
        if (headers.empty()) headers = std::move(extra_);
        else for (auto& h : extra_) headers.push_back(std::move(h));
        extra_.clear();
    }

    asio::awaitable<error_code> send_last(std::string_view last) {
        if (!started_ || finished_) return at_once(error_code{});
        finished_ = true;
        if (s_.stream_write_failed_) return at_once(asio::error::broken_pipe);
        return s_.write_chunks(last, true);
    }

    // What a handler that never started its response gets: the route's own answer to a stop by the
    // server, else the core's (a plain function: g++ 12 mishandles conditional expressions in
    // coroutine bodies).
    Response unstarted_answer(const Route& route, StopReason why, bool failed) const {
        bool server_stop = why == StopReason::deadline || why == StopReason::draining;
        if (server_stop && route.options.on_stop) return route.options.on_stop(req_, why);
        if (why == StopReason::deadline) return Response::error(504, "request deadline exceeded");
        if (why == StopReason::draining) return Response::error(503, "server shutting down");
        return Response::error(500, failed ? "internal server error" : "handler sent no response");
    }

    // The route's last words when the server ends the stream itself (a plain function: g++ 12
    // mishandles conditional expressions in coroutine bodies).
    std::string closing_chunk(StopReason why) const {
        return final_chunk_ && why != StopReason::none ? final_chunk_(why) : std::string();
    }

    Session<Stream>& s_;
    const BeastRequest& req_;
    const HandlerControl& control_;   // the session's, which outlives the exchange
    std::function<std::string(StopReason)> final_chunk_;
    std::vector<Header> extra_;
    bool started_ = false, finished_ = false;
    int status_ = 200;
};

// One connection over `Stream`: a plain socket (TcpSocket, UnixSocket) or TlsStream.
template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>>, public HeaderWait {
public:
    using Traits = StreamTraits<Stream>;
    using Socket = std::remove_reference_t<decltype(Traits::socket(std::declval<Stream&>()))>;

    Session(Stream stream, std::string remote, ServerContext& ctx)
        : remote_(std::move(remote)),
          stream_(std::move(stream)),
          deadline_(stream_.get_executor()),
          ctx_(ctx),
          trusted_(ctx.trusts_forwarded(remote_)) {}

    // An answer to bad input: a 4xx (or 501, 505) status and its message.
    using Answer = std::pair<int, std::string>;

    // Each line of a field that frames the request; one is usual, and more stay off the heap.
    using Lines = boost::container::small_vector<std::string_view, 2>;

    // The few fields the core itself looks at, picked up in the one pass over the header, and what
    // the framing rules made of them.
    struct Fields {
        std::string_view expect, forwarded_for, forwarded_proto;
        Lines transfer_encoding, content_length, host;
        Framing framing;
    };

    // The whole connection in one coroutine frame, allocated once: a keep-alive GET answered by a
    // sync route allocates no frame (a coroutine per request cost a malloc and free each time).
    asio::awaitable<void> run() {
        error_code ec;
        socket().non_blocking(true, ec);  // for write_now(), whose first try would block otherwise
        if (ec) {
            spdlog::error("Connection dropped: cannot make its socket non-blocking: {}", ec.message());
            co_return;
        }
        // A passed deadline cancels whatever read or write is pending; it then ends with an error.
        deadline_.watch(this->weak_from_this(), [this] {
            error_code not_open;
            socket().cancel(not_open);
        });
        if constexpr (Traits::tls) {
            bool secured = co_await handshake();
            if (!secured) {
                co_await close_socket();
                co_return;
            }
        }
        for (bool first = true; keep_alive_; first = false) {
            start_parser(first);
            ctx_.wait_for_head(*this);
            auto [ec, n] = co_await http::async_read_header(reader_, buffer_, *parser_, tuple_deferred);
            this->unlink();
            if (evicted_ && ec) {  // made room for a new client: nothing to answer, nothing to linger for
                error_code ignored;
                socket().close(ignored);
                co_return;
            }
            received_at_ = Clock::now();
            Fields fields;
            if ((ec || !parser_->is_done() || scan_header(parser_->get(), fields)) && !body_at_hand(ec, fields)) {
                bool go_on = co_await finish_reading(ec, fields);  // not in the if: g++ 12 miscompiles that
                if (!go_on) break;
            }
            deadline_.expires_never();
            BeastRequest req = begin_exchange(parser_->get(), fields);
            InFlight in_flight(ctx_.slot);
            RouteMatch match = ctx_.routes.find(req.method(), req.path());
            req.set_params(match);
            route_label_ = int(RouteLabel::unmatched);
            if (match.route) route_label_ = match.route->metrics_label;
            if (match.route && !match.route->sync) {
                co_await call_async(*match.route, req);
            } else {
                Response r = !match.route ? Response::error(match.path_known ? 405 : 404,
                                                            match.path_known ? "method not allowed" : "not found")
                                          : call_sync(*match.route, req);
                auto whole = prepare_response(r);
                auto [wec, wn] = co_await send(stream_, whole, tls_out_);
                if (wec) written_short(wn);
            }
            count_request(req);
        }
        co_await close_gracefully();
    }

    // The worker is full and this connection waited longest for a request head: end the wait.
    void evict() override {
        this->unlink();
        evicted_ = true;
        error_code not_open;
        socket().cancel(not_open);
    }

    // The connection is over, however run() ended (an exception too): the deadline's timer lets go.
    void finished() { deadline_.stop(); }

    // A coroutine torn down mid-handler (its loop destroyed) left its control running: the timers
    // and the peer watch may still hold it, but the signal it would emit on is this session's.
    ~Session() {
        if (!control_) return;
        control_->done = true;
        control_->unlink();
    }

    // Emitted to stop the async handler that runs in run(); see call_async().
    asio::cancellation_signal& handler_cancel() { return handler_cancel_; }

private:
    friend class SessionExchange<Stream>;

    Socket& socket() { return Traits::socket(stream_); }

    // A fresh parser; the idle keep-alive wait, then the whole header within header_timeout (slow
    // clients). Over TLS the first head shares the deadline the handshake started at the accept: a
    // client that stalls in the handshake, then in its head, gets no more time than a plain one.
    void start_parser(bool first) {
        new_parser();
        if (Traits::tls && first) return;
        const Config& c = ctx_.config;
        deadline_.expires_after(seconds(first ? c.header_timeout : std::max(1, c.keepalive)));
    }

    // TLS: the handshake, within header_timeout from the accept. False when it failed.
    // A handshake is a wait for a head too: a full worker may close the one waiting longest.
    asio::awaitable<bool> handshake() {
        deadline_.expires_after(seconds(ctx_.config.header_timeout));
        ctx_.wait_for_head(*this);
        auto [ec] = co_await stream_.async_handshake(asio::ssl::stream_base::server, tuple_deferred);
        this->unlink();
        if (!ec) co_return true;
        if (evicted_) {  // made room for a new client: nothing to say, nothing to linger for
            error_code ignored;
            socket().close(ignored);
            co_return false;
        }
        log_handshake_failure(ec);
        if (ec.category() == asio::error::get_ssl_category() && ERR_GET_REASON(ec.value()) == SSL_R_HTTP_REQUEST)
            co_await answer_plain_http();
        co_return false;
    }

    // A plain HTTP request to a socket that serves TLS (a client that forgot https://) is answered
    // in plain HTTP, as nginx does: a closed connection would leave the client guessing.
    asio::awaitable<void> answer_plain_http() {
        keep_alive_ = false;
        Response r = Response::error(400, "plain HTTP sent to a port that serves TLS: use https://");
        auto whole = prepare_response(r);
        co_await write_now(socket(), whole);  // nothing more to do if it fails
    }

    // A peer that leaves before saying anything (a TCP health check, a port scan) is not worth a
    // line; anything else is the client's doing too, hence throttled like bad requests.
    void log_handshake_failure(error_code ec) {
        if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated || ec == asio::error::connection_reset) {
            spdlog::debug("TLS handshake with {}: closed by the client", remote_);
            return;
        }
        std::string why = ec == asio::error::operation_aborted ? "no handshake within header_timeout" : ec.message();
        warn_throttled(ctx_.tls_handshake_warnings, fmt::format("TLS handshake with {} failed: {}", remote_, why));
    }

    // A parser with gunicorn's limits.
    void new_parser() {
        const Config& c = ctx_.config;
        parser_.emplace(request_);
        std::size_t limit = header_limit();
        parser_->header_limit(limit);
        // The header limit binds the fields; a chunk's extensions and the trailer wait whole in the
        // buffer, unbounded by Beast. Past this the read fails (431), not an allocation (bad_alloc
        // would end the worker). Room: the body's read-ahead and a chunk line.
        buffer_.max_size(limit + body_read_ahead + 16 * 1024);
        if (c.limit_request_body) parser_->body_limit(c.limit_request_body);
        else parser_->body_limit(boost::none);
    }

    // The two checks of a request's head that come before its body is read, wherever it is read.
    bool body_too_large() const {
        const Config& c = ctx_.config;
        return parser_->content_length() && c.limit_request_body && *parser_->content_length() > c.limit_request_body;
    }
    bool wants_continue(const Fields& fields) const {
        return !parser_->is_done() && beast::iequals(fields.expect, "100-continue");
    }

    // The common POST: its body came whole with its head (one send from the client), and nothing is
    // to be answered first (no refusal, no 100 Continue). Read from the buffer here, without
    // finish_reading()'s coroutine frame. False for anything else, nothing consumed: finish_reading()
    // then does it all.
    bool body_at_hand(error_code& ec, Fields& fields) {
        if (ec || parser_->is_done() || parser_->chunked() || !parser_->content_length()) return false;
        if (buffer_.size() < *parser_->content_length() || body_too_large()) return false;
        if (scan_header(parser_->get(), fields) || wants_continue(fields)) return false;
        // A whole body within the limits: parsing it from the buffer does not fail; if it did, the
        // error goes on to finish_reading() in `ec`, answered as a read's, never parsed again.
        ec = parse_buffered_body();
        return !ec && parser_->is_done();
    }

    // The less common ends of a header read: a read error, a header over the limits or refused by
    // the framing rules, a body to read (after 100 Continue when asked). False when the connection
    // is over.
    asio::awaitable<bool> finish_reading(error_code ec, Fields& fields) {
        // RFC 9112 section 2.2: empty lines before the request line are ignored (a client may end a
        // POST's body with an extra CRLF). Beast refuses them as a bad method; they are dropped and
        // the read starts over, within the same deadline.
        for (std::size_t skipped = 0; ec == http::error::bad_method && skip_empty_lines(skipped);) {
            new_parser();
            auto [again, n] = co_await http::async_read_header(reader_, buffer_, *parser_, tuple_deferred);
            ec = again;
            received_at_ = Clock::now();
        }
        if (ec) co_return co_await reject_read(ec);
        auto& m = parser_->get();
        if (auto bad = scan_header(m, fields)) co_return co_await reject(bad->first, bad->second);
        if (body_too_large()) co_return co_await reject(413, "request body too large");
        if (wants_continue(fields)) {
            http::response<http::empty_body> cont{http::status::continue_, m.version()};
            deadline_.expires_after(io_timeout());
            auto [wec, wn] = co_await http::async_write(stream_, cont, tuple_deferred);
            if (wec) co_return false;
        }
        if (error_code bec = parse_buffered_body()) co_return co_await reject_read(bec);
        if (!parser_->is_done()) {
            deadline_.expires_after(io_timeout());
            make_room_for_body();
            auto [bec, bn] = co_await http::async_read(reader_, buffer_, *parser_, tuple_deferred);
            if (buffer_.capacity() > 16 * 1024) buffer_.shrink_to_fit();  // idle keep-alive: no big buffer
            if (bec) co_return co_await reject_read(bec);
        }
        co_return true;
    }

    // A body that came with its head (most POSTs: one send from the client) is parsed from the
    // buffer here. Beast's async_read would find it complete without reading and post its
    // completion: one more round of the event loop, an epoll_wait that finds nothing, per request.
    error_code parse_buffered_body() {
        error_code ec;
        parser_->eager(true);  // all of the body there is, as Beast's async_read would
        while (!parser_->is_done() && buffer_.size() > 0) {
            std::size_t n = parser_->put(buffer_.data(), ec);
            buffer_.consume(n);
            if (ec == http::error::need_more) return {};
            if (ec || n == 0) return ec;
        }
        return {};
    }

    // Beast reads what the buffer has room for, at least 512 bytes, and the parser empties it into
    // the body each time: without room made here, a 21 KB body took 42 reads of 512 bytes.
    // The remaining length counts the body's bytes already in the buffer too.
    void make_room_for_body() {
        std::size_t left = body_read_ahead;
        if (auto length = parser_->content_length_remaining()) left = std::min<std::size_t>(*length, body_read_ahead);
        buffer_.reserve(std::max(buffer_.size(), left));
    }

    // Body reads and response writes: `timeout` bounds them too (a peer that stops reading is as
    // stuck as a hung worker); timeout = 0 turns off the heartbeat kill, not this, so fall back.
    std::chrono::seconds io_timeout() const {
        return seconds(ctx_.config.timeout > 0 ? ctx_.config.timeout : 60);
    }

    // CRLFs at the start of the buffer, dropped; at most the request line's limit of them in all.
    // False when there was none.
    bool skip_empty_lines(std::size_t& skipped) {
        std::string_view data(static_cast<const char*>(buffer_.data().data()), buffer_.size());
        std::size_t n = 0;
        while (data.substr(n, 2) == "\r\n" && skipped + n < request_line_limit()) n += 2;
        buffer_.consume(n);
        skipped += n;
        return n > 0;
    }

    std::size_t request_line_limit() const { return core::request_line_limit(ctx_.config); }
    std::size_t header_limit() const { return core::header_limit(ctx_.config); }

    // gunicorn's limits, checked on the parsed header: line length, field count, field size; then
    // the framing rules over the fields that frame the request.
    std::optional<Answer> scan_header(const ParsedRequest& m, Fields& out) const {
        const Config& c = ctx_.config;
        // Scanned again when finish_reading() answers what this found: the lines start afresh.
        out.transfer_encoding.clear();
        out.content_length.clear();
        out.host.clear();
        if (m.version() != 10 && m.version() != 11) return Answer{505, "HTTP version not supported"};
        std::size_t line = m.method_string().size() + m.target().size() + 10;
        if (c.limit_request_line && line > std::size_t(c.limit_request_line) + 2)
            return Answer{414, "request line too long"};
        int count = 0;
        for (const auto& f : m) {
            if (c.limit_request_fields && ++count > c.limit_request_fields)
                return Answer{431, "too many header fields"};
            if (c.limit_request_field_size &&
                f.name_string().size() + f.value().size() + 2 > std::size_t(c.limit_request_field_size))
                return Answer{431, "header field too large"};
            switch (f.name()) {
                case http::field::expect: out.expect = f.value(); break;
                case http::field::transfer_encoding: out.transfer_encoding.push_back(f.value()); break;
                case http::field::content_length: out.content_length.push_back(f.value()); break;
                case http::field::host: out.host.push_back(f.value()); break;
                case http::field::unknown:
                    if (!trusted_) break;
                    if (beast::iequals(f.name_string(), "X-Forwarded-For")) out.forwarded_for = f.value();
                    else if (beast::iequals(f.name_string(), "X-Forwarded-Proto")) out.forwarded_proto = f.value();
                    break;
                default: break;
            }
        }
        return frame(m, out);
    }

    // The framing rules (request_framing.hpp), then Beast's own reading of the same fields: a body
    // is read only when both frame it alike, so that any difference between them (a list Beast
    // splits otherwise, a Beast upgrade) is a refusal, never a desync.
    std::optional<Answer> frame(const ParsedRequest& m, Fields& out) const {
        RequestHead head{m.method_string(), m.version(), m.target(),
                         FieldLines(out.transfer_encoding.data(), out.transfer_encoding.size()),
                         FieldLines(out.content_length.data(), out.content_length.size()),
                         FieldLines(out.host.data(), out.host.size())};
        out.framing = frame_request(head);
        const Framing& f = out.framing;
        if (!f.ok()) return Answer{f.status, std::string(f.reason)};
        bool alike = f.body == BodyFraming::chunked ? parser_->chunked()
                                                    : !parser_->chunked() && parser_->content_length().value_or(0) == f.length;
        if (!alike) return Answer{400, "ambiguous message framing"};
        return std::nullopt;
    }

    // A read that ended early: a quiet close for an idle or vanished peer, a 4xx for bad input.
    asio::awaitable<bool> reject_read(error_code ec) {
        peer_closed_ = ec == http::error::end_of_stream || ec == http::error::partial_message ||
                       ec == asio::error::eof || ec == asio::error::connection_reset;
        auto answer = answer_to(ec);   // named, not built inside the co_await (g++ 12 and temporaries)
        if (!answer) co_return false;
        co_return co_await reject(answer->first, answer->second);
    }

    std::optional<Answer> answer_to(error_code ec) const {
        if (!parser_->refusal().empty()) return Answer{400, std::string(parser_->refusal())};
        if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == beast::error::timeout ||
            ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
            ec == http::error::partial_message)
            return std::nullopt;
        if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
            std::size_t limit = request_line_limit();
            // Beast consumes what it parsed: with the request line read, the limit was met in a field.
            bool line_too_long = parser_->get().target().empty() && first_line().size() > limit;
            return line_too_long ? Answer{414, "request line too long"} : Answer{431, "request header too large"};
        }
        if (ec == http::error::body_limit) return Answer{413, "request body too large"};
        if (ec == http::error::bad_version)
            return names_a_version(first_line()) ? Answer{505, "HTTP version not supported"}
                                                 : Answer{400, "malformed request line"};
        if (ec.category() == make_error_code(http::error::bad_method).category()) return Answer{400, ec.message()};
        return std::nullopt;  // a socket error: nobody to answer
    }

    // The received request line, up to its CRLF or all there is.
    std::string_view first_line() const {
        std::string_view data(static_cast<const char*>(buffer_.data().data()), buffer_.size());
        return data.substr(0, data.find("\r\n"));
    }

    // Beast calls any fault after the target a bad version: a bare LF, a blank too many, "HTTP/1.q".
    // Only "method target HTTP/x.y" ending in CRLF names a version we do not speak (505).
    static bool names_a_version(std::string_view line) {
        if (line.find('\n') != std::string_view::npos || std::count(line.begin(), line.end(), ' ') != 2) return false;
        auto v = line.substr(line.rfind(' ') + 1);
        auto digit = [](char c) { return c >= '0' && c <= '9'; };
        return v.size() == 8 && v.starts_with("HTTP/") && digit(v[5]) && v[6] == '.' && digit(v[7]);
    }

    asio::awaitable<bool> reject(int status, std::string message) {
        log_invalid(status, message);
        count_invalid(status);
        Response r = Response::error(status, message);
        r.close = true;
        keep_alive_ = false;
        version_ = 11;
        head_ = false;
        co_await write_response(std::move(r));
        co_return false;
    }

    void log_invalid(int status, std::string_view message) {
        warn_throttled(ctx_.invalid_request_warnings,
                       fmt::format("Invalid request from {}: {} ({})", remote_, message, status));
    }

    // Refused before routing: counted under the "invalid" route label, by the method if it was read.
    void count_invalid(int status) {
        auto duration = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - received_at_);
        ctx_.metrics->record(int(RouteLabel::invalid), method_label_of(parser_->get().method()), status, duration);
    }

    // Bad input is the client's doing, and any client can send much of it: one warning per interval
    // and worker, which says how many it left out, and each at debug level.
    static void warn_throttled(LogThrottle& throttle, const std::string& line) {
        std::optional<std::uint64_t> left_out = throttle.admit(Clock::now());
        if (!left_out) spdlog::debug("{}", line);
        else if (*left_out == 0) spdlog::warn("{}", line);
        else spdlog::warn("{}; {} more since the last such warning, logged at debug level", line, *left_out);
    }

    // The forwarded fields were only picked up when the peer is trusted (forwarded_allow_ips).
    std::string_view client_address(const Fields& fields) const {
        auto first = fields.forwarded_for.substr(0, fields.forwarded_for.find(','));
        while (!first.empty() && first.front() == ' ') first.remove_prefix(1);
        while (!first.empty() && first.back() == ' ') first.remove_suffix(1);
        return first.empty() ? std::string_view(remote_) : first;
    }

    // A TLS connection is https. Otherwise as gunicorn's secure_scheme_headers: a trusted proxy's
    // X-Forwarded-Proto says https or not; no other value reaches the app (it ends up in URLs the
    // app builds, such as the agent card's).
    static std::string_view scheme(const Fields& fields) {
        if constexpr (Traits::tls) return "https"sv;
        else return beast::iequals(fields.forwarded_proto, "https") ? "https"sv : "http"sv;
    }

    BeastRequest begin_exchange(const ParsedRequest& m, const Fields& fields) {
        version_ = m.version();
        head_ = m.method() == http::verb::head;
        method_label_ = method_label_of(m.method());
        bool under_limit = ctx_.begin_request();  // counted whatever the connection's fate
        keep_alive_ = under_limit && parser_->keep_alive() && !ctx_.draining && !evicted_ &&
                      ctx_.config.keepalive > 0;  // 0: off, as gunicorn
        status_ = 0;
        bytes_ = 0;
        head_size_ = 0;   // no head sent yet: %({name}o)s finds nothing from the previous response
        return BeastRequest(m, fields.framing, client_address(fields), scheme(fields));
    }

    Response call_sync(const Route& route, const Request& req) {
        try {
            return route.sync(req);
        } catch (const std::exception& e) {
            spdlog::error("Error handling request {} {}: {}", req.method(), req.target(), e.what());
            return Response::error(500, "internal server error");
        }
    }

    // The handler runs in the session's own coroutine, whose cancellation slot (bound in spawn())
    // is how a stop reaches whatever the handler awaits: a co_spawn of its own per request cost a
    // posted start, another round of the event loop and two allocations.
    asio::awaitable<void> call_async(const Route& route, const BeastRequest& req) {
        if (!control_) control_ = std::make_shared<HandlerControl>(handler_cancel_);
        HandlerControl& control = *control_;
        std::uint64_t armed = control.begin();
        auto executor = co_await asio::this_coro::executor;
        SessionExchange<Stream> ex(*this, req, control);
        ctx_.running.push_back(control);
        // Made only for a route with a deadline: a timer's construction looks its service up in
        // the io_context's registry (a mutex and a walk by type name), every request.
        std::optional<asio::steady_timer> deadline;
        if (route.options.deadline.count()) {
            deadline.emplace(executor, route.options.deadline);
            deadline->async_wait([control = control_, armed](error_code ec) {
                if (!ec) control->stop(StopReason::deadline, armed);
            });
        }
        watch_peer(armed);
        bool failed = false;
        try {
            co_await route.async(ex);
        } catch (const std::exception& e) {
            failed = handler_failed(req, e.what(), control.reason);
        } catch (...) {
            // Whatever was thrown, `done` must be set below: the peer watch and the deadline still
            // hold the control, and a stop after this session is gone would emit on a freed signal.
            failed = handler_failed(req, "unknown exception", control.reason);
        }
        control.done = true;
        // A stop leaves the coroutine cancelled, and every operation it started next would throw.
        co_await asio::this_coro::reset_cancellation_state();
        if (deadline) deadline->cancel();
        error_code ignored;
        socket().cancel(ignored);  // ends the peer watch; nothing else is pending now
        control.unlink();
        if (!ex.completed()) co_await ex.complete(route, failed);
        if (control.reason != StopReason::none) keep_alive_ = false;
        status_ = status_ ? status_ : ex.status();
    }

    // A handler that threw is a failure unless it was stopped (its operation aborted by the stop).
    static bool handler_failed(const Request& req, std::string_view what, StopReason reason) {
        if (reason != StopReason::none) return false;
        spdlog::error("Error handling request {} {}: {}", req.method(), req.target(), what);
        return true;
    }

    // While a handler runs nobody reads the socket; end of stream means the peer left. A peeking
    // receive leaves a pipelined request where it is, and unlike a readable-wait it needs no
    // epoll_ctl to arm (Asio re-arms the descriptor for every non-speculative operation). Over TLS
    // it peeks under the encryption: a client's close_notify looks like a pipelined request, and
    // such a client is found gone by the next write instead.
    void watch_peer(std::uint64_t armed) {
        socket().async_receive(asio::buffer(&peeked_, 1), asio::socket_base::message_peek,
                              [control = control_, armed](error_code ec, std::size_t n) {
                                  if (!ec && n > 0) return;  // a pipelined request
                                  control->stop(StopReason::client_gone, armed);
                              });
    }

    void count_request(const Request& req) {
        auto duration = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - received_at_);
        ctx_.metrics->record(route_label_, method_label_, status_, duration);
        ++ctx_.requests;
        ctx_.slot.requests.store(ctx_.requests, std::memory_order_relaxed);
        if (ctx_.access_log.enabled()) {
            AccessRecord r;
            r.request = &req;
            r.version = version_text(version_);
            r.status = status_;
            r.bytes = bytes_;
            r.duration = duration;
            r.response_header = &Session::sent_header;
            r.response_context = this;
            ctx_.access_log.write(r);
        }
    }

    // %({name}o)s: the field as it left, read from the head still in head_buffer_.
    static std::string_view sent_header(const void* self, std::string_view name) {
        const Session& s = *static_cast<const Session*>(self);
        return header_in_head(std::string_view(s.head_buffer_.data(), s.head_size_), name);
    }

    // Whole responses are the hot path: the head goes into one reused buffer and leaves with the
    // body in a single gather write (Beast's generic serializer cost half our CPU per request).
    asio::awaitable<error_code> write_response(Response r) {
        auto whole = prepare_response(r);
        auto [ec, n] = co_await send(stream_, whole, tls_out_);
        if (ec) written_short(n);
        co_return ec;
    }

    // A whole response cut short (peer gone, write deadline): log what really left.
    void written_short(std::size_t written) {
        keep_alive_ = false;
        bytes_ = std::min<std::uint64_t>(bytes_, written > head_size_ ? written - head_size_ : 0);
    }

    // The head into head_buffer_, and the write deadline armed; the buffers point into `r`.
    std::array<asio::const_buffer, 2> prepare_response(const Response& r) {
        if (r.close) keep_alive_ = false;
        auto head = prepare_head(r.status, r.content_type, r.headers, r.body.size());
        bytes_ = head_ ? 0 : r.body.size();  // HEAD keeps GET's Content-Length, without the body
        return {head, asio::buffer(r.body.data(), head_ ? 0 : r.body.size())};
    }

    // Every response head, whole or streamed (`length` none: chunked), written through a cursor
    // into a buffer sized once: a string append per piece cost more than the rest of the response
    // path. Arms the write deadline.
    asio::const_buffer prepare_head(int status, std::string_view content_type, const std::vector<Header>& headers,
                                    std::optional<std::size_t> length) {
        std::string_view fixed = ctx_.fixed_fields();
        // Status line (<= 80), Content-Type's name (16), Content-Length, or a stream's fields and
        // Transfer-Encoding (<= 80), Connection (<= 24), CRLF.
        std::size_t need = 224 + fixed.size() + content_type.size();
        for (const auto& h : headers) need += h.name.size() + h.value.size() + 4;
        if (head_buffer_.size() < need) head_buffer_.resize(need);
        char* p = head_buffer_.data();
        p = put(p, version_ == 10 ? "HTTP/1.0 "sv : "HTTP/1.1 "sv);
        p = std::to_chars(p, p + 8, status).ptr;
        *p++ = ' ';
        p = put(p, http::obsolete_reason(http::int_to_status(unsigned(status))));
        p = put(p, "\r\n"sv);
        p = put(p, fixed);
        if (!content_type.empty()) p = put_field(p, "Content-Type"sv, content_type);
        if (length) {
            p = put(p, "Content-Length: "sv);
            p = std::to_chars(p, p + 24, *length).ptr;
            p = put(p, "\r\n"sv);
        } else if (version_ == 10) {
            // HTTP/1.0 has no chunked encoding: the body runs to the connection's close.
            p = put(p, stream_fields);
            keep_alive_ = false;
        } else {
            p = put(put(p, stream_fields), "Transfer-Encoding: chunked\r\n"sv);
        }
        for (const auto& h : headers) p = put_field(p, h.name, h.value);
        if (!keep_alive_) p = put(p, "Connection: close\r\n"sv);
        else if (version_ == 10) p = put(p, "Connection: keep-alive\r\n"sv);
        p = put(p, "\r\n"sv);
        head_size_ = std::size_t(p - head_buffer_.data());
        status_ = status;
        deadline_.expires_after(io_timeout());
        return asio::buffer(head_buffer_.data(), head_size_);
    }

    // A stream is cached by nobody, and an nginx in front passes each piece on as it comes instead
    // of buffering the answer (proxy_buffering, which X-Accel-Buffering turns off per response).
    static constexpr std::string_view stream_fields = "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n";

    static char* put(char* p, std::string_view s) { return std::copy(s.begin(), s.end(), p); }

    // A CR or LF in a handler's header would let it forge headers or split the response: drop it.
    static char* put_field(char* p, std::string_view name, std::string_view value) {
        auto unsafe = [](std::string_view s, bool colon) {
            for (char ch : s)  // one pass: find_first_of makes a memchr call per character sought
                if (ch == '\r' || ch == '\n' || (colon && ch == ':')) return true;
            return false;
        };
        if (unsafe(name, true) || unsafe(value, false)) {
            spdlog::error("Dropped response header {:?} with a CR, LF or colon in it", name);
            return p;
        }
        return put(put(put(put(p, name), ": "sv), value), "\r\n"sv);
    }

    // A stream's head waits in head_buffer_ for its first chunk, to leave in the same send.
    void hold_stream_head(int status, const std::string& content_type, const std::vector<Header>& headers) {
        prepare_head(status, content_type, headers, std::nullopt);
        deadline_.expires_never();
        head_held_ = true;
        stream_write_failed_ = false;
    }

    // The held head (if still held), then `chunk` (if any), then the end of the body when `last`: one
    // gather write. An empty chunk must not be framed: "0\r\n\r\n" is the end of the body.
    // A HEAD request gets the head alone (GET's, chunked included); an HTTP/1.0 client the bare
    // data, ended by closing the connection.
    asio::awaitable<error_code> write_chunks(std::string_view chunk, bool last) {
        deadline_.expires_after(io_timeout());
        auto head = asio::buffer(head_buffer_.data(), head_held_ ? head_size_ : 0);
        head_held_ = false;
        auto data = asio::buffer(chunk.data(), head_ ? 0 : chunk.size());
        bytes_ += data.size();  // the access log counts the body sent, without chunk framing
        // Each sequence named before the co_await: g++ 12 mishandles temporaries inside one.
        std::tuple<error_code, std::size_t> sent;
        if (head_ || version_ == 10) {
            std::array<asio::const_buffer, 2> bare{head, data};
            sent = co_await send(stream_, bare, tls_out_);
        } else {
            auto framed = chunk_frame_.frame(head, data, last);
            sent = co_await send(stream_, framed, tls_out_);
        }
        error_code ec = std::get<0>(sent);
        // The deadline bounds a write, not the handler's pace: between chunks (an LLM thinking for
        // a minute) the connection waits as long as the handler does.
        if (ec) {
            keep_alive_ = false;
            stream_write_failed_ = true;
        } else {
            deadline_.expires_never();
        }
        co_return ec;
    }

    // TLS says it is done first (close_notify), so that the client can tell the end of an answer
    // from a cut connection. The client's own close_notify is not awaited (OpenSSL is told it came):
    // close_socket() reads and drops whatever the client still sends, that too.
    asio::awaitable<void> close_gracefully() {
        if constexpr (Traits::tls) {
            SSL_set_shutdown(stream_.native_handle(), SSL_RECEIVED_SHUTDOWN);
            deadline_.expires_after(seconds(1));
            auto [ec] = co_await stream_.async_shutdown(tuple_deferred);
        }
        co_await close_socket();
    }

    // Half-close, then read what the peer still sends until it closes: closing with unread input
    // would make the kernel answer with a reset that can destroy the response we just sent. A peer
    // that already closed its side sends nothing more: its socket just closes.
    asio::awaitable<void> close_socket() {
        error_code ec;
        if (nothing_unread()) {
            socket().close(ec);
            co_return;
        }
        socket().shutdown(asio::socket_base::shutdown_send, ec);
        if (!ec) {
            deadline_.expires_after(seconds(1));
            char scratch[1024];
            for (;;) {
                auto [rec, n] = co_await socket().async_read_some(asio::buffer(scratch), tuple_deferred);
                if (rec) break;
            }
        }
        socket().close(ec);
    }

    // Only the peer's own FIN is proof: with nothing unread at the moment of the close (nginx's
    // lingering_close heuristic, tried), a request the client had in flight still came after it
    // now and then and was reset (wrk's read errors across max_requests recycling, 2 runs in 24).
    bool nothing_unread() const { return peer_closed_ && buffer_.size() == 0; }

    std::string remote_;
    Stream stream_;
    typename Traits::Reader reader_{stream_};  // what Beast reads the requests through
    IoDeadline deadline_;
    ServerContext& ctx_;
    bool trusted_;                          // the peer is in forwarded_allow_ips
    beast::flat_buffer buffer_;
    ParsedRequest request_;                 // before parser_: each request's parser stores into it
    std::optional<RequestParser> parser_;
    char peeked_ = 0;                       // the peer watch's one-byte peek lands here
    asio::cancellation_signal handler_cancel_;  // bound to run()'s coroutine (spawn())
    std::shared_ptr<HandlerControl> control_;   // of the async handlers, from the first one on
    std::string head_buffer_;               // grown, never shrunk: the head is written in place
    ChunkFrame chunk_frame_;                // a streamed piece's size line, until its write is done
    std::size_t head_size_ = 0;
    bool head_held_ = false;                // a stream's head prepared, not yet sent
    bool stream_write_failed_ = false;      // the wire may hold part of a chunk
    bool evicted_ = false;                  // closed while waiting for a head, to make room
    bool peer_closed_ = false;              // a read ended at the peer's close (or reset)
    Clock::time_point received_at_;
    unsigned version_ = 11;
    bool head_ = false;
    int route_label_ = 0;                   // the request's labels in the request counters
    int method_label_ = 0;
    bool keep_alive_ = true;
    int status_ = 0;
    std::uint64_t bytes_ = 0;
    std::string tls_out_;                   // TLS: small writes joined into one record (session_stream.hpp)
};

template <class Stream>
void spawn(Stream stream, std::string remote, ServerContext& ctx) {
    ++ctx.connections;
    ctx.slot.connections.store(ctx.connections, std::memory_order_relaxed);
    auto executor = stream.get_executor();
    auto session = std::make_shared<Session<Stream>>(std::move(stream), std::move(remote), ctx);
    auto& cancel = session->handler_cancel();
    asio::co_spawn(executor, session->run(),
                   asio::bind_cancellation_slot(cancel.slot(), [session, &ctx](std::exception_ptr e) {
                       session->finished();
                       if (e) {
                           try { std::rethrow_exception(e); }
                           catch (const std::exception& ex) { spdlog::error("Connection failed: {}", ex.what()); }
                       }
                       --ctx.connections;
                       ctx.slot.connections.store(ctx.connections, std::memory_order_relaxed);
                       if (ctx.on_connection_closed) ctx.on_connection_closed();
                   }));
}

}  // namespace

}  // namespace agente::core
