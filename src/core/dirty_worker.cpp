#include "core/dirty_worker.hpp"

#include "core/dirty_jobs.hpp"
#include "core/log.hpp"
#include "core/owned_io_context.hpp"
#include "core/worker_process.hpp"
#include "core/proc_title.hpp"
#include "core/scoreboard.hpp"

#include <agente/app.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <memory>
#include <set>

namespace agente::core {

namespace {

using namespace std::chrono_literals;
using local = asio::local::stream_protocol;
using CallPtr = std::shared_ptr<Call>;

// A caller sends its request right after connecting; one whose connection was taken and that sends
// nothing for this long is a broken peer, and its thread slot is given back.
constexpr auto request_read_timeout = 10s;
// Past dirty_graceful_timeout the running jobs are told to stop (cancelled() turns true) and get
// this long to return before the worker leaves anyway.
constexpr auto cancel_grace = 1s;

class DirtyWorker {
public:
    DirtyWorker(const Config& config, const WorkerSetup& setup)
        : config_(config),
          setup_(setup),
          app_(make_app()),
          slot_(map_shared()),
          acceptor_(ioc_),
          signals_(ioc_),
          heartbeat_(ioc_),
          drain_timer_(ioc_) {}
    ~DirtyWorker() { ioc_.destroy_pending(); }  // calls still held end while the slot is mapped
    DirtyWorker(const DirtyWorker&) = delete;
    DirtyWorker& operator=(const DirtyWorker&) = delete;

    int run() {
        app_->register_jobs(jobs_, config_);   // may block: loading an index, a model
        auto idempotent = jobs_.idempotent_hashes();
        if (int(idempotent.size()) > DirtyKinds::max_kinds)
            spdlog::warn("Only {} idempotent job kinds are retried after a dirty worker dies; {} are registered",
                         DirtyKinds::max_kinds, idempotent.size());
        scoreboard_.list_idempotent(setup_.slot, idempotent);
        threads_ = std::make_unique<JobThreads>(config_.dirty_threads);
        acceptor_.assign(local(), setup_.listeners.at(0).fd);
        acceptor_.non_blocking(true);
        watch_signals();
        beat();
        slot_.state = std::uint32_t(WorkerState::ready);
        spdlog::info("Dirty worker ready with {} job kinds, {} threads (pid: {})", jobs_.size(),
                     config_.dirty_threads, ::getpid());
        maybe_accept();
        ioc_.run();
        return leave();
    }

private:
    // The same regions as the master declared (the core's, then the app's), found in its memory.
    Slot& map_shared() {
        app_->declare_shared(layout_);
        scoreboard_.attach(setup_.scoreboard_fd);
        return scoreboard_.slot(setup_.slot);
    }

    // ---- taking calls ----------------------------------------------------------------------------

    // One connection is taken off the dirty socket per free thread: the rest wait in its backlog,
    // where another dirty worker may take them first.
    void maybe_accept() {
        if (accepting_ || draining_ || running_ + reading_ >= config_.dirty_threads) return;
        accepting_ = true;
        acceptor_.async_accept([this](error_code ec, local::socket socket) {
            accepting_ = false;
            if (!ec) take(Call::Socket(std::move(socket)));
            else if (ec != asio::error::operation_aborted) spdlog::error("dirty accept: {}", ec.message());
            maybe_accept();
        });
    }

    void take(Call::Socket socket) {
        ucred peer{};
        socklen_t len = sizeof peer;
        if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0 || peer.uid != uid_) {
            spdlog::warn("Dirty worker refused a caller running as uid {}", peer.uid);
            return;
        }
        auto call = std::make_shared<Call>(std::move(socket));
        call->taken_ns = monotonic_ns();
        calls_.insert(call);
        ++reading_;
        read_request(call);
    }

    void read_request(const CallPtr& call) {
        std::size_t want = call->reader.next_read_size();
        char* room = call->reader.prepare(want);
        call->socket.async_read_some(asio::buffer(room, want), [this, call](error_code ec, std::size_t n) {
            if (ec) return end_unread(call);   // the caller left before it asked: nothing to run
            call->reader.commit(n);
            dirty::Header h;
            std::string_view body;
            switch (call->reader.next(h, body)) {
                case dirty::FrameReader::Next::need_more: return read_request(call);
                case dirty::FrameReader::Next::bad:
                    spdlog::warn("Dirty worker: bad frame from a caller: {}", call->reader.error());
                    return end_unread(call);
                case dirty::FrameReader::Next::frame: break;
            }
            --reading_;
            if (h.type != dirty::FrameType::request) {
                spdlog::warn("Dirty worker: a call began with frame type {}", int(h.type));
                return end_call(call);
            }
            call->id = h.id;
            call->body.assign(body);
            start(call);
        });
    }

