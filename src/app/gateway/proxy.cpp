// The relay to an HTTP client. Its stream begins with the first upstream event or keep-alive
// comment; the overhead header is stamped just before the first byte goes out.
#include "app/gateway/proxy.hpp"

#include "app/gateway/errors.hpp"
#include "app/gateway/sse.hpp"
#include "app/gateway/usage.hpp"

#include <algorithm>
#include <charconv>

namespace agente::gateway {

namespace {

using Clock = std::chrono::steady_clock;

// The stream's last event when the upstream broke it after the first byte.
std::string broken_stream_event(const Failure& f) {
    return error_event(broken_stream_message(f), f.error == CallError::timeout ? "upstream_timeout" : "upstream_error");
}

class ExchangeReceiver final : public Receiver {
public:
    // `wants_usage`: the client asked for the usage chunk; otherwise the one the gateway asked for on
    // its behalf is not passed on, and the client gets the stream OpenAI would send it.
    ExchangeReceiver(Exchange& ex, bool wants_usage) : ex_(ex), wants_usage_(wants_usage) {}

    asio::awaitable<void> whole(int status, std::string& body, const std::string& content_type) override {
        Response r = Response::json(status, std::move(body));
        if (!content_type.empty()) r.content_type = content_type;
        note_overhead();
        co_await ex_.respond(std::move(r));
    }

    // Events that came in one read leave in one send; with the upstream's end, the end of the
    // client's body too (and the [DONE] the upstream left out).
    asio::awaitable<bool> events(const std::vector<std::string>& texts, bool last) override {
        batch_.clear();
        for (const auto& text : texts) {
            std::string data = event_data(text);   // once, for both questions: a copy of the chunk
            done_seen_ = done_seen_ || data == "[DONE]";
            if (wants_usage_) batch_ += text;
            else if (!is_usage_chunk(data)) append_without_null_usage(batch_, text);
        }
        if (batch_.empty() && !last) co_return true;   // an empty write would end a chunked body
        if (last) batch_ += missing_done();
        done_seen_ = done_seen_ || last;
        error_code ec = co_await start_stream();
        if (ec) co_return false;
        if (last) ec = co_await ex_.finish(batch_);
        else ec = co_await ex_.write(batch_);
        co_return !ec;
    }

    asio::awaitable<bool> silence() override {
        error_code ec = co_await start_stream();
        if (!ec) ec = co_await ex_.write(keepalive_comment);
        co_return !ec;
    }

    asio::awaitable<void> end_stream() override {
        error_code ec = co_await start_stream();
        if (ec) co_return;
        co_await ex_.finish(missing_done());
    }

    asio::awaitable<void> stream_broken(const Failure& f) override { co_await ex_.finish(broken_stream_event(f)); }

    asio::awaitable<void> failed(const Failure& f) override {
        Response r = error_response(failure_status(f), failure_message(f));
        if (f.status == 429 && !f.retry_after.empty()) r.headers.push_back({"Retry-After", f.retry_after});
        note_overhead();
        co_await ex_.respond(std::move(r));
    }

    bool started() const override { return ex_.started(); }

private:
    // Time in the gateway, upstream waits excluded (LiteLLM's x-litellm-overhead-duration-ms).
    void note_overhead() {
        using std::chrono::microseconds;
        auto us = std::chrono::duration_cast<microseconds>(Clock::now() - ex_.received_at() - upstream_time).count();
        us = std::max<decltype(us)>(us, 0);
        // Milliseconds with 3 decimals from integers: snprintf's "%.3f" (locale, float formatting)
        // was ~2k instructions of a ~60k-instruction request, to_chars of a double ~900.
        char text[32];
        char* end = std::to_chars(text, text + 20, us / 1000).ptr;
        *end++ = '.';
        for (int unit = 100; unit > 0; unit /= 10) *end++ = char('0' + us / unit % 10);
        ex_.add_header("x-agente-overhead-duration-ms", std::string(text, end));
    }

    // From here on, no fallback. An error: the client left. (The callers keep co_await out of
    // conditions: g++ 12 miscompiles `if (co_await ...)` in these member coroutines.)
    asio::awaitable<error_code> start_stream() {
        if (ex_.started()) co_return error_code{};
        note_overhead();
        error_code ec = co_await ex_.start_stream(200, "text/event-stream", stream_headers());
        co_return ec;
    }

    static constexpr std::string_view done_event = "data: [DONE]\n\n";

    // What the client still needs to see the stream end as OpenAI ends it.
    std::string_view missing_done() const { return done_seen_ ? std::string_view() : done_event; }

    Exchange& ex_;
    bool wants_usage_;
    std::string batch_;
    bool done_seen_ = false;
};

}  // namespace

asio::awaitable<TokenUsage> proxy(Gateway& gw, Exchange& ex, UpstreamRequest req) {
    ExchangeReceiver rx(ex, req.body->wants_usage());
    co_await try_targets(gw, std::move(req), rx);
    co_return rx.usage;
}

}  // namespace agente::gateway
