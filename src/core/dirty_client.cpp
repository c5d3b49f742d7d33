#include "core/dirty_client.hpp"

#include "core/dirty_protocol.hpp"
#include "core/dirty_socket.hpp"

#include <agente/handler.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>

namespace agente::core {

namespace {

using Clock = std::chrono::steady_clock;
using Socket = asio::basic_stream_socket<asio::local::stream_protocol, asio::any_io_executor>;
constexpr auto tuple_deferred = asio::as_tuple(asio::deferred);

DirtyResult failure(DirtyErrc error, std::string message) {
    DirtyResult r;
    r.error = error;
    r.message = std::move(message);
    return r;
}

DirtyResult success(std::string_view value) {
    DirtyResult r;
    r.value = value;
    return r;
}

// One call's connection and deadline. The deadline's timer holds it weakly: a late expiry after
// the call ended touches nothing.
struct Connection {
    explicit Connection(const asio::any_io_executor& ex) : socket(ex), timer(ex) {}
    Socket socket;
    asio::steady_timer timer;
    bool timed_out = false;

    // The job is told at once (CANCEL, then the connection closed), and nothing is awaited for it.
    void cancel_job(std::uint64_t id) {
        if (!socket.is_open()) return;
        std::string frame = dirty::frame(dirty::FrameType::cancel, id);
        (void)!::send(socket.native_handle(), frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        error_code ignored;
        socket.close(ignored);
    }
};

// The deadline or the awaiting coroutine's cancellation ended a wait: which one, the job told.
DirtyResult interrupted(Connection& c, std::uint64_t id, Clock::time_point deadline) {
    c.cancel_job(id);
    if (c.timed_out || Clock::now() >= deadline) return failure(DirtyErrc::timeout, "the call's deadline passed");
    return failure(DirtyErrc::cancelled, "the call was cancelled");
}

// The connection failed or closed before the last frame: the dirty worker died (or the deadline
// passed first and the master killed it for running past dirty_timeout).
DirtyResult lost(Connection& c, std::uint64_t id, Clock::time_point deadline, const error_code& ec) {
    if (ec == asio::error::operation_aborted || c.timed_out || Clock::now() >= deadline) return interrupted(c, id, deadline);
    return failure(DirtyErrc::worker_died, "the dirty worker ended mid-call: " + ec.message());
}

DirtyResult from_error_frame(std::string_view body) {
    auto e = dirty::parse_error(body);
    if (!e) return failure(DirtyErrc::worker_died, "a malformed error frame from the dirty worker");
    DirtyResult r = failure(e->kind, std::string(e->message));
    r.code = e->code;
    return r;
}

class PoolClient final : public DirtyClient {
public:
    PoolClient(asio::any_io_executor executor, std::string address, Scoreboard& scoreboard, std::chrono::seconds cap,
               DirtyCallMeter meter)
        : executor_(std::move(executor)), scoreboard_(scoreboard), cap_(cap), meter_(meter) {
        address_length_ = dirty_sockaddr(address, address_);
    }

    asio::awaitable<DirtyResult> call(std::string_view kind, std::string payload, std::chrono::milliseconds deadline) override {
        return run(std::string(kind), std::move(payload), deadline, nullptr);
    }

    asio::awaitable<DirtyResult> stream(std::string_view kind, std::string payload, std::chrono::milliseconds deadline,
                                        ChunkHandler on_chunk) override {
        return run(std::string(kind), std::move(payload), deadline, std::make_shared<ChunkHandler>(std::move(on_chunk)));
    }

private:
    using Handler = std::shared_ptr<ChunkHandler>;

    // A call whose dirty worker died before a byte of its answer arrived is run once more when the
    // app registered its kind as idempotent and the deadline allows.
    asio::awaitable<DirtyResult> run(std::string kind, std::string payload, std::chrono::milliseconds deadline,
                                     Handler on_chunk) {
        PendingCall counted(meter_);
        DirtyResult r = co_await run_counted(kind, payload, deadline, on_chunk);
        counted.outcome = r.error;
        co_return r;
    }

    // Counts a call as pending for as long as it runs (a cancelled coroutine too), then its outcome.
    struct PendingCall {
        explicit PendingCall(DirtyCallMeter& m) : meter(m) { meter.begin(); }
        ~PendingCall() {
            meter.end(outcome, std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started));
        }
        PendingCall(const PendingCall&) = delete;
        PendingCall& operator=(const PendingCall&) = delete;
        DirtyCallMeter& meter;
        Clock::time_point started = Clock::now();
        DirtyErrc outcome = DirtyErrc::cancelled;   // unless the call returns
    };

    asio::awaitable<DirtyResult> run_counted(const std::string& kind, const std::string& payload,
                                             std::chrono::milliseconds deadline, const Handler& on_chunk) {
        Clock::time_point until = deadline_of(deadline);
        for (int attempt = 0;; ++attempt) {
            bool heard = false;
            DirtyResult r = co_await call_once(kind, payload, until, on_chunk, heard);
            bool retry = r.error == DirtyErrc::worker_died && !heard && attempt == 0 && Clock::now() < until &&
                         scoreboard_.idempotent(kind_hash(kind));
            if (!retry) co_return r;
            spdlog::warn("Dirty call {} retried on another dirty worker: {}", kind, r.message);
        }
    }

