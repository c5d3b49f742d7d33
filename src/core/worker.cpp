#include "core/worker.hpp"

#include "core/access_log.hpp"
#include "core/dirty_client.hpp"
#include "core/http_session.hpp"
#include "core/log.hpp"
#include "core/log_throttle.hpp"
#include "core/metrics_route.hpp"
#include "core/owned_io_context.hpp"
#include "core/startup_pages.hpp"
#include "core/status_route.hpp"
#include "core/worker_process.hpp"
#include "core/proc_title.hpp"
#include "core/recycling.hpp"
#include "core/router.hpp"
#include "core/scoreboard.hpp"
#include "core/server_context.hpp"
#include "core/tls.hpp"

#include <agente/app.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/as_tuple.hpp>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <csignal>
#include <list>
#include <optional>
#include <vector>

namespace agente::core {

namespace {

using tcp = asio::ip::tcp;
using local = asio::local::stream_protocol;
using namespace std::chrono_literals;
// Beyond a worker's own boot, what a replacement takes to serve once asked for: the master notices
// the request, and then the replacement's readiness, on its 100 ms ticks.
constexpr auto replacement_margin = 200ms;
const auto process_start = std::chrono::steady_clock::now();  // at exec, before main()
constexpr auto full_report_interval = 10s;  // "worker_connections are not enough" at most this often
// A full worker looks this often for a connection ending, a sibling's room or a client to make room
// for: short against a client's patience, long against a busy loop.
constexpr auto full_poll_interval = 10ms;
// Asio's UNSAFE_IO without its reactor-registration lock: only the scheduler locks (see ioc_).
constexpr int one_thread_reactor = static_cast<int>(BOOST_ASIO_CONCURRENCY_HINT_ID |
                                                   BOOST_ASIO_CONCURRENCY_HINT_LOCKING_SCHEDULER);

// A TCP listener that serves TLS: a type of its own, so that the accept loop picks the session for
// it at compile time.
struct TlsAcceptor : TcpAcceptor {
    using TcpAcceptor::TcpAcceptor;
};

class Worker {
public:
    Worker(const Config& config, const WorkerSetup& setup)
        : config_(config),
          setup_(setup),
          app_(make_app()),
          access_log_(config, ioc_.get_executor()),
          ctx_{config_, routes_, access_log_, map_shared(), setup.max_requests},
          signals_(ioc_),
          heartbeat_(ioc_),
          drain_deadline_(ioc_) {}
    ~Worker() { ioc_.destroy_pending(); }  // suspended sessions end while their slot is mapped
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    int run() {
        ctx_.on_connection_closed = [this] { maybe_exit(); };
        ctx_.metrics = &metrics_;
        add_core_routes();
        WorkerContext wc{ioc_.get_executor(), config_, setup_.slot};
        if (!setup_.dirty_address.empty()) {
            dirty_ = make_dirty_client(ioc_.get_executor(), setup_.dirty_address, scoreboard_,
                                       std::chrono::seconds(config_.dirty_timeout), metrics_.dirty_meter(setup_.slot));
            wc.dirty = dirty_.get();
        }
        app_->register_routes(routes_, wc);
        routes_.label_routes([this](std::string_view pattern) { return metrics_.route_label(pattern); });
        watch_signals();
        beat();
        load_tls();
        for (const auto& l : setup_.listeners) accept_from(l);
        start_recycling();
        ctx_.slot.state = std::uint32_t(WorkerState::ready);
        // The loop's first job, after the ready report (a few ms it need not wait for): what the
        // start-up mapped and serving does not use goes (startup_pages.hpp).
        boost::asio::post(ioc_, [] {
            std::size_t dropped = drop_startup_pages();
            spdlog::debug("Worker dropped {} KiB of start-up mappings", dropped / 1024);
        });
        ioc_.run();
        access_log_.close();  // drained, stopped or told to quit: the lines buffered go out first
        app_->on_worker_exit();
        spdlog::info("Worker exiting (pid: {})", ::getpid());
        return 0;
    }

private:
    // The same regions as the master declared (the core's, then the app's), found in its memory.
    Slot& map_shared() {
        app_->declare_shared(layout_);
        scoreboard_.attach(setup_.scoreboard_fd);
        metrics_.bind(setup_.slot);
        return scoreboard_.slot(setup_.slot);
    }

