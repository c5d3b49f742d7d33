// The Beast side of the upstream client. Reads are plain socket reads fed to a Beast response
// parser, so a read can be cancelled for a keep-alive tick without losing a byte, and one watchdog
// timer per call enforces the connect / first-byte / total deadlines by closing the socket.
#include "app/gateway/http_client.hpp"

#include "app/common/padded_json.hpp"

#include <agente/short_reads.hpp>
#include <agente/write_now.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <optional>
#include <unordered_map>

namespace agente::gateway {

namespace {

namespace http = boost::beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr auto tuple_deferred = asio::as_tuple(asio::deferred);

// Bounds what one upstream answer may bring (a non-streamed body is held whole).
constexpr std::uint64_t max_response_body = 64ull * 1024 * 1024;
// Kept-alive connections idle longer than this are likely closed by the upstream already.
constexpr auto max_idle_age = std::chrono::seconds(30);
// An upstream closes an idle connection after its keep-alive timeout (seconds), while under load a
// pooled connection is reused within milliseconds: checking it at every reuse was one system call
// more per proxied request than nginx's proxy makes. So only one idle longer than this is checked;
// one closed sooner anyway fails before any answer and is retried on a fresh connection (`stale`).
// (A wait kept pending on idle connections, as nginx keeps a read event, costs Asio an epoll_ctl
// per reuse instead: no better.)
constexpr auto check_after_idle = std::chrono::seconds(1);
constexpr std::size_t read_size = 16 * 1024;
// More interim (1xx) answers than this before the final one is a broken upstream, not a slow one.
constexpr int max_interim_answers = 8;

struct Connection {
    std::optional<tcp::socket> plain;
    std::optional<ssl::stream<tcp::socket>> tls;
    Clock::time_point idle_since;

    tcp::socket& socket() { return tls ? tls->next_layer() : *plain; }

    // One read from whichever stream this is, as a deferred operation (awaited without a coroutine
    // frame of its own, unlike one through use_awaitable) of one type for both: the branch is taken
    // when the operation starts.
    auto read_some(asio::mutable_buffer b) {
        return asio::async_initiate<const decltype(tuple_deferred), void(error_code, std::size_t)>(
            [this](auto handler, asio::mutable_buffer b) {
                if (tls) tls->async_read_some(b, std::move(handler));
                else plain->async_read_some(ShortReadBuffer{b}, std::move(handler));  // short_reads.hpp
            },
            tuple_deferred, b);
    }

    // Not a coroutine: it hands over the operation's own awaitable (which holds copies of the
    // buffers), one coroutine frame fewer per write.
    asio::awaitable<std::tuple<error_code, std::size_t>> write(std::array<asio::const_buffer, 2> b) {
        if (tls) return asio::async_write(*tls, b, use_tuple);
        return write_now(*plain, b);
    }

