// The one attempt loop. A failed attempt (counts_against_provider) counts against its provider's
// breaker; once the receiver has something there is no retry and no fallback. At loglevel debug,
// each retry, fallback and skipped target is told; breaker transitions at info and above.
#include "app/gateway/attempts.hpp"

#include "app/cluster/redis_link.hpp"
#include "app/common/ascii.hpp"
#include "app/gateway/sse.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <array>

namespace agente::gateway {

namespace {

using Clock = std::chrono::steady_clock;

// What an attempt leaves the loop to do.
enum class Next { done, retry, fallback };

struct Attempts {
    Gateway& gw;
    const UpstreamRequest& req;
    Receiver& rx;
    Failure last;

    // Counts the failure against the provider and keeps it for the final answer.
    void failed(Breaker& breaker, const ProviderSettings& p, int n, int status, CallError e, std::string retry_after = {}) {
        BreakerChange change = breaker.record_failure();
        last = Failure{status, e, std::move(retry_after), p.name, true};
        if (status)
            spdlog::warn("gateway: {} attempt {} for model {}: upstream status {}", p.name, n + 1, req.model->name, status);
        else
            spdlog::warn("gateway: {} attempt {} for model {}: {}", p.name, n + 1, req.model->name, call_error_name(e));
        log_change(change, breaker, p);
    }

    // The provider answered: a 2xx, or a 4xx that is the client's own doing (not counted).
    void answered(Breaker& breaker, const ProviderSettings& p, int status) {
        if (status >= 400)
            spdlog::debug("gateway: {} answered {} for model {}: the request was refused, the provider works", p.name,
                          status, req.model->name);
        log_change(breaker.record_success(), breaker, p);
    }

    void log_change(BreakerChange change, const Breaker& breaker, const ProviderSettings& p) const {
        long cooldown_s = long(gw.settings.circuit_breaker_cooldown.count() / 1000);
        switch (change) {
        case BreakerChange::opened:
            spdlog::warn("gateway: circuit breaker {} opened after {} consecutive failures; {} s until a probe", p.name,
                         breaker.failures(), cooldown_s);
            break;
        case BreakerChange::reopened:
            spdlog::warn("gateway: circuit breaker {} re-opened: the half-open probe failed; {} s until the next", p.name,
                         cooldown_s);
            break;
        case BreakerChange::closed: spdlog::info("gateway: circuit breaker {} closed: the provider answered", p.name); break;
        case BreakerChange::none: return;
        }
        if (gw.cluster) gw.cluster->breaker_changed(p.name, change);   // the other machines open theirs
    }

    // The upstream's usage, counted against the target and kept for the caller (client key limits).
    // `capacity`: as usage_of()'s.
    void note_usage(std::string_view json, AttemptMeter& meter, std::size_t capacity = 0) {
        auto u = usage_of(json, capacity);
        if (!u) return;
        meter.tokens(*u);
        rx.usage += *u;
    }

    // A whole answer read to its end, or not: counted; false when the read failed (the next target).
    bool whole_read(UpstreamCall& call, Breaker& breaker, const ProviderSettings& p, int n, AttemptMeter& meter,
                    CallError e, const std::string& body) {
        if (e != CallError::none) {
            failed(breaker, p, n, 0, e);
            meter.end(outcome_of(0, e));
            return false;
        }
        answered(breaker, p, call.status());
        if (call.status() < 300) note_usage(body, meter, body.capacity());
        meter.end(outcome_of(call.status(), CallError::none));
        return true;
    }

    asio::awaitable<Next> stream(UpstreamCall& call, Breaker& breaker, const ProviderSettings& p, int n, AttemptMeter& meter) {
        SseSplitter sse;   // its events are views, valid until it is fed the next piece
        std::string piece;
        std::string joined;   // an event's data lines, when it has several (event_data())
        bool silence = false;
        auto t0 = Clock::now();
        while (co_await call.read_some(piece, gw.settings.stream_keepalive, silence)) {
            if (!rx.started()) rx.upstream_time += Clock::now() - t0;
            if (silence) {
                bool there = co_await rx.silence();
                if (!there) {
                    meter.end(Outcome::cancelled);
                    co_return Next::done;
                }
                continue;
            }
            const std::vector<std::string_view>& events = sse.feed(piece);
            for (std::string_view event : events)   // the usage comes in the last chunk, if at all
                if (mentions_usage(event)) note_usage(event_data(event, joined), meter);
            if (!events.empty()) {
                error_code gone = co_await rx.events(events, call.body_done());
                if (gone) {   // the receiver left
                    meter.end(Outcome::cancelled);
                    co_return Next::done;
                }
            }
            t0 = Clock::now();
        }
        if (call.error() != CallError::none) {
            failed(breaker, p, n, 0, call.error());
            meter.end(outcome_of(0, call.error()));
            if (!rx.started()) co_return Next::fallback;
            co_await rx.stream_broken(last);
            co_return Next::done;
        }
        answered(breaker, p, call.status());
        meter.end(outcome_of(call.status(), CallError::none));
        co_await rx.end_stream();
        co_return Next::done;
    }