    void add_core_routes() {
        // Cheap on purpose (load balancers poll it): no JSON DOM, the pid cached (getpid is a
        // syscall), one allocation for the body.
        std::string head = R"({"status":"ok","pid":)" + std::to_string(::getpid()) + R"(,"requests":)";
        routes_.add("GET", "/health", SyncHandler([this, head](const Request&) {
            std::string body;
            body.reserve(head.size() + 24);
            body += head;
            char count[24];
            auto [end, _] = std::to_chars(count, count + sizeof count, ctx_.requests);
            body.append(count, end);
            body += '}';
            return Response::json(200, std::move(body));
        }));
        add_metrics_route(routes_, MetricsAccess(config_, setup_.listeners), metrics_, scoreboard_, *app_);
        add_status_route(routes_, metrics_, scoreboard_, *app_);
    }

    void watch_signals() {
        watch_worker_signals(signals_, {[this] { begin_drain("TERM"); }, [this] { reopen_logs(); }, [this] { stop_now(); }});
    }

    void reopen_logs() {
        spdlog::info("Handling signal: usr1");
        setup_error_log(config_);
        access_log_.reopen();
    }

    // The heartbeat comes from this loop's own timer: a blocked loop stops beating.
    void beat() {
        ctx_.slot.heartbeat_ns.store(monotonic_ns(), std::memory_order_relaxed);
        if (::getppid() != setup_.master_pid && !ctx_.draining) {
            spdlog::info("Parent changed, shutting down: {}", setup_.master_pid);
            begin_drain("master gone");
        }
        heartbeat_.expires_after(heartbeat_interval());
        heartbeat_.async_wait([this](error_code ec) { if (!ec) beat(); });
    }

    // The TLS context of the files the master checked and handed over; the fd is not needed after.
    void load_tls() {
        if (setup_.tls_fd < 0) return;
        tls_ = make_server_context(config_, shared_tls_files(setup_.tls_fd));
        ::close(setup_.tls_fd);
        setup_.tls_fd = -1;
    }

    void accept_from(const Listener& l) {
        if (l.is_unix) {
            auto& a = unix_acceptors_.emplace_back(ioc_, local(), l.fd);
            asio::co_spawn(ioc_, accept_loop(a), asio::detached);
            return;
        }
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        ::getsockname(l.fd, reinterpret_cast<sockaddr*>(&ss), &len);
        auto family = ss.ss_family == AF_INET6 ? tcp::v6() : tcp::v4();
        if (l.tls) {
            if (!tls_) throw std::runtime_error("listener " + l.address + " serves TLS, but no TLS files were handed over");
            auto& a = tls_acceptors_.emplace_back(ioc_, family, l.fd);
            asio::co_spawn(ioc_, accept_loop(a), asio::detached);
        } else {
            auto& a = tcp_acceptors_.emplace_back(ioc_, family, l.fd);
            asio::co_spawn(ioc_, accept_loop(a), asio::detached);
        }
    }

    void open_session(TcpAcceptor&, TcpSocket socket, const tcp::endpoint& peer) {
        start_session(std::move(socket), peer, ctx_);
    }
    void open_session(UnixAcceptor&, UnixSocket socket, const asio::local::stream_protocol::endpoint&) {
        start_session(std::move(socket), ctx_);
    }
    void open_session(TlsAcceptor&, TcpSocket socket, const tcp::endpoint& peer) {
        start_session(std::move(socket), peer, ctx_, *tls_);
    }

    template <class Acceptor>
    asio::awaitable<void> accept_loop(Acceptor& acceptor) {
        asio::steady_timer pause(ioc_);
        typename Acceptor::endpoint_type peer;  // filled by accept itself
        while (!ctx_.draining && !ctx_.retiring) {
            if (full()) {  // gunicorn stops accepting when full; we first make room
                take_in_place_of_idle(acceptor);
                pause.expires_after(full_poll_interval);
                co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
                continue;
            }
            auto [ec, socket] = co_await acceptor.async_accept(peer, asio::as_tuple(asio::use_awaitable));
            if (!ec) {  // even when draining began meanwhile: the peer is connected and will be answered
                if (full()) make_room();  // filled while this accept was under way
                open_session(acceptor, std::move(socket), peer);
                co_await leave_some_to_siblings(pause);
                continue;
            }
            if (ec == asio::error::operation_aborted || ctx_.draining || ctx_.retiring) co_return;
            spdlog::error("accept: {}", ec.message());  // EMFILE and friends: back off, don't spin
            pause.expires_after(100ms);
            co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
        }
    }

    bool full() const { return ctx_.connections >= config_.worker_connections; }

    // Full: a new client may take the place of the connection that has waited longest for a
    // request head, unless a live sibling has room (it takes the client then). With no such
    // connection, accepting stops until one ends and clients wait in the listen queue.
    bool may_make_room() {
        if (scoreboard_.room_elsewhere(setup_.slot, std::uint32_t(config_.worker_connections), live_since())) return false;
        if (ctx_.idle_to_close(std::chrono::steady_clock::now())) return true;
        report_full(Shortage::waiting);
        return false;
    }