    // An idle connection the peer closed (or wrote to unasked) is readable; a usable one is not.
    bool looks_alive() {
        char byte;
        ssize_t n = ::recv(socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
};

// An upstream answer as the gateway needs it: the status, the two header fields it reads, and the
// body. Beast's response_parser would also keep every other header field, each in an allocation of
// its own in a sorted container, for nothing: ~2.8k instructions per proxied request (callgrind).
// Beast's basic_parser still does all the HTTP.
class AnswerParser final : public http::basic_parser<false> {
    static constexpr std::uint64_t reserve_at_most = 1024 * 1024;   // a larger body grows as it comes

public:
    int status = 0;
    std::string content_type, retry_after, body;

private:
    using string_view = boost::beast::string_view;

    void on_request_impl(http::verb, string_view, string_view, int, error_code&) override {}
    void on_response_impl(int code, string_view, int, error_code&) override { status = code; }
    void on_field_impl(http::field f, string_view, string_view value, error_code&) override {
        if (f == http::field::content_type) content_type.assign(value.data(), value.size());
        else if (f == http::field::retry_after) retry_after.assign(value.data(), value.size());
    }
    void on_header_impl(error_code&) override {}
    // A told length is allocated once, with room for the JSON reader to read the usage in place.
    void on_body_init_impl(const boost::optional<std::uint64_t>& length, error_code&) override {
        if (length && *length <= reserve_at_most) body.reserve(std::size_t(*length) + app::json_padding);
    }
    std::size_t on_body_impl(string_view s, error_code&) override {
        body.append(s.data(), s.size());
        return s.size();
    }
    void on_chunk_header_impl(std::uint64_t, string_view, error_code&) override {}
    std::size_t on_chunk_body_impl(std::uint64_t, string_view s, error_code&) override {
        body.append(s.data(), s.size());
        return s.size();
    }
    void on_finish_impl(error_code&) override {}
};

class Pool final : public ConnectionPool, public std::enable_shared_from_this<Pool> {
public:
    Pool(asio::any_io_executor executor, int max_idle, const std::vector<std::string>& private_ca_files)
        : executor_(std::move(executor)), max_idle_(max_idle) {
        for (const auto& f : private_ca_files) tls(f);
    }

    std::size_t idle() const override {
        std::size_t n = 0;
        for (const auto& to : idle_) n += to.connections.size();
        return n;
    }

    std::unique_ptr<Connection> take(const Endpoint& e) {
        auto* to = idle_to(e);
        if (!to) return nullptr;
        auto& list = to->connections;
        while (!list.empty()) {
            auto c = std::move(list.back());
            list.pop_back();
            auto idle = Clock::now() - c->idle_since;
            if (idle < check_after_idle || (idle < max_idle_age && c->looks_alive())) return c;
        }
        return nullptr;
    }

    void put(const Endpoint& e, std::unique_ptr<Connection> c) {
        auto* to = idle_to(e);
        if (!to) to = &idle_.emplace_back(IdleTo{e, {}});
        if (int(to->connections.size()) >= max_idle_) return;
        c->idle_since = Clock::now();
        to->connections.push_back(std::move(c));
    }

    asio::any_io_executor executor() const { return executor_; }

    // A call's watchdog, kept from one call to the next: a timer's construction looks its service
    // up in the io_context's registry (a mutex and a walk by type name). A returned timer may
    // still hold a wait's cancelled completion; its handler sees the error and leaves.
    std::unique_ptr<asio::steady_timer> lend_timer() {
        if (spare_timers_.empty()) return std::make_unique<asio::steady_timer>(executor_);
        auto t = std::move(spare_timers_.back());
        spare_timers_.pop_back();
        return t;
    }

    void give_back(std::unique_ptr<asio::steady_timer> t) {
        t->cancel();
        spare_timers_.push_back(std::move(t));
    }

    // One context per trust: a provider's tls_ca_file read at start, the system store on the first
    // HTTPS call that needs it, from its hashed directory so that a certificate is read when a chain
    // needs it (the bundle file would put every CA in every worker's heap, ~2.5 MB, before anything
    // is served). Null when a tls_ca_file can no longer be loaded (it was checked at start, but may
    // have changed since): the call fails, nothing falls back to trusting less.
    ssl::context* tls(const std::string& ca_file) {
        auto it = tls_.find(ca_file);
        if (it != tls_.end()) return &it->second;
        ssl::context ctx(ssl::context::tls_client);
        error_code ec;
        if (ca_file.empty()) {
            ctx.add_verify_path(ca_directory, ec);
            if (ec) ctx.set_default_verify_paths(ec);
        } else {
            ctx.load_verify_file(ca_file, ec);
        }
        if (ec) {
            spdlog::error("gateway: cannot load the CAs of {}: {}", ca_file.empty() ? ca_directory : ca_file, ec.message());
            return nullptr;
        }
        ctx.set_verify_mode(ssl::verify_peer);
        return &tls_.emplace(ca_file, std::move(ctx)).first->second;
    }

private:
    static constexpr const char* ca_directory = "/etc/ssl/certs";
    asio::any_io_executor executor_;
    std::unordered_map<std::string, ssl::context> tls_;   // by tls_ca_file, "" the system store
    int max_idle_;
    // The idle connections by server: a list, as a gateway calls a handful of servers, and a key
    // string built and hashed per call cost more than comparing the endpoint's fields.
    struct IdleTo {
        Endpoint endpoint;
        std::vector<std::unique_ptr<Connection>> connections;
    };
    IdleTo* idle_to(const Endpoint& e) {
        for (auto& to : idle_)
            if (to.endpoint.same_pool(e)) return &to;
        return nullptr;
    }
    std::vector<IdleTo> idle_;
    std::vector<std::unique_ptr<asio::steady_timer>> spare_timers_;  // as many as calls ran at once, at most
};

bool is_default_port(const Endpoint& e) { return e.port == (e.tls ? "443" : "80"); }

std::string request_head(const Endpoint& e, std::string_view method, std::string_view path,
                         std::span<const std::string_view> header_lines, std::size_t body_size) {
    std::string h;
    h.reserve(256);
    h.append(method).append(" ").append(e.base_path).append(path).append(" HTTP/1.1\r\nHost: ");
    h.append(e.host.find(':') != std::string::npos ? "[" + e.host + "]" : e.host);
    if (!is_default_port(e)) h.append(":").append(e.port);
    h.append("\r\nUser-Agent: agente-hibrido\r\nConnection: keep-alive\r\n");
    for (auto piece : header_lines) h.append(piece);
    h.append("Content-Length: ").append(std::to_string(body_size)).append("\r\n\r\n");
    return h;
}

// The handler was cancelled (client gone, deadline, draining): stop here, the caller's frames unwind
// and the call's destructor closes the upstream connection. A plain function over the caller's
// state (`co_await asio::this_coro::cancellation_state`), not a coroutine: a coroutine frame for a
// test that almost always passes would cost every proxied request its setup and teardown.
void throw_if_cancelled(const asio::cancellation_state& cs) {
    if (cs.cancelled() != asio::cancellation_type::none)
        throw boost::system::system_error(asio::error::operation_aborted);
}

}  // namespace

std::shared_ptr<ConnectionPool> make_connection_pool(asio::any_io_executor executor, int max_idle_per_host,
                                                     const std::vector<std::string>& private_ca_files) {
    return std::make_shared<Pool>(std::move(executor), max_idle_per_host, private_ca_files);
}

std::string_view call_error_name(CallError e) {
    switch (e) {
    case CallError::none: return "none";
    case CallError::connect: return "connect error";
    case CallError::timeout: return "timeout";
    case CallError::io: return "connection error";
    case CallError::protocol: return "bad HTTP response";
    case CallError::tls: return "TLS certificate verification failed";
    }
    return "?";
}

struct UpstreamCall::Impl : std::enable_shared_from_this<Impl> {
    enum class Watch { none, deadline, silence };

