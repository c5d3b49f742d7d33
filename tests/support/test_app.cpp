// A test app linked into the core instead of the real one (binary: agente-hibrido-test), to drive
// what /health cannot: slow handlers, streams, deadlines, crashes and workers that cannot boot; and
// dirty jobs (sleep, echo, stream, crash, fail, check-cancel) called through /dirty routes.
#include <agente/app.hpp>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <unistd.h>

namespace agente {

namespace {

using namespace std::chrono;

long query_int(const Request& r, std::string_view key, long fallback) {
    std::string q(r.query());
    std::string k = std::string(key) + "=";
    auto pos = q.find(k);
    return pos == std::string::npos ? fallback : std::atol(q.c_str() + pos + k.size());
}

asio::awaitable<void> sleep_ms(long ms) {
    asio::steady_timer t(co_await asio::this_coro::executor);
    t.expires_after(milliseconds(ms));
    co_await t.async_wait(asio::use_awaitable);
}

// Appends a line to $AGENTE_TEST_EVENTS so tests can see what handlers were told.
void record(const std::string& line) {
    if (const char* path = std::getenv("AGENTE_TEST_EVENTS")) std::ofstream(path, std::ios::app) << line << "\n";
}

std::string query_text(const Request& r, std::string_view key, std::string fallback) {
    std::string q(r.query());
    std::string k = std::string(key) + "=";
    auto pos = q.find(k);
    if (pos == std::string::npos) return fallback;
    auto end = q.find('&', pos);
    return q.substr(pos + k.size(), end == std::string::npos ? std::string::npos : end - pos - k.size());
}

long monotonic_ms() {
    return long(duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count());
}

// ---- dirty jobs -----------------------------------------------------------------------------------

// Sleeps `ms` in steps, leaving early (and saying so) when the job is cancelled.
std::string sleep_job(JobContext& job) {
    long ms = std::atol(std::string(job.payload()).c_str());
    record("job sleep started " + std::to_string(::getpid()));   // a test waits on this, not on a timer
    for (long slept = 0; slept < ms; slept += 10) {
        if (job.cancelled()) {
            record("job sleep cancelled after " + std::to_string(slept) + " ms");
            throw JobError("cancelled", "told to stop");
        }
        std::this_thread::sleep_for(milliseconds(10));
    }
    return "slept " + std::to_string(ms) + " pid " + std::to_string(::getpid());
}

// "N,MS": N chunks, MS apart, each saying when it was made.
std::string stream_job(JobContext& job) {
    std::string p(job.payload());
    long n = std::atol(p.c_str()), ms = std::atol(p.c_str() + p.find(',') + 1);
    for (long i = 0; i < n && !job.cancelled(); ++i) {
        if (i) std::this_thread::sleep_for(milliseconds(ms));
        job.send_chunk("chunk " + std::to_string(i) + " at " + std::to_string(monotonic_ms()) + "\n");
    }
    return "done";
}

std::string check_cancel_job(JobContext& job) {
    record("job check_cancel started " + std::to_string(::getpid()));
    for (int i = 0; i < 3000 && !job.cancelled(); ++i) std::this_thread::sleep_for(milliseconds(10));
    record(std::string("job check_cancel ") + (job.cancelled() ? "cancelled" : "never cancelled"));
    return "checked";
}

void register_test_jobs(JobRegistry& jobs) {
    JobOptions idempotent;
    idempotent.idempotent = true;
    jobs.add("test.echo", [](JobContext& job) { return std::string(job.payload()); }, idempotent);
    jobs.add("test.pid", [](JobContext&) { return std::to_string(::getpid()); }, idempotent);
    jobs.add("test.sleep", sleep_job);
    jobs.add("test.sleep_idempotent", sleep_job, idempotent);
    // Ignores cancellation: only the master's kill after dirty_timeout ends it.
    jobs.add("test.hang", [](JobContext& job) {
        std::this_thread::sleep_for(milliseconds(std::atol(std::string(job.payload()).c_str())));
        return std::string("hung");
    });
    jobs.add("test.stream", stream_job);
    jobs.add("test.crash", [](JobContext&) -> std::string { std::abort(); });
    jobs.add("test.fail", [](JobContext&) -> std::string { throw JobError("bad_input", "the job failed on purpose"); });
    jobs.add("test.throw", [](JobContext&) -> std::string { throw std::runtime_error("boom"); });
    jobs.add("test.check_cancel", check_cancel_job);
    // Burns the CPU for `payload` microseconds (bench/dirty: blocking work, inline or in the pool).
    jobs.add("test.spin", [](JobContext& job) {
        auto until = steady_clock::now() + microseconds(std::atol(std::string(job.payload()).c_str()));
        long spins = 0;
        while (steady_clock::now() < until) ++spins;
        return std::to_string(spins);
    });
    // State loaded once lives for the process's life: a counter per dirty worker.
    auto calls = std::make_shared<std::atomic<long>>(0);
    jobs.add("test.count", [calls](JobContext&) { return std::to_string(::getpid()) + " " + std::to_string(++*calls); });
}

// The same jobs run inline, on the HTTP worker's loop (bench/dirty compares the two).
class InlineJobs final : public JobRegistry {
public:
    void add(std::string kind, JobHandler handler, JobOptions) override { jobs_[std::move(kind)] = std::move(handler); }