    // Full, each full_poll_interval: the clients already queued that may make room, taken without
    // waiting. A full worker never sits in an accept, which would take the next client (and close
    // an idle connection for it) even once a sibling has room again.
    template <class Acceptor>
    void take_in_place_of_idle(Acceptor& acceptor) {
        error_code ec;
        acceptor.non_blocking(true, ec);  // this accept only: Asio's async_accept is unaffected
        typename Acceptor::endpoint_type peer;
        while (!ec && full() && may_make_room()) {
            auto socket = acceptor.accept(peer, ec);
            if (ec) break;  // none queued (EAGAIN), or EMFILE and friends: the next round retries
            make_room();
            open_session(acceptor, std::move(socket), peer);
        }
    }

    void make_room() {
        HeaderWait* idle = ctx_.idle_to_close(std::chrono::steady_clock::now());
        if (!idle) return;  // none idle any more: one connection over the limit
        idle->evict();
        ++evicted_;
        report_full(Shortage::closing);
    }

    // nginx's "worker_connections are not enough", each kind at most once per full_report_interval
    // (the count it carries is the connections closed, not the lines left out).
    enum Shortage { closing, waiting };
    void report_full(Shortage kind) {
        static constexpr std::string_view what[] = {
            "closing connections idle in their request head, oldest first",
            "no connection idle long enough to close, new clients wait in the listen queue"};
        if (!full_reports_[kind].admit(std::chrono::steady_clock::now())) return;
        spdlog::warn("{} worker_connections are not enough: {} ({} closed so far; pid: {})",
                     config_.worker_connections, what[kind], evicted_, ::getpid());
    }

    // A replacement takes about what this worker took to boot, twice for safety, plus the master's
    // ticks: asked for that far ahead of the limit at the current pace, it serves by then.
    void start_recycling() {
        if (!ctx_.max_requests) return;
        auto now = std::chrono::steady_clock::now();
        recycling_.emplace(ctx_.max_requests, 2 * (now - process_start) + replacement_margin, now);
        ctx_.checkpoint = recycling_->next_checkpoint();
        ctx_.on_checkpoint = [this] { return recycling_checkpoint(); };
    }

    // False: this request is past the limit, its connection closes after the answer.
    bool recycling_checkpoint() {
        Recycling::Step step = recycling_->at(ctx_.begun, std::chrono::steady_clock::now());
        ctx_.checkpoint = recycling_->next_checkpoint();
        if (step == Recycling::Step::ask_for_replacement) {
            spdlog::debug("Near max_requests ({} of {}): asking for a replacement", ctx_.begun, ctx_.max_requests);
            ctx_.slot.retire.store(retire_asked);
        }
        if (step != Recycling::Step::stop) return true;
        if (!ctx_.retiring) retire();
        return false;
    }

    // max_requests reached: no new connection, each open one closes after its next answer, and the
    // worker leaves once they are done; the master has started (or starts now) its replacement.
    void retire() {
        spdlog::info("Autorestarting worker after current request.");
        ctx_.retiring = true;
        ctx_.slot.retire.store(retire_at_limit);
        ctx_.slot.state = std::uint32_t(WorkerState::draining);  // siblings no longer count on it
        error_code ignored;
        for (auto& a : tcp_acceptors_) a.close(ignored);  // the shared socket stays open elsewhere
        for (auto& a : tls_acceptors_) a.close(ignored);
        for (auto& a : unix_acceptors_) a.close(ignored);
        // As a drained worker would: a stream that never ends must not keep it. A worker already
        // draining keeps the deadline its TERM set, which the master's SIGKILL follows.
        if (!ctx_.draining) arm_drain_deadline();
    }

    // Every worker is woken for a connection on the shared socket, and the first one awake used to
    // drain the backlog alone (49 of wrk's 50 connections on one worker, the other idle). So after
    // each accept, while a live sibling holds far fewer connections, wait a little (at most 3 ms: a
    // sibling that is only slow must not stall accepting) and let the kernel's wake-up reach it.
    asio::awaitable<void> leave_some_to_siblings(asio::steady_timer& pause) {
        for (int waits = 0; waits < 3; ++waits) {
            if (!scoreboard_.fewer_elsewhere(setup_.slot, std::uint32_t(ctx_.connections), live_since())) co_return;
            pause.expires_after(1ms);
            co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
        }
    }

    // Siblings heard from since then are alive; a stuck one is no help.
    std::int64_t live_since() const {
        return monotonic_ns() - 3 * std::chrono::nanoseconds(heartbeat_interval()).count();
    }

    std::chrono::milliseconds heartbeat_interval() const { return core::heartbeat_interval(config_.timeout); }