    // Held, not referred to: the call gives its timer back when it ends, and a call's coroutine
    // can outlive the gateway that made it (an embedding loop's io_context, destroyed after its
    // gateway, ends the calls still suspended in it).
    std::shared_ptr<Pool> pool;
    Endpoint endpoint;
    CallTimeouts timeouts;
    std::string head;   // the request's, kept for a retry on a fresh connection
    std::unique_ptr<Connection> conn;
    std::optional<tcp::resolver> resolver;
    std::unique_ptr<asio::steady_timer> timer;   // the pool's, given back at the end
    unsigned arm_generation = 0;
    Watch fired = Watch::none;
    Clock::time_point total_deadline;
    boost::beast::flat_buffer buffer;
    std::optional<AnswerParser> parser;
    CallError error = CallError::none;
    bool reused = false, finished = false;
    bool answered_early = false;   // the answer came before the whole request went: never pooled

    Impl(Pool& p, const Endpoint& e, CallTimeouts t)
        : pool(p.shared_from_this()), endpoint(e), timeouts(t), timer(p.lend_timer()) {}
    ~Impl() { pool->give_back(std::move(timer)); }

    // One watchdog per call. A deadline closes the socket (the call is over); a silence tick only
    // cancels the pending read, which leaves the connection and the parser as they were.
    void arm(Clock::time_point when, Watch kind) {
        if (when > total_deadline) when = total_deadline, kind = Watch::deadline;
        unsigned gen = ++arm_generation;
        fired = Watch::none;
        timer->expires_at(when);
        timer->async_wait([self = weak_from_this(), gen, kind](error_code ec) {
            auto s = self.lock();
            if (ec || !s || s->arm_generation != gen) return;
            s->fired = kind;
            if (kind == Watch::deadline) s->close();
            else if (s->conn) { error_code ignored; s->conn->socket().cancel(ignored); }
        });
    }

