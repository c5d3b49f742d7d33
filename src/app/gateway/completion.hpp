// Chat completions for code inside the server (the agent endpoints), not relayed to an HTTP client:
// the attempts are proxy()'s own (attempts.hpp: targets, fallback, retries, shared breakers), but
// the answer comes back as text, whole or as each delta arrives.
#pragma once

#include "app/gateway/gateway.hpp"

#include <boost/asio/awaitable.hpp>
#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <string_view>

namespace agente::gateway {

struct CompletionResult {
    bool ok = false;
    int status = 200;           // on failure, the HTTP status the gateway would have answered: 503 every
                                // breaker open, 429 rate limited, 504 timed out, 502 otherwise, or the
                                // upstream's own 4xx
    std::string content;        // the assistant's text (streamed: everything delivered so far)
    std::string error;          // what went wrong, for logs and error events
    bool started = false;       // streamed: some delta was delivered before the failure (no fallback)
};

// Called for each content delta as it arrives; returns false to stop (the reader went away).
using DeltaCallback = std::function<asio::awaitable<bool>(std::string_view delta)>;

// `body` is the request without "model" (messages, temperature...). Cancelling the awaiting coroutine
// (terminal cancellation) closes the upstream connection at once.
asio::awaitable<CompletionResult> complete(Gateway& gateway, const ModelSettings& model, nlohmann::json body);
asio::awaitable<CompletionResult> complete_stream(Gateway& gateway, const ModelSettings& model, nlohmann::json body,
                                                  DeltaCallback on_delta);

// True when every provider of the model has an open breaker: a request now would get 503.
bool all_breakers_open(Gateway& gateway, const ModelSettings& model);

// The text of a streamed chunk's choices[0].delta.content, "" when it has none.
std::string delta_content(std::string_view event_data);

}  // namespace agente::gateway