    void end_unread(const CallPtr& call) {
        --reading_;
        end_call(call);
    }

    void start(const CallPtr& call) {
        auto request = dirty::parse_request(call->body);
        if (!request) return finish(call, error_frame(call, DirtyErrc::job_failed, "bad_request", "malformed request"));
        call->request = *request;
        call->job = jobs_.find(request->kind);
        if (!call->job) {
            std::string why = "no job kind \"" + std::string(request->kind) + "\" in this dirty worker";
            return finish(call, error_frame(call, DirtyErrc::job_failed, "unknown_kind", why));
        }
        watch_caller(call);   // a CANCEL sent right behind the request is read before the job starts
        if (call->cancelled()) return finish(call, error_frame(call, DirtyErrc::timeout, "", "cancelled before it ran"));
        call->state = Call::State::running;
        call->taken_ns = monotonic_ns();
        ++running_;
        threads_->submit([this, call] {
            CallContext context(*call, [this, call](std::string frame, std::size_t bytes) {
                asio::post(ioc_, [this, call, frame = std::move(frame), bytes]() mutable {
                    send(call, std::move(frame), bytes);
                });
            });
            Outcome outcome = run_job(*call, context);
            asio::post(ioc_, [this, call, outcome = std::move(outcome)]() mutable { job_done(call, std::move(outcome)); });
        });
    }

    // While the job runs, the connection says whether its caller still wants the result: a CANCEL
    // frame, or the connection closed (its client went away, its HTTP worker died).
    void watch_caller(const CallPtr& call) {
        dirty::Header h;
        std::string_view body;
        while (call->reader.next(h, body) == dirty::FrameReader::Next::frame)
            if (h.type == dirty::FrameType::cancel) call->set_cancelled();
        // Only CANCEL frames are expected now: what the reader's minimum holds.
        std::size_t want = call->reader.next_read_size();
        char* room = call->reader.prepare(want);
        call->socket.async_read_some(asio::buffer(room, want), [this, call](error_code ec, std::size_t n) {
            if (ec) return call->set_cancelled();
            call->reader.commit(n);
            watch_caller(call);
        });
    }

    // ---- answering ------------------------------------------------------------------------------

    void job_done(const CallPtr& call, Outcome outcome) {
        --running_;
        slot_.requests.fetch_add(1, std::memory_order_relaxed);
        std::string last;
        // A job that gave up because the caller's deadline passed failed of that, not of its own error
        // (the caller's timer may fire after ours on a busy machine: the answer must not depend on it).
        if (!outcome.code.empty() && call->past_deadline())
            last = error_frame(call, DirtyErrc::timeout, "", "the call's deadline passed");
        else if (!outcome.code.empty())
            last = error_frame(call, DirtyErrc::job_failed, outcome.code, outcome.message);
        else
            last = dirty::frame(call->request.streamed ? dirty::FrameType::end : dirty::FrameType::response, call->id,
                                outcome.value);
        finish(call, std::move(last));
        maybe_accept();
    }

    std::string error_frame(const CallPtr& call, DirtyErrc kind, std::string_view code, std::string_view message) {
        return dirty::error_frame(call->id, {kind, code, message});
    }

    void finish(const CallPtr& call, std::string last) {
        call->state = Call::State::writing;
        call->finished = true;
        send(call, std::move(last), 0);
    }

    void send(const CallPtr& call, std::string frame, std::size_t chunk_bytes) {
        if (!call->socket.is_open()) {   // the caller is gone (a write failed): drop it
            call->release(chunk_bytes);
            if (call->finished && !call->writing) end_call(call);
            return;
        }
        call->out.push_back({std::move(frame), chunk_bytes});
        if (!call->writing) write_next(call);
    }

    void write_next(const CallPtr& call) {
        call->writing = true;
        asio::async_write(call->socket, asio::buffer(call->out.front().frame), [this, call](error_code ec, std::size_t) {
            call->writing = false;
            call->release(call->out.front().chunk_bytes);
            call->out.pop_front();
            if (ec) {   // the caller is gone: nothing more reaches it
                call->set_cancelled();
                for (auto& o : call->out) call->release(o.chunk_bytes);
                call->out.clear();
                error_code ignored;
                call->socket.close(ignored);
            }
            if (!call->out.empty()) return write_next(call);
            if (call->finished) end_call(call);
        });
    }

