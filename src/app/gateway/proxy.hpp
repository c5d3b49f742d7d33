// Sending one client request upstream: the model's targets in order, each breaker consulted, retries
// with backoff before the first byte reached the client, and the answer relayed whole or as SSE.
#pragma once

#include "app/gateway/gateway.hpp"

#include <nlohmann/json_fwd.hpp>

namespace agente::gateway {

struct ProxyRequest {
    const ModelSettings* model;
    std::string path;            // under the provider's base_url: "/chat/completions", "/embeddings"
    nlohmann::json* body;        // the client's JSON; "model" is replaced per target
    bool stream = false;
};

asio::awaitable<void> proxy(Gateway& gateway, Exchange& ex, ProxyRequest request);

}  // namespace agente::gateway
