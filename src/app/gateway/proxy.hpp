// Sending one client request upstream (attempts.hpp decides the attempts) and relaying the answer
// to the client: whole, or as SSE event by event with keep-alive comments.
#pragma once

#include "app/gateway/attempts.hpp"

namespace agente::gateway {

// The tokens the upstream reported (its usage object), for the client key's token limit.
asio::awaitable<TokenUsage> proxy(Gateway& gateway, Exchange& ex, UpstreamRequest request);

}  // namespace agente::gateway