    void disarm() {
        ++arm_generation;
        timer->cancel();
    }

    void close() {
        if (resolver) resolver->cancel();
        if (conn) {
            error_code ignored;
            conn->socket().close(ignored);
        }
    }

    CallError fail(CallError e) {
        error = fired == Watch::deadline ? CallError::timeout : e;
        disarm();
        conn.reset();
        return error;
    }

    // A new connection to the endpoint.
    asio::awaitable<CallError> connect() {
        reused = false;
        arm(Clock::now() + timeouts.connect, Watch::deadline);
        resolver.emplace(pool->executor());
        auto [rec, results] = co_await resolver->async_resolve(endpoint.host, endpoint.port, use_tuple);
        resolver.reset();
        if (rec) co_return fail(CallError::connect);
        conn = std::make_unique<Connection>();
        if (!endpoint.tls) {
            conn->plain.emplace(pool->executor());
        } else if (ssl::context* trust = pool->tls(endpoint.tls_ca_file)) {
            conn->tls.emplace(pool->executor(), *trust);
        } else {
            co_return fail(CallError::tls);
        }
        auto [cec, ep] = co_await asio::async_connect(conn->socket(), results, use_tuple);
        if (cec) co_return fail(CallError::connect);
        error_code ignored, blocking;
        conn->socket().set_option(tcp::no_delay(true), ignored);
        conn->socket().non_blocking(true, blocking);  // for write_now(), whose first try would block otherwise
        if (blocking) co_return fail(CallError::connect);
        if (endpoint.tls) {
            // SNI, so that a server with several names presents this one's certificate (never an
            // address: RFC 6066 forbids it); then the chain must lead to a trusted CA and the
            // certificate must name the host we asked for (or hold the address we dialled).
            error_code not_address;
            asio::ip::make_address(endpoint.host, not_address);
            if (not_address) SSL_set_tlsext_host_name(conn->tls->native_handle(), endpoint.host.c_str());
            conn->tls->set_verify_callback(ssl::host_name_verification(endpoint.host));
            auto [hec] = co_await conn->tls->async_handshake(ssl::stream_base::client, use_tuple);
            if (hec) co_return fail(handshake_error(hec));
        }
        co_return CallError::none;
    }

    // A refused certificate is told apart from a network failure: retrying will not change it, and
    // the operator needs to know which check failed.
    CallError handshake_error(const error_code& ec) {
        long verdict = SSL_get_verify_result(conn->tls->native_handle());
        if (verdict == X509_V_OK) return CallError::connect;
        spdlog::warn("gateway: TLS certificate of {}:{} refused: {} ({})", endpoint.host, endpoint.port,
                     X509_verify_cert_error_string(verdict), ec.message());
        return CallError::tls;
    }

    // A new parser for the connection's next response, fed what was already read past the last one.
    bool next_response() {
        parser.emplace();
        parser->eager(true);
        parser->body_limit(max_response_body);
        return parse();
    }

    // Feeds what was read to the parser. False on a malformed response.
    bool parse() {
        while (buffer.size() && !parser->is_done()) {
            error_code ec;
            std::size_t n = parser->put(buffer.data(), ec);
            buffer.consume(n);
            if (ec == http::error::need_more) break;
            if (ec) return false;
            if (n == 0) break;
        }
        return true;
    }

