// The attempt loop and the SSE relay. A failed attempt always counts against its provider's breaker;
// once a byte has gone to the client there is no retry and no fallback, only an explicit error event.
#include "app/gateway/proxy.hpp"

#include "app/gateway/errors.hpp"
#include "app/gateway/sse.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>

namespace agente::gateway {

namespace {

using Clock = std::chrono::steady_clock;

// How the last attempt failed, for the answer when every target failed.
struct Failure {
    int status = 0;                 // an upstream 429/5xx status, 0 for transport errors
    CallError error = CallError::none;
    std::string retry_after;
    bool attempted = false;         // false: every target was skipped by an open breaker
};

enum class Result { delivered, failed, retry };

// One request's bookkeeping: time spent waiting on upstreams, for the overhead header.
struct Attempts {
    Gateway& gw;
    Exchange& ex;
    const ProxyRequest& req;
    Clock::duration upstream_time{};
    Failure last;

    void note_overhead() {
        auto total = Clock::now() - ex.received_at();
        double ms = std::chrono::duration<double, std::milli>(total - upstream_time).count();
        char text[32];
        std::snprintf(text, sizeof text, "%.3f", ms < 0 ? 0.0 : ms);
        ex.add_header("x-agente-overhead-duration-ms", text);
    }
};

asio::awaitable<void> sleep_for(milliseconds d) {
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    co_await t.async_wait(asio::use_awaitable);
}

std::vector<Header> upstream_headers(const ProviderSettings& p, bool stream) {
    std::vector<Header> h{{"Content-Type", "application/json"},
                          {"Accept", stream ? "text/event-stream" : "application/json"}};
    if (!p.api_key.empty()) h.push_back({"Authorization", "Bearer " + p.api_key});
    return h;
}

bool retryable(int status) { return status == 429 || status >= 500; }

void log_failure(const ProviderSettings& p, const ProxyRequest& req, int attempt, const Failure& f) {
    if (f.status)
        spdlog::warn("gateway: {} attempt {} for model {}: upstream status {}", p.name, attempt + 1, req.model->name, f.status);
    else
        spdlog::warn("gateway: {} attempt {} for model {}: {}", p.name, attempt + 1, req.model->name,
                        call_error_name(f.error));
}

// A whole answer: read the body, hand it on with the upstream's status.
asio::awaitable<Result> relay_whole(Attempts& a, UpstreamCall& call, Breaker& breaker) {
    auto t0 = Clock::now();
    std::string body;
    CallError e = co_await call.read_all(body);
    a.upstream_time += Clock::now() - t0;
    if (e != CallError::none) {
        breaker.record_failure();
        a.last = {0, e, {}, true};
        co_return Result::failed;
    }
    breaker.record_success();
    Response r = Response::json(call.status(), std::move(body));
    if (auto ct = call.header("Content-Type"); !ct.empty()) r.content_type = ct;
    a.note_overhead();
    co_await a.ex.respond(std::move(r));
    co_return Result::delivered;
}

std::vector<Header> sse_headers() {
    std::vector<Header> h;
    h.push_back({"Cache-Control", "no-cache"});
    h.push_back({"X-Accel-Buffering", "no"});  // nginx in front: do not buffer the stream
    return h;
}

// The client's stream begins with the first event or keep-alive tick; from here on no fallback.
asio::awaitable<error_code> start_stream(Attempts& a) {
    if (a.ex.started()) co_return error_code{};
    a.note_overhead();
    co_return co_await a.ex.start_stream(200, "text/event-stream", sse_headers());
}

// An SSE answer, event by event as each arrives. Until the first byte reaches the client a failure
// may still fall back; after it, the stream ends with an error event.
asio::awaitable<Result> relay_stream(Attempts& a, UpstreamCall& call, Breaker& breaker) {
    Exchange& ex = a.ex;
    SseSplitter sse;
    bool done_seen = false;
    std::string piece;
    bool silence = false;
    auto t0 = Clock::now();
    while (co_await call.read_some(piece, a.gw.settings.stream_keepalive, silence)) {
        if (!ex.started()) a.upstream_time += Clock::now() - t0;
        if (silence) {
            if (co_await start_stream(a) || co_await ex.write(keepalive_comment)) co_return Result::delivered;
            continue;
        }
        for (auto& event : sse.feed(piece)) {
            done_seen = done_seen || is_done_event(event);
            if (co_await start_stream(a) || co_await ex.write(event)) co_return Result::delivered;  // the client left
        }
        t0 = Clock::now();
    }
    if (call.error() != CallError::none) {
        breaker.record_failure();
        a.last = {0, call.error(), {}, true};
        if (!ex.started()) co_return Result::failed;
        bool timeout = call.error() == CallError::timeout;
        co_await ex.write(error_event(timeout ? "upstream stream timed out" : "upstream connection lost mid-stream",
                                      timeout ? "upstream_timeout" : "upstream_error"));
        co_await ex.finish();
        co_return Result::delivered;
    }
    breaker.record_success();
    if (co_await start_stream(a)) co_return Result::delivered;
    if (!done_seen) co_await ex.write("data: [DONE]\n\n");
    co_await ex.finish();
    co_return Result::delivered;
}

// One attempt against one target.
asio::awaitable<Result> attempt(Attempts& a, const ProviderSettings& p, const std::string& body, int n) {
    Breaker& breaker = a.gw.breaker_of(p);
    CallTimeouts t{p.connect_timeout, p.first_byte_timeout, a.req.stream ? a.gw.settings.stream_timeout : p.total_timeout};
    UpstreamCall call(*a.gw.pool, p.endpoint, t);
    auto t0 = Clock::now();
    CallError e = co_await call.send("POST", a.req.path, upstream_headers(p, a.req.stream), body);
    a.upstream_time += Clock::now() - t0;
    if (e != CallError::none) {
        breaker.record_failure();
        a.last = {0, e, {}, true};
        log_failure(p, a.req, n, a.last);
        co_return e == CallError::connect ? Result::retry : Result::failed;
    }
    int status = call.status();
    if (retryable(status)) {
        breaker.record_failure();
        a.last = {status, CallError::none, call.header("Retry-After"), true};
        log_failure(p, a.req, n, a.last);
        co_return Result::retry;
    }
    // 2xx, or a 4xx that is the client's own doing: the provider works, the answer goes back as is.
    if (status >= 300 || !a.req.stream) co_return co_await relay_whole(a, call, breaker);
    co_return co_await relay_stream(a, call, breaker);
}

Response final_error(const Failure& f) {
    if (!f.attempted) return error_response(503, "circuit breaker open for every provider of this model");
    if (f.status == 429) {
        Response r = error_response(429, "upstream rate limit reached");
        if (!f.retry_after.empty()) r.headers.push_back({"Retry-After", f.retry_after});
        return r;
    }
    if (f.error == CallError::timeout) return error_response(504, "upstream timed out");
    if (f.status) return error_response(502, "upstream answered " + std::to_string(f.status));
    return error_response(502, std::string("upstream ") + std::string(call_error_name(f.error)));
}

}  // namespace

asio::awaitable<void> proxy(Gateway& gw, Exchange& ex, ProxyRequest req) {
    Attempts a{gw, ex, req, {}, {}};
    for (const Target& target : req.model->targets) {
        const ProviderSettings& p = *gw.settings.provider(target.provider);
        (*req.body)["model"] = target.model;
        std::string body = req.body->dump();
        for (int n = 0; n <= gw.settings.retries; ++n) {
            if (!gw.breaker_of(p).allow()) break;   // open: straight to the fallback
            if (n > 0) {
                auto t0 = Clock::now();
                co_await sleep_for(gw.settings.retry_backoff * (1 << (n - 1)));
                a.upstream_time += Clock::now() - t0;
            }
            Result r = co_await attempt(a, p, body, n);
            if (r == Result::delivered) co_return;
            if (r == Result::failed) break;
        }
    }
    a.note_overhead();
    co_await ex.respond(final_error(a.last));
}

}  // namespace agente::gateway