    Clock::time_point deadline_of(std::chrono::milliseconds deadline) const {
        auto now = Clock::now();
        Clock::time_point until = Clock::time_point::max();
        if (deadline.count() > 0) until = now + deadline;
        if (cap_.count() > 0) until = std::min(until, now + cap_);
        return until;
    }

    asio::awaitable<DirtyResult> call_once(const std::string& kind, const std::string& payload, Clock::time_point until,
                                           const Handler& on_chunk, bool& heard) {
        if (!scoreboard_.any_dirty_ready())
            co_return failure(DirtyErrc::unavailable, "no dirty worker is ready");
        auto c = std::make_shared<Connection>(executor_);
        if (DirtyResult refused = connect(*c); !refused.ok()) co_return refused;
        std::uint64_t id = ++next_id_;
        if (until != Clock::time_point::max()) {
            c->timer.expires_at(until);
            c->timer.async_wait([weak = std::weak_ptr<Connection>(c)](error_code ec) {
                auto conn = weak.lock();
                if (ec || !conn) return;
                conn->timed_out = true;
                error_code ignored;
                conn->socket.cancel(ignored);
            });
        }
        dirty::Request request;
        request.streamed = on_chunk != nullptr;
        request.deadline_ns = wire_deadline(until);
        request.kind = kind;
        request.payload = payload;
        std::string head = dirty::request_head(id, request);
        std::array<asio::const_buffer, 2> frame{asio::buffer(head), asio::buffer(payload)};
        auto [write_error, written] = co_await asio::async_write(c->socket, frame, tuple_deferred);
        if (write_error) co_return lost(*c, id, until, write_error);
        dirty::FrameReader reader;
        for (;;) {
            std::size_t want = reader.next_read_size();
            char* room = reader.prepare(want);
            auto [read_error, n] = co_await c->socket.async_read_some(asio::buffer(room, want), tuple_deferred);
            if (read_error) co_return lost(*c, id, until, read_error);
            reader.commit(n);
            dirty::Header h;
            std::string_view body;
            dirty::FrameReader::Next next;
            while ((next = reader.next(h, body)) == dirty::FrameReader::Next::frame) {
                if (h.id != id) co_return failure(DirtyErrc::worker_died, "a dirty worker answered another call");
                if (h.type == dirty::FrameType::error) co_return from_error_frame(body);
                if (h.type == dirty::FrameType::response && !on_chunk) co_return success(body);
                if (h.type == dirty::FrameType::end && on_chunk) co_return success(body);
                if (h.type != dirty::FrameType::chunk || !on_chunk)
                    co_return failure(DirtyErrc::worker_died, "an unexpected frame from the dirty worker");
                heard = true;
                bool more = co_await (*on_chunk)(body);
                if (!more) co_return interrupted(*c, id, Clock::time_point::max());
                if (c->timed_out) co_return interrupted(*c, id, until);
            }
            if (next == dirty::FrameReader::Next::bad)
                co_return failure(DirtyErrc::worker_died, std::string("a bad frame from the dirty worker: ") + reader.error());
        }
    }

    // A non-blocking connect: a Unix socket connects at once, or fails at once when the backlog
    // (dirty_backlog, the pool's queue) is full.
    DirtyResult connect(Connection& c) {
        error_code ec;
        c.socket.open(asio::local::stream_protocol(), ec);
        if (!ec) c.socket.non_blocking(true, ec);
        if (ec) return failure(DirtyErrc::unavailable, "cannot open a socket: " + ec.message());
        if (::connect(c.socket.native_handle(), reinterpret_cast<const sockaddr*>(&address_), address_length_) == 0)
            return {};
        if (errno == EAGAIN) return failure(DirtyErrc::unavailable, "the dirty pool's queue is full");
        return failure(DirtyErrc::unavailable, std::string("cannot reach the dirty pool: ") + std::strerror(errno));
    }

    static std::int64_t wire_deadline(Clock::time_point until) {
        if (until == Clock::time_point::max()) return 0;
        return std::chrono::duration_cast<std::chrono::nanoseconds>(until.time_since_epoch()).count();
    }

    asio::any_io_executor executor_;
    Scoreboard& scoreboard_;
    std::chrono::seconds cap_;
    sockaddr_un address_{};
    socklen_t address_length_ = 0;
    std::uint64_t next_id_ = 0;
    DirtyCallMeter meter_;
};

}  // namespace

std::unique_ptr<DirtyClient> make_dirty_client(asio::any_io_executor executor, std::string address,
                                               Scoreboard& scoreboard, std::chrono::seconds dirty_timeout,
                                               DirtyCallMeter meter) {
    return std::make_unique<PoolClient>(std::move(executor), std::move(address), scoreboard, dirty_timeout, meter);
}

}  // namespace agente::core