    // One socket read into the parser, awaited in the caller's frame (a coroutine of its own cost
    // a frame per read):
    //     auto read = conn->read_some(buffer.prepare(read_size));
    //     auto got = co_await std::move(read);   // named: g++ 12 and temporaries in co_await
    //     error_code ec = took(got);
    // Returns the error as is; EOF is handed to the parser, unless not one byte of the response
    // came: Beast's put_eof() wants some (it asserts, and would call it a partial message), and
    // "closed before answering" is what tells a stale kept-alive connection.
    error_code took(std::tuple<error_code, std::size_t> got) {
        auto [ec, n] = got;
        buffer.commit(n);
        if (ec == ssl::error::stream_truncated) ec = asio::error::eof;  // TLS peer gone without close_notify
        if (ec == asio::error::eof && !parser->got_some() && buffer.size() == 0) return ec;
        if (ec == asio::error::eof) {
            error_code pec;
            if (!parse()) return http::error::bad_value;
            parser->put_eof(pec);
            return pec ? pec : (parser->is_done() ? error_code{} : error_code(asio::error::eof));
        }
        if (ec) return ec;
        return parse() ? error_code{} : error_code(http::error::bad_value);
    }

    // Sends `head` and `body`. An upstream may close an idle connection at any moment, so a reused
    // one can be closed by the time our request reaches it (zero response bytes, EOF or a reset).
    // The request was not answered, so it goes again, once, on a `fresh` connection: the pool's
    // other idle connections to this host are likely closed by the same idle timeout, and a second
    // stale one would fail the call. (The retry calls this again: a second coroutine frame only
    // then, and none for a wrapper on every call.)
    asio::awaitable<CallError> send_once(std::string_view body, bool fresh) {
        const asio::cancellation_state cancel = co_await asio::this_coro::cancellation_state;
        bool stale = false;
        error = CallError::none;   // a stale first try failed; this one starts clean
        if (fresh || !(conn = pool->take(endpoint))) {   // a kept-alive connection needs no coroutine of its own
            if (auto e = co_await connect(); e != CallError::none) co_return e;
        } else {
            reused = true;
        }
        arm(Clock::now() + timeouts.first_byte, Watch::deadline);
        auto [wec, wn] = co_await conn->write({asio::buffer(head), asio::buffer(body.data(), body.size())});
        throw_if_cancelled(cancel);
        buffer.clear();
        next_response();
        if (wec) {
            // An upstream may refuse a request before it has read the body (413, 400) and close the
            // connection; our write then fails, but its answer is here to read (RFC 9112, 9.5). It is
            // the upstream's answer, not a lost connection: a 4xx must not count against the breaker.
            bool answer = false;
            if (fired == Watch::none) answer = co_await read_early_answer();
            throw_if_cancelled(cancel);
            if (answer) {
                answered_early = true;
                arm(total_deadline, Watch::deadline);
                co_return CallError::none;
            }
            stale = reused && fired == Watch::none && !parser->got_some();
            fail(CallError::io);
            if (stale && !fresh) co_return co_await send_once(body, true);
            co_return error;
        }
        for (int interim = 0;; ++interim) {
            while (!parser->is_header_done()) {
                auto read = conn->read_some(buffer.prepare(read_size));
                auto got = co_await std::move(read);   // named: g++ 12 and temporaries in co_await
                error_code ec = took(got);
                throw_if_cancelled(cancel);
                if (ec == http::error::bad_value) co_return fail(CallError::protocol);
                if (ec) {
                    // A kept-alive peer that closed as we wrote shows as EOF or a reset, before any byte.
                    bool closed = ec == asio::error::eof || ec == asio::error::connection_reset ||
                                  ec == asio::error::broken_pipe;
                    stale = reused && fired == Watch::none && closed && !parser->got_some() && !interim;
                    fail(CallError::io);
                    if (stale && !fresh) co_return co_await send_once(body, true);
                    co_return error;
                }
            }
            // Interim answers (103 Early Hints, a 100 Continue nobody asked for) come before the final
            // one and are passed over (RFC 9110, 15.2), bounded by the first-byte deadline; a 101 would
            // switch to a protocol we never asked for.
            if (parser->status >= 200) break;
            if (parser->status == 101 || interim == max_interim_answers || !next_response()) co_return fail(CallError::protocol);
        }
        // The body is bounded by the total deadline only: a stream may run long.
        arm(total_deadline, Watch::deadline);
        co_return CallError::none;
    }

