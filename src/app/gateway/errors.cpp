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

Response streams_full(const ErrorShape& shape, int max_streams) {
    Response r = shape(429, "too many concurrent streams (max " + std::to_string(max_streams) + ")");
    r.headers.push_back({"Retry-After", "1"});   // a stream slot frees as soon as any stream ends
    return r;
}

}  // namespace agente::gateway
