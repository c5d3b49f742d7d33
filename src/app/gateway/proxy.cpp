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

constexpr std::string_view done_event = "data: [DONE]\n\n";

// The answer when every target failed (a plain function: g++ 12 miscompiles braced lists in
// coroutine bodies).
Response failure_response(const Failure& f) {
    Response r = error_response(failure_status(f), failure_message(f));
    if (f.status == 429 && !f.retry_after.empty()) r.headers.push_back({"Retry-After", f.retry_after});
    return r;
}

}  // namespace

// The upstream's content type is moved in: a Response made first would allocate its default
// "application/json" (a character past the string's own room) only to drop it.
asio::awaitable<error_code> ClientRelay::whole(int status, std::string& body, std::string& content_type) {
    Response r = content_type.empty() ? Response::json(status, std::move(body))
                                      : Response{.status = status,
                                                 .content_type = std::move(content_type),
                                                 .headers = {},
                                                 .body = std::move(body)};
    note_overhead();
    return ex_.respond(std::move(r));
}

// Events that came in one read leave in one send; with the upstream's end, the end of the client's
// body too (and the [DONE] the upstream left out). Not a coroutine once the stream started: the
// chunk write's is handed over, no frame of its own for every event.
asio::awaitable<error_code> ClientRelay::events(std::span<const std::string_view> texts, bool last) {
    std::size_t room = done_event.size();   // one allocation for the batch, not one per growth
    for (std::string_view text : texts) room += text.size();
    batch_.clear();
    batch_.reserve(room);
    for (std::string_view text : texts) {
        std::string_view data = event_data(text, joined_);   // once, for both questions
        done_seen_ = done_seen_ || data == "[DONE]";
        if (wants_usage_) batch_ += text;
        else if (!is_usage_chunk(data)) append_without_null_usage(batch_, text);
    }
    if (batch_.empty() && !last) return at_once(error_code{});   // an empty write would end a chunked body
    if (last) batch_ += missing_done();
    done_seen_ = done_seen_ || last;
    if (!ex_.started()) return start_and_send_batch(last);
    return send_batch(last);
}

asio::awaitable<error_code> ClientRelay::send_batch(bool last) { return last ? ex_.finish(batch_) : ex_.write(batch_); }

asio::awaitable<error_code> ClientRelay::start_and_send_batch(bool last) {
    error_code ec = co_await start_stream();
    if (ec) co_return ec;
    co_return co_await send_batch(last);
}

asio::awaitable<bool> ClientRelay::silence() {
    error_code ec;
    if (!ex_.started()) ec = co_await start_stream();
    if (!ec) ec = co_await ex_.write(keepalive_comment);
    co_return !ec;
}

asio::awaitable<void> ClientRelay::end_stream() {
    error_code ec;
    if (!ex_.started()) ec = co_await start_stream();
    if (ec) co_return;
    co_await ex_.finish(missing_done());
}

asio::awaitable<void> ClientRelay::stream_broken(const Failure& f) {
    std::string last = broken_stream_event(f);   // named: g++ 12 and temporaries in co_await
    co_await ex_.finish(last);
}

asio::awaitable<void> ClientRelay::failed(const Failure& f) {
    Response r = failure_response(f);
    note_overhead();
    co_await ex_.respond(std::move(r));
}

// Time in the gateway, upstream waits excluded (LiteLLM's x-litellm-overhead-duration-ms).
void ClientRelay::note_overhead() {
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

// From here on, no fallback. An error: the client left. Called only before the stream started (a
// coroutine frame per event otherwise). (The callers keep co_await out of conditions: g++ 12
// miscompiles `if (co_await ...)` in these member coroutines.)
asio::awaitable<error_code> ClientRelay::start_stream() {
    note_overhead();
    std::string content_type = "text/event-stream";   // named: g++ 12 and temporaries in co_await
    error_code ec = co_await ex_.start_stream(200, std::move(content_type));
    co_return ec;
}

// What the client still needs to see the stream end as OpenAI ends it.
std::string_view ClientRelay::missing_done() const { return done_seen_ ? std::string_view() : done_event; }

}  // namespace agente::gateway