    // Takes what is already queued on the listener, then lets go of it: the master and the other
    // workers keep the socket open, so nothing queued behind it is reset.
    template <class Acceptor>
    void sweep_and_close(Acceptor& acceptor) {
        error_code ec;
        acceptor.cancel(ec);
        acceptor.non_blocking(true, ec);
        typename Acceptor::endpoint_type peer;
        for (;;) {
            auto socket = acceptor.accept(peer, ec);
            if (ec) break;
            open_session(acceptor, std::move(socket), peer);
        }
        acceptor.close(ec);
    }

    void begin_drain(const char* why) {
        if (ctx_.draining) return;
        spdlog::info("Worker draining ({}), pid: {}", why, ::getpid());
        ctx_.draining = true;
        ctx_.slot.state = std::uint32_t(WorkerState::draining);
        for (auto& a : tcp_acceptors_) sweep_and_close(a);
        for (auto& a : tls_acceptors_) sweep_and_close(a);
        for (auto& a : unix_acceptors_) sweep_and_close(a);
        set_proc_title(worker_title("worker", config_, true));
        arm_drain_deadline();
        maybe_exit();
    }

    // graceful_timeout, from a TERM or from reaching max_requests: then running handlers are stopped.
    void arm_drain_deadline() {
        drain_deadline_.expires_after(std::chrono::seconds(config_.graceful_timeout));
        drain_deadline_.async_wait([this](error_code ec) { if (!ec) stop_streams(); });
    }

    // graceful_timeout ran out: tell each running handler (it may send a last event), then leave.
    void stop_streams() {
        std::vector<std::shared_ptr<HandlerControl>> running;  // stop() may end exchanges, which leave the list
        for (auto& control : ctx_.running) running.push_back(control.shared_from_this());
        for (auto& control : running) control->stop(StopReason::draining);
        drain_deadline_.expires_after(1s);
        drain_deadline_.async_wait([this](error_code ec) { if (!ec) ioc_.stop(); });
    }

    void maybe_exit() {
        if ((ctx_.draining || ctx_.retiring) && ctx_.connections == 0) ioc_.stop();
    }

    void stop_now() {
        ctx_.draining = true;
        ioc_.stop();
    }

    // One thread runs every socket and timer, so the reactor's locks (per socket, and the one over its
    // registrations and timer queues) are pure cost; the scheduler keeps its lock, as the agent's store
    // thread and the resolver post completions to it. Declared first: the access log's timer and watch
    // are bound to it.
    OwnedIoContext ioc_{one_thread_reactor};  // first: destroyed last, see ~Worker
    Config config_;
    WorkerSetup setup_;
    SharedLayout layout_;
    Scoreboard scoreboard_{layout_};
    CoreMetrics metrics_{layout_};
    std::unique_ptr<DirtyClient> dirty_;   // before app_: the app's handlers may hold it
    std::unique_ptr<App> app_;            // before the memory is mapped: it declares its regions
    RouteTable routes_;
    AccessLog access_log_;
    ServerContext ctx_;
    asio::signal_set signals_;
    asio::steady_timer heartbeat_;
    asio::steady_timer drain_deadline_;
    std::list<TcpAcceptor> tcp_acceptors_;
    std::list<TlsAcceptor> tls_acceptors_;
    std::list<UnixAcceptor> unix_acceptors_;
    std::optional<Recycling> recycling_;                      // with max_requests
    std::uint64_t evicted_ = 0;                               // connections closed to make room
    LogThrottle full_reports_[2]{LogThrottle(full_report_interval), LogThrottle(full_report_interval)};  // by Shortage
    std::unique_ptr<asio::ssl::context> tls_;                 // sessions hold OpenSSL's own reference to it
};

}  // namespace

// A worker with nothing to accept from would report ready and serve nobody while the accept queue
// fills: its boot fails instead (logged, exit code worker_boot_error), which the master sees and
// backs off from. Checked before the shared memory is mapped: that error names the real problem.
static void check_listeners(const WorkerSetup& setup) {
    if (setup.listeners.empty()) throw std::runtime_error("no listening socket was passed to this worker");
    for (const auto& l : setup.listeners) {
        int listening = 0;
        socklen_t len = sizeof listening;
        if (::getsockopt(l.fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening)
            throw std::runtime_error("inherited fd " + std::to_string(l.fd) + " (" + l.address +
                                     ") is not a listening socket");
    }
}

int run_worker(const Config& config, const WorkerSetup& setup) {
    return run_worker_process("worker", config, [&] {
        check_listeners(setup);
        Worker worker(config, setup);
        return worker.run();
    });
}

}  // namespace agente::core