    Response run(const Request& r) const {
        auto it = jobs_.find(query_text(r, "kind", "test.echo"));
        if (it == jobs_.end()) return Response::error(404, "no such job");
        struct Context final : JobContext {
            std::string payload_, joined;
            std::string_view payload() const override { return payload_; }
            bool cancelled() const override { return false; }
            void send_chunk(std::string_view chunk) override { joined += chunk; }
        } context;
        context.payload_ = query_text(r, "payload", "");
        Response res;
        res.content_type = "text/plain";
        res.body = it->second(context);
        res.body.insert(0, context.joined);
        return res;
    }

private:
    std::map<std::string, JobHandler> jobs_;
};

int http_status_of(DirtyErrc e) {
    switch (e) {
        case DirtyErrc::none: return 200;
        case DirtyErrc::timeout: return 504;
        case DirtyErrc::unavailable: return 503;
        case DirtyErrc::job_failed: return 500;
        case DirtyErrc::worker_died: return 502;
        case DirtyErrc::cancelled: return 499;
    }
    return 500;
}

Response dirty_response(const DirtyResult& r) {
    if (r.ok()) {
        Response res;
        res.content_type = "text/plain";
        res.body = r.value;
        return res;
    }
    Response res = Response::json(http_status_of(r.error), "{\"error\":\"" + std::string(to_string(r.error)) +
                                                               "\",\"code\":\"" + r.code + "\"}");
    if (r.error == DirtyErrc::unavailable) res.headers.push_back({"Retry-After", "1"});
    return res;
}

// GET /dirty?kind=K&payload=P&deadline_ms=D (POST: the body is the payload): one call, its result.
asio::awaitable<void> dirty_call(DirtyClient* client, Exchange& ex) {
    if (!client) {
        co_await ex.respond(Response::error(501, "no dirty pool"));
        co_return;
    }
    const Request& r = ex.request();
    std::string kind = query_text(r, "kind", "test.echo");
    std::string payload = r.method() == "POST" ? std::string(r.body()) : query_text(r, "payload", "");
    milliseconds deadline(query_int(r, "deadline_ms", 10000));
    DirtyResult result = co_await client->call(kind, std::move(payload), deadline);
    if (result.error == DirtyErrc::cancelled) record("call cancelled " + kind);
    Response res = dirty_response(result);
    co_await ex.respond(std::move(res));
}

// GET /dirty-stream?kind=test.stream&payload=N,MS: the job's chunks written as they arrive, each
// line ending with when it was made and when it was written.
asio::awaitable<void> dirty_stream(DirtyClient* client, Exchange& ex) {
    const Request& r = ex.request();
    std::string kind = query_text(r, "kind", "test.stream");
    std::string payload = query_text(r, "payload", "3,100");
    milliseconds deadline(query_int(r, "deadline_ms", 10000));
    co_await ex.start_stream(200, "text/plain");
    DirtyClient::ChunkHandler on_chunk = [&ex](std::string_view chunk) -> asio::awaitable<bool> {
        std::string line(chunk.substr(0, chunk.size() - 1));
        line += " sent " + std::to_string(monotonic_ms()) + "\n";
        error_code ec = co_await ex.write(line);
        co_return !ec;
    };
    DirtyResult result = co_await client->stream(kind, std::move(payload), deadline, on_chunk);
    std::string last = "end " + std::string(to_string(result.error)) + " " + result.value + result.code + "\n";
    co_await ex.finish(last);
}

class TestApp final : public App {
public:
    void register_jobs(JobRegistry& jobs, const Config&) override {
        if (const char* f = std::getenv("AGENTE_TEST_DIRTY_BOOT_FAIL_FILE"); f && ::access(f, F_OK) == 0)
            throw std::runtime_error("test app told to fail its dirty boot");
        if (const char* ms = std::getenv("AGENTE_TEST_DIRTY_BOOT_DELAY_MS"))   // a slow model load
            std::this_thread::sleep_for(std::chrono::milliseconds(std::atol(ms)));
        record("dirty boot " + std::to_string(::getpid()));
        register_test_jobs(jobs);
    }

