// How one request is tried upstream, for every caller: the model's targets in order, each provider's
// breaker consulted, retries with backoff before anything reached the receiver, every failed attempt
// counted against its provider, a streamed answer read event by event. Where an answer goes is the
// Receiver's business: relayed to an HTTP client (proxy.cpp) or turned into text for code inside the
// server (completion.cpp).
#pragma once

#include "app/gateway/gateway.hpp"
#include "app/gateway/request_body.hpp"

#include <chrono>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace agente::gateway {

// How the last attempt failed, for the answer when every target failed.
struct Failure {
    int status = 0;                 // an upstream 429/5xx status, 0 for transport errors
    CallError error = CallError::none;
    std::string retry_after;
    std::string provider;
    bool attempted = false;         // false: every target was skipped by an open breaker
};

// Whether an attempt that ended so counts against its provider's breaker: every transport failure
// (connect, timeout, a connection lost or closed before the answer, a bad HTTP answer, a refused
// certificate), every 5xx, and 429. Any other answer, a 4xx among them, shows the provider working:
// a client whose request the provider refuses must not open the breaker for every other client.
// 429 counts: the limit is on the gateway's account, which every client shares, so the next client
// would be refused too, and another target should be tried. (docs/gateway.md, "Breakers")
bool counts_against_provider(int status, CallError error);

// The status the client gets for it: 503 every breaker open, 429 rate limited, 504 timed out, 502
// otherwise; and what to tell it.
int failure_status(const Failure& f);
std::string failure_message(const Failure& f);
// What ended a stream that broke after started().
std::string broken_stream_message(const Failure& f);

// Where an upstream answer goes. Once started() is true, nothing is retried and nothing falls back:
// a failure can only end what the receiver already has.
class Receiver {
public:
    virtual ~Receiver() = default;
    // A whole answer read to its end: not streamed, or a status that is the client's own doing. The
    // body and the content type ("" when the upstream sent none) are the receiver's to move from.
    // An error: it did not reach the receiver's reader (the client left); nothing is retried either
    // way. (An error_code rather than void: the relay to a client hands over its response write's
    // awaitable, and needs no coroutine of its own.)
    virtual asio::awaitable<error_code> whole(int status, std::string& body, std::string& content_type) = 0;
    // The events of a streamed answer that arrived together, the moment the blank line of the last
    // one arrived; `last`: the upstream's body ended with them. An error: the receiver left. (An
    // error_code, as whole()'s: the relay to a client hands over its chunk write's awaitable, no
    // coroutine of its own for every event.)
    virtual asio::awaitable<error_code> events(std::span<const std::string_view> texts, bool last) = 0;
    // The upstream said nothing for stream_keepalive; false: the receiver left.
    virtual asio::awaitable<bool> silence() = 0;
    // The upstream ended its stream (after events(..., true) too, when the end came with them).
    virtual asio::awaitable<void> end_stream() = 0;
    // The stream broke after started(): `f` says how.
    virtual asio::awaitable<void> stream_broken(const Failure& f) = 0;
    // Every target failed, or was skipped by its open breaker.
    virtual asio::awaitable<void> failed(const Failure& f) = 0;
    virtual bool started() const = 0;

    // Time spent waiting on upstreams (and in retry backoff) so far: the gateway's overhead is the
    // rest.
    std::chrono::steady_clock::duration upstream_time{};
    // The tokens the upstream reported (its usage object), when it did.
    TokenUsage usage{};
};

struct UpstreamRequest {
    const ModelSettings* model;
    std::string_view path;          // under the provider's base_url: "/chat/completions", "/embeddings"
    const RequestBody* body;        // "model" is replaced per target; its "stream" says how to answer
};

asio::awaitable<void> try_targets(Gateway& gateway, UpstreamRequest request, Receiver& receiver);

}  // namespace agente::gateway
