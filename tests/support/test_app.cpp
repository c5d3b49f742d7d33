// A test app linked into the core instead of the real one (binary: agente-hibrido-test), to drive
// what /health cannot: slow handlers, streams, deadlines, crashes and workers that cannot boot.
#include <agente/app.hpp>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdlib>
#include <fstream>
#include <string>
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

class TestApp final : public App {
public:
    void register_routes(Router& router, WorkerContext&) override {
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
        router.add("GET", "/deadline", AsyncHandler([](Exchange& ex) -> asio::awaitable<void> {
            co_await sleep_ms(query_int(ex.request(), "ms", 2000));
            co_await ex.respond(Response::json(200, "{}"));
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

std::size_t app_shared_size() { return 4096; }
void register_app_sections() {}
std::unique_ptr<App> make_app() { return std::make_unique<TestApp>(); }

}  // namespace agente