    void end_call(const CallPtr& call) {
        error_code ignored;
        call->socket.close(ignored);   // ends the caller watch too
        calls_.erase(call);
        maybe_accept();
        maybe_exit();
    }

    // ---- the heartbeat and the master -------------------------------------------------------------

    // Stamped from this loop, but held back to the start of the oldest running job: a job past
    // dirty_timeout makes the worker look hung, and the master kills it (a thread cannot be
    // stopped from outside). Callers that sent their request too long ago are dropped here too.
    void beat() {
        std::int64_t now = monotonic_ns();
        std::int64_t stamp = now;
        std::vector<CallPtr> stale;
        for (const auto& call : calls_) {
            if (call->state == Call::State::running) stamp = std::min(stamp, call->taken_ns);
            if (call->state == Call::State::reading && now - call->taken_ns > std::chrono::nanoseconds(request_read_timeout).count())
                stale.push_back(call);
        }
        for (auto& call : stale) {
            error_code ignored;
            call->socket.close(ignored);   // its read ends, and the call with it
        }
        slot_.heartbeat_ns.store(stamp, std::memory_order_relaxed);
        slot_.connections.store(std::uint32_t(running_), std::memory_order_relaxed);
        if (::getppid() != setup_.master_pid && !draining_) {
            spdlog::info("Parent changed, shutting down: {}", setup_.master_pid);
            begin_drain("master gone");
        }
        heartbeat_.expires_after(heartbeat_interval(config_.dirty_timeout));
        heartbeat_.async_wait([this](error_code ec) { if (!ec) beat(); });
    }

    void watch_signals() {
        watch_worker_signals(signals_, {[this] { begin_drain("TERM"); }, [this] { reopen_logs(); }, [this] { ioc_.stop(); }});
    }

    void reopen_logs() {
        spdlog::info("Handling signal: usr1");
        setup_error_log(config_);
    }

    // Takes no more calls (those waiting in the backlog go to other dirty workers), finishes the
    // running ones within dirty_graceful_timeout, then tells them to stop.
    void begin_drain(const char* why) {
        if (draining_) return;
        spdlog::info("Dirty worker draining ({}), pid: {}", why, ::getpid());
        draining_ = true;
        slot_.state = std::uint32_t(WorkerState::draining);
        error_code ignored;
        acceptor_.close(ignored);
        set_proc_title(worker_title("dirty worker", config_, true));
        drain_timer_.expires_after(std::chrono::seconds(config_.dirty_graceful_timeout));
        drain_timer_.async_wait([this](error_code ec) { if (!ec) stop_jobs(); });
        maybe_exit();
    }

    void stop_jobs() {
        spdlog::warn("Dirty worker: dirty_graceful_timeout passed with {} jobs running; telling them to stop", running_);
        for (const auto& call : calls_) call->set_cancelled();
        drain_timer_.expires_after(cancel_grace);
        drain_timer_.async_wait([this](error_code ec) { if (!ec) ioc_.stop(); });
    }

    void maybe_exit() {
        if (draining_ && calls_.empty()) ioc_.stop();
    }

    // A thread still in a job cannot be joined (nor stopped): the process ends without waiting.
    int leave() {
        spdlog::info("Dirty worker exiting (pid: {})", ::getpid());
        if (running_ > 0) {
            spdlog::default_logger()->flush();
            ::_exit(0);
        }
        threads_->stop_and_join();
        return 0;
    }

    Config config_;
    WorkerSetup setup_;
    OwnedIoContext ioc_{1};            // before what is built on it: destroyed last, see ~DirtyWorker
    SharedLayout layout_;
    Scoreboard scoreboard_{layout_};
    std::unique_ptr<App> app_;         // before the memory is mapped: it declares its regions
    Slot& slot_;
    local::acceptor acceptor_;
    JobTable jobs_;
    std::unique_ptr<JobThreads> threads_;
    asio::signal_set signals_;
    asio::steady_timer heartbeat_;
    asio::steady_timer drain_timer_;
    std::set<CallPtr> calls_;          // taken and not yet answered (reading, running or writing)
    int running_ = 0;                  // on a job thread
    int reading_ = 0;                  // taken, request not read yet
    bool accepting_ = false;
    bool draining_ = false;
    uid_t uid_ = ::geteuid();          // callers must run as this user
};

}  // namespace

int run_dirty_worker(const Config& config, const WorkerSetup& setup) {
    return run_worker_process("dirty worker", config, [&] {
        DirtyWorker worker(config, setup);
        return worker.run();
    });
}

}  // namespace agente::core
