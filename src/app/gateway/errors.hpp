// OpenAI's error object, {"error": {"message", "type", "param", "code"}}, so unchanged OpenAI clients
// raise the right exception class for each status.
#pragma once

#include "app/common/auth.hpp"

#include <agente/handler.hpp>

#include <string>
#include <string_view>

namespace agente::gateway {

std::string error_json(std::string_view message, std::string_view type, std::string_view code);

// The type and code OpenAI uses for a status: 400 invalid_request_error, 401 authentication_error...
Response error_response(int status, std::string_view message, std::string_view code = {});

// The options of an OpenAI-shaped route (/v1, the files and vector stores): a request the server
// stopped before its answer started (a deadline, or draining past graceful_timeout) gets OpenAI's
// error object, not the core's.
RouteOptions openai_stop();

// The SSE event that ends a stream which failed after its first byte.
std::string error_event(std::string_view message, std::string_view code);

// Answers every surface (gateway, agent) gives alike, in the body shape each one speaks: `shape`
// makes the body (OpenAI error, JSON-RPC error, the seed's plain error) from a status and a message.
using app::ErrorShape;

}  // namespace agente::gateway
