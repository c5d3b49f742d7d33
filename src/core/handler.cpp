// The small helpers declared in the public handler interface.
#include <agente/handler.hpp>

#include <nlohmann/json.hpp>

namespace agente {

std::string_view Request::path() const {
    auto t = target();
    return t.substr(0, t.find('?'));
}

std::string_view Request::query() const {
    auto t = target();
    auto q = t.find('?');
    return q == std::string_view::npos ? std::string_view() : t.substr(q + 1);
}

Response Response::json(int status, std::string body) {
    Response r;
    r.status = status;
    r.body = std::move(body);
    return r;
}

Response Response::error(int status, std::string_view message) {
    nlohmann::json j = {{"error", {{"message", message}, {"code", status}}}};
    // A message may quote request bytes (a path), and dump() throws on invalid UTF-8.
    return json(status, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

}  // namespace agente