    // What the upstream answered before it closed, after our write failed: a final answer's head.
    asio::awaitable<bool> read_early_answer() {
        while (!parser->is_header_done()) {
            auto read = conn->read_some(buffer.prepare(read_size));
            auto got = co_await std::move(read);
            if (took(got)) co_return false;
        }
        co_return parser->status >= 200;
    }

    // The end of the body: the connection goes back to the pool if both sides agree to keep it.
    void finish() {
        finished = true;
        disarm();
        if (conn && !answered_early && parser->keep_alive() && buffer.size() == 0) pool->put(endpoint, std::move(conn));
        conn.reset();
    }
};

UpstreamCall::UpstreamCall(ConnectionPool& pool, const Endpoint& endpoint, CallTimeouts timeouts)
    : impl_(std::make_shared<Impl>(static_cast<Pool&>(pool), endpoint, timeouts)) {}

UpstreamCall::~UpstreamCall() {
    impl_->disarm();
    impl_->close();
}

// Not a coroutine: it hands over send_once()'s, one coroutine frame fewer per call.
asio::awaitable<CallError> UpstreamCall::send(std::string_view method, std::string_view path,
                                              std::span<const std::string_view> header_lines, std::string_view body) {
    impl_->total_deadline = Clock::now() + impl_->timeouts.total;
    impl_->head = request_head(impl_->endpoint, method, path, header_lines, body.size());
    return impl_->send_once(body, false);
}

int UpstreamCall::status() const { return impl_->parser ? impl_->parser->status : 0; }

const std::string& UpstreamCall::content_type() const {
    static const std::string none;
    return impl_->parser ? impl_->parser->content_type : none;
}

std::string UpstreamCall::take_content_type() {
    return impl_->parser ? std::move(impl_->parser->content_type) : std::string();
}

const std::string& UpstreamCall::retry_after() const {
    static const std::string none;
    return impl_->parser ? impl_->parser->retry_after : none;
}

asio::awaitable<bool> UpstreamCall::read_some(std::string& out, milliseconds wait, bool& silence) {
    auto& s = *impl_;
    out.clear();
    silence = false;
    if (s.finished || s.error != CallError::none || !s.conn) co_return false;
    const asio::cancellation_state cancel = co_await asio::this_coro::cancellation_state;
    for (;;) {
        auto& body = s.parser->body;
        if (!body.empty()) {
            out.swap(body);
            body.clear();
            co_return true;
        }
        if (s.parser->is_done()) {
            s.finish();
            co_return false;
        }
        s.arm(Clock::now() + wait, Impl::Watch::silence);
        auto read = s.conn->read_some(s.buffer.prepare(read_size));
        auto got = co_await std::move(read);   // named: g++ 12 and temporaries in co_await
        error_code ec = s.took(got);
        throw_if_cancelled(cancel);
        if (ec == asio::error::operation_aborted && s.fired == Impl::Watch::silence) {
            silence = true;
            co_return true;
        }
        if (ec) {
            s.fail(ec == http::error::bad_value ? CallError::protocol : CallError::io);
            co_return false;
        }
    }
}

asio::awaitable<CallError> UpstreamCall::read_all(std::string& out) {
    auto& s = *impl_;
    if (s.error != CallError::none) co_return s.error;
    const asio::cancellation_state cancel = co_await asio::this_coro::cancellation_state;
    while (!s.parser->is_done()) {
        auto read = s.conn->read_some(s.buffer.prepare(read_size));
        auto got = co_await std::move(read);   // named: g++ 12 and temporaries in co_await
        error_code ec = s.took(got);
        throw_if_cancelled(cancel);
        if (ec) co_return s.fail(ec == http::error::bad_value ? CallError::protocol : CallError::io);
    }
    take_body(out);
    co_return CallError::none;
}

bool UpstreamCall::take_body(std::string& out) {
    auto& s = *impl_;
    if (s.error != CallError::none || !s.parser || !s.parser->is_done()) return false;
    out = std::move(s.parser->body);
    s.finish();
    return true;
}

CallError UpstreamCall::error() const { return impl_->error; }
bool UpstreamCall::body_done() const { return impl_->finished || (impl_->parser && impl_->parser->is_done()); }
bool UpstreamCall::reused() const { return impl_->reused; }

}  // namespace agente::gateway