    asio::awaitable<Next> attempt(const ProviderSettings& p, const Target& target, std::string_view body, int n) {
        AttemptMeter meter(gw.cells_of(*req.model, target));
        Breaker& breaker = gw.breaker_of(p);
        CallTimeouts t{p.connect_timeout, p.first_byte_timeout, req.body->stream() ? gw.settings.stream_timeout : p.total_timeout};
        UpstreamCall call(*gw.pool, p.endpoint, t);
        auto headers = upstream_headers(p);   // named: g++ 12 mishandles temporaries in co_await
        auto t0 = Clock::now();
        CallError e = co_await call.send("POST", req.path, headers, body);
        rx.upstream_time += Clock::now() - t0;
        if (e != CallError::none) {
            failed(breaker, p, n, 0, e);
            meter.end(outcome_of(0, e));
            co_return e == CallError::connect ? Next::retry : Next::fallback;
        }
        meter.first_byte();
        int status = call.status();
        if (counts_against_provider(status, CallError::none)) {
            failed(breaker, p, n, status, CallError::none, call.retry_after());
            meter.end(outcome_of(status, CallError::none));
            co_return Next::retry;
        }
        // A 2xx to a stream request is relayed event by event. Anything else goes back whole, as it
        // came: a 4xx that is the client's own doing, and plain JSON to a stream request (an upstream
        // that cannot stream: the SSE splitter would find no event in it and pass nothing on).
        if (status < 300 && req.body->stream() && !app::istarts_with(call.content_type(), "application/json"))
            co_return co_await stream(call, breaker, p, n, meter);
        // A whole answer, read in this frame (a coroutine of its own cost every request a frame).
        std::string answer;
        t0 = Clock::now();
        CallError read = CallError::none;
        if (!call.take_body(answer)) read = co_await call.read_all(answer);
        rx.upstream_time += Clock::now() - t0;
        if (!whole_read(call, breaker, p, n, meter, read, answer)) co_return Next::fallback;
        std::string content_type = call.take_content_type();
        co_await rx.whole(call.status(), answer, content_type);
        co_return Next::done;
    }

    // The request's header lines, in pieces of strings that outlive the call: building them into
    // one string cost an allocation per request.
    std::array<std::string_view, 4> upstream_headers(const ProviderSettings& p) const {
        std::string_view accept = req.body->stream() ? "Content-Type: application/json\r\nAccept: text/event-stream\r\n"
                                                     : "Content-Type: application/json\r\nAccept: application/json\r\n";
        if (p.api_key.empty()) return {accept, {}, {}, {}};
        return {accept, "Authorization: Bearer ", p.api_key, "\r\n"};
    }
};

asio::awaitable<void> sleep_for(milliseconds d) {
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    co_await t.async_wait(asio::use_awaitable);
}

}  // namespace

bool counts_against_provider(int status, CallError error) {
    return error != CallError::none || status == 429 || status >= 500;
}

int failure_status(const Failure& f) {
    if (!f.attempted) return 503;
    if (f.status == 429) return 429;
    if (f.error == CallError::timeout) return 504;
    return 502;
}

std::string failure_message(const Failure& f) {
    if (!f.attempted) return "circuit breaker open for every provider of this model";
    if (f.status == 429) return "upstream rate limit reached";
    if (f.error == CallError::timeout) return "upstream timed out";
    if (f.status) return "upstream answered " + std::to_string(f.status);
    return "upstream " + std::string(call_error_name(f.error));
}

std::string broken_stream_message(const Failure& f) {
    return f.error == CallError::timeout ? "upstream stream timed out" : "upstream connection lost mid-stream";
}

asio::awaitable<void> try_targets(Gateway& gw, UpstreamRequest req, Receiver& rx) {
    Attempts a{gw, req, rx, {}};
    const std::string* previous = nullptr;   // the provider of the target that failed last
    UpstreamCounters* previous_cells = nullptr;
    for (const Target& target : req.model->targets) {
        const ProviderSettings* p = gw.settings.provider(target.provider);
        if (!p) continue;
        UpstreamCounters* cells = gw.cells_of(*req.model, target);
        if (previous) spdlog::debug("gateway: model {}: falling back from {} to {}", req.model->name, *previous, p->name);
        if (previous_cells) bump(previous_cells->fallbacks);
        previous = &p->name;
        previous_cells = cells;
        std::string rewritten;
        std::string_view body = req.body->with_model(target.model_json, p->stream_include_usage, rewritten);
        for (int n = 0; n <= gw.settings.retries; ++n) {
            Breaker& breaker = gw.breaker_of(*p);
            bool half_open = breaker.state() == BreakerState::half_open;
            if (!breaker.allow()) {   // open: straight to the fallback
                spdlog::debug("gateway: model {}: {} skipped, its circuit breaker is open", req.model->name, p->name);
                if (cells) bump(cells->skipped);
                break;
            }
            if (half_open) spdlog::debug("gateway: circuit breaker {} half-open: this request is the probe", p->name);
            if (n > 0) {
                if (cells) bump(cells->retries);
                milliseconds backoff = gw.settings.retry_backoff * (1 << (n - 1));
                spdlog::debug("gateway: model {}: retrying {} in {} ms (attempt {} of {})", req.model->name, p->name,
                              backoff.count(), n + 1, gw.settings.retries + 1);
                auto t0 = Clock::now();
                co_await sleep_for(backoff);
                rx.upstream_time += Clock::now() - t0;
            }
            Next next = co_await a.attempt(*p, target, body, n);
            if (next == Next::done) co_return;
            if (next == Next::fallback) break;
        }
    }
    co_await rx.failed(a.last);
}

}  // namespace agente::gateway
