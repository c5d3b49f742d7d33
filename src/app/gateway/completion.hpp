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
    // The upstream's own "usage" object, passed on as it came (its prompt_tokens count everything the
    // upstream read, a grounded answer's sources included); null when it sent none (a stream to a
    // provider with stream_include_usage = false that reports none unasked).
    nlohmann::json usage;
};

// DeltaCallback (gateway.hpp): called for each content delta as it arrives; returns false to stop
// (the reader went away).

// `body` is the request without "model" (messages, temperature...). Cancelling the awaiting coroutine
// (terminal cancellation) closes the upstream connection at once.
asio::awaitable<CompletionResult> complete(Gateway& gateway, const ModelSettings& model, nlohmann::json body);
asio::awaitable<CompletionResult> complete_stream(Gateway& gateway, const ModelSettings& model, nlohmann::json body,
                                                  DeltaCallback on_delta);

// An answer grounded in vector stores (rag/grounded_chat.cpp): the completion (its failure may be
// the retrieval's: a store missing, the dirty pool unavailable), and what its [n] markers cite as
// OpenAI-style citation objects. Nothing relevant retrieved: `completion` holds a text that says so,
// made without an upstream call, `citations` is empty.
struct GroundedResult {
    CompletionResult completion;
    nlohmann::json citations = nlohmann::json::array();
    bool retrieved_nothing = false;
    bool retry_soon = false;   // the search failed as the dirty pool was busy or restarting (HTTP: Retry-After)
};

// The chat `body` (OpenAI's messages and fields, without "model") answered by `model`'s targets
// from the stores of `retrieval`; deltas to `on_delta` when it is not null (a stream). Set on the
// Gateway by the RAG part, which the gateway and the agent do not depend on.
using GroundedCompletion = decltype(Gateway::grounded_complete);

// True when every provider of the model has an open breaker: a request now would get 503.
bool all_breakers_open(Gateway& gateway, const ModelSettings& model);

// The text of a streamed chunk's choices[0].delta.content, "" when it has none.
std::string delta_content(std::string_view event_data);

}  // namespace agente::gateway
