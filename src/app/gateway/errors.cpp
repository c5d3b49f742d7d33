#include "app/gateway/errors.hpp"

#include "app/gateway/sse.hpp"
#include "app/json_text.hpp"

#include <nlohmann/json.hpp>

namespace agente::gateway {

namespace {

std::string_view type_for(int status) {
    switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    case 503: return "service_unavailable";
    case 504: return "timeout";
    default: return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

std::string_view code_for(int status) {
    switch (status) {
    case 401: return "invalid_api_key";
    case 403: return "forbidden";
    case 404: return "model_not_found";
    case 429: return "rate_limit_exceeded";
    case 503: return "circuit_open";
    case 504: return "upstream_timeout";
    default: return status >= 500 ? "upstream_error" : "invalid_request";
    }
}

}  // namespace

std::string error_json(std::string_view message, std::string_view type, std::string_view code) {
    nlohmann::json j = {{"error", {{"message", message}, {"type", type}, {"param", nullptr}, {"code", code}}}};
    return json_text(j);
}

Response error_response(int status, std::string_view message, std::string_view code) {
    return Response::json(status, error_json(message, type_for(status), code.empty() ? code_for(status) : code));
}

std::string error_event(std::string_view message, std::string_view code) {
    return data_event(error_json(message, "api_error", code));
}

RouteOptions openai_stop() {
    RouteOptions o;
    o.on_stop = [](const Request&, StopReason why) {
        if (why == StopReason::deadline) return error_response(504, "request deadline exceeded", "deadline_exceeded");
        return error_response(503, "server shutting down", "server_shutting_down");
    };
    return o;
}

}  // namespace agente::gateway