    void register_routes(Router& router, WorkerContext& context) override {
        DirtyClient* client = context.dirty;
        router.add("GET", "/dirty", AsyncHandler([client](Exchange& ex) { return dirty_call(client, ex); }));
        router.add("POST", "/dirty", AsyncHandler([client](Exchange& ex) { return dirty_call(client, ex); }));
        router.add("GET", "/dirty-stream", AsyncHandler([client](Exchange& ex) { return dirty_stream(client, ex); }));
        auto inline_jobs = std::make_shared<InlineJobs>();
        register_test_jobs(*inline_jobs);
        router.add("GET", "/inline", SyncHandler([inline_jobs](const Request& r) { return inline_jobs->run(r); }));
        if (const char* f = std::getenv("AGENTE_TEST_BOOT_FAIL_FILE"); f && ::access(f, F_OK) == 0)
            throw std::runtime_error("test app told to fail at boot");
        router.add("GET", "/slow", AsyncHandler([](Exchange& ex) -> asio::awaitable<void> {
            long ms = query_int(ex.request(), "ms", 500);
            try {
                co_await sleep_ms(ms);
            } catch (...) {
                record("slow stopped " + std::to_string(int(ex.stop_reason())));
                throw;
            }
            co_await ex.respond(Response::json(200, "{\"slept_ms\":" + std::to_string(ms) + ",\"pid\":" +
                                                        std::to_string(::getpid()) + "}"));
        }));
        router.add("GET", "/stream", AsyncHandler([](Exchange& ex) -> asio::awaitable<void> {
            long n = query_int(ex.request(), "n", 5), ms = query_int(ex.request(), "ms", 100);
            ex.on_stop([](StopReason why) { return "event: end\ndata: " + std::to_string(int(why)) + "\n\n"; });
            co_await ex.start_stream(200, "text/event-stream");
            long fail = query_int(ex.request(), "fail", 0);
            if (fail == 2) throw 42;  // not a std::exception
            if (fail) throw std::runtime_error("failed before the first chunk");
            for (long i = 0; i < n; ++i) {
                co_await ex.write("data: " + std::to_string(i) + "\n\n");
                co_await sleep_ms(ms);
            }
            co_await ex.write("data: [DONE]\n\n");
            co_await ex.finish();
        }));
        // A stream whose big chunk the client does not read in time: the write loses a race to a
        // timer, and the handler finishes the stream anyway (as the agent's routes do when a
        // cancellation wins). Nothing may follow the part of the chunk already on the wire.
        router.add("GET", "/stream-race", AsyncHandler([](Exchange& ex) -> asio::awaitable<void> {
            using namespace asio::experimental::awaitable_operators;
            std::string big(std::size_t(query_int(ex.request(), "size", 16 << 20)), 'x');
            co_await ex.start_stream(200, "text/event-stream");
            auto write = ex.write(big);
            auto timer = sleep_ms(query_int(ex.request(), "ms", 300));
            auto raced = co_await (std::move(write) || std::move(timer));
            record("raced " + std::to_string(raced.index()));
            auto finished = co_await ex.finish("data: end\n\n");
            record("finished " + finished.message());
        }));
        RouteOptions deadline;
        deadline.deadline = milliseconds(300);
        deadline.on_stop = [](const Request&, StopReason why) {
            return Response::error(why == StopReason::deadline ? 408 : 503, "stopped");
        };
        // late=1: the handler catches the stop and answers anyway, as the agent's routes answer a
        // store call that failed; late=2 the same in a stream it started. Awaiting anything after a
        // stop throws, so the core must still give the route's stop answer, or end the stream.
        router.add("GET", "/deadline", AsyncHandler([](Exchange& ex) -> asio::awaitable<void> {
            long late = query_int(ex.request(), "late", 0);
            if (late == 2) co_await ex.start_stream(200, "text/event-stream");
            bool stopped = false;
            try {
                co_await sleep_ms(query_int(ex.request(), "ms", 2000));
            } catch (const std::exception&) {
                if (!late) throw;
                stopped = true;   // no co_await in a handler block
            }
            if (stopped && late == 2) {
                co_await ex.finish("data: late\n\n");
                co_return;
            }
            Response answer = Response::json(200, "{}");   // named: g++ 12 and temporaries in co_await
            if (stopped) answer.status = 500;
            co_await ex.respond(std::move(answer));
        }), deadline);
        router.add("POST", "/echo", SyncHandler([](const Request& r) {
            Response res;
            res.content_type = "application/octet-stream";
            res.body = std::string(r.body());
            return res;
        }));
        router.add("GET", "/items/{id}", SyncHandler([](const Request& r) {
            return Response::json(200, "{\"id\":\"" + std::string(r.path_param()) + "\",\"remote\":\"" +
                                           std::string(r.remote_addr()) + "\",\"scheme\":\"" +
                                           std::string(r.scheme()) + "\",\"host\":\"" +
                                           std::string(r.header("Host")) + "\",\"query\":\"" +
                                           std::string(r.query()) + "\"}");
        }));
        router.add("GET", "/crash", SyncHandler([](const Request&) -> Response { std::abort(); }));
        router.add("GET", "/throw", SyncHandler([](const Request&) -> Response { throw std::runtime_error("boom"); }));
    }
};

}  // namespace

void register_app_sections() {}
std::unique_ptr<App> make_app() { return std::make_unique<TestApp>(); }

}  // namespace agente
