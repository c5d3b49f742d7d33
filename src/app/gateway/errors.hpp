// OpenAI's error object, {"error": {"message", "type", "param", "code"}}, so unchanged OpenAI clients
// raise the right exception class for each status.
#pragma once

#include <agente/handler.hpp>

#include <string>
#include <string_view>

namespace agente::gateway {

std::string error_json(std::string_view message, std::string_view type, std::string_view code);

// The type and code OpenAI uses for a status: 400 invalid_request_error, 401 authentication_error...
Response error_response(int status, std::string_view message, std::string_view code = {});

// The SSE event that ends a stream which failed after its first byte.
std::string error_event(std::string_view message, std::string_view code);

}  // namespace agente::gateway
